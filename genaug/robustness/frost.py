"""Frost textures for the ``frost`` corruption, generated procedurally (nothing is downloaded).

The published frost corruption blends the image with a random crop of one of five photographs of
frost on glass (``frost1.png`` .. ``frost5.jpg`` in ``hendrycks/robustness``; the scripts draw
``np.random.randint(5)``, so ``frost6.jpg`` is never used). genaug does not ship those photos.
By default it draws five procedural textures instead, made once per process from fixed seeds
(the same pixels on every machine): ice needles growing from random nuclei with side branches
(dendrites) over a low-frequency haze, at the published photos' sizes (600x900, 315x560,
315x560, 350x527, 495x660) and with each photo's per-channel mean and standard deviation
(measured on the published files), so a severity's blend weights add as much light and texture
as they do in the published data. The crystals' look differs from the photos; frost is
therefore the one benchmark corruption whose errors are not comparable with published
CIFAR-10-C / ImageNet-C numbers.

To use the published photos, pass them to :func:`set_frost_textures` (for example the files of a
``hendrycks/robustness`` checkout, or of an installed ``imagecorruptions`` package)::

    from genaug.robustness import frost
    frost.set_frost_textures(frost.load_frost_textures("path/to/frost/folder"))
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

#: (height, width) of the published frost1..frost5 photos.
SHAPES: tuple[tuple[int, int], ...] = ((600, 900), (315, 560), (315, 560), (350, 527), (495, 660))
#: Per-channel (R, G, B) mean and standard deviation of each published photo, 0..255.
STATS: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = (
    ((77.7, 149.1, 165.7), (26.9, 16.5, 15.3)),
    ((200.8, 205.4, 214.5), (21.4, 22.1, 22.6)),
    ((200.8, 205.4, 214.5), (21.4, 22.1, 22.6)),
    ((137.6, 152.8, 165.2), (28.5, 28.5, 29.9)),
    ((112.4, 123.4, 134.8), (44.4, 43.3, 41.7)),
)

_USER_TEXTURES: list[np.ndarray] | None = None


def _haze(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Sum of bilinearly upsampled random grids (cells of 128, 64, 32, 16 px), unit variance."""
    out = np.zeros((h, w))
    for cell, weight in ((128, 1.0), (64, 0.6), (32, 0.35), (16, 0.2)):
        grid = torch.from_numpy(rng.standard_normal((1, 1, h // cell + 2, w // cell + 2)))
        out += weight * F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
    return (out - out.mean()) / out.std()


def _segment_points(y: np.ndarray, x: np.ndarray, angle: np.ndarray, length: np.ndarray,
                    strength: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points every half pixel along each segment, fading to 40 % of ``strength`` at its tip."""
    n = np.maximum(2, (length * 2).astype(np.int64))
    seg = np.repeat(np.arange(len(n)), n)
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    t = k * (length / (n - 1))[seg]
    return y[seg] + t * np.sin(angle[seg]), x[seg] + t * np.cos(angle[seg]), strength[seg] * (1 - 0.6 * t / length[seg])


def _needles(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Bright ice needles: bursts of 3..8 needles from random nuclei (about one per 30x30 px), each
    needle with 2..6 shorter side branches, splatted bilinearly, unit variance."""
    area = h * w
    nuclei = int(area / 900)
    per = rng.integers(3, 9, nuclei)
    cy, cx = np.repeat(rng.uniform(0, h, nuclei), per), np.repeat(rng.uniform(0, w, nuclei), per)
    base = np.repeat(rng.uniform(0, 2 * np.pi, nuclei), per)
    k = np.arange(int(per.sum())) - np.repeat(np.cumsum(per) - per, per)
    angle = base + 2 * np.pi * k / 6 + rng.normal(0, 0.35, len(k))
    length, strength = rng.uniform(6, 45, len(k)), rng.uniform(0.3, 1.0, len(k))
    branches = rng.integers(2, 7, len(k))
    parent = np.repeat(np.arange(len(k)), branches)
    at = rng.uniform(0.15, 0.9, len(parent)) * length[parent]
    side = rng.choice([-1.0, 1.0], len(parent)) * rng.uniform(0.7, 1.2, len(parent))
    by, bx = cy[parent] + at * np.sin(angle[parent]), cx[parent] + at * np.cos(angle[parent])
    blen = length[parent] * rng.uniform(0.15, 0.4, len(parent))
    parts = [_segment_points(cy, cx, angle, length, strength),
             _segment_points(by, bx, angle[parent] + side, blen, strength[parent] * 0.7)]
    ys, xs, vs = (np.concatenate([p[i] for p in parts]) for i in range(3))
    keep = (ys >= 0) & (ys < h - 1) & (xs >= 0) & (xs < w - 1)
    ys, xs, vs = ys[keep], xs[keep], vs[keep]
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    fy, fx = ys - y0, xs - x0
    acc = np.zeros(area)
    for dy, dx, wt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        acc += np.bincount((y0 + dy) * w + x0 + dx, weights=vs * wt, minlength=area)
    acc = np.minimum(acc.reshape(h, w), 1.5)
    return (acc - acc.mean()) / acc.std()


@functools.lru_cache(maxsize=8)
def procedural_texture(index: int) -> np.ndarray:
    """Procedural texture ``index`` (0..4): uint8 ``(H, W, 3)`` RGB, the published photo's size and statistics.

    Example:
        >>> procedural_texture(1).shape
        (315, 560, 3)
    """
    h, w = SHAPES[index]
    rng = np.random.default_rng(20190101 + index)
    luma = 0.45 * _haze(rng, h, w) + 1.0 * _needles(rng, h, w) + 0.15 * rng.standard_normal((h, w))
    luma = (luma - luma.mean()) / luma.std()
    mean, std = (np.asarray(v) for v in STATS[index])
    tint = 0.15 * _haze(rng, h, w)  # a little colour variation, as in the photos
    out = mean + std * (luma[..., None] * np.sqrt(1 - 0.15**2) + tint[..., None] * np.array([1.0, -0.5, -0.5]))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def load_frost_textures(folder: str | os.PathLike[str]) -> list[np.ndarray]:
    """Read the published ``frost1.png, frost2.png, frost3.png, frost4.jpg, frost5.jpg`` from ``folder``.

    Returns:
        Five uint8 RGB arrays ``(H, W, 3)``, for :func:`set_frost_textures`.
    """
    from PIL import Image

    folder = Path(folder)
    names = ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks the frost photos {missing}")
    out = []
    for name in names:
        with Image.open(folder / name) as img:
            out.append(np.asarray(img.convert("RGB"), dtype=np.uint8).copy())
    return out


def set_frost_textures(textures: Sequence[np.ndarray] | None) -> None:
    """Use these five uint8 RGB ``(H, W, 3)`` textures for ``frost`` (``None``: back to the procedural ones)."""
    global _USER_TEXTURES
    if textures is None:
        _USER_TEXTURES = None
    else:
        textures = [np.asarray(t) for t in textures]
        if len(textures) != 5 or not all(t.ndim == 3 and t.shape[2] == 3 and t.dtype == np.uint8 for t in textures):
            raise ValueError("set_frost_textures needs five uint8 RGB arrays of shape (H, W, 3)")
        _USER_TEXTURES = list(textures)
    _stacked.cache_clear()


def textures() -> list[np.ndarray]:
    """The five textures in use (user-set, or the procedural ones)."""
    return _USER_TEXTURES if _USER_TEXTURES is not None else [procedural_texture(i) for i in range(5)]


@functools.lru_cache(maxsize=16)
def _stacked(resize: float, min_h: int, min_w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The textures resized by ``resize`` (OpenCV ``INTER_LINEAR`` semantics), each grown if needed to exceed
    ``min_h`` x ``min_w``, zero-padded into one float32 ``(5, 3, Hm, Wm)`` tensor in 0..1, plus their ``(5, 2)`` sizes."""
    out, sizes = [], []
    for tex in textures():
        t = torch.from_numpy(tex).permute(2, 0, 1).unsqueeze(0).to(torch.float32)
        h, w = tex.shape[:2]
        size = (int(round(h * resize)), int(round(w * resize)))
        if size != (h, w):
            t = F.interpolate(t, size=size, mode="bilinear", align_corners=False).round_().clamp_(0, 255)
        if size[0] <= min_h or size[1] <= min_w:  # too small for the image: grow (as imagecorruptions does)
            grow = 1.1 * max(min_h / size[0], min_w / size[1])
            size = (int(np.ceil(size[0] * grow)), int(np.ceil(size[1] * grow)))
            t = F.interpolate(t, size=size, mode="bilinear", align_corners=False).round_().clamp_(0, 255)
        out.append(t[0] / 255.0)
        sizes.append(size)
    hm, wm = max(s[0] for s in sizes), max(s[1] for s in sizes)
    stacked = torch.zeros(len(out), 3, hm, wm)
    for k, t in enumerate(out):
        stacked[k, :, : t.shape[1], : t.shape[2]] = t
    return stacked, torch.tensor(sizes, dtype=torch.int64)


def stacked_textures(resize: float, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(textures ``(5, 3, Hm, Wm)`` float32 0..1, sizes ``(5, 2)``) for a table's resize factor and image size."""
    return _stacked(float(resize), int(size[0]), int(size[1]))
