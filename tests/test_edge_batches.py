"""Every op and target on empty batches, and no op ever writes into the caller's tensors."""

import pytest
import torch

import genaug as ga
from tests.test_no_host_sync import OPS


def _targets(b, size=32):
    g = torch.Generator().manual_seed(0)
    return dict(
        masks=torch.randint(0, 7, (b, 2, size, size), generator=g),
        boxes=torch.tensor([[2.0, 3.0, 20.0, 25.0]]).repeat(b, 1, 1),
        keypoints=torch.rand(b, 3, 2, generator=g) * size,
        labels=torch.arange(b),
    )


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(OPS))
def test_an_empty_batch_gives_what_a_full_one_gives_minus_the_samples(name, dtype):
    aug = OPS[name]()
    full = aug((torch.rand(2, 3, 32, 32) * 255).to(dtype) if dtype == torch.uint8 else torch.rand(2, 3, 32, 32, dtype=dtype),
               **_targets(2))
    empty = aug(torch.zeros(0, 3, 32, 32, dtype=dtype), **_targets(0))
    assert set(empty) == set(full)
    for key in full:
        assert empty[key].dtype == full[key].dtype, key
        assert empty[key].shape == (0, *full[key].shape[1:]), key
    assert aug(torch.zeros(0, 3, 32, 32, dtype=dtype)).dtype == full["image"].dtype


@pytest.mark.parametrize("mask_shape", [(0, 32, 32), (0, 4, 32, 32)])
def test_empty_masks_of_every_layout(mask_shape):
    out = ga.Compose([ga.RandomResizedCrop(16), ga.RandomRotation(10)])(torch.zeros(0, 3, 32, 32),
                                                                        masks=torch.zeros(mask_shape, dtype=torch.long))
    assert out["masks"].shape == (*mask_shape[:-2], 16, 16)


class InPlaceHalving(torch.nn.Module):
    def forward(self, x):
        return x.mul_(0.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("name", sorted(OPS) + ["inplace-module", "relu-inplace"])
def test_the_callers_tensors_are_never_modified(name, dtype):
    if name == "inplace-module":
        aug = ga.Compose([InPlaceHalving(), ga.RandomHorizontalFlip()])
    elif name == "relu-inplace":
        aug = ga.Compose([torch.nn.ReLU(inplace=True)])
    else:
        aug = OPS[name]()
    image = torch.rand(3, 3, 32, 32)
    image = (image * 255).to(dtype) if dtype == torch.uint8 else image - 0.5 * (name == "relu-inplace")
    if name == "relu-inplace":
        image = image.clamp(0, 1) if dtype == torch.uint8 else image
    inputs = dict(image=image, **_targets(3))
    copies = {k: v.clone() for k, v in inputs.items()}
    aug(inputs.pop("image"), **inputs)
    aug(copies["image"].clone())
    for key, value in {**inputs, "image": image}.items():
        assert torch.equal(value, copies[key]), key
