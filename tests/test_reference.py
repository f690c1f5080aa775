"""Reference checks against torchvision.transforms.v2.functional with fixed parameters."""

import pytest
import torch
import torchvision.transforms.v2.functional as TF

import genaug as ga

BILINEAR = TF.InterpolationMode.BILINEAR


def assert_close_inside(ours, image, reference):
    """Compare with ``reference(image)`` wherever torchvision's sample lies fully inside the source.

    At the boundary with the fill, genaug weighs the fill by the footprint of the (scaled) output
    pixel, where torchvision uses plain zero padding; with unit scale both are the same.
    """
    inside = reference(torch.ones_like(image)) == 1
    inside = -torch.nn.functional.max_pool2d(-inside.double(), 3, stride=1, padding=1) == 1  # one pixel in
    assert inside.float().mean() > 0.3
    torch.testing.assert_close(ours[inside], reference(image)[inside], atol=1e-9, rtol=0)


def fixed(transform, image, **overrides):
    """Run ``transform`` with sampled params whose entries are overwritten by ``overrides``."""
    _, params = transform(image, return_params=True)
    params.update({k: torch.as_tensor(v, dtype=torch.float64).expand_as(params[k]).clone() for k, v in overrides.items()})
    return transform(image, params=params)


@pytest.mark.parametrize("angle", [-90.0, -33.0, 12.5, 45.0, 180.0])
def test_rotation_matches_torchvision_rotate(photo, angle):
    ours = ga.RandomRotation(degrees=(angle, angle))(photo)
    ref = TF.rotate(photo, angle, interpolation=BILINEAR)
    torch.testing.assert_close(ours, ref, atol=1e-9, rtol=0)


@pytest.mark.parametrize(
    "angle,translate,scale,shear",
    [(20.0, (3.0, -2.0), 1.3, (10.0, 5.0)), (-45.0, (0.0, 4.0), 0.7, (0.0, -12.0)), (0.0, (-5.0, 1.0), 1.0, (25.0, 0.0))],
)
def test_affine_matches_torchvision_with_counter_clockwise_angles(photo, angle, translate, scale, shear):
    aff = ga.RandomAffine(degrees=(angle, angle), translate=(0.2, 0.2), scale=(scale, scale), shear=45, antialias=False)
    ours = fixed(aff, photo, translate=[translate], shear=[shear])
    # torchvision's affine turns clockwise: genaug's angle and shear are its negatives.
    tv_args = dict(angle=-angle, translate=list(translate), scale=scale, shear=[-shear[0], -shear[1]], interpolation=BILINEAR)
    assert_close_inside(ours, photo, lambda x: TF.affine(x, **tv_args))


def test_affine_rotation_equals_random_rotation(photo):
    torch.testing.assert_close(ga.RandomAffine(degrees=(27, 27))(photo), ga.RandomRotation(degrees=(27, 27))(photo))


def test_flips_match_torchvision(photo):
    assert torch.equal(ga.RandomHorizontalFlip(p=1.0)(photo), TF.horizontal_flip(photo))
    assert torch.equal(ga.RandomVerticalFlip(p=1.0)(photo), TF.vertical_flip(photo))


def test_resized_crop_matches_torchvision_inside_the_crop(photo):
    rrc = ga.RandomResizedCrop(size=(50, 60), antialias=False)
    out = fixed(rrc, photo, box=[[8.0, 4.0, 27.0, 21.0]])
    ref = TF.resized_crop(photo, top=4, left=8, height=21, width=27, size=[50, 60], antialias=False)
    # Interior pixels agree exactly. On the outermost 2 pixels the fused warp reads the real
    # neighbours outside the crop where torchvision clamps at the crop's edge.
    torch.testing.assert_close(out[..., 2:-2, 2:-2], ref[..., 2:-2, 2:-2], atol=1e-9, rtol=0)


def test_crops_and_resize_match_torchvision(photo):
    assert torch.allclose(ga.CenterCrop((20, 31))(photo), TF.center_crop(photo, [20, 31]), atol=1e-12)
    # larger than the image, every odd/even margin: torchvision pads (crop - size) // 2 on the left/top
    small = photo[..., :17, :23]
    for crop in ([20, 26], [21, 30], [18, 24], [19, 25], [17, 23], [23, 27]):
        assert torch.equal(ga.CenterCrop(crop)(small), TF.center_crop(small, crop)), crop
    one = torch.ones(1, 1, 1, 1)
    assert ga.CenterCrop((1, 4))(one).flatten().tolist() == TF.center_crop(one, [1, 4]).flatten().tolist()
    crop = ga.RandomCrop((16, 16))
    out = fixed(crop, photo, box=[[5.0, 9.0, 16.0, 16.0]])
    assert torch.allclose(out, TF.crop(photo, top=9, left=5, height=16, width=16), atol=1e-12)
    up = ga.Resize((66, 80))(photo)  # upscaling: no antialiasing on either side
    torch.testing.assert_close(up, TF.resize(photo, [66, 80], antialias=False), atol=1e-9, rtol=0)
    assert ga.Resize(20)(photo).shape[-2:] == TF.resize(photo, 20).shape[-2:]


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.7])
@pytest.mark.parametrize("name", ["brightness", "contrast", "saturation"])
def test_color_factors_match_torchvision(photo, name, factor):
    ours = ga.ColorJitter(**{name: (factor, factor)})(photo)
    ref = getattr(TF, f"adjust_{name}")(photo, factor)
    torch.testing.assert_close(ours, ref, atol=1e-9, rtol=0)


def test_color_on_uint8_is_within_one_level_of_torchvision(photo):
    img = (photo * 255).round().to(torch.uint8)
    for name in ("brightness", "contrast", "saturation"):
        ours = ga.ColorJitter(**{name: (1.4, 1.4)})(img)
        ref = getattr(TF, f"adjust_{name}")(img, 1.4)
        # torchvision truncates to uint8, genaug rounds: at most one level apart.
        assert (ours.int() - ref.int()).abs().max() <= 1


@pytest.mark.parametrize("hue", [-0.4, -0.1, 0.05, 0.3])
def test_exact_hsv_hue_matches_torchvision(photo, hue):
    ours = ga.ColorJitter(hue=(hue, hue), hue_mode="hsv")(photo)
    torch.testing.assert_close(ours, TF.adjust_hue(photo, hue), atol=1e-5, rtol=0)


def test_fused_yiq_hue_keeps_luma_and_approximates_hsv(photo):
    ours = ga.ColorJitter(hue=(0.05, 0.05))(photo)
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=photo.dtype).view(1, 3, 1, 1)
    unclipped = (ours > 0) & (ours < 1)
    keep = unclipped.all(dim=1, keepdim=True)
    assert torch.allclose(((ours - photo) * luma).sum(1, keepdim=True)[keep], torch.zeros(1, dtype=photo.dtype), atol=1e-3)
    assert (ours - TF.adjust_hue(photo, 0.05)).abs().mean() < 0.05
    assert (ours - TF.adjust_hue(photo, -0.05)).abs().mean() > (ours - TF.adjust_hue(photo, 0.05)).abs().mean()


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
def test_gaussian_blur_matches_torchvision(photo, sigma):
    ours = ga.RandomGaussianBlur(kernel_size=(5, 7), sigma=(sigma, sigma))(photo)
    ref = TF.gaussian_blur(photo, kernel_size=[7, 5], sigma=[sigma, sigma])
    torch.testing.assert_close(ours, ref, atol=1e-9, rtol=0)


@pytest.mark.parametrize("kernel_size", [(5, 7), (1, 3), (9, 1)])
def test_blur_implementations_agree_per_sample(kernel_size):
    """The CPU shifted-taps blur equals the grouped-convolution one used on accelerators."""
    from genaug.transforms.photometric import _blur_grouped_conv, get_gaussian_kernel1d, gaussian_blur

    x = torch.rand(4, 3, 11, 13, dtype=torch.float64)
    sigma = torch.tensor([[0.3, 2.0], [1.0, 1.0], [2.5, 0.5], [0.8, 1.7]], dtype=torch.float64)
    ky, kx = get_gaussian_kernel1d(kernel_size[0], sigma[:, 0:1]), get_gaussian_kernel1d(kernel_size[1], sigma[:, 1:2])
    torch.testing.assert_close(gaussian_blur(x, kernel_size, sigma), _blur_grouped_conv(x, ky, kx), atol=1e-12, rtol=0)
    # and each sample is blurred with its own sigma: equal to blurring it alone
    torch.testing.assert_close(gaussian_blur(x, kernel_size, sigma)[2:3], gaussian_blur(x[2:3], kernel_size, sigma[2:3]))


def test_normalize_matches_torchvision(photo):
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    torch.testing.assert_close(ga.Normalize(mean, std)(photo), TF.normalize(photo, mean, std))


def test_fused_rotate_scale_is_one_warp_equal_to_the_product_affine(photo, monkeypatch):
    calls = []
    original = torch.nn.functional.grid_sample
    monkeypatch.setattr(torch.nn.functional, "grid_sample", lambda *a, **k: calls.append(1) or original(*a, **k))
    fused = ga.Compose([ga.RandomRotation(degrees=(30, 30)), ga.RandomScale(scale=(1.25, 1.25))])(photo)
    assert len(calls) == 1
    single = ga.RandomAffine(degrees=(30, 30), scale=(1.25, 1.25))(photo)
    torch.testing.assert_close(fused, single, atol=1e-9, rtol=0)
    tv_args = dict(angle=-30.0, translate=[0, 0], scale=1.25, shear=[0.0, 0.0], interpolation=BILINEAR)
    assert_close_inside(fused, photo, lambda x: TF.affine(x, **tv_args))


def test_fusion_is_sharper_than_resampling_twice(photo):
    ops = [ga.RandomRotation(degrees=(17, 17)), ga.RandomRotation(degrees=(-17, -17))]
    fused = ga.Compose(ops)(photo)
    twice = ops[1](ops[0](photo))
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    # Rotating by +17 then -17 is the identity: one warp reproduces the image, two blur it.
    assert (fused - photo)[inner].abs().max() < 1e-9
    assert (twice - photo)[inner].abs().mean() > 0.01
