"""Corruption Error (CE), mCE and relative mCE, exactly as Hendrycks & Dietterich (2019) define them.

For a classifier ``f``, corruption ``c`` and severity ``s``, ``E^f_{s,c}`` is the top-1 error rate
on the corrupted data and ``E^f_clean`` the error on the clean data. With a baseline ``b``
(AlexNet for ImageNet-C):

* ``CE^f_c = (sum_s E^f_{s,c}) / (sum_s E^b_{s,c})``; ``mCE^f`` = the mean of ``CE^f_c`` over the
  corruptions (the 15 of the benchmark).
* ``Relative CE^f_c = (sum_s (E^f_{s,c} - E^f_clean)) / (sum_s (E^b_{s,c} - E^b_clean))``;
  ``relative mCE^f`` = its mean over the corruptions.

Errors are fractions in [0, 1]; CE values are ratios (the paper prints them times 100, in %).
Both sums run over the **same** severities: a corruption's run and baseline lists must have the
same length (element ``i`` of each at the same severity), or the baseline value is one number, the
mean over those same severities (as :data:`ALEXNET_ERRORS`, the mean over severities 1..5).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from genaug.robustness.tables import BENCHMARK

#: AlexNet's ImageNet-C error per corruption, averaged over the 5 severities, as published with the
#: ImageNet-C code (``hendrycks/robustness``) and used by every ImageNet-C mCE since. A sum over
#: severities divided by another is the ratio of their means, so these normalise CE exactly.
ALEXNET_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428, "shot_noise": 0.894468, "impulse_noise": 0.922640,
    "defocus_blur": 0.819880, "glass_blur": 0.826268, "motion_blur": 0.785948, "zoom_blur": 0.798360,
    "snow": 0.866816, "frost": 0.826572, "fog": 0.819324, "brightness": 0.564592,
    "contrast": 0.853204, "elastic_transform": 0.646056, "pixelate": 0.717840, "jpeg_compression": 0.606500,
}
#: AlexNet's clean ImageNet top-1 error: torchvision's published AlexNet accuracy 56.522 % (the
#: network the ImageNet-C code evaluates; the paper's Table 1 rounds the error to 43.5 %).
ALEXNET_CLEAN_ERROR = 1 - 0.56522


def _is_scalar(values: object) -> bool:
    return isinstance(values, (int, float)) and not isinstance(values, bool)


def _mean_error(name: str, values: float | Sequence[float], what: str) -> float:
    seq = [float(values)] if _is_scalar(values) else [float(v) for v in values]  # type: ignore[union-attr]
    if not seq:
        raise ValueError(f"{what}[{name!r}] is empty: give the error at each severity")
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in seq):
        raise ValueError(f"{what}[{name!r}] must hold error rates in [0, 1], got {list(seq)}")
    return sum(seq) / len(seq)


def _check_lengths(name: str, values: object, base: object) -> None:
    """A per-severity run list and a per-severity baseline list must cover the same severities."""
    if _is_scalar(values) or _is_scalar(base):
        return  # a scalar is the mean over the same severities (documented)
    n, m = len(values), len(base)  # type: ignore[arg-type]
    if n != m:
        raise ValueError(
            f"errors[{name!r}] has {n} values and baseline_errors[{name!r}] has {m}: CE sums both over the same "
            f"severities, so give the baseline's error at each severity of the run (same length, same order), "
            f"or one number, its mean over those same severities")


def _names(errors: Mapping[str, object], baseline: Mapping[str, object], corruptions: Sequence[str] | None) -> list[str]:
    names = list(corruptions) if corruptions is not None else [n for n in BENCHMARK if n in errors] or list(errors)
    if not names:
        raise ValueError("no corruption to average over")
    missing = [n for n in names if n not in errors]
    if missing:
        raise ValueError(f"errors lacks {missing}")
    missing = [n for n in names if n not in baseline]
    if missing:
        raise ValueError(f"the baseline has no errors for {missing}")
    return names


def corruption_errors(errors: Mapping[str, Sequence[float]], baseline_errors: Mapping[str, float | Sequence[float]],
                      corruptions: Sequence[str] | None = None) -> dict[str, float]:
    """``CE_c = sum_s E_{s,c} / sum_s E^baseline_{s,c}`` for each corruption (as ratios).

    ``baseline_errors`` values may be the per-severity errors (a list as long as the run's, element ``i``
    at the same severity) or their mean over the run's severities (as :data:`ALEXNET_ERRORS`, the mean over
    severities 1..5). ``corruptions``: which to compute (default: the benchmark's 15 that ``errors`` has,
    else all of them).

    Raises:
        ValueError: a run list and a baseline list of different lengths (different severities), errors
            outside [0, 1], a corruption missing on either side, or a baseline error of 0 (CE undefined).

    Example:
        >>> corruption_errors({"fog": [0.1, 0.2, 0.3, 0.4, 0.5]}, {"fog": [0.2, 0.4, 0.6, 0.8, 1.0]})
        {'fog': 0.5}
    """
    out = {}
    for name in _names(errors, baseline_errors, corruptions):
        _check_lengths(name, errors[name], baseline_errors[name])
        base = _mean_error(name, baseline_errors[name], "baseline_errors")
        if base <= 0:
            raise ValueError(f"baseline_errors[{name!r}] is 0 at every severity: CE is undefined for {name!r}")
        out[name] = _mean_error(name, errors[name], "errors") / base
    return out


def mce(errors: Mapping[str, Sequence[float]], baseline_errors: Mapping[str, float | Sequence[float]] = ALEXNET_ERRORS,
        corruptions: Sequence[str] | None = None) -> float:
    """Mean Corruption Error: the mean over corruptions of :func:`corruption_errors` (a ratio; x100 for %).

    Example:
        >>> errors = {"fog": [0.1, 0.2, 0.3, 0.4, 0.5], "contrast": [0.2] * 5}
        >>> baseline = {"fog": [0.2, 0.4, 0.6, 0.8, 1.0], "contrast": [0.4] * 5}
        >>> mce(errors, baseline)
        0.5
    """
    ces = corruption_errors(errors, baseline_errors, corruptions)
    return sum(ces.values()) / len(ces)


def relative_corruption_errors(errors: Mapping[str, Sequence[float]], clean_error: float,
                               baseline_errors: Mapping[str, float | Sequence[float]], baseline_clean_error: float,
                               corruptions: Sequence[str] | None = None) -> dict[str, float]:
    """``sum_s (E_{s,c} - E_clean) / sum_s (E^b_{s,c} - E^b_clean)`` per corruption.

    The run and baseline values of each corruption follow :func:`corruption_errors`' rule (same length,
    or a baseline scalar that is the mean over the same severities).

    Raises:
        ValueError: as :func:`corruption_errors`, or a baseline whose error on a corruption equals its
            clean error (relative CE undefined).

    Example:
        >>> relative_corruption_errors({"fog": [0.3, 0.5]}, 0.1, {"fog": [0.4, 0.8]}, 0.2)  # 0.3 / 0.4
        {'fog': 0.75}
    """
    clean, base_clean = (_mean_error("clean", v, what) for v, what in
                         ((clean_error, "clean_error"), (baseline_clean_error, "baseline_clean_error")))
    out = {}
    for name in _names(errors, baseline_errors, corruptions):
        _check_lengths(name, errors[name], baseline_errors[name])
        denominator = _mean_error(name, baseline_errors[name], "baseline_errors") - base_clean
        if abs(denominator) <= 1e-12:  # 0 up to the rounding of a mean of fractions
            raise ValueError(f"the baseline's error on {name!r} equals its clean error: relative CE is undefined")
        out[name] = (_mean_error(name, errors[name], "errors") - clean) / denominator
    return out


def relative_mce(errors: Mapping[str, Sequence[float]], clean_error: float,
                 baseline_errors: Mapping[str, float | Sequence[float]] = ALEXNET_ERRORS,
                 baseline_clean_error: float = ALEXNET_CLEAN_ERROR, corruptions: Sequence[str] | None = None) -> float:
    """Relative mCE: the mean over corruptions of :func:`relative_corruption_errors` (a ratio).

    Example:
        >>> relative_mce({"fog": [0.3] * 5}, 0.1, {"fog": [0.6] * 5}, 0.2)
        0.5
    """
    rel = relative_corruption_errors(errors, clean_error, baseline_errors, baseline_clean_error, corruptions)
    return sum(rel.values()) / len(rel)
