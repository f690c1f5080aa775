"""``MixedDataset``: real and synthetic items behind one deterministic index map.

Position ``p`` of a ``MixedDataset`` is either real item ``j`` or synthetic item ``j``; which one is
fixed at construction by a seeded permutation (a pure function of ``(seed, counts)``), so every
worker and process sees the same map. Both kinds of item come out in one format: an image
tensor ``(C, H, W)`` of one dtype and shape, and an ``int`` label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from genaug.data.synthetic import (SyntheticDataset, check_dtype, convert_images, index_seeds, stream_key,
                                   _as_index, _check_positive_int)
from genaug.transforms.base import check_seed

__all__ = ["MixedDataset"]

STREAM_MIX, STREAM_REAL_SUBSET, STREAM_SYNTHETIC_SUBSET = 11, 12, 13


def _seeded_order(seed: int, stream: int, n: int) -> np.ndarray:
    """A permutation of ``range(n)``: indices sorted by their per-index hash (version-proof, no RNG library)."""
    return np.argsort(index_seeds(stream_key(seed, stream), np.arange(n, dtype=np.int64)), kind="stable")


def _image_chw(image: Any, where: str) -> torch.Tensor:
    """A tensor ``(C, H, W)`` (``(H, W)`` gets a channel axis) or a PIL image / NumPy ``(H, W[, C])`` array."""
    if isinstance(image, torch.Tensor):
        if image.dim() == 2:
            image = image[None]
        if image.dim() != 3:
            raise ValueError(f"{where}: images must be (C, H, W) or (H, W); got shape {tuple(image.shape)}")
        if image.dtype != torch.uint8 and not image.dtype.is_floating_point:
            raise ValueError(f"{where}: images must be uint8 (0..255) or float (0..1); got {image.dtype}")
        return image
    if (hasattr(image, "size") and hasattr(image, "mode")) or isinstance(image, np.ndarray):  # PIL or NumPy
        from genaug.data.builtin import _to_uint8_chw

        return _to_uint8_chw(image)
    raise TypeError(f"{where}: the image must be a tensor, a PIL image or a NumPy array; got {type(image).__name__}")


def _int_label(label: Any, where: str) -> int:
    if isinstance(label, torch.Tensor):
        if label.numel() != 1 or label.dtype.is_floating_point or label.dtype == torch.bool:
            raise ValueError(f"{where}: MixedDataset needs integer class labels; got a {label.dtype} tensor of shape "
                             f"{tuple(label.shape)} (soft labels cannot be mixed with hard ones)")
        return int(label)
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
        raise ValueError(f"{where}: MixedDataset needs integer class labels; got {label!r} ({type(label).__name__})")
    return int(label)


def _split_item(item: Any, where: str) -> tuple[Any, Any]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise ValueError(f"{where}: items must be (image, label) pairs; got {type(item).__name__}")
    return item[0], item[1]


def _check_dataset(name: str, ds: Any) -> None:
    if not (hasattr(ds, "__len__") and hasattr(ds, "__getitem__")):
        raise TypeError(f"{name} must be a map-style dataset (len() and [i]) of (image, label) items; "
                        f"got {type(ds).__name__}")


class MixedDataset(Dataset):
    """A real and a synthetic dataset mixed by a deterministic index map.

    Args:
        real: map-style dataset of ``(image, label)`` items (e.g. ``genaug.data.load_builtin``,
            a torchvision dataset); images as tensors, PIL images or NumPy arrays. May be ``None``
            when ``synthetic_fraction=1``.
        synthetic: map-style dataset of ``(image, label)`` items, usually a :class:`SyntheticDataset`.
            May be ``None`` when ``synthetic_fraction=0``.
        synthetic_fraction: share of synthetic items, in ``[0, 1]``.
        seed: seed of the map (which positions are synthetic, and the subsets below).
        length: total number of items. ``None`` (default): every real item is used once, and
            ``length = round(len(real) / (1 - synthetic_fraction))`` (``len(synthetic)`` when the
            fraction is 1). Given: ``round(synthetic_fraction * length)`` synthetic items and the
            rest real. ``round`` rounds halves up. Exact counts: :attr:`num_real`,
            :attr:`num_synthetic`.
        dtype: the items' image dtype (``torch.uint8`` or floating); ``None``: the real images'
            (the synthetic images' when no real item is used).

    Which items: when fewer real items are used than ``real`` holds, a seeded random subset
    (real datasets are often sorted by class); synthetic items are ``synthetic[0:num_synthetic]``
    for a :class:`SyntheticDataset` (its items are already random and its prefixes class-balanced,
    and a prefix generates the fewest chunks), a seeded random subset otherwise. Asking for more
    synthetic items than ``synthetic`` holds is an error (nothing is reused silently).

    Format: images become ``(C, H, W)`` tensors of ``dtype`` (uint8 0..255 <-> float 0..1);
    labels become ``int``. Real and synthetic images must have the same channels and size, else
    a ``ValueError`` at construction says how to make them agree.

    Example:
        >>> import genaug as ga
        >>> from torch.utils.data import Subset
        >>> real = Subset(ga.data.load_builtin("mnist5k", "train"), range(0, 4000, 40))   # 100 real digits
        >>> mixed = ga.MixedDataset(real, ga.SyntheticDataset("mnist-cgan", 100), synthetic_fraction=0.5)
        >>> len(mixed), mixed.num_real, mixed.num_synthetic
        (200, 100, 100)
    """

    def __init__(self, real: Dataset | None, synthetic: Dataset | None, synthetic_fraction: float,
                 seed: int = 0, *, length: int | None = None, dtype: torch.dtype | str | None = None) -> None:
        f = synthetic_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)):
            raise TypeError(f"synthetic_fraction must be a number in [0, 1], got {f!r} ({type(f).__name__})")
        if not (math.isfinite(f) and 0.0 <= f <= 1.0):
            raise ValueError(f"synthetic_fraction must be in [0, 1], got {f!r}")
        self.synthetic_fraction = float(f)
        if seed is None:
            raise TypeError("seed must be an int, got None")
        self.seed = check_seed("seed", seed)
        if length is not None:
            length = _check_positive_int("length", length)
        self.dtype = None if dtype is None else check_dtype(dtype)
        if real is None and f < 1:
            raise ValueError(f"real=None is only allowed with synthetic_fraction=1; got {f}")
        if synthetic is None and f > 0:
            raise ValueError(f"synthetic=None is only allowed with synthetic_fraction=0; got {f}")
        if real is not None:
            _check_dataset("real", real)
        if synthetic is not None:
            _check_dataset("synthetic", synthetic)
        self.real, self.synthetic = real, synthetic
        n_real_avail = len(real) if real is not None else 0  # type: ignore[arg-type]
        n_syn_avail = len(synthetic) if synthetic is not None else 0  # type: ignore[arg-type]

        if length is None:
            if f == 1.0:
                n_real, n_syn = 0, n_syn_avail
            else:
                n_real = n_real_avail
                n_syn = math.floor(n_real / (1.0 - f) + 0.5) - n_real
        else:
            n_syn = math.floor(f * length + 0.5)
            n_real = length - n_syn
        if n_real + n_syn == 0:
            raise ValueError(f"this MixedDataset would be empty (len(real)={n_real_avail}, "
                             f"len(synthetic)={n_syn_avail}, synthetic_fraction={f}, length={length})")
        if n_real > n_real_avail:
            raise ValueError(f"length={length} with synthetic_fraction={f} needs {n_real} real items but real has only "
                             f"{n_real_avail}; lower length or raise synthetic_fraction")
        if n_syn > n_syn_avail:
            raise ValueError(f"synthetic_fraction={f} of {n_real + n_syn} items needs {n_syn} synthetic items but "
                             f"synthetic has only {n_syn_avail}; use a longer synthetic dataset (length >= {n_syn}) "
                             "or pass a smaller length=")
        self.num_real, self.num_synthetic = n_real, n_syn

        real_idx = np.arange(n_real, dtype=np.int64) if n_real == n_real_avail else \
            np.sort(_seeded_order(self.seed, STREAM_REAL_SUBSET, n_real_avail)[:n_real])
        if isinstance(synthetic, SyntheticDataset) or n_syn == n_syn_avail:
            syn_idx = np.arange(n_syn, dtype=np.int64)
        else:
            syn_idx = np.sort(_seeded_order(self.seed, STREAM_SYNTHETIC_SUBSET, n_syn_avail)[:n_syn])
        entries = _seeded_order(self.seed, STREAM_MIX, n_real + n_syn)  # position p holds entry entries[p]
        is_syn = entries >= n_real
        inner = np.empty(n_real + n_syn, dtype=np.int64)
        inner[~is_syn] = real_idx[entries[~is_syn]]
        inner[is_syn] = syn_idx[entries[is_syn] - n_real]
        self.is_synthetic = torch.from_numpy(is_syn)
        """bool ``(len,)``: which positions hold a synthetic item."""
        self.inner_index = torch.from_numpy(inner)
        """int64 ``(len,)``: the index into ``real`` or ``synthetic`` of each position."""
        self._probe()

    # ------------------------------------------------------------------ format
    def _probe(self) -> None:
        """Read one item of each kind in use and fix the common format (or explain why there is none)."""
        fmt: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
        for name, flag in (("real", False), ("synthetic", True)):
            where = (self.is_synthetic == flag).nonzero()
            if len(where):
                ds = self.synthetic if flag else self.real
                j = int(self.inner_index[int(where[0])])
                image, label = _split_item(ds[j], f"{name}[{j}]")  # type: ignore[index]
                image = _image_chw(image, f"{name}[{j}]")
                _int_label(label, f"{name}[{j}]")
                fmt[name] = (tuple(image.shape), image.dtype)
        if "real" in fmt and "synthetic" in fmt and fmt["real"][0] != fmt["synthetic"][0]:
            (cr, hr, wr), (cs, hs, ws) = fmt["real"][0], fmt["synthetic"][0]
            raise ValueError(
                f"real images are {cr}x{hr}x{wr} (C x H x W) but synthetic images are {cs}x{hs}x{ws}; make them agree "
                "before mixing: give the SyntheticDataset a transform that resizes (e.g. ga.Resize) or converts "
                "channels, or give the real dataset a torchvision Resize / Grayscale transform")
        self.image_shape = fmt.get("real", fmt.get("synthetic"))[0]  # type: ignore[index]
        if self.dtype is None:
            self.dtype = fmt.get("real", fmt.get("synthetic"))[1]  # type: ignore[index]

    def _convert(self, item: Any, where: str) -> tuple[torch.Tensor, int]:
        image, label = _split_item(item, where)
        image = _image_chw(image, where)
        if tuple(image.shape) != self.image_shape:
            raise ValueError(f"{where}: image shape {tuple(image.shape)} differs from the mixed dataset's "
                             f"{self.image_shape}; every item must have one shape")
        assert self.dtype is not None
        return convert_images(image, self.dtype), _int_label(label, where)

    # ------------------------------------------------------------------ Dataset protocol
    def __len__(self) -> int:
        return self.num_real + self.num_synthetic

    def _check_index(self, index: Any) -> int:
        i = _as_index("index", index)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {index} is out of range for a MixedDataset of length {n}")
        return i

    def source(self, index: int) -> tuple[str, int]:
        """``("real", j)`` or ``("synthetic", j)``: where position ``index`` comes from."""
        i = self._check_index(index)
        return ("synthetic" if bool(self.is_synthetic[i]) else "real"), int(self.inner_index[i])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        kind, j = self.source(index)
        ds = self.synthetic if kind == "synthetic" else self.real
        return self._convert(ds[j], f"{kind}[{j}]")  # type: ignore[index]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, int]]:
        """Batched fetch for ``DataLoader``: synthetic items go through one ``get_batch`` call."""
        out: list[Any] = [None] * len(indices)
        syn: list[tuple[int, int]] = []
        for k, index in enumerate(indices):
            kind, j = self.source(index)
            if kind == "synthetic" and hasattr(self.synthetic, "get_batch"):
                syn.append((k, j))
            else:
                out[k] = self[index]
        if syn:
            images, labels = self.synthetic.get_batch([j for _, j in syn])  # type: ignore[union-attr]
            for (k, j), image, label in zip(syn, images, labels):
                out[k] = self._convert((image, label), f"synthetic[{j}]")
        return out

    @property
    def actual_synthetic_fraction(self) -> float:
        """``num_synthetic / len(self)``: the fraction the map really has (the requested one, rounded)."""
        return self.num_synthetic / len(self)

    def describe(self) -> dict[str, Any]:
        """JSON-able facts that fix the map (plus the synthetic dataset's own ``describe()`` when it has one)."""
        syn = self.synthetic.describe() if hasattr(self.synthetic, "describe") else type(self.synthetic).__name__
        return {"type": "MixedDataset", "seed": self.seed, "synthetic_fraction": self.synthetic_fraction,
                "num_real": self.num_real, "num_synthetic": self.num_synthetic,
                "real": type(self.real).__name__ if self.real is not None else None, "synthetic": syn,
                "dtype": str(self.dtype).replace("torch.", ""), "image_shape": list(self.image_shape)}

    def __repr__(self) -> str:
        return (f"MixedDataset(len={len(self)}, num_real={self.num_real}, num_synthetic={self.num_synthetic}, "
                f"synthetic_fraction={self.synthetic_fraction}, seed={self.seed}, dtype={self.dtype})")
