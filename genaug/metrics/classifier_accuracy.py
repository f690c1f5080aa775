"""GAN-test: accuracy of a classifier trained on real data, tested on generated samples.

The mirror of CAS (:mod:`genaug.metrics.cas`; Shmelkov et al., ECCV 2018, "How good is my GAN?").
CAS trains on samples and tests on real data: it drops when samples lack variety. GAN-test
trains on real data and tests on samples: it drops when samples of a class do not look like
that class (low fidelity, wrong class). A high GAN-test with a low diversity score is the
signature of mode collapse. The reference is the classifier's accuracy on real held-out data
(0.967 for the shipped ``mnist-classifier`` on the mnist5k test split).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from .features import full_precision
from .inputs import Images, first_shape, iter_batches, num_images


@dataclass
class GANTestResult:
    """Output of :func:`gan_test`.

    Attributes:
        accuracy: share of samples the classifier assigns to their conditioning class.
        per_class: accuracy per conditioning class.
        counts: samples per class.
        confusion: ``confusion[true][predicted]`` counts (a list of lists, JSON-ready).
    """

    accuracy: float
    per_class: dict[int, float] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)


def resolve_classifier(classifier: Any, image_shape: tuple[int, ...],
                       device: torch.device | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A logits function ``(B, C, H, W) -> (B, K)`` from a name, path, Classifier or module."""
    from genaug.generative import Classifier, load_model
    from genaug.generative.models.common import training_mode

    if isinstance(classifier, (str, os.PathLike)):
        try:
            classifier = load_model(classifier, device=device or "cpu")
        except (ValueError, FileNotFoundError) as e:
            raise type(e)(f"classifier={str(classifier)!r}: {e}") from e
        if not isinstance(classifier, Classifier):
            raise ValueError(f"classifier is a {getattr(classifier, 'kind', type(classifier).__name__)} checkpoint; "
                             "GAN-test needs a classifier trained on real data (e.g. 'mnist-classifier')")
    if isinstance(classifier, Classifier):
        cfg = classifier.config
        want = (cfg.channels, cfg.image_size, cfg.image_size)
        if tuple(image_shape) != want:
            raise ValueError(f"images are {'x'.join(map(str, image_shape))} but the classifier takes "
                             f"{'x'.join(map(str, want))} (channels x height x width)")
    if not callable(classifier):
        raise TypeError(f"classifier must be a name, a path, a Classifier or a callable; got {type(classifier).__name__}")
    module = classifier

    @torch.no_grad()
    def logits(x: torch.Tensor) -> torch.Tensor:
        with full_precision():          # no TF32: a GPU predicts what the CPU predicts
            if isinstance(module, nn.Module):
                dev = next(iter(module.parameters()), x).device
                with training_mode(module, False):
                    return module(x.to(dev))
            return module(x)

    return logits


def gan_test(data: Images, labels: torch.Tensor | None = None, classifier: Any = "mnist-classifier", *,
             batch_size: int = 500, device: str | torch.device | None = None,
             progress: bool | None = None) -> GANTestResult:
    """Accuracy of a real-trained classifier on generated images, overall and per class.

    Args:
        data: generated images (tensor uint8 / float in [0, 1], ``(images, labels)`` or a
            labelled Dataset).
        labels: the class each image was generated for, if ``data`` carries none.
        classifier: shipped name / checkpoint path of a genaug classifier, a
            :class:`~genaug.generative.Classifier`, or any module returning logits ``(B, K)``.
        batch_size: images per forward pass.
        device: where a loaded classifier runs (default: the images' device).
        progress: tqdm bar (``None``: on for >= 8 batches).

    Returns:
        :class:`GANTestResult`.

    Example:
        >>> from genaug.data import load_builtin
        >>> test = load_builtin("mnist5k", "test")
        >>> round(gan_test(test).accuracy, 3)      # the reference: real held-out digits
        0.967
    """
    from tqdm.auto import tqdm

    if labels is not None:
        if not isinstance(data, torch.Tensor):
            raise TypeError("labels= goes with an image tensor; a Dataset or (images, labels) pair carries its own")
        data = (data, torch.as_tensor(labels))
    shape = first_shape(data, "data")
    if device is None and isinstance(data, (tuple, torch.Tensor)):
        device = (data[0] if isinstance(data, tuple) else data).device
    fn = resolve_classifier(classifier, shape, torch.device(device) if device is not None else None)
    n = num_images(data, "data")
    show = progress if progress is not None else -(-n // batch_size) >= 8
    preds, ys = [], []
    with tqdm(total=n, desc="GAN-test", unit="img", disable=not show, dynamic_ncols=True, leave=False) as bar:
        for x, y in iter_batches(data, batch_size, "data"):
            if y is None:
                raise ValueError("GAN-test needs the class of every generated image: pass labels=, (images, labels) "
                                 "or a labelled Dataset")
            out = fn(x)
            if out.dim() != 2 or out.shape[0] != x.shape[0]:
                raise ValueError(f"the classifier returned shape {tuple(out.shape)}; expected logits (B, K)")
            preds.append(out.argmax(1).cpu())
            ys.append(y)
            bar.update(x.shape[0])
    pred, y = torch.cat(preds), torch.cat(ys)
    k = out.shape[1]
    if int(y.min()) < 0 or int(y.max()) >= k:
        raise ValueError(f"labels must be in 0..{k - 1} (the classifier has {k} classes); got {int(y.min())}..{int(y.max())}")
    conf = torch.zeros(k, k, dtype=torch.long)
    conf.index_put_((y, pred), torch.ones_like(y), accumulate=True)
    res = GANTestResult(accuracy=float((pred == y).double().mean()), confusion=conf.tolist())
    for c in torch.unique(y).tolist():
        m = y == c
        res.counts[c] = int(m.sum())
        res.per_class[c] = float((pred[m] == c).double().mean())
    return res
