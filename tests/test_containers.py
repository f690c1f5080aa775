"""Compose / OneOf / SomeOf / RandomApply gate per sample and keep geometry fused."""

import pytest
import torch

import genaug as ga


@pytest.fixture
def grid_sample_calls(monkeypatch):
    calls = []
    original = torch.nn.functional.grid_sample
    monkeypatch.setattr(torch.nn.functional, "grid_sample", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def test_one_of_applies_exactly_one_child_per_sample():
    x = torch.rand(1, 3, 8, 8).expand(64, -1, -1, -1)
    out = ga.OneOf([ga.RandomHorizontalFlip(1.0), ga.RandomVerticalFlip(1.0)], seed=0)(x)
    h, v = x.flip(-1), x.flip(-2)
    is_h = (out == h).flatten(1).all(1)
    is_v = (out == v).flatten(1).all(1)
    assert torch.all(is_h ^ is_v) and 10 < int(is_h.sum()) < 54


def test_one_of_weights_are_respected():
    x = torch.rand(1, 3, 8, 8).expand(400, -1, -1, -1)
    out = ga.OneOf([ga.RandomHorizontalFlip(1.0), ga.RandomVerticalFlip(1.0)], weights=[0.9, 0.1], seed=0)(x)
    share = (out == x.flip(-1)).flatten(1).all(1).double().mean()
    assert 0.83 < share < 0.96


def test_some_of_applies_n_children():
    x = torch.zeros(200, 1, 4, 4)
    adds = [ga.RandomBrightness((1.0, 1.0)) for _ in range(3)]
    # Each child is the identity on zeros, so count via the params instead.
    aug = ga.SomeOf(adds, n=(1, 2), seed=0)
    _, params = aug(x, return_params=True)
    counts = params["gate"].sum(1)
    assert counts.min() == 1 and counts.max() == 2


def test_random_apply_p0_is_identity_and_p1_always_applies():
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    assert torch.equal(ga.RandomApply([ga.RandomRotation((30, 30))], p=0.0)(x), x)
    assert not torch.equal(ga.RandomApply([ga.RandomRotation((30, 30))], p=1.0)(x), x)


def test_probability_gates_samples_independently():
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64).expand(300, -1, -1, -1)
    out = ga.RandomRotation((30, 30), p=0.3, seed=0)(x)
    untouched = (out == x).flatten(1).all(1).double().mean()
    assert 0.6 < untouched < 0.8


def test_whole_geometric_chain_is_one_warp(grid_sample_calls):
    from genaug.demo import demo_pipeline

    aug = demo_pipeline(0)
    aug(torch.rand(2, 3, 300, 400))
    geometric_stages = 1
    assert len(grid_sample_calls) == geometric_stages


def test_one_of_geometric_children_still_fuse(grid_sample_calls):
    aug = ga.Compose([ga.RandomResizedCrop(16), ga.OneOf([ga.RandomRotation(30), ga.RandomAffine(0, shear=20)]),
                      ga.RandomHorizontalFlip()], seed=0)
    aug(torch.rand(4, 3, 32, 32))
    assert len(grid_sample_calls) == 1


def test_colour_ops_fuse_into_one_map_equal_to_sequential_application():
    x = torch.rand(4, 3, 16, 16, dtype=torch.float64) * 0.5 + 0.25  # no clamping in between
    a, b = ga.RandomBrightness((1.2, 1.2)), ga.RandomSaturation((0.5, 0.5))
    c = ga.RandomContrast((0.8, 0.8))
    fused = ga.Compose([a, b, c])(x)
    torch.testing.assert_close(fused, c(b(a(x))), atol=1e-9, rtol=0)


def test_different_warp_options_split_the_chain(grid_sample_calls):
    ga.Compose([ga.RandomRotation(10), ga.RandomRotation(10, padding_mode="reflect")])(torch.rand(1, 3, 8, 8))
    assert len(grid_sample_calls) == 2
    grid_sample_calls.clear()
    ga.Compose([ga.RandomRotation(10), ga.RandomRotation(10, padding_mode="reflect")], padding_mode="border")(
        torch.rand(1, 3, 8, 8)
    )
    assert len(grid_sample_calls) == 1


def test_kornia_module_runs_as_an_unfused_stage():
    import kornia.augmentation as K

    aug = ga.Compose([ga.RandomRotation(10), K.RandomGrayscale(p=1.0), ga.RandomHorizontalFlip()], seed=0)
    out = aug(torch.rand(2, 3, 8, 8))
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-6)


def test_nested_compose_indexing_and_len():
    inner = ga.Compose([ga.RandomRotation(5)])
    outer = ga.Compose([inner, ga.ColorJitter(0.1)])
    assert len(outer) == 2 and outer[0] is inner


def test_unapplied_samples_of_sized_and_colour_ops_get_their_neutral_result():
    # A mixed batch (some samples applied, some not) takes the gated path of the executor: the
    # unapplied samples must get exactly the documented fallback, the applied ones the op.
    x = torch.rand(12, 3, 20, 24, dtype=torch.float64)
    cases = [
        (ga.RandomResizedCrop((10, 12), scale=(0.2, 0.5), p=0.5, seed=0), ga.Resize((10, 12))),
        (ga.RandomCrop((10, 12), p=0.5, seed=1), ga.CenterCrop((10, 12))),
        (ga.ColorJitter(0.5, 0.5, 0.5, 0.1, p=0.5, seed=2), None),
    ]
    for op, fallback in cases:
        out, params = op(x, return_params=True)
        applied = params["apply"]
        assert 0 < int(applied.sum()) < len(x), "the seed must give a mixed batch"
        expected = x if fallback is None else fallback(x)
        assert torch.equal(out[~applied], expected[~applied]), type(op).__name__
        assert not torch.isclose(out[applied], expected[applied]).flatten(1).all(1).any(), type(op).__name__
        everyone = {**params, "apply": torch.ones_like(applied)}
        assert torch.equal(op(x, params=everyone)[applied], out[applied]), type(op).__name__
