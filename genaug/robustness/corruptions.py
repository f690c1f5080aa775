"""The 19 corruptions of Hendrycks & Dietterich (2019), batched, with the published severity tables.

Each corruption is a function ``fn(x, c, seeds, table)`` of a float ``(B, C, H, W)`` batch in 0..1
(1 or 3 channels, any device), the published parameters ``c`` of one severity
(:mod:`genaug.robustness.tables`), one int64 seed per sample (CPU) and the table's name; it
returns the corrupted batch in 0..1. All randomness comes from the seeds through counter-based
fields (:mod:`genaug.robustness._random`), so a batch gives every sample what it gets alone.

Use :func:`corrupt` (functional) or the :class:`~genaug.robustness.transforms.Corruption` and
:class:`~genaug.robustness.transforms.RandomCorruption` transforms; ``docs/ROBUSTNESS.md`` lists
for each corruption how it follows the published code and where it cannot.
"""

from __future__ import annotations

import functools
import io
from typing import Any, Callable

import numpy as np
import torch

from genaug.robustness import _ops, _random, _spatter, frost
from genaug.robustness.tables import ALL, FOG_MAP_SIZE, FROST_RESIZE, TABLE_SIZES, severity_params
from genaug.transforms.base import to_device
from genaug.transforms.photometric import RandomGaussianNoise

Fn = Callable[[torch.Tensor, Any, torch.Tensor, str], torch.Tensor]


def _full(seeds: torch.Tensor, value: float) -> torch.Tensor:
    return torch.full((seeds.shape[0],), float(value), dtype=torch.float64)


# ----------------------------------------------------------------------------- noise


def gaussian_noise(x: torch.Tensor, c: float, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """``clip(x + N(0, c))``: :class:`genaug.RandomGaussianNoise` with ``std = c``, its own noise."""
    noise = RandomGaussianNoise(mean=0.0, std=float(c), clip=True, seed=0)
    return noise.apply(x, {"std": _full(seeds, c), "noise_seed": _random.derive(seeds, 0)})


def shot_noise(x: torch.Tensor, c: float, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """``clip(Poisson(x * c) / c)``, exact Poisson counts (:func:`genaug.robustness._random.poisson`)."""
    b = x.shape[0]
    counts = _random.poisson(x.reshape(b, -1).to(torch.float64) * c, seeds, 0)
    return (counts / c).clamp_(0, 1).to(x.dtype).view_as(x)


def impulse_noise(x: torch.Tensor, c: float, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """scikit-image ``random_noise(mode="s&p", amount=c)``: each value (per channel) becomes 1 with
    probability ``c / 2`` and 0 with probability ``c / 2``."""
    u = _random.uniform(seeds, 0, tuple(x.shape[1:]), x.device, torch.float32)
    return torch.where(u < c, (u < c / 2).to(x.dtype), x)


def speckle_noise(x: torch.Tensor, c: float, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """``clip(x + x * N(0, c))``."""
    n = _random.normal(seeds, 0, tuple(x.shape[1:]), x.device, torch.float32).to(x.dtype)
    return x.addcmul(x, n, value=float(c)).clamp_(0, 1)


# ----------------------------------------------------------------------------- blur


def gaussian_blur(x: torch.Tensor, c: float, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """scikit-image ``gaussian(sigma=c)``: SciPy's Gaussian, ``truncate=4``, edge pixels repeated."""
    return _ops.gaussian_filter(x, float(c), "nearest").clamp_(0, 1)


@functools.lru_cache(maxsize=32)
def _glass_levels(h: int, w: int, d: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The script's loop ``for h in range(H - d, d, -1): for w in range(W - d, d, -1)`` as wavefront
    levels: step ``(i, j)`` (the loop's i-th row, j-th column) runs at level ``2 d i + j``. A step
    writes pixel ``p`` and reads ``p + delta`` (``|delta| <= d``), so two steps depend on each other
    only if they are less than ``2 d`` apart in both row and column; such steps keep their order,
    and no step of a level reads what another step of the level writes. So each level is one
    batched copy and the result is exactly the sequential loop's.
    Returns per level the loop positions (flat pixel index) and their step numbers."""
    rows = list(range(h - d, d, -1))
    cols = list(range(w - d, d, -1))
    if not rows or not cols:
        return []
    ii, jj = np.meshgrid(np.arange(len(rows)), np.arange(len(cols)), indexing="ij")
    level = (2 * d * ii + jj).ravel()
    order = np.argsort(level, kind="stable")
    pos = (np.asarray(rows)[ii] * w + np.asarray(cols)[jj]).ravel()
    step = (ii * len(cols) + jj).ravel()
    bounds = np.flatnonzero(np.diff(level[order])) + 1
    return [(torch.from_numpy(pos[o]), torch.from_numpy(step[o])) for o in np.split(order, bounds)]


def glass_permutation(seeds: torch.Tensor, h: int, w: int, max_delta: int, iterations: int) -> torch.Tensor:
    """For each sample, the source pixel of every pixel after the script's local pixel shuffle
    (``(B, H * W)`` int64, CPU): ``iterations`` passes in which pixel ``(h, w)``, in reverse raster
    order, takes the value of ``(h + dy, w + dx)``, ``dx, dy = randint(-d, d)`` (so ``-d .. d - 1``).

    The script writes a swap, ``x[h, w], x[h', w'] = x[h', w'], x[h, w]``, but on its RGB
    ``(H, W, 3)`` array both right-hand sides are views, so it copies ``x[h', w']`` into ``x[h, w]``
    and leaves ``x[h', w']`` as it was. The published datasets were made that way; so is this.
    """
    b = seeds.shape[0]
    d = int(max_delta)
    perm = torch.arange(h * w, dtype=torch.int64).repeat(b, 1)
    levels = _glass_levels(h, w, d)
    if not levels:
        return perm
    n_steps = (h - 2 * d) * (w - 2 * d)
    for it in range(int(iterations)):
        delta = _random.integers(seeds, 1 + it, (n_steps, 2), -d, d)  # (B, steps, (dx, dy))
        shift = delta[..., 1] * w + delta[..., 0]
        for pos, step in levels:
            p = pos.expand(b, -1)
            perm.scatter_(1, p, perm.gather(1, p + shift[:, step]))
    return perm


def glass_blur(x: torch.Tensor, c: tuple, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """Gaussian blur, 8-bit truncation (the script's ``np.uint8``), the local pixel shuffle, blur again."""
    sigma, d, iterations = c
    b, ch, h, w = x.shape
    y = _ops.gaussian_filter(x, float(sigma), "nearest").mul_(255).floor_().clamp_(0, 255).div_(255)
    perm = to_device(glass_permutation(seeds, h, w, int(d), int(iterations)), x.device)
    y = y.reshape(b, ch, h * w).gather(2, perm.unsqueeze(1).expand(b, ch, -1)).view(b, ch, h, w)
    return _ops.gaussian_filter(y, float(sigma), "nearest").clamp_(0, 1)


def defocus_blur(x: torch.Tensor, c: tuple, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """OpenCV ``filter2D`` with the anti-aliased disk (``BORDER_REFLECT_101``)."""
    return _ops.conv2d_same(x, _ops.disk_kernel(float(c[0]), float(c[1])), "mirror").clamp_(0, 1)


def _angles(seeds: torch.Tensor, stream: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * _random.uniform(seeds, stream, (1,), "cpu", torch.float64)[:, 0]


def motion_blur(x: torch.Tensor, c: tuple, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """ImageMagick ``MotionBlurImage(radius, sigma, angle ~ U(-45, 45))`` (:func:`_ops.motion_blur`)."""
    return _ops.motion_blur(x, float(c[0]), float(c[1]), _angles(seeds, 0, -45.0, 45.0)).clamp_(0, 1)


def zoom_blur(x: torch.Tensor, c: tuple, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """``(x + sum_z clipped_zoom(x, z)) / (len(z) + 1)`` over the published zoom factors."""
    out = x.clone()
    for z in c:
        out.add_(_ops.clipped_zoom(x, float(z)))
    return out.div_(len(c) + 1).clamp_(0, 1)


# ----------------------------------------------------------------------------- weather


def snow(x: torch.Tensor, c: tuple, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """The published snow: a N(loc, scale) layer, zoomed, thresholded, 8-bit, motion-blurred
    (ImageMagick, angle ~ U(-135, -45)), 8-bit again, added twice (and rotated by 180 degrees) to the
    image brightened towards ``max(x, 1.5 gray + 0.5)``."""
    loc, scale, zoom, threshold, radius, sigma, weight = c
    b, _, h, w = x.shape
    layer = _random.normal(seeds, 0, (1, h, w), x.device, torch.float32).to(x.dtype).mul_(scale).add_(loc)
    layer = _ops.clipped_zoom(layer, float(zoom))
    layer = torch.where(layer < threshold, 0.0, layer)
    layer = layer.clamp(0, 1).mul_(255).floor_().div_(255)  # .astype(np.uint8) for the PNG
    layer = _ops.motion_blur(layer, float(radius), float(sigma), _angles(seeds, 1, -135.0, -45.0))
    layer = layer.mul_(255).round_().clamp_(0, 255).div_(255)  # ImageMagick writes an 8-bit PNG
    gray = _ops.rgb_to_gray_cv(x)
    out = weight * x + (1 - weight) * torch.maximum(x, gray * 1.5 + 0.5)
    return (out + layer + layer.flip(-1, -2)).clamp_(0, 1)


def frost_corruption(x: torch.Tensor, c: tuple, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """``clip(c0 * x + c1 * crop)`` with a random crop of one of five frost textures (see
    :mod:`genaug.robustness.frost`: procedural by default), resized by the table's factor first."""
    b, ch, h, w = x.shape
    textures, sizes = frost.stacked_textures(FROST_RESIZE[table], (h, w))
    idx = _random.integers(seeds, 0, (1,), 0, textures.shape[0])[:, 0]
    u = _random.uniform(seeds, 1, (2,), "cpu", torch.float64)
    ys = (u[:, 0] * (sizes[idx, 0] - h)).floor().to(torch.int64)  # np.random.randint(0, th - h)
    xs = (u[:, 1] * (sizes[idx, 1] - w)).floor().to(torch.int64)
    n, _, hm, wm = textures.shape
    rows = ys[:, None, None] + torch.arange(h)[None, :, None]
    cols = xs[:, None, None] + torch.arange(w)[None, None, :]
    flat = (idx[:, None, None] * hm + rows) * wm + cols  # (B, H, W) into (5 * Hm * Wm)
    tex = textures.to(device=x.device, dtype=x.dtype).permute(1, 0, 2, 3).reshape(3, -1)
    crop = tex[:, flat.reshape(-1).to(x.device)].view(3, b, h, w).transpose(0, 1)
    if ch == 1:  # imagecorruptions' grayscale frost: 0.2989 R + 0.587 G + 0.114 B
        crop = 0.2989 * crop[:, 0:1] + 0.587 * crop[:, 1:2] + 0.114 * crop[:, 2:3]
    return (c[0] * x + c[1] * crop).clamp_(0, 1)


def _fog_map_size(table: str, h: int, w: int) -> int:
    size = FOG_MAP_SIZE[table]
    side = max(h, w)
    return size if size >= side else 1 << (side - 1).bit_length()


def fog(x: torch.Tensor, c: tuple, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """``clip((x + c0 * plasma) * max(x) / (max(x) + c0))`` with the diamond-square plasma fractal
    (map side as published: 32 / 64 / 256 px, cropped to the image; larger images: the next
    power of two)."""
    strength, decay = c
    b, _, h, w = x.shape
    size = _fog_map_size(table, h, w)
    uniforms = [[_random.uniform(seeds, 3 * k + j, (n, n), x.device, torch.float64) for j in range(3)]
                for k, n in enumerate(_ops.plasma_steps(size))]
    plasma = _ops.plasma_fractal(uniforms, size, float(decay))[:, None, :h, :w].to(x.dtype)
    max_val = x.amax(dim=(1, 2, 3), keepdim=True)
    return ((x + strength * plasma) * (max_val / (max_val + strength))).clamp_(0, 1)


def brightness(x: torch.Tensor, c: float, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """HSV value ``V + c`` (clipped), hue and saturation kept: ``x * V' / V`` in closed form (gray
    ``V'`` where ``V = 0``), equal to scikit-image's ``rgb2hsv`` / ``hsv2rgb`` round trip. 1 channel: ``x + c``."""
    if x.shape[1] == 1:
        return (x + c).clamp_(0, 1)
    v = x.amax(dim=1, keepdim=True)
    v2 = (v + c).clamp_(0, 1)
    return torch.where(v > 0, x * (v2 / v.clamp(min=1e-30)), v2).clamp_(0, 1)


def saturate(x: torch.Tensor, c: tuple, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """HSV saturation ``S * c0 + c1`` (clipped), hue and value kept, in closed form:
    ``V - (S' / S) (V - x)``; a gray pixel (``S = 0``, hue 0 in scikit-image) becomes
    ``(V, V (1 - S'), V (1 - S'))``. 1 channel: unchanged (no hue; imagecorruptions returns its red
    channel, which is ``V``)."""
    if x.shape[1] == 1:
        return x.clone()
    v = x.amax(dim=1, keepdim=True)
    mn = x.amin(dim=1, keepdim=True)
    s = torch.where(v > 0, (v - mn) / v.clamp(min=1e-30), 0.0)
    s2 = (s * c[0] + c[1]).clamp_(0, 1)
    colored = v - (s2 / s.clamp(min=1e-30)) * (v - x)
    gray = torch.cat([v, v * (1 - s2), v * (1 - s2)], dim=1)
    return torch.where(s > 0, colored, gray).clamp_(0, 1)


def contrast(x: torch.Tensor, c: float, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """``clip((x - mean) * c + mean)`` with the per-channel mean of each image."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    return ((x - mean) * c + mean).clamp_(0, 1)


# ----------------------------------------------------------------------------- digital


def _elastic_scale(table: str, h: int, w: int) -> float:
    """Pixel parameters are published for the table's image side; other sides scale them."""
    return min(h, w) / TABLE_SIZES[table]


def elastic_transform(x: torch.Tensor, c: tuple, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """The published elastic transform: a random affine map moving three points by U(-c2, c2) px
    (OpenCV ``warpAffine``, bilinear, ``BORDER_REFLECT_101``), then a displacement field
    ``alpha * gaussian(U(-1, 1), sigma, mode="reflect", truncate=3)`` per axis, sampled with SciPy's
    ``map_coordinates(order=1, mode="reflect")``."""
    b, ch, h, w = x.shape
    k = _elastic_scale(table, h, w)
    alpha, sigma, affine = (float(v) * k for v in c)
    # pts1 as the script builds them (cv2 points are (x, y)); the centre is (w // 2, h // 2)
    cx, cy, s = float(w // 2), float(h // 2), float(min(h, w) // 3)
    pts1 = torch.tensor([[cx + s, cy + s], [cx + s, cy - s], [cx - s, cy - s]], dtype=torch.float64)
    pts2 = pts1 + (_random.uniform(seeds, 0, (3, 2), "cpu", torch.float64) * 2 - 1) * affine
    # getAffineTransform: M with M @ [p1, 1] = p2; warpAffine samples the source at M^-1 (dst)
    src = torch.cat([pts1, torch.ones(3, 1, dtype=torch.float64)], 1)  # (3, 3)
    m = torch.linalg.solve(src, pts2).transpose(1, 2)  # (B, 2, 3)
    full = torch.cat([m, torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64).expand(b, 1, 3)], 1)
    inv = torch.linalg.inv(full).to(x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device, dtype=torch.float64),
                            torch.arange(w, device=x.device, dtype=torch.float64), indexing="ij")
    sx = inv[:, 0, 0, None, None] * gx + inv[:, 0, 1, None, None] * gy + inv[:, 0, 2, None, None]
    sy = inv[:, 1, 0, None, None] * gx + inv[:, 1, 1, None, None] * gy + inv[:, 1, 2, None, None]
    warped = _ops.bilinear(x, sy, sx, "mirror")
    fields = _random.uniform(seeds, 1, (2, h, w), x.device, torch.float32) * 2 - 1
    if sigma > 0:  # (float32 products: the script casts the field to float32 too)
        taps = _ops.gaussian_taps(sigma, truncate=3.0)
        fields = _ops.separable(fields, _ops.filter_matrix(h, taps, "reflect", fields),
                                _ops.filter_matrix(w, taps, "reflect", fields))
    dx, dy = (fields * alpha).to(torch.float64).unbind(1)
    return _ops.bilinear(warped, gy + dy, gx + dx, "reflect").clamp_(0, 1)


def _pixelate_size(n: int, c: float) -> int:
    return int(n * c)


def pixelate(x: torch.Tensor, c: float, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """PIL ``resize((int(W c), int(H c)), BOX)`` then ``resize((W, H), BOX)`` on the 8-bit image, with
    Pillow's own fixed-point arithmetic (:func:`_ops.box_resize_8bit`): equal to PIL for uint8 input.
    Like JPEG it works in 8 bits (a float input is rounded to 1/255 steps first, as the published
    code's PIL images are)."""
    h, w = x.shape[-2:]
    u = x.to(torch.float64).mul(255).round_().clamp_(0, 255)
    u = _ops.box_resize_8bit(u, (_pixelate_size(h, c), _pixelate_size(w, c)))
    return _ops.box_resize_8bit(u, (h, w)).div_(255).to(x.dtype)


def _jpeg_one(arr: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as dec:
        out = np.asarray(dec)
    return out[..., None] if out.ndim == 2 else out


def jpeg_compression(x: torch.Tensor, c: int, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """PIL ``save(format="JPEG", quality=c)`` and decode, image by image (PIL has no batch codec; the
    images are spread over a few threads, as PIL's codecs release the GIL; on an accelerator the
    batch goes through the host once)."""
    b = x.shape[0]
    u8 = x.detach().mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    if b >= 8:
        out = list(_jpeg_pool().map(_jpeg_one, u8, [int(c)] * b))
    else:
        out = [_jpeg_one(a, int(c)) for a in u8]
    return torch.from_numpy(np.stack(out)).to(x.device).permute(0, 3, 1, 2).to(x.dtype).div_(255)


@functools.lru_cache(maxsize=1)
def _jpeg_pool():
    import os
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="genaug-jpeg")


# ----------------------------------------------------------------------------- spatter

_WATER = (175 / 255, 238 / 255, 238 / 255)  # pale turquoise, added to R, G, B
_MUD = (63 / 255, 42 / 255, 20 / 255)  # mud brown


def _colour(x: torch.Tensor, rgb: tuple[float, float, float]) -> torch.Tensor:
    return torch.tensor(rgb, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)


def _to_channels(layer: torch.Tensor, channels: int) -> torch.Tensor:
    """An RGB layer for a ``channels``-channel image (1 channel: ``0.2989 R + 0.587 G + 0.114 B``)."""
    if channels == 3:
        return layer
    return 0.2989 * layer[:, 0:1] + 0.587 * layer[:, 1:2] + 0.114 * layer[:, 2:3]


def spatter(x: torch.Tensor, c: tuple, seeds: torch.Tensor, table: str) -> torch.Tensor:
    """The published spatter: a N(loc, scale) liquid layer, Gaussian-blurred and thresholded. Water
    (``mud == 0``): Canny edges of the 8-bit layer, their chamfer distance (cut at 20), box blur,
    histogram equalisation, emboss, box blur, times the layer, normalised to ``intensity``, added in
    pale turquoise. Mud: the blurred mask of the layer (kept where ``>= 0.8``) blends towards brown."""
    loc, scale, sigma, threshold, intensity, mud = c
    b, ch, h, w = x.shape
    layer = _random.normal(seeds, 0, (h, w), x.device, torch.float32).to(torch.float64).mul_(scale).add_(loc)
    layer = _ops.gaussian_filter(layer, float(sigma), "nearest")
    layer = torch.where(layer < threshold, 0.0, layer)
    if not mud:
        # (liquid * 255).astype(np.uint8); values above 1 (rare) saturate here instead of wrapping
        l8 = layer.mul(255).floor_().clamp_(0, 255)
        edges = _spatter.canny(l8, 50, 150)
        dist = _spatter.distance_transform(edges, 20.0)
        dist = _spatter.box3(dist.to(torch.float32)).floor_()  # cv2.blur (float32) then .astype(np.uint8)
        dist = _spatter.equalize_hist(dist)
        dist = _spatter.emboss_u8(dist)
        dist = _spatter.box3(dist).round_()  # cv2.blur on 8-bit output rounds
        m = (l8.to(torch.float32) * dist).unsqueeze(1)
        peak = m.amax(dim=(2, 3), keepdim=True)
        m = torch.where(peak > 0, m / peak.clamp(min=1e-30), 0.0) * intensity
        add = m.to(x.dtype) * _colour(x, _WATER)
        if ch == 1:
            add = _to_channels(add.clamp(0, 1), 1)
        return (x + add).clamp_(0, 1)
    mask = (layer > threshold).to(torch.float64)
    mask = _ops.gaussian_filter(mask, float(intensity), "nearest")
    mask = torch.where(mask < 0.8, 0.0, mask).unsqueeze(1).to(x.dtype)
    colour = _to_channels(_colour(x, _MUD) * mask, ch)
    return (x * (1 - mask) + colour).clamp_(0, 1)


# ----------------------------------------------------------------------------- registry

#: name -> batched corruption function, in the benchmark's order (15) then the extra 4.
CORRUPTIONS: dict[str, Fn] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur, "glass_blur": glass_blur, "motion_blur": motion_blur, "zoom_blur": zoom_blur,
    "snow": snow, "frost": frost_corruption, "fog": fog, "brightness": brightness,
    "contrast": contrast, "elastic_transform": elastic_transform, "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
    "speckle_noise": speckle_noise, "gaussian_blur": gaussian_blur, "spatter": spatter, "saturate": saturate,
}
assert tuple(CORRUPTIONS) == ALL

#: Corruptions that read the image on the host (no device-only path): JPEG (PIL), shot noise and
#: spatter (data-dependent loops: Poisson rejection rounds, Canny hysteresis).
HOST_READS = frozenset({"jpeg_compression", "shot_noise", "spatter"})


def check_name(name: Any) -> str:
    """Validate a corruption name (one of :data:`CORRUPTIONS`)."""
    if not isinstance(name, str) or name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; allowed: {', '.join(CORRUPTIONS)}")
    return name


def check_severity(name: str, value: Any) -> int:
    """Validate a severity: an int in 1..5 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int in 1..5, got {value!r} ({type(value).__name__})")
    if not 1 <= int(value) <= 5:
        raise ValueError(f"{name} must be an int in 1..5, got {value!r}")
    return int(value)


def min_size(name: str, severity: int, table: str) -> int:
    """Smallest image side ``name`` works on at ``severity``: the elastic transform's three points
    need a side of 3 px; pixelate needs ``int(side * factor) >= 1``; the others any size."""
    if name == "elastic_transform":
        return 3
    if name == "pixelate":
        c = severity_params(name, severity, table)
        return next(n for n in range(1, 64) if int(n * c) >= 1)
    return 1


def apply_corruption(x: torch.Tensor, name: str, severity: int, table: str, seeds: torch.Tensor) -> torch.Tensor:
    """Run ``name`` at ``severity`` of ``table`` on a float batch with per-sample ``seeds`` (checks the size)."""
    h, w = x.shape[-2:]
    need = min_size(name, severity, table)
    if min(h, w) < need:
        raise ValueError(f"{name} at severity {severity} needs images of at least {need}x{need} pixels, got {h}x{w}")
    if x.shape[0] == 0:
        return x.clone()
    return CORRUPTIONS[name](x, severity_params(name, severity, table), seeds, table)


def _seed_of(generator: torch.Generator | None) -> torch.Generator:
    if generator is None:
        return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def corrupt(images: torch.Tensor, name: str, severity: int, generator: torch.Generator | None = None,
            table: str | None = None) -> torch.Tensor:
    """Corrupt a batch with one of the 19 corruptions at ``severity`` (1..5), published parameters.

    Args:
        images: ``(B, C, H, W)`` or ``(C, H, W)``, uint8 (0..255) or float (0..1), 1 or 3 channels,
            on any device.
        name: one of :data:`CORRUPTIONS` (``genaug.robustness.BENCHMARK`` are the 15 of the
            benchmark, ``EXTRA`` the 4 held-out ones).
        severity: 1..5.
        generator: CPU ``torch.Generator`` the per-sample seeds are drawn from (``None``: torch's
            global RNG, so ``torch.manual_seed`` makes it reproducible).
        table: ``"cifar"``, ``"tiny-imagenet"``, ``"imagenet"``, or ``None``: by size (larger side
            <= 32 px: CIFAR-10-C, <= 64: Tiny-ImageNet-C, else ImageNet-C).

    Returns:
        The corrupted images, same shape, dtype and device.

    Example:
        >>> import torch
        >>> x = torch.rand(4, 3, 32, 32)
        >>> y = corrupt(x, "gaussian_noise", 3, generator=torch.Generator().manual_seed(0))
        >>> y.shape, bool((y - x).std() > 0.05)
        (torch.Size([4, 3, 32, 32]), True)
    """
    from genaug.robustness.transforms import Corruption

    op = Corruption(check_name(name), check_severity("severity", severity), table=table, seed=0)
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4):
        raise ValueError("images must be a (B, C, H, W) or (C, H, W) tensor")
    b = 1 if images.dim() == 3 else images.shape[0]
    params = op.sample_params(b, (int(images.shape[-2]), int(images.shape[-1])), _seed_of(generator))
    return op(images, params=params)


__all__ = ["CORRUPTIONS", "corrupt", "apply_corruption", "check_name", "check_severity", "min_size"]
