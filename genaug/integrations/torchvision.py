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
from torch.utils._pytree import tree_flatten, tree_unflatten
from torchvision import tv_tensors
from torchvision.ops import box_convert
from torchvision.transforms.v2 import Transform as _V2Transform
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2._utils import is_pure_tensor

from genaug.integrations import check_transform, collapse_invalid_boxes, label_in, label_out, run_targets
from genaug.transforms.base import Transform, tree_uses_labels

_KeyPoints: type | None = getattr(tv_tensors, "KeyPoints", None)  # torchvision >= 0.23
_BOX_FORMATS = {"XYXY": "xyxy", "XYWH": "xywh", "CXCYWH": "cxcywh"}
_PIL_MODES = ("L", "RGB", "RGBA")


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
    * the label, when ``aug`` uses labels (a generative augmenter): found as torchvision's ``MixUp``
      finds it (the second item of a tuple / list, else a dict's ``"label"`` key, else ``"labels"``,
      else a key containing ``"label"``, also inside the second item's dict): an int class id, an
      integer tensor (``(B,)`` for a batch) or class weights ``(K,)`` / ``(B, K)``. It comes back
      replaced by the augmenter's labels (an int stays an int while the labels stay class ids).

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

    def forward(self, *inputs: Any) -> Any:
        """torchvision's ``forward``, plus the sample's label when ``aug`` uses labels."""
        if not tree_uses_labels(self.aug):
            return super().forward(*inputs)
        sample = inputs if len(inputs) > 1 else inputs[0]
        flat, spec = tree_flatten(sample)
        self.check_inputs(flat)
        where = _label_index(tree_unflatten(list(range(len(flat))), spec))
        if where is None:
            raise ValueError(
                f"{type(self).__name__}: {type(self.aug).__name__} uses labels (a generative augmenter), but the sample "
                "has none where torchvision's MixUp looks: pass (image, label) or a dict with a 'label' or 'labels' entry"
            )
        needs = self._needs_transform_list([None if i == where else x for i, x in enumerate(flat)])
        params = self.make_params([x for x, needed in zip(flat, needs) if needed], label=flat[where])
        out = [self.transform(x, params) if needed else x for x, needed in zip(flat, needs)]
        out[where] = params["label"]
        return tree_unflatten(out, spec)

    # ------------------------------------------------------------------ v2 hooks
    def check_inputs(self, flat_inputs: list[Any]) -> None:
        for x in flat_inputs:
            if isinstance(x, tv_tensors.Video):
                raise TypeError(
                    f"{type(self).__name__} does not support tv_tensors.Video; pass the frames as an Image batch"
                )
            if isinstance(x, tv_tensors.BoundingBoxes) and x.format.name not in _BOX_FORMATS:
                raise ValueError(
                    f"{type(self).__name__} supports BoundingBoxes in formats {sorted(_BOX_FORMATS)}, "
                    f"got {x.format.name} (rotated boxes are not supported)"
                )

    def make_params(self, flat_inputs: list[Any], label: Any = None) -> dict[str, Any]:
        """Sample one genaug parameter set and run the image and first targets through genaug at once.

        Returns the genaug ``params`` with what :meth:`transform` needs to replay them on any input;
        ``outputs`` caches the results of the fused call, ``label`` the sample's label after it.
        """
        kinds = [(_kind(x), x) for x in flat_inputs]
        first = {k: x for k, x in reversed(kinds) if k is not None}  # the first input of each kind
        if not first:
            return {"genaug": None, "outputs": [], "label": label}
        image = _to_tensor(first["image"]) if "image" in first else None
        batch_size = image.shape[0] if image is not None and image.dim() == 4 else None
        anchor = first.get("image", first.get("masks"))
        if anchor is not None:
            size = tuple(F.get_size(anchor))
        else:
            size = tuple(first["boxes" if "boxes" in first else "keypoints"].canvas_size)
        size = (int(size[0]), int(size[1]))
        for k, x in kinds:
            found = tuple(F.get_size(x)) if k in ("image", "masks") else tuple(x.canvas_size) if k else size
            if tuple(int(v) for v in found) != size:
                raise ValueError(
                    f"all images and targets of a sample must have the same size, found {size} and {found}"
                )
        params = self.aug.sample_params(batch_size or 1, size, self.aug.generator)
        context: dict[str, Any] = {
            "genaug": params,
            "size": size,
            "batch_size": batch_size,
            "channels": image.shape[-3] if image is not None else 3,  # no image: the placeholder is RGB
            "device": (image if image is not None else next(iter(first.values()))).device,
        }
        # The fused call: the image plus the first mask, box set and keypoint set.
        targets = {k: _TARGETS_IN[k](x, batch_size) for k, x in first.items() if k != "image"}
        context["label"] = label
        if image is not None:
            labels = None if label is None else label_in(label)
            result = self.aug(image, **targets, labels=labels, params=params)
            if label is not None:
                context["label"] = label_out(label, result["labels"], numpy=False)
        else:  # targets only: a generative augmenter just clears the ones of the samples it replaces
            result = run_targets(self.aug, params, **_replay_context(context), **targets)
        result = result if isinstance(result, dict) else {"image": result}
        context["outputs"] = [(x, _output(k, x, result)) for k, x in first.items()]
        return context

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        for original, output in params.get("outputs", ()):
            if original is inpt:
                return output
        kind = _kind(inpt)
        if params.get("genaug") is None or kind is None:
            return inpt
        # Another input of a kind already seen (a second image or mask): replay the same parameters.
        if kind == "image":
            return _image_out(inpt, self.aug(_to_tensor(inpt), params=params["genaug"]))
        target = {kind: _TARGETS_IN[kind](inpt, params["batch_size"])}
        return _output(kind, inpt, run_targets(self.aug, params["genaug"], **_replay_context(params), **target))


# ---------------------------------------------------------------------------------- conversions


def _label_index(marked: Any) -> int | None:
    """Where the label is in a sample whose leaves were replaced by their flat indices, or None.

    torchvision ``MixUp``'s heuristic: the second item of a tuple / list, else (in the sample or in
    that second item) a dict's ``"label"`` key, else ``"labels"`` (any case; ``"label"`` first: in a
    detection sample ``"labels"`` are the boxes' labels), else a key containing ``"label"``.
    """
    node = marked
    if isinstance(node, (tuple, list)):
        if len(node) < 2:
            return None
        node = node[1]
        if isinstance(node, int):
            return node
    if isinstance(node, dict):
        keys = [k for k in node if isinstance(k, str)]
        key = next((k for name in ("label", "labels") for k in keys if k.lower() == name), None)
        key = key or next((k for k in keys if "label" in k.lower()), None)
        if key is not None and isinstance(node[key], int):
            return node[key]
    return None


def _kind(x: Any) -> str | None:
    """Which genaug argument an input feeds: ``image``, ``masks``, ``boxes``, ``keypoints`` or None (passed through)."""
    if isinstance(x, (tv_tensors.Image, PIL.Image.Image)) or is_pure_tensor(x):
        return "image"
    if isinstance(x, tv_tensors.Mask):
        return "masks"
    if isinstance(x, tv_tensors.BoundingBoxes):
        return "boxes"
    if _KeyPoints is not None and isinstance(x, _KeyPoints):
        return "keypoints"
    return None


def _to_tensor(image: Any) -> torch.Tensor:
    if isinstance(image, PIL.Image.Image):
        if image.mode not in _PIL_MODES:
            raise TypeError(
                f"PIL images of mode {image.mode!r} are not supported; convert to one of {_PIL_MODES} first"
            )
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


def _replay_context(context: dict[str, Any]) -> dict[str, Any]:
    return {k: context[k] for k in ("size", "channels", "batch_size", "device")}


def _batched(t: torch.Tensor, batch_size: int | None, per_item: int, shape: str) -> torch.Tensor:
    """Check the leading batch dimension of a target (a batch of one may omit it)."""
    if batch_size is None:
        return t
    if batch_size == 1 and (t.dim() == per_item or t.shape[0] != 1):
        return t.unsqueeze(0)
    if t.dim() <= per_item or t.shape[0] != batch_size:
        raise ValueError(
            f"with a batch of {batch_size} images, each target needs one entry per image, shape "
            f"({batch_size}, {shape}), got {tuple(t.shape)}: each image gets its own parameters"
        )
    return t


def _mask_in(mask: Any, batch_size: int | None) -> torch.Tensor:
    m = mask.as_subclass(torch.Tensor)
    if m.dim() < 2:
        raise ValueError(f"a Mask must be (..., H, W), got shape {tuple(m.shape)}")
    if batch_size is None:  # genaug takes (H, W) or (K, H, W): fold extra leading dims into K
        return m.reshape(-1, *m.shape[-2:]) if m.dim() > 3 else m
    m = _batched(m, batch_size, 2, "..., H, W")
    return m.reshape(batch_size, -1, *m.shape[-2:]) if m.dim() > 4 else m


def _boxes_in(boxes: Any, batch_size: int | None) -> torch.Tensor:
    b = boxes.as_subclass(torch.Tensor)
    b = b.to(torch.float64 if b.dtype == torch.float64 else torch.float32)
    xyxy = box_convert(b, _BOX_FORMATS[boxes.format.name], "xyxy")
    return xyxy if batch_size is None else _batched(xyxy, batch_size, 2, "N, 4")


def _points_in(points: Any, batch_size: int | None) -> torch.Tensor:
    p = points.as_subclass(torch.Tensor)
    p = p.to(torch.float64 if p.dtype == torch.float64 else torch.float32)
    if batch_size is None:
        return p.reshape(-1, 2)
    return _batched(p, batch_size, 2, "..., 2").reshape(batch_size, -1, 2)


_TARGETS_IN = {"masks": _mask_in, "boxes": _boxes_in, "keypoints": _points_in}


def _output(kind: str, like: Any, result: dict[str, torch.Tensor]) -> Any:
    """Wrap genaug's output for ``kind`` back into the type ``like`` came as, with the new canvas size."""
    size = (int(result["image"].shape[-2]), int(result["image"].shape[-1]))
    if kind == "image":
        return _image_out(like, result["image"])
    if kind == "masks":
        return tv_tensors.wrap(result["masks"].reshape(*like.shape[:-2], *size), like=like)
    if kind == "boxes":
        xyxy = collapse_invalid_boxes(result["boxes"], result["boxes_valid"])
        converted = box_convert(xyxy, "xyxy", _BOX_FORMATS[like.format.name]).reshape(like.shape)
        converted = converted.to(like.dtype) if like.is_floating_point() else converted.round().to(like.dtype)
        extra = {"clamping_mode": like.clamping_mode} if hasattr(like, "clamping_mode") else {}
        return tv_tensors.BoundingBoxes._wrap(
            converted, format=like.format, canvas_size=size, check_dims=False, **extra
        )
    points = result["keypoints"].reshape(like.shape)
    points = points.to(like.dtype) if like.is_floating_point() else points.round().to(like.dtype)
    return _KeyPoints._wrap(points, canvas_size=size, check_dims=False)  # type: ignore[union-attr]


__all__ = ["TorchvisionTransform"]
