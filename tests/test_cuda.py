"""genaug on CUDA gives the CPU's results (DESIGN: "any device"; parameters are drawn on the CPU).

Every test runs on ``device`` in ("cpu", "cuda"). The cuda variants are deselected where
``torch.cuda.is_available()`` is False (this machine and CI have no GPU); they run on a GPU
machine with the command in ``benchmarks/gpu_command.txt``. The cpu variants run everywhere and
exercise the same test logic (there the device result must equal the CPU reference exactly).

What is checked, for every public transform, the containers and a Compose of all of them, with
fixed seeds, on float32 and uint8 batches:

* the parameters drawn for a device batch are the CPU's, bitwise, and are CPU tensors;
* the output is on the device, with the input's dtype, and equals the CPU output: float32 to
  ``atol=1e-4``; uint8 within 1 level on >= 99.9% of the pixels (rounding can flip a level where
  the two devices' float results straddle a .5); nearest-neighbour sampling (masks,
  ``interpolation="nearest"``) equal on >= 99.9% of the pixels (a coordinate that rounds one way
  on one device can round the other way on the other);
* replaying the params on the device is bitwise identical; the input is not modified;
* masks, boxes and keypoints on the device equal the CPU's; generative sampling with a seeded CPU
  generator equals the CPU's samples.

PyTorch computes cuDNN convolutions in TF32 on Ampere and later GPUs by default (``cudnn.allow_tf32
= True``; a 10-bit mantissa), which a grouped-convolution blur inherits. The parity tests pin full
float32 (TF32 off for convolutions and matmuls); ``test_default_precision_settings`` measures the
difference under PyTorch's defaults, bounds it loosely and reports it as a warning.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import pytest
import torch
import torch.nn.functional as F

import genaug as ga
import genaug.transforms as gt

HAS_CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]  # cuda: deselected without a GPU (conftest.py)
DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.uint8, id="uint8")]
# PyTorch's precision flags as they were before this module changed anything.
DEFAULT_TF32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
FLOAT_ATOL = 1e-4
SHARE = 0.999  # share of pixels that must agree where rounding / nearest sampling may flip a few


class CudaParityReport(UserWarning):
    """Carries measured CPU/CUDA differences into pytest's warnings summary."""


def _set_tf32(conv: bool, matmul: bool) -> None:
    torch.backends.cudnn.allow_tf32 = conv
    torch.backends.cuda.matmul.allow_tf32 = matmul


@pytest.fixture(autouse=True)
def full_float32():
    """Parity is checked in full float32: TF32 off for cuDNN convolutions and cuBLAS matmuls."""
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    _set_tf32(False, False)
    yield
    _set_tf32(*saved)


# ------------------------------------------------------------------------------------ inputs
def photo(dtype: torch.dtype, b: int = 6, h: int = 40, w: int = 48, seed: int = 0) -> torch.Tensor:
    """A smooth image batch with fine noise on top (so a shifted or wrong pixel shows)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(b, 3, 6, 7, generator=g)
    noise = torch.rand(b, 3, h, w, generator=g)
    x = 0.8 * F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False) + 0.2 * noise
    return (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x


def _every_op() -> list[Any]:
    """One instance of every public transform (but Normalize), in a fusable order."""
    return [
        ga.RandomCrop(36, padding=4, fill=0.5),
        ga.RandomResizedCrop((34, 38), scale=(0.3, 1.0)),
        ga.RandomRotation(25, p=0.8),
        ga.RandomScale((0.4, 1.3)),
        ga.RandomAffine(10, (0.05, 0.05), (0.9, 1.1), 5),
        ga.RandomHorizontalFlip(),
        ga.RandomVerticalFlip(p=0.3),
        ga.CenterCrop((30, 32)),
        ga.Resize(24),
        ga.ColorJitter(0.3, 0.3, 0.3, 0.05, p=0.8),
        ga.RandomBrightness(0.2),
        ga.RandomContrast(0.2),
        ga.RandomSaturation(0.2),
        ga.RandomHue(0.05, hue_mode="hsv"),
        ga.RandomGaussianBlur(3, p=0.6),
        ga.RandomBilateralBlur(3, p=0.5),
        ga.OneOf([ga.RandomRotation(10), ga.RandomAffine(0, shear=10)]),
        ga.SomeOf([ga.RandomHorizontalFlip(1.0), ga.RandomBrightness(0.3), ga.RandomScale((0.9, 1.1))], n=(1, 2)),
        ga.RandomApply([ga.RandomRotation(15)], p=0.5),
        ga.RandomGaussianNoise(std=(0.01, 0.05), p=0.5),
    ]


# name -> (factory, nearest-neighbour sampling?). Each factory builds a fresh, seeded instance.
OPS: dict[str, tuple[Callable[[], Any], bool]] = {
    "RandomCrop": (lambda: ga.RandomCrop(36, padding=4, fill=0.5, seed=1), False),
    "RandomCrop-reflect": (lambda: ga.RandomCrop((30, 44), padding=(2, 6), padding_mode="reflect", seed=1), False),
    "RandomResizedCrop": (lambda: ga.RandomResizedCrop((28, 32), scale=(0.2, 1.0), seed=1), False),
    "CenterCrop": (lambda: ga.CenterCrop((30, 36)), False),
    "Resize-shrink": (lambda: ga.Resize(16), False),  # antialias pre-blur
    "Resize-bicubic-up": (lambda: ga.Resize((64, 72), interpolation="bicubic"), False),
    "RandomRotation": (lambda: ga.RandomRotation(30, p=0.7, seed=1), False),
    "RandomScale": (lambda: ga.RandomScale((0.3, 1.5), seed=1), False),
    "RandomAffine": (lambda: ga.RandomAffine(20, (0.1, 0.1), (0.5, 1.5), 10, padding_mode="reflect", seed=1), False),
    "RandomAffine-border-fill": (lambda: ga.RandomAffine(20, scale=(0.7, 1.3), padding_mode="border", seed=2), False),
    "RandomAffine-nearest": (lambda: ga.RandomAffine(20, interpolation="nearest", fill=(0.2, 0.4, 0.6), seed=1), True),
    "RandomHorizontalFlip": (lambda: ga.RandomHorizontalFlip(seed=1), False),
    "RandomVerticalFlip": (lambda: ga.RandomVerticalFlip(seed=1), False),
    "ColorJitter": (lambda: ga.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.7, seed=1), False),
    "ColorJitter-hsv": (lambda: ga.ColorJitter(0.4, 0.4, 0.4, 0.1, hue_mode="hsv", seed=1), False),
    "RandomBrightness": (lambda: ga.RandomBrightness(0.4, seed=1), False),
    "RandomContrast": (lambda: ga.RandomContrast(0.4, seed=1), False),
    "RandomSaturation": (lambda: ga.RandomSaturation(0.4, seed=1), False),
    "RandomHue": (lambda: ga.RandomHue(0.2, seed=1), False),
    "RandomGaussianBlur": (lambda: ga.RandomGaussianBlur(5, p=0.7, seed=1), False),
    "RandomBilateralBlur": (lambda: ga.RandomBilateralBlur(5, seed=1), False),
    "RandomGaussianNoise": (lambda: ga.RandomGaussianNoise(std=(0.02, 0.1), p=0.7, seed=1), False),
    "RandomGaussianNoise-unclipped": (lambda: ga.RandomGaussianNoise(0.05, (0.02, 0.1), clip=False, seed=1), False),
    "Normalize": (lambda: ga.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3)), False),
    "OneOf": (lambda: ga.OneOf([ga.RandomRotation(30), ga.RandomAffine(0, shear=15), ga.RandomScale()], seed=1), False),
    "SomeOf": (lambda: ga.SomeOf([ga.RandomRotation(30), ga.RandomBrightness(0.3), ga.RandomGaussianBlur(3)],
                                 n=(1, 2), seed=1), False),
    "RandomApply": (lambda: ga.RandomApply([ga.RandomRotation(30), ga.ColorJitter(0.3, 0.3)], p=0.5, seed=1), False),
    "Compose-all": (lambda: ga.Compose([*_every_op(), ga.Normalize((0.5,) * 3, (0.25,) * 3)], seed=3), False),
}
# Public names that are not concrete transforms to compare across devices.
NOT_COMPARED = {
    "Transform": "base class",
    "GeometricTransform": "base class",
    "ModuleStage": "wraps a third-party callable that keeps its own randomness",
}


def test_every_public_transform_is_compared():
    public = {n for n in gt.__all__ if isinstance(getattr(gt, n), type) and issubclass(getattr(gt, n), ga.Transform)}
    compared = {type(factory()).__name__ for factory, _ in OPS.values()}
    compared |= {type(t).__name__ for t in _every_op()}
    missing = public - compared - set(NOT_COMPARED)
    assert not missing, f"add these public transforms to OPS in tests/test_cuda.py: {sorted(missing)}"


# ------------------------------------------------------------------------------------ helpers
def assert_same_params(got: Any, want: Any, path: str = "params") -> None:
    """Bitwise-equal nested params, every tensor on the CPU."""
    assert isinstance(got, dict) and isinstance(want, dict), path
    assert got.keys() == want.keys(), f"{path}: keys {sorted(got)} != {sorted(want)}"
    for key, value in want.items():
        where = f"{path}[{key!r}]"
        if isinstance(value, dict):
            assert_same_params(got[key], value, where)
        elif isinstance(value, torch.Tensor):
            assert isinstance(got[key], torch.Tensor), where
            assert got[key].device.type == "cpu", f"{where} is on {got[key].device}: params must be sampled on the CPU"
            assert got[key].dtype == value.dtype and torch.equal(got[key], value), f"{where} differs"
        else:
            assert got[key] == value, where


def assert_matches_cpu(out: torch.Tensor, ref: torch.Tensor, device: str, nearest: bool = False, what: str = "image") -> None:
    assert out.device.type == device, f"{what} on {out.device}, want {device}"
    assert out.dtype == ref.dtype and out.shape == ref.shape, f"{what}: {out.dtype} {tuple(out.shape)} vs {ref.dtype} {tuple(ref.shape)}"
    got = out.cpu()
    if device == "cpu":
        assert torch.equal(got, ref), f"{what}: the CPU does not reproduce itself"
        return
    assert_close_values(got, ref, nearest, what)


def assert_close_values(got: torch.Tensor, ref: torch.Tensor, nearest: bool, what: str) -> None:
    """The tolerances of the module docstring (``got`` already on the CPU)."""
    if ref.numel() == 0:
        return
    if ref.dtype == torch.uint8:
        diff = (got.int() - ref.int()).abs()
        share = (diff <= 1).double().mean().item()
        assert share >= SHARE, (f"{what}: only {share:.4%} of the uint8 values within 1 level of the CPU's "
                                f"(max diff {diff.max().item()})")
        return
    if not ref.is_floating_point():  # integer masks
        share = (got == ref).double().mean().item()
        assert share >= SHARE, f"{what}: only {share:.4%} of the values equal the CPU's"
        return
    diff = (got.double() - ref.double()).abs()
    if nearest:
        share = (diff <= FLOAT_ATOL).double().mean().item()
        assert share >= SHARE, f"{what}: only {share:.4%} of the values within {FLOAT_ATOL} of the CPU's"
    else:
        assert diff.max().item() <= FLOAT_ATOL, f"{what}: max |device - cpu| = {diff.max().item():.3g} > {FLOAT_ATOL}"


def test_the_tolerances_pass_rounding_noise_and_catch_real_differences():
    """The device comparisons run only on a GPU; their logic is checked here on made-up differences."""
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(4, 3, 50, 50, generator=g)
    assert_close_values(ref + 5e-5, ref, False, "float")
    with pytest.raises(AssertionError, match="max"):
        assert_close_values(ref + 2e-4, ref, False, "float")
    flipped = ref.clone()
    flipped.view(-1)[:20] += 0.5  # 20 of 30,000 values: 0.07%, e.g. nearest samples that round the other way
    assert_close_values(flipped, ref, True, "nearest")
    flipped.view(-1)[:60] += 0.5  # 0.2%
    with pytest.raises(AssertionError, match="values within"):
        assert_close_values(flipped, ref, True, "nearest")
    ref8 = (ref * 255).round().to(torch.uint8)
    off = ref8.int() + torch.randint(-1, 2, ref8.shape, generator=g)  # every value off by up to 1 level
    off.view(-1)[:20] += 5
    assert_close_values(off.clamp(0, 255).to(torch.uint8), ref8, False, "uint8")
    off.view(-1)[:60] += 5
    with pytest.raises(AssertionError, match="within 1 level"):
        assert_close_values(off.clamp(0, 255).to(torch.uint8), ref8, False, "uint8")
    labels = torch.randint(0, 5, (4, 50, 50), generator=g)
    wrong = labels.clone()
    wrong.view(-1)[:30] += 1
    with pytest.raises(AssertionError, match="values equal"):
        assert_close_values(wrong, labels, True, "masks")


# ------------------------------------------------------------------------------------ transforms
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("device", DEVICES)
def test_transform_matches_cpu(device, name, dtype):
    factory, nearest = OPS[name]
    x = photo(dtype)
    ref, ref_params = factory()(x, return_params=True)
    xd = x.to(device)
    before = xd.clone()
    aug = factory()  # a fresh instance with the same seed
    out, params = aug(xd, return_params=True)
    assert_same_params(params, ref_params)
    assert_matches_cpu(out, ref, device, nearest=nearest)
    assert torch.equal(xd, before), "the input was modified"
    assert torch.equal(aug(xd, params=params), out), "replay on the device is not bitwise identical"
    assert torch.equal(factory()(xd, params=ref_params), out), "the CPU's params replayed on the device differ"


@pytest.mark.parametrize("device", DEVICES)
def test_unbatched_and_empty_inputs(device):
    aug = OPS["Compose-all"][0]
    x = photo(torch.uint8, b=1)[0]
    assert_matches_cpu(aug()(x.to(device)), aug()(x), device)
    empty = photo(torch.float32, b=0).to(device)
    out = aug()(empty)
    assert out.device.type == device and out.shape[0] == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_gaussian_noise_on_the_device(device, dtype):
    """Replay is exact and the noise has the sampled strength on every device.

    (That the field itself is the CPU's is checked with every other op by test_transform_matches_cpu:
    genaug's noise is a function of the per-sample seeds, not of a device generator.)
    """
    factory = lambda: ga.RandomGaussianNoise(std=(0.05, 0.1), clip=dtype == torch.uint8, seed=1)  # noqa: E731
    x = photo(dtype)
    ref, ref_params = factory()(x, return_params=True)
    xd = x.to(device)
    aug = factory()
    out, params = aug(xd, return_params=True)
    assert_same_params(params, ref_params)
    assert out.device.type == device and out.dtype == dtype and out.shape == x.shape
    assert torch.equal(aug(xd, params=params), out)
    if dtype == torch.float32:  # unclipped: (out - x) / std is standard normal per sample
        z = (out.cpu().double() - x.double()) / params["std"].view(-1, 1, 1, 1)
        assert z.mean(dim=(1, 2, 3)).abs().max() < 0.1
        assert (z.std(dim=(1, 2, 3)) - 1).abs().max() < 0.1
    if device == "cpu":
        assert torch.equal(out, ref)


# ------------------------------------------------------------------------------------ targets
def _targets(b: int, h: int, w: int, mask_kind: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    if mask_kind == "int64":
        masks = torch.randint(0, 7, (b, h, w), generator=g)
    else:  # two float channels
        masks = (torch.rand(b, 2, h // 4, w // 4, generator=g) > 0.5).float()
        masks = F.interpolate(masks, size=(h, w), mode="nearest")
    xy0 = torch.rand(b, 3, 2, generator=g) * torch.tensor([w * 0.6, h * 0.6])
    wh = 4 + torch.rand(b, 3, 2, generator=g) * torch.tensor([w * 0.3, h * 0.3])
    boxes = torch.cat([xy0, xy0 + wh], dim=-1)
    keypoints = 2 + torch.rand(b, 5, 2, generator=g) * torch.tensor([w - 4.0, h - 4.0])
    return {"masks": masks, "boxes": boxes, "keypoints": keypoints, "labels": torch.arange(b)}


@pytest.mark.parametrize("mask_kind", ["int64", "float"])
@pytest.mark.parametrize("device", DEVICES)
def test_targets_match_cpu(device, mask_kind):
    def factory():
        return ga.Compose([
            ga.RandomResizedCrop((32, 36), scale=(0.4, 1.0)),
            ga.RandomRotation(30),
            ga.RandomAffine(10, (0.1, 0.1), (0.8, 1.2), 8),
            ga.RandomHorizontalFlip(),
            ga.ColorJitter(0.3, 0.3),
            ga.RandomGaussianBlur(3, p=0.5),
        ], seed=5)

    x = photo(torch.uint8)
    targets = _targets(*x.shape[:1], *x.shape[2:], mask_kind)
    ref, ref_params = factory()(x, **targets, return_params=True)
    on_device = {k: v.to(device) for k, v in targets.items()}
    aug = factory()
    res, params = aug(x.to(device), **on_device, return_params=True)
    assert_same_params(params, ref_params)
    assert res.keys() == ref.keys()
    assert_matches_cpu(res["image"], ref["image"], device)
    assert_matches_cpu(res["masks"], ref["masks"], device, nearest=True, what="masks")
    for key in ("boxes", "keypoints"):
        assert res[key].device.type == device
        assert torch.allclose(res[key].cpu(), ref[key], atol=1e-3, rtol=0), f"{key} differ from the CPU's"
    for key in ("boxes_valid", "keypoints_valid", "labels"):
        assert res[key].device.type == device and torch.equal(res[key].cpu(), ref[key]), f"{key} differ"
    again = aug(x.to(device), **on_device, params=params)
    for key, value in res.items():
        assert torch.equal(again[key], value), f"replay of {key} on the device is not bitwise identical"


# ------------------------------------------------------------------------------------ generative
MODELS = ["mnist-cgan", "mnist-cvae"]


@pytest.fixture(scope="module")
def cpu_samples() -> dict[str, torch.Tensor]:
    labels = torch.arange(40) % 10
    return {name: ga.load_model(name).sample(40, labels=labels, generator=torch.Generator().manual_seed(0))
            for name in MODELS}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("device", DEVICES)
def test_generative_sampling_matches_cpu(device, name, cpu_samples):
    model = ga.load_model(name).to(device)
    labels = torch.arange(40) % 10
    out = model.sample(40, labels=labels, generator=torch.Generator().manual_seed(0))
    ref = cpu_samples[name]
    assert out.device.type == device and out.dtype == ref.dtype and out.shape == ref.shape
    diff = (out.cpu() - ref).abs().max().item()
    assert diff <= 1e-3, f"{name}: max |{device} - cpu| = {diff:.3g}"
    again = model.sample(40, labels=labels, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, out), "same seed on the same device must give the same samples bitwise"
    g1, g2 = (torch.Generator(device=device).manual_seed(1) for _ in range(2))
    assert torch.equal(model.sample(16, generator=g1), model.sample(16, generator=g2)), "device generator not reproducible"


@pytest.mark.parametrize("device", DEVICES)
def test_vae_reconstruction_matches_cpu(device):
    x = ga.load_model("mnist-cgan").sample(16, labels=torch.arange(16) % 10, generator=torch.Generator().manual_seed(3))
    vae = ga.load_model("mnist-cvae")
    labels = torch.arange(16) % 10
    mu, logvar = vae.encode(x, labels)
    ref = vae.decode(mu, labels)
    vd = vae.to(device)
    mu_d, logvar_d = vd.encode(x.to(device), labels.to(device))
    out = vd.decode(mu_d, labels.to(device))
    assert (mu_d.cpu() - mu).abs().max().item() <= 1e-3 and (logvar_d.cpu() - logvar).abs().max().item() <= 1e-3
    assert (out.cpu() - ref).abs().max().item() <= 1e-3


# ------------------------------------------------------------------------------------ TF32
@pytest.mark.parametrize("device", DEVICES)
def test_default_precision_settings(device):
    """Under PyTorch's default precision flags the device stays close to the CPU; the gap is reported."""
    _set_tf32(*DEFAULT_TF32)
    x = photo(torch.float32)
    factory = lambda: ga.Compose(_every_op(), seed=3)  # noqa: E731 - values stay in 0..1
    image_diff = (factory()(x.to(device)).cpu() - factory()(x)).abs().max().item()
    labels = torch.arange(40) % 10
    model_diff = {}
    for name in MODELS:
        ref = ga.load_model(name).sample(40, labels=labels, generator=torch.Generator().manual_seed(0))
        out = ga.load_model(name).to(device).sample(40, labels=labels, generator=torch.Generator().manual_seed(0))
        model_diff[name] = (out.cpu() - ref).abs().max().item()
    if device == "cuda":
        warnings.warn(CudaParityReport(
            f"max |cuda - cpu| with PyTorch's default flags (cudnn.allow_tf32={DEFAULT_TF32[0]}, "
            f"cuda.matmul.allow_tf32={DEFAULT_TF32[1]}) on {torch.cuda.get_device_name(0)}: "
            f"Compose of every op (float32, 0..1) {image_diff:.2e}; "
            + "; ".join(f"{k} samples {v:.2e}" for k, v in model_diff.items())
        ), stacklevel=1)
    assert image_diff <= 5e-3, f"Compose of every op: max |{device} - cpu| = {image_diff:.3g} under the default flags"
    for name, diff in model_diff.items():
        assert diff <= 5e-2, f"{name}: max |{device} - cpu| = {diff:.3g} under the default flags"


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_pipeline_call_copies_no_pageable_memory_to_the_gpu(dtype):
    """Parameters reach the GPU through pinned memory only (``base.to_device``): a copy from
    pageable memory blocks the host until the GPU has run everything queued before it, so the
    call's launches would stop overlapping its kernels (an H100, B=256 224x224: 6.95 ms per call
    before, 4.35 ms after, for 2.8 ms of kernels)."""
    from torch.profiler import ProfilerActivity, profile

    aug = ga.Compose([ga.RandomResizedCrop(32), ga.RandomRotation(20), ga.RandomScale((0.8, 1.2)),
                      ga.ColorJitter(0.4, 0.4, 0.4, 0.1), ga.RandomGaussianBlur(5, p=0.5),
                      ga.RandomGaussianNoise(0.05, p=0.5)], seed=0)
    x = torch.rand(8, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    x = (x * 255).round().to(dtype) if dtype == torch.uint8 else x
    x = x.cuda()
    aug(x)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        aug(x)
        torch.cuda.synchronize()
    copies = [e.key for e in prof.key_averages() if "Memcpy HtoD" in e.key]
    assert copies, "the profiler saw no host-to-device copy at all: the test would pass on anything"
    assert not [k for k in copies if "Pageable" in k], copies
