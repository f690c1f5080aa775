"""Discriminator augmentation (DiffAugment) for GAN training: ops, gradients, validation, exact resume."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from genaug.generative import SHIPPED, ConditionalGAN, GANConfig, TrainConfig, load_model, train
from genaug.generative.cli import main as cli_main
from genaug.generative.train import D_AUGMENT_OPS, d_augment_generator, diff_augment, parse_d_augment

TINY_GAN = GANConfig(g_width=4, d_width=4, latent_dim=8, num_classes=3, penalty="r1", penalty_weight=0.1)
POLICIES = ["color", "translation", "cutout", "translation,cutout", "color,translation,cutout"]


def quiet(**kw):
    return TrainConfig(**{"progress": False, "batch_size": 16, "val_every": 0, **kw})


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_policy_is_validated_with_the_allowed_values():
    assert D_AUGMENT_OPS == ("color", "translation", "cutout")
    assert TrainConfig(d_augment=" translation , cutout").d_augment == "translation,cutout"
    assert TrainConfig().d_augment is None and parse_d_augment(None) == ()
    for bad in ["rotate", "translation,flip", "", "cutout,cutout", "translation,,cutout"]:
        with pytest.raises(ValueError, match="color.*translation.*cutout"):
            TrainConfig(d_augment=bad)
    with pytest.raises(ValueError, match="must be None or"):
        TrainConfig(d_augment=["translation"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"d_augment_fill=-2 must be in \[-1, 1\]"):
        TrainConfig(d_augment="cutout", d_augment_fill=-2)


def test_d_augment_is_refused_for_models_without_a_discriminator(tmp_path, small_mnist):
    with pytest.raises(ValueError, match="only used for kind='gan'"):
        train("vae", small_mnist, tmp_path, {"enc_width": 4, "dec_width": 4, "latent_dim": 4},
              quiet(steps=1, d_augment="translation"), log=lambda s: None)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_augmentation_changes_the_input_and_keeps_shape_and_dtype(policy, dtype):
    x = torch.rand(16, 3, 28, 28, generator=g(1), dtype=dtype) * 2 - 1
    y = diff_augment(x, policy, g(0))
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert not torch.equal(y, x)
    assert torch.equal(y, diff_augment(x, policy, g(0)))  # seeded: replayable
    assert not torch.equal(y, diff_augment(x, policy, g(1)))
    assert diff_augment(x, None, g(0)) is x


def test_translation_is_an_integer_shift_with_zero_padding_and_cutout_a_zero_square():
    x = torch.arange(1, 28 * 28 + 1, dtype=torch.float32).view(1, 1, 28, 28).repeat(32, 1, 1, 1)
    t = diff_augment(x, "translation", g(0))
    for i in range(32):  # every output pixel is 0 or the input pixel shifted by one (dy, dx) in [-4, 4]
        nz = torch.nonzero(t[i, 0])
        r, c = nz[0].tolist()
        dy, dx = divmod(int(t[i, 0, r, c]) - 1, 28)
        dy, dx = r - dy, c - dx
        assert -4 <= dy <= 4 and -4 <= dx <= 4
        assert torch.equal(t[i, 0], torch.roll(x[i, 0], (dy, dx), (0, 1)) * _shift_mask(dy, dx))
    c = diff_augment(x, "cutout", g(0))
    zeros = (c == 0).flatten(1).sum(1)
    assert zeros.max() == 14 * 14 and zeros.min() >= 7 * 7  # a 14x14 square, clipped at the border
    assert torch.equal(c[c != 0], x[c != 0])
    # fill=-1 (black): the same geometry, vacated / cut-out pixels are -1 instead of 0
    for op in ("translation", "cutout"):
        zero, black = diff_augment(x, op, g(0)), diff_augment(x, op, g(0), fill=-1.0)
        assert torch.equal(black == -1, zero == 0) and torch.equal(black[black != -1], zero[zero != 0])


def _shift_mask(dy, dx):
    m = torch.zeros(28, 28)
    m[max(dy, 0):28 + min(dy, 0), max(dx, 0):28 + min(dx, 0)] = 1
    return m


@pytest.mark.parametrize("policy", POLICIES)
def test_gradients_flow_to_the_generator_through_the_augmentation(policy):
    torch.manual_seed(0)
    gan = ConditionalGAN(TINY_GAN)
    z, y = torch.randn(8, 8), torch.arange(8) % 3
    fake = gan.generator(z, y)
    loss = gan.g_loss(gan.discriminator(diff_augment(fake, policy, g(0)), y))
    loss.backward()
    grads = [p.grad for p in gan.generator.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert sum(float(gr.abs().sum()) for gr in grads) > 0
    x = torch.rand(4, 1, 28, 28, requires_grad=True)
    diff_augment(x, policy, g(0)).pow(2).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_r1_penalty_works_on_augmented_images():
    torch.manual_seed(0)
    gan = ConditionalGAN(TINY_GAN)
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    fake = gan.generator(torch.randn(8, 8), torch.arange(8) % 3)
    gen = d_augment_generator(0, 0)
    pen = gan.penalty(diff_augment(real, "color,translation,cutout", gen),
                      diff_augment(fake.detach(), "color,translation,cutout", gen), torch.arange(8) % 3)
    pen.backward()
    assert float(pen.detach()) > 0 and any(p.grad is not None for p in gan.discriminator.parameters())


def _last(out):
    return load_file(str(out / "last.safetensors"))


def test_training_with_d_augment_is_seeded_and_resume_is_bit_exact(tmp_path, small_mnist):
    tc = dict(lr=1e-3, seed=3, ckpt_every=3, d_augment="color,translation,cutout")
    train("gan", small_mnist, tmp_path / "full", TINY_GAN, quiet(steps=6, **tc), log=lambda s: None)
    train("gan", small_mnist, tmp_path / "again", TINY_GAN, quiet(steps=6, **tc), log=lambda s: None)
    train("gan", small_mnist, tmp_path / "part", TINY_GAN, quiet(steps=3, **tc), log=lambda s: None)
    res = train("gan", small_mnist, tmp_path / "part", TINY_GAN, quiet(steps=6, **tc), resume=True,
                log=lambda s: None)
    assert res.step == 6
    full, again, part = _last(tmp_path / "full"), _last(tmp_path / "again"), _last(tmp_path / "part")
    assert set(full) == set(part) == set(again)
    for k in full:
        assert torch.equal(full[k], again[k]), k
        assert torch.equal(full[k], part[k]), k
    # the augmentation is really in the loop: the same run without it ends elsewhere
    train("gan", small_mnist, tmp_path / "plain", TINY_GAN, quiet(steps=6, **{**tc, "d_augment": None}),
          log=lambda s: None)
    plain = _last(tmp_path / "plain")
    assert any(not torch.equal(full[k], plain[k]) for k in full if k.startswith("model.discriminator"))
    js = json.loads((tmp_path / "part" / "last.json").read_text())
    assert js["train_config"]["d_augment"] == "color,translation,cutout"
    prov = load_model(tmp_path / "part" / "model.safetensors").checkpoint_metadata["provenance"]
    assert prov["train_config"]["d_augment"] == "color,translation,cutout"
    with pytest.raises(ValueError, match=r"cannot resume .*: d_augment='cutout' \(the run has 'color,translation"):
        train("gan", small_mnist, tmp_path / "part", TINY_GAN, quiet(steps=9, **{**tc, "d_augment": "cutout"}),
              resume=True, log=lambda s: None)
    with pytest.raises(ValueError, match=r"cannot resume .*: d_augment_fill=-1.0 \(the run has 0.0\)"):
        train("gan", small_mnist, tmp_path / "part", TINY_GAN, quiet(steps=9, **tc, d_augment_fill=-1.0),
              resume=True, log=lambda s: None)


def test_resume_of_a_state_written_before_d_augment_existed(tmp_path, small_mnist):
    tc = dict(lr=1e-3, seed=1, ckpt_every=2)
    train("gan", small_mnist, tmp_path, TINY_GAN, quiet(steps=2, **tc), log=lambda s: None)
    js_path = tmp_path / "last.json"
    js = json.loads(js_path.read_text())
    del js["train_config"]["d_augment"], js["train_config"]["d_augment_fill"]
    js_path.write_text(json.dumps(js))
    assert train("gan", small_mnist, tmp_path, TINY_GAN, quiet(steps=3, **tc), resume=True,
                 log=lambda s: None).step == 3


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_checkpoints_still_load_and_their_train_config_means_no_d_augment(name):
    model = load_model(name)
    recorded = model.checkpoint_metadata["provenance"]["train_config"]
    assert "d_augment" not in recorded  # written before the field existed
    tc = TrainConfig.from_dict(recorded)
    assert tc.d_augment is None and tc.d_augment_fill == 0.0
    assert tc.steps == recorded["steps"] and tc.betas == tuple(recorded["betas"])


def test_cli_d_augment_flag(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "gan", "--data", "mnist5k", "--out", str(out), "--batch-size", "8", "--val-every", "0",
              "--no-progress", "--set", "g_width=4", "--set", "d_width=4", "--set", "latent_dim=8", "--steps", "2"]
    assert cli_main(common + ["--d-augment", "translation,cutout", "--d-augment-fill", "-1"]) == 0
    # read the metadata directly: load_model's pickle sniffing misreads a safetensors file whose header
    # length is 0x..80 (1 in 256; here it depends on the length of the tmp path in the command)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        prov = json.loads(f.metadata()["provenance"])
    assert prov["train_config"]["d_augment"] == "translation,cutout"
    assert prov["train_config"]["d_augment_fill"] == -1.0
    assert "--d-augment translation,cutout --d-augment-fill -1.0" in prov["command"]
    assert cli_main(common + ["--d-augment", "rotate"]) == 2
    assert "translation" in capsys.readouterr().err
