"""Hypothesis property tests: shapes, dtypes, ranges, replay, determinism, inputs untouched."""

import torch
from hypothesis import given
from hypothesis import strategies as st

import genaug as ga

DTYPES = [torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64]


def full_pipeline(size, seed, p):
    return ga.Compose(
        [
            ga.RandomResizedCrop(size, scale=(0.3, 1.0), p=p),
            ga.RandomRotation(40, p=p),
            ga.RandomScale((0.5, 1.5), p=p),
            ga.RandomAffine(10, translate=(0.1, 0.1), shear=(-10, 10, -5, 5), p=p),
            ga.RandomHorizontalFlip(p),
            ga.RandomVerticalFlip(p),
            ga.ColorJitter(0.5, 0.5, 0.5, 0.2, p=p),
            ga.RandomGaussianBlur(3, (0.1, 1.5), p=p),
            ga.RandomGaussianNoise(std=(0.0, 0.1), p=p),
        ],
        seed=seed,
    )


def make_image(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    return (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)


@given(
    batch=st.integers(0, 4),
    channels=st.sampled_from([1, 3]),
    height=st.integers(4, 24),
    width=st.integers(4, 24),
    out=st.integers(3, 16),
    dtype=st.sampled_from(DTYPES),
    p=st.sampled_from([0.0, 0.5, 1.0]),
    seed=st.integers(0, 2**31),
)
def test_shape_dtype_range_replay_and_input_untouched(batch, channels, height, width, out, dtype, p, seed):
    x = make_image((batch, channels, height, width), dtype, seed)
    before = x.clone()
    aug = full_pipeline(out, seed, p)
    y, params = aug(x, return_params=True)
    assert y.shape == (batch, channels, out, out)
    assert y.dtype == dtype
    assert torch.equal(x, before)
    if dtype != torch.uint8:
        assert torch.isfinite(y.float()).all()
        assert ((y.float() >= 0) & (y.float() <= 1)).all()
    assert torch.equal(aug(x, params=params), y)
    assert torch.equal(full_pipeline(out, seed, p)(x), y)  # same seed, same input: same output


@given(dtype=st.sampled_from(DTYPES), value=st.sampled_from([0.0, 1.0, 0.5]), seed=st.integers(0, 1000))
def test_constant_images_never_nan_and_uint8_never_wraps(dtype, value, seed):
    x = torch.full((3, 3, 16, 16), value, dtype=torch.float64)
    x = (x * 255).to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    aug = ga.Compose([ga.ColorJitter(brightness=(2.0, 3.0), contrast=(0.0, 3.0), saturation=3.0, hue=0.5),
                      ga.RandomGaussianNoise(std=0.5), ga.RandomGaussianBlur(5)], seed=seed)
    y = aug(x)
    assert torch.isfinite(y.float()).all()
    if dtype == torch.uint8 and value == 1.0:
        # brightness >= 2 on white must saturate at 255, never wrap around to small values
        assert ga.RandomBrightness((2.0, 3.0))(x).min() == 255


def test_unbatched_input_gives_unbatched_output():
    x = torch.rand(3, 20, 30)
    aug = ga.Compose([ga.RandomResizedCrop((10, 12)), ga.ColorJitter(0.2)], seed=0)
    assert aug(x).shape == (3, 10, 12)
    res = aug(x, masks=torch.zeros(20, 30, dtype=torch.long), boxes=torch.tensor([[1.0, 1, 5, 5]]))
    assert res["image"].shape == (3, 10, 12) and res["masks"].shape == (10, 12) and res["boxes"].shape == (1, 4)


def test_empty_batch_keeps_output_size_and_dtype():
    aug = ga.Compose([ga.RandomResizedCrop(8), ga.ColorJitter(0.3)], seed=0)
    y = aug(torch.zeros(0, 3, 16, 16, dtype=torch.uint8))
    assert y.shape == (0, 3, 8, 8) and y.dtype == torch.uint8


def test_uint8_output_is_rounded_not_truncated():
    x = torch.full((1, 1, 4, 4), 101, dtype=torch.uint8)
    y = ga.RandomBrightness((1.005, 1.005))(x)  # 101 * 1.005 = 101.505 -> 102 when rounded
    assert (y == 102).all()


def test_grayscale_color_ops_apply_brightness_and_contrast_only():
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    assert torch.allclose(ga.ColorJitter(saturation=(0.0, 0.0), hue=(0.3, 0.3))(x), x)
    assert torch.allclose(ga.ColorJitter(brightness=(0.5, 0.5))(x), x * 0.5)


def test_parameters_differ_per_sample_unless_same_on_batch():
    x = torch.rand(1, 3, 16, 16).expand(6, -1, -1, -1)
    y = ga.RandomRotation(45, seed=3)(x)
    assert len({tuple(img.flatten()[:50].tolist()) for img in y}) == 6
    z = ga.Compose([ga.RandomRotation(45), ga.ColorJitter(0.5, 0.5)], same_on_batch=True, seed=3)(x)
    assert all(torch.equal(z[0], z[i]) for i in range(6))


def ordered_pair(low, high):
    return st.tuples(st.floats(low, high), st.floats(low, high)).map(lambda t: (min(t), max(t)))


@given(
    degrees=ordered_pair(-180, 180),
    translate=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    scale=ordered_pair(0.2, 3.0),
    shear=ordered_pair(-60, 60),
    crop_scale=ordered_pair(0.01, 1.0),
    ratio=ordered_pair(0.2, 5.0),
    jitter=st.tuples(ordered_pair(0, 3), ordered_pair(0, 3), ordered_pair(0, 3), ordered_pair(-0.5, 0.5)),
    kernel=st.sampled_from([1, 3, 5, 7]),
    sigma=ordered_pair(0.05, 4.0),
    hue_mode=st.sampled_from(["yiq", "hsv"]),
    padding_mode=st.sampled_from(["constant", "reflect", "border"]),
    seed=st.integers(0, 2**31),
)
def test_any_valid_parameter_range_gives_valid_replayable_output(
    degrees, translate, scale, shear, crop_scale, ratio, jitter, kernel, sigma, hue_mode, padding_mode, seed
):
    b, c, s, h = jitter
    aug = ga.Compose(
        [
            ga.RandomResizedCrop((12, 14), scale=crop_scale, ratio=ratio),
            ga.RandomAffine(degrees, translate=translate, scale=scale, shear=shear),
            ga.ColorJitter(b, c, s, h, hue_mode=hue_mode),
            ga.RandomGaussianBlur(kernel, sigma),
        ],
        padding_mode=padding_mode,
        seed=seed,
    )
    x = make_image((3, 3, 17, 23), torch.uint8, seed)
    y, params = aug(x, return_params=True)
    assert y.shape == (3, 3, 12, 14) and y.dtype == torch.uint8
    assert torch.equal(aug(x, params=params), y)
    yf = aug(x.float() / 255)
    assert torch.isfinite(yf).all() and ((yf >= 0) & (yf <= 1)).all()
