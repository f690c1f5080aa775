"""Masks, boxes and keypoints follow the image's fused geometry."""

import math
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import genaug as ga
from genaug.transforms import pipeline


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


# ------------------------------------------------------------------------- masks are gathered by index
#
# A mask's output pixel copies the input pixel that contains the source point of its centre:
# u = m00*j + m01*i + m02 + 1/2 (continuous coordinates, pixel p spans [p, p+1)), pixel floor(u);
# outside the image 0 (constant), the edge pixel (border) or the mirror image (reflect, numpy
# "symmetric"). The index is integer arithmetic, so it does not depend on the mask's dtype.

CHAINS = {  # Compose(..., padding_mode=mode) sets every op's padding mode, so each chain is one warp
    "affine+resized-crop+flip": lambda: [
        ga.RandomAffine(30, translate=(0.1, 0.1), scale=(0.7, 1.3), shear=10),
        ga.RandomResizedCrop((28, 36), scale=(0.3, 1.0)), ga.RandomHorizontalFlip()],
    "rotation+crop": lambda: [ga.RandomRotation(45), ga.RandomCrop(24, padding=3)],
    "zoom-out+vflip": lambda: [ga.RandomScale((0.2, 0.6)), ga.RandomVerticalFlip()],
    "resize+rotation": lambda: [ga.Resize((25, 31)), ga.RandomRotation(180)],
}


def _compose(chain, mode, seed, **kwargs):
    return ga.Compose(CHAINS[chain](), seed=seed, padding_mode=mode, **kwargs)


def _recorded_warps(aug, image, **targets):
    """Run ``aug`` and record each fused warp as (matrix, input size, output size, options)."""
    calls = []
    real = pipeline.warp_batch

    def recording(batch, matrix, out_size, options):
        calls.append((matrix.clone(), tuple(batch.image.shape[-2:]), tuple(out_size), options))
        return real(batch, matrix, out_size, options)

    with mock.patch.object(pipeline, "warp_batch", recording):
        out = aug(image, **targets)
    return out, calls


def _source_pixel(m, i, j, size, mode):
    """The input pixel ``(row, col)`` output pixel ``(i, j)`` copies, ``None`` for the constant fill,
    ``"tie"`` where the source point is within 1e-6 px of a pixel boundary (either side is fine)."""
    h, w = size
    u = m[0][0] * j + m[0][1] * i + m[0][2] + 0.5
    v = m[1][0] * j + m[1][1] * i + m[1][2] + 0.5
    if min(abs(u - round(u)), abs(v - round(v))) < 1e-6:
        return "tie"
    x, y = math.floor(u), math.floor(v)
    if mode == "constant":
        return (y, x) if 0 <= x < w and 0 <= y < h else None
    if mode == "border":
        return min(max(y, 0), h - 1), min(max(x, 0), w - 1)

    def mirror(p, n):  # numpy "symmetric": -1 -> 0, n -> n - 1
        p %= 2 * n
        return min(p, 2 * n - 1 - p)

    return mirror(y, h), mirror(x, w)


@pytest.mark.parametrize("mode", ["constant", "border", "reflect"])
@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_mask_labels_do_not_depend_on_the_mask_dtype(chain, mode):
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 100, (6, 1, 40, 48), generator=g)
    image = torch.rand(6, 3, 40, 48, generator=g)
    aug = _compose(chain, mode, 11)
    _, params = aug(image, return_params=True)
    outs = {dt: aug(image, masks=labels.to(dt), params=params)["masks"] for dt in
            (torch.int64, torch.int32, torch.int16, torch.uint8, torch.float32, torch.float64, torch.bfloat16)}
    for dt, out in outs.items():
        assert out.dtype == dt
        assert torch.equal(out.to(torch.int64), outs[torch.int64]), f"{dt} gives other labels than int64"
    binary = labels > 49
    as_bool = aug(image, masks=binary, params=params)["masks"]
    as_uint8 = aug(image, masks=binary.to(torch.uint8), params=params)["masks"]
    assert as_bool.dtype == torch.bool and torch.equal(as_bool, as_uint8.bool())
    assert torch.equal(as_uint8, (outs[torch.uint8] > 49).to(torch.uint8))


def test_int64_labels_near_2_to_the_62_survive_exactly():
    g = torch.Generator().manual_seed(0)
    big = 2**62 + torch.randint(0, 1000, (4, 2, 30, 34), generator=g)
    big[:, 1] = -big[:, 1] - 12345  # and large negative ones
    image = torch.rand(4, 3, 30, 34, generator=g)
    for chain in CHAINS:
        for mode in ("constant", "border", "reflect"):
            out = _compose(chain, mode, 2)(image, masks=big)["masks"]
            allowed = set(big.unique().tolist()) | ({0} if mode == "constant" else set())
            assert set(out.unique().tolist()) <= allowed, (chain, mode)
    # Pixel permutations copy exactly: flips, and an integer crop.
    assert torch.equal(ga.RandomHorizontalFlip(p=1.0)(image, masks=big)["masks"], big.flip(-1))
    assert torch.equal(ga.RandomVerticalFlip(p=1.0)(image, masks=big)["masks"], big.flip(-2))
    assert torch.equal(ga.CenterCrop((20, 24))(image, masks=big)["masks"], big[..., 5:25, 5:29])
    assert torch.equal(ga.RandomRotation((180, 180))(image, masks=big)["masks"], big.flip(-1, -2))


@given(seed=st.integers(0, 2**31 - 1), chain=st.sampled_from(sorted(CHAINS)),
       mode=st.sampled_from(["constant", "border", "reflect"]))
def test_each_mask_pixel_is_the_input_pixel_under_its_source_point(seed, chain, mode):
    b, h, w = 3, 22, 26
    # every input pixel has its own label, near 2**62 (which float sampling would round)
    labels = 2**62 + torch.arange(b * h * w, dtype=torch.int64).view(b, 1, h, w)
    image = torch.rand(b, 1, h, w, generator=torch.Generator().manual_seed(seed))
    out, calls = _recorded_warps(_compose(chain, mode, seed), image, masks=labels)
    assert len(calls) == 1
    matrix, in_size, out_size, options = calls[0]
    assert in_size == (h, w) and options.padding_mode == mode
    masks = out["masks"]
    assert masks.shape == (b, 1, *out_size) and masks.dtype == torch.int64
    values = set(masks.unique().tolist())
    assert values <= set(labels.unique().tolist()) | {0}
    rng = np.random.default_rng(seed)
    for s in range(b):
        m = matrix[s].tolist()
        for i, j in zip(rng.integers(0, out_size[0], 30), rng.integers(0, out_size[1], 30)):
            src = _source_pixel(m, int(i), int(j), (h, w), mode)
            if src == "tie":
                continue
            expected = 0 if src is None else int(labels[s, 0, src[0], src[1]])
            assert int(masks[s, 0, i, j]) == expected, (s, int(i), int(j), src)


@pytest.mark.parametrize("mode", ["constant", "border", "reflect"])
def test_masks_pick_the_pixels_a_nearest_image_picks_except_at_ties(mode):
    """An image of pixel indices warped with interpolation="nearest" names the pixel each output
    pixel took; the mask path takes the same pixel everywhere but at rounding ties (source point
    on a pixel boundary, where grid_sample rounds half to even from a float grid and masks round
    half up) and, in constant mode, in sub-pixel corner slivers where the image's fill follows the
    footprint coverage."""
    b, h, w = 8, 36, 44
    index = torch.arange(1, h * w + 1, dtype=torch.float64).view(1, 1, h, w).expand(b, 1, h, w)
    labels = 2**62 + index.long()  # the old float path could not even represent these
    disagree, ties, total = 0, 0, 0
    for seed in range(6):
        for chain in sorted(CHAINS):
            aug = _compose(chain, mode, seed, interpolation="nearest")
            out, calls = _recorded_warps(aug, index, masks=labels)
            matrix, _, (oh, ow), _ = calls[0]
            m = matrix.numpy()
            jj, ii = np.meshgrid(np.arange(ow), np.arange(oh))
            u = m[:, 0, 0, None, None] * jj + m[:, 0, 1, None, None] * ii + m[:, 0, 2, None, None] + 0.5
            v = m[:, 1, 0, None, None] * jj + m[:, 1, 1, None, None] * ii + m[:, 1, 2, None, None] + 0.5
            tie = (np.abs(u - np.round(u)) < 1e-6) | (np.abs(v - np.round(v)) < 1e-6)
            differ = (out["masks"][:, 0] - 2**62 != out["image"][:, 0].round().long()).numpy()
            # (a constant fill of the image is 0, and of the mask 0 - 2**62: also counted as differing)
            filled = (out["masks"][:, 0] == 0).numpy() & (out["image"][:, 0] == 0).numpy()
            differ &= ~filled
            disagree += int((differ & ~tie).sum())
            ties += int(tie.sum())
            total += differ.size
    share = disagree / total  # measured: 0 for border and reflect, 13 of 189,264 pixels (0.007%) for constant
    limit = 3e-4 if mode == "constant" else 0.0  # constant: corner slivers, ~0.1 px^2 per image corner
    assert share <= limit, f"{share:.4%} of the pixels away from ties differ ({disagree} of {total})"
