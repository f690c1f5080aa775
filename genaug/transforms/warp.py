"""One resampling for a whole chain of geometric ops, and the matching target mapping.

Matrices map *output* pixel coordinates to *input* pixel coordinates, with the centre of pixel
``(row i, col j)`` at ``(x=j, y=i)``. Boxes and keypoints use torchvision's continuous convention
(pixel ``j`` spans ``[j, j+1)``), so they are shifted by half a pixel around the mapping. Masks are
not resampled: each output pixel copies the input pixel that contains its source point
(:func:`warp_masks`), exactly, whatever their dtype.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from kornia.filters import get_gaussian_kernel1d

from genaug.transforms.base import on_selected, scratch, to_device
from genaug.transforms.photometric import separable_blur

if TYPE_CHECKING:
    from genaug.transforms.pipeline import Batch

T = TypeVar("T", torch.Tensor, np.ndarray)

INTERPOLATIONS = ("bilinear", "nearest", "bicubic")
PADDING_MODES = ("constant", "reflect", "border")
_GRID_PADDING = {"constant": "zeros", "reflect": "reflection", "border": "border"}


@dataclass(frozen=True)
class WarpOptions:
    """How a fused warp resamples: interpolation, what fills areas outside the source, antialiasing.

    Args:
        interpolation: ``"bilinear"``, ``"nearest"`` or ``"bicubic"``.
        padding_mode: ``"constant"`` (``fill``), ``"reflect"`` (mirror at the border) or ``"border"``
            (repeat the edge pixel).
        fill: constant fill, one number or one per channel, in 0..1 units for every dtype
            (for a uint8 image, ``fill=0.5`` gives 128).
        antialias: low-pass filter before a warp that shrinks the image, with a per-sample
            Gaussian of sigma ``0.5 * sqrt(s**2 - 1)`` for a shrink factor ``s``.
    """

    interpolation: str = "bilinear"
    padding_mode: str = "constant"
    fill: float | tuple[float, ...] = 0.0
    antialias: bool = True

    def __post_init__(self) -> None:
        from genaug.transforms.base import check_fill  # (base is imported first: no cycle)

        for name, allowed in (("interpolation", INTERPOLATIONS), ("padding_mode", PADDING_MODES)):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be one of {allowed}, got {value!r} ({type(value).__name__})")
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        # finite, in 0..1, one value or one per channel; stored as a float or a tuple of floats
        object.__setattr__(self, "fill", check_fill("fill", self.fill))
        if not isinstance(self.antialias, bool):
            raise TypeError(f"antialias must be a bool, got {self.antialias!r} ({type(self.antialias).__name__})")

    def check_channels(self, channels: int) -> None:
        """Raise ``ValueError`` unless ``fill`` suits an image with ``channels`` channels.

        A per-channel fill needs one value or one per channel; its count can only be checked
        against the image, so the executor calls this before warping. Only ``padding_mode=
        "constant"`` uses the fill; the other modes ignore it.

        Example:
            >>> WarpOptions(fill=(0.5, 0.5, 0.5)).check_channels(1)
            Traceback (most recent call last):
            ...
            ValueError: fill has 3 values (one per channel) but the image has 1 channel: give one value per channel or a single number
        """
        fill = self.fill
        if self.padding_mode == "constant" and isinstance(fill, tuple) and len(fill) not in (1, channels):
            raise ValueError(
                f"fill has {len(fill)} values (one per channel) but the image has {channels} "
                f"channel{'s' if channels != 1 else ''}: give one value per channel or a single number"
            )


def affine_inverse(m: T) -> T:
    """Closed-form inverse of a batch of affine 3x3 matrices (last row ``0 0 1``): a tensor or a NumPy array."""
    a, b, tx = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    c, d, ty = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    det = a * d - b * c
    inv = torch.zeros_like(m) if isinstance(m, torch.Tensor) else np.zeros_like(m)
    inv[:, 0, 0], inv[:, 0, 1] = d / det, -b / det
    inv[:, 1, 0], inv[:, 1, 1] = -c / det, a / det
    inv[:, 0, 2] = -(inv[:, 0, 0] * tx + inv[:, 0, 1] * ty)
    inv[:, 1, 2] = -(inv[:, 1, 0] * tx + inv[:, 1, 1] * ty)
    inv[:, 2, 2] = 1.0
    return inv


def _host(matrix: torch.Tensor | np.ndarray) -> np.ndarray:
    """The fused matrices as a float64 NumPy array (an array is returned as it is).

    The decisions and coefficients derived from them (``B x 9`` numbers) are computed in NumPy:
    a NumPy op on a few numbers costs ~1 us where a torch op costs ~4-5 us, and a call makes
    dozens of them (benchmarks/RESULTS.md, "Per-image calls").
    """
    if isinstance(matrix, np.ndarray):
        return matrix
    return matrix.detach().to(device="cpu", dtype=torch.float64).numpy()


def is_pixel_permutation(matrix: torch.Tensor | np.ndarray) -> bool:
    """True when every matrix maps pixel centres onto pixel centres (flips, integer shifts)."""
    m = _host(matrix)
    if m.size == 0:
        return False
    linear, shift = m[:, :2, :2], m[:, :2, 2]
    return bool(
        ((linear == 0) | (np.abs(linear) == 1)).all()
        and (linear[:, 0, 1] == 0).all()
        and (linear[:, 1, 0] == 0).all()
        and (linear[:, 0, 0] != 0).all()
        and (linear[:, 1, 1] != 0).all()
        and (shift == np.round(shift)).all()
    )


def _normalizer(h: int, w: int) -> np.ndarray:
    """Pixel-centre coordinates → grid_sample's [-1, 1] coordinates (align_corners=False)."""
    return np.array([[2.0 / w, 0.0, 1.0 / w - 1.0], [0.0, 2.0 / h, 1.0 / h - 1.0], [0.0, 0.0, 1.0]])


def _denormalizer(h: int, w: int) -> np.ndarray:
    """The inverse of :func:`_normalizer`: [-1, 1] coordinates → pixel centres."""
    return np.array([[w / 2.0, 0.0, (w - 1) / 2.0], [0.0, h / 2.0, (h - 1) / 2.0], [0.0, 0.0, 1.0]])


def sampling_grid(matrix: torch.Tensor | np.ndarray, in_size: tuple[int, int], out_size: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    """The ``grid_sample`` grid ``(B, h, w, 2)`` for a pixel-coordinate matrix (the matrix's part computed on the CPU).

    The grid is a view of a planar ``(B, 2, h, w)`` tensor (strides ``(2hw, w, 1, hw)``), a
    :func:`~genaug.transforms.base.scratch` buffer on the CPU: use it before the next call.
    """
    theta_np = (_normalizer(*in_size) @ _host(matrix) @ _denormalizer(*out_size))[:, :2, :]
    theta = to_device(torch.from_numpy(theta_np), like.device, like.dtype)
    h, w = out_size
    # Same values as F.affine_grid(align_corners=False), built by broadcasting: the grid is affine
    # in the output coordinates, so each component is a (B,1,w) row plus a (B,h,1) column.
    # This is ~20x faster than affine_grid's batched (h*w, 3) x (3, 2) matmul on CPU.
    xs = torch.linspace(-1.0 + 1.0 / w, 1.0 - 1.0 / w, w, dtype=like.dtype, device=like.device)
    ys = torch.linspace(-1.0 + 1.0 / h, 1.0 - 1.0 / h, h, dtype=like.dtype, device=like.device)
    along_x = theta[:, :, 0:1] * xs  # (B, 2, w): both grid components at once
    along_y = theta[:, :, 1:2] * ys + theta[:, :, 2:3]  # (B, 2, h)
    # Built planar, (B, 2, h, w), and handed over as its (B, h, w, 2) view: the add then runs along
    # contiguous rows (an interleaved (B, h, w, 2) output made its inner loop 2 long: 3-7x slower
    # on the CPU), and grid_sample reads a planar grid as fast as an interleaved one.
    # It lives in a reused scratch buffer: use it before the next call.
    grid = scratch("warp_grid", (matrix.shape[0], 2, h, w), like.dtype, like.device)
    return torch.add(along_x.unsqueeze(2), along_y.unsqueeze(3), out=grid).permute(0, 2, 3, 1)


def _footprint_scale(m: np.ndarray) -> np.ndarray:
    """Input-space length ``(B, 2)`` of one output step along x and y (1 for rotations and flips)."""
    linear = m[:, :2, :2]
    return np.maximum(np.sqrt(linear[:, 0] ** 2 + linear[:, 1] ** 2), 1e-6)


def shrink_sigmas(matrix: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Per-sample antialiasing sigma ``(B, 2)`` as (sigma_y, sigma_x) in input pixels (float64, CPU).

    The local scale of an output step along x (y) in the input is the norm of the matrix's first
    (second) column; a shrink by ``s`` gets ``0.5 * sqrt(s^2 - 1)``, which leaves a 2x shrink with
    under 3% contrast at the input's Nyquist frequency.
    """
    sigma_xy = 0.5 * np.sqrt(np.maximum(_footprint_scale(_host(matrix)) ** 2 - 1.0, 0.0))
    return torch.from_numpy(np.ascontiguousarray(sigma_xy[:, ::-1]))


#: Shrinks by less than sqrt(2) (sigma < 0.5) fold little energy and are left unfiltered.
ANTIALIAS_MIN_SIGMA = 0.5


def antialias_taps(matrix: torch.Tensor | np.ndarray, in_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Which samples the pre-blur applies to and their separable taps, or None when none needs it.

    Returns ``(needs, taps)``: ``needs`` a CPU bool ``(B,)`` (the warp shrinks by more than
    sqrt(2)), ``taps`` float64 ``(n, 2, k)`` (y then x taps of the ``n`` selected samples). Each
    sample's kernel spans its own +-3 sigma (zero taps pad it to the widest one), so a sample's
    result does not depend on the rest of its batch.
    """
    sigmas = shrink_sigmas(matrix)
    needs = sigmas.amax(dim=1) >= ANTIALIAS_MIN_SIGMA
    if not bool(needs.any()):
        return None
    sig = sigmas[needs].clamp(min=1e-3)
    max_radius = (min(in_size) - 1) // 2  # reflect padding needs radius < size
    radius = (3.0 * sig).ceil().clamp(max=max_radius)  # (n, 2)
    widest = int(radius.max())
    if widest < 1:
        return None
    # Kornia's taps over a window fixed by the image size (so that even the rounding of the
    # normaliser is the same whatever the batch), cut to each sample's own radius, renormalised,
    # then trimmed to the batch's widest kernel (the rest are zeros).
    window = get_gaussian_kernel1d(2 * max_radius + 1, sig.reshape(-1, 1)).view(-1, 2, 2 * max_radius + 1)
    offsets = torch.arange(-max_radius, max_radius + 1, dtype=torch.float64)
    taps = window * (offsets.abs() <= radius.unsqueeze(-1))
    return needs, (taps / taps.sum(-1, keepdim=True))[..., max_radius - widest:max_radius + widest + 1]


def _antialias(image: torch.Tensor, matrix: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Pre-blur the samples whose warp shrinks by more than sqrt(2) (:func:`antialias_taps`); the others are untouched.

    Which samples need it is decided on the CPU from the matrices (no device sync).
    """
    found = antialias_taps(matrix, (int(image.shape[-2]), int(image.shape[-1])))
    if found is None:
        return image
    needs, taps = found
    taps = to_device(taps, image.device, image.dtype)
    return on_selected(image, needs, lambda subset, _: separable_blur(subset, taps[:, 0], taps[:, 1]))


def warp_image(
    image: torch.Tensor, matrix: torch.Tensor | np.ndarray, out_size: tuple[int, int], options: WarpOptions
) -> torch.Tensor:
    """Resample ``image`` (B, C, H, W) through ``matrix`` (B, 3, 3, output → input pixels)."""
    in_size = (int(image.shape[-2]), int(image.shape[-1]))
    mode = options.interpolation
    matrix = _host(matrix)  # once: every decision and coefficient below is computed from it in NumPy
    if is_pixel_permutation(matrix):
        mode = "nearest"  # flips and integer crops copy pixels exactly: no interpolation error at all
    elif options.antialias and mode != "nearest":
        image = _antialias(image, matrix)
    grid = sampling_grid(matrix, in_size, out_size, image)
    if options.padding_mode != "constant":
        return F.grid_sample(image, grid, mode=mode, padding_mode=_GRID_PADDING[options.padding_mode], align_corners=False)
    # Constant fill: sample with edge clamping, then blend in the fill by how much of each output
    # pixel's footprint lies outside the source. Unlike zero padding, this does not darken the edges
    # of upscaled crops and resizes (a footprint narrower than a pixel that is still inside).
    out = F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=False)
    if footprints_inside(matrix, in_size, out_size):
        return out  # no output pixel reaches outside the source: nothing to fill
    coverage = edge_coverage(matrix, in_size, out_size, out)
    if mode == "nearest":
        coverage = (coverage >= 0.5).to(out.dtype)
    fill = options.fill if isinstance(options.fill, tuple) else (options.fill,)
    if all(v == 0 for v in fill):
        return out.mul_(coverage)
    fill_t = to_device(torch.tensor(fill, dtype=out.dtype), out.device).view(1, -1, 1, 1)
    return torch.lerp(fill_t.expand_as(out), out, coverage)


def footprints_inside(matrix: torch.Tensor | np.ndarray, in_size: tuple[int, int], out_size: tuple[int, int]) -> bool:
    """True when every output pixel's footprint lies inside the source (checked on the CPU corners)."""
    return bool(footprints_inside_each(matrix, in_size, out_size).all())


def footprints_inside_each(matrix: torch.Tensor | np.ndarray, in_size: tuple[int, int], out_size: tuple[int, int]) -> np.ndarray:
    """Per sample ``(B,)``: whether every output pixel's footprint lies inside the source."""
    m = _host(matrix)
    h, w = out_size
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], dtype=np.float64)
    mapped = np.einsum("bij,kj->bki", m[:, :2, :], corners)  # pixel centres
    margin = (_footprint_scale(m) / 2 - 0.5)[:, None, :]  # footprint half-width - 0.5
    limit = np.array([in_size[1] - 1, in_size[0] - 1], dtype=np.float64)
    return ((mapped >= margin) & (mapped <= limit - margin)).all(axis=(1, 2))


def coverage_coefficients(matrix: torch.Tensor | np.ndarray, in_size: tuple[int, int]) -> np.ndarray:
    """``(B, 2, 6)``: per axis (x, y), the distances in footprints from an output pixel ``(i, j)`` to
    the near and the far source edge, ``a j + b i + c`` and ``a' j + b' i + c'``, as ``(a, b, c, a', b', c')``."""
    h_in, w_in = in_size
    m = _host(matrix)
    inv = 1.0 / _footprint_scale(m)  # (B, 2)
    # continuous source coordinate along an axis: m[a,0]*j + m[a,1]*i + m[a,2] + 0.5; per axis,
    # the distances to the near and the far edge, in footprints: (a, b, c) and (-a, -b, e - c + 1).
    coeffs = np.empty((m.shape[0], 2, 6))
    for axis, extent in ((0, w_in), (1, h_in)):
        a, b = m[:, axis, 0] * inv[:, axis], m[:, axis, 1] * inv[:, axis]
        c = (m[:, axis, 2] + 0.5) * inv[:, axis] + 0.5
        coeffs[:, axis] = np.stack([a, b, c, -a, -b, extent * inv[:, axis] - c + 1.0], axis=1)
    return coeffs


def edge_coverage(matrix: torch.Tensor | np.ndarray, in_size: tuple[int, int], out_size: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    """Fraction ``(B, 1, h, w)`` of each output pixel's footprint inside the source image.

    The footprint of an output pixel is ``s`` input pixels wide along each axis, ``s`` being the
    local scale of the warp; with ``s = 1`` this is exactly bilinear zero padding. Per axis, the
    distances (in footprints) to the two source edges are affine in the output coordinates, so
    they are built like the grid: a (B,1,w) row plus a (B,h,1) column, then min and clamp.
    """
    h, w = out_size
    coeffs = coverage_coefficients(matrix, in_size)
    k = to_device(torch.from_numpy(coeffs), like.device, like.dtype)
    j = torch.arange(w, dtype=like.dtype, device=like.device)
    i = torch.arange(h, dtype=like.dtype, device=like.device)
    # both axes at once: (B, 2, h, w) distances to the near and the far edge; then in place (two
    # large temporaries, not four): the smaller one, clamped, and the product of the two axes
    # (scratch buffers: the result is a view of one, used by the caller before the next call)
    shape = (coeffs.shape[0], 2, h, w)
    near = scratch("coverage_near", shape, like.dtype, like.device)
    far = scratch("coverage_far", shape, like.dtype, like.device)
    torch.add((k[:, :, 0:1] * j).unsqueeze(2), (k[:, :, 1:2] * i + k[:, :, 2:3]).unsqueeze(3), out=near)
    torch.add((k[:, :, 3:4] * j).unsqueeze(2), (k[:, :, 4:5] * i + k[:, :, 5:6]).unsqueeze(3), out=far)
    inside = torch.minimum(near, far, out=near).clamp_(0.0, 1.0)
    return inside[:, 0:1].mul_(inside[:, 1:2])  # (B, 1, h, w), a view of ``near``


def warp_points(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Map continuous-coordinate points ``(B, N, 2)`` from input to output through ``matrix``."""
    forward = to_device(affine_inverse(matrix.to(torch.float64)), points.device, points.dtype)
    centred = points - 0.5
    mapped = torch.einsum("bij,bnj->bni", forward[:, :2, :2], centred) + forward[:, :2, 2].unsqueeze(1)
    return mapped + 0.5


def points_inside(points: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(B, N)`` bool: the continuous-coordinate point lies in ``[0, w) x [0, h)`` (torchvision's rule)."""
    h, w = size
    x, y = points[..., 0], points[..., 1]
    return (x >= 0) & (x < w) & (y >= 0) & (y < h)


def warp_boxes(
    boxes: torch.Tensor, valid: torch.Tensor, matrix: torch.Tensor, out_size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map xyxy boxes: transform the 4 corners, take the enclosing box, clip to the output.

    A box stays valid when it was valid and its clipped box still has positive width and height.
    Invalid boxes keep their (clipped, possibly degenerate) coordinates; use the mask to drop them.
    """
    b, n = boxes.shape[:2]
    x0, y0, x1, y1 = boxes.unbind(-1)
    corners = torch.stack([torch.stack(c, -1) for c in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))], dim=2)
    mapped = warp_points(corners.reshape(b, n * 4, 2), matrix).reshape(b, n, 4, 2)
    h, w = out_size
    lo, hi = mapped.amin(dim=2), mapped.amax(dim=2)
    out = torch.cat([lo, hi], dim=-1)
    out[..., 0::2] = out[..., 0::2].clamp(0, w)
    out[..., 1::2] = out[..., 1::2].clamp(0, h)
    keep = valid & (out[..., 2] > out[..., 0]) & (out[..., 3] > out[..., 1])
    return out, keep


# ---------------------------------------------------------------------------------------- masks
#
# Masks are not resampled: each output pixel copies one source pixel, picked by an integer index
# computed once per call from the fused matrix and then gathered. The index is exact integer
# (fixed-point) arithmetic, so it is the same for every mask dtype and on every device, and labels
# of any dtype (bool, uint8, int64 up to 2**63, float) are copied bit for bit.

#: Fixed-point resolution of the mask index: matrix entries are rounded to multiples of 2**-31 px.
_FRAC_BITS = 31
#: Each term of a source coordinate saturates at 2**28 px (far outside any image), so the
#: fixed-point sums fit in int64 whatever the matrix.
_MAX_TERM = 2.0**28
#: The source grown by the overhang of the sampled positions may have this many times the pixels of
#: the larger of the source and the output (its position -> pixel lookup table holds one int64 per
#: pixel); a stronger zoom-out clamps or folds each axis instead.
_MAX_GROWTH = 4


def _fixed_point(m: np.ndarray, out_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The source coordinate of output pixel centres in fixed point: ``(a, b, c)``, each ``(B, 2, 1)`` int64.

    Per axis (x, y), ``u * 2**31 = a*j + b*i + c`` exactly (int64 arithmetic) for output pixel
    ``(row i, col j)``: the matrix's entries rounded to multiples of ``2**-31``, with the half pixel
    that turns pixel-centre coordinates into continuous ones (pixel ``p`` spans ``[p, p+1)``).
    """
    h, w = out_size
    a = np.clip(m[:, :2, 0], -_MAX_TERM / max(w - 1, 1), _MAX_TERM / max(w - 1, 1))
    b = np.clip(m[:, :2, 1], -_MAX_TERM / max(h - 1, 1), _MAX_TERM / max(h - 1, 1))
    c = np.clip(m[:, :2, 2] + 0.5, -_MAX_TERM, _MAX_TERM)
    a, b, c = (np.nan_to_num(np.rint(np.ldexp(v, _FRAC_BITS))).astype(np.int64)[:, :, None] for v in (a, b, c))
    return a, b, c


def _source_of(p: np.ndarray, n: int, padding_mode: str) -> np.ndarray:
    """The source row (column) that position ``p`` reads: ``-1`` or ``n`` for the zero border in
    constant mode (callers grow the source by one zero pixel), clamped for ``"border"``, mirrored
    about the edges for ``"reflect"`` (numpy ``"symmetric"``: ``-1`` reads 0, ``n`` reads ``n-1``)."""
    if padding_mode == "constant":
        return np.clip(p, -1, n)
    if padding_mode == "border":
        return np.clip(p, 0, n - 1)
    q = np.mod(p, 2 * n)  # period 2n
    return np.minimum(q, 2 * n - 1 - q)


def _mask_index(
    matrix: torch.Tensor,
    in_size: tuple[int, int],
    out_size: tuple[int, int],
    padding_mode: str,
    device: torch.device,
    source_bytes: int = 8,
) -> tuple[torch.Tensor, bool, torch.Tensor | None]:
    """Where every output pixel of a mask reads: ``(index, padded, grow)``.

    ``index`` ``(B, h, w)`` int64 is a flat index into the source (grown by a one-pixel zero border
    when ``padded``: constant mode with some position outside), or, when ``grow`` is given, into
    the source first gathered through ``grow`` (a flat index ``(H', W')``: the source grown by the
    overhang of the sampled positions, filled as ``padding_mode`` says).

    Everything is decided on the CPU from the matrix, and the device gets its few numbers in one
    copy; there is no loop over samples. Three layouts give the same pixels at different costs:

    * axis-aligned matrices (crops, resizes, flips): rows and columns are independent, so they are
      resolved on the CPU (``B*(h+w)`` numbers) and the device does one broadcast add;
    * otherwise the device computes the position in the source grown by the overhang (a row term
      plus a column term plus one carry per axis); the grown source is built once (``grow``) when
      it is small (``source_bytes`` per pixel, all masks together), else each position is mapped
      to a source pixel through the same table;
    * a zoom-out so strong that the grown source would be huge builds each axis and clamps or
      folds it.
    """
    (h_in, w_in), (h, w) = in_size, out_size
    m = _host(matrix)
    a, b, c = _fixed_point(m, out_size)  # u * 2**31 = a*j + b*i + c, per sample and axis (x, y)
    # exact extremes of floor(u) over the output and the batch, per axis (u is affine in i and j)
    span = a * (w - 1) + b * (h - 1) - np.abs(a) * (w - 1) - np.abs(b) * (h - 1)  # 2 * the min part
    lo = ((span // 2 + c) >> _FRAC_BITS).min(axis=(0, 2))  # (2,): x, y
    hi = ((a * (w - 1) + b * (h - 1) - span // 2 + c) >> _FRAC_BITS).max(axis=(0, 2))
    extent = np.array([w_in, h_in])
    before, after = np.maximum(-lo, 0), np.maximum(hi - (extent - 1), 0)  # overhang per axis
    padded = padding_mode == "constant" and bool((before > 0).any() or (after > 0).any())
    row_out = w_in + 2 if padded else w_in  # row length of the source the index points into
    shift = 1 if padded else 0  # source pixel (y, x) sits at (y + 1, x + 1) in the grown source

    def move(*parts: np.ndarray) -> list[torch.Tensor]:  # in one copy
        packed = to_device(torch.from_numpy(np.concatenate([p.ravel() for p in parts]).astype(np.int64)), device)
        return [t.view(p.shape) for t, p in zip(packed.split([p.size for p in parts]), parts)]

    if bool((b[:, 0] == 0).all() and (a[:, 1] == 0).all()):  # axis-aligned: x from j only, y from i only
        fx = (a[:, 0] * np.arange(w) + c[:, 0]) >> _FRAC_BITS  # (B, w)
        fy = (b[:, 1] * np.arange(h) + c[:, 1]) >> _FRAC_BITS  # (B, h)
        x_part, y_part = move(_source_of(fx, w_in, padding_mode) + shift, (_source_of(fy, h_in, padding_mode) + shift) * row_out)
        return y_part.unsqueeze(2) + x_part.unsqueeze(1), padded, None

    # floor(u) = r_int[j] + c_int[i] + carry, where carry = (the fractions add up to a pixel)
    # = (r_frac[j] > c_cut[i]): exact
    one = 1 << _FRAC_BITS
    row_terms, col_terms = a * np.arange(w), b * np.arange(h) + c  # (B, 2, w), (B, 2, h)
    r_int, r_frac = row_terms >> _FRAC_BITS, row_terms & (one - 1)
    c_int, c_cut = col_terms >> _FRAC_BITS, (one - 1) - (col_terms & (one - 1))
    grown_w, grown_h = w_in + int(before[0] + after[0]), h_in + int(before[1] + after[1])
    base_j = r_int[:, 0] + r_int[:, 1] * grown_w  # (B, w): position in the grown source
    base_i = (c_int[:, 0] + before[0]) + (c_int[:, 1] + before[1]) * grown_w  # (B, h)
    if grown_w * grown_h <= _MAX_GROWTH * max(h * w, h_in * w_in):
        cols = _source_of(np.arange(-before[0], w_in + after[0]), w_in, padding_mode) + shift
        rows = (_source_of(np.arange(-before[1], h_in + after[1]), h_in, padding_mode) + shift) * row_out
        row_part, col_part, lut_x, lut_y = move(
            np.stack([base_j, r_frac[:, 0], r_frac[:, 1]], 1), np.stack([base_i, c_cut[:, 0], c_cut[:, 1]], 1), cols, rows
        )
        # int64 from the start (the gathers need it) and one reused bool carry: few large temporaries
        position = torch.add(row_part[:, 0].unsqueeze(1), col_part[:, 0].unsqueeze(2))  # (B, h, w)
        carry = torch.gt(row_part[:, 1].unsqueeze(1), col_part[:, 1].unsqueeze(2))
        position.add_(carry)
        position.add_(torch.gt(row_part[:, 2].unsqueeze(1), col_part[:, 2].unsqueeze(2), out=carry), alpha=grown_w)
        if not (before.any() or after.any()):
            return position, padded, None  # every position is a source pixel already
        lookup = torch.add(lut_y.unsqueeze(1), lut_x).view(-1)  # grown position -> source pixel
        if grown_w * grown_h * source_bytes <= 8 * h * w:  # growing the source costs less than mapping
            return position, padded, lookup
        return torch.gather(lookup, 0, position.view(-1)).view(position.shape), padded, None

    if padding_mode == "reflect":  # only floor(u) mod 2n matters: keep the numbers small
        period = 2 * extent.reshape(1, 2, 1)
        r_int, c_int = np.mod(r_int, period), np.mod(c_int, period)
    row_part, col_part = move(np.concatenate([r_int, r_frac], 1), np.concatenate([c_int, c_cut], 1))

    def axis(ax: int, n: int) -> torch.Tensor:  # (B, h, w) source columns (ax = 0) or rows (ax = 1)
        f = torch.add(row_part[:, ax].unsqueeze(1), col_part[:, ax].unsqueeze(2))
        f.add_(torch.gt(row_part[:, 2 + ax].unsqueeze(1), col_part[:, 2 + ax].unsqueeze(2)))
        if padding_mode == "reflect":
            f.remainder_(2 * n)
            return torch.minimum(f, (2 * n - 1) - f)
        return f.clamp_(-shift, n - 1 + shift).add_(shift)

    return axis(0, w_in).add_(axis(1, h_in), alpha=row_out), padded, None


def warp_masks(
    masks: torch.Tensor, matrix: torch.Tensor, out_size: tuple[int, int], padding_mode: str = "constant"
) -> torch.Tensor:
    """Warp masks ``(B, K, H, W)`` of any dtype by nearest neighbour: each output pixel copies one input pixel.

    Output pixel ``(i, j)`` copies input pixel ``(floor(v), floor(u))``, where ``(u, v)`` is the
    continuous source coordinate of its centre (``u = m00*j + m01*i + m02 + 1/2``, and ``v`` from
    the second row), computed exactly in integer arithmetic from the matrix entries rounded to
    multiples of ``2**-31`` px: the same for every mask dtype and on every device. That is the
    nearest source pixel; a source point exactly halfway between two pixel centres goes to the
    right/lower one (round half up: pixel ``p`` owns ``[p, p+1)``, the convention of boxes and
    keypoints). Where the source point falls outside the image, ``padding_mode`` decides:

    * ``"constant"``: 0 (``fill`` is an image intensity, not a label) when ``u`` is outside
      ``[0, W)`` or ``v`` outside ``[0, H)``, the rule of ``keypoints_valid``;
    * ``"border"``: the nearest edge pixel (the row and column are clamped);
    * ``"reflect"``: the image mirrored about its edges, as ``grid_sample``'s reflection and NumPy's
      ``"symmetric"`` padding (column ``-1`` reads ``0``, column ``W`` reads ``W-1``).

    Values are copied, never converted: every output value is an input value (or 0), bit for bit,
    for bool, integer (``int64`` near ``2**63`` included) and float masks, so the same labels stored
    in two dtypes give the same result, and flips and integer crops copy exactly. A
    nearest-interpolated image picks the same pixels except where the two roundings differ: at
    exact ties (``grid_sample`` rounds half to even, from a floating-point grid) and, in constant
    mode, in sub-pixel slivers at the image's corners, where the image's fill follows how much of
    the output pixel's footprint is inside.

    Args:
        masks: ``(B, K, H, W)``, any dtype, on any device.
        matrix: ``(B, 3, 3)`` output → input pixel-centre coordinates (float64, on the CPU).
        out_size: ``(h, w)``.
        padding_mode: ``"constant"``, ``"border"`` or ``"reflect"``.

    Returns:
        ``(B, K, h, w)``, same dtype and device as ``masks``. No device value is read (decisions are
        taken on the CPU matrix) and there is no Python loop over samples.

    Example:
        >>> ccw90 = torch.tensor([[[0.0, -1, 1], [1, 0, 0], [0, 0, 1]]], dtype=torch.float64)  # 90° counter-clockwise
        >>> warp_masks(torch.tensor([[[[1, 2], [3, 4]]]]), ccw90, (2, 2)).tolist()
        [[[[2, 4], [1, 3]]]]
    """
    b, k, h_in, w_in = masks.shape
    h, w = out_size
    if masks.numel() == 0 or h * w == 0:  # nothing to copy (or from)
        return masks.new_zeros((b, k, h, w))
    index, padded, grow = _mask_index(matrix, (h_in, w_in), out_size, padding_mode, masks.device, k * masks.element_size())
    source = F.pad(masks, (1, 1, 1, 1)) if padded else masks  # zeros, for every dtype
    flat = source.reshape(b, k, source.shape[-2] * source.shape[-1])
    if grow is not None:  # the source grown by the overhang, mirrored / repeated / zero-filled
        flat = torch.gather(flat, 2, grow.view(1, 1, -1).expand(b, k, grow.numel()))
    return torch.gather(flat, 2, index.view(b, 1, h * w).expand(b, k, h * w)).view(b, k, h, w)


def warp_batch(batch: Batch, matrix: torch.Tensor, out_size: tuple[int, int], options: WarpOptions) -> Batch:
    """Warp the image and every target of ``batch`` with one matrix (the fused chain)."""
    return replace(warp_targets(batch, matrix, out_size, options), image=warp_image(batch.image, matrix, out_size, options))


def warp_targets(batch: Batch, matrix: torch.Tensor, out_size: tuple[int, int], options: WarpOptions) -> Batch:
    """Warp every target of ``batch`` (masks, boxes, keypoints) with ``matrix``; the image is left as it is."""
    masks = batch.masks
    if masks is not None:
        masks = warp_masks(masks, matrix, out_size, options.padding_mode)  # by index: exact for every dtype
    boxes, boxes_valid = batch.boxes, batch.boxes_valid
    if boxes is not None:
        assert boxes_valid is not None
        boxes, boxes_valid = warp_boxes(boxes, boxes_valid, matrix, out_size)
    keypoints, keypoints_valid = batch.keypoints, batch.keypoints_valid
    if keypoints is not None:
        assert keypoints_valid is not None
        keypoints = warp_points(keypoints, matrix)
        keypoints_valid = keypoints_valid & points_inside(keypoints, out_size)
    return replace(
        batch,
        masks=masks,
        boxes=boxes,
        boxes_valid=boxes_valid,
        keypoints=keypoints,
        keypoints_valid=keypoints_valid,
    )
