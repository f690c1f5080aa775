"""Classification Accuracy Score (CAS; Ravuri & Vinyals, 2019).

Train a classifier only on class-balanced samples from a generative model, test it on real
held-out data, and divide by the accuracy of the same classifier trained on the real
training data. A CAS near 1 means the samples carry as much class information as real data.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from ..generative.models import Classifier, ClassifierConfig


@dataclass
class CASResult:
    """Per-seed and summary numbers of :func:`classification_accuracy_score`.

    Attributes:
        seeds: the seeds used.
        synthetic_acc: test accuracy of the classifier trained on model samples, per seed.
        real_acc: test accuracy of the same classifier trained on the real train split, per seed.
        cas: ``synthetic_acc / real_acc`` per seed.
    """

    seeds: list[int]
    synthetic_acc: list[float]
    real_acc: list[float]
    cas: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.cas)

    @property
    def std(self) -> float:
        return statistics.stdev(self.cas) if len(self.cas) > 1 else 0.0

    def summary(self) -> str:
        return (f"CAS {self.mean:.4f} ± {self.std:.4f} (std over seeds {self.seeds}; min {min(self.cas):.4f}, "
                f"max {max(self.cas):.4f}); synthetic acc {statistics.fmean(self.synthetic_acc):.4f}, "
                f"real acc {statistics.fmean(self.real_acc):.4f}")


def train_cas_classifier(images: torch.Tensor, labels: torch.Tensor, num_classes: int, *, steps: int = 600,
                         batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                         config: ClassifierConfig | None = None, device: str | torch.device = "cpu",
                         progress: Any = None) -> Classifier:
    """Train the reference CNN (:class:`~genaug.generative.Classifier`) on given images.

    Adam with cosine learning-rate decay, seeded shuffling; deterministic on CPU.

    Args:
        images: (N, C, H, W) uint8 or float in [0, 1].
        labels: (N,) class ids.
        num_classes: number of classes.
        steps: optimisation steps.
        batch_size: images per step.
        lr: peak learning rate.
        seed: seeds the weights, dropout and data order.
        config: classifier architecture (default: ``ClassifierConfig`` matching the images).
        device: where to train.
        progress: optional tqdm bar to advance by one per step.

    Returns:
        The trained classifier in eval mode.
    """
    if images.shape[0] != labels.shape[0] or images.shape[0] == 0:
        raise ValueError(f"images ({images.shape[0]}) and labels ({labels.shape[0]}) must be non-empty and match")
    x_all = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    cfg = config or ClassifierConfig(image_size=images.shape[-1], channels=images.shape[1], num_classes=num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clf = Classifier(cfg).to(device)
        opt = torch.optim.Adam(clf.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
        g = torch.Generator().manual_seed(seed)
        n = x_all.shape[0]
        perm = torch.randperm(n, generator=g)
        pos = 0
        clf.train()
        for _ in range(steps):
            if pos + batch_size > n:
                perm, pos = torch.randperm(n, generator=g), 0
            idx = perm[pos:pos + batch_size]
            pos += batch_size
            loss = F.cross_entropy(clf(x_all[idx].to(device)), labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if progress is not None:
                progress.update(1)
    return clf.eval()


def accuracy(classifier: Classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of ``classifier`` on (images, labels)."""
    return float((classifier.predict(images).cpu() == labels.cpu()).float().mean())


def balanced_samples(model: Any, n_per_class: int, num_classes: int, seed: int,
                     batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_per_class`` samples of every class from ``model.sample`` (seeded), on the CPU."""
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    g = torch.Generator().manual_seed(seed)
    chunks = [model.sample(min(batch_size, len(labels) - i), labels=labels[i:i + batch_size], generator=g).cpu()
              for i in range(0, len(labels), batch_size)]
    return torch.cat(chunks), labels


def classification_accuracy_score(model: Any, real_train: tuple[torch.Tensor, torch.Tensor],
                                  real_test: tuple[torch.Tensor, torch.Tensor], *, n_per_class: int | None = None,
                                  seeds: Sequence[int] = (0, 1, 2), steps: int = 600, batch_size: int = 64,
                                  lr: float = 1e-3, device: str | torch.device = "cpu", progress: bool = True,
                                  real_acc_cache: dict[int, float] | None = None,
                                  sampler: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None
                                  ) -> CASResult:
    """Classification Accuracy Score of a class-conditional generative model.

    For each seed: draw ``n_per_class`` samples per class from ``model`` (seeded), train the
    reference CNN on them, measure its accuracy on ``real_test``; train the same CNN with the
    same seed on ``real_train``; CAS = synthetic accuracy / real accuracy.

    Args:
        model: anything with ``sample(n, labels=..., generator=...)`` returning images in [0, 1].
        real_train: (images, labels) of the real training split.
        real_test: (images, labels) of the real test split.
        n_per_class: samples per class (default: the real train split's size / classes, so
            both classifiers see the same amount of data).
        seeds: one CAS per seed; report mean and spread.
        steps, batch_size, lr: classifier training settings (same for real and synthetic).
        device: where to train.
        progress: show a tqdm bar.
        real_acc_cache: optional dict seed -> real accuracy, filled and reused across models.
        sampler: optional ``(model, n_per_class, num_classes, seed) -> (images, labels)``
            replacing :func:`balanced_samples`.

    Returns:
        :class:`CASResult`.

    Example:
        >>> from genaug.data import load_builtin
        >>> from genaug.generative import load_model
        >>> tr, te = load_builtin("mnist5k", "train"), load_builtin("mnist5k", "test")
        >>> res = classification_accuracy_score(load_model("mnist-cgan"), (tr.images, tr.labels),
        ...                                     (te.images, te.labels))  # doctest: +SKIP
        >>> print(res.summary())  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    train_x, train_y = real_train
    test_x, test_y = real_test
    num_classes = int(max(int(train_y.max()), int(test_y.max()))) + 1
    if n_per_class is None:
        n_per_class = train_x.shape[0] // num_classes
    cache = real_acc_cache if real_acc_cache is not None else {}
    n_runs = sum(1 if s in cache else 2 for s in seeds)
    res = CASResult(list(seeds), [], [])
    with tqdm(total=n_runs * steps, desc="CAS", disable=not progress, dynamic_ncols=True) as bar:
        for seed in seeds:
            xs, ys = (sampler or balanced_samples)(model, n_per_class, num_classes, seed)
            clf = train_cas_classifier(xs, ys, num_classes, steps=steps, batch_size=batch_size, lr=lr,
                                       seed=seed, device=device, progress=bar)
            syn = accuracy(clf, test_x, test_y)
            if seed not in cache:
                clf_r = train_cas_classifier(train_x, train_y, num_classes, steps=steps, batch_size=batch_size,
                                             lr=lr, seed=seed, device=device, progress=bar)
                cache[seed] = accuracy(clf_r, test_x, test_y)
            res.synthetic_acc.append(syn)
            res.real_acc.append(cache[seed])
            res.cas.append(syn / cache[seed])
    return res
