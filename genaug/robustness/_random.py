"""Counter-based random fields: every random number is a pure function of (sample seed, stream, index).

A corruption's randomness (noise, plasma fractal, snow layer, elastic field, pixel swaps, motion
angle) comes from one ``seed`` per sample in its params. Each use draws from its own *stream*
(``derive(seed, stream)``), and element ``j`` of a stream is a hash of the stream key and ``j``:
so a batch gives each sample exactly what it gets alone, the CPU executor may chunk a batch
freely, replay needs only the seeds, and the integer part is bitwise identical on every device.

Standard normal fields reuse :class:`genaug.RandomGaussianNoise`'s counter-based generator (its
``apply`` with ``std=1`` on zeros), so Gaussian noise here is the same noise that transform adds.
Uniform fields hash with the same SplitMix64 construction (Steele, Lea & Flood, 2014): element
``j`` of key ``k`` is ``mix64(k + (j + 1) * G)``.
"""

from __future__ import annotations

import torch

from genaug.transforms.base import to_device
from genaug.transforms.photometric import RandomGaussianNoise

_G = 0x9E3779B97F4A7C15 - 2**64  # the golden-ratio increment, as a signed int64
_M1 = 0xBF58476D1CE4E5B9 - 2**64
_M2 = 0x94D049BB133111EB - 2**64
#: stream constant multiplier (odd, unrelated to _G) so derive(seed, s) never collides across samples
_STREAM = 0xD1B54A32D192ED03 - 2**64


def mix64(z: torch.Tensor) -> torch.Tensor:
    """Stafford's Mix13 finalizer on int64 values read as uint64 (out of place)."""
    z = z.clone()
    tmp = torch.empty_like(z)
    for shift, mult in ((30, _M1), (27, _M2), (31, None)):
        torch.bitwise_right_shift(z, shift, out=tmp)
        z.bitwise_xor_(tmp.bitwise_and_((1 << (64 - shift)) - 1))  # logical shift: mask the sign copies
        if mult is not None:
            z.mul_(mult)
    return z


def derive(seeds: torch.Tensor, stream: int) -> torch.Tensor:
    """Per-sample seeds ``(B,)`` of an independent sub-stream ``stream`` (a small non-negative int)."""
    seeds = seeds.to(device="cpu", dtype=torch.int64)
    offset = ((stream + 1) * _STREAM) % 2**64  # wrapped to int64, as the tensor arithmetic wraps
    return mix64(seeds + (offset - 2**64 if offset >= 2**63 else offset))


def _keys(seeds: torch.Tensor) -> torch.Tensor:
    return mix64(seeds.to(device="cpu", dtype=torch.int64) + _G)


def uniform_at(keys: torch.Tensor, counters: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uniform numbers in (0, 1) for broadcastable int64 ``keys`` and element ``counters``.

    float32 values use 24 random bits, float64 values 53; neither is ever 0 or 1.
    """
    z = mix64(keys + (counters + 1) * _G)
    if dtype == torch.float64:
        bits = torch.bitwise_right_shift(z, 11).bitwise_and_((1 << 53) - 1)
        return bits.to(torch.float64).add_(0.5).mul_(2.0**-53)
    bits = torch.bitwise_right_shift(z, 40).bitwise_and_((1 << 24) - 1)
    return bits.to(torch.float32).add_(0.5).mul_(2.0**-24).to(dtype)


def uniform(seeds: torch.Tensor, stream: int, shape: tuple[int, ...], device: torch.device | str = "cpu",
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A ``(B, *shape)`` field of U(0, 1) numbers from per-sample ``seeds`` and ``stream``."""
    b = seeds.shape[0]
    n = 1
    for s in shape:
        n *= int(s)
    keys = to_device(_keys(derive(seeds, stream)), device).view(b, 1)
    counters = torch.arange(n, dtype=torch.int64, device=device).view(1, n)
    return uniform_at(keys, counters, dtype).view(b, *shape)


def integers(seeds: torch.Tensor, stream: int, shape: tuple[int, ...], low: int, high: int,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """Integers uniform in ``[low, high)`` (like ``np.random.randint``), shape ``(B, *shape)``."""
    u = uniform(seeds, stream, shape, device, torch.float64)
    return (u * (high - low)).floor_().to(torch.int64).clamp_(0, high - low - 1).add_(low)


_NORMAL = RandomGaussianNoise(mean=0.0, std=1.0, clip=False, seed=0)


def normal(seeds: torch.Tensor, stream: int, shape: tuple[int, ...], device: torch.device | str = "cpu",
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A ``(B, *shape)`` standard normal field: :class:`~genaug.RandomGaussianNoise`'s generator."""
    b = seeds.shape[0]
    zeros = torch.zeros((b, *shape), device=device, dtype=dtype)
    params = {"std": torch.ones(b, dtype=torch.float64), "noise_seed": derive(seeds, stream)}
    return _NORMAL.apply(zeros, params)


def poisson(lam: torch.Tensor, seeds: torch.Tensor, stream: int) -> torch.Tensor:
    """Exact Poisson(``lam``) counts for ``lam`` ``(B, n)`` (float64), counter-based per element.

    Like NumPy's ``random.poisson``: inversion by sequential search for ``lam < 10`` (one uniform
    per element, from ``stream``) and Hörmann's transformed rejection with squeeze (PTRS, 1993)
    for ``lam >= 10``, whose round ``r`` draws its two uniforms from streams ``stream + 1 + 2r`` and
    ``stream + 2 + 2r`` at the element's own index. So every count depends only on its sample's
    seed and its position. The loops run on the elements still undecided (one host read per step).
    """
    b, n = lam.shape
    device = lam.device
    flat = lam.reshape(-1)
    out = torch.zeros(b * n, dtype=torch.float64, device=device)

    def keys(s: int) -> torch.Tensor:
        return _keys(derive(seeds, s)).to(device)

    def draw(s: int, pos: torch.Tensor) -> torch.Tensor:
        return uniform_at(keys(s)[pos // n], pos % n, torch.float64)

    small = flat < 10
    pos = small.nonzero().squeeze(1)
    if pos.numel():
        # k = #{j >= 0 : F(j) < u}: an element stops at the first j with u <= F(j)
        u, lam_s = draw(stream, pos), flat[pos]
        p = torch.exp(-lam_s)
        cdf = p.clone()
        j = 0
        while pos.numel() and j < 1000:  # a count above ~60 for lam < 10 has probability < 2^-53
            going = (u > cdf) & (p > 0)
            out[pos[~going]] = float(j)
            pos, u, lam_s, p, cdf = pos[going], u[going], lam_s[going], p[going], cdf[going]
            j += 1
            p.mul_(lam_s).div_(j)
            cdf.add_(p)
    pos = (~small).nonzero().squeeze(1)
    r = 0
    while pos.numel():  # PTRS: an attempt per round for the elements not yet accepted
        lam_b = flat[pos]
        u = draw(stream + 1 + 2 * r, pos) - 0.5
        v = draw(stream + 2 + 2 * r, pos)
        slam = lam_b.sqrt()
        bb = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * bb
        us = 0.5 - u.abs()
        k = torch.floor((2 * a / us + bb) * u + lam_b + 0.43)
        accept = (us >= 0.07) & (v <= 0.9277 - 3.6224 / (bb - 2))
        reject = (k < 0) | ((us < 0.013) & (v > us))
        log_invalpha = (1.1239 + 1.1328 / (bb - 3.4)).log()
        lhs = v.log() + log_invalpha - (a / (us * us) + bb).log()
        rhs = -lam_b + k * lam_b.log() - torch.lgamma(k.clamp(min=0) + 1)
        accept = accept | (~reject & (lhs <= rhs))
        out[pos[accept]] = k[accept]
        pos = pos[~accept]
        r += 1
    return out.view(b, n)
