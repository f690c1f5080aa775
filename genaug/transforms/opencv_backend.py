"""The fused chain on OpenCV's CPU kernels: ``Compose([...], backend="opencv")``.

The torch backend (the default) runs a fused chain on whole batches: one ``grid_sample`` for all
geometric ops, one colour map, then the pixel ops, in float32. On a CPU fed uint8 images that costs
a float conversion and a dozen memory passes, where OpenCV works on uint8 with fixed-point SIMD.
This backend runs the *same* fused chain (the same parameters, fused matrices, colour maps and
blur taps) sample by sample with OpenCV, spread over ``torch.get_num_threads()`` threads: one
``warpAffine`` for all geometric ops (their matrices are affine, as the torch backend takes them), one
``cv2.transform`` for all colour ops, and each pixel op's :meth:`~genaug.transforms.base.Transform.
opencv_kernel`. It takes uint8 (kept uint8 from end to end) and float32 images.

What differs from the torch backend, by design of OpenCV's kernels: a uint8 image is rounded after
every op instead of once at the end, OpenCV 4 rounds sampling positions to 1/32 pixel, and where
bicubic taps reach past the border OpenCV repeats edge pixels where ``grid_sample`` clamps the
coordinate. Outputs agree to a level or two of 255 (``tests/test_opencv_backend.py`` bounds it,
with OpenCV 5.0 here: mean differences of a few hundredths of a level); everything else holds
as in the torch backend: a batch equals each sample run alone, replay is exact, targets (masks,
boxes, keypoints) are mapped by the torch code with the same matrices, and the constant fill
blends by footprint coverage (no darkened edges on upscales).

The chain runs on OpenCV up to the first op it has no kernel for (a pixel op without
:meth:`~genaug.transforms.base.Transform.opencv_kernel`: only the Gaussian blur has one now; a
generative op; ``OneOf`` branches of different sizes); the rest runs on the torch backend, so a
``Normalize`` or a noise op at the end keeps the fast path for everything before it. A call it
cannot run at all goes to the torch backend unchanged: a tensor off the CPU, float64, autograd,
more than 4 channels, sides above 32767. :func:`unsupported` says why.

Example:
    >>> import torch, genaug as ga
    >>> aug = ga.Compose([ga.RandomRotation(30), ga.ColorJitter(0.4, 0.4)], seed=0, backend="opencv")
    >>> x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    >>> aug(x).dtype, aug(x).shape
    (torch.uint8, torch.Size([4, 3, 32, 32]))
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

if TYPE_CHECKING:
    from genaug.transforms.pipeline import Batch, Stage

#: The backends a Compose accepts.
BACKENDS = ("torch", "opencv")

#: ``kernel(image, i) -> image``: an op on sample ``i``, an ``(H, W, C)`` or ``(H, W)`` NumPy array.
OpenCVKernel = Callable[[np.ndarray, int], np.ndarray]

#: OpenCV's remap takes sizes below SHRT_MAX.
_MAX_SIDE = 32767
#: samples per task handed to a thread (small, so that threads balance unequal samples)
_TASK = 8
#: below this many output values per sample the per-sample Python work (which holds the GIL)
#: outweighs OpenCV's: more threads only contend (measured on 2 cores: 64x64 46 ms with 1 thread,
#: 66 ms with 2; 128x128 even; 160x160 182 vs 138 ms; B=256, the 5-op pipeline)
_THREADS_MIN_VALUES = 3 * 128 * 128
#: the most coverage values computed at once for a block of samples (:func:`_coverage_block`)
_COVERAGE_BLOCK_VALUES = 8 * 64 * 64
#: the per-sample Python work holds the GIL, so threads stop paying off somewhere above this
#: (a guess: only 2 cores were measured)
_MAX_THREADS = 8


def cv2_module() -> Any:
    """OpenCV, imported on first use, with an actionable error when it is missing."""
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - exercised only without OpenCV installed
        raise ImportError(
            'backend="opencv" needs OpenCV: pip install "genaug[opencv]" (or opencv-python-headless)'
        ) from exc
    return cv2


def check_backend(value: Any) -> str:
    """Validate a ``backend`` argument (and that OpenCV imports when it is asked for)."""
    if not isinstance(value, str) or value not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {value!r}")
    if value == "opencv":
        cv2_module()
    return value


def separable_filter(image: np.ndarray, ky: np.ndarray, kx: np.ndarray, clamp: bool = True) -> np.ndarray:
    """``image`` filtered by rows with ``ky`` and by columns with ``kx``, mirrored borders (torch's ``reflect``).

    uint8 results are rounded and saturated by OpenCV; float32 ones are clamped to 0..1 when
    ``clamp`` (a blur of 0..1 values, up to the last ulp).
    """
    cv2 = cv2_module()
    out = cv2.sepFilter2D(image, -1, kx, ky, borderType=cv2.BORDER_REFLECT_101)
    return _unit_range(out) if clamp else out


def _unit_range(image: np.ndarray) -> np.ndarray:
    """Clamp a float32 image to 0..1 in place (uint8 images are saturated by OpenCV already).

    Two in-place thresholds: the same numbers as ``np.minimum(np.maximum(x, 0), 1)`` at ~4 us
    instead of ~14 us for 64x64x3 (NumPy's per-call cost is most of a small image's time).
    """
    if image.dtype == np.float32:
        cv2 = cv2_module()
        cv2.threshold(image, 1.0, 1.0, cv2.THRESH_TRUNC, dst=image)  # x > 1 -> 1
        cv2.threshold(image, 0.0, 0.0, cv2.THRESH_TOZERO, dst=image)  # x <= 0 -> 0
    return image


# ---------------------------------------------------------------------------- planning
def unsupported(groups: list[tuple[str, list[Stage]]], batch: Batch) -> str | None:
    """Why the OpenCV backend cannot run all of ``groups`` on ``batch`` (None: it can)."""
    reason = _batch_reason(batch)
    if reason is not None:
        return reason
    for kind, group in groups:
        reason = _group_reason(kind, group)
        if reason is not None:
            return reason
    return None


def _batch_reason(batch: Batch) -> str | None:
    from genaug.transforms.base import needs_autograd

    x = batch.image
    if x.device.type != "cpu":
        return f"the image is on {x.device}, not the CPU"
    if x.dtype not in (torch.uint8, torch.float32):
        return f"the working dtype is {x.dtype} (uint8 and float32 run on OpenCV)"
    if needs_autograd(x):
        return "the image requires grad"
    if not 1 <= x.shape[1] <= 4:
        return f"the image has {x.shape[1]} channels (OpenCV's warps take 1 to 4)"
    if max(x.shape[-2:]) > _MAX_SIDE:
        return f"the image is {tuple(x.shape[-2:])} (OpenCV's warps take sides below {_MAX_SIDE})"
    if batch.normalized or batch.placeholder:
        return "the batch is already normalized"
    return None


def _group_reason(kind: str, group: list[Stage]) -> str | None:
    from genaug.transforms.base import Transform

    if kind not in ("geometric", "color", "pixel"):
        return f"a {kind} stage ({type(group[0].leaf).__name__}) has no OpenCV path"
    if kind == "pixel":
        for stage in group:
            if type(stage.leaf).opencv_kernel is Transform.opencv_kernel:
                return f"{type(stage.leaf).__name__} has no OpenCV kernel"
    return None


def run(groups: list[tuple[str, list[Stage]]], batch: Batch) -> tuple[Batch, list[tuple[str, list[Stage]]]] | None:
    """Run the longest leading run of ``groups`` that OpenCV can on ``batch``; None when it is empty.

    Returns the batch after those groups, with its image in the working dtype (uint8 stays uint8,
    float32 stays float32) and its targets mapped, and the groups left for the torch backend
    (say, a ``Normalize`` or a noise op at the end of the chain).
    """
    if _batch_reason(batch) is not None:
        return None
    from genaug.transforms.pipeline import _on_cpu, chain_matrix, group_warp_options
    from genaug.transforms.warp import warp_targets

    b = batch.batch_size
    size = batch.size
    channels = batch.image.shape[1]
    scale = 255.0 if batch.image.dtype == torch.uint8 else 1.0
    steps: list[OpenCVKernel] = []
    done = 0
    for kind, group in groups:
        if _group_reason(kind, group) is not None:
            break
        if kind == "geometric":
            options = group_warp_options(group)
            matrix, out_size = chain_matrix(group, size, b)
            if max(out_size) > _MAX_SIDE:
                break
            steps.append(_warp_step(matrix, size, out_size, options, channels, scale))
            batch = warp_targets(batch, matrix, out_size, options)
            size = out_size
        elif kind == "color":
            step = _color_step(group, b, channels, scale)
            if step is None:
                break
            steps.append(step)
        else:
            (stage,) = group  # (pixel stages are never grouped)
            params = _on_cpu(stage.params)
            kernel = stage.leaf.opencv_kernel(params, size)
            if kernel is None:
                break
            steps.append(_gated(kernel, params["apply"].numpy()))
        done += 1
    if not steps:
        return None
    return replace(batch, image=_run_samples(batch.image, steps, size)), groups[done:]


def _gated(kernel: OpenCVKernel, apply: np.ndarray) -> OpenCVKernel:
    if apply.all():
        return kernel
    return lambda image, i: kernel(image, i) if apply[i] else image


# ---------------------------------------------------------------------------- the fused warp
def _warp_step(
    matrix: torch.Tensor, in_size: tuple[int, int], out_size: tuple[int, int], options: Any, channels: int, scale: float
) -> OpenCVKernel:
    """One warp of sample ``i`` through its fused matrix: antialias pre-blur, warp, fill by coverage.

    As the torch backend, the constant fill samples with the edge repeated and then blends the
    fill in by the fraction of each output pixel's footprint inside the source (computed per
    sample, only for samples whose output reaches outside it).
    """
    from genaug.transforms.warp import (antialias_taps, coverage_coefficients, footprints_inside_each,
                                       is_pixel_permutation)

    cv2 = cv2_module()
    m = matrix.detach().to(torch.float64).numpy()
    mode = "nearest" if is_pixel_permutation(matrix) else options.interpolation
    flags = {"bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST, "bicubic": cv2.INTER_CUBIC}[mode]
    flags |= cv2.WARP_INVERSE_MAP  # our matrices map output pixels to input pixels, as OpenCV's inverse map
    # constant fill: sample with the edge repeated, then blend the fill in by coverage (as the torch backend)
    border = cv2.BORDER_REFLECT if options.padding_mode == "reflect" else cv2.BORDER_REPLICATE
    h, w = out_size

    pre_blur: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if options.antialias and mode != "nearest":
        found = antialias_taps(matrix, in_size)
        if found is not None:
            needs, taps = found
            taps_np = taps.to(torch.float32).numpy()
            # each sample's own taps, without the zeros that pad them to the batch's widest kernel:
            # OpenCV sums a longer kernel in another order, and a sample must not depend on its batch
            pre_blur = {int(i): (_own_taps(taps_np[k, 0]), _own_taps(taps_np[k, 1]))
                        for k, i in enumerate(needs.nonzero().flatten().tolist())}

    # constant fill: which samples reach outside the source, and the fill (None: zeros)
    coeffs: np.ndarray | None = None
    outside = np.zeros(m.shape[0], dtype=bool)
    fill: np.ndarray | None = None
    if options.padding_mode == "constant":
        outside = ~footprints_inside_each(matrix, in_size, out_size)
        if outside.any():
            coeffs = coverage_coefficients(matrix, in_size)
        values = options.fill if isinstance(options.fill, tuple) else (options.fill,) * channels
        if any(v != 0 for v in values):
            level = np.asarray(values[:channels], dtype=np.float64) * scale
            fill = np.empty((h, w, channels), dtype=np.uint8 if scale == 255.0 else np.float32)
            fill[...] = np.round(level) if scale == 255.0 else level
            if channels == 1:
                fill = fill[..., 0]

    # Small samples get their coverage computed a few at a time (in a row, so on one thread: they
    # divide a task), as NumPy's per-call cost would otherwise be most of their time.
    block, per_block = threading.local(), _coverage_block(out_size)

    def coverage_of(i: int) -> np.ndarray:
        assert coeffs is not None
        start = i - i % per_block
        if getattr(block, "start", None) != start:
            block.start, block.coverage = start, edge_coverage_numpy(coeffs[start:start + per_block], out_size)
        return block.coverage[i - start]

    def step_fn(image: np.ndarray, i: int) -> np.ndarray:
        taps = pre_blur.get(i)
        if taps is not None:
            image = separable_filter(image, taps[0], taps[1], clamp=False)
        out = cv2.warpAffine(image, m[i, :2], (w, h), flags=flags, borderMode=border)
        if outside[i]:
            coverage = coverage_of(i)
            if mode == "nearest":
                coverage = (coverage >= 0.5).astype(np.float32)
            if fill is not None:
                return cv2.blendLinear(out, fill, coverage, 1.0 - coverage)
            weights = coverage if channels == 1 else cv2.merge([coverage] * channels)
            return cv2.multiply(out, weights, dtype=cv2.CV_8U if scale == 255.0 else cv2.CV_32F)
        return out

    return step_fn


def edge_coverage_numpy(coeffs: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """:func:`~genaug.transforms.warp.edge_coverage` in NumPy float32 ``(n, h, w)``, from
    :func:`~genaug.transforms.warp.coverage_coefficients` rows ``(n, 2, 6)``.

    The same float32 operations in the same order as the torch version, so the same numbers
    (whatever ``n``: each sample's values depend on its own row only).
    """
    h, w = out_size
    k = coeffs.astype(np.float32)
    j, i = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    # (n, 2, h, w) for both axes at once, as the torch version: a column (k1 i + k2) plus a row (k0 j)
    near = (k[..., 1:2] * i + k[..., 2:3])[..., :, None] + (k[..., 0:1] * j)[..., None, :]
    far = (k[..., 4:5] * i + k[..., 5:6])[..., :, None] + (k[..., 3:4] * j)[..., None, :]
    inside = np.minimum(near, far, out=near)
    _unit_range(inside.reshape(-1, w))
    return np.multiply(inside[:, 0], inside[:, 1], out=inside[:, 0])


def _coverage_block(out_size: tuple[int, int]) -> int:
    """Samples whose coverage is computed at once: a power of two dividing :data:`_TASK`, up to
    :data:`_COVERAGE_BLOCK_VALUES` values (so the block's temporaries stay in the cache)."""
    per_block = _TASK
    while per_block > 1 and per_block * out_size[0] * out_size[1] > _COVERAGE_BLOCK_VALUES:
        per_block //= 2
    return per_block


def _own_taps(taps: np.ndarray) -> np.ndarray:
    """A symmetric kernel without its zero padding (at least the centre tap)."""
    nonzero = np.flatnonzero(taps)
    if nonzero.size == 0:
        return taps[len(taps) // 2:len(taps) // 2 + 1]
    r = len(taps) // 2 - int(nonzero[0])
    return taps[len(taps) // 2 - r:len(taps) // 2 + r + 1]


# ---------------------------------------------------------------------------- the fused colour map
def _color_step(stages: list[Stage], b: int, channels: int, scale: float) -> OpenCVKernel | None:
    """One ``cv2.transform`` per sample with the fused colour map of ``stages``.

    The map's offset depends on the mean colour of the sample (contrast), known only once the
    sample has been warped. It is affine in that mean, so it is built for the whole batch at mean
    0 and at each unit mean, and each sample adds its own ``g @ mean``. None when the matrix part
    itself depends on the mean (no colour op does that now; the torch backend then runs).
    """
    from genaug.transforms.pipeline import fused_color_affine, uses_mean

    cv2 = cv2_module()
    zero = torch.zeros(b, channels, dtype=torch.float64)
    a0, t0 = fused_color_affine(stages, zero)
    g: np.ndarray | None = None
    if uses_mean(stages):
        columns = []
        for k in range(channels):
            unit = zero.clone()
            unit[:, k] = 1.0
            ak, tk = fused_color_affine(stages, unit)
            if not torch.equal(ak, a0):
                return None
            columns.append(tk - t0)
        g = torch.stack(columns, dim=-1).numpy()  # (B, C, C): t(mean) = t0 + g @ mean
    maps = torch.cat([a0, t0.unsqueeze(-1) * scale], dim=-1).numpy()  # (B, C, C+1), offsets in pixel units

    def step_fn(image: np.ndarray, i: int) -> np.ndarray:
        mi = maps[i]
        if g is not None:
            mean = np.asarray(cv2.mean(image)[:channels])  # in pixel units: g @ mean is then too
            mi = mi.copy()
            mi[:, channels] += g[i] @ mean
        return _unit_range(cv2.transform(image, mi))

    return step_fn


# ---------------------------------------------------------------------------- running the samples
def _run_samples(x: torch.Tensor, steps: list[OpenCVKernel], out_size: tuple[int, int]) -> torch.Tensor:
    """Each sample of ``x`` (B, C, H, W) through ``steps`` in HWC layout, written to a new (B, C, h, w) tensor."""
    from genaug.transforms.base import new_result

    cv2 = cv2_module()
    b, c = x.shape[:2]
    out = new_result((b, c, *out_size), x.dtype, x.device)
    source, target = x.numpy(), out.numpy()
    hwc = x.permute(0, 2, 3, 1)
    if c == 1:
        read: Callable[[int], np.ndarray] = lambda i: np.ascontiguousarray(source[i, 0])  # noqa: E731 (a view if it is)
    elif hwc.is_contiguous():  # channels_last input: already HWC
        hwc_np = hwc.numpy()
        read = lambda i: hwc_np[i]  # noqa: E731
    elif x.is_contiguous():
        read = lambda i: cv2.merge([source[i, k] for k in range(c)])  # noqa: E731
    else:
        read = lambda i: np.ascontiguousarray(source[i].transpose(1, 2, 0))  # noqa: E731

    def one(i: int) -> None:
        image = read(i)
        for step in steps:
            image = step(image, i)
        if c == 1:
            target[i, 0] = image
        elif image.dtype == np.uint8:  # the fastest planar write for each dtype (5-8 us at 64x64x3)
            planes = [target[i, k] for k in range(c)]
            if any(a is not b for a, b in zip(cv2.split(image, planes), planes)):  # (OpenCV reallocated)
                raise RuntimeError(f"OpenCV did not write sample {i} in place: its shape {image.shape} is not {tuple(target.shape[2:])}")
        else:
            np.copyto(target[i], image.transpose(2, 0, 1))

    _for_each(one, b, threaded=c * out_size[0] * out_size[1] >= _THREADS_MIN_VALUES)
    return out


_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _threads() -> int:
    """Threads for the per-sample loop: torch's intra-op count (1 in DataLoader workers)."""
    return torch.get_num_threads()


def _for_each(fn: Callable[[int], None], n: int, threaded: bool = True) -> None:
    """``fn(i)`` for ``i`` in ``range(n)``, on ``torch.get_num_threads()`` threads when ``threaded`` (OpenCV releases the GIL)."""
    threads = min(_threads(), _MAX_THREADS, (n + _TASK - 1) // _TASK) if threaded else 1
    if threads <= 1:
        for i in range(n):
            fn(i)
        return
    key = (os.getpid(), threads)  # a pool does not survive a fork (DataLoader workers)
    pool = _pools.get(key)
    if pool is None:
        pool = _pools[key] = ThreadPoolExecutor(threads, thread_name_prefix="genaug-opencv")

    def task(start: int) -> None:
        for i in range(start, min(n, start + _TASK)):
            fn(i)

    for _ in pool.map(task, range(0, n, _TASK)):  # re-raises a sample's exception here
        pass
