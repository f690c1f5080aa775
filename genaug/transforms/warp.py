"""One resampling for a whole chain of geometric ops, and the matching target mapping.

Matrices map *output* pixel coordinates to *input* pixel coordinates, with the centre of pixel
``(row i, col j)`` at ``(x=j, y=i)``. Boxes and keypoints use torchvision's continuous convention
(pixel ``j`` spans ``[j, j+1)``), so they are shifted by half a pixel around the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from kornia.filters import get_gaussian_kernel1d

from genaug.transforms.base import on_selected
from genaug.transforms.photometric import separable_blur

if TYPE_CHECKING:
    from genaug.transforms.pipeline import Batch

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
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {self.padding_mode!r}")
        fill = self.fill
        if isinstance(fill, list):
            fill = tuple(fill)
            object.__setattr__(self, "fill", fill)
        values = fill if isinstance(fill, tuple) else (fill,)
        if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise TypeError(f"fill must be a number or a tuple of numbers (one per channel), got {fill!r}")
        if not isinstance(self.antialias, bool):
            raise TypeError(f"antialias must be a bool, got {self.antialias!r}")


def affine_inverse(m: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of a batch of affine 3x3 matrices (last row ``0 0 1``)."""
    a, b, tx = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    c, d, ty = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    det = a * d - b * c
    inv = torch.zeros_like(m)
    inv[:, 0, 0], inv[:, 0, 1] = d / det, -b / det
    inv[:, 1, 0], inv[:, 1, 1] = -c / det, a / det
    inv[:, 0, 2] = -(inv[:, 0, 0] * tx + inv[:, 0, 1] * ty)
    inv[:, 1, 2] = -(inv[:, 1, 0] * tx + inv[:, 1, 1] * ty)
    inv[:, 2, 2] = 1.0
    return inv


def _host(matrix: torch.Tensor) -> np.ndarray:
    """The fused matrices as a float64 NumPy array.

    The decisions and coefficients derived from them (``B x 9`` numbers) are computed in NumPy:
    a NumPy op on a few numbers costs ~1 us where a torch op costs ~4-5 us, and a call makes
    dozens of them (benchmarks/RESULTS.md, "Per-image calls").
    """
    return matrix.detach().to(device="cpu", dtype=torch.float64).numpy()


def is_pixel_permutation(matrix: torch.Tensor) -> bool:
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


def sampling_grid(matrix: torch.Tensor, in_size: tuple[int, int], out_size: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    """The ``grid_sample`` grid ``(B, h, w, 2)`` for a pixel-coordinate matrix (computed on the CPU)."""
    theta_np = (_normalizer(*in_size) @ _host(matrix) @ _denormalizer(*out_size))[:, :2, :]
    theta = torch.from_numpy(theta_np).to(device=like.device, dtype=like.dtype, non_blocking=True)
    b, (h, w) = matrix.shape[0], out_size
    # Same values as F.affine_grid(align_corners=False), built by broadcasting: the grid is affine
    # in the output coordinates, so each component is a (B,1,w) row plus a (B,h,1) column.
    # This is ~20x faster than affine_grid's batched (h*w, 3) x (3, 2) matmul on CPU.
    xs = torch.linspace(-1.0 + 1.0 / w, 1.0 - 1.0 / w, w, dtype=like.dtype, device=like.device)
    ys = torch.linspace(-1.0 + 1.0 / h, 1.0 - 1.0 / h, h, dtype=like.dtype, device=like.device)
    along_x = theta[:, :, 0:1] * xs  # (B, 2, w): both grid components at once
    along_y = theta[:, :, 1:2] * ys + theta[:, :, 2:3]  # (B, 2, h)
    grid = torch.empty(b, h, w, 2, dtype=like.dtype, device=like.device)
    torch.add(along_x.unsqueeze(2), along_y.unsqueeze(3), out=grid.permute(0, 3, 1, 2))
    return grid


def _footprint_scale(m: np.ndarray) -> np.ndarray:
    """Input-space length ``(B, 2)`` of one output step along x and y (1 for rotations and flips)."""
    linear = m[:, :2, :2]
    return np.maximum(np.sqrt(linear[:, 0] ** 2 + linear[:, 1] ** 2), 1e-6)


def shrink_sigmas(matrix: torch.Tensor) -> torch.Tensor:
    """Per-sample antialiasing sigma ``(B, 2)`` as (sigma_y, sigma_x) in input pixels (float64, CPU).

    The local scale of an output step along x (y) in the input is the norm of the matrix's first
    (second) column; a shrink by ``s`` gets ``0.5 * sqrt(s^2 - 1)``, which leaves a 2x shrink with
    under 3% contrast at the input's Nyquist frequency.
    """
    sigma_xy = 0.5 * np.sqrt(np.maximum(_footprint_scale(_host(matrix)) ** 2 - 1.0, 0.0))
    return torch.from_numpy(np.ascontiguousarray(sigma_xy[:, ::-1]))


#: Shrinks by less than sqrt(2) (sigma < 0.5) fold little energy and are left unfiltered.
ANTIALIAS_MIN_SIGMA = 0.5


def _antialias(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Pre-blur the samples whose warp shrinks by more than sqrt(2); the others are untouched.

    Which samples need it is decided on the CPU from the matrices (no device sync). Each sample's
    kernel spans its own +-3 sigma (zero taps pad it to the widest one), so a sample's result does
    not depend on the rest of its batch.
    """
    sigmas = shrink_sigmas(matrix)
    needs = sigmas.amax(dim=1) >= ANTIALIAS_MIN_SIGMA
    if not bool(needs.any()):
        return image
    sig = sigmas[needs].clamp(min=1e-3)
    max_radius = (min(image.shape[-2:]) - 1) // 2  # reflect padding needs radius < size
    radius = (3.0 * sig).ceil().clamp(max=max_radius)  # (n, 2)
    widest = int(radius.max())
    if widest < 1:
        return image
    # Kornia's taps over a window fixed by the image size (so that even the rounding of the
    # normaliser is the same whatever the batch), cut to each sample's own radius, renormalised,
    # then trimmed to the batch's widest kernel (the rest are zeros).
    window = get_gaussian_kernel1d(2 * max_radius + 1, sig.reshape(-1, 1)).view(-1, 2, 2 * max_radius + 1)
    offsets = torch.arange(-max_radius, max_radius + 1, dtype=torch.float64)
    taps = window * (offsets.abs() <= radius.unsqueeze(-1))
    taps = (taps / taps.sum(-1, keepdim=True))[..., max_radius - widest:max_radius + widest + 1]
    taps = taps.to(image.dtype).to(image.device, non_blocking=True)
    return on_selected(image, needs, lambda subset, _: separable_blur(subset, taps[:, 0], taps[:, 1]))


def warp_image(
    image: torch.Tensor, matrix: torch.Tensor, out_size: tuple[int, int], options: WarpOptions
) -> torch.Tensor:
    """Resample ``image`` (B, C, H, W) through ``matrix`` (B, 3, 3, output → input pixels)."""
    in_size = (int(image.shape[-2]), int(image.shape[-1]))
    mode = options.interpolation
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
    if _footprints_inside(matrix, in_size, out_size):
        return out  # no output pixel reaches outside the source: nothing to fill
    coverage = _coverage(matrix, in_size, out_size, out)
    if mode == "nearest":
        coverage = (coverage >= 0.5).to(out.dtype)
    fill = options.fill if isinstance(options.fill, tuple) else (options.fill,)
    if all(v == 0 for v in fill):
        return out.mul_(coverage)
    fill_t = torch.tensor(fill, dtype=out.dtype, device=out.device).view(1, -1, 1, 1)
    return torch.lerp(fill_t.expand_as(out), out, coverage)


def _footprints_inside(matrix: torch.Tensor, in_size: tuple[int, int], out_size: tuple[int, int]) -> bool:
    """True when every output pixel's footprint lies inside the source (checked on the CPU corners)."""
    m = _host(matrix)
    h, w = out_size
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], dtype=np.float64)
    mapped = np.einsum("bij,kj->bki", m[:, :2, :], corners)  # pixel centres
    margin = (_footprint_scale(m) / 2 - 0.5)[:, None, :]  # footprint half-width - 0.5
    limit = np.array([in_size[1] - 1, in_size[0] - 1], dtype=np.float64)
    return bool(((mapped >= margin) & (mapped <= limit - margin)).all())


def _coverage(matrix: torch.Tensor, in_size: tuple[int, int], out_size: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    """Fraction ``(B, 1, h, w)`` of each output pixel's footprint inside the source image.

    The footprint of an output pixel is ``s`` input pixels wide along each axis, ``s`` being the
    local scale of the warp; with ``s = 1`` this is exactly bilinear zero padding. Per axis, the
    distances (in footprints) to the two source edges are affine in the output coordinates, so
    they are built like the grid: a (B,1,w) row plus a (B,h,1) column, then min and clamp.
    """
    (h_in, w_in), (h, w) = in_size, out_size
    m = _host(matrix)
    inv = 1.0 / _footprint_scale(m)  # (B, 2)
    # continuous source coordinate along an axis: m[a,0]*j + m[a,1]*i + m[a,2] + 0.5; per axis,
    # the distances to the near and the far edge, in footprints: (a, b, c) and (-a, -b, e - c + 1).
    coeffs = np.empty((m.shape[0], 2, 6))
    for axis, extent in ((0, w_in), (1, h_in)):
        a, b = m[:, axis, 0] * inv[:, axis], m[:, axis, 1] * inv[:, axis]
        c = (m[:, axis, 2] + 0.5) * inv[:, axis] + 0.5
        coeffs[:, axis] = np.stack([a, b, c, -a, -b, extent * inv[:, axis] - c + 1.0], axis=1)
    k = torch.from_numpy(coeffs).to(device=like.device, dtype=like.dtype, non_blocking=True)
    j = torch.arange(w, dtype=like.dtype, device=like.device)
    i = torch.arange(h, dtype=like.dtype, device=like.device)
    # both axes at once: (B, 2, h, w) distances to the near and the far edge
    near = (k[:, :, 0:1] * j).unsqueeze(2) + (k[:, :, 1:2] * i + k[:, :, 2:3]).unsqueeze(3)
    far = (k[:, :, 3:4] * j).unsqueeze(2) + (k[:, :, 4:5] * i + k[:, :, 5:6]).unsqueeze(3)
    inside = torch.minimum(near, far).clamp_(0.0, 1.0)
    return (inside[:, 0] * inside[:, 1]).unsqueeze(1)


def warp_points(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Map continuous-coordinate points ``(B, N, 2)`` from input to output through ``matrix``."""
    forward = affine_inverse(matrix.to(torch.float64)).to(points.device, points.dtype)
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


def warp_batch(batch: Batch, matrix: torch.Tensor, out_size: tuple[int, int], options: WarpOptions) -> Batch:
    """Warp the image and every target of ``batch`` with one matrix (the fused chain)."""
    image = warp_image(batch.image, matrix, out_size, options)
    masks = batch.masks
    if masks is not None:
        nearest = WarpOptions(interpolation="nearest", padding_mode=options.padding_mode, antialias=False)
        # Nearest sampling copies values; float64 holds every integer label up to 2**53 exactly.
        work = image.dtype if masks.is_floating_point() else (torch.float32 if masks.element_size() <= 2 else torch.float64)
        warped = warp_image(masks.to(work), matrix, out_size, nearest)
        masks = warped.to(masks.dtype) if masks.is_floating_point() else warped.round_().to(masks.dtype)
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
        image=image,
        masks=masks,
        boxes=boxes,
        boxes_valid=boxes_valid,
        keypoints=keypoints,
        keypoints_valid=keypoints_valid,
    )
