"""Random trees of containers over sized and unsized ops: the batch equals each sample run alone.

Two properties, over trees that hypothesis builds from Compose / RandomApply / OneOf / SomeOf and
every kind of op (crops and resizes that change the size, warps, colour and pixel ops):

* **batch == per sample**: the batched output equals, for every sample, the tree run on that
  sample alone with its own params rows (images and every target);
* **reference semantics** (pixel-exact ops only, so fused and op-by-op agree): each sample's result
  equals a small interpreter that walks the tree and applies, one by one and alone, the leaves the
  sample's params pick: alternatives act on the container's input, a skipped size-changing op
  takes its centre crop / whole-image resize, never a corner.
"""

import pytest
import torch
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import genaug as ga
from genaug.transforms.base import take_rows

IN, OUT = 24, 16  # input size; every size-changing op gives OUT x OUT

# Pixel-exact ops: fused and op-by-op agree. (A padded crop after another crop is not: the fused warp
# sees the real pixels beyond the first crop where op-by-op pads, a documented difference.)
EXACT_SIZED = [
    lambda s: ga.CenterCrop(OUT),
    lambda s: ga.RandomCrop(OUT, p=0.7, seed=s),
]
EXACT_KEEPING = [
    lambda s: ga.RandomHorizontalFlip(p=0.5, seed=s),
    lambda s: ga.RandomVerticalFlip(p=0.5, seed=s),
    lambda s: ga.RandomBrightness((0.5, 1.0), p=0.5, seed=s),
    lambda s: ga.RandomGaussianBlur(3, sigma=(0.5, 1.0), p=0.5, seed=s),
]
ALL_SIZED = EXACT_SIZED + [
    lambda s: ga.RandomCrop(OUT, padding=2, seed=s),
    lambda s: ga.Resize((OUT, OUT)),
    lambda s: ga.RandomResizedCrop(OUT, scale=(0.3, 1.0), p=0.7, seed=s),
]
ALL_KEEPING = EXACT_KEEPING + [
    lambda s: ga.RandomRotation(30, p=0.5, seed=s),
    lambda s: ga.RandomAffine(10, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=5, seed=s),
    lambda s: ga.RandomScale((0.5, 1.5), seed=s),
    lambda s: ga.ColorJitter(0.3, 0.3, 0.3, 0.05, p=0.5, seed=s),
    lambda s: ga.RandomGaussianNoise(std=(0.01, 0.05), p=0.5, seed=s),
]


def trees(sized, keeping):
    leaf = st.tuples(st.sampled_from(sized + keeping), st.integers(0, 2**20)).map(lambda fs: fs[0](fs[1]))

    def extend(children):
        kids = st.lists(children, min_size=1, max_size=3)
        p = st.sampled_from([0.0, 0.5, 1.0])
        return st.one_of(
            st.builds(lambda c, p: ga.Compose(c, p=p), kids, p),
            st.builds(lambda c, p: ga.RandomApply(c, p=p), kids, p),
            st.builds(lambda c, p: ga.OneOf(c, p=p), kids, p),
            st.builds(lambda c, p, lo: ga.SomeOf(c, n=(min(lo, len(c)), len(c)), p=p), kids, p, st.integers(0, 1)),
        )

    return st.recursive(leaf, extend, max_leaves=6).map(lambda t: t if isinstance(t, ga.Compose) else ga.Compose([t]))


def _inputs(b, seed):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, IN, IN, generator=g, dtype=torch.float64)
    masks = torch.randint(0, 2**40, (b, IN, IN), generator=g)
    lo = torch.rand(b, 2, 2, generator=g) * 12
    boxes = torch.cat([lo, lo + 4 + torch.rand(b, 2, 2, generator=g) * 8], dim=-1).double()
    keypoints = torch.rand(b, 3, 2, generator=g, dtype=torch.float64) * IN
    return image, masks, boxes, keypoints


def _call(aug, b, seed):
    image, masks, boxes, keypoints = _inputs(b, seed)
    try:
        return aug(image, masks=masks, boxes=boxes, keypoints=keypoints, return_params=True), (image, masks, boxes, keypoints)
    except ValueError as exc:  # an invalid random tree (alternatives of different output sizes, ...)
        if "same output size" in str(exc) or "use n=1 or OneOf" in str(exc):
            reject()
        raise


def _assert_same(got, want, exact_image):
    if exact_image:
        torch.testing.assert_close(got["image"], want["image"], atol=1e-9, rtol=0)
    else:
        torch.testing.assert_close(got["image"], want["image"], atol=1e-6, rtol=0)
    assert torch.equal(got["masks"], want["masks"])
    torch.testing.assert_close(got["boxes"], want["boxes"], atol=1e-6, rtol=0)
    torch.testing.assert_close(got["keypoints"], want["keypoints"], atol=1e-6, rtol=0)
    assert torch.equal(got["boxes_valid"], want["boxes_valid"])
    assert torch.equal(got["keypoints_valid"], want["keypoints_valid"])


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


@SETTINGS
@given(aug=trees(ALL_SIZED, ALL_KEEPING), seed=st.integers(0, 1000))
def test_batch_equals_each_sample_alone(aug, seed):
    (out, params), (image, masks, boxes, keypoints) = _call(aug, 6, seed)
    for i in range(6):
        one = aug(image[i:i + 1], masks=masks[i:i + 1], boxes=boxes[i:i + 1], keypoints=keypoints[i:i + 1],
                  params=take_rows(params, torch.tensor([i])))
        _assert_same({k: v[i:i + 1] for k, v in out.items()}, one, exact_image=False)


def _skipped(params):
    """The same params with every apply False: the subtree as a sample that does not run it."""
    return {k: (_skipped(v) if isinstance(v, dict) and k != "drawn_for" else
                torch.zeros_like(v) if k == "apply" else v) for k, v in params.items()}


def reference(t, sample, params):
    """Walk the tree for one sample, running each picked leaf alone (one resampling per op)."""
    if isinstance(t, (ga.OneOf, ga.SomeOf)):
        size = tuple(sample["image"].shape[-2:])
        picked = [i for i in range(len(t)) if bool(params["apply"][0]) and bool(params["gate"][0, i])]
        if not picked and t.output_size(size) != size:
            return reference(t.transforms[0], sample, _skipped(params["0"]))
        for i in picked:
            sample = reference(t.transforms[i], sample, params[str(i)])
        return sample
    if isinstance(t, ga.Compose):
        run = bool(params["apply"][0])
        for i, child in enumerate(t.transforms):
            sample = reference(child, sample, params[str(i)] if run else _skipped(params[str(i)]))
        return sample
    out = t(sample["image"], masks=sample["masks"], boxes=sample["boxes"], keypoints=sample["keypoints"], params=params)
    out["boxes_valid"] = out["boxes_valid"] & sample["boxes_valid"]
    out["keypoints_valid"] = out["keypoints_valid"] & sample["keypoints_valid"]
    return out


@SETTINGS
@given(aug=trees(EXACT_SIZED, EXACT_KEEPING), seed=st.integers(0, 1000))
def test_each_sample_follows_the_reference_semantics(aug, seed):
    (out, params), (image, masks, boxes, keypoints) = _call(aug, 6, seed)
    for i in range(6):
        start = {"image": image[i:i + 1], "masks": masks[i:i + 1], "boxes": boxes[i:i + 1],
                 "keypoints": keypoints[i:i + 1], "boxes_valid": torch.ones(1, 2, dtype=torch.bool),
                 "keypoints_valid": torch.ones(1, 3, dtype=torch.bool)}
        want = reference(aug, start, take_rows(params, torch.tensor([i])))
        _assert_same({k: v[i:i + 1] for k, v in out.items()}, want, exact_image=True)


# ------------------------------------------------------------------------- the defects, as examples


def test_one_of_alternatives_act_on_the_container_input():
    x = torch.rand(200, 3, 64, 64)
    out, params = ga.OneOf([ga.CenterCrop(16), ga.RandomCrop(16)], seed=0)(x, return_params=True)
    centre = ga.CenterCrop(16)(x)
    random_crop = params["gate"][:, 1]
    assert 50 < int(random_crop.sum()) < 150
    assert torch.equal(out[~random_crop], centre[~random_crop])
    boxes = params["1"]["box"][random_crop]
    assert boxes[:, :2].std(0).min() > 5  # offsets spread over the 64x64 input, not stuck at 0
    for i in random_crop.nonzero().flatten()[:10].tolist():
        left, top = (int(v) for v in params["1"]["box"][i, :2])
        assert torch.equal(out[i], x[i, :, top:top + 16, left:left + 16])


@pytest.mark.parametrize("op", [ga.CenterCrop(16), ga.Resize((16, 16)), ga.RandomCrop(16, seed=0),
                                ga.RandomResizedCrop(16, seed=0)])
def test_a_skipped_size_changing_op_takes_its_neutral_form_never_a_corner(op):
    x = torch.rand(4, 3, 64, 48)
    skipped = ga.RandomApply([op], p=0.0)(x)
    neutral = ga.Resize((16, 16))(x) if isinstance(op, (ga.Resize, ga.RandomResizedCrop)) else ga.CenterCrop(16)(x)
    assert torch.equal(skipped, neutral)
    assert not torch.equal(skipped, x[..., :16, :16])


def test_one_of_over_size_changing_ops_skipped_by_p_gets_the_first_childs_neutral_form():
    x = torch.rand(8, 3, 64, 64)
    assert torch.equal(ga.OneOf([ga.RandomCrop(16), ga.RandomResizedCrop(16)], p=0.0)(x), ga.CenterCrop(16)(x))


def test_some_of_refuses_several_size_changing_children_per_sample():
    aug = ga.SomeOf([ga.CenterCrop(16), ga.RandomCrop(16)], n=2)
    with pytest.raises(ValueError, match="n=1 or OneOf"):
        aug(torch.rand(2, 3, 32, 32))
    assert ga.SomeOf([ga.CenterCrop(16), ga.RandomCrop(16)], n=(0, 1))(torch.rand(2, 3, 32, 32)).shape[-1] == 16


def test_geometric_alternatives_of_different_sizes_still_fuse_into_one_warp(monkeypatch):
    calls = []
    original = torch.nn.functional.grid_sample
    monkeypatch.setattr(torch.nn.functional, "grid_sample", lambda *a, **k: calls.append(1) or original(*a, **k))
    aug = ga.Compose([ga.RandomRotation(10), ga.OneOf([ga.RandomResizedCrop(16), ga.Compose([ga.Resize(20), ga.CenterCrop(16)])]),
                      ga.RandomHorizontalFlip()], seed=0)
    assert aug(torch.rand(8, 3, 32, 32)).shape == (8, 3, 16, 16)
    assert len(calls) == 1
