"""RandomGaussianNoise: counter-based noise, a pure function of each sample's seed and pixel position.

The noise of sample ``i`` must not depend on which other samples share its batch (``p < 1`` subsets,
CPU chunking, a per-sample reference run), nor on the device; and it must be standard normal noise:
unbiased, unit variance, normal-shaped, with no correlation between neighbouring pixels or between
samples with consecutive seeds (``_sample`` hands out consecutive seeds).
"""

import math

import pytest
import torch

import genaug as ga
from genaug.transforms import pipeline
from genaug.transforms.base import take_rows

MASK64 = 2**64 - 1
GAMMA = 0x9E3779B97F4A7C15


def _mix64(z: int) -> int:
    """SplitMix64's finalizer (Stafford's Mix13) on Python ints: uint64 arithmetic, no int64 pitfalls."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def reference_noise(seed: int, n: int, element: int) -> float:
    """The documented generator, in float64 on Python ints: element ``element`` of an ``n``-element sample."""
    key = _mix64((seed + GAMMA) & MASK64)
    m = (n + 1) // 2
    pair, use_sine = (element, False) if element < m else (element - m, True)
    z = _mix64((key + (pair + 1) * GAMMA) & MASK64)
    top = z >> 40
    top = top - 2**24 if top >= 2**23 else top  # read as a signed 24-bit integer
    u1 = (top + 2**23 + 1) / 2**24
    angle = 2 * math.pi * ((z >> 16) & 0xFFFFFF) / 2**24
    radius = math.sqrt(-2 * math.log(u1))
    return radius * (math.sin(angle) if use_sine else math.cos(angle))


def unit_noise(seeds, shape=(4, 125, 125)) -> torch.Tensor:
    """The transform's unit noise for ``seeds`` (float64 zeros image, std 1, no mean, no clip: out == noise)."""
    aug = ga.RandomGaussianNoise(std=1.0, clip=False, seed=0)
    x = torch.zeros(len(seeds), *shape, dtype=torch.float64)
    _, params = aug(x, return_params=True)
    params["noise_seed"] = torch.as_tensor(seeds, dtype=torch.int64)
    return aug(x, params=params)


def assert_uncorrelated(a: torch.Tensor, b: torch.Tensor) -> None:
    """Sample correlation of paired values within 5 standard errors (1 / sqrt(pairs)) of 0."""
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    r = float((a * b).sum() / (a.norm() * b.norm()))
    assert abs(r) < 5 / math.sqrt(a.numel()), (r, a.numel())


# ------------------------------------------------------------------------------------ the generator
def test_noise_is_the_documented_counter_based_generator():
    """Every element equals the docstring's SplitMix64 + Box-Muller recipe computed on Python ints.

    Seeds near the int64 limits and negative ones check that the int64 tensor arithmetic (wrapping
    multiply, masked logical shifts) behaves as uint64; the odd element count checks the last pair.
    """
    seeds = [0, 1, 12345, 2**62, 2**63 - 1, -5]
    shape = (3, 7, 5)  # n = 105 (odd): pair 52 gives only its cosine
    noise = unit_noise(seeds, shape).flatten(1)
    n = math.prod(shape)
    want = torch.tensor([[reference_noise(s, n, e) for e in range(n)] for s in seeds], dtype=torch.float64)
    torch.testing.assert_close(noise, want, rtol=0, atol=2e-5)  # float32 log/cos/sin vs float64


def test_unit_noise_is_standard_normal():
    """1e6 values: mean 0, std 1, Kolmogorov-Smirnov distance to the normal CDF, both tails."""
    x = unit_noise(range(16)).flatten()  # consecutive small seeds, seed 0 included
    n = x.numel()
    assert n == 1_000_000
    assert abs(float(x.mean())) < 5 / math.sqrt(n)
    assert abs(float(x.std()) - 1) < 5 / math.sqrt(2 * n)
    cdf = torch.special.ndtr(x.sort().values)
    ranks = torch.arange(n + 1, dtype=torch.float64) / n
    ks = max(float((ranks[1:] - cdf).max()), float((cdf - ranks[:-1]).max()))
    assert ks < 1.95 / math.sqrt(n)  # the 0.1 % critical value
    for t in (3.0, 4.0):  # tail mass: binomial counts within 5 sigma
        p = 2 * float(torch.special.ndtr(torch.tensor(-t, dtype=torch.float64)))
        count = int((x.abs() > t).sum())
        assert abs(count - n * p) < 5 * math.sqrt(n * p), (t, count, n * p)
    assert float(x.abs().max()) <= math.sqrt(48 * math.log(2)) + 1e-6  # the documented bound


def test_no_correlation_between_neighbours_or_consecutive_seeds():
    x = unit_noise(range(1000, 1016))  # (16, 4, 125, 125): 1e6 values
    assert_uncorrelated(x[..., :-1], x[..., 1:])  # horizontal neighbours
    assert_uncorrelated(x[..., :-1, :], x[..., 1:, :])  # vertical neighbours
    assert_uncorrelated(x[:, :-1], x[:, 1:])  # neighbouring channels
    flat = x.flatten(1)
    half = flat.shape[1] // 2  # elements j and j + n/2 share a Box-Muller pair: independent normals
    assert_uncorrelated(flat[:, :half], flat[:, half:])
    assert_uncorrelated(flat[:, :half] ** 2, flat[:, half:] ** 2)  # not merely uncorrelated
    assert_uncorrelated(x[:-1], x[1:])  # samples with consecutive seeds
    assert_uncorrelated(x[:-1] ** 2, x[1:] ** 2)
    for i in range(15):  # streams that overlap (a seed's noise is its neighbour's, shifted) share values
        assert float(torch.isin(x[i + 1], x[i]).double().mean()) < 0.01  # float32 ties: ~0.1 %


# ------------------------------------------------------------------------------------ batch independence
@pytest.mark.parametrize("shape", [(3, 16, 16), (1, 5, 7), (3, 200, 250)])  # odd n; several CPU tiles per sample
def test_a_batch_equals_each_sample_run_alone_with_its_params_rows(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, *shape, generator=g)
    aug = ga.RandomGaussianNoise(std=(0.05, 0.2), p=0.5, seed=3)
    out, params = aug(x, return_params=True)
    assert 0 < int(params["apply"].sum()) < 8  # a p < 1 subset
    for i in range(8):
        alone = aug(x[i : i + 1], params=take_rows(params, slice(i, i + 1)))
        assert torch.equal(alone, out[i : i + 1]), i
    subset = torch.tensor([6, 1, 3])  # any sub-batch, in any order
    assert torch.equal(aug(x[subset], params=take_rows(params, subset)), out[subset])


def test_cpu_chunking_does_not_change_the_noise(monkeypatch):
    x = torch.rand(10, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    aug = ga.RandomGaussianNoise(std=(0.05, 0.2), p=0.7, seed=4)
    whole, params = aug(x, return_params=True)
    monkeypatch.setattr(pipeline, "CPU_CHUNK_BYTES", 3 * 3 * 16 * 16 * 4)  # chunks of 3 samples
    assert torch.equal(aug(x, params=params), whole)


def test_same_on_batch_gives_every_sample_the_same_noise():
    """One seed for the batch means one noise field: a sample's output is a function of its params row."""
    x = torch.full((4, 3, 8, 8), 0.5)
    out = ga.RandomGaussianNoise(std=0.1, same_on_batch=True, seed=0)(x)
    assert not torch.equal(out[0], x[0])
    assert all(torch.equal(out[0], out[i]) for i in range(1, 4))


# ------------------------------------------------------------------------------------ replay and dtypes
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8])
def test_replay_is_bitwise_and_the_params_alone_decide(dtype):
    x = torch.rand(6, 3, 20, 24, generator=torch.Generator().manual_seed(2))
    x = (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    kwargs = dict(mean=0.05, std=(0.0, 0.2), p=0.7)
    aug = ga.RandomGaussianNoise(**kwargs, seed=1)
    out, params = aug(x, return_params=True)
    assert out.dtype == dtype and out.shape == x.shape
    assert torch.equal(aug(x, params=params), out)
    assert torch.equal(ga.RandomGaussianNoise(**kwargs, seed=99)(x, params=params), out)
    assert not torch.equal(aug(x), out)  # a new call draws new seeds


def test_every_float_dtype_gets_the_same_noise():
    """The noise is computed in float32 whatever the image dtype."""
    x = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(5))
    aug = ga.RandomGaussianNoise(std=(0.05, 0.2), clip=False, seed=2)
    ref, params = aug(x, return_params=True)
    for dtype in (torch.float16, torch.bfloat16):
        xl = x.to(dtype)
        assert torch.equal(aug(xl, params=params), aug(xl.float(), params=params).to(dtype))
        assert torch.isfinite(aug(xl, params=params).float()).all()
    torch.testing.assert_close(aug(x.double(), params=params).float(), ref, rtol=0, atol=1e-6)


def test_uint8_in_uint8_out_with_the_requested_std():
    x = torch.full((8, 3, 64, 64), 128, dtype=torch.uint8)
    aug = ga.RandomGaussianNoise(std=0.1, seed=0)
    out, params = aug(x, return_params=True)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    delta = (out.double() - 128) / 255
    # rounding to integers adds a variance of 1 / (12 * 255^2): std 0.10006
    assert abs(float(delta.mean())) < 0.002 and abs(float(delta.std()) - 0.1) < 0.002
    for i in (0, 5):
        assert torch.equal(aug(x[i : i + 1], params=take_rows(params, slice(i, i + 1))), out[i : i + 1])
    white = torch.full((2, 3, 16, 16), 255, dtype=torch.uint8)
    assert ga.RandomGaussianNoise(std=0.5, seed=0)(white).float().mean() > 128  # clamped, never wrapped


# ------------------------------------------------------------------------------------ devices
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_runs_on_the_meta_device(dtype):
    """Tensor ops only, no device generator and no host sync: the meta device has neither values nor RNG."""
    aug = ga.RandomGaussianNoise(std=(0.01, 0.1), p=0.5, seed=0)
    x = torch.empty(4, 3, 32, 32, dtype=dtype, device="meta")
    out, params = aug(x, return_params=True)
    assert out.device.type == "meta" and out.shape == x.shape and out.dtype == dtype
    assert params["noise_seed"].device.type == "cpu" and params["noise_seed"].shape == (4,)


@pytest.mark.cuda
def test_cuda_gives_the_cpu_noise():
    """Same integers on both devices; only float32 log/cos/sin may differ in the last bits."""
    x = torch.rand(8, 3, 40, 44, generator=torch.Generator().manual_seed(6))
    aug = ga.RandomGaussianNoise(std=(0.05, 0.2), p=0.5, clip=False, seed=5)
    ref, params = aug(x, return_params=True)
    out = aug(x.cuda(), params=params)
    torch.testing.assert_close(out.cpu(), ref, rtol=0, atol=1e-6)
    for i in (0, 3):
        alone = aug(x[i : i + 1].cuda(), params=take_rows(params, slice(i, i + 1)))
        assert torch.equal(alone, out[i : i + 1])
