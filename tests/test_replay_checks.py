"""Params say what they were drawn for; replaying them on anything else is a clear error."""

import pytest
import torch

import genaug as ga
from genaug.transforms.base import take_rows


def _params(aug, shape=(4, 3, 64, 64)):
    return aug(torch.rand(shape), return_params=True)[1]


@pytest.mark.parametrize("aug", [
    ga.RandomRotation(30, seed=0),
    ga.RandomCrop(16, seed=0),
    ga.Compose([ga.RandomResizedCrop(32), ga.ColorJitter(0.3)], seed=0),
    ga.OneOf([ga.CenterCrop(16), ga.RandomCrop(16)], seed=0),
])
def test_replay_on_another_image_size_is_refused(aug):
    params = _params(aug)
    with pytest.raises(ValueError, match=r"64x64.*20x20"):
        aug(torch.rand(4, 3, 20, 20), params=params)
    assert aug(torch.rand(4, 3, 64, 64), params=params).shape[0] == 4  # the right size replays


def test_replay_on_another_batch_size_is_refused():
    aug = ga.Compose([ga.RandomRotation(30), ga.ColorJitter(0.3)], seed=0)
    with pytest.raises(ValueError, match="batch of 4 images, but this batch has 3"):
        aug(torch.rand(3, 3, 64, 64), params=_params(aug))


def test_replay_on_another_op_is_refused():
    params = _params(ga.RandomRotation(30, seed=0))
    with pytest.raises(ValueError, match="drawn by RandomRotation, not by RandomScale"):
        ga.RandomScale((0.5, 2.0))(torch.rand(4, 3, 64, 64), params=params)


def test_replay_on_another_structure_is_refused():
    params = _params(ga.Compose([ga.RandomRotation(30)], seed=0))
    with pytest.raises(ValueError, match=r"drawn by RandomRotation, not by RandomHorizontalFlip"):
        ga.Compose([ga.RandomHorizontalFlip()])(torch.rand(4, 3, 64, 64), params=params)
    with pytest.raises(ValueError, match="lack the entry '1'"):
        ga.Compose([ga.RandomRotation(30), ga.RandomRotation(5)])(torch.rand(4, 3, 64, 64), params=params)
    one_of = _params(ga.OneOf([ga.RandomRotation(30), ga.RandomScale()], seed=0))
    with pytest.raises(ValueError, match="gate"):
        ga.OneOf([ga.RandomRotation(30), ga.RandomScale(), ga.RandomScale()])(torch.rand(4, 3, 64, 64), params=one_of)


def test_replay_of_something_else_is_a_type_error():
    with pytest.raises(TypeError, match="return_params=True"):
        ga.RandomRotation(30)(torch.rand(4, 3, 8, 8), params={"angle": torch.zeros(4)})


def test_a_sample_alone_replays_with_its_rows():
    aug = ga.Compose([ga.RandomResizedCrop(16), ga.RandomRotation(30), ga.ColorJitter(0.4, 0.4)], seed=3)
    x = torch.rand(5, 3, 40, 40, dtype=torch.float64)
    out, params = aug(x, return_params=True)
    for i in range(5):
        torch.testing.assert_close(aug(x[i:i + 1], params=take_rows(params, slice(i, i + 1))), out[i:i + 1],
                                   atol=1e-9, rtol=0)
