"""The Transform base class: argument capture, explicit randomness, parameter sampling, replay.

Every genaug transform is a :class:`Transform`. A transform never loops over samples: it samples a
dict of parameter tensors with a leading batch dimension (on the CPU, from its own
``torch.Generator``) and applies them to the whole batch at once. Three kinds exist:

* ``"geometric"`` ops implement :meth:`Transform.matrix` (a per-sample 3x3 matrix mapping output
  pixel coordinates to input pixel coordinates); :class:`~genaug.transforms.compose.Compose`
  multiplies consecutive ones and resamples once.
* ``"color"`` ops implement :meth:`Transform.color_affine` (a per-sample affine color map);
  consecutive ones are multiplied into one map, applied in one pass.
* ``"pixel"`` ops implement :meth:`Transform.apply` on the image tensor.
* ``"replace"`` ops implement :meth:`Transform.replace_samples`: they replace whole samples (image and
  label), e.g. with a generative model's output (:mod:`genaug.generative.augment`). The executor
  runs each once on the whole batch and marks the masks, boxes and keypoints of the samples they
  replace as no longer applying.

Adding a transform means writing one class with ``_sample`` and one of those four methods; the
call path, replay, targets, serialization and the adapters come from here.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import inspect
import math
import os
import sys
import threading
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import torch
from torch.utils.data import get_worker_info

Params = dict[str, Any]

_REGISTRY: dict[str, type[Transform]] = {}


#: Key of the entry in every params dict that says which op drew it and for which input size.
DRAWN_FOR = "drawn_for"


def drawn_for(transform: Transform, size: tuple[int, int]) -> dict[str, Any]:
    """The stamp ``sample_params`` puts in its params: ``{"op": class name, "size": (h, w)}``."""
    return {"op": type(transform).__name__, "size": (int(size[0]), int(size[1]))}


def registered_transforms() -> dict[str, type[Transform]]:
    """Name → class of every Transform subclass (used by :func:`genaug.from_dict`)."""
    return dict(_REGISTRY)


def mix_seeds(*seeds: int) -> int:
    """Combine integers into one well-mixed 63-bit seed (NumPy's SeedSequence hashing)."""
    state = np.random.SeedSequence([int(s) % (2**64) for s in seeds]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


def expand_params(params: Params, batch_size: int) -> Params:
    """Expand every tensor in a (nested) params dict from batch 1 to ``batch_size``."""
    out: Params = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out[key] = expand_params(value, batch_size)
        elif isinstance(value, torch.Tensor) and value.dim() > 0:
            out[key] = value.expand(batch_size, *value.shape[1:]).clone()
        else:
            out[key] = value
    return out


#: Largest size, padding or kernel extent (pixels per side) an argument may ask for: far above
#: any real image, low enough that a typo such as ``size=10**9`` fails at construction instead of
#: trying to allocate the output at the first call.
MAX_EXTENT = 1 << 20


def _is_number(value: Any) -> bool:
    """A Python ``int`` or ``float`` (``bool`` is not a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _fmt(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) and abs(x) < 1e15 else repr(x)


def _allowed(low: float, high: float, low_open: bool = False, high_open: bool = False) -> str:
    """'a finite number', 'a finite number > 0', 'a finite number in [0, 1]', ..."""
    has_low, has_high = math.isfinite(low), math.isfinite(high)
    if has_low and has_high:
        return f"a finite number in {'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}{')' if high_open else ']'}"
    if has_low:
        return f"a finite number {'>' if low_open else '>='} {_fmt(low)}"
    if has_high:
        return f"a finite number {'<' if high_open else '<='} {_fmt(high)}"
    return "a finite number"


def check_number(
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Validate a finite real number within ``[low, high]`` (ends open on request); return it as float.

    ``bool`` is not a number; NaN and infinities are rejected.

    Example:
        >>> check_number("mean", 0.25, low=-1.0, high=1.0)
        0.25
        >>> check_number("mean", float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: mean must be a finite number, got nan
    """
    allowed = _allowed(low, high, low_open, high_open)
    if not _is_number(value):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    if (
        not _is_finite(value)
        or value < low
        or value > high
        or (low_open and value == low)
        or (high_open and value == high)
    ):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return float(value)


def check_int(name: str, value: Any, *, low: int = 0, high: int = MAX_EXTENT) -> int:
    """Validate an ``int`` (not ``bool``, not a float) within ``[low, high]``.

    Example:
        >>> check_int("padding", 4)
        4
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int in [{low}, {high}], got {value!r} ({type(value).__name__})")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")
    return int(value)


def take_rows(params: Params, rows: slice | torch.Tensor) -> Params:
    """The params of samples ``rows`` (a slice or CPU index tensor) of a (nested) params dict.

    Every tensor with a batch dimension is indexed; nested dicts (a container's children) recurse;
    anything else (the ``drawn_for`` stamp) is kept.

    Example:
        >>> import torch
        >>> p = {"apply": torch.tensor([True, False, True]), "0": {"angle": torch.tensor([1.0, 2.0, 3.0])}}
        >>> take_rows(p, torch.tensor([2]))["0"]["angle"].tolist()
        [3.0]
    """
    out: Params = {}
    for key, value in params.items():
        if isinstance(value, dict) and key != DRAWN_FOR:
            out[key] = take_rows(value, rows)
        elif isinstance(value, torch.Tensor) and value.dim() > 0:
            out[key] = value[rows]
        else:
            out[key] = value
    return out


#: Seeds a ``torch.Generator`` accepts: any int from -2**63 to 2**64 - 1.
SEED_RANGE = (-(2**63), 2**64 - 1)


def check_seed(name: str, value: Any) -> int | None:
    """Validate a seed: ``None`` or an ``int`` (not ``bool``) that ``torch.Generator.manual_seed`` accepts.

    Example:
        >>> check_seed("seed", 2**64)
        Traceback (most recent call last):
        ...
        ValueError: seed must be None or an int in [-2**63, 2**64 - 1], got 18446744073709551616
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, got {value!r} ({type(value).__name__})")
    if not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
        raise ValueError(f"{name} must be None or an int in [-2**63, 2**64 - 1], got {value!r}")
    return int(value)


def check_probability(name: str, value: Any) -> float:
    """Validate a probability argument (a finite number in [0, 1], not a bool) and return it as a float."""
    if not _is_number(value):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r} ({type(value).__name__})")
    if not (_is_finite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def check_range(
    name: str,
    value: Any,
    *,
    center: float | None = None,
    low: float = -float("inf"),
    high: float = float("inf"),
) -> tuple[float, float]:
    """Turn a number or ``(min, max)`` pair into a validated ``(min, max)`` tuple.

    A single number ``d`` means ``(center - d, center + d)`` when ``center`` is given (torchvision's
    convention: ``degrees=30`` means ``(-30, 30)``, ``brightness=0.4`` means ``(0.6, 1.4)``), and
    ``(d, d)`` otherwise. Every number must be finite (no NaN, no infinity, no bool), the range
    must lie within ``[low, high]`` and its width must be finite (so that sampling from it is).
    """
    bounds = "" if (math.isinf(low) and math.isinf(high)) else f" within [{low}, {high}]"
    form = f"a number or a (min, max) pair of finite numbers{bounds}"
    if _is_number(value):
        numbers: tuple[Any, ...] = (value,)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_number(v) for v in value):
        numbers = tuple(value)
    else:
        raise TypeError(f"{name} must be {form}, got {value!r} ({type(value).__name__})")
    if not all(_is_finite(v) for v in numbers):
        raise ValueError(f"{name} must be finite ({form}), got {value!r}")
    if len(numbers) == 1:
        if center is None:
            lo = hi = float(value)
        else:
            if value < 0:
                raise ValueError(
                    f"{name} given as a single number must be >= 0 (it means ({_fmt(center)} - {name}, "
                    f"{_fmt(center)} + {name})), got {value!r}"
                )
            lo, hi = center - float(value), center + float(value)
    else:
        lo, hi = float(numbers[0]), float(numbers[1])
        if lo > hi:
            raise ValueError(f"{name} must be (min, max) with min <= max, got {tuple(value)!r}")
    if not math.isfinite(hi - lo):
        raise ValueError(f"{name} must be {form} whose width max - min is finite, got {value!r}")
    if lo < low or hi > high:
        raise ValueError(f"{name} must lie within [{low}, {high}], got ({lo}, {hi}) from {value!r}")
    return lo, hi


def check_size(name: str, value: Any) -> tuple[int, int]:
    """Validate an output size given as ``int`` (square) or ``(height, width)``, each in ``[1, MAX_EXTENT]``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise TypeError(f"{name} must be an int or a (height, width) pair of ints, got {value!r}")
    if min(value) < 1 or max(value) > MAX_EXTENT:
        raise ValueError(f"{name} must be positive and at most {MAX_EXTENT} pixels per side, got {tuple(value)!r}")
    return int(value[0]), int(value[1])


def check_fill(name: str, value: Any) -> float | tuple[float, ...]:
    """Validate a fill: one number or a non-empty sequence (one per channel), each finite in [0, 1].

    Fill values are in 0..1 units for every dtype (``0.5`` is 128 for uint8). Returns a float, or a
    tuple of floats for a sequence. Whether a per-channel fill matches the image's channels can
    only be checked at the call (:meth:`genaug.transforms.warp.WarpOptions.check_channels`).

    Example:
        >>> check_fill("fill", [0, 0.5, 1])
        (0.0, 0.5, 1.0)
    """
    allowed = "a number in [0, 1] or a sequence of them (one per channel)"
    if isinstance(value, (list, tuple)):
        if not all(_is_number(v) for v in value):
            raise TypeError(f"{name} must be {allowed}, got {value!r}")
        if not value:
            raise ValueError(f"{name} must be {allowed}, got an empty {type(value).__name__}")
        values = tuple(value)
    elif _is_number(value):
        values = (value,)
    else:
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    if not all(_is_finite(v) and 0.0 <= v <= 1.0 for v in values):
        raise ValueError(
            f"{name} must be {allowed}, finite, in 0..1 units for every dtype (0.5 is 128 for uint8), got {value!r}"
        )
    return tuple(float(v) for v in values) if isinstance(value, (list, tuple)) else float(value)


def check_numbers(name: str, value: Any, *, positive: bool = False) -> tuple[float, ...]:
    """Validate a non-empty list or tuple of finite numbers (all ``> 0`` with ``positive``).

    Example:
        >>> check_numbers("std", [0.5, 0.25], positive=True)
        (0.5, 0.25)
    """
    allowed = "positive finite numbers (> 0)" if positive else "finite numbers"
    if not isinstance(value, (list, tuple)):
        raise TypeError(
            f"{name} must be a list or tuple of {allowed} (one per channel), got {value!r} ({type(value).__name__})"
        )
    if not value:
        raise ValueError(f"{name} must be a non-empty list or tuple of {allowed}, got {value!r}")
    bad = [v for v in value if not _is_number(v)]
    if bad:
        raise TypeError(f"{name} values must be {allowed}, got {bad[0]!r} ({type(bad[0]).__name__}) in {value!r}")
    if not all(_is_finite(v) and (v > 0 or not positive) for v in value):
        raise ValueError(f"{name} values must be {allowed}, got {value!r}")
    return tuple(float(v) for v in value)


def uniform(low: float, high: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` float64 samples from U(low, high) on the CPU, drawn from ``generator``."""
    return torch.empty(n, dtype=torch.float64).uniform_(low, high, generator=generator)


def to_device(t: torch.Tensor, device: torch.device | str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A small host tensor (parameters, taps, indices) on ``device``, without stalling the host.

    The dtype is converted where ``t`` lies, then the copy is queued. A copy to a CUDA device
    goes through pinned memory: from pageable memory CUDA copies synchronously, so the host would
    wait for every kernel queued before it and stop issuing the rest of the call (on an H100, a
    B=256 224x224 call went from 6.95 to 4.35 ms with 2.8 ms of kernels; benchmarks/RESULTS-cuda.md).
    PyTorch keeps the pinned block alive until the copy is done.

    Example:
        >>> to_device(torch.tensor([1, 2]), "cpu", torch.float32)
        tensor([1., 2.])
    """
    device = torch.device(device)
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    if t.device == device:
        return t
    if t.device.type == "cpu" and device.type == "cuda":
        t = t.pin_memory()
    # Never non_blocking towards the host: the result could be read before the copy is done.
    return t.to(device, non_blocking=device.type != "cpu")


def on_selected(
    image: torch.Tensor, selected: torch.Tensor, fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
) -> torch.Tensor:
    """Apply ``fn`` to the samples of ``image`` that the CPU bool mask ``selected`` (B,) picks.

    ``fn(subset, index)`` gets the picked samples and their CPU indices (``None`` when every sample
    is picked); the other samples pass through unchanged. The choice is made on the CPU, so it
    costs no device sync, and the work is done on the picked samples only.

    Example:
        >>> import torch
        >>> x = torch.zeros(3, 1, 1, 1)
        >>> on_selected(x, torch.tensor([True, False, True]), lambda sub, idx: sub + 1).flatten().tolist()
        [1.0, 0.0, 1.0]
    """
    if not bool(selected.any()):
        return image
    if bool(selected.all()):
        return fn(image, None)
    index = selected.nonzero().squeeze(1)
    device_index = to_device(index, image.device)
    return image.index_copy(0, device_index, fn(image.index_select(0, device_index), index))


#: Results at least this large ask Linux for transparent huge pages (:func:`new_result`).
HUGE_PAGE_MIN_BYTES = 32 << 20
_HUGE_PAGE = 2 << 20
_MADV_HUGEPAGE = 14


@functools.lru_cache(maxsize=1)
def _madvise() -> Callable[..., int] | None:
    """libc's ``madvise`` on Linux (None elsewhere, or when it cannot be found)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):  # pragma: no cover - a libc without madvise
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def new_result(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``torch.empty`` for a large result handed back to the caller (a whole output batch).

    Such a block comes fresh from the OS each call (glibc maps anything above 32 MB anew), and
    its first write faults it in 4 KB page by page: on a virtual machine that cost most of the
    time of a fast pipeline (benchmarks/RESULTS.md, run 11: 165 ms of system time per 256x224x224
    float32 batch). So on Linux CPUs a block of at least :data:`HUGE_PAGE_MIN_BYTES` is advised
    to use transparent huge pages (``madvise(MADV_HUGEPAGE)``, what PyTorch does for every
    allocation with ``THP_MEM_ALLOC_ENABLE=1``) before anything touches it: 512 times fewer
    faults. Only advice: where THP is off it changes nothing, and the values are never affected.

    Example:
        >>> t = new_result((2, 3), torch.float32, torch.device("cpu"))
        >>> t.shape, t.dtype
        (torch.Size([2, 3]), torch.float32)
    """
    tensor = torch.empty(shape, dtype=dtype, device=device)
    nbytes = tensor.untyped_storage().nbytes()
    madvise = _madvise() if device.type == "cpu" and nbytes >= HUGE_PAGE_MIN_BYTES else None
    if madvise is not None:
        start = tensor.data_ptr()
        first = -(-start // _HUGE_PAGE) * _HUGE_PAGE  # the huge pages wholly inside the block
        last = (start + nbytes) // _HUGE_PAGE * _HUGE_PAGE
        if last > first:
            madvise(first, last - first, _MADV_HUGEPAGE)  # (a refusal is harmless: plain pages)
    return tensor


#: Scratch buffers up to this size are kept between calls (:func:`scratch`); 0 keeps none.
SCRATCH_MAX_BYTES = 16 << 20
_scratch_pools = threading.local()


def scratch(
    slot: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, avoid: torch.Tensor | None = None
) -> torch.Tensor:
    """An uninitialised tensor for a temporary, kept on the CPU between calls (per thread and ``slot``).

    A large tensor freshly allocated on the CPU comes back from the OS page by page, and on some
    machines those page faults cost several passes over the data (benchmarks/RESULTS.md, run 8):
    the CPU executor's chunks would fault the same temporaries in again for every chunk. So on
    the CPU a buffer of up to :data:`SCRATCH_MAX_BYTES` is kept and handed out again. The caller
    must be done with the tensor before the next request for the same ``slot`` (it must not
    return it, or keep it past its own call) unless the executor copies it out first. When the
    buffer shares memory with ``avoid`` (the caller's input), a fresh tensor is returned instead.
    Other devices get a plain ``torch.empty`` (their allocators cache already).

    Example:
        >>> t = scratch("doc", (2, 3), torch.float32, torch.device("cpu"))
        >>> t.shape, t.dtype
        (torch.Size([2, 3]), torch.float32)
    """
    numel = math.prod(shape)
    if device.type != "cpu" or numel * dtype.itemsize > SCRATCH_MAX_BYTES or getattr(_scratch_pools, "off", False):
        return torch.empty(shape, dtype=dtype, device=device)
    pool = getattr(_scratch_pools, "pool", None)
    if pool is None:
        pool = _scratch_pools.pool = {}
    buffer = pool.get((slot, dtype))
    if buffer is None or buffer.numel() < numel:
        buffer = pool[(slot, dtype)] = torch.empty(numel, dtype=dtype)
    elif avoid is not None and avoid.untyped_storage().data_ptr() == buffer.untyped_storage().data_ptr():
        return torch.empty(shape, dtype=dtype, device=device)
    return buffer[:numel].view(shape)


def stage_output(slot: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, avoid: torch.Tensor) -> torch.Tensor | None:
    """A :func:`scratch` buffer for a stage's result when the executor allows it now, else ``None``.

    The CPU executor allows it (:func:`allow_stage_output`) only around a call of an op on a whole
    chunk whose result it copies out before the next chunk; ``avoid`` is the op's input.
    """
    if not getattr(_scratch_pools, "stage_output", False):
        return None
    return scratch(slot, shape, dtype, device, avoid=avoid)


@contextlib.contextmanager
def _thread_setting(name: str, value: bool) -> Iterator[None]:
    """Set a flag of this thread's scratch state for the ``with`` block, then restore it."""
    outer = getattr(_scratch_pools, name, False)
    setattr(_scratch_pools, name, value)
    try:
        yield
    finally:
        setattr(_scratch_pools, name, outer)


def allow_stage_output(flag: bool) -> contextlib.AbstractContextManager[None]:
    """Within ``with allow_stage_output(flag):``, :func:`stage_output` hands out scratch buffers when ``flag``."""
    return _thread_setting("stage_output", flag)


def scratch_off(flag: bool) -> contextlib.AbstractContextManager[None]:
    """Within ``with scratch_off(flag):``, :func:`scratch` returns fresh memory when ``flag`` (or an outer block's).

    The executor turns scratch buffers off for a call whose image requires grad: autograd keeps
    the grid, the coverage and other inputs of the backward pass, which a later call (or the next
    chunk) would overwrite in a reused buffer.
    """
    return _thread_setting("off", bool(flag) or getattr(_scratch_pools, "off", False))


def needs_autograd(x: torch.Tensor) -> bool:
    """Whether an op on ``x`` is being recorded for backward (then no ``out=`` ops and no scratch)."""
    return x.requires_grad and torch.is_grad_enabled()


def release_scratch() -> None:
    """Free this thread's :func:`scratch` buffers (they are allocated again when next needed)."""
    _scratch_pools.pool = {}


def tree_uses_labels(transform: Any) -> bool:
    """Whether ``transform`` or any transform inside it (containers recurse) uses labels.

    Example:
        >>> import genaug as ga
        >>> tree_uses_labels(ga.Compose([ga.RandomRotation(10)]))
        False
    """
    if getattr(transform, "uses_labels", False):
        return True
    return any(tree_uses_labels(t) for t in getattr(transform, "transforms", ()))


class Transform:
    """Base class of every genaug transform.

    Args:
        p: probability that the op is applied to each sample (drawn independently per sample).
        same_on_batch: draw one set of parameters and use it for every sample of the batch.
        seed: seed of this transform's own ``torch.Generator``. ``None`` draws the seed from
            torch's global RNG at construction (so ``torch.manual_seed`` makes it reproducible).

    Example:
        >>> import torch, genaug as ga
        >>> flip = ga.RandomHorizontalFlip(p=0.5, seed=0)
        >>> x = torch.rand(4, 3, 8, 8)
        >>> out, params = flip(x, return_params=True)
        >>> torch.equal(flip(x, params=params), out)
        True
    """

    kind: ClassVar[str] = "pixel"
    #: ops that only make sense on 1- or 3-channel images set this.
    needs_color_channels: ClassVar[bool] = False
    #: each output sample depends only on its own input sample and params (the executor may then
    #: process a batch in chunks); third-party batch callables, which might mix samples, do not.
    per_sample: ClassVar[bool] = True
    #: (ops with ``per_sample = False``) what a sample takes from the others of its batch is chosen
    #: from its params and recorded in them (``LatentInterpolate``'s partner), so a fixed batch
    #: gives a well-defined result; :class:`~genaug.SyntheticDataset` then runs the op on the item's
    #: whole block instead of item by item.
    partners_from_batch: ClassVar[bool] = False
    #: ``apply`` always returns values in 0..1 (it clamps): the executor then skips the clamp of a
    #: uint8 output after it.
    clamps_to_unit_range: ClassVar[bool] = False
    #: (colour and pixel ops) the op reads and writes images in 0..1 (it clamps to that range, or its
    #: parameters are in its scale), so the executor refuses to run it after ``Normalize``;
    #: ``Normalize`` and third-party stages (``ModuleStage``) set False.
    needs_unit_range: ClassVar[bool] = True
    #: the op reads or replaces the labels passed with ``labels=`` (generative augmenters); the
    #: torchvision and albumentations adapters then hand a sample's label to the call.
    uses_labels: ClassVar[bool] = False
    _init_args: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):  # private bases are not user-facing transforms
            _REGISTRY[cls.__name__] = cls
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: Transform, *args: Any, **kw: Any) -> None:
            # The most-derived __init__ runs first: it records the user's arguments for to_dict().
            if "_init_args" not in self.__dict__:
                allowed = [p for p in signature.parameters if p != "self"]
                unknown = sorted(set(kw) - set(allowed))
                if unknown:
                    raise TypeError(
                        f"{type(self).__name__} got unexpected keyword argument {unknown[0]!r}; "
                        f"allowed arguments: {', '.join(allowed)}"
                    )
                try:
                    bound = signature.bind(self, *args, **kw)
                except TypeError as exc:
                    raise TypeError(f"{type(self).__name__}: {exc}; allowed arguments: {', '.join(allowed)}") from None
                bound.apply_defaults()
                self._init_args = {k: v for k, v in bound.arguments.items() if k != "self"}
            init(self, *args, **kw)

        cls.__init__ = recording_init  # type: ignore[method-assign]

    def __init__(self, p: float = 1.0, same_on_batch: bool = False, seed: int | None = None) -> None:
        self.p = check_probability("p", p)
        if not isinstance(same_on_batch, bool):
            raise TypeError(f"same_on_batch must be a bool, got {same_on_batch!r}")
        self.same_on_batch = same_on_batch
        self.seed = check_seed("seed", seed)
        self._base_seed = seed if seed is not None else 0
        self._generator = torch.Generator().manual_seed(self._base_seed)
        self._generator_owner: tuple[int, int | None] = (os.getpid(), None)

    # ------------------------------------------------------------------ randomness
    @property
    def generator(self) -> torch.Generator:
        """The CPU generator this transform draws its parameters from.

        With ``seed=None`` each call draws a fresh stream from torch's global RNG, as torchvision's
        transforms do: reproducible under ``torch.manual_seed`` in the main process, and in DataLoader
        workers under the loader's seeded ``generator`` (PyTorch seeds each worker's global RNG from
        it, differently per worker). With an explicit seed the transform owns its stream; in worker
        ``k`` it is re-derived once from ``(seed, worker_info.seed)``, so workers never repeat each
        other and a run is reproducible when the DataLoader's generator is seeded.
        """
        if self.seed is None:
            return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        info = get_worker_info()
        owner = (os.getpid(), info.id if info is not None else None)
        if owner != self._generator_owner:
            if info is not None:
                self._generator = torch.Generator().manual_seed(mix_seeds(self._base_seed, info.seed))
            self._generator_owner = owner
        return self._generator

    def reset_generator(self) -> None:
        """Rewind this transform's generator to its seed (no effect with ``seed=None``, which follows torch's RNG)."""
        self._generator = torch.Generator().manual_seed(self._base_seed)
        self._generator_owner = (os.getpid(), None)

    # ------------------------------------------------------------------ sampling
    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Spatial size of the output for an input of ``size`` = (height, width)."""
        return size

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        """Draw this op's parameters for ``n`` samples (CPU tensors with leading dim ``n``)."""
        return {}

    def sample_params(self, batch_size: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        """Sample the parameters of one call: a dict of CPU tensors with leading dim ``batch_size``.

        ``apply`` (bool, ``(B,)``) says which samples the op touches.
        """
        n = 1 if self.same_on_batch else batch_size
        apply = torch.rand(n, generator=generator) < self.p
        params = self._sample(n, size, generator)
        params["apply"] = apply
        params = expand_params(params, batch_size) if self.same_on_batch and batch_size != 1 else params
        params[DRAWN_FOR] = drawn_for(self, size)
        return params

    def check_params(self, params: Any, batch_size: int, size: tuple[int, int], where: str = "params") -> None:
        """Raise a clear error unless ``params`` were sampled by this transform for this batch and size.

        Replaying params on another image size, batch size or transform would silently give a
        wrong result (a crop box outside the image, a matrix for another centre), so it is refused.
        """
        name = type(self).__name__
        if not isinstance(params, dict) or not isinstance(params.get("apply"), torch.Tensor):
            raise TypeError(
                f"{where} must be the dict returned by a call with return_params=True (with an 'apply' "
                f"tensor), got {type(params).__name__}"
            )
        for key, value in params.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] != batch_size:
                raise ValueError(
                    f"{where}[{key!r}] was sampled for a batch of {value.shape[0]} images, but this batch has {batch_size}"
                )
        stamp = params.get(DRAWN_FOR)
        if not isinstance(stamp, dict) or "op" not in stamp or "size" not in stamp:
            raise ValueError(f"{where} do not say what they were drawn for (no {DRAWN_FOR!r} entry): pass the params "
                             "a call with return_params=True returned")
        if stamp["op"] != name:
            raise ValueError(f"{where} were drawn by {stamp['op']}, not by {name}: replay them on the transform that made them")
        if tuple(stamp["size"]) != tuple(size):
            h, w = stamp["size"]
            raise ValueError(
                f"{where} were drawn for {h}x{w} images ({name}), but this image is {size[0]}x{size[1]}: "
                "params replay only on inputs of the size they were sampled for"
            )

    # ------------------------------------------------------------------ the op itself
    def matrix(self, params: Params, size: tuple[int, int]) -> torch.Tensor:
        """(geometric ops) ``(B, 3, 3)`` float64 map from output to input pixel coordinates.

        Pixel coordinates put the centre of pixel ``(row i, col j)`` at ``(x=j, y=i)``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement matrix(params, size): it is a base "
                                  "class; use a geometric op (e.g. RandomAffine) or subclass it and implement "
                                  "_sample and matrix")

    def neutral_matrix(self, size: tuple[int, int], batch_size: int) -> torch.Tensor:
        """(geometric ops) matrix used where the op is not applied (identity unless the size changes)."""
        return torch.eye(3, dtype=torch.float64).expand(batch_size, 3, 3)

    def color_affine(
        self, params: Params, mean: torch.Tensor, channels: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(color ops) per-sample affine color map ``x -> A @ x + t`` as ``(A (B,C,C), t (B,C))``.

        ``mean`` is the per-image mean colour ``(B, C)`` of the op's input (contrast needs it).
        """
        raise NotImplementedError(f"{type(self).__name__} (kind 'color') does not implement color_affine(params, "
                                  "mean, channels)")

    def apply(self, image: torch.Tensor, params: Params) -> torch.Tensor:
        """(pixel ops) transform a float ``(B, C, H, W)`` image; gating by ``apply`` is done by the caller."""
        raise NotImplementedError(f"{type(self).__name__} (kind {self.kind!r}) does not implement apply(image, "
                                  "params): it is a base class; subclass it and implement _sample and apply")

    def opencv_kernel(self, params: Params, size: tuple[int, int]) -> Callable[[Any, int], Any] | None:
        """(pixel ops, optional) this op on one sample for ``Compose(backend="opencv")``, or None.

        Called once per batch with the op's params and the input size; returns ``kernel(image,
        i)`` that applies the op to sample ``i``, an ``(H, W, C)`` (or ``(H, W)``) uint8 or float32
        NumPy array, with OpenCV, and returns the result (never modifying ``image``). A pixel op
        without one (the default) sends the call to the torch backend.
        """
        return None

    def replace_samples(self, batch: Any, params: Params, index: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """(replace ops) New images for the samples ``index`` and the labels of the whole batch.

        Args:
            batch: the working :class:`~genaug.transforms.pipeline.Batch` (float images, targets, labels).
            params: this op's params (``apply`` already gated); a replace op may store what it
                derived from *other* samples of the batch (e.g. a partner's latent) in a nested dict
                of its params, so that replaying one sample alone works (see ``LatentInterpolate``).
            index: CPU indices of the samples ``params["apply"]`` picks (possibly none).

        Returns:
            ``(images, labels)``: ``(len(index), C, H, W)`` images in the batch's dtype and device,
            and the labels of the whole batch after the op, in the form the user passed them.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ composition hooks
    def leaves(
        self, params: Params, gate: torch.Tensor | None, overrides: dict[str, Any] | None = None
    ) -> list[tuple[Transform, Params, dict[str, Any]]]:
        """Flatten into ``(leaf, params with the gate folded into apply, warp overrides)`` triples."""
        if gate is not None:
            params = {**params, "apply": params["apply"] & gate}
        return [(self, params, overrides or {})]

    # ------------------------------------------------------------------ calling
    def __call__(
        self,
        image: torch.Tensor,
        masks: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        keypoints: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        *,
        params: Params | None = None,
        return_params: bool = False,
    ) -> Any:
        """Augment a batch ``(B, C, H, W)`` or a single image ``(C, H, W)``.

        Args:
            image: uint8 (0..255) or floating (0..1) tensor on any device.
            masks: ``(B, H, W)`` or ``(B, K, H, W)`` (unbatched: ``(H, W)`` / ``(K, H, W)``), any dtype.
            boxes: ``(B, N, 4)`` xyxy pixel boxes (unbatched: ``(N, 4)``).
            keypoints: ``(B, N, 2)`` xy pixel points (unbatched: ``(N, 2)``).
            labels: passed through (generative augmenters may replace them).
            params: replay parameters returned by an earlier ``return_params=True`` call.
            return_params: also return the parameters used.

        Returns:
            The image tensor (same shape, dtype and device as ``image``) when no target is given;
            otherwise a dict with ``image`` and each target given (plus ``boxes_valid`` and
            ``keypoints_valid``). With ``return_params=True``, a pair ``(result, params)``.
        """
        from genaug.transforms.pipeline import Batch, run

        batch = Batch.from_inputs(image, masks=masks, boxes=boxes, keypoints=keypoints, labels=labels)
        if params is None:
            params = self.sample_params(batch.batch_size, batch.size, self.generator)
        else:
            self.check_params(params, batch.batch_size, batch.size)
        result = run(self, params, batch)
        return (result, params) if return_params else result

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        """JSON-able description ``{"name": class name, "args": constructor arguments}``."""
        from genaug.transforms.serialization import transform_to_dict

        return transform_to_dict(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._init_args.items())
        return f"{type(self).__name__}({args})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_generator"] = self._generator.get_state()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        generator = torch.Generator()
        generator.set_state(state.pop("_generator"))
        self.__dict__.update(state)
        self._generator = generator
