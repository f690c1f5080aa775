"""The CUDA blur kernel (genaug.transforms.triton_blur), run on the CPU by Triton's interpreter.

The kernel must give the CPU path's numbers (reflect borders, per-sample taps, any radius below the
side, tiles that overhang the image) and, for every sample, the same bits alone as in a batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from genaug.transforms import triton_blur

pytest.importorskip("triton", reason="Triton ships with PyTorch's Linux wheels; the kernel is only used with it")

SCRIPT = textwrap.dedent(
    """
    import torch
    from genaug.transforms import triton_blur
    from genaug.transforms.photometric import separable_blur

    g = torch.Generator().manual_seed(0)
    shapes = [(2, 3, 5, 7), (3, 1, 17, 70), (1, 4, 33, 65), (2, 2, 1, 9), (2, 3, 16, 64), (1, 3, 40, 3)]
    worst = 0.0
    for k, (b, c, h, w) in enumerate(shapes):
        kh = min(2 * (k % 3) + 1, 2 * h - 1)  # radius up to the side - 1
        kw = min(2 * ((k + 1) % 4) + 1, 2 * w - 1)
        x = torch.rand(b, c, h, w, generator=g)
        ky = torch.rand(b, kh, generator=g)
        kx = torch.rand(b, kw, generator=g)
        ky, kx = ky / ky.sum(1, keepdim=True), kx / kx.sum(1, keepdim=True)
        got = triton_blur.separable_blur_triton(x, ky, kx)
        want = separable_blur(x, ky, kx)
        assert got.shape == x.shape and got.dtype == x.dtype, (got.shape, got.dtype)
        worst = max(worst, (got - want).abs().max().item())
        for i in range(b):  # each sample alone: the same bits
            alone = triton_blur.separable_blur_triton(x[i:i + 1], ky[i:i + 1], kx[i:i + 1])
            assert torch.equal(alone[0], got[i]), (b, c, h, w, i)
        strided = x.transpose(2, 3).contiguous().transpose(2, 3)  # a non-contiguous input
        assert torch.equal(triton_blur.separable_blur_triton(strided, ky, kx), got)
    assert worst <= 1e-6, worst
    print("worst", worst)
    """
)


def test_kernel_matches_the_cpu_path_and_each_sample_alone():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("worst"), done.stdout


def test_only_float32_cuda_tensors_without_autograd_take_the_kernel(monkeypatch):
    assert not triton_blur.available(torch.zeros(1, 1, 4, 4))  # CPU: the PyTorch path
    assert not triton_blur.available(torch.zeros(1, 1, 4, 4, device="meta"))
    monkeypatch.setattr(torch.Tensor, "device", property(lambda self: torch.device("cuda")))
    assert triton_blur.available(torch.zeros(1, 1, 4, 4))
    assert not triton_blur.available(torch.zeros(1, 1, 4, 4, dtype=torch.float64))
    assert not triton_blur.available(torch.zeros(1, 1, 4, 4, requires_grad=True))
    tall = torch.zeros(1, 1, triton_blur.BLOCK_H * triton_blur.MAX_GRID + 1, 1).expand(1, 1, -1, 4)
    assert not triton_blur.available(tall)  # more row tiles than a CUDA grid holds
    monkeypatch.setenv("GENAUG_TRITON", "0")
    assert not triton_blur.available(torch.zeros(1, 1, 4, 4))
