"""Adapters that let any genaug transform run inside torchvision v2 and albumentations pipelines.

* :class:`genaug.integrations.torchvision.TorchvisionTransform`: a ``torchvision.transforms.v2.Transform``.
* :class:`genaug.integrations.albumentations.AlbumentationsTransform`: an albumentations ``DualTransform``.

Both are thin: they convert the client library's structures to genaug's call
(``aug(image, masks=..., boxes=..., keypoints=..., params=...)``), sample one parameter set per call
and share it across the image and every target. Nothing here is specific to a transform, so a new
genaug transform works in both adapters with no extra code. The adapters are imported lazily so that
``import genaug`` never needs torchvision or albumentations.

Example:
    >>> import genaug as ga
    >>> from genaug.integrations import TorchvisionTransform
    >>> t = TorchvisionTransform(ga.RandomRotation(30, seed=0))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genaug.transforms.base import Params, Transform

if TYPE_CHECKING:
    from genaug.integrations.albumentations import AlbumentationsTransform
    from genaug.integrations.torchvision import TorchvisionTransform

__all__ = ["AlbumentationsTransform", "TorchvisionTransform"]


def __getattr__(name: str) -> Any:
    if name == "TorchvisionTransform":
        from genaug.integrations.torchvision import TorchvisionTransform

        return TorchvisionTransform
    if name == "AlbumentationsTransform":
        from genaug.integrations.albumentations import AlbumentationsTransform

        return AlbumentationsTransform
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_transform(aug: Any, adapter: str) -> Transform:
    """Return ``aug`` if it is a genaug :class:`~genaug.transforms.base.Transform`, else raise ``TypeError``."""
    if not isinstance(aug, Transform):
        raise TypeError(
            f"{adapter}(aug=...) needs a genaug Transform (e.g. ga.Compose([...]) or ga.RandomRotation(30)), "
            f"got aug of type {type(aug).__module__}.{type(aug).__qualname__}"
        )
    return aug


def run_targets(
    aug: Transform,
    params: Params,
    *,
    size: tuple[int, int],
    channels: int,
    batch_size: int | None,
    device: torch.device,
    masks: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    keypoints: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Replay ``params`` on targets that come without their image.

    genaug's call needs an image to carry the batch size and spatial size, so a zero placeholder of
    the real image's channel count (a stride-0 view, nothing allocated) stands in for it; its
    output is discarded. The batch is marked as a placeholder, so generative augmenters only clear
    the targets of the samples they replace, without running their model (or needing labels).
    ``batch_size=None`` means an unbatched sample.
    """
    from genaug.transforms.pipeline import Batch, run

    shape = (channels, *size) if batch_size is None else (batch_size, channels, *size)
    placeholder = torch.zeros((), device=device).expand(shape)
    batch = Batch.from_inputs(placeholder, masks=masks, boxes=boxes, keypoints=keypoints)
    batch.placeholder = True
    aug.check_params(params, batch.batch_size, batch.size)
    return run(aug, params, batch)  # type: ignore[return-value]  (targets given: a dict)


def label_in(label: Any) -> torch.Tensor:
    """A sample's label as a tensor: class id (an int, NumPy integer or integer tensor) or class weights (K,).

    Example:
        >>> label_in(3)
        tensor(3)
    """
    if isinstance(label, torch.Tensor):
        return label.as_subclass(torch.Tensor)
    if isinstance(label, bool) or not isinstance(label, (int, np.integer, np.ndarray)):
        raise TypeError(f"a sample's label must be a class id (int) or a tensor / array of class weights, got "
                        f"{type(label).__name__}")
    return torch.as_tensor(np.asarray(label))


def label_out(like: Any, label: torch.Tensor, numpy: bool) -> Any:
    """``label`` in the type the sample's label came as: a tensor or array stays one, an int stays an
    int while it is a class id; soft labels come as a NumPy array (``numpy``) or a tensor."""
    if isinstance(like, torch.Tensor):
        return label
    if isinstance(like, np.ndarray) or label.is_floating_point():
        return np.asarray(label.cpu().numpy()) if numpy or isinstance(like, np.ndarray) else label
    return type(like)(label.reshape(()).item())  # a CPU label that came as a Python or NumPy int


def collapse_invalid_boxes(boxes: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Give every invalid box zero area (``x1 = x0``, ``y1 = y0``) so that downstream filters drop it.

    genaug clips boxes to the output and reports which survive in ``boxes_valid``; a box that was
    already invalid on input can map to a positive-area box, so the mask is folded into the
    coordinates here, where the client library has no other way to see it.
    """
    keep = valid.unsqueeze(-1)
    return torch.cat([boxes[..., :2], torch.where(keep, boxes[..., 2:], boxes[..., :2])], dim=-1)
