"""Image inputs of the metrics: tensors, ``(images, labels)`` pairs or Datasets, checked and batched.

Every metric takes its images the same way:

* a tensor ``(N, C, H, W)``, uint8 (0..255) or floating point in [0, 1], on any device;
* a pair ``(images, labels)`` of such a tensor and ``N`` class ids;
* a map-style ``torch.utils.data.Dataset`` whose items are images or ``(image, label)``
  (genaug's :class:`~genaug.data.ImageTensorDataset`, ``torchvision`` datasets, ``TensorDataset``;
  PIL images and arrays are converted to uint8).

Images are handed on as float32 in [0, 1], batch by batch; nothing is modified in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Union

import torch
from torch.utils.data import Dataset

Images = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor], Dataset]
"""What a metric accepts as a set of images (see the module docstring)."""

_RANGE_TOL = 1e-3


def _unpack(data: Any, name: str) -> tuple[Any, torch.Tensor | None]:
    """Split ``data`` into (tensor or Dataset, labels or None); reject anything else."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        images, labels = data
        labels = torch.as_tensor(labels)
        if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.dim() != 1:
            raise ValueError(f"{name}: labels must be a 1-d integer tensor; got {labels.dtype} {tuple(labels.shape)}")
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{name}: {images.shape[0]} images but {labels.shape[0]} labels; give one label per image")
        return images, labels.long().cpu()
    if isinstance(data, torch.Tensor):
        return data, None
    if isinstance(data, Dataset):
        images, labels = getattr(data, "images", None), getattr(data, "labels", None)
        if isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor) and len(images) == len(data):
            return images, labels.long().cpu()        # ImageTensorDataset: slice, don't iterate
        return data, None
    raise TypeError(f"{name} must be a tensor (N, C, H, W), a pair (images, labels) or a torch Dataset; "
                    f"got {type(data).__name__}")


def num_images(data: Images, name: str = "images") -> int:
    """Number of images in ``data``.

    Example:
        >>> num_images(torch.zeros(5, 1, 8, 8, dtype=torch.uint8))
        5
    """
    source, _ = _unpack(data, name)
    return len(source)  # type: ignore[arg-type]


def check_batch(x: torch.Tensor, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Validate one batch ``(B, C, H, W)`` and return it as ``dtype`` in [0, 1] (same device).

    Raises ``ValueError``/``TypeError`` naming ``name``, the bad value and what is allowed.

    Example:
        >>> check_batch(torch.full((1, 1, 2, 2), 255, dtype=torch.uint8), "real").max().item()
        1.0
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        hint = " (one image? add a batch dimension: x[None])" if x.dim() == 3 else ""
        raise ValueError(f"{name} must be a batch (N, C, H, W); got shape {tuple(x.shape)}{hint}")
    if x.dtype == torch.uint8:
        return x.to(dtype) / 255.0
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be uint8 (0..255) or floating point in [0, 1]; got dtype {x.dtype}")
    x = x.to(dtype)
    if x.numel():
        lo, hi = float(x.amin()), float(x.amax())
        if lo != lo or hi != hi:
            raise ValueError(f"{name} contains NaN")
        if lo < -_RANGE_TOL or hi > 1 + _RANGE_TOL:
            raise ValueError(f"{name}: float images must be in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]. "
                             "Pass uint8 for 0..255 data, or map [-1, 1] images with (x + 1) / 2")
        x = x.clamp(0, 1)
    return x


def _item_image(item: Any) -> torch.Tensor:
    from genaug.data.builtin import _to_uint8_chw

    img = item[0] if isinstance(item, (tuple, list)) else item
    if isinstance(img, torch.Tensor) and img.dtype.is_floating_point:
        return img if img.dim() == 3 else img[None]
    return _to_uint8_chw(img)


def _item_label(item: Any) -> int | None:
    if isinstance(item, (tuple, list)) and len(item) >= 2:
        return int(item[1])
    return None


def iter_batches(data: Images, batch_size: int = 256, name: str = "images", dtype: torch.dtype = torch.float32
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield ``(images, labels)`` batches: ``dtype`` images in [0, 1] and int64 labels (or ``None``).

    Args:
        data: tensor, ``(images, labels)`` pair or Dataset (see the module docstring).
        batch_size: images per batch (>= 1).
        name: the argument's name, used in error messages.
        dtype: floating point type of the images handed on (float32; float64 for PSNR/SSIM).

    Returns:
        An iterator of batches; images stay on their device, labels are on the CPU.

    Example:
        >>> [tuple(x.shape) for x, _ in iter_batches(torch.rand(5, 1, 4, 4), batch_size=2)]
        [(2, 1, 4, 4), (2, 1, 4, 4), (1, 1, 4, 4)]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive int")
    source, labels = _unpack(data, name)
    n = len(source)  # type: ignore[arg-type]
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if isinstance(source, torch.Tensor):
            x = source[start:stop]
            y = labels[start:stop] if labels is not None else None
        else:
            items = [source[i] for i in range(start, stop)]
            imgs = [_item_image(it) for it in items]
            shapes = {tuple(t.shape) for t in imgs}
            if len(shapes) > 1:
                raise ValueError(f"{name}: images of different shapes {sorted(shapes)[:3]}; resize them to one size")
            if len({t.dtype for t in imgs}) > 1:
                imgs = [check_batch(t[None], name, dtype)[0] for t in imgs]
            x = torch.stack(imgs)
            found = [_item_label(it) for it in items]
            y = torch.tensor(found, dtype=torch.long) if all(v is not None for v in found) else None
        yield check_batch(x, name, dtype), y


def first_shape(data: Images, name: str = "images") -> tuple[int, int, int]:
    """``(C, H, W)`` of the images in ``data`` (reads one image); errors on an empty set."""
    source, _ = _unpack(data, name)
    if len(source) == 0:  # type: ignore[arg-type]
        raise ValueError(f"{name} is empty; at least 2 images are needed")
    if isinstance(source, torch.Tensor):
        if source.dim() != 4:
            check_batch(source, name)
        return tuple(source.shape[1:])  # type: ignore[return-value]
    return tuple(_item_image(source[0]).shape)  # type: ignore[return-value]


def load_all(data: Images, name: str = "images", batch_size: int = 1024
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All images of ``data`` as one float32 tensor in [0, 1] (and labels, or ``None``)."""
    xs, ys = [], []
    for x, y in iter_batches(data, batch_size, name):
        xs.append(x)
        ys.append(y)
    if not xs:
        raise ValueError(f"{name} is empty")
    labels = torch.cat(ys) if all(y is not None for y in ys) else None
    return torch.cat(xs), labels
