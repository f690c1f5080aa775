"""The torchvision v2 and albumentations adapters, driven by the real client pipelines.

Reference checks compare each adapter with a direct genaug call on the same parameters (and, where
the geometry is fixed, with the client library's own kernels), so a wrong conversion of any
structure — layout, coordinate convention, box format, canvas size — fails a test.
"""

import doctest
import importlib

import albumentations as A
import numpy as np
import PIL.Image
import pytest
import torch
from torchvision import tv_tensors
from torchvision.ops import box_convert
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

import genaug as ga
from genaug.integrations import AlbumentationsTransform, TorchvisionTransform


def _uint8_image(*shape, seed=0):
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _plain(x):
    return x.as_subclass(torch.Tensor)


def _crop_rotate(seed=0):
    return ga.Compose([ga.RandomResizedCrop(24, scale=(0.3, 1.0)), ga.RandomRotation(40)], seed=seed)


# ================================================================================== torchvision


def test_torchvision_fixed_rotation_matches_genaug_and_torchvision_kernels():
    aug = ga.RandomRotation(degrees=(30, 30))
    img = tv_tensors.Image(_uint8_image(3, 40, 48))
    mask = tv_tensors.Mask(torch.zeros(2, 40, 48, dtype=torch.uint8))
    mask[0, 10:20, 12:30] = 1
    mask[1, 25:35, 5:15] = 3
    boxes = tv_tensors.BoundingBoxes(
        [[12.0, 10.0, 30.0, 20.0], [5.0, 25.0, 15.0, 35.0]], format="XYXY", canvas_size=(40, 48)
    )
    points = tv_tensors.KeyPoints([[12.0, 10.0], [40.0, 30.0]], canvas_size=(40, 48))
    out = v2.Compose([TorchvisionTransform(aug)])({"image": img, "masks": mask, "boxes": boxes, "points": points})

    ref = aug(_plain(img), masks=_plain(mask), boxes=_plain(boxes), keypoints=_plain(points))
    assert type(out["image"]) is tv_tensors.Image and type(out["masks"]) is tv_tensors.Mask
    assert torch.equal(_plain(out["image"]), ref["image"])
    assert torch.equal(_plain(out["masks"]), ref["masks"])
    assert torch.allclose(_plain(out["boxes"]), ref["boxes"])
    assert torch.allclose(_plain(out["points"]), ref["keypoints"])
    # Same coordinate convention as torchvision's own rotate kernels (counter-clockwise, about the centre).
    assert torch.allclose(_plain(out["points"]), _plain(TF.rotate(points, 30.0)), atol=1e-4)
    assert torch.allclose(_plain(out["boxes"]), _plain(TF.rotate(boxes, 30.0)), atol=1e-3)


@pytest.mark.parametrize("fmt", ["XYXY", "XYWH", "CXCYWH"])
def test_torchvision_box_formats_round_trip(fmt):
    xyxy = torch.tensor([[4.0, 6.0, 30.0, 28.0], [20.0, 2.0, 44.0, 18.0], [10.0, 10.0, 22.0, 36.0]])
    boxes = tv_tensors.BoundingBoxes(box_convert(xyxy, "xyxy", fmt.lower()), format=fmt, canvas_size=(40, 48))
    img = tv_tensors.Image(_uint8_image(3, 40, 48))
    out = TorchvisionTransform(_crop_rotate(seed=3))(img, boxes)

    ref = _crop_rotate(seed=3)(_plain(img), boxes=xyxy)
    expected = torch.where(ref["boxes_valid"].unsqueeze(-1), ref["boxes"], ref["boxes"][..., [0, 1, 0, 1]])
    assert out[1].format.name == fmt and out[1].canvas_size == (24, 24)
    assert torch.allclose(box_convert(_plain(out[1]), fmt.lower(), "xyxy"), expected, atol=1e-5)
    assert torch.equal(_plain(out[0]), ref["image"])


def test_torchvision_sanitize_drops_boxes_that_leave_the_crop():
    img = tv_tensors.Image(_uint8_image(3, 64, 64))
    boxes = tv_tensors.BoundingBoxes(
        # outside / inside / clipped / degenerate
        [[0, 0, 10, 10], [20, 20, 30, 30], [40, 44, 60, 62], [30, 20, 30, 40]],
        format="XYXY", canvas_size=(64, 64),
    )
    masks = tv_tensors.Mask(torch.ones(4, 64, 64, dtype=torch.uint8))
    labels = torch.tensor([1, 2, 3, 4])
    # A 45-degree turn would give the degenerate (zero-width) box a positive area: it must still go.
    pipeline = v2.Compose([
        TorchvisionTransform(ga.Compose([ga.CenterCrop(32), ga.RandomRotation(degrees=(45, 45))])),
        v2.SanitizeBoundingBoxes(),
    ])
    out = pipeline({"image": img, "boxes": boxes, "masks": masks, "labels": labels})
    assert out["labels"].tolist() == [2, 3]
    assert out["boxes"].shape == (2, 4) and out["masks"].shape == (2, 32, 32)
    assert out["boxes"].canvas_size == (32, 32)
    assert float(out["boxes"].min()) >= 0 and float(out["boxes"].max()) <= 32

    crop_only = v2.Compose([TorchvisionTransform(ga.CenterCrop(32)), v2.SanitizeBoundingBoxes()])
    out = crop_only({"image": img, "boxes": boxes, "labels": labels})
    assert out["labels"].tolist() == [2, 3]
    assert out["boxes"].tolist() == [[4, 4, 14, 14], [24, 28, 32, 32]]  # shifted by 16, clipped to 32
    assert out["boxes"].dtype == boxes.dtype


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_torchvision_pil_in_pil_out(mode):
    channels = 3 if mode == "RGB" else 1
    array = _uint8_image(channels, 30, 36, seed=4)
    pil = TF.to_pil_image(array, mode=mode)
    out = TorchvisionTransform(_crop_rotate(seed=5))(pil)
    assert isinstance(out, PIL.Image.Image) and out.mode == mode and out.size == (24, 24)
    assert torch.equal(TF.pil_to_tensor(out), _crop_rotate(seed=5)(array))


def test_torchvision_pure_tensor_heuristic_and_nesting():
    image, extra = torch.rand(3, 20, 20), torch.rand(3, 20, 20)
    flip = TorchvisionTransform(ga.RandomHorizontalFlip(p=1.0))
    out_image, out_extra = flip(image, extra)  # no Image: only the first pure tensor is the image
    assert type(out_image) is torch.Tensor and torch.equal(out_image, image.flip(-1))
    assert out_extra is extra

    img = tv_tensors.Image(image)
    sample = (img, {"label": torch.tensor(7), "name": "cat", "aux": [extra, 3.5]})
    out = flip(sample)
    assert torch.equal(_plain(out[0]), image.flip(-1))
    assert out[1]["aux"][0] is extra and out[1]["aux"][1] == 3.5 and out[1]["name"] == "cat"
    assert out[1]["label"].item() == 7


def test_torchvision_one_parameter_set_for_every_input():
    aug = _crop_rotate(seed=7)
    img1, img2 = tv_tensors.Image(_uint8_image(3, 40, 40, seed=1)), tv_tensors.Image(_uint8_image(3, 40, 40, seed=2))
    m1 = tv_tensors.Mask(_uint8_image(40, 40, seed=3) // 128)
    m2 = tv_tensors.Mask(_uint8_image(2, 40, 40, seed=4) // 128)
    points = tv_tensors.KeyPoints([[[5.0, 5.0], [20.0, 30.0]]], canvas_size=(40, 40))  # (1, 2, 2) polyline
    out = TorchvisionTransform(aug)([img1, m1, img2, m2, points])

    ref = _crop_rotate(seed=7)
    first, params = ref(_plain(img1), masks=_plain(m1), keypoints=_plain(points).reshape(-1, 2), return_params=True)
    assert torch.equal(_plain(out[0]), first["image"]) and torch.equal(_plain(out[1]), first["masks"])
    assert torch.equal(_plain(out[2]), ref(_plain(img2), params=params))
    second = ref(_plain(img2), masks=_plain(m2), params=params)
    assert torch.equal(_plain(out[3]), second["masks"])
    assert out[4].shape == (1, 2, 2) and torch.allclose(_plain(out[4]).reshape(-1, 2), first["keypoints"])
    assert all(o.shape[-2:] == (24, 24) for o in out[:4]) and out[4].canvas_size == (24, 24)


def test_torchvision_targets_without_an_image():
    mask = tv_tensors.Mask(_uint8_image(36, 40, seed=1) // 100)
    boxes = tv_tensors.BoundingBoxes([[4.0, 6.0, 30.0, 28.0]], format="XYWH", canvas_size=(36, 40))
    extra = tv_tensors.BoundingBoxes([[10.0, 10.0, 20.0, 20.0]], format="XYXY", canvas_size=(36, 40))
    points = tv_tensors.KeyPoints([[5.0, 7.0], [33.0, 20.0]], canvas_size=(36, 40))
    out = TorchvisionTransform(_crop_rotate(seed=2))({"mask": mask, "boxes": boxes, "extra": extra, "points": points})

    ref, params = _crop_rotate(seed=2)(
        torch.rand(3, 36, 40), masks=_plain(mask), boxes=box_convert(_plain(boxes), "xywh", "xyxy"),
        keypoints=_plain(points), return_params=True,
    )
    assert torch.equal(_plain(out["mask"]), ref["masks"]) and out["points"].canvas_size == (24, 24)
    assert torch.allclose(box_convert(_plain(out["boxes"]), "xywh", "xyxy"), ref["boxes"], atol=1e-5)
    assert torch.allclose(_plain(out["points"]), ref["keypoints"])
    second = _crop_rotate(seed=2)(torch.rand(3, 36, 40), boxes=_plain(extra), params=params)
    assert torch.allclose(_plain(out["extra"]), second["boxes"]) and out["extra"].canvas_size == (24, 24)


def test_torchvision_batch_gets_per_sample_parameters():
    batch = _uint8_image(1, 3, 32, 32).expand(4, 3, 32, 32).contiguous()
    masks = tv_tensors.Mask(torch.ones(4, 32, 32, dtype=torch.uint8))
    xyxy = torch.tensor([[4.0, 4.0, 20.0, 24.0]]).expand(4, 1, 4).contiguous()
    boxes = tv_tensors.BoundingBoxes._wrap(xyxy, format="XYXY", canvas_size=(32, 32), check_dims=False)
    out = TorchvisionTransform(ga.RandomRotation(90, seed=1))(tv_tensors.Image(batch), masks, boxes)

    ref = ga.RandomRotation(90, seed=1)(batch, masks=_plain(masks), boxes=xyxy)
    assert torch.equal(_plain(out[0]), ref["image"]) and torch.equal(_plain(out[1]), ref["masks"])
    assert out[2].shape == (4, 1, 4) and torch.allclose(_plain(out[2]), ref["boxes"])
    assert not torch.equal(out[0][0], out[0][1])  # same input, different parameters per sample

    # A batch of one may leave the batch dimension out of its targets.
    mask0 = tv_tensors.Mask(masks[0])  # (indexing a tv_tensor returns a plain tensor)
    boxes0 = tv_tensors.BoundingBoxes(xyxy[0], format="XYXY", canvas_size=(32, 32))
    one = TorchvisionTransform(ga.RandomRotation(90, seed=2))(tv_tensors.Image(batch[:1]), mask0, boxes0)
    ref = ga.RandomRotation(90, seed=2)(batch[0], masks=_plain(mask0), boxes=xyxy[0])
    assert type(one[1]) is tv_tensors.Mask and one[1].shape == (32, 32)
    assert torch.equal(_plain(one[0])[0], ref["image"]) and torch.equal(_plain(one[1]), ref["masks"])
    assert one[2].shape == (1, 4) and torch.allclose(_plain(one[2]), ref["boxes"])

    with pytest.raises(ValueError, match=r"\(4, N, 4\)"):
        unbatched_boxes = tv_tensors.BoundingBoxes(xyxy[0], format="XYXY", canvas_size=(32, 32))
        TorchvisionTransform(ga.RandomRotation(90))(tv_tensors.Image(batch), unbatched_boxes)


def test_torchvision_seed_reproducible_and_stream_advances():
    img = tv_tensors.Image(_uint8_image(3, 32, 32))
    a, b = TorchvisionTransform(_crop_rotate(seed=11)), TorchvisionTransform(_crop_rotate(seed=11))
    first = a(img)
    assert torch.equal(first, b(img))
    assert not torch.equal(first, a(img))


def test_torchvision_rejects_unsupported_inputs():
    t = TorchvisionTransform(ga.RandomRotation(10))
    with pytest.raises(TypeError, match="Video"):
        t(tv_tensors.Video(torch.rand(2, 3, 8, 8)))
    rotated = tv_tensors.BoundingBoxes([[4.0, 4.0, 3.0, 3.0, 10.0]], format="XYWHR", canvas_size=(8, 8))
    with pytest.raises(ValueError, match="XYWHR"):
        t(tv_tensors.Image(torch.rand(3, 8, 8)), rotated)
    with pytest.raises(ValueError, match="same size"):
        t(tv_tensors.Image(torch.rand(3, 8, 8)), tv_tensors.Mask(torch.zeros(9, 9)))


# ================================================================================== albumentations


def _a_compose(aug, seed=0, **kwargs):
    return A.Compose(
        [AlbumentationsTransform(aug)],
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"], **kwargs),
        keypoint_params=A.KeypointParams(format="xya", angle_in_degrees=True, remove_invisible=False),
        seed=seed,
    )


def _a_sample(seed=0, h=40, w=48):
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.uint8)
    mask[8:20, 10:30] = 2
    return dict(
        image=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        mask=mask,
        bboxes=[[10, 8, 30, 20], [5, 22, 20, 35]],
        labels=[1, 2],
        keypoints=[[12, 10, 30], [40, 30, 200]],
    )


def test_albumentations_flip_matches_albumentations_horizontal_flip():
    sample = _a_sample()
    ours = _a_compose(ga.RandomHorizontalFlip(p=1.0))(**sample)
    theirs = A.Compose(
        [A.HorizontalFlip(p=1.0)],
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
        keypoint_params=A.KeypointParams(format="xya", angle_in_degrees=True, remove_invisible=False),
    )(**sample)
    assert np.array_equal(ours["image"], theirs["image"]) and np.array_equal(ours["mask"], theirs["mask"])
    assert np.allclose(ours["bboxes"], theirs["bboxes"]) and list(ours["labels"]) == [1, 2]
    assert np.allclose(ours["keypoints"], theirs["keypoints"], atol=1e-4)  # x -> W-1-x, angle -> 180-angle


def test_albumentations_fixed_rotation_matches_genaug():
    aug = ga.RandomRotation(degrees=(30, 30))
    sample = _a_sample()
    sample["keypoints"] = [[12, 10, 0], [30, 30, 90]]
    out = _a_compose(aug)(**sample, masks=np.stack([sample["mask"], 1 - sample["mask"]]))

    image = torch.from_numpy(sample["image"]).permute(2, 0, 1)
    boxes = torch.tensor(sample["bboxes"], dtype=torch.float64)
    points = torch.tensor(sample["keypoints"], dtype=torch.float64)[:, :2] + 0.5  # pixel index -> continuous
    ref = aug(image, masks=torch.from_numpy(sample["mask"]), boxes=boxes, keypoints=points)
    assert np.array_equal(out["image"], ref["image"].permute(1, 2, 0).numpy())
    assert np.array_equal(out["mask"], ref["masks"].numpy())
    assert np.array_equal(out["masks"][0], ref["masks"].numpy())
    assert np.allclose(out["bboxes"], ref["boxes"].numpy(), atol=1e-3)
    assert np.allclose(np.asarray(out["keypoints"])[:, :2], (ref["keypoints"] - 0.5).numpy(), atol=1e-3)
    # A counter-clockwise turn by 30 degrees in image coordinates (y down) subtracts 30 from the angle.
    assert np.allclose(np.asarray(out["keypoints"])[:, 2], [330, 60], atol=1e-3)


def test_albumentations_seed_makes_runs_reproducible():
    sample = _a_sample()
    runs = [_a_compose(_crop_rotate(seed=s), seed=5)(**sample) for s in (1, 2)]  # genaug's own seed is unused
    for key in ("image", "mask", "bboxes", "keypoints"):
        assert np.allclose(np.asarray(runs[0][key], dtype=float), np.asarray(runs[1][key], dtype=float))
    other = _a_compose(_crop_rotate(), seed=6)(**sample)
    assert not np.array_equal(runs[0]["image"], other["image"])
    pipeline = _a_compose(_crop_rotate(), seed=5)
    assert not np.array_equal(pipeline(**sample)["image"], pipeline(**sample)["image"])


def test_albumentations_boxes_reach_albumentations_filters_unclipped():
    sample = _a_sample(h=64, w=64)
    sample.update(bboxes=[[0, 0, 24, 24], [10, 10, 40, 40]], labels=[1, 2])
    out = _a_compose(ga.CenterCrop(32), min_visibility=0.5)(**sample)  # visible: 11% and 64%
    assert list(out["labels"]) == [2]
    assert np.allclose(out["bboxes"], [[0, 0, 24, 24]])
    assert out["image"].shape == (32, 32, 3) and out["mask"].shape == (32, 32)


def test_albumentations_layouts_and_dtypes():
    rng = np.random.default_rng(1)
    gray = rng.random((30, 36), dtype=np.float32)
    out = A.Compose([AlbumentationsTransform(ga.RandomRotation(degrees=(20, 20)))])(image=gray)["image"]
    expected = ga.RandomRotation(degrees=(20, 20))(torch.from_numpy(gray)[None])[0].numpy()
    assert out.dtype == np.float32 and out.shape == (30, 36) and np.array_equal(out, expected)

    # ``images`` share one parameter set; targets without ``image`` take the replay path, which must
    # agree with the fused call made when ``image`` is given.
    images = rng.integers(0, 256, (3, 30, 36, 3), dtype=np.uint8)
    targets = dict(bboxes=[[4, 4, 30, 26]], labels=[1], keypoints=[[10, 12, 45], [20, 8, 0]])
    batch_out = _a_compose(_crop_rotate(), seed=2)(images=images, **targets)
    for im, b in zip(images, batch_out["images"]):
        single = _a_compose(_crop_rotate(), seed=2)(image=im, **targets)
        assert np.array_equal(b, single["image"])
        assert np.allclose(batch_out["bboxes"], single["bboxes"])
        assert np.allclose(batch_out["keypoints"], single["keypoints"])
    assert batch_out["images"].shape == (3, 24, 24, 3)


def test_albumentations_serialization_round_trip():
    pipeline = _a_compose(_crop_rotate(), seed=3)
    rebuilt = A.from_dict(A.to_dict(pipeline))
    rebuilt.set_random_seed(3)
    assert isinstance(rebuilt.transforms[0], AlbumentationsTransform)
    assert rebuilt.transforms[0].aug.to_dict() == pipeline.transforms[0].aug.to_dict()
    sample = _a_sample()
    assert np.array_equal(pipeline(**sample)["image"], rebuilt(**sample)["image"])

    replay = A.ReplayCompose([AlbumentationsTransform(ga.RandomRotation(40))])
    x, y = _a_sample(seed=1)["image"], _a_sample(seed=2)["image"]
    first = replay(image=x)
    second = replay(image=y)
    assert np.array_equal(A.ReplayCompose.replay(first["replay"], image=x)["image"], first["image"])
    assert not np.array_equal(A.ReplayCompose.replay(first["replay"], image=y)["image"], second["image"])

    unserializable = AlbumentationsTransform(ga.Compose([lambda x: x]))
    with pytest.raises(TypeError, match="cannot serialize"):
        A.to_dict(A.Compose([unserializable]))


# ================================================================================== both


@pytest.mark.parametrize("adapter", [TorchvisionTransform, AlbumentationsTransform])
def test_wrapping_a_non_genaug_transform_is_a_type_error(adapter):
    with pytest.raises(TypeError, match=r"aug.*torchvision\.transforms\.v2\._geometry\.RandomHorizontalFlip"):
        adapter(v2.RandomHorizontalFlip())
    with pytest.raises(TypeError, match=r"aug.*albumentations"):
        adapter(A.HorizontalFlip())


@pytest.mark.parametrize("name", ["genaug.integrations.torchvision", "genaug.integrations.albumentations"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
