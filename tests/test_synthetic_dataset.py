"""SyntheticDataset and MixedDataset: per-index determinism (bitwise), chunking, cache bound, labels,
transforms, formats, the index map, and a catalogue of bad inputs.

Most tests use tiny randomly initialised models (fast); the shipped models and mnist5k appear in
the docs examples and the load_builtin test.
"""

from __future__ import annotations

import json
import pickle
import random
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

import genaug as ga
from genaug.data.synthetic import index_seeds, stream_key
from genaug.generative import ConditionalGAN, ConditionalVAE, GANConfig, VAEConfig

K = 10


def tiny_gan(**cfg) -> ConditionalGAN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ConditionalGAN(GANConfig(**{"image_size": 28, "num_classes": K, "latent_dim": 16, "g_width": 4,
                                            "d_width": 4, **cfg}), with_discriminator=False)
    return model.eval()


def tiny_vae(prior: str = "standard") -> ConditionalVAE:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        vae = ConditionalVAE(VAEConfig(image_size=28, num_classes=K, latent_dim=4, enc_width=4, dec_width=4,
                                       prior=prior)).eval()
        if prior == "aggregate":
            vae.fit_prior(torch.rand(40, 1, 28, 28), labels=[i % K for i in range(40)])
    return vae


@pytest.fixture(scope="module")
def gan() -> ConditionalGAN:
    return tiny_gan()


def all_items(ds, order=None):
    order = range(len(ds)) if order is None else order
    return {int(i): ds[int(i)] for i in order}


def assert_near(a: torch.Tensor, b: torch.Tensor, atol: float) -> None:
    """|a - b| <= atol everywhere (torch.testing.assert_close imports torch.distributed: seconds)."""
    assert a.shape == b.shape and a.dtype == b.dtype
    assert float((a.double() - b.double()).abs().max()) <= atol


def assert_same_items(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for i in a:
        assert torch.equal(a[i][0], b[i][0]), f"image {i} differs"
        assert a[i][1] == b[i][1], f"label {i} differs"


def pipeline(seed=0):
    return ga.Compose([ga.RandomRotation(20), ga.ColorJitter(0.4, 0.4), ga.RandomGaussianNoise(std=(0.01, 0.1))],
                      seed=seed)


# --------------------------------------------------------------------------- determinism
def test_item_is_the_same_on_every_call_and_instance_and_depends_on_the_seed(gan):
    a = ga.SyntheticDataset(gan, 40, seed=3, chunk_size=16, block_size=16)
    b = ga.SyntheticDataset(gan, 40, seed=3, chunk_size=16, block_size=16)
    first = all_items(a)
    assert_same_items(first, all_items(a))
    assert_same_items(first, all_items(b))
    other = ga.SyntheticDataset(gan, 40, seed=4, chunk_size=16, block_size=16)
    assert not torch.equal(first[5][0], other[5][0])
    assert len({a[i][0].numpy().tobytes() for i in range(40)}) == 40  # every item its own latent


@pytest.mark.parametrize("dtype, with_transform", [(torch.uint8, True), (torch.float32, False)])
def test_chunk_size_access_order_and_cache_do_not_change_a_bit(gan, dtype, with_transform):
    n = 72  # not a multiple of the block: the last block is padded
    kw = dict(seed=1, dtype=dtype, block_size=16, transform=pipeline() if with_transform else None)
    ref = all_items(ga.SyntheticDataset(gan, n, chunk_size=32, **kw))
    rng = np.random.default_rng(0)
    shuffled = ga.SyntheticDataset(gan, n, chunk_size=16, cache_chunks=1, **kw)
    assert_same_items(ref, all_items(shuffled, rng.permutation(n)))
    reverse = ga.SyntheticDataset(gan, n, chunk_size=48, cache_chunks=2, **kw)
    assert_same_items(ref, all_items(reverse, range(n - 1, -1, -1)))
    for source in (ga.SyntheticDataset(gan, n, chunk_size=64, **kw), reverse):  # a cold and a warm cache
        perm = rng.permutation(n)
        images, labels = source.get_batch(perm)
        for row, i in enumerate(perm):
            assert torch.equal(images[row], ref[int(i)][0]) and int(labels[row]) == ref[int(i)][1]


def test_latents_depend_only_on_seed_and_index():
    key = stream_key(7, 1)
    whole = index_seeds(key, np.arange(1000))
    assert np.array_equal(whole[500:600], index_seeds(key, np.arange(500, 600)))
    assert len(set(whole.tolist())) == 1000
    assert not np.array_equal(whole, index_seeds(stream_key(8, 1), np.arange(1000)))
    assert not np.array_equal(whole, index_seeds(stream_key(7, 2), np.arange(1000)))


@pytest.mark.parametrize("kind", ["gan", "vae", "vae-aggregate", "gan-noise"])
def test_item_is_model_sample_with_the_items_latent_seed(kind):
    """Item i = model.sample(1, labels=[label_i], generator=manual_seed(latent_seed(i))) up to float rounding."""
    model = {"gan": tiny_gan, "vae": tiny_vae, "vae-aggregate": lambda: tiny_vae("aggregate"),
             "gan-noise": lambda: tiny_gan(noise_injection=True)}[kind]()
    labels = [(3 * i + 1) % K for i in range(24)]
    ds = ga.SyntheticDataset(model, 24, seed=5, labels=labels, dtype=torch.float32, chunk_size=16, block_size=8)
    for i in (0, 7, 8, 23):
        x, y = ds[i]
        assert y == labels[i]
        ref = model.sample(1, labels=[labels[i]], generator=torch.Generator().manual_seed(ds.latent_seed(i)))[0]
        assert_near(x, ref, 1e-5)


def test_noise_injection_gan_is_still_chunk_independent_bitwise():
    model = tiny_gan(noise_injection=True)
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "weight") and m.__class__.__name__ == "NoiseInjection":
                m.weight.fill_(0.5)  # make the noise matter
    a = all_items(ga.SyntheticDataset(model, 20, chunk_size=4, block_size=4))
    b = all_items(ga.SyntheticDataset(model, 20, chunk_size=16, block_size=16), range(19, -1, -1))
    assert_same_items(a, b)


def test_block_size_changes_only_float_rounding(gan):
    a = ga.SyntheticDataset(gan, 48, dtype=torch.float32, chunk_size=48, block_size=16)
    b = ga.SyntheticDataset(gan, 48, dtype=torch.float32, chunk_size=48, block_size=48)
    xa, ya = a.get_batch(range(48))
    xb, yb = b.get_batch(range(48))
    assert torch.equal(ya, yb)
    assert_near(xa, xb, 1e-5)


def worker_datasets(gan):
    """A seed=None pipeline, a global-RNG callable (both would differ per worker without per-index
    seeding) and a MixedDataset, concatenated so that one DataLoader (one pair of workers) reads them all."""
    pipe = ga.Compose([ga.RandomRotation(30), ga.ColorJitter(0.5)])

    def callable_transform(x):
        return (x + 0.2 * torch.rand_like(x) + 0.1 * random.random()).clamp(0, 1)

    parts = [ga.SyntheticDataset(gan, 48, seed=2, transform=t, chunk_size=16, block_size=16)
             for t in (pipe, callable_transform)]
    mixed = ga.MixedDataset(real_digits(24), ga.SyntheticDataset(gan, 48, seed=5, chunk_size=16, block_size=16), 0.5)
    return ConcatDataset([*parts, mixed])


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_workers_give_the_same_bits(gan, workers):
    ds = worker_datasets(gan)
    expected = all_items(worker_datasets(gan))
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0)).tolist()
    batches = list(DataLoader(ds, batch_size=8, sampler=order, num_workers=workers))
    images, labels = torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])
    for row, i in enumerate(order):
        assert torch.equal(images[row], expected[i][0]), (workers, i)
        assert int(labels[row]) == expected[i][1]


# --------------------------------------------------------------------------- chunks and cache
def test_cache_is_bounded_and_forward_passes_are_whole_blocks():
    model = tiny_gan()
    calls: list[int] = []
    original = model.generate

    def counting_generate(z, labels=None, generator=None):
        calls.append(z.shape[0])
        return original(z, labels, generator)

    model.generate = counting_generate  # instance attribute: the dataset calls it for every forward pass
    ds = ga.SyntheticDataset(model, 200, chunk_size=64, block_size=32, cache_chunks=2)  # chunks 0..3, last has 8

    def access(i, new_passes):
        before = len(calls)
        ds[i]
        assert len(calls) - before == new_passes, f"index {i}"
        assert len(ds._cache) <= 2

    access(0, 2)      # chunk 0: two passes of 32
    access(63, 0)     # same chunk: cached
    access(64, 2)     # chunk 1
    access(5, 0)      # chunk 0 again: a hit (and now most recent)
    access(130, 2)    # chunk 2 evicts chunk 1 (least recently used)
    access(10, 0)     # chunk 0 still cached
    access(70, 2)     # chunk 1 was evicted: regenerated (evicts chunk 2)
    access(199, 1)    # last chunk: 8 items, one block padded to 32
    assert set(calls) == {32}, "every forward pass has exactly block_size latents"
    assert ds.chunks_generated == 5
    ds.clear_cache()
    access(0, 2)
    calls.clear()
    default = ga.SyntheticDataset(model, 300)  # by default one forward pass of 256 per chunk
    default[0], default[255], default[299]
    assert calls == [256, 256]


def test_get_batch_generates_each_chunk_once():
    model = tiny_gan()
    ds = ga.SyntheticDataset(model, 100, chunk_size=20, block_size=20, cache_chunks=1)
    x, y = ds.get_batch([95, 3, 50, 4, 96, 51])
    assert ds.chunks_generated == 3
    assert x.shape == (6, 1, 28, 28) and y.tolist() == [5, 3, 0, 4, 6, 1]


# --------------------------------------------------------------------------- labels
def test_balanced_labels(gan):
    ds = ga.SyntheticDataset(gan, 95, chunk_size=32, block_size=32)
    assert ds.labels.tolist() == [i % K for i in range(95)]
    counts = torch.bincount(ds.labels, minlength=K)
    assert int(counts.max() - counts.min()) <= 1
    assert [ds[i][1] for i in (0, 9, 10, 94)] == [0, 9, 0, 4]
    assert ds.targets.tolist() == ds.labels.tolist() and ds.classes == [str(c) for c in range(K)]


def test_sequence_and_constant_labels(gan):
    seq = [7, 7, 1, 0, 9, 3]
    ds = ga.SyntheticDataset(gan, 6, labels=seq, chunk_size=8, block_size=8)
    assert [ds[i][1] for i in range(6)] == seq and ds.labels.tolist() == seq
    ds_t = ga.SyntheticDataset(gan, 6, labels=torch.tensor(seq), chunk_size=8, block_size=8)
    assert_same_items(all_items(ds), all_items(ds_t))
    const = ga.SyntheticDataset(gan, 6, labels=4, chunk_size=8, block_size=8)
    assert {const[i][1] for i in range(6)} == {4}
    # the class conditions the image: same latent, other class -> other image
    assert not torch.equal(const[0][0], ds[0][0])


def test_weighted_labels_are_deterministic_prefix_stable_and_follow_the_weights(gan):
    w = [1, 0, 2, 0, 0, 0, 0, 0, 3, 0]
    a = ga.SyntheticDataset(gan, 20000, seed=0, labels="weighted", class_weights=w)
    assert torch.equal(a.labels, ga.SyntheticDataset(gan, 20000, seed=0, labels="weighted", class_weights=w).labels)
    assert not torch.equal(a.labels, ga.SyntheticDataset(gan, 20000, seed=1, labels="weighted", class_weights=w).labels)
    short = ga.SyntheticDataset(gan, 100, seed=0, labels="weighted", class_weights=w)
    assert torch.equal(short.labels, a.labels[:100])
    counts = torch.bincount(a.labels, minlength=K).double()
    p = torch.tensor(w, dtype=torch.float64) / sum(w)
    assert counts[p == 0].sum() == 0
    sigma = (20000 * p * (1 - p)).sqrt()
    assert ((counts - 20000 * p).abs() <= 4 * sigma + 1e-9).all(), counts.tolist()
    assert short[3][1] == int(short.labels[3])


def test_unconditional_model_gives_label_minus_one():
    model = tiny_gan(num_classes=0)
    ds = ga.SyntheticDataset(model, 10, chunk_size=8, block_size=8)
    assert ds[3][1] == -1 and ds.labels.tolist() == [-1] * 10 and ds.num_classes == 0
    assert_same_items(all_items(ds), all_items(ga.SyntheticDataset(model, 10, labels=None, chunk_size=8, block_size=8)))


# --------------------------------------------------------------------------- transforms
def test_genaug_transform_is_drawn_per_index_and_replayable(gan):
    aug = pipeline(seed=0)
    raw = ga.SyntheticDataset(gan, 40, seed=9, dtype=torch.float32, chunk_size=16, block_size=16)
    ds = ga.SyntheticDataset(gan, 40, seed=9, dtype=torch.float32, transform=aug, chunk_size=16, block_size=16)
    items = all_items(ds)
    for i in (0, 17, 39):
        replay = aug(raw[i][0][None], params=ds.transform_params(i))[0]
        assert_near(items[i][0], replay, 1e-6)
        assert not torch.allclose(items[i][0], raw[i][0])
    aug(torch.rand(8, 1, 28, 28))  # using the pipeline elsewhere advances its own generator ...
    again = ga.SyntheticDataset(gan, 40, seed=9, dtype=torch.float32, transform=aug, chunk_size=32, block_size=16)
    assert_same_items(items, all_items(again))  # ... but not the dataset's per-index draws
    other_seed = ga.SyntheticDataset(gan, 40, seed=9, dtype=torch.float32, transform=pipeline(seed=1),
                                     chunk_size=16, block_size=16)
    assert not torch.equal(other_seed[0][0], items[0][0])
    none_seed = ga.SyntheticDataset(gan, 40, seed=9, dtype=torch.float32, chunk_size=16, block_size=16,
                                    transform=ga.Compose(list(aug.transforms)))
    assert torch.equal(none_seed[0][0], items[0][0])  # seed=None counts as 0


def test_transform_that_mixes_samples_runs_per_item(gan):
    stage = ga.Compose([lambda x: x.flip(0)])  # a batch callable that mixes samples (per_sample=False)
    ds = ga.SyntheticDataset(gan, 16, dtype=torch.float32, transform=stage, chunk_size=16, block_size=16)
    raw = ga.SyntheticDataset(gan, 16, dtype=torch.float32, chunk_size=16, block_size=16)
    assert torch.equal(ds[3][0], raw[3][0])  # run alone, flipping the batch axis changes nothing


def test_callable_transform_is_seeded_per_index_and_leaves_global_rngs_alone(gan):
    def noisy(x):
        return (x + 0.3 * torch.rand_like(x) + 0.1 * np.random.rand() + 0.1 * random.random()).clamp(0, 1)

    a = ga.SyntheticDataset(gan, 30, transform=noisy, chunk_size=16, block_size=16)
    before = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    items = all_items(a)
    assert torch.equal(before[0], torch.get_rng_state()) and before[1] == random.getstate()
    assert np.array_equal(before[2], np.random.get_state()[1])
    b = ga.SyntheticDataset(gan, 30, transform=noisy, chunk_size=32, block_size=16)
    assert_same_items(items, all_items(b, range(29, -1, -1)))
    plain = ga.SyntheticDataset(gan, 30, chunk_size=16, block_size=16)
    assert not torch.equal(items[0][0], plain[0][0])
    resized = ga.SyntheticDataset(gan, 4, transform=lambda x: x[:, :20, :20], chunk_size=8, block_size=8)
    assert resized[0][0].shape == (1, 20, 20)
    bad = ga.SyntheticDataset(gan, 4, transform=lambda x: x.numpy(), chunk_size=8, block_size=8)
    with pytest.raises(TypeError, match="transform must return one image"):
        bad[0]


def test_genaug_transform_gets_and_returns_labels(gan):
    seen = {}

    class Spy(ga.Transform):
        def apply(self, image, params):
            return image

        def __call__(self, image, labels=None, **kw):
            seen["labels"] = labels
            return super().__call__(image, labels=labels, **kw)

    ds = ga.SyntheticDataset(gan, 12, labels=[5] * 12, transform=Spy(), chunk_size=8, block_size=8)
    assert ds[2][1] == 5 and seen["labels"].tolist() == [5] * 8

    class Soft(Spy):  # returns soft labels (B, K), as a mixing augmenter does
        def __call__(self, image, labels=None, **kw):
            out = super().__call__(image, labels=labels, **kw)
            return {**out, "labels": torch.nn.functional.one_hot(out["labels"], K).float() * 0.5 + 0.05}

    soft = ga.SyntheticDataset(gan, 12, transform=Soft(), chunk_size=8, block_size=8)
    y = soft[3][1]
    assert y.dtype == torch.float32 and y.shape == (K,) and abs(float(y[3]) - 0.55) < 1e-6
    assert soft.get_batch([3, 11])[1].shape == (2, K)
    assert soft.labels[3] == 3  # the requested classes
    with pytest.raises(ValueError, match="MixedDataset needs integer class labels"):
        ga.MixedDataset(real_digits(4), soft, 0.5)


# --------------------------------------------------------------------------- formats and protocol
def test_dtype_uint8_is_the_rounded_float_and_other_dtypes(gan):
    f = ga.SyntheticDataset(gan, 20, dtype=torch.float32, chunk_size=16, block_size=16)
    u = ga.SyntheticDataset(gan, 20, chunk_size=16, block_size=16)
    assert u[0][0].dtype == torch.uint8
    for i in range(20):
        assert torch.equal(u[i][0], (f[i][0].clamp(0, 1) * 255).round().to(torch.uint8))
    d = ga.SyntheticDataset(gan, 20, dtype="float64", chunk_size=16, block_size=16)
    assert d[1][0].dtype == torch.float64 and float(d[1][0].min()) >= 0 and float(d[1][0].max()) <= 1


def test_index_protocol_and_batched_fetch(gan):
    ds = ga.SyntheticDataset(gan, 20, chunk_size=8, block_size=8)
    assert torch.equal(ds[-1][0], ds[19][0]) and torch.equal(ds[np.int64(3)][0], ds[3][0])
    with pytest.raises(IndexError, match="out of range"):
        ds[20]
    with pytest.raises(TypeError, match="index must be an int"):
        ds[1.0]
    assert sum(1 for _ in ds) == 20
    items = ds.__getitems__([4, 12, 4])
    assert [y for _, y in items] == [4, 2, 4] and torch.equal(items[1][0], ds[12][0])
    x, y = ds.get_batch(slice(2, 20, 6))
    assert y.tolist() == [2, 8, 4] and torch.equal(x[2], ds[14][0])
    x, y = ds.get_batch(torch.tensor([], dtype=torch.long))
    assert x.shape == (0, 1, 28, 28) and y.shape == (0,)
    img = ds[0][0]
    img.zero_()  # items are copies: the cache is not modified
    assert not torch.equal(ds[0][0], img)


def test_pickle_round_trip_drops_the_cache(gan):
    ds = ga.SyntheticDataset(gan, 20, transform=pipeline(), chunk_size=8, block_size=8)
    first = all_items(ds)
    clone = pickle.loads(pickle.dumps(ds))
    assert len(clone._cache) == 0 and clone.chunks_generated == ds.chunks_generated
    assert_same_items(first, all_items(clone))


def test_describe_lists_what_fixes_the_bits(gan):
    base = dict(chunk_size=16, block_size=16)
    d = ga.SyntheticDataset(gan, 20, **base).describe()
    json.dumps(d)
    assert d["seed"] == 0 and d["length"] == 20 and d["labels"] == "balanced" and len(d["model_sha256"]) == 64
    assert ga.SyntheticDataset(gan, 20, chunk_size=32, block_size=16, cache_chunks=1).describe() == d
    for change in (dict(seed=1), dict(block_size=8), dict(transform=pipeline()), dict(dtype=torch.float32),
                   dict(labels=[1] * 20)):
        assert ga.SyntheticDataset(gan, 20, **{**base, **change}).describe() != d, change
    assert "SyntheticDataset(" in repr(ga.SyntheticDataset(gan, 20, **base))


# --------------------------------------------------------------------------- bad inputs
class NoClasses:
    def sample(self, n, labels=None, generator=None):
        return torch.rand(n, 1, 8, 8, generator=generator)


class BadOutput(NoClasses):
    num_classes = 0

    def sample(self, n, labels=None, generator=None):
        return torch.zeros(n, 8, 8, dtype=torch.uint8)


BAD_SYNTHETIC = [
    (dict(length=0), ValueError, "length must be a positive int"),
    (dict(length=-3), ValueError, "length must be a positive int"),
    (dict(length=2.5), TypeError, "length must be a positive int"),
    (dict(length=True), TypeError, "length must be a positive int"),
    (dict(seed=None), TypeError, "seed must be an int"),
    (dict(seed="0"), TypeError, "seed must be an int"),
    (dict(model="no-such-model"), ValueError, "unknown model 'no-such-model'.*mnist-cgan"),
    (dict(model="mnist-classifier"), TypeError, "not a generative model"),
    (dict(model=torch.nn.Linear(2, 2)), TypeError, "model must be a genaug generative model"),
    (dict(model=NoClasses()), TypeError, "cannot tell how many classes"),
    (dict(labels="uniform"), ValueError, r"labels='uniform' is not allowed; allowed: \('balanced', 'weighted'\)"),
    (dict(labels=None), ValueError, "conditional model .* needs a class per item"),
    (dict(labels=10), ValueError, r"labels=10 is out of range; allowed: 0..9"),
    (dict(labels=[1, 2]), ValueError, r"one class id per item: length=5"),
    (dict(labels=[0, 1, 2, 3, 10]), ValueError, r"labels\[4\]=10 is out of range; allowed: 0..9"),
    (dict(labels=[0, 1, -1, 3, 4]), ValueError, r"labels\[2\]=-1 is out of range"),
    (dict(labels=[0.0, 1.0, 2.0, 3.0, 4.0]), TypeError, "labels must be integers"),
    (dict(labels=True), TypeError, "labels must be a mode"),
    (dict(labels="weighted"), ValueError, "needs class_weights"),
    (dict(labels="weighted", class_weights=[1, 2]), ValueError, r"one weight per class \(10\)"),
    (dict(labels="weighted", class_weights=[-1] + [1] * 9), ValueError, "finite and >= 0"),
    (dict(labels="weighted", class_weights=[float("nan")] + [1] * 9), ValueError, "finite and >= 0"),
    (dict(labels="weighted", class_weights=[float("inf")] + [1] * 9), ValueError, "finite and >= 0"),
    (dict(labels="weighted", class_weights=[0] * 10), ValueError, "must not all be zero"),
    (dict(class_weights=[1] * 10), ValueError, "only used with labels='weighted'"),
    (dict(transform="rotate"), TypeError, "transform must be a genaug Transform or a callable"),
    (dict(dtype=torch.int32), ValueError, "dtype=torch.int32 is not supported"),
    (dict(dtype="int8"), ValueError, "dtype='int8' is not supported"),
    (dict(dtype=float), TypeError, "dtype must be a torch.dtype"),
    (dict(device="gpu0"), ValueError, "not a valid torch device"),
    (dict(chunk_size=0), ValueError, "chunk_size must be a positive int"),
    (dict(chunk_size=100, block_size=64), ValueError, "chunk_size=100 must be a multiple of block_size=64"),
    (dict(chunk_size=64), ValueError, "chunk_size=64 must be a multiple of block_size=256"),
    (dict(block_size=0), ValueError, "block_size must be a positive int"),
    (dict(cache_chunks=0), ValueError, "cache_chunks must be a positive int"),
    (dict(truncation=0.0), ValueError, "truncation must be None or a positive finite number"),
    (dict(truncation=float("nan")), ValueError, "truncation must be None or a positive finite number"),
    (dict(unknown=1), TypeError, "unexpected keyword argument 'unknown'"),
]


@pytest.mark.parametrize("kwargs, exc, message", BAD_SYNTHETIC, ids=[f"{i}-{message}" for i, (_, _, message) in enumerate(BAD_SYNTHETIC)])
def test_bad_synthetic_arguments(gan, kwargs, exc, message):
    args = {"model": gan, "length": 5, **kwargs}
    with pytest.raises(exc, match=message):
        ga.SyntheticDataset(**args)


def test_bad_unconditional_labels_and_bad_model_output():
    model = tiny_gan(num_classes=0)
    for labels in ([0, 1], 3, "weighted"):
        with pytest.raises(ValueError, match=r"unconditional \(num_classes=0\), so it takes no labels"):
            ga.SyntheticDataset(model, 2, labels=labels)
    with pytest.raises(ValueError, match="unknown model"):
        ga.SyntheticDataset(str(Path(__file__).with_name("missing.safetensors")), 2)
    ds = ga.SyntheticDataset(BadOutput(), 2, chunk_size=2, block_size=2)
    with pytest.raises(ValueError, match=r"must return float images \(n, C, H, W\)"):
        ds[0]
    with pytest.raises(TypeError, match="transform_params needs a genaug Transform"):
        ds.transform_params(0)


def test_model_given_by_checkpoint_path(tmp_path, gan):
    from genaug.generative import save_checkpoint

    path = save_checkpoint(gan, tmp_path / "tiny.safetensors", inference_only=True)
    by_path = ga.SyntheticDataset(str(path), 12, chunk_size=8, block_size=8)
    by_object = ga.SyntheticDataset(gan, 12, chunk_size=8, block_size=8)
    assert_same_items(all_items(by_path), all_items(by_object))
    assert by_path.describe()["model"] == str(path)


# --------------------------------------------------------------------------- MixedDataset
def real_digits(n=97, channels=1, size=28):
    """A class-sorted stand-in for a real dataset: uint8 (n, C, H, W), labels i % K."""
    images = torch.randint(0, 256, (n, channels, size, size), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8)
    return ga.data.ImageTensorDataset(images, torch.arange(n) % K)


class ListDataset(Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 1 / 3, 0.5, 0.9, 1.0])
def test_mixed_fraction_is_exact_over_the_index_map(gan, fraction):
    real = real_digits(97)
    synthetic = ga.SyntheticDataset(gan, 1000, chunk_size=64, block_size=64)
    mixed = ga.MixedDataset(real, synthetic, fraction, seed=0)
    n = len(mixed)
    expected_n = 1000 if fraction == 1 else int(np.floor(97 / (1 - fraction) + 0.5))
    assert n == expected_n
    is_syn, inner = mixed.is_synthetic, mixed.inner_index
    assert int(is_syn.sum()) == mixed.num_synthetic == n - mixed.num_real
    assert abs(mixed.actual_synthetic_fraction - fraction) <= 0.5 / n + 1e-12
    assert sorted(inner[~is_syn].tolist()) == (list(range(97)) if fraction < 1 else [])  # every real item once
    assert sorted(inner[is_syn].tolist()) == list(range(mixed.num_synthetic))         # synthetic prefix, once each
    if 0 < fraction < 1:  # interleaved, not appended
        first = is_syn[: n // 4]
        assert first.any() and (~first).any()


def test_mixed_with_explicit_length_and_subsets(gan):
    real = real_digits(97)
    synthetic = ga.SyntheticDataset(gan, 1000, chunk_size=64, block_size=64)
    mixed = ga.MixedDataset(real, synthetic, 0.3, seed=4, length=50)
    assert (mixed.num_synthetic, mixed.num_real) == (15, 35)
    used_real = mixed.inner_index[~mixed.is_synthetic]
    assert len(set(used_real.tolist())) == 35 and used_real.max() < 97
    assert sorted(used_real.tolist()) != list(range(35))  # a seeded subset, not the (class-sorted) head
    plain = ListDataset([synthetic[i] for i in range(200)])  # not a SyntheticDataset: seeded subset too
    other = ga.MixedDataset(real, plain, 0.3, seed=4, length=50)
    assert sorted(other.inner_index[other.is_synthetic].tolist()) != list(range(15))
    assert ga.MixedDataset(real, synthetic, 0.3, seed=4, length=50).inner_index.equal(mixed.inner_index)
    assert not ga.MixedDataset(real, synthetic, 0.3, seed=5, length=50).inner_index.equal(mixed.inner_index)
    assert ga.MixedDataset(real, synthetic, 0.0, length=10).num_synthetic == 0
    assert ga.MixedDataset(None, synthetic, 1.0, length=10).num_real == 0
    d = mixed.describe()
    json.dumps(d)
    assert d["num_synthetic"] == 15 and d["synthetic"]["type"] == "SyntheticDataset"


def test_mixed_items_share_one_format(gan):
    real = real_digits(40)
    synthetic = ga.SyntheticDataset(gan, 100, dtype=torch.float32, chunk_size=64, block_size=64)
    mixed = ga.MixedDataset(real, synthetic, 0.5)
    kinds = set()
    for p in range(len(mixed)):
        x, y = mixed[p]
        kind, j = mixed.source(p)
        kinds.add(kind)
        assert x.dtype == torch.uint8 and x.shape == (1, 28, 28) and type(y) is int
        if kind == "real":
            assert torch.equal(x, real[j][0]) and y == int(real[j][1])
        else:
            assert torch.equal(x, (synthetic[j][0] * 255).round().to(torch.uint8)) and y == synthetic[j][1]
    assert kinds == {"real", "synthetic"}
    as_float = ga.MixedDataset(real, synthetic, 0.5, dtype=torch.float32)
    p_real = int((~as_float.is_synthetic).nonzero()[0])
    assert torch.equal(as_float[p_real][0], real[as_float.source(p_real)[1]][0].float() / 255)
    # batched fetch = item by item
    batch = mixed.__getitems__(list(range(10)))
    for p, (x, y) in enumerate(batch):
        assert torch.equal(x, mixed[p][0]) and y == mixed[p][1]


def test_mixed_converts_pil_numpy_and_hw_images(gan):
    from PIL import Image

    g = np.random.default_rng(0)
    arrays = [g.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(6)]
    real = ListDataset([(Image.fromarray(a), np.int64(1)) for a in arrays[:3]]
                       + [(a, 2) for a in arrays[3:5]] + [(torch.from_numpy(arrays[5]), torch.tensor(3))])
    mixed = ga.MixedDataset(real, ga.SyntheticDataset(gan, 10, chunk_size=8, block_size=8), 0.25, seed=1)
    for p in range(len(mixed)):
        kind, j = mixed.source(p)
        x, y = mixed[p]
        assert x.shape == (1, 28, 28) and x.dtype == torch.uint8 and type(y) is int
        if kind == "real":
            assert np.array_equal(x[0].numpy(), arrays[j])


SOFT = [(torch.rand(1, 28, 28), torch.full((K,), 0.1))] * 4
BAD_MIXED = [  # (real, synthetic length or None, synthetic_fraction, keyword arguments, exception, message)
    (lambda: real_digits(10), 5, 0.5, {}, ValueError, "needs 10 synthetic items but synthetic has only 5"),
    (lambda: real_digits(10, channels=3), 50, 0.5, {}, ValueError,
     r"real images are 3x28x28 .* synthetic images are 1x28x28; make them agree"),
    (lambda: real_digits(10, size=32), 50, 0.5, {}, ValueError, "make them agree"),
    (lambda: real_digits(10), 50, 1.5, {}, ValueError, r"synthetic_fraction must be in \[0, 1\]"),
    (lambda: real_digits(10), 50, float("nan"), {}, ValueError, "synthetic_fraction must be in"),
    (lambda: real_digits(10), 50, True, {}, TypeError, "synthetic_fraction must be a number"),
    (lambda: real_digits(10), 50, 0.5, {"length": 0}, ValueError, "length must be a positive int"),
    (lambda: real_digits(10), 50, 0.1, {"length": 40}, ValueError, "needs 36 real items but real has only 10"),
    (lambda: real_digits(10), 50, 0.5, {"seed": None}, TypeError, "seed must be an int"),
    (lambda: real_digits(10), 50, 0.5, {"dtype": torch.int64}, ValueError, "dtype=torch.int64 is not supported"),
    (lambda: None, 50, 0.5, {}, ValueError, "real=None is only allowed with synthetic_fraction=1"),
    (lambda: real_digits(10), None, 0.5, {}, ValueError, "synthetic=None is only allowed with synthetic_fraction=0"),
    (lambda: [1, 2, 3], 50, 0.5, {}, ValueError, "items must be .image, label. pairs"),
    (lambda: 42, 50, 0.5, {}, TypeError, "real must be a map-style dataset"),
    (lambda: ListDataset([]), 50, 0.0, {}, ValueError, "would be empty"),
    (lambda: ListDataset(SOFT), 50, 0.5, {}, ValueError,
     r"needs integer class labels; got a torch.float32 tensor of shape \(10,\)"),
    (lambda: ListDataset([(torch.rand(2, 1, 28, 28), 1)] * 4), 50, 0.5, {}, ValueError,
     r"images must be \(C, H, W\) or \(H, W\)"),
    (lambda: ListDataset([("img", 1)] * 4), 50, 0.5, {}, TypeError,
     "the image must be a tensor, a PIL image or a NumPy array"),
]


@pytest.mark.parametrize("make_real, n_syn, fraction, kw, exc, message", BAD_MIXED, ids=[m[-1] for m in BAD_MIXED])
def test_bad_mixed_arguments(gan, make_real, n_syn, fraction, kw, exc, message):
    synthetic = None if n_syn is None else ga.SyntheticDataset(gan, n_syn, chunk_size=64, block_size=64)
    with pytest.raises(exc, match=message):
        ga.MixedDataset(make_real(), synthetic, fraction, **kw)


def test_mixed_item_with_another_shape_is_an_error(gan):
    real = ListDataset([(torch.zeros(1, 28, 28, dtype=torch.uint8), 0)] * 4)
    mixed = ga.MixedDataset(real, ga.SyntheticDataset(gan, 10, chunk_size=8, block_size=8), 0.0)
    odd = (int(mixed.inner_index[0]) + 1) % 4  # not the item the format was read from
    real.items[odd] = (torch.zeros(1, 20, 20, dtype=torch.uint8), 0)
    p = int((mixed.inner_index == odd).nonzero()[0])
    with pytest.raises(ValueError, match=rf"real\[{odd}\]: image shape \(1, 20, 20\) differs"):
        mixed[p]
    with pytest.raises(IndexError):
        mixed[len(mixed)]


# --------------------------------------------------------------------------- docs
DOCS = Path(__file__).resolve().parents[1] / "docs" / "DATASETS.md"
BLOCK = re.compile(r"(<!-- doc-test: skip[^>]*-->\s*)?```python\n(.*?)```", flags=re.S)


def test_datasets_doc_examples_run(tmp_path, monkeypatch):
    """docs/DATASETS.md's examples (the README section's example is its first block) run as written."""
    blocks = [code for skip, code in BLOCK.findall(DOCS.read_text()) if not skip]
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(textwrap.dedent(code), str(DOCS), "exec"), namespace)
        if i == 0:  # later sections (e.g. DeviceLoader) reuse names such as `images`
            ns = dict(namespace)
    # the first block is the README's: real mnist5k digits (load_builtin) mixed with the shipped cGAN
    mixed, train, synthetic = ns["mixed"], ns["train"], ns["synthetic"]
    assert (len(mixed), mixed.num_real, mixed.num_synthetic) == (800, 400, 400)
    real_idx = ns["real"].indices
    for p in range(40):
        (x, y), (kind, j) = mixed[p], mixed.source(p)
        ref = train[real_idx[j]] if kind == "real" else synthetic[j]
        assert torch.equal(x, ref[0]) and y == int(ref[1]) and x.dtype == torch.uint8
    assert ns["images"].shape == (64, 1, 28, 28) and ns["labels"].dtype == torch.int64
    assert ns["y"] == 3 and ns["x"].dtype == torch.uint8


def test_latent_interpolate_picks_partners_within_the_items_block():
    """LatentInterpolate mixes each item with another of its block (not with itself), and the items
    stay fixed whatever the access order, chunk size or cache."""
    vae = tiny_vae()
    aug = ga.LatentInterpolate(vae, alpha=(0.3, 0.7), seed=0)
    make = lambda chunk: ga.SyntheticDataset(tiny_gan(), 32, seed=3, dtype=torch.float32,  # noqa: E731
                                             transform=aug, chunk_size=chunk, block_size=16)
    ds = make(16)
    x, y = ds.get_batch(range(32))
    assert y.shape == (32, K) and torch.allclose(y.sum(1), torch.ones(32, dtype=y.dtype))
    # alpha in (0.3, 0.7): every item whose partner has another class has two labels with weight
    # in [0.3, 0.7]; a batch of one (the old per-item run) paired each item with itself: one-hot.
    raw_labels = ga.SyntheticDataset(tiny_gan(), 32, seed=3, chunk_size=16, block_size=16).labels
    mixed = ((y >= 0.3 - 1e-6) & (y <= 0.7 + 1e-6)).sum(1) == 2
    assert int(mixed.sum()) >= 24, y
    assert torch.equal(y.argmax(1)[~mixed], raw_labels[~mixed])  # same-class partners stay one-hot
    again = make(32)
    order = list(reversed(range(32)))
    items = all_items(again, order)
    for i in range(32):
        assert torch.equal(items[i][0], x[i]) and torch.equal(items[i][1], y[i])


def test_a_stage_that_mixes_samples_without_params_still_runs_per_item(gan):
    stage = ga.Compose([ga.LatentInterpolate(tiny_vae(), seed=0), lambda x: x.flip(0)])
    ds = ga.SyntheticDataset(gan, 16, dtype=torch.float32, transform=stage, chunk_size=16, block_size=16)
    _, y = ds.get_batch(range(16))
    assert torch.equal(y, torch.nn.functional.one_hot(y.argmax(1), K).to(y.dtype))  # alone: its own partner
