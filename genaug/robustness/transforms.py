"""Corruptions as genaug transforms: :class:`Corruption` and :class:`RandomCorruption`.

They are ``"pixel"`` ops, so everything a genaug transform gets comes for free: ``Compose``,
``OneOf``, per-sample ``p``, replay with ``params=``, ``to_dict`` / ``from_dict``, the torchvision
and albumentations adapters, chunked CPU execution. Their params are one seed per sample
(``RandomCorruption`` adds the corruption index and severity of each sample): every random field
of a corruption is a pure function of the seed (:mod:`genaug.robustness._random`), so replay needs
nothing else and a batch equals each sample run alone.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from genaug.robustness.corruptions import CORRUPTIONS, apply_corruption, check_name, check_severity
from genaug.robustness.tables import ALL, BENCHMARK, EXTRA, check_table, table_for_size
from genaug.transforms.base import Params, Transform, to_device

#: Names accepted for groups of corruptions by ``RandomCorruption(names=...)``.
GROUPS: dict[str, tuple[str, ...]] = {"benchmark": BENCHMARK, "extra": EXTRA, "all": ALL}


def _seeds(n: int, generator: torch.Generator) -> torch.Tensor:
    # One draw per call; consecutive seeds are fine (every use hashes them: _random.derive).
    return torch.randint(0, 2**62, (1,), generator=generator) + torch.arange(n)


class Corruption(Transform):
    """One of the 19 corruptions at a fixed severity, with the published parameters.

    Args:
        name: a name from ``genaug.robustness.CORRUPTIONS`` (e.g. ``"gaussian_noise"``, ``"fog"``).
        severity: 1..5.
        table: ``"cifar"``, ``"tiny-imagenet"``, ``"imagenet"``, or ``None`` to pick by the image's
            larger side (<= 32 px: CIFAR-10-C, <= 64: Tiny-ImageNet-C, else ImageNet-C).
        p, same_on_batch, seed: as every genaug transform.

    Example:
        >>> import torch, genaug as ga
        >>> fog = ga.Corruption("fog", severity=3, seed=0)
        >>> x = torch.rand(4, 3, 32, 32)
        >>> out, params = fog(x, return_params=True)
        >>> torch.equal(fog(x, params=params), out)
        True
    """

    needs_color_channels = True

    def __init__(self, name: str, severity: int, table: str | None = None, p: float = 1.0,
                 same_on_batch: bool = False, seed: int | None = None) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, seed=seed)
        self.name = check_name(name)
        self.severity = check_severity("severity", severity)
        self.table = check_table(table)

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        return {"seed": _seeds(n, generator)}

    def apply(self, image: torch.Tensor, params: Params) -> torch.Tensor:
        table = self.table or table_for_size(tuple(image.shape[-2:]))
        return apply_corruption(image, self.name, self.severity, table, params["seed"].reshape(-1).cpu())


def _severity_range(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"severity must be an int in 1..5 or a (min, max) pair of them, got {value!r}")
        lo, hi = (check_severity("severity", v) for v in value)
        if lo > hi:
            raise ValueError(f"severity must be (min, max) with min <= max, got {tuple(value)!r}")
        return lo, hi
    s = check_severity("severity", value)
    return s, s


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        if value in GROUPS:
            return GROUPS[value]
        return (check_name(value),)
    if not isinstance(value, (list, tuple)) or not value:
        raise TypeError(f"names must be a group name {sorted(GROUPS)}, a corruption name or a non-empty list of "
                        f"them, got {value!r}")
    names = tuple(check_name(v) for v in value)
    if len(set(names)) != len(names):
        raise ValueError(f"names has duplicates: {value!r}")
    return names


class RandomCorruption(Transform):
    """A corruption and a severity drawn per sample (uniformly) from ``names`` and ``severity``.

    Train on the 4 held-out corruptions (``names="extra"``) and test on the 15 of the benchmark,
    as the paper's protocol asks; corruptions and severities are drawn independently per sample.

    Args:
        names: ``"benchmark"`` (the 15), ``"extra"`` (speckle noise, Gaussian blur, spatter,
            saturate), ``"all"``, one corruption name, or a list of names.
        severity: an int in 1..5 or a ``(min, max)`` pair (inclusive).
        table: as :class:`Corruption`.
        p, same_on_batch, seed: as every genaug transform.

    Example:
        >>> import torch, genaug as ga
        >>> aug = ga.RandomCorruption(names="extra", severity=(1, 5), p=0.5, seed=0)
        >>> aug(torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)).dtype
        torch.uint8
    """

    needs_color_channels = True

    def __init__(self, names: str | Sequence[str] = "benchmark", severity: int | Sequence[int] = (1, 5),
                 table: str | None = None, p: float = 1.0, same_on_batch: bool = False,
                 seed: int | None = None) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, seed=seed)
        self.names = _names(names)
        self.severity = _severity_range(severity)
        self.table = check_table(table)

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        lo, hi = self.severity
        return {
            "corruption": torch.randint(0, len(self.names), (n,), generator=generator),
            "severity": torch.randint(lo, hi + 1, (n,), generator=generator),
            "seed": _seeds(n, generator),
        }

    def apply(self, image: torch.Tensor, params: Params) -> torch.Tensor:
        table = self.table or table_for_size(tuple(image.shape[-2:]))
        which = params["corruption"].reshape(-1).cpu()
        severity = params["severity"].reshape(-1).cpu()
        seeds = params["seed"].reshape(-1).cpu()
        if bool(((which < 0) | (which >= len(self.names))).any()) or bool(((severity < 1) | (severity > 5)).any()):
            raise ValueError("params hold a corruption index or severity out of range for this RandomCorruption")
        out = torch.empty_like(image)
        key = which * 8 + severity
        for k in torch.unique(key).tolist():  # one group per (corruption, severity) drawn: at most 95
            index = (key == k).nonzero().squeeze(1)
            name, s = self.names[k // 8], k % 8
            device_index = to_device(index, image.device)
            part = apply_corruption(image.index_select(0, device_index), name, s, table, seeds[index])
            out.index_copy_(0, device_index, part)
        return out


__all__ = ["Corruption", "RandomCorruption", "GROUPS", "CORRUPTIONS"]
