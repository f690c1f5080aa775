"""A shrink by 2x or more must not alias."""

import pytest
import torch

import genaug as ga


def checkerboard(size=128, period=2):
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (((xs // (period // 2)) + (ys // (period // 2))) % 2).double().view(1, 1, size, size).expand(1, 3, -1, -1)


def fine_waves(size=128, fx=0.37, fy=0.29):
    """A plaid of frequencies above half the Nyquist limit: a 2x shrink must erase it."""
    ys, xs = torch.meshgrid(torch.arange(size).double(), torch.arange(size).double(), indexing="ij")
    wave = 0.5 + 0.25 * torch.sin(2 * torch.pi * fx * xs) + 0.25 * torch.sin(2 * torch.pi * fy * ys)
    return wave.view(1, 1, size, size).expand(1, 3, -1, -1).clone()


@pytest.mark.parametrize("factor", [2.3, 3.0, 4.0])
def test_shrinking_a_fine_pattern_gives_flat_gray(factor):
    x = fine_waves()
    s = 1.0 / factor
    with_aa = ga.RandomScale((s, s), padding_mode="reflect")(x)
    without = ga.RandomScale((s, s), padding_mode="reflect", antialias=False)(x)
    centre = (slice(None), slice(None), slice(40, 88), slice(40, 88))
    assert with_aa[centre].std() < 0.05  # the pattern is above the new Nyquist limit: gray
    assert without[centre].std() > 0.1  # plain bilinear resampling folds it into visible moire
    assert abs(with_aa[centre].mean().item() - 0.5) < 0.02


def test_resize_down_is_antialiased_and_close_to_torchvision():
    import torchvision.transforms.v2.functional as TF

    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16, generator=g, dtype=torch.float64), size=(128, 128), mode="bicubic")
    ours = ga.Resize((32, 32))(x)
    ref = TF.resize(x, [32, 32], antialias=True)
    assert (ours - ref).abs().mean() < 0.01
    assert ga.Resize((32, 32))(checkerboard()).std() < 0.05


def test_a_samples_antialiasing_does_not_depend_on_its_batch():
    x = fine_waves().expand(2, -1, -1, -1).clone()
    shrink = ga.RandomScale((1 / 1.3, 1 / 1.3), padding_mode="reflect")  # below the sqrt(2) threshold: never filtered
    alone = shrink(x[:1])
    _, params = ga.RandomScale((0.3, 0.3), padding_mode="reflect")(x, return_params=True)
    params["scale"] = torch.tensor([1 / 1.3, 0.3], dtype=torch.float64)  # the other sample shrinks a lot
    mixed = ga.RandomScale((0.3, 1.0), padding_mode="reflect")(x, params=params)
    assert torch.equal(mixed[:1], alone)
    assert mixed[1, :, 40:88, 40:88].std() < 0.05


def test_pixel_ops_touch_only_the_samples_they_apply_to():
    x = torch.rand(64, 3, 16, 16, dtype=torch.float64)
    blur = ga.RandomGaussianBlur(5, (1.0, 2.0), p=0.5, seed=0)
    out, params = blur(x, return_params=True)
    applied = params["apply"]
    assert 10 < int(applied.sum()) < 54
    assert torch.equal(out[~applied], x[~applied])
    full = ga.RandomGaussianBlur(5, (1.0, 2.0), p=1.0)
    params_all = {**params, "apply": torch.ones_like(applied)}
    assert torch.allclose(out[applied], full(x, params=params_all)[applied], atol=1e-12)
