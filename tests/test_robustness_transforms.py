"""Corruptions as genaug transforms: batch == each sample alone, replay, dtypes and shapes, Compose,
serialization, adapters, table selection, and clear errors."""

import numpy as np
import pytest
import torch

import genaug as ga
from genaug.robustness import ALL, BENCHMARK, EXTRA, corrupt, table_for_size
from genaug.robustness.tables import TABLES

G = lambda s=0: torch.Generator().manual_seed(s)  # noqa: E731


def _batch(b=5, c=3, h=32, w=30, seed=0):
    g = G(seed)
    small = torch.rand(b, c, 6, 5, generator=g)
    smooth = torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return (0.7 * smooth + 0.3 * torch.rand(b, c, h, w, generator=g)).clamp(0, 1)


@pytest.mark.parametrize("name", ALL)
def test_a_batch_equals_each_sample_alone_and_replays(name):
    x = _batch()
    op = ga.Corruption(name, 5 if name not in ("brightness", "contrast") else 3, seed=1)
    out, params = op(x, return_params=True)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert torch.equal(op(x, params=params), out)  # replay
    for i in (0, 3):
        rows = {k: (v[i:i + 1] if isinstance(v, torch.Tensor) else v) for k, v in params.items()}
        torch.testing.assert_close(op(x[i:i + 1], params=rows), out[i:i + 1], atol=1e-5, rtol=0)
    again = ga.Corruption(name, 5 if name not in ("brightness", "contrast") else 3, seed=1)(x)
    assert torch.equal(again, out)  # same seed, same output


@pytest.mark.parametrize("name", ALL)
def test_uint8_single_image_and_gray(name):
    x8 = (_batch(2) * 255).round().to(torch.uint8)
    y8 = corrupt(x8, name, 4, generator=G())
    assert y8.dtype == torch.uint8 and y8.shape == x8.shape
    single = corrupt(x8[0], name, 4, generator=G())
    assert single.shape == x8[0].shape
    gray = corrupt(x8[:, :1], name, 2, generator=G())
    assert gray.shape == (2, 1, 32, 30)
    x64 = _batch(2).double()
    assert corrupt(x64, name, 2, generator=G()).dtype == torch.float64
    assert corrupt(x64[:0], name, 2, generator=G()).shape == (0, 3, 32, 30)
    assert not torch.equal(y8, x8) or name == "saturate"  # (saturate at 4 still changes colour images)


def test_the_input_is_not_modified():
    x = _batch(3)
    before = x.clone()
    for name in ALL:
        corrupt(x, name, 5, generator=G())
    assert torch.equal(x, before)


def test_random_corruption_draws_per_sample_and_equals_corruption():
    x = _batch(12)
    aug = ga.RandomCorruption(names="extra", severity=(2, 4), seed=3)
    out, params = aug(x, return_params=True)
    assert torch.equal(aug(x, params=params), out)
    assert set(params["severity"].tolist()) <= {2, 3, 4}
    assert len(set(params["corruption"].tolist())) > 1
    for i in range(12):
        name = EXTRA[int(params["corruption"][i])]
        one = ga.Corruption(name, int(params["severity"][i]), seed=0)
        p = one.sample_params(1, (32, 30), G())
        p["seed"] = params["seed"][i:i + 1]
        torch.testing.assert_close(one(x[i:i + 1], params=p), out[i:i + 1], atol=1e-5, rtol=0)


def test_p_gates_per_sample():
    x = _batch(16)
    out, params = ga.RandomCorruption(names=["contrast"], severity=5, p=0.5, seed=0)(x, return_params=True)
    applied = params["apply"]
    assert 0 < int(applied.sum()) < 16
    assert torch.equal(out[~applied], x[~applied])
    assert not torch.equal(out[applied], x[applied])


def test_compose_serialization_and_seed_none_follows_torch():
    aug = ga.Compose([ga.RandomHorizontalFlip(), ga.Corruption("fog", 2), ga.RandomCorruption("extra", p=0.5)], seed=4)
    x = (_batch(6) * 255).round().to(torch.uint8)
    out = aug(x)
    again = ga.from_dict(aug.to_dict())
    assert torch.equal(again(x), out)
    cfg = ga.RandomCorruption(["fog", "snow"], severity=(1, 2), table="cifar", seed=2).to_dict()
    assert cfg["args"]["names"] == ["fog", "snow"] or cfg["args"]["names"] == ("fog", "snow")
    torch.manual_seed(0)
    a = ga.Corruption("impulse_noise", 3)(x)
    torch.manual_seed(0)
    b = ga.Corruption("impulse_noise", 3)(x)
    assert torch.equal(a, b)


def test_torchvision_and_albumentations_adapters():
    integrations = pytest.importorskip("genaug.integrations")
    pytest.importorskip("torchvision")
    from genaug.integrations.torchvision import TorchvisionTransform

    tv = TorchvisionTransform(ga.Corruption("contrast", 5, seed=0))
    x = (_batch(2) * 255).round().to(torch.uint8)
    assert tv(x).shape == x.shape
    pytest.importorskip("albumentations")
    from genaug.integrations.albumentations import AlbumentationsTransform

    alb = AlbumentationsTransform(ga.Corruption("contrast", 5, seed=0))
    image = np.asarray(x[0].permute(1, 2, 0))
    assert alb(image=image)["image"].shape == image.shape
    assert integrations is not None


def test_table_selection_by_size_and_explicit():
    assert table_for_size((32, 32)) == "cifar" and table_for_size((28, 28)) == "cifar"
    assert table_for_size((33, 20)) == "tiny-imagenet" and table_for_size((64, 64)) == "tiny-imagenet"
    assert table_for_size((65, 64)) == "imagenet" and table_for_size((224, 224)) == "imagenet"
    x = torch.full((1, 3, 32, 32), 0.5)
    y_default = corrupt(x, "contrast", 1)
    y_imagenet = corrupt(x + torch.linspace(0, 0.4, 32), "contrast", 1, table="imagenet")
    assert torch.allclose(y_default, x)
    ramp = x + torch.linspace(0, 0.4, 32)
    spread = lambda t: float(t.max() - t.min())  # noqa: E731
    assert spread(corrupt(ramp, "contrast", 1)) == pytest.approx(0.75 * spread(ramp), rel=1e-4)  # CIFAR: 0.75
    assert spread(y_imagenet) == pytest.approx(0.4 * spread(ramp), rel=1e-4)  # ImageNet: 0.4


def test_fifteen_plus_four_and_the_tables_are_complete():
    assert len(BENCHMARK) == 15 and len(EXTRA) == 4 and len(ALL) == 19
    for table in TABLES.values():
        assert set(table) == set(ALL)
        assert all(len(rows) == 5 for rows in table.values())


@pytest.mark.parametrize("bad", [0, 6, -1, 2.0, True, "3", None])
def test_severity_out_of_range_is_a_clear_error(bad):
    with pytest.raises((ValueError, TypeError), match="severity"):
        ga.Corruption("fog", bad)
    with pytest.raises((ValueError, TypeError), match="severity"):
        corrupt(torch.rand(1, 3, 8, 8), "fog", bad)


def test_unknown_name_table_and_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="unknown corruption 'gaussian'.*gaussian_noise"):
        ga.Corruption("gaussian", 1)
    with pytest.raises(ValueError, match="table"):
        ga.Corruption("fog", 1, table="cifar10")
    with pytest.raises(ValueError, match="duplicates"):
        ga.RandomCorruption(["fog", "fog"])
    with pytest.raises(ValueError, match="min <= max"):
        ga.RandomCorruption("extra", severity=(4, 2))
    with pytest.raises(TypeError, match="unexpected keyword argument 'level'"):
        ga.Corruption("fog", 1, level=2)
    with pytest.raises(ValueError, match="p must be in"):
        ga.RandomCorruption(p=1.5)


def test_too_small_images_are_clear_errors():
    with pytest.raises(ValueError, match=r"elastic_transform at severity 1 needs images of at least 3x3 pixels, got 2x2"):
        corrupt(torch.rand(1, 3, 2, 2), "elastic_transform", 1)
    with pytest.raises(ValueError, match=r"pixelate at severity 1 needs images of at least 2x2"):
        corrupt(torch.rand(1, 3, 1, 5), "pixelate", 1)
    with pytest.raises(ValueError, match="1- or 3-channel"):
        corrupt(torch.rand(1, 4, 16, 16), "fog", 1)
    for name in ALL:  # every corruption works from 8x8 up
        assert corrupt(torch.rand(2, 3, 8, 8), name, 5, generator=G()).shape == (2, 3, 8, 8)


def test_device_independent_integer_fields_and_meta_friendly_ops():
    x = torch.empty(2, 3, 16, 16, device="meta")
    for name in ("gaussian_noise", "impulse_noise", "speckle_noise", "contrast", "brightness", "saturate",
                 "gaussian_blur", "defocus_blur", "zoom_blur", "motion_blur", "fog", "elastic_transform"):
        out = ga.Corruption(name, 3, seed=0)(x)  # no device value is read on the way
        assert out.device.type == "meta" and out.shape == x.shape
