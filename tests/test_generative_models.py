"""Model shapes, ranges, determinism, validation errors and latent interpolation."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from genaug.generative import (Classifier, ClassifierConfig, ConditionalGAN, ConditionalVAE, GANConfig,
                               VAEConfig, interpolate, lerp, slerp)


def tiny_gan(**kw):
    torch.manual_seed(0)
    return ConditionalGAN(GANConfig(**{"g_width": 4, "d_width": 4, "latent_dim": 8, "num_classes": 3, **kw}))


def tiny_vae(**kw):
    torch.manual_seed(0)
    return ConditionalVAE(VAEConfig(**{"enc_width": 4, "dec_width": 4, "latent_dim": 4, "num_classes": 3, **kw}))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 1)])
@pytest.mark.parametrize("factory", [tiny_gan, tiny_vae])
def test_sample_shape_range_and_determinism(factory, size, channels):
    m = factory(image_size=size, channels=channels)
    x = m.sample(5, labels=[0, 1, 2, 0, 1], generator=gen(1))
    assert x.shape == (5, channels, size, size) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert torch.equal(x, m.sample(5, labels=[0, 1, 2, 0, 1], generator=gen(1)))
    assert not torch.equal(x, m.sample(5, labels=[0, 1, 2, 0, 1], generator=gen(2)))


def test_labels_change_the_output_and_unconditional_models_work():
    m = tiny_gan()
    for p in m.generator_ema.parameters():  # make class embeddings matter
        torch.nn.init.normal_(p, std=0.5)
    a, b = m.sample(4, labels=0, generator=gen()), m.sample(4, labels=2, generator=gen())
    assert not torch.allclose(a, b)
    u = tiny_gan(num_classes=0)
    assert u.sample(3, generator=gen()).shape == (3, 1, 28, 28)
    with pytest.raises(ValueError, match="unconditional"):
        u.sample(3, labels=1)
    v = tiny_vae(num_classes=0)
    assert v.reconstruct(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("factory", [tiny_gan, tiny_vae])
def test_sampling_errors_are_clear(factory):
    m = factory()
    with pytest.raises(ValueError, match=r"label 3 is out of range; allowed: 0\.\.2"):
        m.sample(2, labels=[0, 3])
    with pytest.raises(ValueError, match="label -1 is out of range"):
        m.sample(1, labels=-1)
    with pytest.raises(ValueError, match="n=0 must be a positive int"):
        m.sample(0)
    with pytest.raises(ValueError, match="labels has 2 entries but n=3"):
        m.sample(3, labels=[0, 1])
    with pytest.raises(TypeError, match="labels must be integers"):
        m.sample(2, labels=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="truncation"):
        m.sample(2, truncation=-1.0)


def test_image_validation_errors():
    vae = tiny_vae()
    with pytest.raises(ValueError, match="expects channels=1"):
        vae.encode(torch.rand(2, 3, 28, 28), labels=[0, 1])
    with pytest.raises(ValueError, match="expects image_size=28"):
        vae.reconstruct(torch.rand(2, 1, 32, 32), labels=[0, 1])
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        vae.encode(torch.rand(28, 28), labels=[0])
    with pytest.raises(ValueError, match="labels are required"):
        vae.encode(torch.rand(2, 1, 28, 28))
    gan = tiny_gan()
    with pytest.raises(ValueError, match="expects image_size=28"):
        gan.discriminate(torch.rand(2, 1, 64, 64), labels=[0, 1])
    clf = Classifier(ClassifierConfig(width=4, num_classes=3))
    with pytest.raises(ValueError, match="expects channels=1"):
        clf(torch.rand(1, 3, 28, 28))


@pytest.mark.parametrize("field,value", [("image_size", 30), ("channels", 2), ("num_classes", -1),
                                         ("loss", "wgan"), ("penalty", "l2"), ("latent_dim", 0)])
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        GANConfig(**{field: value})
    with pytest.raises(ValueError, match="unknown GANConfig field"):
        GANConfig.from_dict({"image_size": 28, "widht": 3})


def test_vae_encode_decode_reconstruct_shapes_and_uint8():
    vae = tiny_vae().eval()
    x = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    mu, logvar = vae.encode(x, labels=[0, 1, 2])
    assert mu.shape == logvar.shape == (3, 4)
    rec = vae.reconstruct(x, labels=[0, 1, 2])
    assert torch.allclose(rec, vae.decode(mu, labels=[0, 1, 2]))
    assert torch.allclose(vae.encode(x.float() / 255, labels=[0, 1, 2])[0], mu)


def test_truncation_bounds_latents():
    m = tiny_gan()
    from genaug.generative.models.common import truncated_normal

    z = truncated_normal((1000, 8), 0.5, gen(), torch.device("cpu"))
    assert float(z.abs().max()) <= 0.5 and float(z.std()) < 0.35
    a = m.sample(4, labels=1, generator=gen(), truncation=0.5)
    assert torch.equal(a, m.sample(4, labels=1, generator=gen(), truncation=0.5))


def test_noise_injection_uses_the_generator():
    m = tiny_gan(noise_injection=True)
    for mod in m.generator_ema.modules():
        if mod.__class__.__name__ == "NoiseInjection":
            mod.weight.data.fill_(1.0)
    assert torch.equal(m.sample(2, labels=0, generator=gen(3)), m.sample(2, labels=0, generator=gen(3)))


@given(st.floats(0.0, 1.0), st.integers(0, 1000))
def test_slerp_properties(t, seed):
    g = gen(seed)
    z0, z1 = torch.randn(16, generator=g, dtype=torch.float64), torch.randn(16, generator=g, dtype=torch.float64)
    z1 = z1 / z1.norm() * z0.norm()  # equal norms: slerp stays on the sphere
    out = slerp(z0, z1, t)
    assert torch.allclose(out.norm(), z0.norm(), rtol=1e-6)
    assert torch.allclose(slerp(z0, z1, 0.0), z0) and torch.allclose(slerp(z0, z1, 1.0), z1)
    assert torch.allclose(lerp(z0, z1, t), (1 - t) * z0 + t * z1)


def test_interpolation_batches_and_decodes():
    ts = torch.linspace(0, 1, 5)
    z0, z1 = torch.randn(8, generator=gen()), torch.randn(8, generator=gen(1))
    path = slerp(z0, z1, ts)
    assert path.shape == (5, 8) and torch.allclose(path[0], z0) and torch.allclose(path[-1], z1, atol=1e-6)
    assert torch.allclose(slerp(z0, z0, 0.3), z0)  # parallel fallback, no NaN
    with pytest.raises(ValueError, match="same shape"):
        lerp(z0, torch.zeros(3), 0.5)
    imgs = interpolate(tiny_gan(), z0, z1, steps=4, labels=1)
    assert imgs.shape == (4, 1, 28, 28)
    assert interpolate(tiny_vae(), z0[:4], z1[:4], steps=3, labels=2, method="lerp").shape == (3, 1, 28, 28)


def test_ema_warmup_and_standing_stats():
    m = tiny_gan()
    ema0 = {k: v.clone() for k, v in m.generator_ema.named_parameters()}
    with torch.no_grad():
        for p in m.generator.parameters():
            p.add_(1.0)
    raw = dict(m.generator.named_parameters())
    m.update_ema(step=0)  # warm-up decay min(0.999, 1/10) = 0.1
    for k, p in m.generator_ema.named_parameters():
        assert torch.allclose(p, 0.1 * ema0[k] + 0.9 * raw[k], atol=1e-6), k
    bn = next(mod for mod in m.generator_ema.modules() if isinstance(mod, torch.nn.BatchNorm2d))
    m.refresh_ema_stats(batches=3, batch_size=8, seed=1)
    mean1, var1 = bn.running_mean.clone(), bn.running_var.clone()
    assert int(bn.num_batches_tracked) == 3 and bn.momentum == 0.1 and not torch.allclose(var1, torch.ones_like(var1))
    state = torch.get_rng_state()
    m.refresh_ema_stats(batches=3, batch_size=8, seed=1)
    assert torch.equal(bn.running_mean, mean1) and torch.equal(bn.running_var, var1)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched


def _reference_aggregate_gaussian(vae, x, y, k):
    """Mean and covariance of q(z | x, y) over the images of class k, computed directly."""
    with torch.no_grad():
        mu, logvar = vae.encoder(x[y == k], y[y == k])
    mu, var = mu.double(), logvar.double().exp()
    return mu.mean(0), torch.cov(mu.T) + torch.diag(var.mean(0))


def test_aggregate_prior_fits_the_aggregate_posterior_per_class():
    vae = tiny_vae(prior="aggregate").eval()
    x = torch.rand(60, 1, 28, 28)
    y = torch.arange(3).repeat(20)
    vae.fit_prior(x, y, batch_size=7)  # batches that cut across classes
    assert vae.prior_count.tolist() == [20, 20, 20]
    for k in range(3):
        mean, cov = _reference_aggregate_gaussian(vae, x, y, k)
        L = vae.prior_scale_tril[k].double()
        assert torch.allclose(vae.prior_mean[k].double(), mean, atol=1e-5)
        assert torch.allclose(L @ L.T, cov, atol=1e-5)
    # latents drawn for class k follow N(mean_k, cov_k): check the first two moments
    z, labels = vae.sample_latent(20000, labels=2, generator=gen(3))
    assert labels.tolist() == [2] * 20000
    mean, cov = _reference_aggregate_gaussian(vae, x, y, 2)
    assert torch.allclose(z.double().mean(0), mean, atol=0.05 * float(cov.diag().max().sqrt()))
    assert torch.allclose(torch.cov(z.double().T), cov, atol=0.05 * float(cov.diag().max()))
    # sample() decodes exactly those latents
    z4, y4 = vae.sample_latent(4, labels=[0, 1, 2, 0], generator=gen(5))
    assert torch.equal(vae.sample(4, labels=[0, 1, 2, 0], generator=gen(5)), vae.decode(z4, y4))


def test_aggregate_prior_of_an_unconditional_vae_is_one_gaussian():
    vae = tiny_vae(prior="aggregate", num_classes=0).eval()
    x = torch.rand(16, 1, 28, 28)
    vae.fit_prior(x)
    assert vae.prior_count.tolist() == [16]
    with torch.no_grad():
        mu, _ = vae.encoder(x, None)
    assert torch.allclose(vae.prior_mean[0], mu.mean(0), atol=1e-6)
    z, y = vae.sample_latent(3, generator=gen())
    assert y is None and z.shape == (3, 4)
    assert torch.allclose(z, vae.prior_mean[0] + torch.randn(3, 4, generator=gen()) @ vae.prior_scale_tril[0].T,
                          atol=1e-6)


def test_standard_prior_is_unchanged_by_the_new_api():
    vae = tiny_vae()
    assert "prior_mean" not in vae.state_dict()
    z, y = vae.sample_latent(3, labels=[0, 1, 2], generator=gen(1))
    assert torch.equal(z, torch.randn(3, 4, generator=gen(1)))
    assert torch.equal(vae.sample(3, labels=[0, 1, 2], generator=gen(1)), vae.decode(z, y))


def test_aggregate_prior_errors_are_clear():
    with pytest.raises(ValueError, match="prior='gmm' is not allowed; allowed: \\('standard', 'aggregate'\\)"):
        VAEConfig(prior="gmm")
    unfitted = tiny_vae(prior="aggregate")
    with pytest.raises(RuntimeError, match="never fitted; call vae.fit_prior"):
        unfitted.sample(2, labels=[0, 1])
    with pytest.raises(RuntimeError, match="needs a model built with prior='aggregate'"):
        tiny_vae().fit_prior(torch.rand(6, 1, 28, 28), [0, 1, 2] * 2)
    with pytest.raises(ValueError, match="class 2 has 1"):
        unfitted.fit_prior(torch.rand(5, 1, 28, 28), [0, 1, 0, 1, 2])
    with pytest.raises(ValueError, match="labels are required"):
        unfitted.fit_prior(torch.rand(5, 1, 28, 28))
    with pytest.raises(ValueError, match="channels=1"):
        unfitted.fit_prior(torch.rand(6, 3, 28, 28), [0, 1, 2] * 2)


def test_a_failed_prior_fit_leaves_the_previous_prior_intact():
    vae = tiny_vae(prior="aggregate").eval()
    vae.fit_prior(torch.rand(9, 1, 28, 28), [0, 1, 2] * 3)
    before = {k: v.clone() for k, v in vae.state_dict().items() if k.startswith("prior_")}
    x = torch.rand(9, 1, 28, 28)
    x[2] = float("nan")  # class 2's encodings become NaN, after classes 0 and 1 fitted fine
    with pytest.raises(ValueError, match="class 2 is not positive definite"):
        vae.fit_prior(x, [0, 1, 2] * 3)
    assert all(torch.equal(v, vae.state_dict()[k]) for k, v in before.items())


def test_eval_blocks_hold_cudnn_to_deterministic_algorithms_on_cuda(monkeypatch):
    """Seeded sampling on a GPU is only reproducible with deterministic cuDNN algorithms (seen on an
    H100: 2-4 distinct outputs in 6 seeded calls without): eval blocks pin them, then restore."""
    from genaug.generative.models import common

    cudnn = torch.backends.cudnn
    monkeypatch.setattr(cudnn, "deterministic", False)
    monkeypatch.setattr(cudnn, "benchmark", True)
    net = torch.nn.Linear(2, 2)
    with common.training_mode(net, False):  # a CPU module: flags untouched
        assert (cudnn.deterministic, cudnn.benchmark) == (False, True)
    monkeypatch.setattr(common, "on_cuda", lambda module: True)
    with pytest.raises(RuntimeError, match="boom"), common.training_mode(net, False):
        assert (cudnn.deterministic, cudnn.benchmark) == (True, False) and not net.training
        raise RuntimeError("boom")
    assert (cudnn.deterministic, cudnn.benchmark) == (False, True) and net.training  # restored after an error
    with common.training_mode(net, True):  # training blocks keep the user's flags
        assert (cudnn.deterministic, cudnn.benchmark) == (False, True)


def test_overlapping_eval_blocks_in_two_threads_restore_the_users_cudnn_flags(monkeypatch):
    """Flags are process-wide: with a save/restore per block, thread B would save A's pinned flags and
    put them back after A restored the user's, leaving cuDNN pinned for good."""
    import threading

    from genaug.generative.models import common

    cudnn = torch.backends.cudnn
    monkeypatch.setattr(cudnn, "deterministic", False)
    monkeypatch.setattr(cudnn, "benchmark", True)
    monkeypatch.setattr(common, "on_cuda", lambda module: True)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def thread_a():
        with common.training_mode(torch.nn.Linear(2, 2), False):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def thread_b():
        a_in.wait(5)
        with common.training_mode(torch.nn.Linear(2, 2), False):
            b_in.set()
            a_out.wait(5)
            seen.append((cudnn.deterministic, cudnn.benchmark))  # A has left: still pinned for B

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [(True, False)]
    assert (cudnn.deterministic, cudnn.benchmark) == (False, True)
