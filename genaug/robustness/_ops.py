"""Batched building blocks of the corruptions: border-mode indexing, separable filters as matrices,
bilinear sampling, PIL's box resize, ImageMagick's motion blur, the diamond-square plasma fractal.

Everything works on ``(B, C, H, W)`` float tensors on any device. Filters whose taps are shared by
the whole batch are applied as two small dense matrices (``M_h @ X @ M_w^T``): exact for any
border mode and kernel size (a kernel wider than the image folds onto it, as SciPy's does), and a
matrix product is the fastest way to run a long 1-D filter on CPU and GPU alike.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from genaug.transforms.base import to_device

# ----------------------------------------------------------------------------- border modes


def border_index(index: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Map integer positions (any, possibly outside ``0..n-1``) to in-image positions.

    Modes (SciPy / OpenCV names): ``"nearest"`` (edge pixel repeated: OpenCV ``BORDER_REPLICATE``,
    ImageMagick's default *edge* virtual pixels), ``"reflect"`` (half-sample symmetric,
    ``d c b a | a b c d``: SciPy ``reflect``), ``"mirror"`` (whole-sample symmetric,
    ``d c b | a b c d``: SciPy ``mirror``, OpenCV ``BORDER_REFLECT_101``, torch ``reflect``).
    """
    if mode == "nearest":
        return index.clamp(0, n - 1)
    if mode == "reflect":
        i = torch.remainder(index, 2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)
    if mode == "mirror":
        if n == 1:
            return torch.zeros_like(index)
        i = torch.remainder(index, 2 * n - 2)
        return torch.where(i >= n, 2 * n - 2 - i, i)
    raise ValueError(f"unknown border mode {mode!r}")


@functools.lru_cache(maxsize=256)
def _filter_matrix_np(n: int, taps: tuple[float, ...], mode: str) -> np.ndarray:
    """``(n, n)`` float64 matrix of the centred 1-D correlation with ``taps`` under border ``mode``."""
    r = len(taps) // 2
    rows = np.arange(n)[:, None] + np.arange(-r, r + 1)[None, :]  # (n, k) source positions
    cols = border_index(torch.from_numpy(rows), n, mode).numpy()
    m = np.zeros((n, n))
    np.add.at(m, (np.repeat(np.arange(n), len(taps)), cols.ravel()), np.tile(np.asarray(taps), n))
    return m


def filter_matrix(n: int, taps: tuple[float, ...], mode: str, like: torch.Tensor) -> torch.Tensor:
    """:func:`_filter_matrix_np` as a tensor with ``like``'s dtype and device."""
    return torch.from_numpy(_filter_matrix_np(n, taps, mode)).to(device=like.device, dtype=like.dtype)


def separable(x: torch.Tensor, mh: torch.Tensor, mw: torch.Tensor) -> torch.Tensor:
    """``mh @ x @ mw^T`` over the last two dims of ``x`` (``(..., H, W)``)."""
    return torch.matmul(torch.matmul(mh, x), mw.transpose(-1, -2))


def gaussian_taps(sigma: float, truncate: float = 4.0) -> tuple[float, ...]:
    """SciPy's ``gaussian_filter1d`` taps: radius ``int(truncate * sigma + 0.5)``, normalised.

    ``sigma == 0`` gives the identity ``(1.0,)`` (SciPy skips such an axis).
    """
    if sigma <= 0:
        return (1.0,)
    r = int(truncate * float(sigma) + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (float(sigma) ** 2) * x**2)
    return tuple((phi / phi.sum()).tolist())


def gaussian_filter(x: torch.Tensor, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> torch.Tensor:
    """``scipy.ndimage.gaussian_filter`` over the last two dims (``skimage.filters.gaussian``'s defaults:
    ``mode="nearest"``, ``truncate=4``), the same sigma on both axes."""
    if sigma <= 0:
        return x.clone()
    taps = gaussian_taps(sigma, truncate)
    h, w = x.shape[-2:]
    return separable(x, filter_matrix(h, taps, mode, x), filter_matrix(w, taps, mode, x))


# ----------------------------------------------------------------------------- sampling


def gather_pixels(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``x[b, :, rows[b, i, j], cols[b, i, j]]`` for in-range int64 ``rows``/``cols`` ``(B, H', W')``."""
    b, c, h, w = x.shape
    index = (rows * w + cols).reshape(b, 1, -1).expand(b, c, -1)
    return x.reshape(b, c, h * w).gather(2, index).view(b, c, *rows.shape[1:])


def bilinear(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, mode: str) -> torch.Tensor:
    """Sample ``x`` (B, C, H, W) at float pixel coordinates ``ys``, ``xs`` (B, H', W') with linear
    interpolation (SciPy ``map_coordinates(order=1)`` / OpenCV ``INTER_LINEAR``) and ``mode`` borders."""
    h, w = x.shape[-2:]
    y0f, x0f = torch.floor(ys), torch.floor(xs)
    wy, wx = (ys - y0f).unsqueeze(1).to(x.dtype), (xs - x0f).unsqueeze(1).to(x.dtype)
    y0, x0 = y0f.to(torch.int64), x0f.to(torch.int64)
    y1, x1 = border_index(y0 + 1, h, mode), border_index(x0 + 1, w, mode)
    y0, x0 = border_index(y0, h, mode), border_index(x0, w, mode)
    top = gather_pixels(x, y0, x0) * (1 - wx) + gather_pixels(x, y0, x1) * wx
    bottom = gather_pixels(x, y1, x0) * (1 - wx) + gather_pixels(x, y1, x1) * wx
    return top * (1 - wy) + bottom * wy


def clipped_zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """The scripts' ``clipped_zoom``: centre crop of ``ceil(n / factor)`` px, ``scipy.ndimage.zoom``
    (order 1, so corner-aligned: output ``o`` samples input ``o * (m - 1) / (M - 1)``) to
    ``round(m * factor)`` px, centre crop back to ``n`` px. Each axis on its own (the scripts
    assume square images; for them this is the same)."""
    h, w = x.shape[-2:]
    ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top:top + ch, left:left + cw]
    oh, ow = int(round(ch * factor)), int(round(cw * factor))
    if (oh, ow) != (ch, cw):
        crop = F.interpolate(crop, size=(oh, ow), mode="bilinear", align_corners=True)
    t, l_ = (oh - h) // 2, (ow - w) // 2
    return crop[..., t:t + h, l_:l_ + w]


# ----------------------------------------------------------------------------- PIL box resize


@functools.lru_cache(maxsize=256)
def _box_matrix_np(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of Pillow's ``Image.resize(..., Image.BOX)`` along one axis.

    Pillow's ``precompute_coeffs``: output ``i`` is centred at ``(i + 0.5) * scale`` of the input
    (``scale = n_in / n_out``); input pixel ``j`` in ``[xmin, xmax)`` (the support ``0.5 * max(scale,
    1)`` rounded) gets weight ``box((j - centre + 0.5) / max(scale, 1))`` with ``box(t) = 1`` for
    ``-0.5 < t <= 0.5``, and the weights are normalised. (Shrinking: the mean of the pixels whose
    centres fall in the output pixel; enlarging: a nearest-neighbour copy.)
    """
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    m = np.zeros((n_out, n_in))
    for i in range(n_out):  # n_out numbers on the host, once per size (cached)
        center = (i + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), n_in)
        t = (np.arange(xmin, xmax) - center + 0.5) / filterscale
        wts = ((t > -0.5) & (t <= 0.5)).astype(np.float64)
        if wts.sum() > 0:
            m[i, xmin:xmax] = wts / wts.sum()
    return m


#: Pillow's fixed point for 8-bit resampling: coefficients in 22 fractional bits (32 - 8 - 2).
_PRECISION_BITS = 22


@functools.lru_cache(maxsize=256)
def _box_windows(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per output pixel of Pillow's BOX resize: the input window ``[start, stop)`` and the 22-bit
    fixed-point weight every pixel of it gets (box weights are equal within a window)."""
    m = _box_matrix_np(n_in, n_out)
    nz = m > 0
    start = nz.argmax(1)
    stop = n_in - nz[:, ::-1].argmax(1)
    weight = np.floor(0.5 + m[np.arange(n_out), start] * float(1 << _PRECISION_BITS))
    return torch.from_numpy(start), torch.from_numpy(stop), torch.from_numpy(weight)


def _box_pass(u: torch.Tensor, n_out: int, dim: int) -> torch.Tensor:
    start, stop, weight = (t.to(u.device) for t in _box_windows(u.shape[dim], n_out))
    shape = [1] * u.dim()
    shape[dim] = n_out
    prefix = torch.nn.functional.pad(u.cumsum(dim), (1, 0) if dim == u.dim() - 1 else (0, 0, 1, 0))
    window_sum = prefix.index_select(dim, stop) - prefix.index_select(dim, start)  # exact: integer sums
    half, one = float(1 << (_PRECISION_BITS - 1)), float(1 << _PRECISION_BITS)
    return torch.floor((window_sum * weight.view(shape) + half) / one).clamp_(0, 255)


def box_resize_8bit(u: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pillow's ``Image.resize(size[::-1], Image.BOX)`` of 8-bit images held as float64 integers
    ``(..., H, W)``: the horizontal pass first, then the vertical one, each with the weights in
    22-bit fixed point (``int(0.5 + w * 2^22)``), ``(sum + 2^21) >> 22`` and a clip to 0..255, as
    Pillow's ``ImagingResample`` does. A box window's weights are all equal, so each output is its
    window's integer sum (a difference of prefix sums) times that weight: exact in float64."""
    h, w = u.shape[-2:]
    if size[1] != w:
        u = _box_pass(u, size[1], u.dim() - 1)
    if size[0] != h:
        u = _box_pass(u, size[0], u.dim() - 2)
    return u


# ----------------------------------------------------------------------------- motion blur


def motion_blur(x: torch.Tensor, radius: float, sigma: float, angle: torch.Tensor) -> torch.Tensor:
    """ImageMagick's ``MotionBlurImage(radius, sigma, angle)`` per sample (``angle`` (B,) degrees, CPU).

    The published definition (ImageMagick's effect.c, called by the scripts through Wand):
    ``width = 2 * ceil(radius) + 1`` taps with one-sided Gaussian weights ``exp(-i^2 / (2 sigma^2))``,
    ``i = 0..width-1``, normalised; tap ``i`` reads the pixel at offset
    ``(ceil(i cos(angle) - 0.5), ceil(i sin(angle) - 0.5))`` (x right, y down) and pixels outside
    the image repeat the edge (ImageMagick's default virtual pixels). One gather per tap for the
    whole batch: offsets differ per sample, so the taps are read by index.
    """
    b, c, h, w = x.shape
    width = int(2 * math.ceil(radius) + 1) if radius > 0 else 3
    s = sigma if abs(sigma) >= 1e-12 else 1e-12
    i = np.arange(width, dtype=np.float64)
    kernel = np.exp(-(i * i) / (2.0 * s * s))
    kernel /= kernel.sum()
    theta = angle.to(device="cpu", dtype=torch.float64) * (math.pi / 180.0)
    ii = torch.arange(width, dtype=torch.float64)
    # point = (width sin, width cos); offset.x = ceil(i * point.y / hypot - 0.5), offset.y likewise
    ox = torch.ceil(ii[None, :] * torch.cos(theta)[:, None] - 0.5).to(torch.int64)  # (B, width)
    oy = torch.ceil(ii[None, :] * torch.sin(theta)[:, None] - 0.5).to(torch.int64)
    pad = width
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    hp, wp = h + 2 * pad, w + 2 * pad
    flat = padded.reshape(b, c, hp * wp)
    base = ((torch.arange(h, device=x.device) + pad)[:, None] * wp + torch.arange(w, device=x.device) + pad).view(1, -1)
    shift = to_device(oy * wp + ox, x.device)  # (B, width)
    out = torch.zeros(b, c, h * w, device=x.device, dtype=x.dtype)
    for t in range(width):  # a loop over taps, each over the whole batch
        if kernel[t] < 1e-12:
            continue
        index = (base + shift[:, t:t + 1]).unsqueeze(1).expand(b, c, -1)
        out.add_(flat.gather(2, index), alpha=float(kernel[t]))
    return out.view(b, c, h, w)


# ----------------------------------------------------------------------------- plasma fractal


def plasma_fractal(uniforms: list[list[torch.Tensor]], mapsize: int, wibble_decay: float) -> torch.Tensor:
    """The scripts' diamond-square ``plasma_fractal(mapsize, wibbledecay)`` for a batch, in [0, 1].

    ``uniforms``: per step, three ``(B, n, n)`` U(0, 1) fields (squares, diamonds on rows, diamonds on
    columns) with ``n = mapsize / stepsize``; each value ``u`` becomes the script's
    ``np.random.uniform(-wibble, wibble)``. The map is toroidal (``np.roll``), starts at 0 in the
    corner, and every step adds ``wibble * U(-wibble, wibble)`` to the mean of the neighbours, with
    ``wibble`` starting at 100 and divided by ``wibble_decay`` per step.
    """
    b = uniforms[0][0].shape[0]
    device = uniforms[0][0].device
    m = torch.zeros(b, mapsize, mapsize, dtype=torch.float64, device=device)
    step, wibble, k = mapsize, 100.0, 0
    while step >= 2:
        half = step // 2
        u_sq, u_r, u_c = (u.to(torch.float64) for u in uniforms[k])
        noise = lambda u: wibble * (u * (2 * wibble) - wibble)  # noqa: E731
        corner = m[:, 0::step, 0::step]
        sq = corner + torch.roll(corner, -1, dims=1)
        sq = sq + torch.roll(sq, -1, dims=2)
        m[:, half::step, half::step] = sq / 4 + noise(u_sq)
        dr = m[:, half::step, half::step]
        ul = m[:, 0::step, 0::step]
        lt = dr + torch.roll(dr, 1, dims=1) + ul + torch.roll(ul, -1, dims=2)
        m[:, 0::step, half::step] = lt / 4 + noise(u_r)
        tt = dr + torch.roll(dr, 1, dims=2) + ul + torch.roll(ul, -1, dims=1)
        m[:, half::step, 0::step] = tt / 4 + noise(u_c)
        step //= 2
        wibble /= wibble_decay
        k += 1
    m = m - m.amin(dim=(1, 2), keepdim=True)
    return m / m.amax(dim=(1, 2), keepdim=True)


def plasma_steps(mapsize: int) -> list[int]:
    """Side ``n`` of the random grids of each diamond-square step (1, 2, 4, ..., mapsize / 2)."""
    out, step = [], mapsize
    while step >= 2:
        out.append(mapsize // step)
        step //= 2
    return out


# ----------------------------------------------------------------------------- defocus disk


@functools.lru_cache(maxsize=64)
def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The scripts' ``disk(radius, alias_blur)``: a normalised disk on a 17x17 grid (or
    ``2 radius + 1`` when ``radius > 8``), smoothed by OpenCV's ``GaussianBlur`` with a 3x3 (5x5)
    kernel of sigma ``alias_blur`` and ``BORDER_REFLECT_101``, then trimmed of all-zero borders.
    float32, as the script builds it."""
    if radius <= 8:
        grid, k = np.arange(-8, 8 + 1), 3
    else:
        grid, k = np.arange(-radius, radius + 1), 5
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array(xx**2 + yy**2 <= radius**2, dtype=np.float32)
    disk /= np.sum(disk)
    # cv2.getGaussianKernel(k, sigma): exp(-(i - (k-1)/2)^2 / (2 sigma^2)), normalised
    g = np.exp(-((np.arange(k) - (k - 1) / 2) ** 2) / (2 * alias_blur**2))
    g = g / g.sum()
    n = disk.shape[0]
    m = _filter_matrix_np(n, tuple(g.tolist()), "mirror")
    out = (m @ disk.astype(np.float64) @ m.T).astype(np.float32)
    nz = np.nonzero(np.abs(out).sum(axis=1) > 0)[0]
    lo = min(int(nz[0]), n - 1 - int(nz[-1]))  # symmetric trim keeps the centre
    return out[lo:n - lo, lo:n - lo] if lo > 0 else out


def conv2d_same(x: torch.Tensor, kernel: np.ndarray, mode: str) -> torch.Tensor:
    """Correlate each plane of ``x`` with the odd square ``kernel``, ``mode`` borders (OpenCV ``filter2D``).

    Example:
        >>> x = torch.rand(2, 3, 20, 20)
        >>> k = np.zeros((5, 5)); k[2, 2] = 1.0
        >>> bool((conv2d_same(x, k, "mirror") - x).abs().max() < 1e-6)
        True
    """
    b, c, h, w = x.shape
    k = kernel.shape[0]
    r = k // 2
    rows = border_index(torch.arange(-r, h + r), h, mode).to(x.device)
    cols = border_index(torch.arange(-r, w + r), w, mode).to(x.device)
    padded = x.index_select(2, rows).index_select(3, cols).to(torch.float64)
    # By FFT in float64 (the defocus disks are 17x17 and larger): ~2x faster than a direct float32
    # convolution at 224 px and closer to OpenCV (which also switches to the DFT for such kernels);
    # float64 conv2d on the CPU would unfold (im2col) the whole batch, tens of GB at 224 px.
    size = (h + 2 * r, w + 2 * r)
    flipped = torch.from_numpy(np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float64)).to(x.device)
    out = torch.fft.irfft2(torch.fft.rfft2(padded).mul_(torch.fft.rfft2(flipped, s=size)), s=size)
    return out[..., 2 * r:2 * r + h, 2 * r:2 * r + w].to(x.dtype)


# ----------------------------------------------------------------------------- colour


def rgb_to_gray_cv(x: torch.Tensor) -> torch.Tensor:
    """OpenCV ``COLOR_RGB2GRAY``: ``0.299 R + 0.587 G + 0.114 B`` (B, 1, H, W); 1-channel input is returned."""
    if x.shape[1] == 1:
        return x
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
