"""The CPU fast paths of issue 11 give the same numbers as the plain formulations they replace.

Covered: the separable blur without padded copies, the planar sampling grid, the in-place edge
coverage, the one-pass uint8 conversions, the skipped clamp after a clamping last stage, and the
scratch buffers the chunked executor reuses from chunk to chunk (results never alias them).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from kornia.filters import get_gaussian_kernel1d

import genaug as ga
from genaug.transforms import base, photometric, pipeline, warp
from genaug.transforms.photometric import _blur_grouped_conv, separable_blur
from genaug.transforms.warp import edge_coverage, _footprint_scale, _host, sampling_grid


def _padded_blur(image: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor) -> torch.Tensor:
    """The formulation the CPU blur replaced: a reflect-padded copy per pass, then shifted slices."""

    def one_pass(x: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
        k = kernel.shape[1]
        r, n = k // 2, x.shape[dim]
        padded = F.pad(x, (r, r, 0, 0) if dim == 3 else (0, 0, r, r), mode="reflect") if r else x
        taps = kernel.view(-1, 1, 1, 1, k)
        out = padded.narrow(dim, 0, n) * taps[..., 0]
        for i in range(1, k):
            out.addcmul_(padded.narrow(dim, i, n), taps[..., i])
        return out

    return one_pass(one_pass(image, kx, 3), ky, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "shape, kh, kw",
    [((3, 3, 32, 40), 5, 5), ((2, 1, 7, 9), 5, 3), ((2, 3, 5, 5), 9, 9), ((4, 3, 16, 16), 1, 7), ((2, 3, 30, 17), 7, 1)],
)
def test_cpu_blur_matches_the_padded_formulation_bit_for_bit(shape, kh, kw, dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g, dtype=dtype)
    b = shape[0]
    ky = get_gaussian_kernel1d(kh, (torch.rand(b, generator=g) * 2 + 0.1).view(-1, 1)).to(dtype)
    kx = get_gaussian_kernel1d(kw, (torch.rand(b, generator=g) * 2 + 0.1).view(-1, 1)).to(dtype)
    out = separable_blur(x, ky, kx)
    assert torch.equal(out, _padded_blur(x, ky, kx))
    torch.testing.assert_close(out, _blur_grouped_conv(x, ky, kx))
    preset = torch.full_like(x, float("nan"))  # the out= path writes every element
    assert separable_blur(x, ky, kx, out=preset) is preset
    assert torch.equal(preset, out)


@settings(max_examples=60, deadline=None)
@given(
    b=st.integers(1, 6), c=st.integers(1, 4), h=st.integers(1, 24), w=st.integers(1, 24),
    ry=st.integers(0, 23), rx=st.integers(0, 23), strided=st.booleans(), seed=st.integers(0, 2**16),
)
def test_cpu_blur_any_shape_matches_padding_and_each_sample_alone(b, c, h, w, ry, rx, strided, seed):
    """Any radius below the side (up to side - 1, where the reflection reaches the far border),
    any layout: bit for bit the padded formulation, and each sample alone gives its own rows."""
    ry, rx = min(ry, h - 1), min(rx, w - 1)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, h, w, generator=g)
    if strided:  # a transposed layout (and channels_last for 4-D inputs)
        x = x.transpose(2, 3).contiguous().transpose(2, 3)
    ky = torch.softmax(torch.randn(b, 2 * ry + 1, generator=g), dim=1)
    kx = torch.softmax(torch.randn(b, 2 * rx + 1, generator=g), dim=1)
    out = separable_blur(x, ky, kx)
    assert torch.equal(out, _padded_blur(x, ky, kx))
    k = seed % b
    assert torch.equal(separable_blur(x[k:k + 1], ky[k:k + 1], kx[k:k + 1])[0], out[k])


@pytest.mark.parametrize("h, w, kh, kw", [(4, 9, 9, 3), (9, 4, 3, 9), (1, 1, 3, 1), (3, 3, 13, 13)])
def test_blur_radius_at_least_the_side_is_refused(h, w, kh, kw):
    """Reflect padding has no pixel to reflect past the far border (the old CPU path read an
    uninitialised row there): a clear error naming both radii and the size, on every path."""
    x = torch.rand(2, 3, h, w)
    ky, kx = torch.full((2, kh), 1.0 / kh), torch.full((2, kw), 1.0 / kw)
    with pytest.raises(ValueError, match=r"radius \(y \d+, x \d+\) must be smaller than the image size"):
        separable_blur(x, ky, kx)
    with pytest.raises(ValueError, match="radius"):
        separable_blur(x.requires_grad_(), ky, kx)  # the grouped-convolution path


def test_sampling_grid_is_a_planar_view_with_affine_grid_values():
    g = torch.Generator().manual_seed(1)
    matrix = torch.eye(3, dtype=torch.float64).repeat(4, 1, 1)
    matrix[:, :2, :] += 0.2 * torch.randn(4, 2, 3, generator=g, dtype=torch.float64)
    like = torch.empty(0)
    grid = sampling_grid(matrix, (20, 30), (12, 16), like)
    assert grid.shape == (4, 12, 16, 2) and grid.stride(-1) == 12 * 16  # planar (B, 2, h, w) underneath
    # F.affine_grid with the same normalised theta
    from genaug.transforms.warp import _denormalizer, _normalizer

    theta = torch.from_numpy((_normalizer(20, 30) @ _host(matrix) @ _denormalizer(12, 16))[:, :2, :]).float()
    expected = F.affine_grid(theta, [4, 1, 12, 16], align_corners=False)
    torch.testing.assert_close(grid, expected, atol=1e-6, rtol=0)
    x = torch.rand(4, 3, 20, 30, generator=g)
    assert torch.equal(
        F.grid_sample(x, grid, align_corners=False, padding_mode="border"),
        F.grid_sample(x, grid.contiguous(), align_corners=False, padding_mode="border"),
    )


def test_coverage_in_place_equals_the_min_clamp_product():
    g = torch.Generator().manual_seed(2)
    angle = torch.rand(5, generator=g, dtype=torch.float64) * 2.0
    scale = 0.5 + torch.rand(5, generator=g, dtype=torch.float64)
    m = torch.zeros(5, 3, 3, dtype=torch.float64)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = scale * angle.cos(), -scale * angle.sin(), scale * angle.sin(), scale * angle.cos()
    m[:, :2, 2], m[:, 2, 2] = 3.0, 1.0
    cov = edge_coverage(m, (24, 20), (18, 22), torch.empty(0))
    # the plain formulation (four temporaries), from the same coefficients
    import numpy as np

    mm = _host(m)
    inv = 1.0 / _footprint_scale(mm)
    coeffs = np.empty((5, 2, 6))
    for axis, extent in ((0, 20), (1, 24)):
        a, b = mm[:, axis, 0] * inv[:, axis], mm[:, axis, 1] * inv[:, axis]
        c = (mm[:, axis, 2] + 0.5) * inv[:, axis] + 0.5
        coeffs[:, axis] = np.stack([a, b, c, -a, -b, extent * inv[:, axis] - c + 1.0], axis=1)
    k = torch.from_numpy(coeffs).float()
    j, i = torch.arange(22, dtype=torch.float32), torch.arange(18, dtype=torch.float32)
    near = (k[:, :, 0:1] * j).unsqueeze(2) + (k[:, :, 1:2] * i + k[:, :, 2:3]).unsqueeze(3)
    far = (k[:, :, 3:4] * j).unsqueeze(2) + (k[:, :, 4:5] * i + k[:, :, 5:6]).unsqueeze(3)
    inside = torch.minimum(near, far).clamp_(0.0, 1.0)
    assert torch.equal(cov, (inside[:, 0] * inside[:, 1]).unsqueeze(1))
    assert 0.0 < float(cov.max()) <= 1.0 and float(cov.min()) < 1.0  # some edge in view


def test_uint8_conversions_are_exact():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    batch = pipeline.Batch.from_inputs(x).working()
    assert torch.equal(batch.image, x.to(torch.float32) / 255.0)
    assert torch.equal(batch.output_image(), x)
    assert torch.equal(batch.output_image(in_unit_range=True), x)
    out, work = torch.empty_like(x), torch.empty(x.shape)
    assert batch.output_image(out=out, work=work) is out and torch.equal(out, x)


def _aug(seed: int = 0, p_blur: float = 1.0) -> ga.Compose:
    return ga.Compose(
        [
            ga.RandomResizedCrop(24, scale=(0.5, 1.0)),
            ga.RandomRotation(30),
            ga.ColorJitter(0.4, 0.4, 0.4, 0.1),
            ga.RandomGaussianBlur(5, sigma=(0.1, 2.0), p=p_blur),
        ],
        seed=seed,
    )


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("p_blur", [1.0, 0.5])
def test_pooled_chunks_equal_one_chunk_and_results_never_alias_scratch(monkeypatch, dtype, p_blur):
    g = torch.Generator().manual_seed(3)
    x1 = (torch.rand(11, 3, 32, 32, generator=g) * 255).round().to(dtype)
    x2 = (torch.rand(11, 3, 32, 32, generator=g) * 255).round().to(dtype)
    if dtype == torch.float32:
        x1, x2 = x1 / 255, x2 / 255
    aug = _aug(p_blur=p_blur)
    whole, params = aug(x1, return_params=True)
    monkeypatch.setattr(pipeline, "CPU_CHUNK_BYTES", 3 * 3 * 32 * 32 * 4)  # chunks of 3 samples
    chunked = aug(x1, params=params)
    assert torch.equal(chunked, whole)
    kept = chunked.clone()
    other = aug(x2)  # reuses every scratch buffer
    assert torch.equal(chunked, kept)  # the first result was not overwritten
    assert not torch.equal(other, chunked)
    # each sample alone, with its own params rows (the defining property)
    for k in (0, 5, 10):
        alone = aug(x1[k : k + 1], params=base.take_rows(params, slice(k, k + 1)))
        assert torch.equal(alone[0], whole[k])


def test_uint8_output_clamp_is_skipped_only_after_a_clamping_stage(monkeypatch):
    x = torch.randint(0, 256, (7, 3, 20, 20), generator=torch.Generator().manual_seed(4), dtype=torch.uint8)
    monkeypatch.setattr(pipeline, "CPU_CHUNK_BYTES", 2 * 3 * 20 * 20 * 4)
    blur = ga.Compose([ga.RandomRotation(20), ga.RandomGaussianBlur(3, sigma=(0.5, 1.0))], seed=0)
    groups = pipeline.group_stages([pipeline.Stage(*leaf) for leaf in blur.leaves(blur.sample_params(7, (20, 20), torch.Generator()), None)])
    assert pipeline._ends_clamped(groups)
    # bicubic overshoots 0..1: a warp last must keep the clamp (never wrapping around in uint8)
    cubic = ga.Compose([ga.RandomRotation(20)], seed=0, interpolation="bicubic")
    groups = pipeline.group_stages([pipeline.Stage(*leaf) for leaf in cubic.leaves(cubic.sample_params(7, (20, 20), torch.Generator()), None)])
    assert not pipeline._ends_clamped(groups)
    sharp = torch.zeros(7, 3, 20, 20, dtype=torch.uint8)
    sharp[:, :, ::2] = 255
    out, params = cubic(sharp, return_params=True)
    float_out = cubic(sharp.float() / 255, params=params)
    assert torch.equal(out, (float_out * 255).round().clamp(0, 255).to(torch.uint8))
    for aug in (blur, ga.Compose([ga.ColorJitter(0.5, 0.5)], seed=0)):
        out, params = aug(x, return_params=True)
        expected = (aug(x.float() / 255, params=params) * 255).round().clamp(0, 255).to(torch.uint8)
        assert torch.equal(out, expected)


class _NestedCall(ga.RandomGaussianBlur):
    """A pixel stage that calls another genaug pipeline inside (its scratch use must not collide)."""

    def apply(self, image: torch.Tensor, params: dict) -> torch.Tensor:
        # fixed parameters, so that the inner call gives the same per sample whatever the chunks
        inner = ga.Compose(
            [ga.RandomRotation((10, 10)), ga.ColorJitter(brightness=(1.2, 1.2)), ga.RandomGaussianBlur(3, sigma=(1.0, 1.0))],
            seed=1,
        )
        return super().apply(inner(image), params)


def test_a_genaug_call_inside_a_stage_does_not_disturb_the_outer_chunks(monkeypatch):
    x = torch.randint(0, 256, (9, 3, 16, 16), generator=torch.Generator().manual_seed(5), dtype=torch.uint8)
    aug = ga.Compose([ga.RandomRotation(20), ga.ColorJitter(0.3), _NestedCall(3), ga.RandomGaussianBlur(3)], seed=0)
    whole, params = aug(x, return_params=True)
    monkeypatch.setattr(pipeline, "CPU_CHUNK_BYTES", 2 * 3 * 16 * 16 * 4)
    assert torch.equal(aug(x, params=params), whole)


def test_scratch_reuses_memory_and_avoids_the_callers_input():
    cpu = torch.device("cpu")
    a = base.scratch("test_slot", (4, 5), torch.float32, cpu)
    b = base.scratch("test_slot", (2, 5), torch.float32, cpu)
    assert a.data_ptr() == b.data_ptr()
    c = base.scratch("test_slot", (4, 5), torch.float32, cpu, avoid=a)
    assert c.data_ptr() != a.data_ptr()
    assert base.stage_output("test_slot", (4, 5), torch.float32, cpu, avoid=a) is None  # not allowed outside the executor
    with base.allow_stage_output(True):
        assert base.stage_output("test_slot2", (4, 5), torch.float32, cpu, avoid=a) is not None
    meta = base.scratch("test_slot", (4, 5), torch.float32, torch.device("meta"))
    assert meta.device.type == "meta"
    base.release_scratch()
    assert base.scratch("test_slot", (4, 5), torch.float32, cpu).shape == (4, 5)


# ----------------------------------------------------------------------------- autograd
@pytest.mark.parametrize("batch", [2, 64])  # 64 x 3 x 128 x 128 float32 runs in chunks on the CPU
def test_gradients_flow_and_two_calls_before_backward_keep_their_graphs(batch):
    """Differentiable augmentation (e.g. DiffAugment) works: the reused buffers and out= fast paths
    are off when the image requires grad, so a second call cannot overwrite what the first call's
    backward needs, and the gradients equal those of each call alone."""
    aug = ga.Compose([ga.RandomRotation(20), ga.RandomScale((0.6, 0.9)), ga.ColorJitter(0.3, 0.3, 0.3),
                      ga.RandomGaussianBlur(5, (0.1, 2.0))], seed=0)
    x1 = torch.rand(batch, 3, 128, 128, generator=torch.Generator().manual_seed(1), requires_grad=True)
    x2 = torch.rand(batch, 3, 128, 128, generator=torch.Generator().manual_seed(2), requires_grad=True)
    y1, p1 = aug(x1, return_params=True)
    y2, p2 = aug(x2, return_params=True)  # before y1's backward
    (y1.square().sum() + y2.sum()).backward()
    g1, g2 = x1.grad.clone(), x2.grad.clone()
    assert g1.abs().sum() > 0 and g2.abs().sum() > 0
    for x, p, loss, g in ((x1, p1, torch.square, g1), (x2, p2, lambda t: t, g2)):
        x.grad = None
        y = aug(x, params=p)
        loss(y).sum().backward()
        torch.testing.assert_close(x.grad, g, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # the fast path (no autograd) gives the same image, up to float rounding
        torch.testing.assert_close(aug(x1.detach(), params=p1), y1.detach(), rtol=1e-5, atol=1e-5)


def test_large_results_are_advised_huge_pages_inside_their_block(monkeypatch):
    """A whole-batch result of >= 32 MB asks for transparent huge pages on the 2 MB pages wholly
    inside its block, before anything is written; smaller ones and other devices are left alone."""
    calls = []
    monkeypatch.setattr(base, "_madvise", lambda: lambda addr, length, advice: calls.append((addr, length, advice)) or 0)
    big = base.new_result((9, 3, 640, 640), torch.float32, torch.device("cpu"))  # 44 MB
    assert big.shape == (9, 3, 640, 640) and big.dtype == torch.float32
    (addr, length, advice), = calls
    start, end = big.data_ptr(), big.data_ptr() + big.untyped_storage().nbytes()
    assert advice == 14 and addr % (2 << 20) == 0 and length % (2 << 20) == 0
    assert start <= addr and addr + length <= end and length >= end - start - 2 * (2 << 20)
    calls.clear()
    base.new_result((2, 3, 64, 64), torch.float32, torch.device("cpu"))
    base.new_result((9, 3, 640, 640), torch.float32, torch.device("meta"))
    assert calls == []


def test_chunked_and_opencv_outputs_come_from_new_result(monkeypatch):
    """Both backends allocate their whole output through new_result (so it gets the advice)."""
    made = []
    real = base.new_result

    def spy(shape, dtype, device):
        made.append(tuple(shape))
        return real(shape, dtype, device)

    monkeypatch.setattr(pipeline, "new_result", spy)
    monkeypatch.setattr(base, "new_result", spy)
    monkeypatch.setattr(pipeline, "CPU_CHUNK_BYTES", 3 * 16 * 16 * 4)  # one sample per chunk
    x = torch.rand(3, 3, 16, 16)
    for backend in ("torch", "opencv"):
        ga.Compose([ga.RandomRotation(20), ga.ColorJitter(0.3)], seed=0, backend=backend)(x)
    assert made == [(3, 3, 16, 16), (3, 3, 16, 16)]


def test_to_device_converts_where_the_tensor_lies_and_never_copies_to_the_host_asynchronously(monkeypatch):
    x = torch.tensor([0.2989, 1.5], dtype=torch.float64)
    assert base.to_device(x, "cpu") is x  # already there: no copy
    y = base.to_device(x, torch.device("cpu"), torch.float32)
    assert y.dtype == torch.float32 and torch.equal(y, x.to(torch.float32))
    calls = []

    def spy(self, *args, **kwargs):  # records the copy's mode; copies nothing
        calls.append(kwargs.get("non_blocking", False))
        return self

    monkeypatch.setattr(torch.Tensor, "to", spy)
    base.to_device(torch.zeros(2, device="meta"), "cpu")  # device -> host: must block
    assert calls[-1] is False
    base.to_device(torch.zeros(2), "meta")  # host -> device: queued
    assert calls[-1] is True


def test_pipeline_moves_parameters_only_through_to_device(monkeypatch):
    """Every host-to-device ``.to()`` in a whole pipeline call goes through ``to_device`` (pinned on CUDA).

    A spy on ``Tensor.to`` sorts the host -> meta moves of a call into those made inside
    ``to_device`` and strays. (It does not see ``torch.tensor(..., device=...)``; the CUDA test
    ``test_a_pipeline_call_copies_no_pageable_memory_to_the_gpu`` covers every kind of copy.)
    """
    moved, strays, inside = [], [], []
    real_to, real_helper = torch.Tensor.to, base.to_device

    def spy(self, *args, **kwargs):
        out = real_to(self, *args, **kwargs)
        if self.device.type == "cpu" and out.device.type == "meta":
            (moved if inside else strays).append(tuple(self.shape))
        return out

    def helper(t, device, dtype=None):
        inside.append(True)
        try:
            return real_helper(t, device, dtype)
        finally:
            inside.pop()

    monkeypatch.setattr(torch.Tensor, "to", spy)
    for module in (base, pipeline, photometric, warp):
        monkeypatch.setattr(module, "to_device", helper)
    aug = ga.Compose([ga.RandomResizedCrop(16), ga.RandomRotation(20), ga.ColorJitter(0.4, 0.4, 0.4, 0.1),
                      ga.RandomGaussianBlur(3, p=0.5), ga.RandomGaussianNoise(0.05, p=0.5)], seed=0)
    out = aug(torch.zeros(4, 3, 20, 20, device="meta"))
    assert out.device.type == "meta" and out.shape == (4, 3, 16, 16)
    assert moved and not strays, f"host -> device copies outside to_device: {strays}"
