"""Safetensors checkpoints: round trips, integrity, mismatches, pickle refusal, shipped weights."""

import json
import os
import pickle

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from genaug.generative import (SHIPPED, CheckpointError, ConditionalGAN, ConditionalVAE, GANConfig, VAEConfig,
                               checkpoint_info, load_model, save_checkpoint)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def gan():
    torch.manual_seed(0)
    m = ConditionalGAN(GANConfig(g_width=4, d_width=4, latent_dim=8, num_classes=3))
    with torch.no_grad():  # EMA differs from the raw generator, as after training
        for p in m.generator_ema.parameters():
            p.add_(0.1)
    return m


def test_save_load_gives_identical_samples(tmp_path, gan):
    path = save_checkpoint(gan, tmp_path / "g.safetensors", {"data": "unit-test", "steps": 0})
    loaded = load_model(path)
    assert loaded.discriminator is not None and loaded.generator_ema is not None
    for k, v in gan.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert torch.equal(gan.sample(6, generator=gen(5)), loaded.sample(6, generator=gen(5)))
    meta = loaded.checkpoint_metadata
    assert meta["kind"] == "gan" and meta["config"]["g_width"] == 4 and meta["provenance"]["data"] == "unit-test"
    assert len(meta["sha256"]) == 64 and meta["provenance"]["genaug_version"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file


def test_inference_only_gan_keeps_ema_samples(tmp_path, gan):
    full = gan.sample(4, labels=[0, 1, 2, 0], generator=gen())
    small = load_model(save_checkpoint(gan, tmp_path / "s.safetensors", inference_only=True))
    assert small.discriminator is None and small.generator_ema is None
    assert torch.equal(small.sample(4, labels=[0, 1, 2, 0], generator=gen()), full)
    assert (tmp_path / "s.safetensors").stat().st_size < 0.6 * os.path.getsize(
        save_checkpoint(gan, tmp_path / "f.safetensors"))


def test_vae_round_trip(tmp_path):
    torch.manual_seed(1)
    vae = ConditionalVAE(VAEConfig(enc_width=4, dec_width=4, latent_dim=4, num_classes=2))
    loaded = load_model(save_checkpoint(vae, tmp_path / "v.safetensors"))
    assert torch.equal(vae.sample(3, labels=1, generator=gen()), loaded.sample(3, labels=1, generator=gen()))


def test_corrupted_file_is_detected(tmp_path, gan):
    path = save_checkpoint(gan, tmp_path / "g.safetensors")
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # flip a byte inside the tensor data
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted.*sha256"):
        load_model(path)
    path.write_bytes(bytes(data[: len(data) // 2]))  # truncated
    with pytest.raises(CheckpointError, match="corrupted or not a safetensors file"):
        load_model(path)


def test_config_weights_mismatch_is_clear(tmp_path, gan):
    path = save_checkpoint(gan, tmp_path / "g.safetensors")
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["config"])
    cfg["g_width"] = 8
    meta["config"] = json.dumps(cfg)
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="weights do not match the config.*shape mismatch"):
        load_model(path)


def test_foreign_safetensors_without_metadata(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(CheckpointError, match="no genaug metadata"):
        load_model(tmp_path / "x.safetensors")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create a file if unpickled


@pytest.mark.parametrize("name", ["evil.pkl", "evil.pt", "evil.safetensors"])
def test_malicious_pickle_is_never_loaded(tmp_path, name):
    marker = tmp_path / "pwned"
    path = tmp_path / name
    path.write_bytes(pickle.dumps(_Evil(str(marker))))
    with pytest.raises(CheckpointError, match="weights_only=True") as e:
        load_model(path)
    assert "save_checkpoint" in str(e.value)
    assert not marker.exists()


def test_torch_save_zip_with_safetensors_suffix_is_refused(tmp_path, gan):
    path = tmp_path / "disguised.safetensors"
    torch.save(gan.state_dict(), path)
    with pytest.raises(CheckpointError, match="pickle / torch.save archive"):
        load_model(path)


def test_path_errors(tmp_path, gan):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="must end in .safetensors"):
        save_checkpoint(gan, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="unknown shipped model name"):
        from genaug.generative.checkpoint import shipped_path

        shipped_path("mnist-diffusion")


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_weights_load_with_provenance(name):
    from genaug.generative.checkpoint import shipped_path

    assert shipped_path(name).stat().st_size <= 5 * 1024 * 1024
    model = load_model(name)
    prov = model.checkpoint_metadata["provenance"]
    assert prov["data"] == "mnist5k" and prov["split"] == "train"
    assert prov["command"].startswith("genaug train ") and "--data mnist5k" in prov["command"]
    assert checkpoint_info(name)["sha256"] == model.checkpoint_metadata["sha256"]
    if name != "mnist-classifier":
        x = model.sample(10, labels=list(range(10)), generator=gen())
        assert x.shape == (10, 1, 28, 28)


def test_shipped_vae_samples_from_its_fitted_prior_and_that_helps():
    """The shipped VAE's aggregate prior gives more class-faithful digits than N(0, I) on the same weights."""
    from genaug.generative import ConditionalVAE, VAEConfig

    fitted = load_model("mnist-cvae")
    assert fitted.config.prior == "aggregate" and int(fitted.prior_count.sum()) == 3600  # train split minus val
    standard = ConditionalVAE(VAEConfig(**{**fitted.config.to_dict(), "prior": "standard"})).eval()
    standard.load_state_dict({k: v for k, v in fitted.state_dict().items() if not k.startswith("prior_")})
    clf = load_model("mnist-classifier")
    labels = torch.arange(10).repeat_interleave(50)
    agree = {name: float((clf.predict(m.sample(500, labels=labels, generator=gen(0))) == labels).float().mean())
             for name, m in [("standard", standard), ("fitted", fitted)]}
    assert agree["fitted"] >= 0.9 and agree["fitted"] > agree["standard"] + 0.03, agree


def _without_sha256(path, flip=False):
    """Rewrite ``path`` with the ``sha256`` metadata key removed (and optionally one weight changed)."""
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    del meta["sha256"]
    if flip:
        name = sorted(tensors)[0]
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[0] += 1.0
    save_file(tensors, str(path), metadata=meta)
    return path


@pytest.mark.parametrize("flip", [False, True])
def test_checkpoint_without_sha256_is_refused(tmp_path, gan, flip):
    """Deleting the digest must not switch the integrity check off (it did: such files loaded unchecked)."""
    from genaug.generative import read_checkpoint

    path = _without_sha256(save_checkpoint(gan, tmp_path / "g.safetensors"), flip=flip)
    pattern = r"g\.safetensors' has no sha256 in its metadata: every file genaug writes.*tampered.*verify=False"
    with pytest.raises(CheckpointError, match=pattern):
        load_model(path)
    with pytest.raises(CheckpointError, match=pattern):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match=pattern):
        checkpoint_info(path)
    # the documented way out for a file you trust: load unverified, re-save (which records the digest)
    trusted = load_model(path, verify=False)
    assert "sha256" not in trusted.checkpoint_metadata and checkpoint_info(path, verify=False)["kind"] == "gan"
    fixed = load_model(save_checkpoint(trusted, tmp_path / "fixed.safetensors"))
    assert len(fixed.checkpoint_metadata["sha256"]) == 64


def test_every_file_genaug_writes_records_sha256(tmp_path, gan):
    """save_checkpoint (full and inference-only), training's last/best/model files and the shipped weights."""
    from genaug.data import ImageTensorDataset, load_builtin
    from genaug.generative import TrainConfig, read_checkpoint, train
    from genaug.generative.checkpoint import atomic_save_tensors, read_header, shipped_path, tensor_digest

    written = [save_checkpoint(gan, tmp_path / "full.safetensors"),
               save_checkpoint(gan, tmp_path / "small.safetensors", inference_only=True),
               atomic_save_tensors({"w": torch.arange(4.0)}, tmp_path / "state.safetensors", {"format": "x"})]
    ds = load_builtin("mnist5k", "train")
    idx = torch.nonzero(ds.labels < 2).flatten()[::40]
    small = ImageTensorDataset(ds.images[idx], ds.labels[idx], "mnist5k-small", "train")
    cfg = VAEConfig(enc_width=4, dec_width=4, latent_dim=4, num_classes=2)
    tc = dict(progress=False, batch_size=8, ckpt_every=2, seed=0)
    train("vae", small, tmp_path / "run", cfg, TrainConfig(steps=2, val_every=2, **tc), log=lambda s: None)
    written += [tmp_path / "run" / n for n in ("last.safetensors", "best.safetensors", "model.safetensors")]
    for path in written:
        meta = read_header(path)[0]
        assert len(meta.get("sha256", "")) == 64, path
        tensors, _ = read_checkpoint(path)                     # verified: the digest matches the tensors
        assert meta["sha256"] == tensor_digest(tensors)
    for name in SHIPPED:
        assert len(read_header(shipped_path(name))[0].get("sha256", "")) == 64, name
    # resuming reads last.safetensors with verification: it still works
    res = train("vae", small, tmp_path / "run", cfg, TrainConfig(steps=3, val_every=0, **tc), resume=True,
                log=lambda s: None)
    assert res.step == 3
