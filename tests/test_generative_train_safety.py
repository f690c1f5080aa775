"""Training safety: consistent resume state, validated arguments, clear errors before any work.

Every test trains tiny models for a few steps (or fails before the first one).
"""

import json
import math
import re
import sys
import tempfile

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import genaug.generative.train  # noqa: F401  (the module; genaug.generative.train is also the function)
from genaug.data import ImageTensorDataset
from genaug.generative import (Classifier, ClassifierConfig, ConditionalGAN, GANConfig, TrainConfig, VAEConfig,
                               train)
from genaug.generative.checkpoint import CheckpointError
from genaug.generative.cli import _parse_set
from genaug.generative.cli import main as cli_main

T = sys.modules["genaug.generative.train"]
TINY_GAN = GANConfig(g_width=4, d_width=4, latent_dim=8, num_classes=3)
TINY_VAE = VAEConfig(enc_width=4, dec_width=4, latent_dim=4, num_classes=3)
TINY_CLF = {"width": 4, "feature_dim": 16}
QUIET = lambda s: None  # noqa: E731


def quiet(**kw):
    return TrainConfig(**{"progress": False, "batch_size": 16, "val_every": 0, **kw})


@pytest.fixture
def no_steps(monkeypatch):
    """Fail the test if a training step runs (the error must come before any work)."""
    def step(*a, **k):
        raise AssertionError("a training step ran before the argument error")
    monkeypatch.setattr(T._Trainer, "step", step)


def _same_tensors(a, b):
    ta, tb = load_file(str(a)), load_file(str(b))
    return set(ta) == set(tb) and all(torch.equal(ta[k], tb[k]) for k in ta)


def _cli(capsys, *argv):
    rc = cli_main(["train", *argv, "--no-progress"])
    captured = capsys.readouterr()
    return rc, captured.err.strip()


# ---------------------------------------------------------------------------- resume state


def test_interrupted_checkpoint_write_resumes_from_the_committed_state(tmp_path, small_mnist, monkeypatch):
    """last.safetensors written, last.json not (Ctrl-C in between): resume must not mix the two."""
    tc = dict(lr=1e-3, seed=2, ckpt_every=2)
    train("vae", small_mnist, tmp_path / "full", TINY_VAE, quiet(steps=6, **tc), log=QUIET)
    real_write, calls = T.atomic_write_text, []

    def interrupted(text, path):
        calls.append(path)
        if str(path).endswith("last.json") and len(calls) == 2:  # the step-4 checkpoint
            raise KeyboardInterrupt("simulated interruption between last.safetensors and last.json")
        return real_write(text, path)

    monkeypatch.setattr(T, "atomic_write_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train("vae", small_mnist, tmp_path / "int", TINY_VAE, quiet(steps=6, **tc), log=QUIET)
    monkeypatch.setattr(T, "atomic_write_text", real_write)
    assert json.loads((tmp_path / "int" / "last.json").read_text())["state"]["step"] == 2  # out of date
    logs = []
    res = train("vae", small_mnist, tmp_path / "int", TINY_VAE, quiet(steps=6, **tc), resume=True, log=logs.append)
    assert res.step == 6
    assert _same_tensors(tmp_path / "full" / "model.safetensors", tmp_path / "int" / "model.safetensors")
    assert _same_tensors(tmp_path / "full" / "last.safetensors", tmp_path / "int" / "last.safetensors")
    assert any("out of date (step 2)" in m for m in logs) and any("at step 4" in m for m in logs)
    assert json.loads((tmp_path / "int" / "last.json").read_text())["state"]["step"] == 6


def test_last_json_is_rewritten_when_missing(tmp_path, small_mnist):
    tc = dict(lr=1e-3, seed=2, ckpt_every=2)
    train("vae", small_mnist, tmp_path, TINY_VAE, quiet(steps=2, **tc), log=QUIET)
    (tmp_path / "last.json").unlink()
    assert train("vae", small_mnist, tmp_path, TINY_VAE, quiet(steps=3, **tc), resume=True, log=QUIET).step == 3
    assert json.loads((tmp_path / "last.json").read_text())["state"]["step"] == 3


def _as_legacy(st_path, js_path, js):
    """Rewrite a state as genaug wrote it before the JSON went into last.safetensors."""
    save_file(load_file(str(st_path)), str(st_path), metadata={"format": "genaug-train-state", "kind": js["kind"]})
    js = {k: v for k, v in js.items() if k not in ("format", "version", "tensors_sha256")}
    js["state"] = {k: v for k, v in js["state"].items() if k != "running"}
    js_path.write_text(json.dumps(js))


def test_a_mismatched_legacy_pair_is_refused_and_a_matching_one_resumes(tmp_path, small_mnist):
    tc = dict(lr=1e-3, seed=1, ckpt_every=2)
    run = tmp_path / "run"
    train("vae", small_mnist, run, TINY_VAE, quiet(steps=2, **tc), log=QUIET)
    js_step2 = json.loads((run / "last.json").read_text())
    train("vae", small_mnist, run, TINY_VAE, quiet(steps=4, **tc), resume=True, log=QUIET)
    js_step4 = json.loads((run / "last.json").read_text())
    # tensors of step 4, JSON of step 2: the old code resumed from this mix silently
    _as_legacy(run / "last.safetensors", run / "last.json", js_step2)
    with pytest.raises(CheckpointError, match="after 4 steps but .*step 2: the two files come from different"):
        train("vae", small_mnist, run, TINY_VAE, quiet(steps=6, **tc), resume=True, log=QUIET)
    # a consistent legacy pair still resumes, exactly
    _as_legacy(run / "last.safetensors", run / "last.json", js_step4)
    assert train("vae", small_mnist, run, TINY_VAE, quiet(steps=6, **tc), resume=True, log=QUIET).step == 6
    train("vae", small_mnist, tmp_path / "full", TINY_VAE, quiet(steps=6, **tc), log=QUIET)
    assert _same_tensors(tmp_path / "full" / "model.safetensors", run / "model.safetensors")


def test_resume_without_weights_is_refused(tmp_path, small_mnist):
    train("vae", small_mnist, tmp_path, TINY_VAE, quiet(steps=2), log=QUIET)
    (tmp_path / "last.safetensors").unlink()
    with pytest.raises(CheckpointError, match="last.safetensors .* is missing"):
        train("vae", small_mnist, tmp_path, TINY_VAE, quiet(steps=3), resume=True, log=QUIET)


@pytest.mark.parametrize("kind,cfg", [("classifier", TINY_CLF), ("gan", TINY_GAN)])
def test_resumed_history_equals_uninterrupted(tmp_path, small_mnist, kind, cfg):
    """The running loss averages are part of the state: the history after a resume is the same."""
    tc = dict(lr=1e-3, seed=3, ckpt_every=2, val_every=2)
    vc = None
    if kind == "gan":  # validation of a GAN needs a classifier: a tiny untrained one will do
        torch.manual_seed(0)
        vc = Classifier(ClassifierConfig(num_classes=3, width=4, feature_dim=8))
    train(kind, small_mnist, tmp_path / "full", cfg, quiet(steps=6, **tc), val_classifier=vc, log=QUIET)
    train(kind, small_mnist, tmp_path / "part", cfg, quiet(steps=2, **tc), val_classifier=vc, log=QUIET)
    train(kind, small_mnist, tmp_path / "part", cfg, quiet(steps=6, **tc), val_classifier=vc, resume=True,
          log=QUIET)
    full = json.loads((tmp_path / "full" / "last.json").read_text())["state"]
    part = json.loads((tmp_path / "part" / "last.json").read_text())["state"]
    assert [h["step"] for h in full["history"]] == [2, 4, 6]
    assert part["history"] == full["history"]
    assert part["running"] == full["running"]


# ------------------------------------------------------------------------- hyper-parameters


@pytest.mark.parametrize("kw,field", [
    ({"lr": math.inf}, "lr=inf"), ({"lr": math.nan}, "lr=nan"), ({"lr_d": math.inf}, "lr_d=inf"),
    ({"betas": (math.nan, 0.9)}, "betas="), ({"betas": (1.5, 0.9)}, "betas="),
    ({"weight_decay": math.inf}, "weight_decay=inf"),
    ({"val_fraction": math.nan}, "val_fraction=nan"), ({"d_augment_fill": math.nan}, "d_augment_fill=nan"),
    ({"device": "nosuchdev"}, "device='nosuchdev'"), ({"device": "meta"}, "device='meta'"),
])
def test_train_config_rejects_non_finite_and_unknown_values(kw, field):
    with pytest.raises(ValueError, match=field.replace("(", r"\(")) as e:
        TrainConfig(**kw)
    assert "must be" in str(e.value) or "allowed" in str(e.value)


@pytest.mark.parametrize("cls,kw,err,pattern", [
    (VAEConfig, {"beta": math.nan}, ValueError, r"VAEConfig.beta=nan must be a finite number"),
    (VAEConfig, {"beta": "high"}, TypeError, r"VAEConfig.beta='high' \(str\) must be a finite number"),
    (VAEConfig, {"latent_dim": True}, TypeError, r"VAEConfig.latent_dim=True \(bool\) must be an int"),
    (GANConfig, {"ema_decay": math.inf}, ValueError, r"GANConfig.ema_decay=inf must be a finite number"),
    (GANConfig, {"penalty_weight": "1"}, TypeError, r"GANConfig.penalty_weight='1'"),
    (GANConfig, {"minibatch_std": "maybe"}, TypeError, r"GANConfig.minibatch_std='maybe' \(str\) must be a bool"),
    (GANConfig, {"noise_injection": 1}, TypeError, r"GANConfig.noise_injection=1 \(int\) must be a bool"),
    (GANConfig, {"loss": 3}, TypeError, r"GANConfig.loss=3 \(int\) must be a str"),
    (ClassifierConfig, {"width": 4.0}, TypeError, r"ClassifierConfig.width=4.0 \(float\) must be an int"),
    (ClassifierConfig, {"image_size": 28.0}, TypeError, r"ClassifierConfig.image_size=28.0"),
])
def test_model_configs_check_types_and_finiteness(cls, kw, err, pattern):
    with pytest.raises(err, match=pattern):
        cls(**kw)


def test_model_configs_accept_numpy_numbers_as_python_ones():
    cfg = VAEConfig(latent_dim=np.int64(4), beta=np.float32(0.5), enc_width=4, dec_width=4)
    assert type(cfg.latent_dim) is int and type(cfg.beta) is float and cfg.beta == 0.5
    assert json.dumps(cfg.to_dict())
    assert GANConfig(penalty_weight=2).penalty_weight == 2  # an int is a number


def test_set_values_are_converted_to_the_field_type():
    got = _parse_set(["latent_dim=32", "beta=1", "prior=aggregate"], "vae")
    assert got == {"latent_dim": 32, "beta": 1.0, "prior": "aggregate"} and type(got["beta"]) is float
    got = _parse_set(["minibatch_std=false", "noise_injection=True", "loss=\"ns\"", "mode_seeking=1e-1"], "gan")
    assert got == {"minibatch_std": False, "noise_injection": True, "loss": "ns", "mode_seeking": 0.1}


@pytest.mark.parametrize("kind,item,pattern", [
    ("vae", "beta=NaN", r"--set beta='NaN': VAEConfig.beta must be a finite number"),
    ("vae", "beta=inf", r"--set beta='inf': VAEConfig.beta must be a finite number"),
    ("vae", "beta=high", r"--set beta='high': VAEConfig.beta is a number"),
    ("vae", "latent_dim=3.5", r"--set latent_dim='3.5': VAEConfig.latent_dim is an int"),
    ("gan", "minibatch_std=maybe", r"--set minibatch_std='maybe': GANConfig.minibatch_std is a bool; use true or"),
    ("vae", "nosuch=3", r"VAEConfig has no field 'nosuch'; allowed: \['beta'"),
])
def test_cli_set_errors_name_the_key(tmp_path, capsys, no_steps, kind, item, pattern):
    rc, err = _cli(capsys, kind, "--out", str(tmp_path / "run"), "--steps", "2", "--set", item)
    assert rc == 2 and err.startswith("genaug train: error: ") and len(err.splitlines()) == 1
    assert re.search(pattern, err), err
    assert not (tmp_path / "run").exists()


def test_cli_set_without_equals_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["train", "vae", "--out", str(tmp_path / "run"), "--set", "foo"])
    assert e.value.code == 2
    assert "genaug train: error: argument --set: expects KEY=VALUE" in capsys.readouterr().err


def test_cli_rejects_infinite_lr_before_training(tmp_path, capsys, no_steps):
    rc, err = _cli(capsys, "vae", "--out", str(tmp_path / "run"), "--steps", "2", "--lr", "inf")
    assert rc == 2 and err == "genaug train: error: lr=inf must be a finite number > 0"


def test_a_diverging_run_stops_with_a_clear_error_and_writes_no_nan_weights(tmp_path, small_mnist, capsys):
    with pytest.raises(T.TrainingDivergedError, match=r"training diverged: the classifier's training loss "
                                                      r"\(loss=nan\) at step 2 is not finite.*lr=1e\+30"):
        train("classifier", small_mnist, tmp_path / "api", TINY_CLF, quiet(steps=6, lr=1e30), log=QUIET)
    assert not (tmp_path / "api" / "model.safetensors").exists()
    out = tmp_path / "cli"
    rc, err = _cli(capsys, "classifier", "--out", str(out), "--steps", "6", "--batch-size", "16", "--lr", "1e30",
                   "--val-every", "0", "--ckpt-every", "1", "--set", "width=4", "--set", "feature_dim=16")
    assert rc == 2 and err.startswith("genaug train: error: training diverged") and len(err.splitlines()) == 1
    assert "still holds step 1" in err
    assert not (out / "model.safetensors").exists()
    assert all(torch.isfinite(t).all() for t in load_file(str(out / "last.safetensors")).values()
               if t.is_floating_point())


def test_non_finite_weights_are_never_checkpointed(tmp_path, small_mnist, monkeypatch):
    real_step = T._Trainer.step

    def poisoning_step(self, x, y):  # a finite loss, but the update leaves an infinite weight
        out = real_step(self, x, y)
        with torch.no_grad():
            next(self.model.parameters()).view(-1)[0] = math.inf
        return out

    monkeypatch.setattr(T._Trainer, "step", poisoning_step)
    with pytest.raises(T.TrainingDivergedError, match=r"weights \(body.0.0.weight\) at step 1 is not finite"):
        train("classifier", small_mnist, tmp_path, TINY_CLF, quiet(steps=4, ckpt_every=1), log=QUIET)
    assert not (tmp_path / "last.safetensors").exists() and not (tmp_path / "model.safetensors").exists()


# ------------------------------------------------------------------------------- devices


def test_unknown_device_is_a_one_line_error(tmp_path, capsys, no_steps):
    rc, err = _cli(capsys, "vae", "--out", str(tmp_path / "run"), "--steps", "1", "--device", "nosuchdev")
    assert rc == 2 and len(err.splitlines()) == 1
    assert "device='nosuchdev' is not a device; allowed: 'auto', 'cpu'" in err and "this machine has: cpu" in err
    assert not (tmp_path / "run").exists()


def test_cuda_without_cuda_is_a_one_line_error(tmp_path, capsys, no_steps, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, err = _cli(capsys, "vae", "--out", str(tmp_path / "run"), "--steps", "1", "--device", "cuda")
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith("genaug train: error: device='cuda': CUDA is not available on this machine ") \
        and err.endswith("this machine has: cpu")


# -------------------------------------------------------------------------- output folder


def test_out_under_a_file_fails_before_training(tmp_path, capsys, no_steps):
    (tmp_path / "file").write_text("x")
    rc, err = _cli(capsys, "vae", "--out", str(tmp_path / "file" / "run"), "--steps", "1")
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"genaug train: error: out='{tmp_path / 'file' / 'run'}' is not a writable folder")
    rc, err = _cli(capsys, "vae", "--out", str(tmp_path / "file"), "--steps", "1")
    assert rc == 2 and "is a file, not a folder" in err


def test_unwritable_out_fails_before_training_and_leaves_no_folder(tmp_path, capsys, no_steps, monkeypatch):
    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    rc, err = _cli(capsys, "vae", "--out", str(tmp_path / "ro" / "run"), "--steps", "1")
    assert rc == 2 and err == (f"genaug train: error: out='{tmp_path / 'ro' / 'run'}' is not a writable folder "
                               f"(Permission denied); give a folder you can write to")
    assert not (tmp_path / "ro" / "run").exists()


# ------------------------------------------------------------------------ val classifier


@pytest.mark.parametrize("vc,pattern", [
    ("mnist-cvae", r"val_classifier='mnist-cvae' is a vae model, not a classifier"),
    ("mnist-cgan", r"val_classifier='mnist-cgan' is a gan model, not a classifier"),
    (ConditionalGAN(TINY_GAN), r"a ConditionalGAN object is a gan model, not a classifier"),
    (Classifier(ClassifierConfig(image_size=32)), r"takes 1x32x32 images but the data is 1x28x28"),
])
def test_val_classifier_must_be_a_matching_classifier(tmp_path, small_mnist, no_steps, vc, pattern):
    with pytest.raises(ValueError, match=pattern):
        train("gan", small_mnist, tmp_path, TINY_GAN, quiet(steps=2, val_every=1), val_classifier=vc, log=QUIET)


# ------------------------------------------------------------------------------- data


def test_negative_labels_are_rejected(tmp_path, small_mnist, no_steps):
    labels = small_mnist.labels.clone()
    labels[0] = -1
    ds = ImageTensorDataset(small_mnist.images, labels, "neg")
    for kind, cfg in (("vae", TINY_VAE), ("gan", TINY_GAN), ("classifier", {**TINY_CLF, "num_classes": 3})):
        with pytest.raises(ValueError, match=r"data has labels in -1\.\.2 but num_classes=3: class labels must be "
                                             r"ints in 0\.\.2"):
            train(kind, ds, tmp_path / kind, cfg, quiet(steps=2), log=QUIET)


def test_empty_data_and_empty_training_split_are_named(tmp_path, small_mnist, no_steps):
    empty = ImageTensorDataset(small_mnist.images[:0], small_mnist.labels[:0], "empty")
    with pytest.raises(ValueError, match=r"data='empty' is empty \(0 images\)"):
        train("vae", empty, tmp_path, TINY_VAE, quiet(steps=2), log=QUIET)
    with pytest.raises(ValueError, match=r"is empty \(0 images\)"):
        train("vae", torch.utils.data.TensorDataset(torch.zeros(0, 1, 28, 28)), tmp_path, TINY_VAE, quiet(steps=2),
              log=QUIET)
    one_each = ImageTensorDataset(small_mnist.images[:3], torch.tensor([0, 1, 2]), "three")
    with pytest.raises(ValueError, match=r"no training images are left after holding out val_fraction=0.9"):
        train("vae", one_each, tmp_path, TINY_VAE, quiet(steps=2, val_fraction=0.9), log=QUIET)


# ------------------------------------------------------------------------- help and data


def test_train_help_lists_only_trainable_data(capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "mnist5k (built in), imagefolder:PATH or export:PATH: square images of side 28, 32 or 64" in help_text
    assert "digits" not in help_text and "photos" not in help_text


@pytest.mark.parametrize("name,shape", [("digits", "1x8x8"), ("photos", "3x427x640")])
def test_demo_only_data_is_refused_with_the_reason(tmp_path, capsys, no_steps, name, shape):
    rc, err = _cli(capsys, "vae", "--out", str(tmp_path / "run"), "--steps", "1", "--data", name)
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"data='{name}' has {shape} images; training needs square images of side 28, 32 or 64" in err
    assert f"the built-in '{name}' images" in err and "cannot be trained on" in err
