"""Masks, boxes and keypoints follow the image's fused geometry."""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

import genaug as ga


def dot_image(points, size=(48, 64)):
    """A black image with a bright 1-pixel dot under each continuous-coordinate point."""
    img = torch.zeros(len(points), 1, *size, dtype=torch.float64)
    for i, (x, y) in enumerate(points):
        img[i, 0, int(y), int(x)] = 1.0
    return img


@given(seed=st.integers(0, 10_000))
def test_keypoints_land_where_the_image_moved(seed):
    g = torch.Generator().manual_seed(seed)
    # Dots within 8 px of the centre of the 48x64 image: rotated, sheared, scaled by 1.3 and shifted
    # they stay inside (dots up to 16 px out let seed 2742 push one 0.09 px past the top edge).
    centres = torch.stack([24 + 16 * torch.rand(4, generator=g), 16 + 16 * torch.rand(4, generator=g)], 1)
    points = centres.floor() + 0.5  # centre of the dot's pixel
    img = dot_image(points.tolist())
    aug = ga.Compose([ga.RandomAffine(30, translate=(0.05, 0.05), scale=(0.9, 1.3), shear=10), ga.RandomHorizontalFlip()],
                     seed=seed, antialias=False)
    res = aug(img, keypoints=points.unsqueeze(1))
    for i in range(4):
        heat = res["image"][i, 0]
        weight = heat.sum()
        ys, xs = torch.meshgrid(torch.arange(48.0), torch.arange(64.0), indexing="ij")
        centroid = torch.stack([(heat * (xs + 0.5)).sum() / weight, (heat * (ys + 0.5)).sum() / weight])
        assert torch.allclose(centroid, res["keypoints"][i, 0].double(), atol=0.75), (centroid, res["keypoints"][i, 0])
        assert bool(res["keypoints_valid"][i, 0])


def test_boxes_follow_flip_and_crop_exactly():
    boxes = torch.tensor([[[4.0, 6.0, 20.0, 30.0]]])
    res = ga.RandomHorizontalFlip(p=1.0)(torch.rand(1, 3, 40, 50), boxes=boxes)
    assert torch.equal(res["boxes"], torch.tensor([[[30.0, 6.0, 46.0, 30.0]]]))
    crop = ga.CenterCrop((20, 30))(torch.rand(1, 3, 40, 50), boxes=boxes)
    assert torch.allclose(crop["boxes"], torch.tensor([[[0.0, 0.0, 10.0, 20.0]]]))  # shifted by (10, 10), clipped


def test_rotated_box_is_the_enclosing_box_of_its_corners():
    boxes = torch.tensor([[[10.0, 10.0, 30.0, 20.0]]])
    res = ga.RandomRotation((90, 90))(torch.rand(1, 1, 40, 40), boxes=boxes)
    # 90° counter-clockwise about (20, 20): x' = y, y' = 40 - x
    assert torch.allclose(res["boxes"], torch.tensor([[[10.0, 10.0, 20.0, 30.0]]]), atol=1e-4)


def test_boxes_leaving_the_image_are_clipped_and_flagged():
    boxes = torch.tensor([[[0.0, 0.0, 8.0, 8.0], [20.0, 20.0, 30.0, 30.0], [5.0, 5.0, 5.0, 9.0]]])
    x = torch.rand(1, 3, 32, 32)
    aug = ga.RandomAffine(0, translate=(0.5, 0.5))
    _, params = aug(x, return_params=True)
    params["translate"] = torch.tensor([[12.0, 0.0]], dtype=torch.float64)
    res = aug(x, boxes=boxes, params=params)
    assert res["boxes"][0, 1].tolist() == [32.0, 20.0, 32.0, 30.0]  # pushed out on the right: zero width
    assert res["boxes_valid"].tolist() == [[True, False, False]]  # the third had no area to begin with
    assert res["boxes"][0, 0].tolist() == [12.0, 0.0, 20.0, 8.0]


def test_masks_follow_the_image_with_nearest_neighbour():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (2, 1, 8, 8), generator=g)
    labels = labels.repeat_interleave(4, 2).repeat_interleave(4, 3)  # 32x32 blocks of 4x4
    image = labels.double() / 3.0
    aug = ga.Compose([ga.RandomRotation(25), ga.RandomResizedCrop(24, scale=(0.6, 1.0))], seed=0, interpolation="nearest")
    res = aug(image, masks=labels[:, 0])
    assert res["masks"].dtype == labels.dtype and res["masks"].shape == (2, 24, 24)
    assert set(res["masks"].unique().tolist()) <= {0, 1, 2, 3}
    # With nearest interpolation both follow the same pixels (except where the fill shows).
    agree = (res["masks"] == (res["image"][:, 0] * 3).round().long()).double().mean()
    assert agree > 0.97


def test_replay_reproduces_every_target():
    x = torch.rand(3, 3, 32, 32)
    targets = dict(
        masks=torch.randint(0, 5, (3, 2, 32, 32)),
        boxes=torch.tensor([[4.0, 4.0, 16.0, 16.0]]).repeat(3, 2, 1),
        keypoints=torch.rand(3, 5, 2) * 32,
        labels=torch.tensor([0, 1, 2]),
    )
    aug = ga.Compose([ga.RandomResizedCrop(24), ga.RandomRotation(30), ga.ColorJitter(0.3)], seed=1)
    first, params = aug(x, **targets, return_params=True)
    again = aug(x, **targets, params=params)
    assert first.keys() == again.keys() == {"image", "masks", "boxes", "boxes_valid", "keypoints", "keypoints_valid", "labels"}
    for key in first:
        assert torch.equal(first[key], again[key]), key
    assert first["masks"].shape == (3, 2, 24, 24)


def test_keypoint_on_rotation_centre_stays_put():
    res = ga.RandomRotation(180, seed=0)(torch.rand(4, 1, 21, 31), keypoints=torch.tensor([[15.5, 10.5]]).repeat(4, 1, 1))
    assert torch.allclose(res["keypoints"], torch.tensor([15.5, 10.5]).expand(4, 1, 2), atol=1e-4)
    assert not math.isnan(res["keypoints"].sum().item())


def test_large_integer_mask_labels_survive_the_warp():
    m = torch.zeros(1, 20, 20, dtype=torch.int64)
    m[:, 5:15, 5:15] = 2**40 + 1
    out = ga.RandomRotation((90, 90))(torch.rand(1, 3, 20, 20), masks=m)["masks"]
    assert set(out.unique().tolist()) == {0, 2**40 + 1}


def test_keypoints_on_the_far_edge_are_outside_as_in_torchvision():
    res = ga.RandomHorizontalFlip(p=0.0)(torch.rand(1, 3, 10, 20), keypoints=torch.tensor([[[20.0, 5.0], [19.9, 9.9]]]))
    assert res["keypoints_valid"].tolist() == [[False, True]]
