"""The separable Gaussian blur as one Triton kernel, for float32 batches on a CUDA device.

Why: on a GPU the blur was a reflect pad and two grouped (depthwise) convolutions, three passes
over the batch and the slowest part of a call (an H100, B=256, 224x224: 1.18 of 2.85 ms of
kernels, ``benchmarks/cuda_profile.py``). Here each program reads a tile of one image plane with
its reflected border and writes the blurred tile once: the x pass and the y pass happen in
registers, so the batch crosses memory once each way.

Numbers: each output is ``sum_i ky[i] * (sum_j kx[j] * x[reflect(r + i - ry), reflect(c + j - rx)])``
summed in the order of ``i`` and ``j``, the order of the CPU path; only the compiler's fused
multiply-adds can move the last bit. Every output depends on its own plane and its own sample's
taps alone, so a batch equals each sample run alone, bit for bit.

It is used where :func:`available` says so (CUDA, float32, no autograd, Triton importable, and
the environment variable ``GENAUG_TRITON`` not ``0``); everywhere else the blur keeps its PyTorch
formulation. The first call for each kernel size compiles the kernel (about a second; Triton
caches it on disk). The tests run the kernel on the CPU under ``TRITON_INTERPRET=1``.

Example (a CUDA machine):
    >>> import torch
    >>> from genaug.transforms import triton_blur
    >>> x = torch.rand(2, 3, 32, 32)
    >>> taps = torch.tensor([[0.25, 0.5, 0.25], [0.0, 1.0, 0.0]])
    >>> triton_blur.available(x)  # a CPU tensor: the PyTorch path blurs it
    False
"""

from __future__ import annotations

import functools
import os

import torch

BLOCK_H = 16
BLOCK_W = 64
MAX_GRID = 65535  # CUDA's limit on a grid's y and z dimensions


@functools.lru_cache(maxsize=None)
def _kernel():
    """Compile-on-first-use: importing genaug never imports Triton."""
    import triton
    import triton.language as tl

    @triton.jit
    def blur(x_ptr, out_ptr, ky_ptr, kx_ptr, channels, h, w,
             KH: tl.constexpr, KW: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr):
        plane = tl.program_id(0)  # b * channels + c
        sample = plane // channels
        rows = tl.program_id(1) * BH + tl.arange(0, BH)
        cols = tl.program_id(2) * BW + tl.arange(0, BW)
        inside = (rows < h)[:, None] & (cols < w)[None, :]
        base = plane.to(tl.int64) * h * w
        acc = tl.zeros((BH, BW), dtype=tl.float32)
        for i in tl.static_range(KH):
            r = rows + (i - KH // 2)
            r = tl.abs(r)  # row -k reads row k
            r = tl.where(r > h - 1, 2 * (h - 1) - r, r)  # row h-1+k reads row h-1-k
            r = tl.minimum(tl.maximum(r, 0), h - 1)  # rows past the tile's end (masked) stay in bounds
            line = tl.zeros((BH, BW), dtype=tl.float32)
            for j in tl.static_range(KW):
                c = cols + (j - KW // 2)
                c = tl.abs(c)
                c = tl.where(c > w - 1, 2 * (w - 1) - c, c)
                c = tl.minimum(tl.maximum(c, 0), w - 1)
                v = tl.load(x_ptr + base + r[:, None] * w + c[None, :], mask=inside, other=0.0)
                line += tl.load(kx_ptr + sample * KW + j) * v
            acc += tl.load(ky_ptr + sample * KH + i) * line
        tl.store(out_ptr + base + rows[:, None] * w + cols[None, :], acc, mask=inside)

    return blur


def _triton_importable() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def available(image: torch.Tensor) -> bool:
    """Whether :func:`separable_blur_triton` serves ``image`` (CUDA, float32, no autograd)."""
    if image.device.type != "cuda" or image.dtype != torch.float32 or os.environ.get("GENAUG_TRITON") == "0":
        return False
    if torch.is_grad_enabled() and image.requires_grad:
        return False
    if image.dim() != 4 or -(-image.shape[-2] // BLOCK_H) > MAX_GRID or -(-image.shape[-1] // BLOCK_W) > MAX_GRID:
        return False  # CUDA caps the 2nd and 3rd grid dimensions: such an image keeps the convolution
    return _triton_importable()


def separable_blur_triton(image: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor,
                          out: torch.Tensor | None = None) -> torch.Tensor:
    """Blur ``image`` (B, C, H, W) along x with per-sample taps ``kx`` (B, kw), along y with ``ky``
    (B, kh), reflect borders (radii smaller than the sides: the caller checks), in one kernel.

    Runs wherever Triton runs its kernels: a CUDA device, or any tensor under ``TRITON_INTERPRET=1``.
    """
    b, c, h, w = image.shape
    x = image.contiguous()
    ky = ky.to(device=x.device, dtype=torch.float32).contiguous()
    kx = kx.to(device=x.device, dtype=torch.float32).contiguous()
    if out is None or not out.is_contiguous() or out.shape != x.shape or out.dtype != x.dtype:
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
    if x.numel() == 0:
        return out
    grid = (b * c, -(-h // BLOCK_H), -(-w // BLOCK_W))
    _kernel()[grid](x, out, ky, kx, c, h, w, KH=ky.shape[1], KW=kx.shape[1], BH=BLOCK_H, BW=BLOCK_W)
    return out
