"""``SyntheticDataset``: an index-addressable ``torch.utils.data.Dataset`` over a generative model.

Item ``i`` is a pure function of ``(model weights, seed, i, label of i, transform, dtype,
block_size)`` on a given kind of device: the same image and label on every call, in every
DataLoader worker, in every process, whatever the access order, the cache state or ``chunk_size``.

How (the full story is in ``docs/DATASETS.md``):

* **Per-index seeds.** Every random number an item needs comes from a seed that is a hash of
  ``(seed, stream, i)``: counter-based SplitMix64 (the ``i``-th output of a SplitMix64 stream
  keyed by the dataset seed and a stream id), the same construction as genaug's noise transforms.
  Streams: the latent, the class (``labels="weighted"``) and the transform. Item ``i``'s latent
  is drawn from ``torch.Generator().manual_seed(latent_seed(i))`` exactly as
  ``model.sample(1, labels=[label_i], generator=that_generator)`` draws it, so the latent depends
  on nothing but ``(seed, i)``.
* **A fixed compute grid.** Floating-point kernels do not promise that a sample's output is
  independent of the batch it is computed in (on CPU, a batch of 1 and a batch of 64 differ by
  ~1e-6, measured). So the model never sees batches that depend on who asks: every forward pass
  takes exactly ``block_size`` latents, those of indices ``[k * block_size, (k + 1) * block_size)``
  (the last block is padded with the latents of the indices past the end, then cut). A chunk
  (the unit of generation and caching, ``chunk_size`` indices, a multiple of ``block_size``) runs
  ``chunk_size // block_size`` such passes. Bits therefore do not depend on ``chunk_size``,
  access order, workers or processes; only ``block_size`` (and the device kind) can change the
  last bits of a float, so it is part of the dataset's identity (:meth:`describe`).
* **Transforms per index.** A genaug transform (or pipeline) draws item ``i``'s parameters with
  ``transform.sample_params(1, size, torch.Generator().manual_seed(transform_seed(i)))``; the
  block's rows are concatenated and the block is transformed in one batched call. Any other
  callable runs per item on the CPU with torch's, Python's and NumPy's global RNGs seeded from
  ``transform_seed(i)`` (and restored afterwards).

Example:
    >>> import genaug as ga
    >>> ds = ga.SyntheticDataset("mnist-cgan", length=100, seed=0)
    >>> image, label = ds[42]
    >>> image.shape, image.dtype, label
    (torch.Size([1, 28, 28]), torch.uint8, 2)
"""

from __future__ import annotations

import math
import operator
import os
import random
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from genaug.transforms.base import DRAWN_FOR, Transform, check_seed

__all__ = ["SyntheticDataset", "index_seeds", "stream_key"]

LABEL_MODES = ("balanced", "weighted")
_M64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment (2^64 / golden ratio)
_MUL1, _MUL2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB  # Stafford's Mix13 multipliers
# Stream ids: one independent family of per-index seeds per use.
STREAM_LATENT, STREAM_LABEL, STREAM_TRANSFORM = 1, 2, 3


# ----------------------------------------------------------------------------- hashing
def _mix64_int(x: int) -> int:
    """Stafford's Mix13 finalizer (SplitMix64's output function) on a Python int read as uint64."""
    x &= _M64
    x = ((x ^ (x >> 30)) * _MUL1) & _M64
    x = ((x ^ (x >> 27)) * _MUL2) & _M64
    return x ^ (x >> 31)


def _mix64(x: np.ndarray) -> np.ndarray:
    """Mix13 on a uint64 array (NumPy's uint64 arithmetic wraps exactly like C's)."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(_MUL1)
    x ^= x >> np.uint64(27)
    x *= np.uint64(_MUL2)
    x ^= x >> np.uint64(31)
    return x


def stream_key(*words: int) -> int:
    """Fold integers (a seed, a stream id, ...) into one 64-bit key, each step a bijection of the word.

    Example:
        >>> stream_key(0, 1) == stream_key(0, 1), stream_key(0, 1) == stream_key(1, 0)
        (True, False)
    """
    h = 0
    for w in words:
        h = _mix64_int(((h ^ (int(w) & _M64)) + _GAMMA) & _M64)
    return h


def index_seeds(key: int, indices: Any) -> np.ndarray:
    """Per-index 64-bit seeds: the ``i``-th output of a SplitMix64 stream keyed by ``key``.

    ``seed_i = mix64(key + (i + 1) * G)`` — counter based, so seed ``i`` costs O(1) and depends
    on nothing but ``(key, i)``.

    Args:
        key: a 64-bit key from :func:`stream_key`.
        indices: non-negative ints (array-like).

    Returns:
        A uint64 NumPy array shaped like ``indices``.

    Example:
        >>> a = index_seeds(stream_key(0, 1), [0, 1, 2])
        >>> b = index_seeds(stream_key(0, 1), [2])
        >>> bool(a[2] == b[0])
        True
    """
    idx = np.asarray(indices, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        c = (idx + np.uint64(1)) * np.uint64(_GAMMA) + np.uint64(key & _M64)
    return _mix64(c)


def _unit_floats(seeds: np.ndarray) -> np.ndarray:
    """uint64 seeds -> float64 in [0, 1) from their top 53 bits (exact)."""
    return (seeds >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)


# ----------------------------------------------------------------------------- contexts
@contextmanager
def seeded_global_rngs(seed: int) -> Iterator[None]:
    """Seed torch's CPU, Python's and NumPy's global RNGs for a block, then restore their states.

    Third-party transforms (torchvision, albumentations, plain functions) draw from these global
    generators; seeding them per item makes such a transform a function of the item's index.
    Only the CPU generator is touched (``torch.manual_seed`` would also reseed CUDA).
    """
    torch_state, py_state, np_state = torch.get_rng_state(), random.getstate(), np.random.get_state()
    torch.default_generator.manual_seed(int(seed) & _M64)
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        random.setstate(py_state)
        np.random.set_state(np_state)


@contextmanager
def _deterministic_kernels(device: torch.device) -> Iterator[None]:
    """On CUDA: cuDNN in deterministic mode without autotuning while the model runs (restored after)."""
    if device.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    old = (cudnn.deterministic, cudnn.benchmark)
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = old


# ----------------------------------------------------------------------------- validation helpers
def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be a positive int (>= 1), got {value!r}")
    return int(value)


_DTYPE_NAMES = {"uint8": torch.uint8, "float32": torch.float32, "float": torch.float32,
                "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


def check_dtype(value: Any) -> torch.dtype:
    """``torch.uint8`` or a floating dtype (also given by name: ``"uint8"``, ``"float32"``, ...)."""
    if isinstance(value, str):
        if value not in _DTYPE_NAMES:
            raise ValueError(f"dtype={value!r} is not supported; allowed: torch.uint8, a floating dtype, "
                             f"or one of {sorted(_DTYPE_NAMES)}")
        return _DTYPE_NAMES[value]
    if not isinstance(value, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype (torch.uint8 or a floating dtype), got {value!r}")
    if value != torch.uint8 and not value.is_floating_point:
        raise ValueError(f"dtype={value} is not supported; allowed: torch.uint8 (0..255) or a floating dtype (0..1)")
    return value


def convert_images(images: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Images uint8 (0..255) or float (0..1) -> ``dtype``: uint8 is rounded and clamped, never wrapped.

    Float -> float only changes precision (values outside 0..1, e.g. normalized ones, are kept).
    """
    if images.dtype == dtype:
        return images
    if dtype == torch.uint8:
        return images.float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    if images.dtype == torch.uint8:
        return images.to(dtype).div(255.0)
    return images.to(dtype)


def _as_index(name: str, value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, torch.Tensor) and value.dtype == torch.bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})") from None


# ----------------------------------------------------------------------------- model handling
def _resolve_model(model: Any, device: Any) -> tuple[Any, str]:
    """The model object and how to name it (shipped name, path or class name)."""
    from genaug.generative.checkpoint import SHIPPED, load_model, read_header, shipped_path

    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        shipped = isinstance(model, str) and model in SHIPPED
        if not shipped and not os.path.isfile(path):
            raise ValueError(f"unknown model {model!r}: not a shipped model name (allowed: {sorted(SHIPPED)}) "
                             "and no checkpoint file at that path")
        kind = read_header(shipped_path(model) if shipped else path)[0].get("kind")  # the header only: cheap
        if kind not in (None, "gan", "vae"):
            raise TypeError(f"model {model!r} is a {kind!r} checkpoint, not a generative model; use a GAN or VAE "
                            "checkpoint such as 'mnist-cgan' or 'mnist-cvae'")
        return load_model(path, device=device if device is not None else "cpu"), path
    if not callable(getattr(model, "sample", None)):
        raise TypeError("model must be a genaug generative model (an object with sample(n, labels=None, "
                        f"generator=None)), a shipped model name or a checkpoint path; got {type(model).__name__}")
    if device is not None and isinstance(model, nn.Module):
        model.to(device)
    return model, type(model).__name__


def _model_device(model: Any) -> torch.device:
    dev = getattr(model, "device", None)
    if isinstance(dev, torch.device):
        return dev
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


def _num_classes(model: Any) -> int:
    k = getattr(getattr(model, "config", None), "num_classes", None)
    if k is None:
        k = getattr(model, "num_classes", None)
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise TypeError(f"cannot tell how many classes {type(model).__name__} has: it needs config.num_classes or "
                        f"num_classes (an int >= 0, 0 = unconditional); got {k!r}")
    return k


def _sampling_path(model: Any) -> str:
    """``"gan"``/``"vae"``: latents per index, one batched forward per block; ``"per_index"`` otherwise."""
    kind = getattr(model, "kind", None)
    cfg = getattr(model, "config", None)
    if kind == "gan" and callable(getattr(model, "generate", None)) and hasattr(cfg, "latent_dim") \
            and not getattr(cfg, "noise_injection", False):
        return "gan"
    if kind == "vae" and callable(getattr(model, "sample_latent", None)) and callable(getattr(model, "decode", None)):
        return "vae"
    # Noise injection draws per-pixel noise for the whole batch from one generator, so a batched
    # forward would make an item depend on its batch; an unknown model exposes only sample().
    return "per_index"


def _mixes_only_by_params(t: Transform) -> bool:
    """True when every leaf of ``t`` is per-sample or takes its partners by its params (``partners_from_batch``)."""
    own = t.per_sample or t.partners_from_batch
    children = getattr(t, "transforms", None)
    if isinstance(children, list):
        return own and all(_mixes_only_by_params(c) for c in children)
    return bool(own)


class _ParamsMismatch(Exception):
    pass


def _cat_params(plist: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate per-item params (each drawn for a batch of 1) into one batch's params."""
    first = plist[0]
    if any(set(p) != set(first) for p in plist):
        raise _ParamsMismatch
    out: dict[str, Any] = {}
    for key, value in first.items():
        values = [p[key] for p in plist]
        if isinstance(value, dict) and key != DRAWN_FOR:
            out[key] = _cat_params(values)
        elif isinstance(value, torch.Tensor) and value.dim() > 0:
            if any(not isinstance(v, torch.Tensor) or v.shape[1:] != value.shape[1:] for v in values):
                raise _ParamsMismatch
            out[key] = torch.cat(values)
        else:
            same = all(torch.equal(v, value) if isinstance(value, torch.Tensor) else v == value for v in values)
            if not same:
                raise _ParamsMismatch
            out[key] = value
    return out


# ----------------------------------------------------------------------------- the dataset
class SyntheticDataset(Dataset):
    """Index-addressable synthetic images from a (conditional) GAN or VAE.

    Item ``i`` is ``(image, label)``: ``image`` a CPU tensor ``(C, H, W)`` (uint8 0..255 by
    default, or float 0..1), ``label`` a Python ``int`` (``-1`` for an unconditional model; a
    float tensor ``(K,)`` only if a transform returns soft labels). The same ``i`` gives the same
    bits on every call, in every DataLoader worker and process on the same kind of device,
    whatever the access order, ``chunk_size`` or cache state (see the module docstring).

    Args:
        model: a genaug generative model object (``ConditionalGAN``, ``ConditionalVAE``, or any
            object with ``sample(n, labels=None, generator=None)`` and ``config.num_classes`` /
            ``num_classes``), a shipped model name (``"mnist-cgan"``, ``"mnist-cvae"``) or a path
            to a genaug ``.safetensors`` checkpoint.
        length: number of items (>= 1).
        seed: dataset seed (any int accepted by ``torch.Generator.manual_seed``).
        labels: the class of each item: ``"balanced"`` (item ``i`` has class ``i % K``: every
            class count within 1 of ``length / K``, and every prefix balanced too), ``"weighted"``
            (i.i.d. draws from ``class_weights``, item ``i``'s draw a pure function of
            ``(seed, i)``), one int (every item that class), or a sequence of ``length`` ints. An
            unconditional model takes ``"balanced"`` (the default) or ``None`` and gives label -1.
        transform: optional; a genaug ``Transform``/``Compose`` (run batched on the generation
            device, parameters drawn per index; its own seed is mixed into the per-index seed, and
            ``seed=None`` counts as 0), or any callable ``f(image) -> image`` on one float32
            ``(C, H, W)`` CPU image in 0..1 (run with seeded global RNGs per item). A genaug
            transform is called with the labels too (``labels=``), so generative augmenters
            that need classes work and the labels it returns are used.
        class_weights: ``K`` non-negative finite weights (not all zero), with ``labels="weighted"``.
        truncation: truncation of the latent draws (as ``model.sample(..., truncation=)``).
        dtype: ``torch.uint8`` (default: what the built-in datasets and PNG export hold) or a
            floating dtype (0..1; values a transform such as ``Normalize`` puts outside are kept).
        device: where the model runs (``None``: where it is; a name or path loads there;
            a model object is moved there with ``.to``). Items are always CPU tensors and the
            cache lives in host memory. A CUDA model needs ``num_workers=0`` or a DataLoader with
            ``multiprocessing_context="spawn"``.
        chunk_size: indices generated together and cached as one unit (a multiple of
            ``block_size``; by default equal to it: one forward pass per chunk). Does not change
            any item.
        block_size: latents per forward pass (the last pass is padded to it). Part of the
            dataset's identity: another value may change the last float bits (and so, rarely, a
            uint8 value by 1). On CPU, 256 generates mnist-cgan digits about twice as fast as
            64; on a GPU larger blocks (1024+) pay off.
        cache_chunks: how many chunks the LRU cache keeps (per process: each DataLoader worker has
            its own). Memory: ``cache_chunks * chunk_size * C * H * W`` times the dtype's bytes.

    Example:
        >>> import genaug as ga
        >>> aug = ga.Compose([ga.RandomRotation(15), ga.ColorJitter(0.3, 0.3)], seed=0)
        >>> ds = ga.SyntheticDataset("mnist-cgan", length=1000, seed=0, transform=aug)
        >>> x, y = ds[7]
        >>> bool((ds[7][0] == x).all()), y
        (True, 7)
    """

    def __init__(
        self,
        model: Any,
        length: int,
        seed: int = 0,
        labels: str | int | Sequence[int] | torch.Tensor | None = "balanced",
        transform: Callable[..., Any] | None = None,
        *,
        class_weights: Sequence[float] | None = None,
        truncation: float | None = None,
        dtype: torch.dtype | str = torch.uint8,
        device: str | torch.device | None = None,
        chunk_size: int = 256,
        block_size: int = 256,
        cache_chunks: int = 8,
    ) -> None:
        self.length = _check_positive_int("length", length)
        if seed is None:
            raise TypeError("seed must be an int (a SyntheticDataset is reproducible by construction), got None")
        self.seed = check_seed("seed", seed)
        self.block_size = _check_positive_int("block_size", block_size)
        self.chunk_size = _check_positive_int("chunk_size", chunk_size)
        if self.chunk_size % self.block_size:
            raise ValueError(f"chunk_size={chunk_size} must be a multiple of block_size={block_size} (a chunk is "
                             "made of whole forward passes)")
        self.cache_chunks = _check_positive_int("cache_chunks", cache_chunks)
        self.dtype = check_dtype(dtype)
        if truncation is not None and (isinstance(truncation, bool) or not isinstance(truncation, (int, float))
                                       or not math.isfinite(truncation) or truncation <= 0):
            raise ValueError(f"truncation must be None or a positive finite number, got {truncation!r}")
        self.truncation = None if truncation is None else float(truncation)
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be a genaug Transform or a callable on one image, got "
                            f"{type(transform).__name__}")
        self.transform = transform
        if device is not None:
            try:
                device = torch.device(device)
            except (RuntimeError, TypeError) as e:
                raise ValueError(f"device={device!r} is not a valid torch device ({e})") from None
        self.model, self.model_name = _resolve_model(model, device)
        self.device = _model_device(self.model)
        self.num_classes = _num_classes(self.model)
        self._path = _sampling_path(self.model)
        self._init_labels(labels, class_weights)

        tseed = getattr(transform, "seed", None) if isinstance(transform, Transform) else None
        self._latent_key = stream_key(self.seed, STREAM_LATENT)
        self._label_key = stream_key(self.seed, STREAM_LABEL)
        self._transform_key = stream_key(self.seed, STREAM_TRANSFORM, tseed or 0)
        # A block runs as one batch when no op mixes samples in ways its params do not fix
        # (LatentInterpolate picks partners within the item's block, which is fixed); else item by item.
        self._block_transform = isinstance(transform, Transform) and _mixes_only_by_params(transform)
        self._raw_size: tuple[int, int] | None = None
        self._cache: OrderedDict[int, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()
        self.chunks_generated = 0
        """How many chunks this process generated (cache misses); for tests and tuning."""

    # ------------------------------------------------------------------ labels
    def _init_labels(self, labels: Any, class_weights: Any) -> None:
        k = self.num_classes
        self._sequence: torch.Tensor | None = None
        self._cdf: np.ndarray | None = None
        self.class_weights: tuple[float, ...] | None = None
        if class_weights is not None and labels != "weighted":
            raise ValueError(f"class_weights is only used with labels='weighted'; got labels={labels!r}")
        if k == 0:
            if labels not in (None, "balanced"):
                raise ValueError(f"the model is unconditional (num_classes=0), so it takes no labels: pass "
                                 f"labels='balanced' (the default) or None (items then have label -1); got {labels!r}")
            self.label_mode = "none"
            return
        if labels is None:
            raise ValueError(f"labels=None: a conditional model (num_classes={k}) needs a class per item; use "
                             "'balanced', 'weighted' (with class_weights), one int or a sequence of ints")
        if isinstance(labels, str):
            if labels not in LABEL_MODES:
                raise ValueError(f"labels={labels!r} is not allowed; allowed: {LABEL_MODES}, one int, or a sequence "
                                 "of ints (one per item)")
            self.label_mode = labels
            if labels == "weighted":
                self._init_weights(class_weights)
            return
        if isinstance(labels, bool) or (isinstance(labels, torch.Tensor) and labels.dtype == torch.bool):
            raise TypeError(f"labels must be a mode, an int or a sequence of ints, got {labels!r}")
        if isinstance(labels, (int, np.integer)) or (isinstance(labels, torch.Tensor) and labels.dim() == 0):
            value = int(labels)
            if not 0 <= value < k:
                raise ValueError(f"labels={value} is out of range; allowed: 0..{k - 1} (num_classes={k})")
            self.label_mode, self._constant = "constant", value
            return
        try:
            seq = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"labels must be 'balanced', 'weighted', an int or a sequence of ints, got "
                            f"{type(labels).__name__}") from None
        if seq.dtype == torch.bool or seq.dtype.is_floating_point or seq.is_complex():
            raise TypeError(f"labels must be integers (class ids), got dtype {seq.dtype}")
        if seq.dim() != 1 or seq.numel() != self.length:
            raise ValueError(f"labels has shape {tuple(seq.shape)}; give one class id per item: length={self.length}")
        seq = seq.to(torch.int64)
        bad = ((seq < 0) | (seq >= k)).nonzero()
        if len(bad):
            j = int(bad[0])
            raise ValueError(f"labels[{j}]={int(seq[j])} is out of range; allowed: 0..{k - 1} (num_classes={k})")
        self.label_mode, self._sequence = "sequence", seq.clone()

    def _init_weights(self, class_weights: Any) -> None:
        k = self.num_classes
        if class_weights is None:
            raise ValueError(f"labels='weighted' needs class_weights: {k} non-negative numbers, one per class")
        try:
            w = np.asarray(class_weights, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"class_weights must be {k} numbers, got {class_weights!r}") from None
        if w.shape != (k,):
            raise ValueError(f"class_weights must have one weight per class ({k}), got shape {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"class_weights must be finite and >= 0 (no NaN), got {list(map(float, w))}")
        if w.sum() <= 0:
            raise ValueError("class_weights must not all be zero")
        cdf = np.cumsum(w) / w.sum()
        cdf[int(np.flatnonzero(w > 0)[-1]):] = 1.0  # no draw can land on a zero-weight class after the last
        self._cdf = cdf
        self.class_weights = tuple(float(x) for x in w)

    def _labels_for(self, idx: np.ndarray) -> torch.Tensor | None:
        """Class ids (int64) of ``idx`` (indices past the end are padding: any fixed class)."""
        mode = self.label_mode
        if mode == "none":
            return None
        if mode == "balanced":
            return torch.from_numpy(idx % self.num_classes)
        if mode == "constant":
            return torch.full((len(idx),), self._constant, dtype=torch.int64)
        if mode == "sequence":
            assert self._sequence is not None
            t = torch.from_numpy(idx)
            inside = t < self.length
            return torch.where(inside, self._sequence[t.clamp(max=self.length - 1)], torch.zeros_like(t))
        assert self._cdf is not None
        u = _unit_floats(index_seeds(self._label_key, idx))
        y = np.searchsorted(self._cdf, u, side="right").clip(max=self.num_classes - 1)
        return torch.from_numpy(y.astype(np.int64))

    @property
    def labels(self) -> torch.Tensor:
        """The class of every item, int64 ``(length,)`` (-1 for an unconditional model), without generating.

        These are the classes the model is asked for; a transform that changes labels is not run.
        """
        y = self._labels_for(np.arange(self.length, dtype=np.int64))
        return torch.full((self.length,), -1, dtype=torch.int64) if y is None else y.clone()

    @property
    def targets(self) -> torch.Tensor:
        """Alias of :attr:`labels` (torchvision's name)."""
        return self.labels

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in range(self.num_classes)]

    # ------------------------------------------------------------------ seeds
    def latent_seed(self, index: int) -> int:
        """Seed of item ``index``'s latent generator: ``model.sample(1, labels=[label], generator=
        torch.Generator().manual_seed(seed))`` draws the same latent (its image equals the item's up
        to float rounding from the batch size, before any transform)."""
        return int(index_seeds(self._latent_key, [self._check_index(index)])[0])

    def transform_seed(self, index: int) -> int:
        """Seed of the generator item ``index``'s transform parameters are drawn from."""
        return int(index_seeds(self._transform_key, [self._check_index(index)])[0])

    def transform_params(self, index: int) -> dict[str, Any]:
        """The genaug transform's params of item ``index`` (a batch of 1; replayable with ``params=``)."""
        if not isinstance(self.transform, Transform):
            raise TypeError("transform_params needs a genaug Transform as the dataset's transform; "
                            f"this dataset has {type(self.transform).__name__}")
        i = self._check_index(index)
        if self._raw_size is None:
            self._chunk(i // self.chunk_size)
        assert self._raw_size is not None
        g = torch.Generator().manual_seed(self.transform_seed(i))
        return self.transform.sample_params(1, self._raw_size, g)

    # ------------------------------------------------------------------ generation
    def _latent_generators(self, idx: np.ndarray) -> list[torch.Generator]:
        return [torch.Generator().manual_seed(int(s)) for s in index_seeds(self._latent_key, idx)]

    @torch.no_grad()
    def _forward_block(self, idx: np.ndarray, labels: torch.Tensor | None) -> torch.Tensor:
        """Raw float images (B, C, H, W) in 0..1 on the model's device for the block ``idx``."""
        from genaug.generative.models.common import truncated_normal

        model, trunc = self.model, self.truncation
        gens = self._latent_generators(idx)
        one = (lambda j: None) if labels is None else (lambda j: labels[j:j + 1])
        with _deterministic_kernels(self.device):
            if self._path == "gan":
                z = torch.cat([truncated_normal((1, model.config.latent_dim), trunc, g, torch.device("cpu"))
                               for g in gens])
                out = model.generate(z, labels)
            elif self._path == "vae":
                z = torch.cat([model.sample_latent(1, labels=one(j), generator=g, truncation=trunc)[0]
                               for j, g in enumerate(gens)])
                out = model.decode(z, labels)
            else:
                kw = {} if trunc is None else {"truncation": trunc}
                out = torch.cat([model.sample(1, labels=one(j), generator=g, **kw) for j, g in enumerate(gens)])
        if not isinstance(out, torch.Tensor) or out.dim() != 4 or out.shape[0] != len(idx) \
                or not out.dtype.is_floating_point:
            raise ValueError(f"{type(model).__name__}.sample must return float images (n, C, H, W) in 0..1; got "
                             f"{getattr(out, 'dtype', type(out).__name__)} {tuple(getattr(out, 'shape', ()))}")
        return out

    def _transform_block(self, idx: np.ndarray, images: torch.Tensor,
                         labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        t = self.transform
        if t is None:
            return images, labels
        seeds = index_seeds(self._transform_key, idx)
        if isinstance(t, Transform):
            size = (int(images.shape[-2]), int(images.shape[-1]))
            plist = [t.sample_params(1, size, torch.Generator().manual_seed(int(s))) for s in seeds]
            dev_labels = None if labels is None else labels.to(images.device)
            if self._block_transform:
                try:
                    params = _cat_params(plist)
                except _ParamsMismatch:
                    params = None
                if params is not None:
                    return self._unpack(t(images, labels=dev_labels, params=params)
                                        if dev_labels is not None else t(images, params=params), labels)
            outs, labs = [], []
            for j, (s, p) in enumerate(zip(seeds, plist)):
                with seeded_global_rngs(int(s)):
                    res = t(images[j:j + 1], labels=dev_labels[j:j + 1], params=p) if dev_labels is not None \
                        else t(images[j:j + 1], params=p)
                x, y = self._unpack(res, None if labels is None else labels[j:j + 1])
                outs.append(x)
                labs.append(y)
            return self._stack(outs, idx), (None if labels is None else torch.cat(labs))
        # any other callable: one CPU image at a time, global RNGs seeded per index
        cpu = images.float().cpu()
        outs = []
        for j, s in enumerate(seeds):
            with seeded_global_rngs(int(s)):
                out = t(cpu[j].clone())
            if not isinstance(out, torch.Tensor) or out.dim() != 3 or \
                    not (out.dtype == torch.uint8 or out.dtype.is_floating_point):
                raise TypeError(f"transform must return one image as a uint8 or float tensor (C, H, W); for item "
                                f"{int(idx[j])} it returned {getattr(out, 'dtype', type(out).__name__)} "
                                f"{tuple(getattr(out, 'shape', ()))}")
            outs.append(out[None] if out.dtype == torch.uint8 else out[None].float())
        return self._stack(outs, idx), labels

    @staticmethod
    def _unpack(res: Any, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if isinstance(res, dict):
            return res["image"], res.get("labels", labels)
        return res, labels

    @staticmethod
    def _stack(outs: list[torch.Tensor], idx: np.ndarray) -> torch.Tensor:
        shapes = {tuple(o.shape[1:]) for o in outs}
        if len(shapes) > 1 or len({o.dtype for o in outs}) > 1:
            raise ValueError(f"transform must return images of one shape and dtype; items {int(idx[0])}.."
                             f"{int(idx[-1])} gave shapes {sorted(shapes)}")
        return torch.cat(outs)

    def _make_chunk(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        start, stop = c * self.chunk_size, min((c + 1) * self.chunk_size, self.length)
        images, labels = [], []
        for b0 in range(start, stop, self.block_size):
            idx = np.arange(b0, b0 + self.block_size, dtype=np.int64)  # a full block, padded past the end
            y = self._labels_for(idx)
            x = self._forward_block(idx, y)
            self._raw_size = (int(x.shape[-2]), int(x.shape[-1]))
            x, y = self._transform_block(idx, x, y)
            n = min(self.block_size, stop - b0)
            images.append(convert_images(x[:n], self.dtype).cpu())
            labels.append(torch.full((n,), -1, dtype=torch.int64) if y is None else y[:n].cpu())
        return torch.cat(images), torch.cat(labels)

    def _chunk(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        with self._lock:
            hit = self._cache.get(c)
            if hit is not None:
                self._cache.move_to_end(c)
                return hit
            chunk = self._make_chunk(c)
            self.chunks_generated += 1
            self._cache[c] = chunk
            while len(self._cache) > self.cache_chunks:
                self._cache.popitem(last=False)
            return chunk

    def clear_cache(self) -> None:
        """Drop every cached chunk (items are regenerated, bit for bit, when asked again)."""
        with self._lock:
            self._cache.clear()

    # ------------------------------------------------------------------ Dataset protocol
    def __len__(self) -> int:
        return self.length

    def _check_index(self, index: Any) -> int:
        i = _as_index("index", index)
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError(f"index {index} is out of range for a SyntheticDataset of length {self.length}")
        return i

    @staticmethod
    def _label_item(label: torch.Tensor) -> int | torch.Tensor:
        return int(label) if label.dim() == 0 and not label.dtype.is_floating_point else label.clone()

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int | torch.Tensor]:
        i = self._check_index(index)
        images, labels = self._chunk(i // self.chunk_size)
        j = i % self.chunk_size
        return images[j].clone(), self._label_item(labels[j])

    def get_batch(self, indices: slice | range | Sequence[int] | torch.Tensor | np.ndarray
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Many items at once as ``(images (n, C, H, W), labels (n,))``, each chunk generated at most once.

        Args:
            indices: a slice, range, sequence, tensor or array of ints (negative ones count from the end).

        Example:
            >>> import genaug as ga
            >>> x, y = ga.SyntheticDataset("mnist-cgan", length=64).get_batch(slice(0, 10))
            >>> x.shape, y.tolist()
            (torch.Size([10, 1, 28, 28]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        """
        if isinstance(indices, slice):
            indices = range(*indices.indices(self.length))
        idx = [self._check_index(i) for i in (indices.tolist() if isinstance(indices, (torch.Tensor, np.ndarray))
                                               else indices)]
        if not idx:
            images, labels = self._chunk(0)
            return images[:0].clone(), labels[:0].clone()
        arr = torch.tensor(idx, dtype=torch.int64)
        chunk_of = arr // self.chunk_size
        images_out: torch.Tensor | None = None
        labels_out: torch.Tensor | None = None
        for c in sorted(set(chunk_of.tolist())):
            images, labels = self._chunk(c)
            where = (chunk_of == c).nonzero().squeeze(1)
            rows = arr[where] - c * self.chunk_size
            if images_out is None:
                images_out = images.new_empty((len(idx), *images.shape[1:]))
                labels_out = labels.new_empty((len(idx), *labels.shape[1:]))
            images_out[where] = images[rows]
            labels_out[where] = labels[rows]  # type: ignore[index]
        assert images_out is not None and labels_out is not None
        return images_out, labels_out

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int | torch.Tensor]]:
        """Batched fetch used by ``DataLoader`` (one lookup per chunk instead of per item)."""
        images, labels = self.get_batch(indices)
        return [(images[j], self._label_item(labels[j])) for j in range(len(indices))]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int | torch.Tensor]]:
        for i in range(self.length):
            yield self[i]

    # ------------------------------------------------------------------ identity, pickling
    def describe(self) -> dict[str, Any]:
        """JSON-able facts that fix every item's bits (for manifests and "same dataset?" checks).

        ``chunk_size`` and ``cache_chunks`` are not listed: they never change an item.
        """
        from genaug.generative.checkpoint import _genaug_version, tensor_digest

        sha = tensor_digest(self.model.state_dict()) if isinstance(self.model, nn.Module) else None
        t = self.transform
        if isinstance(t, Transform):
            try:
                tdesc: Any = t.to_dict()
            except Exception:  # a third-party stage cannot be serialized
                tdesc = repr(t)
        else:
            tdesc = None if t is None else repr(t)
        seq_sha = None
        if self._sequence is not None:
            import hashlib

            seq_sha = hashlib.sha256(self._sequence.numpy().astype("<i8").tobytes()).hexdigest()
        return {
            "type": "SyntheticDataset", "model": self.model_name, "model_sha256": sha,
            "num_classes": self.num_classes, "seed": self.seed, "length": self.length,
            "labels": self.label_mode, "class_weights": list(self.class_weights) if self.class_weights else None,
            "constant_label": getattr(self, "_constant", None), "labels_sha256": seq_sha,
            "truncation": self.truncation, "transform": tdesc, "dtype": str(self.dtype).replace("torch.", ""),
            "block_size": self.block_size, "device_type": self.device.type, "torch_version": torch.__version__,
            "genaug_version": _genaug_version(),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()  # workers start empty: no need to ship the parent's chunks
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"SyntheticDataset(model={self.model_name!r}, length={self.length}, seed={self.seed}, "
                f"labels={self.label_mode!r}, num_classes={self.num_classes}, dtype={self.dtype}, "
                f"device={self.device}, chunk_size={self.chunk_size}, block_size={self.block_size}, "
                f"transform={'None' if self.transform is None else type(self.transform).__name__})")

