"""A genaug transform as an albumentations ``DualTransform`` (albumentations 2.x).

:class:`AlbumentationsTransform` sits in an ``A.Compose`` with ``bbox_params`` and
``keypoint_params``. Per call it draws one genaug parameter set from albumentations' own random
generator (so ``A.Compose(..., seed=N)`` makes runs reproducible) and shares it across the image,
masks, boxes and keypoints; the image and its ``mask``/``masks``, ``bboxes`` and ``keypoints`` go
through genaug in one fused call.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
from albumentations.core.keypoints_utils import angle_to_2pi_range
from albumentations.core.transforms_interface import DualTransform

from genaug.integrations import check_transform, label_in, label_out, run_targets
from genaug.transforms.base import Params, Transform, check_probability, expand_params, tree_uses_labels
from genaug.transforms.serialization import from_dict

# Albumentations' internal keypoint columns: x, y, z, angle (radians, [0, 2pi)), scale, extras...
_ANGLE, _SCALE = 3, 4
_CALLS = itertools.count()


class AlbumentationsTransform(DualTransform):
    """Wrap a genaug transform (or ``Compose``) as an albumentations ``DualTransform``.

    Args:
        aug: any genaug :class:`~genaug.transforms.base.Transform`, or the dict of its ``to_dict()``
            (which is how ``A.from_dict`` rebuilds it).
        p: probability that albumentations applies the transform at all (genaug's own ``p`` values
            still apply inside).

    Targets:
        * ``image``: ``(H, W, C)`` or ``(H, W)`` numpy array, uint8 (0..255) or float32 (0..1).
          ``images``: ``(N, H, W[, C])``, all with the same parameters.
        * ``mask`` ``(H, W[, C])`` and ``masks`` ``(N, H, W)`` (or a list), any dtype: nearest
          neighbour on the same warp.
        * ``bboxes`` (from ``bbox_params``): the four corners of each box are mapped and the enclosing
          box is returned unclipped, so albumentations' own clipping and filters (``min_visibility``,
          ``min_area``, ...) see the true visible fraction.
        * ``keypoints`` (from ``keypoint_params``): albumentations' pixel-index coordinates
          (pixel ``j`` at ``x = j``); the angle and scale columns follow the local geometry (a
          flip mirrors the angle, a 2x zoom doubles the scale); any other column is unchanged.
        * ``label``: the image's class, for transforms that use labels (generative augmenters):
          an int (or NumPy integer) class id, or class weights ``(K,)``; it comes back replaced by
          the augmenter's label (an int stays an int while it is a class id; soft labels come back
          as a float array). Other transforms pass it through.

    Example:
        >>> import numpy as np, albumentations as A, genaug as ga
        >>> from genaug.integrations.albumentations import AlbumentationsTransform
        >>> pipeline = A.Compose(
        ...     [AlbumentationsTransform(ga.Compose([ga.RandomResizedCrop(32), ga.RandomRotation(30)]))],
        ...     bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
        ...     seed=0,
        ... )
        >>> image = np.zeros((64, 64, 3), dtype=np.uint8)
        >>> out = pipeline(image=image, bboxes=[[8, 8, 40, 40]], labels=[1])
        >>> out["image"].shape
        (32, 32, 3)
    """

    def __init__(self, aug: Transform | dict[str, Any], p: float = 1.0) -> None:
        super().__init__(p=check_probability("p", p))
        if isinstance(aug, dict):
            aug = from_dict(aug)
        self.aug = check_transform(aug, type(self).__name__)
        # Results of the last fused call, tagged with its call number. Kept here rather than in the
        # params, which albumentations copies into replay records and applied-params logs.
        self._fused: tuple[int, list[tuple[Any, Any]]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fused"] = None
        return state

    @property
    def targets(self) -> dict[str, Any]:
        return {**super().targets, "label": self.apply_to_label}

    # ------------------------------------------------------------------ serialization
    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("aug",)

    def get_transform_init_args(self) -> dict[str, Any]:
        return {"aug": self.aug.to_dict()}

    def __repr__(self) -> str:  # the default repr serializes aug, which fails for third-party stages
        return f"{type(self).__name__}(aug={self.aug!r}, p={self.p})"

    # ------------------------------------------------------------------ parameters
    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        shape = params["shape"]
        size = (int(shape[0]), int(shape[1]))
        seed = int(self.random_generator.integers(0, 2**63 - 1))
        genaug_params = self.aug.sample_params(1, size, torch.Generator().manual_seed(seed))
        channels = int(shape[2]) if len(shape) > 2 else 1
        context = {"genaug_params": genaug_params, "genaug_size": size, "genaug_channels": channels}
        context["genaug_call"] = call = next(_CALLS)
        self._fused = (call, self._fused_call(data, context))
        return context

    def _fused_call(self, data: dict[str, Any], context: dict[str, Any]) -> list[tuple[Any, Any]]:
        """One genaug call for the image, its mask(s), boxes and keypoints; ``[(input, output), ...]``."""
        image = data.get("image")
        if not isinstance(image, np.ndarray):
            return []
        mask_key = next((k for k in ("mask", "masks") if isinstance(data.get(k), np.ndarray)), None)
        masks = _mask_in(data[mask_key], mask_key) if mask_key else None
        groups = [(k, data[k]) for k in ("bboxes", "keypoints") if isinstance(data.get(k), np.ndarray) and data[k].size]
        points = [_bbox_points(v, context) if k == "bboxes" else _keypoint_points(v) for k, v in groups]
        counts = [len(p) for p in points]
        flat = torch.cat(points) if points else None
        label = data.get("label") if tree_uses_labels(self.aug) else None
        labels = None if label is None else label_in(label)
        result = self.aug(_image_in(image), masks=masks, keypoints=flat, labels=labels, params=context["genaug_params"])
        result = result if isinstance(result, dict) else {"image": result}
        if label is not None:  # small: kept in the params, so that replay mode relabels too
            context["genaug_label"], context["genaug_label_out"] = labels, label_out(label, result["labels"], numpy=True)
        outputs = [(image, _image_out(result["image"], image))]
        if mask_key:
            outputs.append((data[mask_key], _mask_out(result["masks"], data[mask_key], mask_key)))
        out_size = tuple(result["image"].shape[-2:])
        for (key, value), mapped in zip(groups, torch.split(result["keypoints"], counts) if points else ()):
            finish = _bbox_out if key == "bboxes" else _keypoint_out
            outputs.append((value, finish(value, mapped, context, out_size)))
        return outputs

    def _replay(self, params: dict[str, Any], **targets: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return run_targets(
            self.aug,
            params["genaug_params"],
            size=params["genaug_size"],
            channels=params["genaug_channels"],
            batch_size=None,
            device=torch.device("cpu"),
            **targets,
        )

    def _cached(self, value: Any, params: dict[str, Any]) -> Any:
        """The fused call's output for ``value`` if it belongs to this very call (never in replay mode)."""
        if self._fused is None or self.replay_mode or self._fused[0] != params.get("genaug_call"):
            return None
        for original, output in self._fused[1]:
            if original is value:
                return output
        return None

    # ------------------------------------------------------------------ targets
    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        cached = self._cached(img, params)
        if cached is not None:
            return cached
        out = self.aug(_image_in(img), labels=params.get("genaug_label"), params=params["genaug_params"])
        return _image_out(out["image"] if isinstance(out, dict) else out, img)

    def apply_to_label(self, label: Any, **params: Any) -> Any:
        return params.get("genaug_label_out", label)

    def apply_to_images(self, images: np.ndarray, **params: Any) -> np.ndarray:
        batch = torch.from_numpy(np.ascontiguousarray(images))
        batch = batch.unsqueeze(1) if batch.dim() == 3 else batch.permute(0, 3, 1, 2)
        out = self.aug(batch, params=expand_params(params["genaug_params"], batch.shape[0]))
        out = out[:, 0] if images.ndim == 3 else out.permute(0, 2, 3, 1)
        return np.ascontiguousarray(out.numpy())

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        cached = self._cached(mask, params)
        if cached is not None:
            return cached
        return _mask_out(self._replay(params, masks=_mask_in(mask, "mask"))["masks"], mask, "mask")

    def apply_to_masks(self, masks: np.ndarray, **params: Any) -> np.ndarray:
        cached = self._cached(masks, params)
        if cached is not None:
            return cached
        if isinstance(masks, (list, tuple)):
            return [self.apply_to_mask(m, **params) for m in masks]
        return _mask_out(self._replay(params, masks=_mask_in(masks, "masks"))["masks"], masks, "masks")

    def apply_to_bboxes(self, bboxes: np.ndarray, **params: Any) -> np.ndarray:
        return self._apply_points(bboxes, params, _bbox_points, _bbox_out)

    def apply_to_keypoints(self, keypoints: np.ndarray, **params: Any) -> np.ndarray:
        return self._apply_points(keypoints, params, lambda v, _: _keypoint_points(v), _keypoint_out)

    def _apply_points(self, value: np.ndarray, params: dict[str, Any], to_points: Any, finish: Any) -> np.ndarray:
        cached = self._cached(value, params)
        if cached is not None:
            return cached
        if not value.size:
            return value
        result = self._replay(params, keypoints=to_points(value, params))
        return finish(value, result["keypoints"], params, tuple(result["image"].shape[-2:]))


# ---------------------------------------------------------------------------------- conversions


def _image_in(image: np.ndarray) -> torch.Tensor:
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (H, W, C), got shape {image.shape}")
    t = torch.from_numpy(np.ascontiguousarray(image))
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)


def _image_out(out: torch.Tensor, like: np.ndarray) -> np.ndarray:
    array = out[0] if like.ndim == 2 else out.permute(1, 2, 0)
    return np.ascontiguousarray(array.numpy())


def _mask_in(mask: Any, key: str) -> torch.Tensor:
    m = torch.from_numpy(np.ascontiguousarray(mask))
    if key == "mask":  # (H, W) or (H, W, C): channels become genaug's K masks
        return m if m.dim() == 2 else m.permute(2, 0, 1)
    return m if m.dim() == 3 else m.permute(0, 3, 1, 2).flatten(0, 1)  # (N, H, W[, C])


def _mask_out(out: torch.Tensor, like: np.ndarray, key: str) -> np.ndarray:
    h, w = out.shape[-2:]
    if key == "mask":
        array = out if like.ndim == 2 else out.permute(1, 2, 0)
    else:
        array = out if like.ndim == 3 else out.reshape(like.shape[0], like.shape[3], h, w).permute(0, 2, 3, 1)
    return np.ascontiguousarray(array.numpy())


def _bbox_points(bboxes: np.ndarray, context: dict[str, Any]) -> torch.Tensor:
    """The 4 corners ``(4N, 2)`` of normalized xyxy boxes, in pixels of the input."""
    h, w = context["genaug_size"]
    b = torch.from_numpy(np.asarray(bboxes[:, :4], dtype=np.float64)) * torch.tensor([w, h, w, h], dtype=torch.float64)
    x0, y0, x1, y1 = b.unbind(-1)
    return torch.stack([x0, y0, x1, y0, x0, y1, x1, y1], dim=-1).reshape(-1, 2)


def _bbox_out(
    bboxes: np.ndarray, corners: torch.Tensor, context: dict[str, Any], out_size: tuple[int, int]
) -> np.ndarray:
    h, w = out_size
    c = corners.reshape(-1, 4, 2)
    xyxy = torch.cat([c.amin(dim=1), c.amax(dim=1)], dim=-1) / torch.tensor([w, h, w, h], dtype=c.dtype)
    out = bboxes.copy()
    out[:, :4] = xyxy.numpy()
    return out


def _keypoint_points(keypoints: np.ndarray) -> torch.Tensor:
    """Each keypoint ``(x, y)`` plus a point one pixel along its angle, in genaug's continuous coordinates."""
    k = torch.from_numpy(np.asarray(keypoints[:, :2], dtype=np.float64)) + 0.5
    if keypoints.shape[1] <= _ANGLE:
        return k
    angle = torch.from_numpy(np.asarray(keypoints[:, _ANGLE], dtype=np.float64))
    return torch.cat([k, k + torch.stack([angle.cos(), angle.sin()], dim=-1)])


def _keypoint_out(keypoints: np.ndarray, mapped: torch.Tensor, context: Any, out_size: tuple[int, int]) -> np.ndarray:
    out = keypoints.copy()
    n = len(keypoints)
    out[:, :2] = (mapped[:n] - 0.5).numpy()
    if keypoints.shape[1] > _ANGLE:
        direction = mapped[n:] - mapped[:n]
        out[:, _ANGLE] = angle_to_2pi_range(torch.atan2(direction[:, 1], direction[:, 0]).numpy())
        if keypoints.shape[1] > _SCALE:
            out[:, _SCALE] = keypoints[:, _SCALE] * direction.norm(dim=-1).numpy()
    return out


__all__ = ["AlbumentationsTransform"]
