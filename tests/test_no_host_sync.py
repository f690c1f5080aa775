"""No host synchronisation on the image's device (DESIGN: no ``.item()``/``.tolist()`` on the hot path).

This machine has no GPU, so the check runs on PyTorch's ``meta`` device: meta tensors have shapes
and dtypes but no values, so any code that reads a value of the image, of a target or of
anything computed from them (``bool(t)``, ``.item()``, ``.tolist()``, ``.cpu()``) raises. On CUDA
each of those would be a host sync that stalls the pipeline. Parameters are sampled on the CPU,
so decisions taken from them (which samples a blur touches, whether a warp shrinks) are free.
"""

import pytest
import torch

import genaug as ga

OPS = {
    "RandomCrop": lambda: ga.RandomCrop(24, padding=4, fill=0.5),
    "RandomResizedCrop": lambda: ga.RandomResizedCrop(24, scale=(0.2, 1.0)),
    "CenterCrop": lambda: ga.CenterCrop(20),
    "Resize": lambda: ga.Resize(20),
    "RandomRotation": lambda: ga.RandomRotation(30, p=0.5),
    "RandomScale": lambda: ga.RandomScale((0.3, 1.5)),  # antialias on the shrunk samples
    "RandomAffine": lambda: ga.RandomAffine(20, (0.1, 0.1), (0.5, 1.5), 10, padding_mode="reflect"),
    "RandomHorizontalFlip": lambda: ga.RandomHorizontalFlip(),
    "RandomVerticalFlip": lambda: ga.RandomVerticalFlip(),
    "ColorJitter": lambda: ga.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.5),
    "ColorJitter-hsv": lambda: ga.ColorJitter(0.4, 0.4, 0.4, 0.1, hue_mode="hsv"),
    "RandomGaussianBlur": lambda: ga.RandomGaussianBlur(5, p=0.5),
    "RandomGaussianNoise": lambda: ga.RandomGaussianNoise(std=(0.01, 0.1), p=0.5),  # counter-based: tensor ops only
    "Normalize": lambda: ga.Normalize((0.5, 0.4, 0.3), (0.2, 0.2, 0.2)),
    "Compose": lambda: ga.Compose([ga.RandomResizedCrop(24), ga.RandomRotation(30), ga.ColorJitter(0.3, 0.3, 0.3, 0.05),
                                   ga.RandomGaussianBlur(3, p=0.5)]),
    "OneOf": lambda: ga.OneOf([ga.RandomRotation(30), ga.RandomHorizontalFlip()]),
    "SomeOf": lambda: ga.SomeOf([ga.RandomRotation(30), ga.RandomBrightness(0.3), ga.RandomScale()], n=(1, 2)),
}
# Not listed: RandomBilateralBlur (Kornia's bilateral_blur itself checks `bool((sigma_color > 0).all())`
# on the device: one sync per call, inside Kornia).


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("name", sorted(OPS))
def test_runs_without_reading_device_values(name, dtype):
    aug = OPS[name]()
    meta = dict(device="meta")
    image = torch.empty(4, 3, 32, 32, dtype=dtype, **meta)
    out = aug(image)
    assert out.device.type == "meta" and out.shape[0] == 4
    res = aug(image, masks=torch.empty(4, 32, 32, dtype=torch.int64, **meta), boxes=torch.empty(4, 2, 4, **meta),
              keypoints=torch.empty(4, 3, 2, **meta), labels=torch.empty(4, dtype=torch.int64, **meta))
    assert all(v.device.type == "meta" for v in res.values())


def test_the_meta_device_does_catch_a_host_sync():
    """The check above can fail: reading a device value on meta raises."""
    with pytest.raises(RuntimeError):
        bool(torch.empty(2, device="meta").sum() > 0)


@pytest.mark.parametrize("name", ["mnist-cgan", "mnist-cvae"])
@pytest.mark.parametrize("labels", [None, 3, [0, 1, 2, 3]])
def test_sampling_a_model_on_the_device_reads_no_device_value(name, labels):
    # Labels given as ints are checked on the CPU before they move; the VAE knows on the host
    # whether its aggregate prior is fitted. (Label *tensors* already on the device are checked
    # there, which does read them.)
    model = ga.load_model(name).to("meta")
    out = model.sample(4, labels=labels, generator=torch.Generator().manual_seed(0), truncation=1.5)
    assert out.device.type == "meta" and tuple(out.shape) == (4, 1, 28, 28)


def test_an_unfitted_aggregate_prior_is_still_refused_and_a_loaded_one_is_known_fitted(tmp_path):
    from genaug.generative import VAEConfig, save_checkpoint
    from genaug.generative.models.vae import ConditionalVAE

    vae = ConditionalVAE(VAEConfig(image_size=28, channels=1, num_classes=2, latent_dim=4, enc_width=8, dec_width=8,
                                   prior="aggregate"))
    with pytest.raises(RuntimeError, match="never fitted"):
        vae.sample(2, labels=0)
    x, y = torch.rand(8, 1, 28, 28), torch.tensor([0, 1] * 4)
    vae.fit_prior(x, y)
    assert vae.sample(2, labels=1).shape == (2, 1, 28, 28)
    path = tmp_path / "vae.safetensors"
    save_checkpoint(vae, path)
    loaded = ga.load_model(path)
    assert loaded._prior_fitted and torch.equal(loaded.prior_count, vae.prior_count)
    fresh = ConditionalVAE(vae.config)
    fresh.load_state_dict(ConditionalVAE(vae.config).state_dict())  # counts all zero
    with pytest.raises(RuntimeError, match="never fitted"):
        fresh.sample(2, labels=0)


def test_vae_encode_decode_and_interpolation_read_no_device_value():
    from genaug.generative import interpolate

    vae, gan = ga.load_model("mnist-cvae").to("meta"), ga.load_model("mnist-cgan").to("meta")
    x = torch.empty(4, 1, 28, 28, device="meta")
    assert vae.encode(x, labels=[1, 2, 3, 4])[0].shape == (4, 16)
    assert vae.reconstruct(x, labels=3).device.type == "meta"
    assert vae.decode(torch.randn(3, 16), labels=[1, 2, 3]).shape == (3, 1, 28, 28)
    assert interpolate(gan, torch.randn(64), torch.randn(64), steps=5, labels=2).shape == (5, 1, 28, 28)
    assert interpolate(vae, torch.randn(16), torch.randn(16), steps=5, labels=2).device.type == "meta"


GENERATIVE = {  # 3x32x32 inputs: adapt=True resizes and converts them for the 1x28x28 models
    "GenerativeSample-gan": lambda g, v: ga.GenerativeSample(g, p=0.5, adapt=True),
    "GenerativeSample-vae": lambda g, v: ga.GenerativeSample(v, p=1.0, truncation=1.5, adapt=True),
    "LatentNoise": lambda g, v: ga.LatentNoise(v, sigma=(0.1, 0.5), p=0.5, adapt=True),
    "LatentInterpolate": lambda g, v: ga.LatentInterpolate(v, p=0.5, adapt=True),
    "LatentInterpolate-same-class": lambda g, v: ga.LatentInterpolate(v, mode="lerp", partners="same_class", adapt=True),
    "Compose": lambda g, v: ga.Compose([ga.RandomResizedCrop(28), ga.RandomRotation(10),
                                        ga.LatentInterpolate(v, adapt=True), ga.GenerativeSample(g, adapt=True),
                                        ga.LatentNoise(v, p=0.5, adapt=True), ga.ColorJitter(0.3, 0.3)]),
}


@pytest.fixture(scope="module")
def shipped():
    return ga.load_model("mnist-cgan"), ga.load_model("mnist-cvae")


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("name", sorted(GENERATIVE))
def test_generative_augmenters_read_no_device_value(name, dtype, soft, shipped):
    # The models stay on the CPU: each augmenter copies its model to the images' device (meta) once.
    # Labels on the device are not range-checked there (that check would read them); CPU labels are.
    aug = GENERATIVE[name](*shipped)
    meta = dict(device="meta")
    labels = torch.empty(4, 10, **meta) if soft else torch.empty(4, dtype=torch.int64, **meta)
    image = torch.empty(4, 3, 32, 32, dtype=dtype, **meta)
    out, params = aug(image, masks=torch.empty(4, 32, 32, dtype=torch.int64, **meta), boxes=torch.empty(4, 2, 4, **meta),
                      keypoints=torch.empty(4, 3, 2, **meta), labels=labels, return_params=True)
    assert all(v.device.type == "meta" for v in out.values())
    assert out["image"].shape[0] == 4 and out["labels"].shape[0] == 4
    assert aug(image, labels=labels, params=params)["image"].device.type == "meta"  # replay (recorded partners)
