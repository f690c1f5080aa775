"""A genaug transform as a ``torchvision.transforms.v2.Transform``.

:class:`TorchvisionTransform` sits anywhere in a ``v2.Compose`` and understands torchvision's sample
structures: arbitrarily nested tuples, lists and dicts holding ``tv_tensors.Image``, plain tensors
(the first one is the image when no ``Image`` is present, as in torchvision), PIL images,
``tv_tensors.Mask``, ``tv_tensors.BoundingBoxes`` (``XYXY``, ``XYWH``, ``CXCYWH``) and
``tv_tensors.KeyPoints``. Everything else (labels, strings, numbers) passes through unchanged.

One genaug parameter set is sampled per call (from the genaug transform's own generator, so its
``seed`` makes runs reproducible) and shared by the image and every target; the image and the
first mask, box set and keypoint set go through genaug in one fused call.
"""

from __future__ import annotations

from typing import Any

import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.ops import box_convert
from torchvision.transforms.v2 import Transform as _V2Transform
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2._utils import is_pure_tensor

from genaug.integrations import check_transform, collapse_invalid_boxes, run_targets
from genaug.transforms.base import Params, Transform

_KeyPoints: type | None = getattr(tv_tensors, "KeyPoints", None)  # torchvision >= 0.23
_BOX_FORMATS = {"XYXY": "xyxy", "XYWH": "xywh", "CXCYWH": "cxcywh"}
_PIL_MODES = ("L", "RGB", "RGBA")


def _is_image(x: Any) -> bool:
    return isinstance(x, (tv_tensors.Image, PIL.Image.Image)) or is_pure_tensor(x)


def _is_keypoints(x: Any) -> bool:
    return _KeyPoints is not None and isinstance(x, _KeyPoints)


class TorchvisionTransform(_V2Transform):
    """Wrap a genaug transform (or ``Compose``) as a torchvision v2 transform.

    Args:
        aug: any genaug :class:`~genaug.transforms.base.Transform`.

    Supported inputs (anywhere in a nested tuple/list/dict sample):

    * image: ``tv_tensors.Image`` or a plain tensor, ``(C, H, W)`` or a batch ``(B, C, H, W)``,
      uint8 or float in 0..1; or a PIL image (modes L, RGB, RGBA), returned as PIL. A batch gets
      *per-sample* parameters (torchvision would use one set for the whole batch).
    * ``tv_tensors.Mask``: ``(..., H, W)`` for a single image, ``(B, ..., H, W)`` for a batch.
    * ``tv_tensors.BoundingBoxes`` in ``XYXY``/``XYWH``/``CXCYWH``: ``(N, 4)`` for a single image
      (or a batch of one), ``(B, N, 4)`` for a batch. Boxes are clipped to the output, and a box
      that leaves the image (or was degenerate) gets zero area, so ``v2.SanitizeBoundingBoxes``
      removes it with its labels. The output's ``canvas_size`` is the new image size.
    * ``tv_tensors.KeyPoints``: ``(..., 2)`` for a single image, ``(B, ..., 2)`` for a batch, in
      continuous pixel coordinates; points that leave the image are kept
      (``v2.SanitizeKeyPoints`` removes them).

    Example:
        >>> import torch, genaug as ga
        >>> from torchvision import tv_tensors
        >>> from torchvision.transforms import v2
        >>> from genaug.integrations.torchvision import TorchvisionTransform
        >>> pipeline = v2.Compose([
        ...     TorchvisionTransform(ga.Compose([ga.RandomResizedCrop(32), ga.RandomRotation(30)], seed=0)),
        ...     v2.SanitizeBoundingBoxes(),
        ... ])
        >>> img = tv_tensors.Image(torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8))
        >>> boxes = tv_tensors.BoundingBoxes([[8, 8, 40, 40]], format="XYXY", canvas_size=(64, 64))
        >>> out = pipeline({"image": img, "boxes": boxes, "labels": torch.tensor([1])})
        >>> out["image"].shape, out["boxes"].canvas_size
        (torch.Size([3, 32, 32]), (32, 32))
    """

    def __init__(self, aug: Transform) -> None:
        super().__init__()
        self.aug = check_transform(aug, type(self).__name__)

    def extra_repr(self) -> str:
        return f"aug={self.aug!r}"

    # ------------------------------------------------------------------ v2 hooks
    def check_inputs(self, flat_inputs: list[Any]) -> None:
        for x in flat_inputs:
            if isinstance(x, tv_tensors.Video):
                raise TypeError(f"{type(self).__name__} does not support tv_tensors.Video; pass frames as an Image batch")
            if isinstance(x, tv_tensors.BoundingBoxes) and x.format.name not in _BOX_FORMATS:
                raise ValueError(
                    f"{type(self).__name__} supports BoundingBoxes in formats {sorted(_BOX_FORMATS)}, "
                    f"got {x.format.name} (rotated boxes are not supported)"
                )

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """Sample one genaug parameter set and run the image and first targets through genaug at once.

        Returns ``{"genaug": params, ...}``; ``outputs`` caches the results of the fused call, and
        :meth:`transform` replays ``params`` on any other input.
        """
        images = [x for x in flat_inputs if _is_image(x)]
        masks = [x for x in flat_inputs if isinstance(x, tv_tensors.Mask)]
        boxes = [x for x in flat_inputs if isinstance(x, tv_tensors.BoundingBoxes)]
        points = [x for x in flat_inputs if _is_keypoints(x)]
        if images:
            first = _to_tensor(images[0])
            batched, channels, size, device = first.dim() == 4, first.shape[-3], tuple(first.shape[-2:]), first.device
        elif masks or boxes or points:
            anchor = (masks or boxes or points)[0]
            batched, channels, device = False, 1, anchor.device
            size = tuple(anchor.shape[-2:]) if masks else tuple(anchor.canvas_size)
        else:
            return {"genaug": None, "outputs": []}
        size = (int(size[0]), int(size[1]))
        _check_sizes(images, masks, boxes, points, size)
        batch_size = first.shape[0] if images and batched else 1
        params = self.aug.sample_params(batch_size, size, self.aug.generator)
        context = {"genaug": params, "batched": batched, "size": size, "channels": channels, "device": device}

        # The fused call: the image plus the first mask, box set and keypoint set.
        targets = {
            "masks": _mask_in(masks[0], batched) if masks else None,
            "boxes": _boxes_in(boxes[0], batched, batch_size) if boxes else None,
            "keypoints": _points_in(points[0], batched) if points else None,
        }
        outputs: list[tuple[Any, Any]] = []
        if images:
            result = self.aug(first, **targets, params=params)
            image_out = result["image"] if isinstance(result, dict) else result
            outputs.append((images[0], _image_out(images[0], image_out)))
        elif any(v is not None for v in targets.values()):
            result = run_targets(self.aug, params, **_target_context(context), **targets)
        if isinstance(result, dict):
            outputs.extend(_targets_out(result, masks[:1], boxes[:1], points[:1]))
        context["outputs"] = outputs
        return context

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        for original, output in params.get("outputs", ()):
            if original is inpt:
                return output
        if params.get("genaug") is None:
            return inpt
        if _is_image(inpt):  # more than one image in the sample: same parameters
            return _image_out(inpt, self.aug(_to_tensor(inpt), params=params["genaug"]))
        if isinstance(inpt, tv_tensors.Mask):
            result = run_targets(self.aug, params["genaug"], masks=_mask_in(inpt, params["batched"]), **_target_context(params))
            return _targets_out(result, [inpt], [], [])[0][1]
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            b = params["genaug"]["apply"].shape[0]
            result = run_targets(self.aug, params["genaug"], boxes=_boxes_in(inpt, params["batched"], b), **_target_context(params))
            return _targets_out(result, [], [inpt], [])[0][1]
        if _is_keypoints(inpt):
            result = run_targets(self.aug, params["genaug"], keypoints=_points_in(inpt, params["batched"]), **_target_context(params))
            return _targets_out(result, [], [], [inpt])[0][1]
        return inpt


# ---------------------------------------------------------------------------------- conversions


def _to_tensor(image: Any) -> torch.Tensor:
    if isinstance(image, PIL.Image.Image):
        if image.mode not in _PIL_MODES:
            raise TypeError(f"PIL images of mode {image.mode!r} are not supported; convert to one of {_PIL_MODES} first")
        return F.pil_to_tensor(image)
    tensor = image.as_subclass(torch.Tensor)
    if tensor.dim() not in (3, 4):
        raise ValueError(f"images must be (C, H, W) or a batch (B, C, H, W), got shape {tuple(tensor.shape)}")
    return tensor


def _image_out(like: Any, out: torch.Tensor) -> Any:
    if isinstance(like, PIL.Image.Image):
        return F.to_pil_image(out, mode=like.mode)
    if isinstance(like, tv_tensors.Image):
        return tv_tensors.wrap(out, like=like)
    return out


def _check_sizes(images: list, masks: list, boxes: list, points: list, size: tuple[int, int]) -> None:
    found = [tuple(F.get_size(x)) for x in images + masks] + [tuple(x.canvas_size) for x in boxes + points]
    for other in found:
        if tuple(int(v) for v in other) != size:
            raise ValueError(f"all images and targets of a sample must have the same size, found {size} and {tuple(other)}")


def _target_context(params: dict[str, Any]) -> dict[str, Any]:
    b = params["genaug"]["apply"].shape[0]
    return {
        "size": params["size"],
        "channels": params["channels"],
        "batch_size": b if params["batched"] else None,
        "device": params["device"],
    }


def _mask_in(mask: Any, batched: bool) -> torch.Tensor:
    m = mask.as_subclass(torch.Tensor)
    lead = 1 if batched else 0
    if m.dim() < 2 + lead:
        raise ValueError(f"a Mask must be {'(B, ..., H, W)' if batched else '(..., H, W)'}, got shape {tuple(m.shape)}")
    # genaug takes (H, W)/(K, H, W) per image: fold any extra leading dims into K.
    k_dims = m.shape[lead:-2]
    if len(k_dims) > 1:
        m = m.reshape(*m.shape[:lead], -1, *m.shape[-2:])
    return m


def _boxes_in(boxes: Any, batched: bool, batch_size: int) -> torch.Tensor:
    b = boxes.as_subclass(torch.Tensor)
    xyxy = box_convert(b.to(torch.float64 if b.dtype == torch.float64 else torch.float32), _BOX_FORMATS[boxes.format.name], "xyxy")
    if not batched:
        return xyxy
    if xyxy.dim() == 2 and batch_size == 1:
        return xyxy.unsqueeze(0)
    if xyxy.dim() != 3 or xyxy.shape[0] != batch_size:
        raise ValueError(
            f"with a batch of {batch_size} images, BoundingBoxes must hold one box set per image, shape "
            f"({batch_size}, N, 4), got {tuple(xyxy.shape)}: each image gets its own parameters"
        )
    return xyxy


def _points_in(points: Any, batched: bool) -> torch.Tensor:
    p = points.as_subclass(torch.Tensor)
    p = p.to(torch.float64 if p.dtype == torch.float64 else torch.float32)
    return p.reshape(p.shape[0], -1, 2) if batched else p.reshape(-1, 2)


def _targets_out(result: dict[str, torch.Tensor], masks: list, boxes: list, points: list) -> list[tuple[Any, Any]]:
    """Wrap genaug's target outputs back into the tv_tensors they came from (with the new canvas size)."""
    size = tuple(int(v) for v in result["image"].shape[-2:])
    out: list[tuple[Any, Any]] = []
    if masks:
        (mask,) = masks
        m = result["masks"]
        out.append((mask, tv_tensors.wrap(m.reshape(*mask.shape[:-2], *size), like=mask)))
    if boxes:
        (box,) = boxes
        xyxy = collapse_invalid_boxes(result["boxes"], result["boxes_valid"])
        converted = box_convert(xyxy, "xyxy", _BOX_FORMATS[box.format.name])
        if box.dim() == 2 and converted.dim() == 3:
            converted = converted[0]
        if not box.is_floating_point():
            converted = converted.round()
        converted = converted.to(box.dtype)
        extra = {"clamping_mode": box.clamping_mode} if hasattr(box, "clamping_mode") else {}
        wrapped = tv_tensors.BoundingBoxes._wrap(converted, format=box.format, canvas_size=size, check_dims=False, **extra)
        out.append((box, wrapped))
    if points:
        (pts,) = points
        k = result["keypoints"].reshape(pts.shape)
        k = k.round().to(pts.dtype) if not pts.is_floating_point() else k.to(pts.dtype)
        out.append((pts, _KeyPoints._wrap(k, canvas_size=size, check_dims=False)))  # type: ignore[union-attr]
    return out


__all__ = ["TorchvisionTransform"]
