"""Evaluate a classifier on corrupted data: clean error, per-(corruption, severity) errors, CE / mCE /
relative mCE against a baseline, and a generative shift (accuracy on a conditional generator's
samples, per class).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from genaug.robustness.corruptions import check_name, check_severity
from genaug.robustness.formulas import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    corruption_errors,
    relative_corruption_errors,
)
from genaug.robustness.tables import ALL, check_table, table_for_size
from genaug.robustness.transforms import Corruption
from genaug.transforms.base import DRAWN_FOR, drawn_for, mix_seeds


@dataclass
class GenerativeShift:
    """A classifier's accuracy on a conditional generator's samples (``n_per_class`` per class)."""

    accuracy: float
    per_class: list[float]
    n_per_class: int
    generator: str | None = None
    seed: int = 0


@dataclass
class RobustnessResult:
    """What :func:`evaluate` measured. Errors are fractions in [0, 1].

    Attributes:
        clean_error: top-1 error on the clean data.
        errors: corruption name -> the error at each of ``severities`` (in that order).
        severities: the severities evaluated.
        table: the severity table used (``"cifar"``, ``"tiny-imagenet"``, ``"imagenet"``).
        n: number of images.
        baseline_name: what CE is normalised by (``"AlexNet"``, a results file, ...) or ``None``.
        baseline_errors / baseline_clean_error: the baseline's numbers (``None`` without baseline).
        ce / relative_ce: per corruption (ratios; x100 for the paper's %), ``mce`` / ``relative_mce``
            their means over the corruptions evaluated (``None`` without a baseline).
        generative: the generative shift, when a generator was given.
    """

    clean_error: float
    errors: dict[str, list[float]]
    severities: list[int]
    table: str
    n: int
    seed: int = 0
    model: str | None = None
    data: str | None = None
    baseline_name: str | None = None
    baseline_errors: dict[str, Any] | None = None
    baseline_clean_error: float | None = None
    ce: dict[str, float] | None = None
    relative_ce: dict[str, float] | None = None
    mce: float | None = None
    relative_mce: float | None = None
    generative: GenerativeShift | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def clean_accuracy(self) -> float:
        return 1.0 - self.clean_error

    @property
    def accuracies(self) -> dict[str, list[float]]:
        """Corruption name -> accuracy at each severity."""
        return {name: [1.0 - e for e in errs] for name, errs in self.errors.items()}

    @property
    def mean_errors(self) -> dict[str, float]:
        """Corruption name -> error averaged over the severities."""
        return {name: sum(errs) / len(errs) for name, errs in self.errors.items()}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["clean_accuracy"] = self.clean_accuracy
        out["accuracies"] = self.accuracies
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RobustnessResult:
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        if kwargs.get("generative") is not None:
            kwargs["generative"] = GenerativeShift(**kwargs["generative"])
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RobustnessResult:
        """Read a ``robustness.json`` written by :func:`genaug.robustness.write_report`."""
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or "errors" not in data or "clean_error" not in data:
            raise ValueError(f"{path} is not a genaug robustness results file (no 'errors' / 'clean_error')")
        return cls.from_dict(data)

    def with_baseline(self, baseline: Any) -> RobustnessResult:
        """This result with CE / mCE / relative mCE against ``baseline`` (see :func:`evaluate`)."""
        name, errors, clean = _resolve_baseline(baseline, self.table, list(self.errors))
        self.baseline_name, self.baseline_errors, self.baseline_clean_error = name, errors, clean
        if errors is None:
            self.ce = self.relative_ce = self.mce = self.relative_mce = None
            return self
        names = [n for n in self.errors if n in errors]
        if not names:
            raise ValueError(f"the baseline {name} has errors for none of the corruptions evaluated")
        self.ce = corruption_errors(self.errors, errors, names)
        self.mce = sum(self.ce.values()) / len(self.ce)
        if clean is not None:
            try:
                self.relative_ce = relative_corruption_errors(self.errors, self.clean_error, errors, clean, names)
                self.relative_mce = sum(self.relative_ce.values()) / len(self.relative_ce)
            except ValueError:  # a baseline no worse corrupted than clean: relative CE undefined
                self.relative_ce = self.relative_mce = None
        return self


def _resolve_baseline(baseline: Any, table: str, names: Sequence[str]) -> tuple[str | None, dict | None, float | None]:
    if baseline is None:
        return None, None, None
    if isinstance(baseline, str) and baseline.lower() == "alexnet":
        return "AlexNet (ImageNet-C)", dict(ALEXNET_ERRORS), ALEXNET_CLEAN_ERROR
    if isinstance(baseline, (str, os.PathLike)):
        result = RobustnessResult.load(baseline)
        return f"results file {os.fspath(baseline)}", result.errors, result.clean_error
    if isinstance(baseline, RobustnessResult):
        return baseline.model or "earlier result", baseline.errors, baseline.clean_error
    if isinstance(baseline, Mapping) and "errors" in baseline:
        return str(baseline.get("name", "baseline")), dict(baseline["errors"]), baseline.get("clean_error")
    raise TypeError("baseline must be None, 'alexnet', a path to a robustness.json, a RobustnessResult, or a "
                    f"dict with 'errors' (and 'clean_error'), got {type(baseline).__name__}")


def _batches(data: Any, batch_size: int) -> tuple[int, Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]]:
    """(number of images, a function giving (images, labels) batches in order)."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        images, labels = data
        if images.dim() != 4 or labels.shape != (images.shape[0],):
            raise ValueError(f"data must be (images (N, C, H, W), labels (N,)), got {tuple(images.shape)} and "
                             f"{tuple(labels.shape)}")
        n = images.shape[0]
        return n, lambda: ((images[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, n, batch_size))
    if isinstance(data, torch.utils.data.Dataset):
        if hasattr(data, "images") and hasattr(data, "labels"):  # genaug's ImageTensorDataset: no collation
            return _batches((data.images, data.labels), batch_size)
        loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)

        def gen() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for images, labels in loader:
                yield torch.as_tensor(images), torch.as_tensor(labels)

        return len(data), gen  # type: ignore[arg-type]
    raise TypeError(f"data must be an (images, labels) pair of tensors or a Dataset, got {type(data).__name__}")


def _float01(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float32).div_(255.0) if x.dtype == torch.uint8 else x.to(torch.float32)


def corruption_seed(seed: int, name: str, severity: int) -> int:
    """Base seed of ``name`` at ``severity``: image ``i`` of the data gets ``base + i`` (batch-size independent)."""
    return mix_seeds(seed, ALL.index(name), severity) >> 2


def corruption_params(op: Corruption, base: int, start: int, size: tuple[int, int], n: int) -> dict[str, Any]:
    """Params of :class:`Corruption` ``op`` for images ``start .. start + n - 1`` of a dataset."""
    return {"seed": base + torch.arange(start, start + n, dtype=torch.int64),
            "apply": torch.ones(n, dtype=torch.bool), DRAWN_FOR: drawn_for(op, size)}


def evaluate(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    data: Any,
    corruptions: Sequence[str] | str = "benchmark",
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    batch_size: int = 256,
    device: str | torch.device | None = None,
    table: str | None = None,
    seed: int = 0,
    baseline: Any = None,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    generator: nn.Module | None = None,
    n_per_class: int = 100,
    out: str | os.PathLike[str] | None = None,
    progress: bool = True,
    model_name: str | None = None,
    data_name: str | None = None,
) -> RobustnessResult:
    """Top-1 error of ``model`` on clean and corrupted ``data``, per corruption and severity.

    Every image is corrupted on ``device`` with its own seed ``corruption_seed(seed, name,
    severity) + index`` (index in ``data``), so the numbers do not depend on ``batch_size`` or the
    device (up to float rounding in the model).

    Args:
        model: a classifier returning logits ``(B, K)`` for float images in 0..1 (after ``preprocess``).
            ``nn.Module`` models run in eval mode (their mode is restored after).
        data: an ``(images, labels)`` pair (uint8 or float 0..1 images ``(N, C, H, W)``) or a Dataset of
            ``(image, label)`` items.
        corruptions: names, or ``"benchmark"`` (the 15), ``"extra"`` (the 4), ``"all"``.
        severities: which of 1..5.
        batch_size: images per forward pass.
        device: where corruptions and the model run (default: the model's device, else CPU).
        table: severity table; ``None`` picks it by image size (<= 32 px: CIFAR-10-C, <= 64: Tiny-ImageNet-C,
            else ImageNet-C).
        seed: seed of the corruptions' randomness.
        baseline: for CE / mCE / relative mCE: ``"alexnet"`` (the published AlexNet ImageNet-C errors; the
            default for ``table="imagenet"`` with the benchmark's corruptions), a path to an earlier
            ``robustness.json``, a :class:`RobustnessResult`, or ``None``.
        preprocess: applied to every float batch before the model (e.g. a normalisation).
        generator: a conditional generator (``sample(n, labels=..., generator=...)``) for the generative
            shift: the model's accuracy on ``n_per_class`` samples of each class.
        out: folder to write ``robustness.json``, ``.csv``, ``.md`` and ``.png`` to (atomic writes).
        progress: show a progress bar.
        model_name, data_name: recorded in the result and the reports.

    Returns:
        A :class:`RobustnessResult`.

    Example:
        >>> import torch, genaug as ga
        >>> from genaug.data.builtin import load_builtin
        >>> test = load_builtin("mnist5k", "test")
        >>> res = ga.robustness.evaluate(ga.load_model("mnist-classifier"), (test.images[:64], test.labels[:64]),
        ...                              corruptions=["contrast"], severities=(1, 5), progress=False)
        >>> res.errors["contrast"][0] <= res.errors["contrast"][1]
        True
    """
    from tqdm.auto import tqdm

    if isinstance(corruptions, str):
        from genaug.robustness.transforms import GROUPS

        names = list(GROUPS[corruptions]) if corruptions in GROUPS else [check_name(corruptions)]
    else:
        names = [check_name(n) for n in corruptions]
    if not names:
        raise ValueError("corruptions is empty")
    sevs = [check_severity("severities", s) for s in severities]
    if not sevs:
        raise ValueError("severities is empty")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    table = check_table(table)
    n, batches = _batches(data, batch_size)
    if n == 0:
        raise ValueError("data is empty")
    if device is None:
        params = list(model.parameters()) if isinstance(model, nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    device = torch.device(device)
    was_training = model.training if isinstance(model, nn.Module) else None
    if isinstance(model, nn.Module):
        model.eval()
    ops = {(name, s): Corruption(name, s, table=table, seed=0) for name in names for s in sevs}
    wrong = {key: 0 for key in ops}
    wrong_clean, start, used_table = 0, 0, table
    steps = math.ceil(n / batch_size) * (1 + len(ops))
    bar = tqdm(total=steps, desc="robustness", unit="eval", disable=not progress, leave=False)

    def errors_of(x: torch.Tensor, y: torch.Tensor) -> int:
        x = _float01(x)
        if preprocess is not None:
            x = preprocess(x)
        return int((model(x).argmax(1) != y).sum())  # one host read per batch (the count)

    try:
        with torch.no_grad():
            for images, labels in batches():
                images, labels = images.to(device), labels.to(device)
                size = (int(images.shape[-2]), int(images.shape[-1]))
                used_table = table or table_for_size(size)
                wrong_clean += errors_of(images, labels)
                bar.update()
                for (name, s), op in ops.items():
                    params = corruption_params(op, corruption_seed(seed, name, s), start, size, images.shape[0])
                    wrong[(name, s)] += errors_of(op(images, params=params), labels)
                    bar.set_postfix_str(f"{name} s{s}", refresh=False)
                    bar.update()
                start += images.shape[0]
    finally:
        bar.close()
        if isinstance(model, nn.Module) and was_training:
            model.train()
    result = RobustnessResult(
        clean_error=wrong_clean / n,
        errors={name: [wrong[(name, s)] / n for s in sevs] for name in names},
        severities=sevs, table=used_table or "cifar", n=n, seed=seed, model=model_name, data=data_name,
    )
    if baseline is None and result.table == "imagenet" and set(names) <= set(ALEXNET_ERRORS):
        baseline = "alexnet"
    result.with_baseline(baseline)
    if generator is not None:
        result.generative = generative_shift(model, generator, n_per_class=n_per_class, batch_size=batch_size,
                                             seed=seed, device=device, preprocess=preprocess)
    if out is not None:
        from genaug.robustness.report import write_report

        write_report(result, out)
    return result


def generative_shift(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    generator: nn.Module,
    n_per_class: int = 100,
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device | None = None,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    generator_name: str | None = None,
) -> GenerativeShift:
    """The classifier's accuracy on ``n_per_class`` samples of each class of a conditional generator.

    A distribution shift that no pixel corruption gives: the images are what the generator believes
    each class looks like. Class ``k``'s samples come from ``torch.Generator().manual_seed(seed + k)``.

    Example:
        >>> import genaug as ga
        >>> shift = ga.robustness.generative_shift(ga.load_model("mnist-classifier"), ga.load_model("mnist-cgan"),
        ...                                        n_per_class=8)
        >>> len(shift.per_class), 0.0 <= shift.accuracy <= 1.0
        (10, True)
    """
    config = getattr(generator, "config", None)
    classes = getattr(config, "num_classes", None)
    if not isinstance(classes, int) or classes < 1:
        raise ValueError("generator must be a conditional genaug model (its config has num_classes >= 1)")
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, int) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive int, got {n_per_class!r}")
    if device is None:
        params = list(model.parameters()) if isinstance(model, nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    was_training = model.training if isinstance(model, nn.Module) else None
    if isinstance(model, nn.Module):
        model.eval()
    per_class = []
    try:
        with torch.no_grad():
            for k in range(classes):
                rng = torch.Generator().manual_seed(seed + k)
                correct = 0
                for i in range(0, n_per_class, batch_size):
                    m = min(batch_size, n_per_class - i)
                    x = generator.sample(m, labels=k, generator=rng).to(device).to(torch.float32).clamp(0, 1)
                    if preprocess is not None:
                        x = preprocess(x)
                    correct += int((model(x).argmax(1) == k).sum())
                per_class.append(correct / n_per_class)
    finally:
        if isinstance(model, nn.Module) and was_training:
            model.train()
    name = generator_name or type(generator).__name__
    return GenerativeShift(accuracy=sum(per_class) / classes, per_class=per_class, n_per_class=n_per_class,
                           generator=name, seed=seed)


__all__ = ["RobustnessResult", "GenerativeShift", "evaluate", "generative_shift", "corruption_seed"]
