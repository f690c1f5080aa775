"""Geometric transforms: each contributes a per-sample 3x3 matrix (output → input pixel coordinates).

Angles are in degrees and counter-clockwise as seen on screen, about the image centre, for every op
(rotation, affine rotation and shear). Matrices are float64 and computed on the CPU (they are
``B x 9`` numbers); the image is resampled once per fused chain by
:func:`genaug.transforms.warp.warp_image`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from genaug.transforms.base import MAX_EXTENT, Params, Transform, check_range, check_size, uniform
from genaug.transforms.warp import WarpOptions

# ----------------------------------------------------------------------------- matrix helpers


# The matrix helpers work on float64 NumPy arrays: a call builds a few B x 9 matrices, and a NumPy
# op on a few numbers costs ~1 us where a torch op costs ~5 us (benchmarks/RESULTS.md, "Per-image
# calls"). The ops' ``matrix`` methods hand the result over as a CPU tensor (``torch.from_numpy``:
# no copy). Trigonometric functions stay torch's, so the numbers are those of the torch version.


def _np(values: Any) -> Any:
    """Parameters as float64 NumPy (a CPU float64 tensor is viewed, not copied); a number stays a number."""
    if isinstance(values, (int, float)):
        return values
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    return values.detach().to(device="cpu", dtype=torch.float64).numpy()


def _tensor(m: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(m))


def _batch_eye(n: int) -> np.ndarray:
    m = np.zeros((n, 3, 3))
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = 1.0
    return m


def translation(tx: torch.Tensor | np.ndarray, ty: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(B, 3, 3)`` translation matrices (float64 NumPy)."""
    tx = _np(tx)
    m = _batch_eye(tx.shape[0])
    m[:, 0, 2], m[:, 1, 2] = tx, _np(ty)
    return m


def linear(a: Any, b: Any, c: Any, d: Any) -> np.ndarray:
    """``(B, 3, 3)`` matrices with linear part ``[[a, b], [c, d]]`` and no translation (float64 NumPy).

    Each entry is a ``(B,)`` array or tensor, or a number for all samples (the batch size comes from ``a``).
    """
    a = _np(a)
    m = _batch_eye(a.shape[0])
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = a, _np(b), _np(c), _np(d)
    return m


def about_center(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Conjugate ``m`` so that it acts about the image centre instead of the origin."""
    h, w = size
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    # T(c) @ m @ T(-c) maps x to L(x - c) + t + c: same linear part L, translation t + c - L c.
    out = m.copy()
    out[:, 0, 2] += cx - (m[:, 0, 0] * cx + m[:, 0, 1] * cy)
    out[:, 1, 2] += cy - (m[:, 1, 0] * cx + m[:, 1, 1] * cy)
    return out


def rotation(degrees: torch.Tensor) -> np.ndarray:
    """Forward counter-clockwise rotation (image y axis points down)."""
    r = torch.deg2rad(degrees.detach().to("cpu", torch.float64))
    cos, sin = torch.cos(r).numpy(), torch.sin(r).numpy()
    return linear(cos, sin, -sin, cos)


def box_matrix(box: torch.Tensor | np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """Output pixels → input pixels for cropping ``box`` = (left, top, width, height) and resizing it."""
    h, w = out_size
    box = _np(box)
    left, top, bw, bh = box[:, 0], box[:, 1], box[:, 2], box[:, 3]
    sx, sy = bw / w, bh / h
    m = linear(sx, 0.0, 0.0, sy)
    m[:, 0, 2] = left + 0.5 * sx - 0.5
    m[:, 1, 2] = top + 0.5 * sy - 0.5
    return m


def _integer_offsets(low: int, high: int, n: int, generator: torch.Generator) -> np.ndarray:
    """``n`` integers uniform in ``[low, high]`` (float64)."""
    u = torch.rand(n, generator=generator, dtype=torch.float64).numpy()
    return np.minimum(low + np.floor(u * (high - low + 1)), high)


# ----------------------------------------------------------------------------- base class


class GeometricTransform(Transform):
    """Base of the geometric ops: owns the warp options; subclasses implement ``_sample`` and ``matrix``.

    Args:
        interpolation: ``"bilinear"`` (default), ``"nearest"`` or ``"bicubic"``.
        padding_mode: ``"constant"`` (``fill``), ``"reflect"`` or ``"border"``.
        fill: value of areas outside the source for ``"constant"``, in 0..1 units (one per channel
            or one for all).
        antialias: pre-filter when the (fused) warp shrinks the image.
    """

    kind = "geometric"

    def __init__(
        self,
        p: float = 1.0,
        interpolation: str = "bilinear",
        padding_mode: str = "constant",
        fill: float | Sequence[float] = 0.0,
        antialias: bool = True,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, seed=seed)
        self.warp_options = WarpOptions(
            interpolation=interpolation,
            padding_mode=padding_mode,
            fill=tuple(fill) if isinstance(fill, (list, tuple)) else fill,
            antialias=antialias,
        )


class _SizedTransform(GeometricTransform):
    """Ops whose output has a fixed ``size`` (crops and resizes)."""

    def __init__(self, size: int | Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = check_size("size", size)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return self.size

    def matrix(self, params: Params, size: tuple[int, int]) -> torch.Tensor:
        return _tensor(box_matrix(params["box"], self.output_size(size)))

    def neutral_matrix(self, size: tuple[int, int], batch_size: int) -> torch.Tensor:
        """A skipped crop still gives its output size: it takes the centre crop (never a corner)."""
        out = self.output_size(size)
        return _tensor(box_matrix(_center_box(size, out, 1), out)).expand(batch_size, 3, 3)


def _center_box(size: tuple[int, int], out: tuple[int, int], n: int) -> torch.Tensor:
    (h, w), (oh, ow) = size, out
    # torchvision: a smaller crop starts at round((size - crop) / 2); a larger one is padded with
    # (crop - size) // 2 on the left / top (round() of a negative half would round to even instead)
    left = round((w - ow) / 2.0) if ow <= w else -((ow - w) // 2)
    top = round((h - oh) / 2.0) if oh <= h else -((oh - h) // 2)
    box = np.array([left, top, ow, oh], dtype=np.float64)
    return _tensor(np.tile(box, (n, 1)))


# ----------------------------------------------------------------------------- flips


class _AxisFlip(GeometricTransform):
    """Mirror along one image axis with probability ``p`` per sample (``axis`` 0: x, 1: y)."""

    axis: int

    def __init__(self, p: float = 0.5, same_on_batch: bool = False, seed: int | None = None) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, seed=seed, antialias=False)

    def matrix(self, params: Params, size: tuple[int, int]) -> torch.Tensor:
        extent = size[1] if self.axis == 0 else size[0]
        m = _batch_eye(params["apply"].shape[0])
        m[:, self.axis, self.axis], m[:, self.axis, 2] = -1.0, extent - 1.0
        return _tensor(m)


class RandomHorizontalFlip(_AxisFlip):
    """Mirror left-right with probability ``p`` per sample (torchvision's ``RandomHorizontalFlip``).

    Example:
        >>> import torch, genaug as ga
        >>> x = torch.arange(4.0).view(1, 1, 1, 4)
        >>> ga.RandomHorizontalFlip(p=1.0)(x).flatten().tolist()
        [3.0, 2.0, 1.0, 0.0]
    """

    axis = 0


class RandomVerticalFlip(_AxisFlip):
    """Mirror top-bottom with probability ``p`` per sample (torchvision's ``RandomVerticalFlip``).

    Example:
        >>> import torch, genaug as ga
        >>> x = torch.arange(3.0).view(1, 1, 3, 1)
        >>> ga.RandomVerticalFlip(p=1.0)(x).flatten().tolist()
        [2.0, 1.0, 0.0]
    """

    axis = 1


# ----------------------------------------------------------------------------- rotation, scale, affine


class RandomRotation(GeometricTransform):
    """Rotate by an angle drawn per sample from ``degrees`` (counter-clockwise, about the centre).

    Args:
        degrees: ``d`` for ``(-d, d)`` or a ``(min, max)`` range, in degrees.
        **kwargs: ``p``, ``interpolation``, ``padding_mode``, ``fill``, ``antialias``, ``same_on_batch``, ``seed``.

    Example:
        >>> import torch, genaug as ga
        >>> rot = ga.RandomRotation(degrees=30, seed=0)
        >>> rot(torch.rand(8, 3, 32, 32)).shape
        torch.Size([8, 3, 32, 32])
    """

    def __init__(
        self,
        degrees: float | Sequence[float],
        p: float = 1.0,
        interpolation: str = "bilinear",
        padding_mode: str = "constant",
        fill: float | Sequence[float] = 0.0,
        antialias: bool = True,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(p, interpolation, padding_mode, fill, antialias, same_on_batch, seed)
        self.degrees = check_range("degrees", degrees, center=0.0)

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        return {"angle": uniform(*self.degrees, n, generator)}

    def matrix(self, params: Params, size: tuple[int, int]) -> torch.Tensor:
        return _tensor(about_center(rotation(-params["angle"]), size))  # inverse of the forward rotation


class RandomScale(GeometricTransform):
    """Zoom about the centre by a factor drawn per sample from ``scale`` (> 1 enlarges the content).

    Example:
        >>> import torch, genaug as ga
        >>> ga.RandomScale(scale=(0.8, 1.2), seed=0)(torch.rand(2, 3, 16, 16)).shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self,
        scale: float | Sequence[float] = (0.8, 1.2),
        p: float = 1.0,
        interpolation: str = "bilinear",
        padding_mode: str = "constant",
        fill: float | Sequence[float] = 0.0,
        antialias: bool = True,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(p, interpolation, padding_mode, fill, antialias, same_on_batch, seed)
        self.scale = check_range("scale", scale, low=1e-6)

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        return {"scale": uniform(*self.scale, n, generator)}

    def matrix(self, params: Params, size: tuple[int, int]) -> torch.Tensor:
        inv = 1.0 / _np(params["scale"])
        return _tensor(about_center(linear(inv, 0.0, 0.0, inv), size))


def _shear_ranges(shear: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    """torchvision's shear argument: ``d``, ``(min, max)`` for x, or ``(xmin, xmax, ymin, ymax)``.

    Every angle must be finite and strictly within (-90, 90) degrees.
    """
    if shear is None:
        return (0.0, 0.0), (0.0, 0.0)
    if isinstance(shear, (list, tuple)) and len(shear) not in (2, 4):
        raise TypeError(
            f"shear must be a number, (min, max) or (xmin, xmax, ymin, ymax), in degrees within (-90, 90), "
            f"got {shear!r} ({len(shear)} values)"
        )
    if isinstance(shear, (list, tuple)) and len(shear) == 4:
        ranges = check_range("shear[0:2]", tuple(shear[:2])), check_range("shear[2:4]", tuple(shear[2:]))
    else:
        ranges = check_range("shear", shear, center=0.0), (0.0, 0.0)
    for lo, hi in ranges:
        if lo <= -90 or hi >= 90:
            raise ValueError(f"shear angles must lie strictly within (-90, 90) degrees, got ({lo}, {hi}) from {shear!r}")
    return ranges


class RandomAffine(GeometricTransform):
    """Rotation, translation, scale and shear in one op (torchvision's ``RandomAffine`` arguments).

    Unlike torchvision's functional ``affine`` (clockwise), the angle and the shear are
    counter-clockwise, so ``RandomAffine(degrees=(a, a))`` equals ``RandomRotation(degrees=(a, a))``.

    Args:
        degrees: ``d`` for ``(-d, d)`` or ``(min, max)``.
        translate: ``(a, b)``: horizontal shift drawn from ``(-a*W, a*W)``, vertical from ``(-b*H, b*H)``.
        scale: ``(min, max)`` zoom factor.
        shear: ``d``, ``(min, max)`` (x shear) or ``(xmin, xmax, ymin, ymax)``, in degrees.

    Example:
        >>> import torch, genaug as ga
        >>> aff = ga.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5, seed=0)
        >>> aff(torch.rand(4, 3, 32, 32)).shape
        torch.Size([4, 3, 32, 32])
    """

    def __init__(
        self,
        degrees: float | Sequence[float],
        translate: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
        shear: float | Sequence[float] | None = None,
        p: float = 1.0,
        interpolation: str = "bilinear",
        padding_mode: str = "constant",
        fill: float | Sequence[float] = 0.0,
        antialias: bool = True,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(p, interpolation, padding_mode, fill, antialias, same_on_batch, seed)
        self.degrees = check_range("degrees", degrees, center=0.0)
        if translate is None:
            self.translate = (0.0, 0.0)
        else:
            if (
                not isinstance(translate, (list, tuple))
                or len(translate) != 2
                or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in translate)
            ):
                raise TypeError(f"translate must be a pair (a, b) of fractions in [0, 1], got {translate!r}")
            if not all(0.0 <= t <= 1.0 for t in translate):  # (also false for NaN)
                raise ValueError(f"translate values must be in [0, 1] (finite fractions), got {tuple(translate)!r}")
            self.translate = (float(translate[0]), float(translate[1]))
        self.scale = (1.0, 1.0) if scale is None else check_range("scale", scale, low=1e-6)
        self.shear_x, self.shear_y = _shear_ranges(shear)

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        h, w = size
        a, b = self.translate
        return {
            "angle": uniform(*self.degrees, n, generator),
            "translate": torch.stack(
                [uniform(-a * w, a * w, n, generator), uniform(-b * h, b * h, n, generator)], dim=1
            ),
            "scale": uniform(*self.scale, n, generator),
            "shear": torch.stack([uniform(*self.shear_x, n, generator), uniform(*self.shear_y, n, generator)], dim=1),
        }

    def matrix(self, params: Params, size: tuple[int, int]) -> torch.Tensor:
        return _tensor(affine_matrix(params["angle"], params["translate"], params["scale"], params["shear"], size))


def affine_matrix(
    angle: torch.Tensor, translate: torch.Tensor, scale: torch.Tensor, shear: torch.Tensor, size: tuple[int, int]
) -> np.ndarray:
    """Output → input matrix of ``T · C · R(angle) · S(scale) · SHy · SHx · C⁻¹`` (all counter-clockwise).

    This is torchvision's ``affine`` with the angle and shear negated.
    """
    from genaug.transforms.warp import affine_inverse

    scale, shear, translate = _np(scale), shear.detach().to("cpu", torch.float64), _np(translate)
    tan_x, tan_y = torch.tan(torch.deg2rad(shear[:, 0])).numpy(), torch.tan(torch.deg2rad(shear[:, 1])).numpy()
    shear_x = linear(np.ones_like(scale), tan_x, 0.0, 1.0)
    shear_y = linear(np.ones_like(scale), 0.0, tan_y, 1.0)
    forward = rotation(angle) @ linear(scale, 0.0, 0.0, scale) @ shear_y @ shear_x
    forward = translation(translate[:, 0], translate[:, 1]) @ about_center(forward, size)
    return affine_inverse(forward)


# ----------------------------------------------------------------------------- crops and resizes


class Resize(_SizedTransform):
    """Resize to ``size``: ``(h, w)``, or an int for the shorter side keeping the aspect ratio.

    Antialiased when shrinking (``antialias=True``, as torchvision v2's default).

    Example:
        >>> import torch, genaug as ga
        >>> ga.Resize(16)(torch.rand(2, 3, 32, 64)).shape
        torch.Size([2, 3, 16, 32])
    """

    def __init__(
        self,
        size: int | Sequence[int],
        interpolation: str = "bilinear",
        antialias: bool = True,
    ) -> None:
        self.shorter_side = isinstance(size, int) and not isinstance(size, bool)
        super().__init__(size=size, interpolation=interpolation, antialias=antialias)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        if not self.shorter_side:
            return self.size
        h, w, s = size[0], size[1], self.size[0]
        return (s, max(1, int(s * w / h))) if h <= w else (max(1, int(s * h / w)), s)

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        return {"box": torch.tensor([0.0, 0.0, size[1], size[0]], dtype=torch.float64).expand(n, 4).clone()}

    def neutral_matrix(self, size: tuple[int, int], batch_size: int) -> torch.Tensor:
        """A skipped resize still resizes (it is deterministic): the whole image to the output size."""
        return self.matrix(self._sample(batch_size, size, torch.Generator()), size)


class CenterCrop(_SizedTransform):
    """Crop the central ``size`` region (padded with ``fill`` when larger than the image).

    Example:
        >>> import torch, genaug as ga
        >>> ga.CenterCrop(8)(torch.rand(3, 16, 16)).shape
        torch.Size([3, 8, 8])
    """

    def __init__(self, size: int | Sequence[int], fill: float | Sequence[float] = 0.0) -> None:
        super().__init__(size=size, fill=fill, antialias=False)

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        return {"box": _center_box(size, self.size, n)}


def _padding(padding: Any) -> tuple[int, int, int, int]:
    """RandomCrop's padding: ``None``, ``p``, ``(x, y)`` or ``(left, top, right, bottom)`` ints in [0, MAX_EXTENT]."""
    allowed = f"a non-negative int, (x, y) or (left, top, right, bottom) of ints in [0, {MAX_EXTENT}]"
    if padding is None:
        return (0, 0, 0, 0)
    values = (padding,) if not isinstance(padding, (list, tuple)) else tuple(padding)
    if len(values) not in (1, 2, 4):  # (a one-element sequence is torchvision's torchscript form)
        raise TypeError(f"padding must be {allowed}, got {padding!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TypeError(f"padding must be {allowed}, got {padding!r}")
    if not all(0 <= v <= MAX_EXTENT for v in values):
        raise ValueError(f"padding must be {allowed}, got {padding!r}")
    if len(values) == 1:
        return (values[0],) * 4  # type: ignore[return-value]
    if len(values) == 2:
        return (values[0], values[1], values[0], values[1])
    return values  # type: ignore[return-value]


class RandomCrop(_SizedTransform):
    """Crop a ``size`` region at a random integer offset (torchvision's ``RandomCrop``).

    Padding is virtual: the crop window may reach ``padding`` pixels outside the image and the
    warp fills that area per ``padding_mode``/``fill``; no padded copy is made.

    Args:
        size: ``(h, w)`` or an int.
        padding: ``int``, ``(pad_x, pad_y)`` or ``(left, top, right, bottom)``.
        pad_if_needed: pad when the image is smaller than ``size`` instead of raising.
        p: where not applied, the centre crop is taken.

    Example:
        >>> import torch, genaug as ga
        >>> ga.RandomCrop(24, padding=4, seed=0)(torch.rand(8, 3, 32, 32)).shape
        torch.Size([8, 3, 24, 24])
    """

    def __init__(
        self,
        size: int | Sequence[int],
        padding: int | Sequence[int] | None = None,
        pad_if_needed: bool = False,
        fill: float | Sequence[float] = 0.0,
        padding_mode: str = "constant",
        p: float = 1.0,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            size=size, p=p, fill=fill, padding_mode=padding_mode, antialias=False, same_on_batch=same_on_batch, seed=seed
        )
        self.padding = _padding(padding)
        if not isinstance(pad_if_needed, bool):
            raise TypeError(f"pad_if_needed must be a bool, got {pad_if_needed!r} ({type(pad_if_needed).__name__})")
        self.pad_if_needed = pad_if_needed

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        (h, w), (ch, cw) = size, self.size
        left, top, right, bottom = self.padding
        extra_y, extra_x = max(0, ch - (h + top + bottom)), max(0, cw - (w + left + right))
        if (extra_x or extra_y) and not self.pad_if_needed:
            raise ValueError(
                f"RandomCrop size {self.size} is larger than the padded input ({h + top + bottom}, {w + left + right}); "
                "pass pad_if_needed=True or a larger padding"
            )
        xs = _integer_offsets(-left - extra_x, w + right + extra_x - cw, n, generator)
        ys = _integer_offsets(-top - extra_y, h + bottom + extra_y - ch, n, generator)
        box = np.empty((n, 4))
        box[:, 0], box[:, 1], box[:, 2], box[:, 3] = xs, ys, cw, ch
        return {"box": _tensor(box)}



class RandomResizedCrop(_SizedTransform):
    """Crop a random area and aspect ratio and resize it to ``size`` (torchvision's ``RandomResizedCrop``).

    The 10 attempts torchvision makes per image are drawn for the whole batch at once; samples
    without a valid attempt fall back to torchvision's centre crop of clamped ratio.

    Args:
        size: output ``(h, w)`` or an int.
        scale: range of the crop's area as a fraction of the image's.
        ratio: range of the aspect ratio (width / height), sampled log-uniformly.
        p: where not applied, the whole image is resized to ``size``.

    Example:
        >>> import torch, genaug as ga
        >>> ga.RandomResizedCrop(32, seed=0)(torch.rand(4, 3, 64, 48)).shape
        torch.Size([4, 3, 32, 32])
    """

    attempts = 10

    def __init__(
        self,
        size: int | Sequence[int],
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
        p: float = 1.0,
        interpolation: str = "bilinear",
        antialias: bool = True,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            size=size, p=p, interpolation=interpolation, antialias=antialias, same_on_batch=same_on_batch, seed=seed
        )
        self.scale = check_range("scale", scale, low=0.0)
        self.ratio = check_range("ratio", ratio, low=1e-6)
        if self.scale[1] <= 0:
            raise ValueError(f"scale must allow a positive area (max > 0), got {scale!r}")

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        h, w = size
        area = h * w
        k = self.attempts
        # drawn with torch's generator, the arithmetic in NumPy (a few numbers per sample)
        target = area * uniform(*self.scale, n * k, generator).numpy().reshape(n, k)
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(uniform(log_lo, log_hi, n * k, generator)).numpy().reshape(n, k)
        cw = np.round(np.sqrt(target * aspect))
        ch = np.round(np.sqrt(target / aspect))
        ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
        first = ok.argmax(axis=1)  # the first valid attempt (0 when none is: the fallback below)
        rows = np.arange(n)
        cw, ch = cw[rows, first], ch[rows, first]
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64).numpy()
        left = np.floor(u[:, 0] * (w - cw + 1))
        top = np.floor(u[:, 1] * (h - ch + 1))
        # torchvision's fallback: the central crop with the ratio clamped into range.
        in_ratio = w / h
        if in_ratio < self.ratio[0]:
            fw, fh = w, int(round(w / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            fw, fh = int(round(h * self.ratio[1])), h
        else:
            fw, fh = w, h
        fallback = np.array([(w - fw) // 2, (h - fh) // 2, fw, fh], dtype=np.float64)
        box = np.stack([left, top, cw, ch], axis=1)
        return {"box": _tensor(np.where(ok.any(axis=1, keepdims=True), box, fallback))}

    def neutral_matrix(self, size: tuple[int, int], batch_size: int) -> torch.Tensor:
        full = np.array([[0.0, 0.0, size[1], size[0]]])
        return _tensor(box_matrix(full, self.size)).expand(batch_size, 3, 3)
