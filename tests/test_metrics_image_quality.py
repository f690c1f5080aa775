"""PSNR / SSIM equal scikit-image's on fixed images; reconstructions of the shipped VAE; errors."""

import math

import numpy as np
import pytest
import torch

from genaug.metrics import psnr, reconstruction_quality, ssim

import skimage.metrics as skm  # the dev extra installs scikit-image


def _pair(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(shape, generator=g, dtype=torch.float64)
    smooth = torch.nn.functional.avg_pool2d(ref, 3, 1, 1)           # structure, so SSIM is not trivial
    test = (smooth + 0.08 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return ref, test


def _skimage(ref, test, data_range):
    out_p, out_s = [], []
    for r, t in zip(ref, test):
        r, t = r.permute(1, 2, 0).numpy(), t.permute(1, 2, 0).numpy()
        out_p.append(skm.peak_signal_noise_ratio(r, t, data_range=data_range))
        out_s.append(skm.structural_similarity(r, t, data_range=data_range, gaussian_weights=True, sigma=1.5,
                                               use_sample_covariance=False, channel_axis=2))
    return np.array(out_p), np.array(out_s)


@pytest.mark.parametrize("shape", [(4, 1, 28, 28), (3, 3, 32, 40)])
def test_float_images_match_scikit_image(shape):
    ref, test = _pair(shape)
    p, s = _skimage(ref, test, 1.0)
    np.testing.assert_allclose(psnr(ref, test, reduction="none").numpy(), p, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ssim(ref, test, reduction="none").numpy(), s, rtol=0, atol=1e-10)
    assert psnr(ref, test) == pytest.approx(p.mean(), abs=1e-6)
    assert ssim(ref, test) == pytest.approx(s.mean(), abs=1e-10)


def test_uint8_images_match_scikit_image_with_range_255():
    ref, test = _pair((3, 1, 28, 28), seed=1)
    ref8, test8 = (ref * 255).round().to(torch.uint8), (test * 255).round().to(torch.uint8)
    p, s = _skimage(ref8, test8, 255)
    np.testing.assert_allclose(psnr(ref8, test8, reduction="none").numpy(), p, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ssim(ref8, test8, reduction="none").numpy(), s, rtol=0, atol=1e-9)
    # uint8 and the same images as float in [0, 1] give the same numbers
    assert psnr(ref8, test8.float() / 255) == pytest.approx(psnr(ref8, test8), abs=1e-6)


def test_high_psnr_keeps_float64_precision():
    """~72 dB: a float32 decibel constant (torchmetrics' PSNR) would be 3e-6 dB off scikit-image."""
    ref = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    test = ref.clone()
    test[:, :, :4, :4] += 0.5 / 255
    p, _ = _skimage(ref, test, 1.0)
    assert p.min() > 70
    np.testing.assert_allclose(psnr(ref, test, reduction="none").numpy(), p, rtol=0, atol=1e-9)


def test_identical_images():
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert math.isinf(psnr(x, x)) and ssim(x, x) == pytest.approx(1.0)


def test_vae_reconstructions():
    import genaug
    from genaug.data import load_builtin

    test = load_builtin("mnist5k", "test")
    idx = torch.arange(0, 1000, 50)
    res = reconstruction_quality(genaug.load_model("mnist-cvae"), (test.images[idx], test.labels[idx]))
    assert 15 < res["psnr"] < 30 and 0.7 < res["ssim"] < 1
    assert res["psnr_per_image"].shape == (20,) and torch.equal(res["labels"], test.labels[idx])
    with pytest.raises(ValueError, match=r"data has no labels but the model is conditional"):
        reconstruction_quality(genaug.load_model("mnist-cvae"), test.images[:2])
    with pytest.raises(TypeError, match=r"has no reconstruct"):
        reconstruction_quality(genaug.load_model("mnist-cgan"), (test.images[:2], test.labels[:2]))


def test_errors():
    a = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match=r"reference images are 1x28x28 but test images are 3x28x28"):
        psnr(a, torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"reference has 2 images but test has 3"):
        ssim(a, torch.rand(3, 1, 28, 28))
    with pytest.raises(ValueError, match=r"images are 8x8 but SSIM's Gaussian window \(sigma=1.5\) is 11x11"):
        ssim(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"reduction='sum' is not allowed; allowed: 'mean', 'none'"):
        psnr(a, a, reduction="sum")
    with pytest.raises(ValueError, match=r"test: float images must be in \[0, 1\]"):
        psnr(a, a * 2)
