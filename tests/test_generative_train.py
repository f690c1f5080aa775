"""Training: loss falls, exact resume, early stopping, CLI, shipped-model demo grids."""

import json
import re

import pytest
import torch
from safetensors.torch import load_file

from genaug.data import ImageTensorDataset, load_builtin
from genaug.generative import GANConfig, TrainConfig, VAEConfig, load_model, train
from genaug.generative.cli import main as cli_main
from genaug.generative.train import batch_indices, split_train_val

TINY_GAN = GANConfig(g_width=4, d_width=4, latent_dim=8, num_classes=3, penalty="r1", penalty_weight=0.1)
TINY_VAE = VAEConfig(enc_width=4, dec_width=4, latent_dim=4, num_classes=3)


@pytest.fixture(scope="module")
def small_mnist():
    ds = load_builtin("mnist5k", "train")
    keep = ds.labels < 3
    idx = torch.nonzero(keep).flatten()[::8]  # 150 images of classes 0-2
    return ImageTensorDataset(ds.images[idx], ds.labels[idx], "mnist5k-small", "train")


def quiet(**kw):
    return TrainConfig(**{"progress": False, "batch_size": 16, "val_every": 0, **kw})


def test_vae_loss_falls(tmp_path, small_mnist):
    res = train("vae", small_mnist, tmp_path, TINY_VAE, quiet(steps=40, lr=3e-3, betas=(0.9, 0.999), val_every=5),
                log=lambda s: None)
    losses = [h["val_loss"] for h in res.history]
    assert len(losses) == 8 and losses[-1] < 0.7 * losses[0]
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "best.safetensors").exists()


def test_classifier_learns(tmp_path, small_mnist):
    res = train("classifier", small_mnist, tmp_path, {"width": 4, "feature_dim": 16},
                quiet(steps=40, lr=3e-3, betas=(0.9, 0.999), val_every=40), log=lambda s: None)
    assert res.history[-1]["val_acc"] > 0.6  # chance is 1/3


def _final_tensors(out):
    return load_file(str(out / "last.safetensors"))


@pytest.mark.parametrize("kind,cfg", [("gan", TINY_GAN), ("vae", TINY_VAE)])
def test_resume_equals_uninterrupted(tmp_path, small_mnist, kind, cfg):
    tc = dict(lr=1e-3, seed=3, ckpt_every=3)
    train(kind, small_mnist, tmp_path / "full", cfg, quiet(steps=8, **tc), log=lambda s: None)
    train(kind, small_mnist, tmp_path / "part", cfg, quiet(steps=3, **tc), log=lambda s: None)
    res = train(kind, small_mnist, tmp_path / "part", cfg, quiet(steps=8, **tc), resume=True, log=lambda s: None)
    assert res.step == 8
    full, part = _final_tensors(tmp_path / "full"), _final_tensors(tmp_path / "part")
    assert set(full) == set(part)
    assert any(k.startswith("optim.") for k in full) and "rng.cpu" in full
    for k in full:
        assert torch.equal(full[k], part[k]), k
    # and the run really moved: weights differ from a 3-step run
    short = quiet(steps=3, **tc)
    train(kind, small_mnist, tmp_path / "short", cfg, short, log=lambda s: None)
    assert any(not torch.equal(full[k], v) for k, v in _final_tensors(tmp_path / "short").items()
               if k.startswith("model."))
    js = json.loads((tmp_path / "part" / "last.json").read_text())
    assert js["state"]["step"] == 8 and js["provenance"]["seed"] == 3


def test_gan_trains_and_ema_tracks(tmp_path, small_mnist):
    res = train("gan", small_mnist, tmp_path, TINY_GAN, quiet(steps=5, lr=1e-3), log=lambda s: None)
    gan = res.model
    assert gan.generator_ema is not None
    ema, raw = dict(gan.generator_ema.named_parameters()), dict(gan.generator.named_parameters())
    assert any(not torch.equal(ema[k], raw[k]) for k in ema)
    init = GANConfig(**TINY_GAN.to_dict())
    torch.manual_seed(0)
    from genaug.generative import ConditionalGAN

    fresh = ConditionalGAN(init)
    assert any(not torch.equal(p, dict(fresh.generator.named_parameters())[k]) for k, p in raw.items())


def test_early_stopping_stops_and_keeps_best(tmp_path, small_mnist):
    res = train("classifier", small_mnist, tmp_path, {"width": 4, "feature_dim": 16},
                quiet(steps=50, lr=1e-9, val_every=2, patience=2), log=lambda s: None)
    assert res.stopped_early and res.step == 6 and res.best_step == 2


def test_resume_refuses_a_different_config(tmp_path, small_mnist):
    train("vae", small_mnist, tmp_path, TINY_VAE, quiet(steps=2), log=lambda s: None)
    other = VAEConfig(**{**TINY_VAE.to_dict(), "latent_dim": 5})
    with pytest.raises(ValueError, match="cannot resume"):
        train("vae", small_mnist, tmp_path, other, quiet(steps=4), resume=True, log=lambda s: None)
    with pytest.raises(FileNotFoundError, match="--resume"):
        train("vae", small_mnist, tmp_path / "empty", TINY_VAE, quiet(steps=4), resume=True, log=lambda s: None)


def test_resume_refuses_other_optimisation_settings_and_accepts_more_steps(tmp_path, small_mnist):
    """The restored optimizer state would silently keep the run's lr, betas and weight decay."""
    train("vae", small_mnist, tmp_path, TINY_VAE, quiet(steps=2, lr=1e-3), log=lambda s: None)
    for change, shown in ((dict(lr=5e-4), "lr=0.0005 (the run has 0.001)"),
                          (dict(betas=(0.9, 0.99)), "betas=(0.9, 0.99) (the run has [0.5, 0.999])"),
                          (dict(weight_decay=1e-4), "weight_decay=0.0001 (the run has 0.0)"),
                          (dict(val_fraction=0.2), "val_fraction=0.2 (the run has 0.1)")):
        with pytest.raises(ValueError, match=re.escape(shown)):
            train("vae", small_mnist, tmp_path, TINY_VAE, quiet(steps=4, **{"lr": 1e-3, **change}), resume=True,
                  log=lambda s: None)
    res = train("vae", small_mnist, tmp_path, TINY_VAE, quiet(steps=4, lr=1e-3, patience=3, ckpt_every=1),
                resume=True, log=lambda s: None)
    assert res.step == 4


def test_train_validates_data_against_config(tmp_path, small_mnist):
    with pytest.raises(ValueError, match="image_size=32"):
        train("vae", small_mnist, tmp_path, {**TINY_VAE.to_dict(), "image_size": 32}, quiet(steps=1))
    with pytest.raises(ValueError, match="kind='diffusion'"):
        train("diffusion", small_mnist, tmp_path)


def test_split_and_batches_are_seeded():
    ds = ImageTensorDataset(torch.zeros(40, 1, 28, 28, dtype=torch.uint8), torch.arange(40) % 4)
    tr, va = split_train_val(ds, 0.25, seed=0)
    assert len(va) == 8 and ds.labels[va].bincount().tolist() == [2, 2, 2, 2]
    assert set(tr.tolist()).isdisjoint(va.tolist())
    assert torch.equal(batch_indices(32, 8, 5, 1), batch_indices(32, 8, 5, 1))
    epoch0 = torch.cat([batch_indices(32, 8, s, 1) for s in range(4)])
    assert sorted(epoch0.tolist()) == list(range(32))


def test_cli_train_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "gan", "--data", "mnist5k", "--out", str(out), "--batch-size", "8", "--val-every", "0",
              "--no-progress", "--set", "g_width=4", "--set", "d_width=4", "--set", "latent_dim=8", "--seed", "1"]
    assert cli_main(common + ["--steps", "2"]) == 0
    assert cli_main(common + ["--steps", "3", "--resume"]) == 0
    assert "done: 3 steps" in capsys.readouterr().out
    model = load_model(out / "model.safetensors")
    prov = model.checkpoint_metadata["provenance"]
    assert prov["steps"] == 3 and prov["data"] == "mnist5k" and prov["split"] == "train" and prov["seed"] == 1
    assert "--resume" in prov["command"] and prov["command"].startswith("genaug train gan")
    assert cli_main(["train", "vae", "--out", str(tmp_path / "x"), "--set", "image_size=64", "--no-progress"]) == 2


def test_register_adds_train_subcommand():
    import argparse

    from genaug.generative.cli import register, run_train

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "vae", "--out", "x", "--steps", "7", "--set", "latent_dim=3"])
    assert args.func is run_train and args.steps == 7 and args.set == ["latent_dim=3"]


def test_generative_demo_writes_labelled_grids(tmp_path):
    from PIL import Image

    from genaug.generative.demo import write_generative_demo

    paths = write_generative_demo(tmp_path)
    assert [p.name for p in paths] == ["generative_mnist-cgan.png", "generative_mnist-cvae.png"]
    for p in paths:
        with Image.open(p) as im:
            assert im.size[0] > 300 and im.size[1] > 300


def test_vae_with_aggregate_prior_is_fitted_on_the_training_images(tmp_path, small_mnist):
    cfg = VAEConfig(enc_width=4, dec_width=4, latent_dim=4, num_classes=3, prior="aggregate")
    res = train("vae", small_mnist, tmp_path, cfg, quiet(steps=4, val_fraction=0.2), log=lambda s: None)
    n_train = res.model.prior_count.sum().item()
    assert n_train == 120  # 150 images minus the 20 % validation carve-out
    loaded = load_model(tmp_path / "model.safetensors")
    assert torch.equal(loaded.prior_scale_tril, res.model.prior_scale_tril)
    assert "120 training images" in loaded.checkpoint_metadata["provenance"]["prior_fit"]
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(loaded.sample(6, labels=[0, 1, 2] * 2, generator=g()),
                       res.model.sample(6, labels=[0, 1, 2] * 2, generator=g()))
