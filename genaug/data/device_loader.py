"""``DeviceLoader``: the last stage of a training input pipeline, on the training device.

A ``DataLoader`` decodes and collates in its worker processes; ``DeviceLoader`` takes each of
its batches to the device (pinned host memory, ``non_blocking`` copies), augments the whole
batch there with a genaug pipeline (different parameters per sample), and optionally converts
uint8 to float, normalizes and switches to ``channels_last``. On CUDA, with ``prefetch=True``,
batch ``k + 1`` is copied *and augmented* on a side stream while the training step of batch
``k`` runs on the consumer's stream.

How it compares with timm's ``PrefetchLoader`` (the usual pattern): that one copies, normalizes
and (optionally) random-erases on a side stream and makes the consumer's stream wait with
``wait_stream``. ``DeviceLoader`` runs the whole genaug pipeline (with masks, boxes, keypoints
and labels) on the side stream, and closes two gaps of that pattern:

* **Allocator reuse.** Tensors made on the side stream and then used on the consumer's stream
  must be marked with ``Tensor.record_stream(consumer)``; without it the caching allocator may
  hand their memory to the side stream's next batch while the consumer's kernels still read it.
  ``DeviceLoader`` marks every tensor it hands over.
* **Precise waits.** Each batch records a ``torch.cuda.Event`` when its work is queued; the
  consumer's stream waits for *that* event just before the batch is handed over (whichever
  stream is current then), not for everything queued on the side stream. Before queueing a
  batch, the side stream waits for the consumer's stream, so tensors the consumer produced
  (a generative augmenter's weights being trained, constants made on the default stream) are
  ready, and nothing on the side stream can overtake the consumer by more than one batch.

No host synchronisation happens per batch: nothing reads a device value (the ``meta`` device
test proves it for the per-batch work); pinning, sizes and dtypes are host metadata.

Batch structure (what goes in, what comes out):

* a **tensor** batch is the image batch ``(B, C, H, W)`` (uint8 or float; a grayscale batch
  needs its channel axis); a tensor comes back;
* a **tuple or list** batch is read by position: by default position 0 is the image and
  position 1 the labels; other positions are moved to the device untouched. ``fields=`` names
  each position (``("image", "masks")`` for a segmentation loader, ``("image", "labels",
  "boxes", None)``, ...). The same container type and length come back;
* a **dict** batch is read by key: keys named ``image``, ``masks``, ``boxes``, ``keypoints``,
  ``labels`` are those roles, other keys are moved untouched; ``fields={"pixel_values":
  "image", "label": "labels"}`` maps other names. A dict with the same keys comes back.

The image and the targets go through the pipeline together (targets follow the image's
geometry). Each pipeline output replaces its input in place: the image, the masks, boxes and
keypoints, and the **labels** (a pipeline returns them unchanged unless it has an op that
replaces samples, e.g. a generative augmenter, or mixes them into soft labels ``(B, K)``).
Outputs that have no slot in the input - ``boxes_valid`` and ``keypoints_valid`` - are added
to a dict batch as ``"<boxes key>_valid"`` / ``"<keypoints key>_valid"``, and appended at the
end of a tuple or list batch (boxes first). Values in other positions or keys that are not
tensors (file names, ids) are passed through as they are; tensors nested in lists, tuples or
dicts there are moved to the device.
"""

from __future__ import annotations

import collections.abc
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from genaug._device import check_device
from genaug.transforms.base import Transform, check_numbers

#: The roles a batch entry can play: the pipeline's call arguments (``image`` is its first).
ROLES = ("image", "masks", "boxes", "keypoints", "labels")
#: Outputs of a pipeline call that have no input slot: appended / added after the batch's own entries.
EXTRA_OUTPUTS = (("boxes", "boxes_valid"), ("keypoints", "keypoints_valid"))


def resolve_device(device: Any) -> torch.device:
    """Validate ``device`` (:func:`genaug._device.check_device`; ``meta`` allowed) and return it (``"cuda"`` gets its index).

    Raises ``TypeError`` for something that is not a device, ``ValueError`` for a device that
    PyTorch does not know or that this machine does not have.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("tpu")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: device='tpu' is not a device name torch knows; allowed: cpu, cuda, cuda:N, mps, xpu, meta ...
    """
    dev = check_device(device, auto=False, meta=True)
    if dev.type == "cuda" and dev.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return dev


def _check_fields(fields: Any) -> tuple[str | None, ...] | dict[Any, str] | None:
    allowed = f"one of {', '.join(repr(r) for r in ROLES)}"
    if fields is None:
        return None
    if isinstance(fields, Mapping):
        roles = list(fields.values())
        out: Any = dict(fields)
    elif isinstance(fields, (list, tuple)):
        roles = [r for r in fields if r is not None]
        out = tuple(fields)
    else:
        raise TypeError(f"fields must be None, a sequence naming each position of a tuple batch (a role or None), "
                        f"or a dict mapping a dict batch's keys to roles; got {type(fields).__name__}")
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"fields: every role must be {allowed}" + (" (or None for a position to pass through)"
                             if isinstance(out, tuple) else "") + f", got {role!r}")
    if roles.count("image") != 1:
        raise ValueError(f"fields must name exactly one entry 'image', got {fields!r}")
    dupes = sorted({r for r in roles if roles.count(r) > 1})
    if dupes:
        raise ValueError(f"fields names the role {dupes[0]!r} more than once: {fields!r}")
    return out


def _check_dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be None (keep the pipeline's output dtype) or a floating torch.dtype such as "
                        f"torch.float32, torch.float16 or torch.bfloat16, got {dtype!r}")
    return dtype


def _check_bool(name: str, value: Any, allow_none: bool = False) -> Any:
    if isinstance(value, bool) or (allow_none and value is None):
        return value
    raise TypeError(f"{name} must be a bool{' or None' if allow_none else ''}, got {value!r} ({type(value).__name__})")


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor in a (nested) batch structure."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, Mapping):
        for value in obj.values():
            yield from _tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _tensors(value)


class _CudaStreams:
    """The CUDA side of prefetching: a side stream, per-batch events, and the hand-over.

    ``issue(fn, inputs)`` runs ``fn`` (the copy and augmentation of the batch ``inputs``) with
    the side stream current, after making the side stream wait for the consumer's stream, and
    returns the result with an event recorded after its work (CUDA tensors among ``inputs`` are
    marked as used on the side stream: the host drops them before the side stream has read them).
    ``deliver(result, event)`` makes the consumer's (current) stream wait for that event and
    marks every tensor of the result as used on the consumer's stream, so the caching allocator
    does not reuse its memory for a later batch while the consumer still reads it. Nothing here
    waits on the host.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.side = torch.cuda.Stream(device=device)

    def issue(self, fn: Callable[[], Any], inputs: Any) -> tuple[Any, Any]:
        self.side.wait_stream(torch.cuda.current_stream(self.device))
        for tensor in _tensors(inputs):  # a loader that yields CUDA tensors: the side stream reads them after
            if tensor.device.type == "cuda":  # the host has dropped them, so keep their memory until it has
                tensor.record_stream(self.side)
        with torch.cuda.stream(self.side):
            result = fn()
            event = torch.cuda.Event()
            event.record(self.side)
        return result, event

    def deliver(self, result: Any, event: Any) -> Any:
        consumer = torch.cuda.current_stream(self.device)
        consumer.wait_event(event)
        for tensor in _tensors(result):
            if tensor.device.type == "cuda":
                tensor.record_stream(consumer)
        return result


class DeviceLoader:
    """Wrap a ``DataLoader``: move each batch to ``device`` and augment it there, prefetching on CUDA.

    Args:
        loader: a ``torch.utils.data.DataLoader`` or any iterable of batches; each batch is a
            tensor (the images), a tuple or list, or a dict of tensors (see ``fields``).
            ``len()`` and iteration follow it; a ``DataLoader(..., pin_memory=True)`` pins in its
            own thread, which saves ``DeviceLoader`` a host copy per batch on CUDA.
        pipeline: a genaug transform (``ga.Compose([...])``, any single op, generative
            augmenters) applied to each whole batch on the device, or ``None`` to only move and
            convert. A plain callable is refused: wrap it as ``ga.Compose([fn])`` (it then runs
            on the float image batch as an unfused stage) so that targets, labels and outputs
            keep genaug's contract.
        device: where batches go: ``"cuda"``, ``"cuda:N"``, ``"cpu"``, ``"mps"``, ``"meta"``, or a
            ``torch.device``. It must exist on this machine (checked here).
        prefetch: on CUDA, copy and augment batch ``k + 1`` on a side stream while batch ``k`` is
            in use (one batch ahead, like timm's ``PrefetchLoader``). Off CUDA there is nothing to
            overlap with and batches are processed when asked for.
        dtype: output image dtype (a floating dtype). A uint8 batch is then scaled to float 0..1
            on the device *before* the pipeline (so the pipeline works in float without rounding
            back to uint8) and cast to ``dtype`` at the end. ``None``: keep the pipeline's output
            dtype (uint8 in, uint8 out), or float32 for a uint8 image when ``mean``/``std`` are
            given.
        mean, std: normalize at the end, ``(x - mean) / std`` per channel, in 0..1 units
            (torchvision's ``Normalize`` on float images); one value per channel, or one for all.
        channels_last: return images in ``torch.channels_last`` memory format.
        pin_memory: pin host tensors before the copy. ``None`` (default): on CUDA, pin those not
            already pinned; never off CUDA. Ignored off CUDA.
        fields: which entry of a batch plays which role (``"image"``, ``"masks"``, ``"boxes"``,
            ``"keypoints"``, ``"labels"``): a sequence with a role or ``None`` per position of a
            tuple/list batch, or a dict ``{batch key: role}`` for dict batches. Default: position
            0 image and 1 labels; dict keys named after the roles.

    Returns (when iterated):
        Each batch in its input structure, on ``device``, with pipeline outputs in place (see the
        module docstring for the mapping, ``boxes_valid`` and ``keypoints_valid``).

    Example:
        >>> import torch, genaug as ga
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> data = TensorDataset(torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8), torch.arange(10))
        >>> aug = ga.Compose([ga.RandomResizedCrop(24), ga.RandomHorizontalFlip(), ga.ColorJitter(0.4, 0.4)], seed=0)
        >>> loader = ga.DeviceLoader(DataLoader(data, batch_size=4), aug, device="cpu",
        ...                          dtype=torch.float32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
        >>> len(loader)
        3
        >>> images, labels = next(iter(loader))
        >>> images.shape, images.dtype, labels.tolist()
        (torch.Size([4, 3, 24, 24]), torch.float32, [0, 1, 2, 3])
    """

    def __init__(
        self,
        loader: Any,
        pipeline: Transform | None = None,
        device: str | torch.device = "cuda",
        prefetch: bool = True,
        *,
        dtype: torch.dtype | None = None,
        mean: Sequence[float] | float | None = None,
        std: Sequence[float] | float | None = None,
        channels_last: bool = False,
        pin_memory: bool | None = None,
        fields: Sequence[str | None] | Mapping[Any, str] | None = None,
    ) -> None:
        if isinstance(loader, (torch.Tensor, str, bytes, Mapping)) or not isinstance(loader, collections.abc.Iterable):
            raise TypeError(f"loader must be a torch.utils.data.DataLoader or another iterable of batches, got "
                            f"{type(loader).__name__}" + (" (a tensor: wrap it in a TensorDataset and a DataLoader)"
                                                          if isinstance(loader, torch.Tensor) else ""))
        if pipeline is not None and not isinstance(pipeline, Transform):
            kind = type(pipeline).__name__
            hint = (f"; to run a callable on batches, wrap it: ga.Compose([fn]) (it then runs on the float image batch "
                    f"as an unfused stage)" if callable(pipeline) else "")
            raise TypeError(f"pipeline must be a genaug transform (e.g. ga.Compose([...])) or None, got {kind}{hint}")
        self.loader = loader
        self.pipeline = pipeline
        self.device = resolve_device(device)
        self.prefetch = _check_bool("prefetch", prefetch)
        self.dtype = _check_dtype(dtype)
        self.channels_last = _check_bool("channels_last", channels_last)
        self.pin_memory = _check_bool("pin_memory", pin_memory, allow_none=True)
        self.fields = _check_fields(fields)
        if (mean is None) != (std is None):
            raise ValueError("mean and std must be given together (or neither), got "
                             f"mean={mean!r}, std={std!r}")
        self.mean: tuple[float, ...] | None = None
        self.std: tuple[float, ...] | None = None
        self._norm: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # scale, shift, scale / 255
        if mean is not None:
            as_seq = (lambda v: [v] if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
            self.mean = check_numbers("mean", as_seq(mean))
            self.std = check_numbers("std", as_seq(std), positive=True)
            if len(self.mean) != len(self.std):
                raise ValueError(f"mean and std must have the same length, got {len(self.mean)} and {len(self.std)}")
            # (x - mean) / std as x * scale + shift, one fused pass; made once, on the device.
            std_t = torch.tensor(self.std, dtype=torch.float64)
            scale = (1.0 / std_t).to(torch.float32).view(1, -1, 1, 1)
            shift = (-torch.tensor(self.mean, dtype=torch.float64) / std_t).to(torch.float32).view(1, -1, 1, 1)
            self._norm = (scale.to(self.device), shift.to(self.device), (scale / 255.0).to(self.device))
        self._streams: _CudaStreams | None = None

    # ------------------------------------------------------------------ the wrapped loader's interface
    def __len__(self) -> int:
        try:
            return len(self.loader)
        except TypeError:
            raise TypeError(f"the wrapped loader ({type(self.loader).__name__}) has no len(), e.g. a DataLoader "
                            "over an IterableDataset without __len__") from None

    @property
    def dataset(self) -> Any:
        """The wrapped loader's ``dataset``."""
        return self.loader.dataset

    @property
    def sampler(self) -> Any:
        """The wrapped loader's ``sampler`` (e.g. to call ``set_epoch`` on a ``DistributedSampler``)."""
        return self.loader.sampler

    @property
    def batch_size(self) -> Any:
        """The wrapped loader's ``batch_size``."""
        return self.loader.batch_size

    def __repr__(self) -> str:
        extras = "".join(f", {k}={v!r}" for k, v in (("dtype", self.dtype), ("mean", self.mean), ("std", self.std),
                                                     ("channels_last", self.channels_last), ("fields", self.fields))
                         if v not in (None, False))
        return (f"DeviceLoader({type(self.loader).__name__}, pipeline={self.pipeline!r}, device={str(self.device)!r}, "
                f"prefetch={self.prefetch}{extras})")

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[Any]:
        if self.device.type == "cuda" and self.prefetch:
            if self._streams is None:
                self._streams = _CudaStreams(self.device)
            return self._iter_prefetch(self._streams)
        return (self.process(batch) for batch in self.loader)

    def _iter_prefetch(self, streams: Any) -> Iterator[Any]:
        """One batch ahead: queue batch ``k + 1`` on the side stream, then hand batch ``k`` over."""
        it = iter(self.loader)
        try:
            first = next(it)
        except StopIteration:
            return
        pending = streams.issue(lambda: self.process(first), first)
        for raw in it:
            ahead = streams.issue(lambda raw=raw: self.process(raw), raw)
            yield streams.deliver(*pending)
            pending = ahead
        yield streams.deliver(*pending)

    # ------------------------------------------------------------------ one batch
    def process(self, batch: Any) -> Any:
        """Move one batch of the wrapped loader to the device and augment it (no prefetching, no streams).

        This is the per-batch work that iteration does; it is public so that a batch from elsewhere
        can go through the same steps.
        """
        if isinstance(batch, torch.Tensor):
            return self._finish(self._run({"image": batch}, "the batch"))["image"]
        if isinstance(batch, Mapping):
            return self._process_dict(batch)
        if isinstance(batch, (list, tuple)):
            return self._process_sequence(batch)
        raise TypeError(f"the loader yielded a batch of type {type(batch).__name__}; DeviceLoader expects each batch "
                        "to be a tensor (the images), a tuple/list (images, labels, ...) or a dict of tensors - e.g. "
                        "a DataLoader with the default collate_fn over a dataset of (image tensor, label) items")

    def _process_sequence(self, batch: Sequence[Any]) -> Any:
        fields = self.fields
        if isinstance(fields, dict):
            raise TypeError(f"fields was given as a dict (for dict batches), but the loader yielded a "
                            f"{type(batch).__name__}: give a sequence with one role (or None) per position")
        if fields is None:
            fields = ("image", "labels")[: len(batch)]
        elif len(fields) > len(batch):
            raise ValueError(f"fields names {len(fields)} positions {tuple(fields)!r}, but the loader yielded a "
                             f"{type(batch).__name__} of {len(batch)}")
        if not batch:
            raise ValueError(f"the loader yielded an empty {type(batch).__name__}; expected (images, labels, ...)")
        roles = {role: i for i, role in enumerate(fields) if role is not None}
        where = {role: f"batch[{i}] ({role})" for role, i in roles.items()}
        out = self._finish(self._run({role: batch[i] for role, i in roles.items()}, where))
        items = [out[fields[i]] if i < len(fields) and fields[i] is not None else self._move(value)
                 for i, value in enumerate(batch)]
        items += [out[extra] for _, extra in EXTRA_OUTPUTS if extra in out]
        if hasattr(batch, "_fields") and len(items) == len(batch):  # a namedtuple keeps its type
            return type(batch)(*items)
        return list(items) if isinstance(batch, list) else tuple(items)

    def _process_dict(self, batch: Mapping[Any, Any]) -> Any:
        fields = self.fields
        if isinstance(fields, tuple):
            raise TypeError(f"fields was given as a sequence (for tuple batches), but the loader yielded a "
                            f"{type(batch).__name__}: give a dict {{batch key: role}}")
        keys = {key: role for key, role in (fields or {r: r for r in ROLES}).items() if key in batch}
        if "image" not in keys.values():
            wanted = ("the key mapped to 'image' in fields" if fields else "an 'image' entry (or pass fields= mapping "
                      "its keys to 'image', 'labels', ...)")
            raise ValueError(f"a dict batch needs {wanted}; got keys {sorted(map(str, batch))}")
        roles = {role: key for key, role in keys.items()}
        out = self._finish(self._run({role: batch[key] for role, key in roles.items()},
                                     {role: f"batch[{key!r}] ({role})" for role, key in roles.items()}))
        result = {key: out[keys[key]] if key in keys else self._move(value) for key, value in batch.items()}
        for source, extra in EXTRA_OUTPUTS:
            if extra in out:
                result[f"{roles[source]}_valid"] = out[extra]
        return result

    def _run(self, parts: dict[str, Any], where: Any) -> dict[str, torch.Tensor]:
        """Check, move and augment ``{role: tensor}``; return the pipeline's outputs by name."""
        for role, value in parts.items():
            if not isinstance(value, torch.Tensor):
                name = where if isinstance(where, str) else where[role]
                raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}: DeviceLoader moves and "
                                "augments tensors (use a collate_fn / transform that makes tensors, e.g. "
                                "torchvision's v2.PILToTensor or torch.from_numpy)")
        image = parts["image"]
        if image.dim() != 4 or not (image.dtype == torch.uint8 or image.is_floating_point()):
            name = where if isinstance(where, str) else where["image"]
            hint = (": a grayscale batch (B, H, W) needs its channel axis (unsqueeze(1), e.g. in the dataset's "
                    "transform), a single image (C, H, W) needs batching (the DataLoader's batch_size)"
                    if image.dim() == 3 else "")
            raise ValueError(f"{name} must be a uint8 or floating image batch (B, C, H, W), got {image.dtype} of "
                             f"shape {tuple(image.shape)}{hint}")
        labels = parts.get("labels")
        if labels is not None and (labels.dim() not in (1, 2) or labels.shape[0] != image.shape[0]):
            raise ValueError(f"{where['labels']} has shape {tuple(labels.shape)}; labels must be (B,) class ids or "
                             f"(B, K) soft labels with B = {image.shape[0]}. If it is something else (a segmentation "
                             "mask, boxes), say so with fields=, e.g. fields=('image', 'masks')")
        moved = {role: self._move(value) for role, value in parts.items()}
        image = moved.pop("image")
        if self._float_out(image.dtype) is not None and image.dtype == torch.uint8 and self.pipeline is not None:
            image = image.to(torch.float32).div_(255.0)  # the pipeline then works in float, never rounding to uint8
        if self.pipeline is None:
            out: Any = {"image": image, **moved}
            return out
        res = self.pipeline(image, **moved)
        return res if isinstance(res, dict) else {"image": res}

    def _float_out(self, dtype: torch.dtype) -> torch.dtype | None:
        """The floating dtype the image ends in, or None when it keeps the pipeline's output dtype."""
        if self.dtype is not None:
            return self.dtype
        if self._norm is not None:
            return dtype if dtype.is_floating_point else torch.float32
        return None

    def _finish(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """uint8 -> float, normalization and memory format, on the device; the image only."""
        image = out["image"]
        target = self._float_out(image.dtype)
        if target is not None:
            uint8 = image.dtype == torch.uint8
            if self._norm is not None:
                scale, shift, scale_u8 = self._norm
                channels = image.shape[-3]
                if scale.shape[1] not in (1, channels):
                    raise ValueError(f"mean and std have {scale.shape[1]} values, but the images have {channels} "
                                     "channels: give one value per channel (or one for all)")
                scale = scale_u8 if uint8 else scale  # uint8: the 1/255 folded into the scale, one pass
                compute = torch.float64 if target == torch.float64 else torch.float32
                x = image.to(compute)
                if compute == torch.float64:
                    scale, shift = scale.double(), shift.double()
                image = torch.addcmul(shift, x, scale).to(target)
            elif uint8:
                image = image.to(target).div_(255.0) if target != torch.bfloat16 else \
                    image.to(torch.float32).div_(255.0).to(target)
            else:
                image = image.to(target)
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        return {**out, "image": image}

    def _move(self, value: Any) -> Any:
        """A tensor (or tensors nested in lists, tuples and dicts) on the device; anything else as it is."""
        if isinstance(value, torch.Tensor):
            if self.device.type != "cuda":
                return value.to(self.device)
            if value.device.type == "cpu" and self.pin_memory is not False and not value.is_pinned():
                value = value.pin_memory()
            return value.to(self.device, non_blocking=True)
        if isinstance(value, Mapping):
            return {k: self._move(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
            return type(value)(self._move(v) for v in value)
        return value
