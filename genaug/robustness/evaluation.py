"""Evaluate a classifier on corrupted data: clean error, per-(corruption, severity) errors, CE / mCE /
relative mCE against a baseline, and a generative shift (accuracy on a conditional generator's
samples, per class).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from genaug.robustness.corruptions import check_name, check_severity
from genaug.robustness.formulas import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    _mean_error,
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
        baseline_severities: the severities the baseline's errors are at (CE uses those of them that
            were evaluated here, see :meth:`with_baseline`).
        ce / relative_ce: per corruption (ratios; x100 for the paper's %), ``mce`` / ``relative_mce``
            their means over the corruptions evaluated (``None`` without a baseline). A corruption whose
            CE (relative CE) is undefined -- the baseline's error there is 0 (equals its clean error) --
            is left out of ``ce`` (``relative_ce``), so ``ce.get(name)`` is ``None``, and ``mce``
            (``relative_mce``) is then ``None``: a mean over fewer corruptions is not the mCE.
        baseline_note: why CE / mCE are missing or partial (``None`` when nothing was left out).
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
    baseline_severities: list[int] | None = None
    baseline_note: str | None = None
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
        """This result with CE / mCE / relative mCE against ``baseline`` (see :func:`evaluate`).

        CE sums the run's and the baseline's errors over the **same** severities. When the baseline was
        evaluated at other severities than this result, CE uses the baseline's errors at this result's
        severities if it has them (per severity); otherwise (a severity it lacks, or only a mean over
        its severities, as AlexNet's) this raises a ``ValueError`` naming both severity lists.

        A corruption on which the baseline's error is 0 has no CE: it is left out of ``ce`` (with a
        warning naming it, and :attr:`baseline_note` saying so) and ``mce`` is ``None``; the same for
        relative CE where the baseline's error equals its clean error.

        Raises:
            ValueError: severities that cannot be matched, or a baseline with none of the corruptions.
            TypeError: a ``baseline`` of another type.
        """
        resolved = baseline if isinstance(baseline, _Baseline) else _resolve_baseline(baseline)
        self.ce = self.relative_ce = self.mce = self.relative_mce = None
        self.baseline_note = None
        if resolved is None:
            self.baseline_name = self.baseline_errors = self.baseline_clean_error = self.baseline_severities = None
            return self
        base, names = _align_baseline(resolved, list(self.errors), list(self.severities))
        self.baseline_name, self.baseline_errors = resolved.name, resolved.errors
        self.baseline_clean_error, self.baseline_severities = resolved.clean, list(resolved.severities)
        notes = []
        lacking = [n for n in self.errors if n not in names]
        if lacking:
            notes.append(f"the baseline {resolved.name} has no errors for {lacking}: they have no CE and are not "
                         "in mCE")
        zero = [n for n in names if _base_sum(base[n]) == 0]
        if zero:
            notes.append(f"CE is undefined for {zero}: the baseline {resolved.name}'s error there is 0, so they "
                         "have no CE and mCE is None")
        defined = [n for n in names if n not in zero]
        self.ce = corruption_errors(self.errors, base, defined) if defined else {}
        self.mce = sum(self.ce.values()) / len(self.ce) if self.ce and not zero else None
        if resolved.clean is not None:
            clean = float(resolved.clean)
            flat = [n for n in names if abs(_base_mean(base[n]) - clean) <= 1e-12]
            if flat:
                notes.append(f"relative CE is undefined for {flat}: the baseline {resolved.name}'s error there "
                             "equals its clean error, so they have no relative CE and relative mCE is None")
            defined = [n for n in names if n not in flat]
            self.relative_ce = (relative_corruption_errors(self.errors, self.clean_error, base, clean, defined)
                                if defined else {})
            self.relative_mce = (sum(self.relative_ce.values()) / len(self.relative_ce)
                                 if self.relative_ce and not flat else None)
        if notes:
            self.baseline_note = "; ".join(notes)
            warnings.warn(self.baseline_note, RuntimeWarning, stacklevel=2)
        return self


@dataclass
class _Baseline:
    """A resolved baseline: errors per corruption (per-severity lists or one mean), at ``severities``."""

    name: str
    errors: dict[str, Any]
    clean: float | None
    severities: list[int]


_ALL_SEVERITIES = [1, 2, 3, 4, 5]


def _resolve_baseline(baseline: Any) -> _Baseline | None:
    if baseline is None:
        return None
    if isinstance(baseline, str) and baseline.lower() == "alexnet":
        return _Baseline("AlexNet (ImageNet-C)", dict(ALEXNET_ERRORS), ALEXNET_CLEAN_ERROR, list(_ALL_SEVERITIES))
    if isinstance(baseline, (str, os.PathLike)):
        result = RobustnessResult.load(baseline)
        return _Baseline(f"results file {os.fspath(baseline)}", result.errors, result.clean_error,
                         list(result.severities))
    if isinstance(baseline, RobustnessResult):
        return _Baseline(baseline.model or "earlier result", baseline.errors, baseline.clean_error,
                         list(baseline.severities))
    if isinstance(baseline, Mapping) and "errors" in baseline:
        sevs = baseline.get("severities", _ALL_SEVERITIES)
        if isinstance(sevs, (str, bytes)) or not isinstance(sevs, Sequence) or not sevs:
            raise ValueError(f"baseline['severities'] must be a non-empty list of ints in 1..5, got {sevs!r}")
        sevs = [check_severity("baseline['severities']", s) for s in sevs]
        return _Baseline(str(baseline.get("name", "baseline")), dict(baseline["errors"]), baseline.get("clean_error"),
                         sevs)
    raise TypeError("baseline must be None, 'alexnet', a path to a robustness.json, a RobustnessResult, or a "
                    "dict with 'errors' (and 'clean_error', 'severities': default [1, 2, 3, 4, 5]), got "
                    f"{type(baseline).__name__}")


def _base_sum(values: Any) -> float:
    return float(values) if isinstance(values, (int, float)) else float(sum(values))


def _base_mean(values: Any) -> float:
    return float(values) if isinstance(values, (int, float)) else float(sum(values)) / max(len(values), 1)


def _align_baseline(base: _Baseline, names: Sequence[str],
                    severities: Sequence[int]) -> tuple[dict[str, Any], list[str]]:
    """The baseline's errors at ``severities`` for the ``names`` it has (and those names).

    Raises a ``ValueError`` naming both severity lists when the baseline cannot give them: a severity it
    was not evaluated at, or only its mean over other severities.
    """
    run, bsev = list(severities), list(base.severities)
    common = [n for n in names if n in base.errors]
    if not common:
        raise ValueError(f"the baseline {base.name} has errors for none of the corruptions evaluated ({list(names)}; "
                         f"it has {sorted(base.errors)})")
    out: dict[str, Any] = {}
    for name in common:
        values = base.errors[name]
        _mean_error(name, values, f"the baseline {base.name}'s errors")  # empty, or not rates in [0, 1]
        if isinstance(values, (int, float)):  # a mean over the baseline's severities
            if sorted(run) != sorted(bsev):
                raise ValueError(
                    f"the baseline {base.name} gives only the mean over severities {bsev} for {name!r}, and the "
                    f"severities evaluated are {run}: CE compares sums over the same severities, so evaluate "
                    f"severities={tuple(bsev)} or give a baseline with the error at each of {run}")
            out[name] = values
            continue
        values = list(values)
        if len(values) != len(bsev):
            raise ValueError(f"the baseline {base.name} has {len(values)} errors for {name!r} but its severities "
                             f"are {bsev}: give one error per severity")
        missing = [s for s in run if s not in bsev]
        if missing:
            raise ValueError(
                f"the baseline {base.name} was evaluated at severities {bsev} and this run at {run}: CE compares "
                f"sums over the same severities and the baseline has no error at {missing}; evaluate severities "
                f"within {bsev} or give a baseline evaluated at {run}")
        out[name] = [values[bsev.index(s)] for s in run]
    return out, common


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
            for batch in loader:
                if isinstance(batch, Mapping) or not isinstance(batch, (tuple, list)) or len(batch) != 2:
                    raise TypeError(f"data: a Dataset's items must be (image, label) pairs (tuples or lists), "
                                    f"got items of type {_item_type(data, batch)}")
                images, labels = batch
                yield torch.as_tensor(images), torch.as_tensor(labels)

        return len(data), gen  # type: ignore[arg-type]
    raise TypeError(f"data must be an (images, labels) pair of tensors or a Dataset, got {type(data).__name__}")


def _item_type(data: Any, batch: Any) -> str:
    """What a Dataset's items are, for an error message (its first item; else the collated batch)."""
    try:
        item = data[0]
    except Exception:  # noqa: BLE001 - only for the message
        item = batch
    if isinstance(item, Mapping):
        return f"{type(item).__name__} (keys {list(item)})"
    if isinstance(item, (tuple, list)):
        return f"{type(item).__name__} of {len(item)} elements"
    return type(item).__name__


def _check_logits(out: Any, batch: int, what: str = "model") -> torch.Tensor:
    """``out`` must be floating logits ``(batch, K)``; raise naming what came back otherwise."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{what} must return a tensor of logits (B, K) = ({batch}, K), got {type(out).__name__}")
    if out.dim() != 2 or out.shape[0] != batch or out.shape[1] < 1 or not out.is_floating_point():
        raise ValueError(f"{what} must return floating logits of shape (B, K) with B = {batch} (the batch size) "
                         f"and K >= 1 classes, got a {out.dtype} tensor of shape {tuple(out.shape)}")
    return out


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
        baseline: for CE / mCE / relative mCE: ``"alexnet"`` (the published AlexNet ImageNet-C errors, means
            over severities 1..5; the default for ``table="imagenet"`` with the benchmark's corruptions when
            all 5 severities are evaluated -- with fewer, CE / mCE are ``None``, a warning and
            ``baseline_note`` say why), a path to an earlier ``robustness.json``, a :class:`RobustnessResult`,
            a dict with ``errors`` (``clean_error``, ``severities``: default ``[1, 2, 3, 4, 5]``), or ``None``.
            CE uses the baseline's errors at the severities evaluated here; a baseline that lacks one of them
            raises a ``ValueError`` naming both severity lists, before any image is evaluated. A corruption
            with baseline error 0 has no CE (left out of ``ce``, ``mce`` ``None``, a warning).
        preprocess: applied to every float batch before the model (e.g. a normalisation).
        generator: a conditional generator (``sample(n, labels=..., generator=...)``) for the generative
            shift: the model's accuracy on ``n_per_class`` samples of each class.
        out: folder to write ``robustness.json``, ``.csv``, ``.md`` and ``.png`` to (atomic writes).
        progress: show a progress bar.
        model_name, data_name: recorded in the result and the reports.

    Returns:
        A :class:`RobustnessResult`.

    Raises:
        ValueError: bad arguments, a baseline whose severities do not cover ``severities``, or a model whose
            output is not floating logits ``(B, K)``.
        TypeError: ``data`` not a pair of tensors or a Dataset of ``(image, label)`` pairs.

    Example:
        >>> import torch, genaug as ga
        >>> from genaug.data.builtin import load_builtin
        >>> test = load_builtin("mnist5k", "test")  # sorted by class: take a seeded random subset
        >>> idx = torch.randperm(len(test.labels), generator=torch.Generator().manual_seed(0))[:64]
        >>> res = ga.robustness.evaluate(ga.load_model("mnist-classifier"), (test.images[idx], test.labels[idx]),
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
    resolved = _resolve_baseline(baseline)  # checked before the work: a mismatch is not found an hour later
    if resolved is not None:
        _align_baseline(resolved, names, sevs)
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
        logits = _check_logits(model(x), int(y.shape[0]))
        return int((logits.argmax(1) != y).sum())  # one host read per batch (the count)

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
    note = None
    if resolved is None and result.table == "imagenet" and set(names) <= set(ALEXNET_ERRORS):
        if sorted(sevs) == _ALL_SEVERITIES:
            resolved = _resolve_baseline("alexnet")
        else:  # AlexNet's published errors are means over severities 1..5: no CE over others
            note = (f"no CE / mCE: the default baseline, AlexNet (ImageNet-C), has only its mean error over "
                    f"severities {_ALL_SEVERITIES} and the severities evaluated are {sevs}; CE compares sums over "
                    f"the same severities, so evaluate severities={tuple(_ALL_SEVERITIES)} or pass a baseline "
                    f"evaluated at {sevs}")
            warnings.warn(note, RuntimeWarning, stacklevel=2)
    result.with_baseline(resolved)
    if note is not None:
        result.baseline_note = note
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
                    correct += int((_check_logits(model(x), m).argmax(1) == k).sum())
                per_class.append(correct / n_per_class)
    finally:
        if isinstance(model, nn.Module) and was_training:
            model.train()
    name = generator_name or type(generator).__name__
    return GenerativeShift(accuracy=sum(per_class) / classes, per_class=per_class, n_per_class=n_per_class,
                           generator=name, seed=seed)


__all__ = ["RobustnessResult", "GenerativeShift", "evaluate", "generative_shift", "corruption_seed"]
