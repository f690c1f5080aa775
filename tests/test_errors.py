"""Bad arguments fail at construction; bad inputs fail at the call; each message names the culprit."""

import pytest
import torch

import genaug as ga

BAD_ARGUMENTS = [
    (lambda: ga.RandomRotation(degrees=-5), ValueError, "degrees given as a single number must be >= 0"),
    (lambda: ga.RandomRotation(degrees=(10, 5)), ValueError, "min <= max"),
    (lambda: ga.RandomRotation(degrees="30"), TypeError, "degrees must be a number"),
    (lambda: ga.RandomRotation(30, p=1.5), ValueError, r"p must be in \[0, 1\]"),
    (lambda: ga.RandomRotation(30, p="a"), TypeError, "p must be a number"),
    (lambda: ga.RandomRotation(30, interpolation="cubic"), ValueError, "interpolation must be one of"),
    (lambda: ga.RandomRotation(30, padding_mode="wrap"), ValueError, "padding_mode must be one of"),
    (lambda: ga.RandomRotation(30, fill="black"), TypeError, "fill must be a number"),
    (lambda: ga.RandomRotation(30, seed=1.5), TypeError, "seed must be an int"),
    (lambda: ga.RandomRotation(30, same_on_batch=1), TypeError, "same_on_batch must be a bool"),
    (lambda: ga.RandomRotation(30, angle=3), TypeError, "unexpected keyword argument 'angle'"),
    (lambda: ga.RandomResizedCrop(0), ValueError, "size must be positive"),
    (lambda: ga.RandomResizedCrop((3, 4, 5)), TypeError, r"size must be an int or a \(height, width\)"),
    (lambda: ga.RandomResizedCrop(8, scale=(0.9, 0.1)), ValueError, "min <= max"),
    (lambda: ga.RandomResizedCrop(8, ratio=(-1, 2)), ValueError, "ratio must lie within"),
    (lambda: ga.RandomCrop(8, padding=-1), ValueError, "padding must be a non-negative"),
    (lambda: ga.RandomScale(scale=(0, 1)), ValueError, "scale must lie within"),
    (lambda: ga.RandomAffine(0, translate=(0.1, 2.0)), ValueError, r"translate values must be in \[0, 1\]"),
    (lambda: ga.RandomAffine(0, shear=(-95, 0)), ValueError, r"shear angles must lie strictly within \(-90, 90\)"),
    (lambda: ga.ColorJitter(hue=0.7), ValueError, r"hue must lie within \[-0.5, 0.5\]"),
    (lambda: ga.ColorJitter(brightness=-0.1), ValueError, "brightness given as a single number must be >= 0"),
    (lambda: ga.ColorJitter(hue=0.1, hue_mode="hsl"), ValueError, "hue_mode must be 'yiq'"),
    (lambda: ga.RandomGaussianBlur(4), ValueError, "kernel_size must be a positive odd int"),
    (lambda: ga.RandomGaussianBlur(3, sigma=0), ValueError, "sigma must lie within"),
    (lambda: ga.RandomGaussianNoise(std=(-1, 1)), ValueError, "std must lie within"),
    (lambda: ga.Normalize([0.5, 0.5], [0.5]), ValueError, "equal length"),
    (lambda: ga.Normalize([0.5], [0.0]), ValueError, "std values must be positive"),
    (lambda: ga.Compose(ga.RandomRotation(3)), TypeError, "transforms must be a list"),
    (lambda: ga.Compose([3]), TypeError, r"transforms\[0\] must be a genaug Transform"),
    (lambda: ga.Compose([], padding_mode="zeros"), ValueError, "padding_mode must be one of"),
    (lambda: ga.OneOf([ga.RandomRotation(3)], weights=[1, 2]), ValueError, "weights must be 1 finite non-negative"),
    (lambda: ga.OneOf([]), ValueError, "OneOf needs at least one transform"),
    (lambda: ga.SomeOf([ga.RandomRotation(3)], n=2), ValueError, r"n must be an int or \(min, max\)"),
]


@pytest.mark.parametrize("build,error,message", BAD_ARGUMENTS)
def test_bad_arguments_fail_at_construction(build, error, message):
    with pytest.raises(error, match=message):
        build()


BAD_INPUTS = [
    (ga.RandomRotation(3), [[0.0]], {}, TypeError, "image must be a torch.Tensor"),
    (ga.RandomRotation(3), torch.rand(2, 2), {}, ValueError, r"image must have shape \(B, C, H, W\) or \(C, H, W\)"),
    (ga.RandomRotation(3), torch.zeros(1, 3, 4, 4, dtype=torch.int32), {}, TypeError, "image dtype must be torch.uint8"),
    (ga.RandomRotation(3), torch.full((1, 3, 4, 4), float("nan")), {}, ValueError, "NaN or infinite"),
    (ga.ColorJitter(0.2), torch.rand(1, 4, 8, 8), {}, ValueError, "needs 1- or 3-channel images, got 4"),
    (ga.RandomRotation(3), torch.rand(2, 3, 8, 8), {"masks": torch.zeros(2, 8, 9)}, ValueError, "masks spatial size"),
    (ga.RandomRotation(3), torch.rand(2, 3, 8, 8), {"masks": torch.zeros(3, 8, 8)}, ValueError, "masks has batch size 3"),
    (ga.RandomRotation(3), torch.rand(2, 3, 8, 8), {"boxes": torch.zeros(2, 3)}, ValueError, r"boxes must have shape \(B, N, 4\)"),
    (ga.RandomRotation(3), torch.rand(2, 3, 8, 8), {"keypoints": torch.zeros(1, 3, 2)}, ValueError, "keypoints has batch size 1"),
    (ga.RandomRotation(3), torch.rand(2, 3, 8, 8), {"labels": torch.zeros(3)}, ValueError, "labels must have 2 entries"),
    (ga.RandomCrop(16), torch.rand(1, 3, 8, 8), {}, ValueError, "pad_if_needed=True"),
    (ga.RandomGaussianBlur(9), torch.rand(1, 3, 4, 4), {}, ValueError, "too large for a 4x4 image"),
    (ga.Normalize([0.5, 0.5], [0.5, 0.5]), torch.rand(1, 3, 4, 4), {}, ValueError, "2 mean/std values but the image has 3"),
    (ga.RandomRotation(3), torch.rand(2, 3, 8, 8), {"params": {"angle": torch.zeros(2)}}, TypeError, "params must be the dict"),
    (ga.RandomRotation(3), torch.rand(2, 3, 8, 8), {"params": {"apply": torch.ones(3, dtype=torch.bool)}}, ValueError,
     "sampled for a batch of 3 images"),
    (ga.OneOf([ga.CenterCrop(4), ga.CenterCrop(5)]), torch.rand(1, 3, 8, 8), {}, ValueError, "same output size"),
    # ops on 0..1 images after Normalize would clamp the normalized values: refused
    *[(ga.Compose([ga.Normalize([0.5] * 3, [0.25] * 3), op]), torch.rand(2, 3, 8, 8), {}, ValueError,
       f"{type(op).__name__} must come before Normalize")
      for op in (ga.RandomBrightness((1.0, 1.0)), ga.ColorJitter(0.2, hue=0.1, hue_mode="hsv"),
                 ga.RandomGaussianBlur(3), ga.RandomGaussianNoise(std=(0.01, 0.02)), ga.RandomBilateralBlur(3),
                 ga.Corruption("contrast", severity=1))],
    (ga.Compose([ga.Normalize([0.5] * 3, [0.25] * 3), ga.OneOf([ga.RandomGaussianBlur(3), ga.RandomHue(0.1)])]),
     torch.rand(2, 3, 8, 8), {}, ValueError, "must come before Normalize"),
    (ga.GeometricTransform(), torch.rand(1, 3, 8, 8), {}, NotImplementedError, "GeometricTransform does not implement matrix"),
]


def test_geometric_ops_and_third_party_stages_may_follow_normalize():
    x = torch.rand(2, 3, 8, 8)
    norm = ga.Normalize([0.5] * 3, [0.25] * 3)
    out = ga.Compose([norm, ga.RandomHorizontalFlip(p=1.0), ga.ModuleStage(lambda t: t * 2)])(x)
    assert torch.allclose(out, norm(x).flip(-1) * 2) and out.min() < 0  # not clamped


@pytest.mark.parametrize("transform,image,kwargs,error,message", BAD_INPUTS)
def test_bad_inputs_fail_with_actionable_messages(transform, image, kwargs, error, message):
    with pytest.raises(error, match=message):
        transform(image, **kwargs)


def test_pad_if_needed_pads_instead_of_failing():
    out = ga.RandomCrop(16, pad_if_needed=True, seed=0)(torch.ones(1, 3, 8, 8))
    assert out.shape == (1, 3, 16, 16) and out.sum() == 3 * 64  # the image is inside, the rest is fill
