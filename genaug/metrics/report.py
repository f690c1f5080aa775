"""One report on a generator: every metric, per class, next to the same numbers for real data.

:func:`evaluate_generator` samples a class-balanced set from a model and measures FID, KID,
precision / recall, CAS, GAN-test, diversity, coverage and (for a VAE) PSNR / SSIM of its
reconstructions against a real reference split. The **floor** is the same measurement with real
training images in place of generated ones: the value each metric should approach.
:func:`evaluate_samples` does the same for a fixed set of images (e.g. an exported synthetic
dataset). :func:`write_report` writes ``report.json``, ``report.md``, ``samples.png`` and
``per_class.png`` atomically.

Everything is seeded (``seed`` fixes samples, the floor's subsample and KID's subsets; CAS has
its own seeds), so the same call gives the same numbers on the same kind of device.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from genaug._atomic import atomic_write_bytes
from genaug._device import check_device

from .classifier_accuracy import gan_test
from .distribution import frechet_distance, kernel_distance
from .features import Extractor, FeatureSet, extract_features
from .image_quality import reconstruction_quality
from .knn_manifold import precision_recall_features
from .variety import diversity_features

SUMMARY_ROWS: list[tuple[str, str, str]] = [
    ("fid", "FID", "lower"),
    ("kid", "KID", "lower"),
    ("precision", "precision", "higher"),
    ("recall", "recall", "higher"),
    ("cas", "CAS", "higher"),
    ("gan_test", "GAN-test", "higher"),
    ("diversity", "diversity (fake / real)", "≈ 1"),
    ("coverage", "coverage", "higher"),
    ("psnr", "PSNR of reconstructions (dB)", "higher"),
    ("ssim", "SSIM of reconstructions", "higher"),
]
"""(key, label, which way is better) of the summary table, in order."""

PER_CLASS_KEYS = ("gan_test", "precision", "recall", "diversity", "coverage")


@dataclass
class GeneratorReport:
    """All numbers of one evaluation (JSON-ready via :meth:`to_dict`).

    Attributes:
        model: the model's name or path (or the samples' source).
        data: the real reference (e.g. ``"mnist5k:test"``) and ``num_real`` its size.
        num: generated images evaluated; ``seed`` drew them.
        extractor: the feature extractor behind FID/KID/precision/recall/diversity/coverage.
        classifier: the real-trained classifier behind GAN-test.
        summary: ``{key: value}`` for the keys of :data:`SUMMARY_ROWS` (``None``: not applicable or
            undefined; ``details["not_available"]`` says why where that is not obvious, e.g. diversity
            when no class has two samples), plus ``kid_std`` and ``cas_std``.
        per_class: ``{metric: {class: value}}`` for :data:`PER_CLASS_KEYS`.
        floor: the same for real data in place of samples (``source``, ``num``, ``summary``,
            ``per_class``, ``not_available`` where needed), or ``None``.
        settings: metric settings (k, KID subsets, CAS seeds and steps, ...).
        details: CAS per seed, GAN-test confusion matrix, the model's sha256, notes.
        command: the command line that produced it, if any.
    """

    model: str
    data: str
    num_real: int
    num: int
    seed: int
    extractor: str
    classifier: str
    summary: dict[str, float | None]
    per_class: dict[str, dict[int, float | None]]
    floor: dict[str, Any] | None
    settings: dict[str, Any]
    details: dict[str, Any]
    command: str | None = None
    samples: torch.Tensor | None = field(default=None, repr=False)
    real_examples: torch.Tensor | None = field(default=None, repr=False)
    elapsed_s: float = field(default=0.0, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the images and the timing (so equal runs give equal JSON)."""
        d = asdict(self)
        for k in ("samples", "real_examples", "elapsed_s"):
            d.pop(k)
        return _json_safe(d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(label, value, floor value, better) for each summary row."""
        fl = (self.floor or {}).get("summary", {})
        out = []
        for key, label, better in SUMMARY_ROWS:
            out.append((label, _fmt(key, self.summary), _fmt(key, fl) if self.floor else "", better))
        return out

    def not_available(self) -> list[str]:
        """Why a summary value is ``n/a`` where that needs saying, one sentence each (floor included).

        Example:
            >>> rep = GeneratorReport("m", "d", 10, 10, 0, "x", "c", {"diversity": None}, {}, None, {},
            ...                       {"not_available": {"diversity": "undefined: no pairs"}})
            >>> rep.not_available()
            ['diversity (fake / real) is n/a: undefined: no pairs']
        """
        labels = {key: label for key, label, _ in SUMMARY_ROWS}
        out = [f"{labels.get(key, key)} is n/a: {why}" for key, why in self.details.get("not_available", {}).items()]
        if self.floor:
            out += [f"{labels.get(key, key)} of the floor ({self.floor['source']}) is n/a: {why}"
                    for key, why in self.floor.get("not_available", {}).items()]
        return out

    def table(self) -> str:
        """The summary as an aligned plain-text table (what the command prints), then why any value is n/a."""
        head = ("metric", self.model, f"real {self.floor['source']}" if self.floor else "", "better")
        rows = [head] + self.rows()
        if not self.floor:
            rows = [(r[0], r[1], r[3]) for r in rows]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        na = self.not_available()
        if na:
            lines += [""] + na
        return "\n".join(lines)

    def to_markdown(self, images: Sequence[str] = ("samples.png", "per_class.png")) -> str:
        """A Markdown report: setup, summary table (with the floor), per-class table, figures."""
        fl = self.floor
        lines = [f"# Generator evaluation: {self.model}", ""]
        if self.command:
            lines += [f"- Command: `{self.command}`"]
        lines += [
            f"- Real reference: {self.data} ({self.num_real} images); generated: {self.num} images "
            f"(class-balanced, seed {self.seed})",
            f"- Features (FID, KID, precision/recall, diversity, coverage): `{self.extractor}`. FID and KID are "
            "comparable only between runs with the same extractor and the same sample sizes.",
            f"- GAN-test classifier: `{self.classifier}`; CAS: reference CNN trained {self.settings.get('cas_steps')} "
            f"steps, seeds {self.settings.get('cas_seeds')}",
        ]
        if fl:
            lines.append(f"- Floor: {fl['num']} real images of {fl['source']} in place of generated ones "
                         f"({fl.get('note', '')})")
        lines += ["", "| metric | " + self.model + (f" | real {fl['source']} (floor)" if fl else "") + " | better |",
                  "|---|---|" + ("---|" if fl else "") + "---|"]
        for label, val, flv, better in self.rows():
            lines.append(f"| {label} | {val} |" + (f" {flv} |" if fl else "") + f" {better} |")
        classes = sorted({c for m in PER_CLASS_KEYS for c in self.per_class.get(m, {})})
        if classes:
            lines += ["", "Per class (floor in parentheses):", "",
                      "| class | " + " | ".join(PER_CLASS_KEYS) + " |", "|---" * (len(PER_CLASS_KEYS) + 1) + "|"]
            for c in classes:
                cells = []
                for m in PER_CLASS_KEYS:
                    v = self.per_class.get(m, {}).get(c)
                    f = (fl or {}).get("per_class", {}).get(m, {}).get(c) if fl else None
                    cells.append(_num(v) + (f" ({_num(f)})" if fl else ""))
                lines.append(f"| {c if c >= 0 else 'all'} | " + " | ".join(cells) + " |")
        notes = self.not_available() + list(self.details.get("notes", []))
        if notes:
            lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
        lines += [""] + [f"![{Path(p).stem}]({p})" for p in images] + [""]
        return "\n".join(lines)


def _num(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _fmt(key: str, s: dict[str, Any]) -> str:
    v = s.get(key)
    if v is None:
        return "n/a"
    if key == "fid":
        return f"{v:.2f}"
    if key == "kid":
        return f"{v:.4f} ± {s.get('kid_std') or 0:.4f}"
    if key == "cas":
        return f"{v:.3f}" + (f" ± {s['cas_std']:.3f}" if s.get("cas_std") else "")
    if key == "psnr":
        return f"{v:.2f}"
    return f"{v:.3f}"


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, torch.Tensor):
        return _json_safe(x.tolist())
    return x


# --------------------------------------------------------------------------------------- data specs
def parse_data(spec: Any, default_split: str = "test") -> tuple[Any, str]:
    """``"mnist5k:test"``, ``"mnist5k"``, ``"imagefolder:PATH"`` or a Dataset -> (dataset, description).

    Example:
        >>> ds, name = parse_data("mnist5k:test")
        >>> name, len(ds)
        ('mnist5k:test', 1000)
    """
    from genaug.data import BUILTIN_NAMES, load_builtin
    from genaug.data.builtin import SPLITS

    if not isinstance(spec, str):
        return load_builtin(spec, "all"), type(spec).__name__
    if spec.startswith("imagefolder:"):
        return _numeric_classes(_grey_if_equal(load_builtin(spec, "all"))), spec
    name, _, split = spec.partition(":")
    split = split or default_split
    if name not in BUILTIN_NAMES:
        raise ValueError(f"data={spec!r}: unknown dataset {name!r}; allowed: {', '.join(BUILTIN_NAMES)} "
                         "(optionally ':train' / ':test' / ':all') or 'imagefolder:PATH'")
    if split not in SPLITS:
        raise ValueError(f"data={spec!r}: unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    return load_builtin(name, split), f"{name}:{split}"


def _numeric_classes(ds: Any) -> Any:
    """Class folders named ``0``, ``1``, ... (as ``genaug generate`` writes them) keep their numbers as labels.

    ``ImageFolder`` numbers the folders it finds in sorted order, so samples of classes ``3`` and
    ``7`` alone would otherwise become labels 0 and 1.
    """
    names = list(getattr(ds, "classes", []))
    if names and all(n.isdigit() for n in names) and names != [str(i) for i in range(len(names))]:
        ds.labels = torch.tensor([int(n) for n in names])[ds.labels]
        ds.classes = [str(i) for i in range(int(max(names, key=int)) + 1)]
    return ds


def _grey_if_equal(ds: Any) -> Any:
    """PNG folders of grey images load as RGB; keep one channel when all three are equal."""
    x = ds.images
    if x.shape[1] == 3 and torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2]):
        ds.images = x[:, :1].contiguous()
    return ds


def default_train_data(spec: Any) -> str | None:
    """The training split that goes with a built-in test split (``mnist5k:test`` -> ``mnist5k:train``)."""
    if isinstance(spec, str) and not spec.startswith("imagefolder:"):
        name, _, split = spec.partition(":")
        if split in ("", "test"):
            return f"{name}:train"
    return None


# ------------------------------------------------------------------------------------------ sampling
def balanced_labels(num: int, num_classes: int) -> torch.Tensor:
    """``num`` labels cycling through the classes, sorted (class-balanced up to one image).

    Example:
        >>> balanced_labels(5, 2).tolist()
        [0, 0, 0, 1, 1]
    """
    return (torch.arange(num) % num_classes).sort().values


def sample_model(model: Any, num: int, seed: int = 0, *, batch_size: int = 500, progress: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``num`` class-balanced samples (CPU float images in [0, 1], labels) from ``model.sample``, seeded."""
    from tqdm.auto import tqdm

    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
        raise ValueError(f"num={num!r} must be an int >= 2 (generated images to evaluate)")
    k = getattr(getattr(model, "config", None), "num_classes", 0)
    labels = balanced_labels(num, k) if k else None
    g = torch.Generator().manual_seed(seed)
    chunks = []
    with tqdm(total=num, desc="sampling", unit="img", disable=not progress, dynamic_ncols=True, leave=False) as bar:
        for i in range(0, num, batch_size):
            n = min(batch_size, num - i)
            lab = labels[i:i + n] if labels is not None else None
            chunks.append(model.sample(n, labels=lab, generator=g).float().cpu())
            bar.update(n)
    return torch.cat(chunks), labels


def _grid(images: torch.Tensor, labels: torch.Tensor | None, per_row: int,
          classes: list[int] | None = None) -> torch.Tensor:
    """(rows, per_row, C, H, W): the first ``per_row`` images of each class (or 5 rows if unlabelled).

    ``classes`` picks the rows (default: the classes present); a class short of images is padded white.
    """
    if labels is None:
        rows = min(5, images.shape[0] // per_row) or 1
        return images[:rows * per_row].reshape(rows, -1, *images.shape[1:])[:, :per_row]
    out = []
    blank = torch.ones_like(images[0])
    for c in (classes if classes is not None else torch.unique(labels).tolist()):
        sel = images[labels == c][:per_row]
        pad = [blank] * (per_row - sel.shape[0])
        out.append(torch.cat([sel, torch.stack(pad)]) if pad else sel)
    return torch.stack(out)


# ------------------------------------------------------------------------------------------- metrics
def _per_class_pr(fr: FeatureSet, ff: FeatureSet, k: int) -> tuple[dict[int, float | None], dict[int, float | None]]:
    prec: dict[int, float | None] = {}
    rec: dict[int, float | None] = {}
    if fr.labels is None or ff.labels is None:
        return prec, rec
    for c in torch.unique(fr.labels).tolist():
        r, f = fr.select(fr.labels == c), ff.select(ff.labels == c)
        if len(r) > k and len(f) > k:
            pr = precision_recall_features(r, f, k)
            prec[c], rec[c] = pr.precision, pr.recall
        else:
            prec[c] = rec[c] = None
    return prec, rec


def _distribution_metrics(fr: FeatureSet, ff: FeatureSet, *, k: int, coverage_k: int, kid_subsets: int,
                          kid_subset_size: int | None, seed: int
                          ) -> tuple[dict[str, Any], dict[str, dict], dict[str, str]]:
    """(summary, per_class, not_available): the last maps a summary key that is ``None`` to the reason."""
    kid = kernel_distance(fr, ff, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    pr = precision_recall_features(fr, ff, k)
    div = diversity_features(fr, ff, k=coverage_k, seed=seed)
    summary = {"fid": frechet_distance(fr, ff), "kid": kid.mean, "kid_std": kid.std, "precision": pr.precision,
               "recall": pr.recall, "diversity": div.score, "coverage": div.coverage}
    prec, rec = _per_class_pr(fr, ff, k)
    per_class = {"precision": prec, "recall": rec, "diversity": dict(div.per_class),
                 "coverage": dict(div.per_class_coverage)}
    not_available = {"diversity": div.reason} if div.score is None and div.reason else {}
    return summary, per_class, not_available


def resolve_device(device: str | torch.device | None, argument: str = "device") -> torch.device:
    """Check ``device`` (:func:`genaug._device.check_device`) and return it (``None``: CPU; ``"auto"``: CUDA if present).

    Raises:
        ValueError: naming ``argument``, the value, the allowed forms and what this machine has.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("nosuch")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: device='nosuch' is not a device name torch knows; allowed: auto, cpu, cuda, cuda:N, mps, xpu ...
    """
    return torch.device("cpu") if device is None else check_device(device, argument)


def _check_model_classes(model: Any, real_y: torch.Tensor | None, data_name: str, uses: list[str]) -> None:
    """A conditional ``model`` whose classes do not cover the reference labels cannot serve ``uses``."""
    k = getattr(getattr(model, "config", None), "num_classes", 0) or 0
    if not uses or not k or real_y is None or real_y.numel() == 0:
        return
    top = int(real_y.max())
    if top >= k:
        raise ValueError(f"the generator has {k} classes (labels 0..{k - 1}) but the reference data {data_name} has "
                         f"labels up to {top}; {' and '.join(uses)} need the generator to handle every class of the "
                         f"reference: evaluate against data with labels 0..{k - 1} (--data)")


def _model_uses(model: Any, cas_runs: bool) -> list[str]:
    """What in the report makes the model draw or reconstruct images of the reference's classes."""
    uses = []
    if hasattr(model, "reconstruct"):
        uses.append("PSNR / SSIM of its reconstructions")
    if cas_runs:
        uses.append("CAS (--cas-seeds with no value skips it)")
    return uses


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(f"[evaluate-generator] {msg}", file=sys.stderr, flush=True)


def evaluate_samples(samples: Any, data: Any = "mnist5k:test", *, name: str = "samples",
                     model: Any = None, num: int | None = None, seed: int = 0, features: Extractor = None,
                     classifier: Any = "mnist-classifier", train_data: Any = "auto",
                     cas_seeds: Sequence[int] = (0,), cas_steps: int = 600, cas_per_class: int | None = None,
                     cas_cache: dict[int, float] | None = None, floor: bool = True, k: int = 3,
                     coverage_k: int = 5, kid_subsets: int = 100, kid_subset_size: int | None = None,
                     batch_size: int = 256, device: str | torch.device | None = None, progress: bool = True,
                     grid_per_class: int = 10, command: str | None = None) -> GeneratorReport:
    """Evaluate a fixed set of generated images (with their class labels) against real data.

    Args:
        samples: generated images: ``(images, labels)``, a labelled Dataset, a data spec such
            as ``"imagefolder:out/synthetic"``, or an image tensor (then no per-class numbers,
            GAN-test or CAS).
        data: the real reference, e.g. ``"mnist5k:test"`` (a spec or a Dataset).
        name: what the samples are called in the report.
        model: the model the samples came from, if any: CAS then draws its own samples from it,
            and a VAE's reconstructions of ``data`` give PSNR / SSIM.
        num: use only the first ``num`` samples (default: all).
        seed: seeds the floor's subsample, KID's subsets and diversity's subsample.
        features: feature extractor (default: ``mnist-classifier`` for 1x28x28; see
            :mod:`genaug.metrics.features`).
        classifier: real-trained classifier for GAN-test.
        train_data: the real training split for CAS and the floor (``"auto"``: ``NAME:train``
            for a built-in ``NAME:test``; ``None`` skips both).
        cas_seeds: CAS seeds (empty: skip CAS); cas_steps: CNN training steps; cas_per_class:
            samples per class CAS draws from ``model`` (default: the training split's size per class);
            cas_cache: dict seed -> real-data accuracy, filled and reused across calls (same data).
        floor: also measure real training images in place of the samples.
        k: precision/recall neighbourhood; coverage_k: coverage neighbourhood.
        kid_subsets, kid_subset_size: KID settings (see :func:`~genaug.metrics.kid`).
        batch_size: images per forward pass; device: where networks run (default CPU).
        progress: progress bars and stage messages on stderr.
        grid_per_class: generated images per class in ``samples.png``.
        command: recorded in the report.

    Returns:
        :class:`GeneratorReport`.
    """
    from .cas import classification_accuracy_score

    t0 = time.perf_counter()
    dev = resolve_device(device)
    real_ds, data_name = parse_data(data)
    if isinstance(samples, str):
        samples, _ = parse_data(samples, default_split="all")
    fake_x, fake_y = _materialise(samples, "samples")
    if num is not None:
        if isinstance(num, bool) or not isinstance(num, int) or not 2 <= num <= fake_x.shape[0]:
            raise ValueError(f"num={num!r} is not allowed; allowed: 2..{fake_x.shape[0]} (the samples given)")
        fake_x, fake_y = fake_x[:num], (fake_y[:num] if fake_y is not None else None)
    real_x, real_y = real_ds.images, real_ds.labels
    train_spec = default_train_data(data) if train_data == "auto" else train_data
    if model is not None:
        _check_model_classes(model, real_y, data_name,
                             _model_uses(model, bool(cas_seeds) and fake_y is not None and train_spec is not None))
    if tuple(fake_x.shape[1:]) != tuple(real_x.shape[1:]):
        a, b = tuple(fake_x.shape[1:]), tuple(real_x.shape[1:])
        raise ValueError(f"generated images are {'x'.join(map(str, a))} but {data_name} images are "
                         f"{'x'.join(map(str, b))} (channels x height x width); evaluate against data of the same shape")
    notes: list[str] = []
    _log(progress, f"features of {data_name} ({real_x.shape[0]} images) and of {fake_x.shape[0]} generated images")
    fr = extract_features((real_x, real_y), features, batch_size=batch_size, device=dev, progress=progress, name="real")
    ff = extract_features((fake_x, fake_y) if fake_y is not None else fake_x, features, batch_size=batch_size,
                          device=dev, progress=progress, name="fake")
    if fr.extractor != ff.extractor:
        raise ValueError(f"real and fake features come from different extractors ({fr.extractor}, {ff.extractor})")
    _log(progress, "FID, KID, precision/recall, diversity, coverage")
    settings = {"k": k, "coverage_k": coverage_k, "kid_subsets": kid_subsets,
                "kid_subset_size": kid_subset_size or min(1000, len(fr), len(ff)), "cas_seeds": list(cas_seeds),
                "cas_steps": cas_steps, "cas_per_class": cas_per_class, "batch_size": batch_size, "device": str(dev)}
    summary, per_class, not_available = _distribution_metrics(fr, ff, k=k, coverage_k=coverage_k,
                                                              kid_subsets=kid_subsets,
                                                              kid_subset_size=kid_subset_size, seed=seed)
    details: dict[str, Any] = {"notes": notes}
    if not_available:
        details["not_available"] = not_available
    clf_name = classifier if isinstance(classifier, str) else type(classifier).__name__
    summary["gan_test"] = None
    if fake_y is not None:
        _log(progress, f"GAN-test with {clf_name}")
        gt = gan_test((fake_x, fake_y), classifier=classifier, device=dev, progress=progress)
        summary["gan_test"] = gt.accuracy
        per_class["gan_test"] = dict(gt.per_class)
        details["gan_test_confusion"] = gt.confusion
    else:
        notes.append("the samples have no labels: no GAN-test, CAS or per-class numbers")

    train_ds = parse_data(train_spec, default_split="train")[0] if train_spec is not None else None
    summary["cas"] = summary["cas_std"] = None
    if cas_seeds and fake_y is not None and train_ds is not None:
        _log(progress, f"CAS: training the reference CNN on samples and on {train_spec}, seeds {list(cas_seeds)}")
        if model is not None:
            sampler = None
        else:
            def sampler(_m: Any, _n: int, _k: int, _s: int) -> tuple[torch.Tensor, torch.Tensor]:
                return fake_x, fake_y  # type: ignore[return-value]
        res = classification_accuracy_score(model, (train_ds.images, train_ds.labels), (real_x, real_y),
                                            seeds=tuple(cas_seeds), steps=cas_steps, device=dev, progress=progress,
                                            sampler=sampler, n_per_class=cas_per_class, real_acc_cache=cas_cache)
        summary["cas"], summary["cas_std"] = res.mean, res.std
        details["cas"] = asdict(res)
    elif cas_seeds and train_ds is None:
        notes.append("no real training split known for CAS; pass train_data (--train-data)")

    summary["psnr"] = summary["ssim"] = None
    if model is not None and hasattr(model, "reconstruct"):
        _log(progress, f"PSNR / SSIM of reconstructions of {data_name}")
        rq = reconstruction_quality(model, (real_x, real_y), device=dev)
        summary["psnr"], summary["ssim"] = rq["psnr"], rq["ssim"]

    floor_res = None
    if floor and train_ds is not None:
        n_floor = min(fake_x.shape[0], len(train_ds))
        idx = torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(seed))[:n_floor].sort().values
        _log(progress, f"floor: {n_floor} real images of {train_spec} in place of generated ones")
        fl_fs = extract_features((train_ds.images[idx], train_ds.labels[idx]), features, batch_size=batch_size,
                                 device=dev, progress=progress, name="floor")
        fl_sum, fl_pc, fl_na = _distribution_metrics(fr, fl_fs, k=k, coverage_k=coverage_k,
                                                     kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                                                     seed=seed)
        gt_ref = gan_test((real_x, real_y), classifier=classifier, device=dev, progress=progress)
        gt_train = gan_test((train_ds.images[idx], train_ds.labels[idx]), classifier=classifier, device=dev,
                            progress=progress)
        fl_sum.update({"gan_test": gt_ref.accuracy, "cas": 1.0, "cas_std": None, "psnr": None, "ssim": None})
        fl_pc["gan_test"] = dict(gt_ref.per_class)
        floor_res = {"source": str(train_spec), "num": n_floor, "summary": fl_sum, "per_class": fl_pc,
                     "note": f"GAN-test floor = the classifier's accuracy on the real {data_name} images "
                             f"(on these {train_spec} images, which it was trained on, it is {gt_train.accuracy:.3f}); "
                             "CAS = 1 by definition"}
        if fl_na:
            floor_res["not_available"] = fl_na
    elif floor:
        notes.append("no real training split known: no floor")

    meta = getattr(model, "checkpoint_metadata", None) or {}
    if meta.get("sha256"):
        details["model_sha256"] = meta["sha256"]
    rep = GeneratorReport(model=name, data=data_name, num_real=int(real_x.shape[0]), num=int(fake_x.shape[0]),
                          seed=seed, extractor=fr.extractor, classifier=str(clf_name), summary=summary,
                          per_class=per_class, floor=floor_res, settings=settings, details=details, command=command)
    rep.samples = _grid(fake_x, fake_y, grid_per_class)
    if fake_y is not None:      # real examples of the same classes, row for row
        rep.real_examples = _grid(real_x.float() / 255, real_y, 3, torch.unique(fake_y).tolist())
    rep.elapsed_s = time.perf_counter() - t0
    return rep


def _materialise(data: Any, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    from .inputs import load_all

    x, y = load_all(data, name)
    return x.cpu(), y


def evaluate_generator(model: Any, data: Any = "mnist5k:test", *, num: int | None = None, seed: int = 0,
                       device: str | torch.device | None = None, progress: bool = True, **kwargs: Any
                       ) -> GeneratorReport:
    """Sample ``num`` class-balanced images from ``model`` and evaluate them (:func:`evaluate_samples`).

    Args:
        model: a shipped name (``"mnist-cgan"``), a checkpoint path, or a model with
            ``sample(n, labels=..., generator=...)``.
        data: the real reference (default ``"mnist5k:test"``).
        num: images to generate (default: the size of the training split, 4,000 for mnist5k,
            so that the floor compares equal-sized sets; else the reference's size).
        seed: seeds the samples (and the floor / KID subsets).
        device: where the model and the networks run (default CPU; ``"auto"``: CUDA if present).
        progress: progress bars and stage messages.
        **kwargs: passed to :func:`evaluate_samples` (``features``, ``classifier``, ``cas_seeds``,
            ``cas_steps``, ``floor``, ``k``, ``kid_subsets``, ...).

    Returns:
        :class:`GeneratorReport` (write it with :func:`write_report`).

    Example:
        >>> rep = evaluate_generator("mnist-cgan", num=500, cas_seeds=(), floor=False)  # doctest: +SKIP
        >>> print(rep.table())  # doctest: +SKIP
    """
    from genaug.generative import load_model

    dev = resolve_device(device)
    name = str(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model, device=dev)
    elif hasattr(model, "to"):
        model = model.to(dev)
    if not hasattr(model, "sample"):
        raise TypeError(f"model {name!r} cannot sample (it is a {type(model).__name__}); evaluate a GAN or VAE")
    train_spec = kwargs.get("train_data", "auto")
    train_spec = default_train_data(data) if train_spec == "auto" else train_spec
    real_ds, data_name = parse_data(data)       # up front: a reference the model cannot serve fails before sampling
    labelled = getattr(getattr(model, "config", None), "num_classes", 0)
    _check_model_classes(model, real_ds.labels, data_name,
                         _model_uses(model, bool(kwargs.get("cas_seeds", (0,))) and bool(labelled)
                                     and train_spec is not None))
    if num is None:
        num = len(parse_data(train_spec, "train")[0]) if train_spec else len(real_ds)
    _log(progress, f"sampling {num} images from {name} (seed {seed})")
    x, y = sample_model(model, num, seed, progress=progress)
    return evaluate_samples((x, y) if y is not None else x, data, name=name, model=model, seed=seed, device=dev,
                            progress=progress, **kwargs)


def write_report(report: GeneratorReport, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``report.json``, ``report.md``, ``samples.png`` and ``per_class.png`` to ``out_dir`` (atomically).

    Returns:
        The paths written.
    """
    from .plots import save_per_class_bars, save_sample_grid

    out = Path(out_dir)
    paths = [atomic_write_bytes(out / "report.json", report.to_json().encode())]
    images = []
    if report.samples is not None:
        rows = report.samples.shape[0]
        labelled = report.real_examples is not None
        gt = report.per_class.get("gan_test", {})
        dv = report.per_class.get("diversity", {})
        keys = sorted(gt) if labelled and gt else list(range(rows))
        labels = [str(c) for c in keys] if labelled else [""] * rows
        notes = ([f"GAN-test {_num(gt.get(c), 2)}\ndiversity {_num(dv.get(c), 2)}" for c in keys]
                 if labelled and gt else None)
        title = f"{report.model}: generated samples per class (seed {report.seed})"
        if labelled:
            title += f"; left: real {report.data}"
        paths.append(save_sample_grid(out / "samples.png", report.samples, report.real_examples, row_labels=labels,
                                      row_notes=notes, title=title))
        images.append("samples.png")
    if any(report.per_class.get(m) for m in PER_CLASS_KEYS):
        fl = report.floor
        paths.append(save_per_class_bars(
            out / "per_class.png", report.per_class, report.summary, fl["per_class"] if fl else None,
            title=f"{report.model} vs {report.data}: per-class metrics",
            floor_label=f"real {fl['source']} (floor)" if fl else "real data"))
        images.append("per_class.png")
    paths.append(atomic_write_bytes(out / "report.md", report.to_markdown(images).encode()))
    return paths
