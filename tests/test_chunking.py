"""Large CPU batches run in cache-sized chunks; the result must be that of one whole-batch pass."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import genaug as ga
from genaug.transforms.base import take_rows
from genaug.transforms import pipeline


def every_kind_of_op(seed=0):
    return ga.Compose(
        [
            ga.RandomResizedCrop((24, 28), scale=(0.3, 1.0)),
            ga.RandomRotation(25, p=0.7),
            ga.RandomScale((0.4, 1.2)),  # shrinks beyond sqrt(2): per-sample antialias on some samples
            ga.RandomHorizontalFlip(),
            ga.ColorJitter(0.3, 0.3, 0.3, 0.05),
            ga.RandomGaussianBlur(5, sigma=(0.1, 2.0), p=0.5),
            ga.ColorJitter(hue=0.1, hue_mode="hsv", p=0.5),
            ga.Normalize([0.5, 0.4, 0.3], [0.2, 0.2, 0.2]),
        ],
        seed=seed,
    )


def batch(n, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, 32, 40, generator=g)
    image = (image * 255).round().to(torch.uint8) if dtype == torch.uint8 else image.to(dtype)
    masks = torch.randint(0, 5, (n, 32, 40), generator=g)
    boxes = torch.tensor([[4.0, 5.0, 30.0, 25.0], [10.0, 2.0, 20.0, 12.0]]).expand(n, 2, 4).clone()
    keypoints = torch.rand(n, 3, 2, generator=g) * torch.tensor([40.0, 32.0])
    return dict(image=image, masks=masks, boxes=boxes, keypoints=keypoints, labels=torch.arange(n))


def run_with_chunk_bytes(monkeypatch, nbytes, aug, inputs, params):
    monkeypatch.setattr(pipeline, "CPU_CHUNK_BYTES", nbytes)
    return aug(**inputs, params=params)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), n=st.integers(2, 11), per_chunk=st.integers(1, 4),
       dtype=st.sampled_from([torch.float32, torch.uint8, torch.float64]))
def test_chunked_equals_whole_batch(seed, n, per_chunk, dtype):
    aug = every_kind_of_op(seed)
    inputs = batch(n, dtype, seed)
    _, params = aug(**inputs, return_params=True)
    itemsize = 8 if dtype == torch.float64 else 4
    with pytest.MonkeyPatch.context() as mp:
        whole = run_with_chunk_bytes(mp, 1 << 40, aug, inputs, params)
        chunked = run_with_chunk_bytes(mp, per_chunk * 3 * 32 * 40 * itemsize, aug, inputs, params)
    assert whole.keys() == chunked.keys()
    for key in whole:
        assert torch.equal(whole[key], chunked[key]), key


def test_large_batches_are_really_chunked(monkeypatch):
    calls = []
    original = torch.nn.functional.grid_sample
    monkeypatch.setattr(torch.nn.functional, "grid_sample", lambda *a, **k: calls.append(a[0].shape[0]) or original(*a, **k))
    monkeypatch.setattr(pipeline, "CPU_CHUNK_BYTES", 4 * 3 * 16 * 16 * 4)  # 4 float32 images of 16x16
    ga.RandomRotation(10, seed=0)(torch.rand(10, 3, 16, 16))
    assert calls == [4, 4, 2]


def test_third_party_batch_callables_see_the_whole_batch(monkeypatch):
    """A callable may mix samples (here: it reverses the batch), so nothing is chunked around it."""
    monkeypatch.setattr(pipeline, "CPU_CHUNK_BYTES", 1)
    seen = []
    aug = ga.Compose([ga.RandomHorizontalFlip(p=0.0), lambda x: seen.append(x.shape[0]) or x.flip(0)], seed=0)
    x = torch.rand(6, 3, 8, 8)
    assert torch.equal(aug(x), x.flip(0)) and seen == [6]


def test_noise_is_not_repeated_across_chunks(monkeypatch):
    monkeypatch.setattr(pipeline, "CPU_CHUNK_BYTES", 2 * 3 * 8 * 8 * 4)  # chunks of 2
    x = torch.full((6, 3, 8, 8), 0.5)
    out = ga.RandomGaussianNoise(std=(0.1, 0.1), seed=0)(x)
    noise = (out - x).flatten(1)
    assert not any(torch.allclose(noise[i], noise[j]) for i in range(6) for j in range(i + 1, 6))


def test_antialias_of_a_sample_does_not_depend_on_its_batch():
    zoom_out = ga.RandomScale((0.3, 0.3))  # every sample shrinks by 3.3x: antialiased
    mixed = ga.RandomScale((0.15, 0.9), seed=1)
    x = torch.rand(4, 3, 40, 40, dtype=torch.float64)
    _, params = mixed(x, return_params=True)  # a batch of different shrinks: different kernel widths
    for i in range(4):
        alone = take_rows(params, slice(i, i + 1))
        assert torch.equal(mixed(x[i:i + 1], params=alone), mixed(x, params=params)[i:i + 1])
    assert not torch.equal(zoom_out(x), ga.Compose([ga.RandomScale((0.3, 0.3))], antialias=False)(x))
