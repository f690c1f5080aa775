"""Executing a transform tree on a batch: input checks, stage fusion, output conversion.

``run`` flattens a transform (or a Compose tree) into leaves, groups consecutive geometric leaves
that share warp options into one warp, consecutive colour leaves into one colour map, and applies
pixel leaves one by one. Replace leaves (generative augmenters) split the chain: each runs once on
the whole batch, and the fused groups before and after it run as usual (chunked on the CPU). This
is the single mechanism every transform goes through.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import torch

from genaug.transforms.base import (DRAWN_FOR, Params, Transform, allow_stage_output, needs_autograd, new_result, on_selected,
                                   scratch, scratch_off, take_rows, to_device)
from genaug.transforms import opencv_backend
from genaug.transforms.photometric import apply_color_affine
from genaug.transforms.warp import WarpOptions, points_inside, warp_batch


class Stage(NamedTuple):
    """One leaf transform of a flattened tree with its (gated) params and warp overrides."""

    leaf: Transform
    params: Params
    overrides: dict[str, Any]


@dataclass
class Batch:
    """A batch in genaug's working form: float image ``(B, C, H, W)`` plus batched targets.

    A uint8 input stays uint8 in ``image`` until :meth:`working` scales it to float 0..1, so
    that a chunked run converts each chunk while it is in the cache.
    """

    image: torch.Tensor
    input_dtype: torch.dtype
    unbatched: bool
    masks: torch.Tensor | None = None  # (B, K, H, W), original dtype
    mask_shape: tuple[int, ...] | None = None  # user's mask shape without the batch dim
    boxes: torch.Tensor | None = None  # (B, N, 4) float
    boxes_valid: torch.Tensor | None = None  # (B, N) bool
    keypoints: torch.Tensor | None = None  # (B, N, 2) float
    keypoints_valid: torch.Tensor | None = None  # (B, N) bool
    labels: torch.Tensor | None = None
    normalized: bool = False
    #: the image is a stand-in for targets replayed without their image (the adapters'
    #: ``run_targets``): replace stages then only mark the targets of the samples they replace.
    placeholder: bool = False

    @property
    def batch_size(self) -> int:
        return self.image.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[-2]), int(self.image.shape[-1])

    @property
    def has_targets(self) -> bool:
        return any(t is not None for t in (self.masks, self.boxes, self.keypoints, self.labels))

    @classmethod
    def from_inputs(
        cls,
        image: Any,
        masks: Any = None,
        boxes: Any = None,
        keypoints: Any = None,
        labels: Any = None,
    ) -> Batch:
        """Validate user inputs and bring them to the working form (never modifying them)."""
        if not isinstance(image, torch.Tensor):
            raise TypeError(
                f"image must be a torch.Tensor of shape (B, C, H, W) or (C, H, W), got {type(image).__name__}"
            )
        if image.dim() not in (3, 4):
            raise ValueError(
                f"image must have shape (B, C, H, W) or (C, H, W), got {tuple(image.shape)} ({image.dim()} dims)"
            )
        if image.dtype != torch.uint8 and not image.is_floating_point():
            raise TypeError(f"image dtype must be torch.uint8 or a floating dtype, got {image.dtype}")
        unbatched = image.dim() == 3
        x = image.unsqueeze(0) if unbatched else image
        if x.shape[1] < 1 or x.shape[2] < 1 or x.shape[3] < 1:
            raise ValueError(f"image must have at least one channel, row and column, got {tuple(image.shape)}")
        if x.dtype == torch.uint8:
            work = x  # scaled to float by working(), chunk by chunk
        else:
            # may alias the input: every op below is out of place
            work = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
            if work.device.type == "cpu" and work.numel() and not _all_finite(work):
                # Checked on the CPU only: on an accelerator this would cost a host sync per batch.
                raise ValueError("image contains NaN or infinite values")
        batch = cls(image=work, input_dtype=image.dtype, unbatched=unbatched)
        b, (h, w) = batch.batch_size, batch.size
        if masks is not None:
            batch.masks, batch.mask_shape = _batched_masks(masks, unbatched, b, (h, w))
        if boxes is not None:
            batch.boxes = _batched_points("boxes", boxes, 4, unbatched, b)
            bx = batch.boxes
            batch.boxes_valid = (bx[..., 2] > bx[..., 0]) & (bx[..., 3] > bx[..., 1])
        if keypoints is not None:
            batch.keypoints = _batched_points("keypoints", keypoints, 2, unbatched, b)
            kp = batch.keypoints
            batch.keypoints_valid = points_inside(kp, (h, w))
        if labels is not None:
            if unbatched and isinstance(labels, (int, np.integer)) and not isinstance(labels, bool):
                labels = torch.tensor(int(labels))  # one class id for one (C, H, W) image
            if not isinstance(labels, torch.Tensor):
                raise TypeError(f"labels must be a torch.Tensor (or one int for a single (C, H, W) image), "
                                f"got {type(labels).__name__}")
            if not unbatched and (labels.dim() == 0 or labels.shape[0] != b):
                raise ValueError(f"labels must have {b} entries (one per image), got shape {tuple(labels.shape)}")
            batch.labels = labels
        return batch

    def working(self, pooled: bool = False) -> Batch:
        """This batch with a float image (uint8 scaled to 0..1).

        ``pooled``: the float image may go to a reused :func:`scratch` buffer (the chunked
        executor, which copies each chunk's result out before converting the next chunk).
        """
        if self.image.dtype != torch.uint8:
            return self
        x = self.image
        out = scratch("chunk_input", tuple(x.shape), torch.float32, x.device) if pooled else torch.empty_like(x, dtype=torch.float32)
        # converted in place (torch.div of the uint8 tensor would cast it to a float temporary first)
        return replace(self, image=out.copy_(x).div_(255.0))

    @property
    def output_dtype(self) -> torch.dtype:
        """The dtype :meth:`output_image` returns."""
        if self.input_dtype == torch.uint8:
            return torch.float32 if self.normalized else torch.uint8
        return self.input_dtype

    def output_image(
        self, out: torch.Tensor | None = None, work: torch.Tensor | None = None, in_unit_range: bool = False
    ) -> torch.Tensor:
        """The image in the user's dtype: uint8 in, uint8 out (rounded, clamped) unless normalized.

        With ``out`` (shaped like the image, of :attr:`output_dtype`) the result is written there;
        ``work``, a float32 tensor shaped like the image, then holds the 0..255 values on the way
        (a chunked run passes the same two buffers for every chunk instead of allocating them).
        ``in_unit_range``: the last stage clamped every value to 0..1, so the clamp is skipped
        (``255 * x`` is then in 0..255 already).
        """
        image = self.image
        if self.input_dtype == torch.uint8 and not self.normalized:
            scaled = image.mul(255.0) if work is None else torch.mul(image, 255.0, out=work)
            scaled.round_()
            if not in_unit_range:
                scaled.clamp_(0, 255)
            return scaled.to(torch.uint8) if out is None else out.copy_(scaled)
        return image.to(self.output_dtype) if out is None else out.copy_(image)

    def outputs(self, image: torch.Tensor | None = None) -> torch.Tensor | dict[str, torch.Tensor]:
        """Convert back to the user's dtype and shapes: a tensor, or a dict when targets were given.

        ``image``: the image already converted by :meth:`output_image` (a chunked run does that
        chunk by chunk).
        """
        image = self.output_image() if image is None else image
        squeeze = (lambda t: t[0]) if self.unbatched else (lambda t: t)
        if not self.has_targets:
            return squeeze(image)
        result: dict[str, torch.Tensor] = {"image": squeeze(image)}
        if self.masks is not None:
            assert self.mask_shape is not None
            b, (h, w) = self.batch_size, self.size
            masks = self.masks.reshape(b, *self.mask_shape[:-2], h, w)
            result["masks"] = squeeze(masks)
        for name in ("boxes", "boxes_valid", "keypoints", "keypoints_valid", "labels"):
            value = getattr(self, name)
            if value is not None:
                result[name] = value if name == "labels" else squeeze(value)
        return result


def _all_finite(x: torch.Tensor) -> bool:
    """All values finite? One cheap reduction; the full elementwise check only if the sum is not."""
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def _batched_masks(
    masks: Any, unbatched: bool, batch_size: int, size: tuple[int, int]
) -> tuple[torch.Tensor, tuple[int, ...]]:
    if not isinstance(masks, torch.Tensor):
        raise TypeError(f"masks must be a torch.Tensor, got {type(masks).__name__}")
    expected = "(H, W) or (K, H, W)" if unbatched else "(B, H, W) or (B, K, H, W)"
    lo, hi = (2, 3) if unbatched else (3, 4)
    if not lo <= masks.dim() <= hi:
        raise ValueError(f"masks must have shape {expected}, got {tuple(masks.shape)}")
    m = masks.unsqueeze(0) if unbatched else masks
    if m.shape[0] != batch_size:
        raise ValueError(f"masks has batch size {m.shape[0]}, but image has {batch_size}")
    if tuple(m.shape[-2:]) != size:
        raise ValueError(f"masks spatial size {tuple(m.shape[-2:])} does not match the image's {size}")
    shape = tuple(m.shape[1:])
    return m.reshape(batch_size, math.prod(shape[:-2]), *size), shape


def _batched_points(name: str, value: Any, width: int, unbatched: bool, batch_size: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    expected = f"(N, {width})" if unbatched else f"(B, N, {width})"
    if value.dim() != (2 if unbatched else 3) or value.shape[-1] != width:
        raise ValueError(f"{name} must have shape {expected}, got {tuple(value.shape)}")
    v = value.unsqueeze(0) if unbatched else value
    if v.shape[0] != batch_size:
        raise ValueError(f"{name} has batch size {v.shape[0]}, but image has {batch_size}")
    return v.to(torch.float64 if v.dtype == torch.float64 else torch.float32)


# ---------------------------------------------------------------------------------- execution


def _on_cpu(params: Params) -> Params:
    return {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in params.items()}


def _warp_options(stage: Stage) -> WarpOptions:
    options: WarpOptions = stage.leaf.warp_options  # type: ignore[attr-defined]
    overrides = {k: v for k, v in stage.overrides.items() if v is not None}
    return replace(options, **overrides) if overrides else options


def group_warp_options(stages: list[Stage]) -> WarpOptions:
    """The warp options of a fused geometric group: the first stage's, antialiased if any stage asks for it
    (antialias is decided for the fused matrix as a whole)."""
    options = [_warp_options(s) for s in stages]
    return replace(options[0], antialias=any(o.antialias for o in options))


def chain_matrix(stages: list[Stage], size: tuple[int, int], batch_size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """The fused ``(B, 3, 3)`` matrix of consecutive geometric stages and the output size.

    A sample a stage does not apply to gets the stage's neutral matrix (identity, or a sized op's
    centre crop / whole-image resize), so every sample ends at the same size.
    """
    total: np.ndarray | None = None  # in NumPy: a few B x 9 numbers (see geometric.py)
    for stage in stages:
        params = _on_cpu(stage.params)
        m = stage.leaf.matrix(params, size).detach().to("cpu", torch.float64).numpy()
        apply = params["apply"].numpy()  # (CPU params: no sync)
        if not apply.all():
            m = np.where(apply.reshape(-1, 1, 1), m, stage.leaf.neutral_matrix(size, batch_size).to("cpu", torch.float64).numpy())
        total = m if total is None else total @ m
        size = stage.leaf.output_size(size)
    if total is None:  # no stage: the identity (a sample that picked no size-keeping alternative)
        return torch.eye(3, dtype=torch.float64).expand(batch_size, 3, 3), size
    return torch.from_numpy(np.ascontiguousarray(total)), size


def _run_geometric(stages: list[Stage], batch: Batch, options: WarpOptions) -> Batch:
    total, size = chain_matrix(stages, batch.size, batch.batch_size)
    return warp_batch(batch, total, size, options)


def fused_color_affine(stages: list[Stage], mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The fused colour map ``x -> a @ x + t`` of consecutive colour stages: ``a`` (B, C, C), ``t`` (B, C).

    ``mean`` (B, C) is the mean colour of the group's input (contrast needs it; each later op sees
    the mean of the previous op's output). A sample a stage does not apply to gets its identity.
    """
    b, c = mean.shape
    a_total: torch.Tensor | None = None
    t_total = mean.new_zeros(b, c)
    for k, stage in enumerate(stages):
        a, t = stage.leaf.color_affine(stage.params, mean, c)
        apply = stage.params["apply"]
        if not bool(apply.cpu().all()):  # (CPU params: no sync)
            gate = to_device(apply, mean.device)
            a = torch.where(gate.view(-1, 1, 1), a, torch.eye(c, dtype=mean.dtype, device=mean.device))
            t = torch.where(gate.view(-1, 1), t, 0.0)
        if a_total is None:
            a_total, t_total = a, t
        else:
            a_total, t_total = a @ a_total, (a @ t_total.unsqueeze(-1)).squeeze(-1) + t
        if k + 1 < len(stages):  # the next op's contrast sees the mean of this op's output
            mean = (a @ mean.unsqueeze(-1)).squeeze(-1) + t
    assert a_total is not None
    return a_total, t_total


def uses_mean(stages: list[Stage]) -> bool:
    """Whether a colour group's map depends on the mean colour of its input (contrast)."""
    return any(getattr(s.leaf, "uses_mean", False) for s in stages)


def _check_unit_range(stage: Stage, batch: Batch) -> None:
    """Refuse an op that works on 0..1 images after ``Normalize`` (it would clamp the normalized values)."""
    if batch.normalized and getattr(stage.leaf, "needs_unit_range", True):
        raise ValueError(f"{type(stage.leaf).__name__} must come before Normalize: it works on images in 0..1 and "
                         "would clamp the normalized values to that range; move Normalize to the end")


def _run_color(stages: list[Stage], batch: Batch) -> Batch:
    """The fused colour map (to a :func:`scratch` buffer in a pooled chunk, see :func:`_run_chunked`)."""
    for stage in stages:
        _check_unit_range(stage, batch)
    x = batch.image
    b, c = x.shape[:2]
    mean = x.mean(dim=(2, 3)) if uses_mean(stages) else x.new_zeros(b, c)
    a_total, t_total = fused_color_affine(stages, mean)
    out = scratch("color_out", (b, c, x.shape[2] * x.shape[3]), x.dtype, x.device, avoid=x) if _pooled() else None
    return replace(batch, image=apply_color_affine(x, a_total, t_total, out=out))


def _run_pixel(stage: Stage, batch: Batch) -> Batch:
    _check_unit_range(stage, batch)
    x = batch.image
    params = _on_cpu(stage.params)

    def rows(index: torch.Tensor | None) -> Params:
        if index is None:
            return params
        return {k: (v[index] if isinstance(v, torch.Tensor) and v.dim() > 0 else v) for k, v in params.items()}

    # The op runs on the samples it applies to only (p=0.5 halves a blur's cost). On a whole chunk
    # of a pooled run its result may go to a scratch buffer (see _run_chunked).
    with allow_stage_output(_pooled() and bool(params["apply"].all())):
        out = on_selected(x, params["apply"], lambda subset, index: stage.leaf.apply(subset, rows(index)))
    normalized = batch.normalized or getattr(stage.leaf, "produces_normalized", False)
    return replace(batch, image=out, normalized=normalized)


def _run_replace(stage: Stage, batch: Batch) -> Batch:
    """A stage that replaces whole samples (a generative augmenter): new images and labels.

    The leaf makes the new images of the samples its ``apply`` picks (chosen on the CPU: no sync)
    in one batched call and says what the labels of the whole batch become. The targets of a
    replaced sample no longer describe its image: its masks are zeroed (the background class) and
    its boxes and keypoints marked invalid (coordinates kept, so shapes stay fixed).
    """
    leaf = stage.leaf
    if batch.normalized:
        raise ValueError(f"{type(leaf).__name__} must come before Normalize: it works on images in 0..1")
    index = stage.params["apply"].cpu().nonzero().squeeze(1)  # CPU params: no sync
    image, labels = batch.image, batch.labels
    if not batch.placeholder:
        new, labels = leaf.replace_samples(batch, stage.params, index)
        if len(index) == batch.batch_size:
            image = new
        elif len(index):
            image = image.index_copy(0, to_device(index, image.device), new)
    if not len(index):
        return replace(batch, labels=labels)

    def cleared(t: torch.Tensor | None, value: Any) -> torch.Tensor | None:
        return None if t is None else t.index_fill(0, to_device(index, t.device), value)

    return replace(batch, image=image, labels=labels, masks=cleared(batch.masks, 0),
                   boxes_valid=cleared(batch.boxes_valid, False), keypoints_valid=cleared(batch.keypoints_valid, False))


def _fuse_key(stage: Stage) -> Any:
    options = _warp_options(stage)
    return ("geometric", options.interpolation, options.padding_mode, options.fill)


class Alternatives:
    """The stage of a OneOf / SomeOf whose children change the image size (built per call).

    Every child acts on the container's input, so a sample's result is the result of the
    children it picked, run alone. Samples are grouped by the set of children they picked (a few
    groups, never a loop over samples); each group follows its own path of leaves. When every
    leaf is geometric with the same warp options, the paths are just matrices: the stage is
    itself geometric and fuses with its neighbours into one warp. Otherwise each group is run on
    its own samples and the results are put back in place.

    A sample that picked no child gets the identity when the children keep the image size, and
    otherwise the first child in its skipped form (a crop's centre crop, a resize's full resize).
    """

    def __init__(self, container: Any, overrides: dict[str, Any], flat: list[tuple[Transform, Params, dict[str, Any]]]):
        self.container, self.overrides = container, overrides
        leaves = [Stage(*f) for f in flat]
        replacing = [type(s.leaf).__name__ for s in leaves if s.leaf.kind == "replace"]
        if replacing:
            raise ValueError(
                f"{replacing[0]} cannot be an alternative of {type(container).__name__} next to children that change "
                f"the image size (each group of samples would follow its own path); put it before or after the "
                f"{type(container).__name__}, or use alternatives that keep the size"
            )
        self.per_sample = all(s.leaf.per_sample for s in leaves)
        self.needs_color_channels = any(s.leaf.needs_color_channels for s in leaves)
        self.produces_normalized = any(getattr(s.leaf, "produces_normalized", False) for s in leaves)
        if all(s.leaf.kind == "geometric" for s in leaves) and len({_fuse_key(s) for s in leaves}) == 1:
            self.kind = "geometric"
            self.warp_options = group_warp_options(leaves)
        else:
            self.kind = "alternatives"

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return self.container.output_size(size)

    def paths(self, params: Params) -> list[tuple[torch.Tensor, list[Stage]]]:
        """``(sample indices, stages)`` per group of samples that picked the same children."""
        chosen = params["picks"]
        h, w = params[DRAWN_FOR]["size"]
        picks = chosen
        if self.container.output_size((h, w)) != (h, w):
            picks = chosen.clone()
            picks[:, 0] |= ~chosen.any(dim=1)  # nothing picked: the first child, skipped (gate False)
        patterns, inverse = torch.unique(picks, dim=0, return_inverse=True)
        out = []
        for k, pattern in enumerate(patterns):
            index = (inverse == k).nonzero().squeeze(1)
            rows = take_rows(params, index)
            stages = [
                Stage(*leaf)
                for c in pattern.nonzero().flatten().tolist()  # a CPU tensor: no device sync
                for leaf in self.container.transforms[c].leaves(rows[str(c)], rows["picks"][:, c], self.overrides)
            ]
            out.append((index, stages))
        return out

    def matrix(self, params: Params, size: tuple[int, int]) -> torch.Tensor:
        total = torch.empty(params["picks"].shape[0], 3, 3, dtype=torch.float64)
        for index, stages in self.paths(params):
            total[index] = chain_matrix(stages, size, len(index))[0]
        return total


def _run_alternatives(stage: Stage, batch: Batch) -> Batch:
    out: Batch | None = None
    for index, stages in stage.leaf.paths(_on_cpu(stage.params)):  # type: ignore[attr-defined]
        part = _run_groups(group_stages(stages), _select_batch(batch, index))
        if out is None:
            out = _allocate_like(part, batch)
        elif part.normalized != out.normalized:
            raise ValueError(f"the children of {type(stage.leaf.container).__name__} must all normalize or none")  # type: ignore[attr-defined]
        out = _scatter(out, part, index)
    assert out is not None
    return out


def group_stages(stages: list[Stage]) -> list[tuple[str, list[Stage]]]:
    """Group consecutive fusable stages: geometric ones sharing warp options, and colour ones."""
    groups: list[tuple[str, list[Stage]]] = []
    last_key: Any = None
    for stage in stages:
        kind = stage.leaf.kind
        # antialias is decided for the fused matrix as a whole, so it does not split a chain.
        if kind == "geometric":
            key: Any = _fuse_key(stage)
        else:
            key = kind
        if kind in ("geometric", "color") and groups and key == last_key:
            groups[-1][1].append(stage)
        else:
            groups.append((kind, [stage]))
        last_key = key if kind in ("geometric", "color") else None
    return groups


#: On the CPU a large batch is processed in chunks of about this many bytes of (float) image, so
#: that the passes of a pipeline (warp, fill, colour map, blur) reuse the cache instead of
#: streaming the whole batch through memory each time (with the CPU blur, 224x224 float32 at
#: B=256 went from 233 to 621 images/s: benchmarks/RESULTS.md, run 6). Accelerators get the
#: whole batch.
CPU_CHUNK_BYTES = 8 << 20


_calls = threading.local()


def _depth() -> int:
    """How many :func:`run` calls are in progress in this thread (more than 1: a stage called genaug)."""
    return getattr(_calls, "depth", 0)


def _pooled() -> bool:
    """Whether the stage running now may put its result in a scratch buffer (see :func:`_run_chunked`)."""
    return getattr(_calls, "pooled", False)


def run(transform: Transform, params: Params, batch: Batch) -> torch.Tensor | dict[str, torch.Tensor]:
    """Apply ``transform`` with ``params`` to ``batch`` and return the user-facing result."""
    outer = _pooled()
    _calls.depth, _calls.pooled = _depth() + 1, False  # a genaug call made by a stage pools nothing
    try:
        with allow_stage_output(False), scratch_off(needs_autograd(batch.image)):
            return _run(transform, params, batch)
    finally:
        _calls.depth, _calls.pooled = _calls.depth - 1, outer


def _run(transform: Transform, params: Params, batch: Batch) -> torch.Tensor | dict[str, torch.Tensor]:
    if batch.batch_size == 0:
        return _empty(transform, batch)
    stages = [Stage(*leaf) for leaf in transform.leaves(params, None)]
    channels = batch.image.shape[1]
    for stage in stages:
        if stage.leaf.kind == "geometric":
            _warp_options(stage).check_channels(channels)
        if stage.leaf.needs_color_channels and channels not in (1, 3):
            raise ValueError(f"{type(stage.leaf).__name__} needs 1- or 3-channel images, got {channels} channels")
    segments = _segments(group_stages(stages)) or [("fused", [])]
    if getattr(transform, "backend", "torch") == "opencv" and segments[0][0] == "fused":
        # the leading ops OpenCV has kernels for run there; the rest (if any) below, as usual
        done = opencv_backend.run(segments[0][1], batch)
        if done is not None:
            batch, rest = done
            segments = ([("fused", rest)] if rest else []) + segments[1:]
    # converted: the image is in the output dtype already (still uint8 when OpenCV ran everything)
    converted = batch.image.dtype == torch.uint8
    for k, (kind, groups) in enumerate(segments):
        if kind == "replace":  # once on the whole batch: one forward pass of the model
            batch, converted = _run_groups(groups, batch.working()), False
        else:
            batch, converted = _run_chunked(groups, batch, final=k == len(segments) - 1)
    return batch.outputs(image=batch.image if converted else None)


def _segments(groups: list[tuple[str, list[Stage]]]) -> list[tuple[str, list[tuple[str, list[Stage]]]]]:
    """Split the groups at replace stages: ``[("fused", groups), ("replace", [group]), ...]``."""
    segments: list[tuple[str, list[tuple[str, list[Stage]]]]] = []
    for group in groups:
        kind = "replace" if group[0] == "replace" else "fused"
        if kind == "fused" and segments and segments[-1][0] == "fused":
            segments[-1][1].append(group)
        else:
            segments.append((kind, [group]))
    return segments


def _run_chunked(groups: list[tuple[str, list[Stage]]], batch: Batch, final: bool) -> tuple[Batch, bool]:
    """Run ``groups`` over the batch, in cache-sized chunks on the CPU (see :data:`CPU_CHUNK_BYTES`).

    With ``final`` each chunk's image is converted to the output dtype while in the cache; the
    second value says whether that happened.
    """
    n = _chunk_size([s for _, group in groups for s in group], batch)
    if n >= batch.batch_size:
        return _run_groups(groups, batch.working()), False
    # A chunk's float images live only until its result is copied into the output, so in a plain
    # chain of stages (no alternatives, which hold their input while each group of samples runs,
    # and not inside another genaug call made by a stage) the executor's own large temporaries go
    # to scratch buffers reused from chunk to chunk instead of fresh memory.
    pooled = final and _depth() == 1 and all(kind in ("geometric", "color", "pixel") for kind, _ in groups) \
        and not needs_autograd(batch.image)
    parts = []
    image: torch.Tensor | None = None  # with final: the whole output, written chunk by chunk
    clamped = _ends_clamped(groups)
    for i in range(0, batch.batch_size, n):
        _calls.pooled = pooled
        try:
            part = _run_groups(_slice_groups(groups, i, i + n), _slice_batch(batch, i, i + n).working(pooled))
        finally:
            _calls.pooled = False
        if final:
            x = part.image
            if image is None:
                image = new_result((batch.batch_size, *x.shape[1:]), part.output_dtype, x.device)
            work = scratch("output_work", tuple(x.shape), torch.float32, x.device) if part.output_dtype == torch.uint8 else None
            part = replace(part, image=part.output_image(out=image[i:i + x.shape[0]], work=work, in_unit_range=clamped))
        parts.append(part)
    return _concat(parts, batch, image=image), final


def _ends_clamped(groups: list[tuple[str, list[Stage]]]) -> bool:
    """Whether the last group leaves every sample in 0..1: a colour map, or a clamping pixel op
    (:attr:`~genaug.transforms.base.Transform.clamps_to_unit_range`) that applies to every sample."""
    if not groups:
        return False
    kind, group = groups[-1]
    if kind == "color":
        return True
    last = group[-1]
    return kind == "pixel" and getattr(last.leaf, "clamps_to_unit_range", False) and bool(_on_cpu(last.params)["apply"].all())


def _run_groups(groups: list[tuple[str, list[Stage]]], batch: Batch) -> Batch:
    for kind, group in groups:
        if kind == "geometric":
            batch = _run_geometric(group, batch, group_warp_options(group))
        elif kind == "color":
            batch = _run_color(group, batch)
        elif kind == "alternatives":
            for stage in group:
                batch = _run_alternatives(stage, batch)
        elif kind == "replace":
            for stage in group:
                batch = _run_replace(stage, batch)
        else:
            for stage in group:
                batch = _run_pixel(stage, batch)
    return batch


def _chunk_size(stages: list[Stage], batch: Batch) -> int:
    """Samples per chunk: the whole batch off the CPU or when a stage might mix samples."""
    if batch.image.device.type != "cpu" or not all(s.leaf.per_sample for s in stages):
        return batch.batch_size
    h, w = batch.size
    area = h * w
    for stage in stages:  # the largest intermediate image decides
        h, w = stage.leaf.output_size((h, w))
        area = max(area, h * w)
    per_sample = area * batch.image.shape[1] * (8 if batch.image.dtype == torch.float64 else 4)
    return max(1, CPU_CHUNK_BYTES // per_sample)


_BATCHED_FIELDS = ("image", "masks", "boxes", "boxes_valid", "keypoints", "keypoints_valid")


def _slice_batch(batch: Batch, start: int, stop: int) -> Batch:
    fields = {name: getattr(batch, name) for name in _BATCHED_FIELDS}
    return replace(batch, **{k: (v[start:stop] if v is not None else None) for k, v in fields.items()})


def _select_batch(batch: Batch, index: torch.Tensor) -> Batch:
    """The samples ``index`` (a CPU index tensor) of ``batch``."""
    fields = {name: getattr(batch, name) for name in _BATCHED_FIELDS}
    picked = {k: (v.index_select(0, to_device(index, v.device)) if v is not None else None) for k, v in fields.items()}
    return replace(batch, **picked)


def _allocate_like(part: Batch, whole: Batch) -> Batch:
    """An uninitialised batch of ``whole``'s batch size with ``part``'s per-sample shapes."""
    b = whole.batch_size
    fields = {name: getattr(part, name) for name in _BATCHED_FIELDS}
    return replace(part, labels=whole.labels, **{k: (v.new_empty((b, *v.shape[1:])) if v is not None else None) for k, v in fields.items()})


def _scatter(out: Batch, part: Batch, index: torch.Tensor) -> Batch:
    """``out`` with the samples ``index`` replaced by ``part``'s."""
    fields = {}
    for name in _BATCHED_FIELDS:
        target, value = getattr(out, name), getattr(part, name)
        fields[name] = None if target is None else target.index_copy(0, to_device(index, target.device), value)
    return replace(out, **fields)


def _slice_groups(groups: list[tuple[str, list[Stage]]], start: int, stop: int) -> list[tuple[str, list[Stage]]]:
    """Params have one row per sample (the ``sample_params`` contract): take rows start..stop."""
    rows = slice(start, stop)
    return [(kind, [s._replace(params=take_rows(s.params, rows)) for s in group]) for kind, group in groups]


def _concat(parts: list[Batch], original: Batch, image: torch.Tensor | None = None) -> Batch:
    """The parts joined along the batch; ``image``, when given, is the already joined image."""
    fields = {}
    for name in _BATCHED_FIELDS:
        values = [getattr(p, name) for p in parts]
        if name == "image" and image is not None:
            fields[name] = image
        else:
            fields[name] = None if values[0] is None else torch.cat(values)
    return replace(parts[0], labels=original.labels, **fields)


def _empty(transform: Transform, batch: Batch) -> torch.Tensor | dict[str, torch.Tensor]:
    """An empty batch still gets the output's spatial size (crops and resizes change it)."""
    size, normalized = batch.size, False
    batch = batch.working()
    b, c = batch.image.shape[:2]
    for leaf, params, _ in transform.leaves(transform.sample_params(0, size, torch.Generator()), None):
        if leaf.kind == "replace":  # no sample to replace, but the labels take the op's output form
            batch = _run_replace(Stage(leaf, params, {}), replace(batch, image=batch.image.new_zeros(b, c, *size)))
        size = leaf.output_size(size)
        normalized = normalized or getattr(leaf, "produces_normalized", False)
    image = batch.image.new_zeros(b, c, *size)
    masks = None if batch.masks is None else batch.masks.new_zeros(b, batch.masks.shape[1], *size)
    return replace(batch, image=image, masks=masks, normalized=normalized).outputs()
