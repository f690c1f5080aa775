"""Throughput of one 5-op augmentation pipeline: genaug vs kornia, albumentations and torchvision.

The same pipeline (RandomResizedCrop, rotation, scale, colour jitter, Gaussian blur; every op
with p=1 and per-sample parameters) runs side by side in one process:

* genaug: ``ga.Compose([...])`` on a ``(B, C, H, W)`` tensor, with ``antialias=True`` (the
  default) and ``antialias=False``;
* kornia: ``kornia.augmentation.AugmentationSequential`` on the same tensor;
* albumentations: ``A.Compose`` in a Python loop over a list of HWC uint8 numpy arrays, its
  native and fastest form, in every row (a float32 row's albumentations time is its uint8 time:
  what a user who can choose would run);
* torchvision: ``transforms.v2.Compose`` in a Python loop over ``(C, H, W)`` tensors.

Every library's time covers the whole batch. Thread counts are pinned (``torch.set_num_threads``,
``cv2.setNumThreads``) and printed. Each case gets warm-up calls, then ``--repeats`` timed calls
taken round-robin over the libraries (so load from other processes hits them alike); the median is
reported as images/s, with genaug's speed-up over each peer. Before timing, every
output is checked for its shape and dtype, and for differing from the input, so the benchmark
cannot time a no-op. A per-stage timing of genaug shows which kernel dominates.

Usage (from the repository root):
    python benchmarks/throughput.py                         # full run on the CPU
    python benchmarks/throughput.py --quick                 # smoke test, well under a minute
    python benchmarks/throughput.py --device all --sizes 64 224 --batch 256 \\
        --dtypes float32 uint8 --repeats 5 --threads 2 --out benchmarks/results_cpu.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

LIBRARIES = ("genaug", "genaug (antialias=False)", "kornia", "albumentations", "torchvision")
TARGET_SPEEDUP = 6.0  # the target for genaug over kornia and albumentations (CPU, 64x64, float32)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224], help="square image sizes (input = output)")
    parser.add_argument("--batch", type=int, default=256, help="images per batch")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "uint8"], choices=["float32", "uint8"])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per case (the median is reported)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed calls per case before timing, besides the sanity-check call"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch and OpenCV thread count")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu")
    parser.add_argument("--quick", action="store_true", help="smoke test: batch <= 8, no extra warm-up, 1 repeat")
    parser.add_argument("--out", default=None, help="markdown file to write (default benchmarks/results_<device>.md)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.warmup, args.repeats = min(args.batch, 8), 0, 1
    if min(args.sizes) < 8 or args.batch < 1 or args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("sizes must be >= 8 and batch, repeats, threads >= 1, warmup >= 0")
    if args.out is None:
        args.out = f"benchmarks/results_{args.device}.md"
    return args


# Thread pools are sized when torch / OpenCV load, so pin them before importing either.
_ARGS = parse_args() if __name__ == "__main__" else None
if _ARGS is not None:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = str(_ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import genaug as ga  # noqa: E402

try:
    import cv2  # noqa: E402
except ImportError:  # pragma: no cover - only without the peers installed
    cv2 = None


# ------------------------------------------------------------------------------- pipelines
# One place for the shared parameters, so the five libraries cannot drift apart.
CROP_SCALE = (0.5, 1.0)
DEGREES = 30.0
ZOOM = (0.8, 1.2)
JITTER = dict(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
BLUR_KERNEL = 5
BLUR_SIGMA = (0.1, 2.0)


@dataclass
class Case:
    """One library on one (device, size, dtype): inputs already in its native layout."""

    library: str
    device: str
    size: int
    dtype: str
    fn: Callable[[Any], Any]
    inputs: Any


def genaug_pipeline(size: int, antialias: bool, seed: int, backend: str = "torch") -> Callable[[torch.Tensor], torch.Tensor]:
    return ga.Compose(
        [
            ga.RandomResizedCrop(size=(size, size), scale=CROP_SCALE),
            ga.RandomRotation(degrees=DEGREES),
            ga.RandomScale(scale=ZOOM),
            ga.ColorJitter(**JITTER),
            ga.RandomGaussianBlur(kernel_size=BLUR_KERNEL, sigma=BLUR_SIGMA),
        ],
        seed=seed,
        interpolation="bilinear",
        antialias=antialias,
        backend=backend,
    )


def kornia_pipeline(size: int, device: str) -> Callable[[torch.Tensor], torch.Tensor]:
    import kornia.augmentation as K

    seq = K.AugmentationSequential(
        # align_corners=False everywhere: the pixel-centre convention of genaug and torchvision.
        K.RandomResizedCrop((size, size), scale=CROP_SCALE, resample="bilinear", align_corners=False, p=1.0),
        K.RandomRotation(DEGREES, resample="bilinear", align_corners=False, p=1.0),
        K.RandomAffine(degrees=0, scale=ZOOM, resample="bilinear", align_corners=False, p=1.0),
        K.ColorJitter(**JITTER, p=1.0),
        K.RandomGaussianBlur((BLUR_KERNEL, BLUR_KERNEL), BLUR_SIGMA, p=1.0),
    ).to(device)

    def run(x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:  # kornia works on float images: convert in and out, as genaug does
            return seq(x.float().div_(255.0)).mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
        return seq(x)

    return run


def albumentations_pipeline(size: int) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    import albumentations as A

    linear, constant = cv2.INTER_LINEAR, cv2.BORDER_CONSTANT
    aug = A.Compose(
        [
            A.RandomResizedCrop(size=(size, size), scale=CROP_SCALE, interpolation=linear, p=1.0),
            A.Rotate(limit=DEGREES, interpolation=linear, border_mode=constant, fill=0, p=1.0),
            A.Affine(scale=ZOOM, keep_ratio=True, interpolation=linear, border_mode=constant, fill=0, p=1.0),
            A.ColorJitter(**JITTER, p=1.0),
            A.GaussianBlur(blur_limit=(BLUR_KERNEL, BLUR_KERNEL), sigma_limit=BLUR_SIGMA, p=1.0),
        ],
        seed=0,
    )
    return lambda images: [aug(image=im)["image"] for im in images]


def torchvision_pipeline(size: int) -> Callable[[list[torch.Tensor]], list[torch.Tensor]]:
    from torchvision.transforms import v2

    bilinear = v2.InterpolationMode.BILINEAR
    aug = v2.Compose(
        [
            v2.RandomResizedCrop((size, size), scale=CROP_SCALE, interpolation=bilinear, antialias=True),
            v2.RandomRotation(DEGREES, interpolation=bilinear),
            v2.RandomAffine(degrees=0, scale=ZOOM, interpolation=bilinear),
            v2.ColorJitter(**JITTER),
            v2.GaussianBlur(BLUR_KERNEL, sigma=BLUR_SIGMA),
        ]
    )
    return lambda images: [aug(im) for im in images]


def make_batch(batch: int, size: int, dtype: str, seed: int) -> torch.Tensor:
    """A smooth random image batch (noise upsampled), so blur and crops do real work."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, max(size // 8, 2), max(size // 8, 2), generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    x = (x + 0.1 * torch.rand(x.shape, generator=g)).clamp_(0, 1)
    return (x * 255).round_().to(torch.uint8) if dtype == "uint8" else x.contiguous()


def build_cases(device: str, size: int, dtype: str, batch: int, seed: int) -> list[Case]:
    x = make_batch(batch, size, dtype, seed)
    xd = x.to(device)
    cases = [
        Case("genaug", device, size, dtype, genaug_pipeline(size, True, seed), xd),
        Case("genaug (antialias=False)", device, size, dtype, genaug_pipeline(size, False, seed), xd),
    ]
    if device == "cpu" and cv2 is not None:  # the same pipeline on OpenCV's kernels
        cases.append(Case("genaug (backend=opencv)", device, size, dtype, genaug_pipeline(size, True, seed, "opencv"), xd))
    with contextlib.suppress(ImportError):
        cases.append(Case("kornia", device, size, dtype, kornia_pipeline(size, device), xd))
    if device == "cpu":  # per-image CPU libraries
        if cv2 is not None:
            with contextlib.suppress(ImportError):
                # uint8 in every row: its fastest form (float32 arrays run ~1.5-2x slower in OpenCV)
                u8 = x if dtype == "uint8" else (x * 255).round_().to(torch.uint8)
                hwc = [np.ascontiguousarray(im) for im in u8.permute(0, 2, 3, 1).numpy()]
                cases.append(Case("albumentations", device, size, "uint8", albumentations_pipeline(size), hwc))
        with contextlib.suppress(ImportError):
            cases.append(Case("torchvision", device, size, dtype, torchvision_pipeline(size), list(x.unbind(0))))
    return cases


# ------------------------------------------------------------------------------- sanity check
def _as_list(out: Any) -> list[Any]:
    return list(out.unbind(0)) if isinstance(out, torch.Tensor) else list(out)


def check_output(case: Case, out: Any, batch: int) -> None:
    """Assert every image has the expected shape and dtype and that the batch actually changed."""
    images, inputs = _as_list(out), _as_list(case.inputs)
    assert len(images) == batch, f"{case.library}: {len(images)} outputs for {batch} inputs"
    hwc = isinstance(images[0], np.ndarray)
    want_shape = (case.size, case.size, 3) if hwc else (3, case.size, case.size)
    want_dtype = np.dtype(case.dtype) if hwc else getattr(torch, case.dtype)
    for im in images:
        assert tuple(im.shape) == want_shape, f"{case.library}: output shape {tuple(im.shape)}, want {want_shape}"
        assert im.dtype == want_dtype, f"{case.library}: output dtype {im.dtype}, want {want_dtype}"
    if isinstance(images[0], torch.Tensor):
        assert images[0].device.type == case.device, f"{case.library}: output on {images[0].device}, want {case.device}"
    changed = sum(not np.array_equal(np.asarray(_cpu(a)), np.asarray(_cpu(b))) for a, b in zip(images, inputs))
    assert changed == batch, f"{case.library}: only {changed} of {batch} images changed (a no-op is being timed?)"


def _cpu(a: Any) -> Any:
    return a.cpu() if isinstance(a, torch.Tensor) else a


# ------------------------------------------------------------------------------- timing
def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_cases(cases: list[Case], warmup: int, repeats: int, tick: Callable[[], None]) -> list[tuple[float, float]]:
    """Median wall and process-CPU seconds per whole-batch call of each case.

    After ``warmup`` untimed calls each, the ``repeats`` timed calls go round-robin over the cases,
    so a burst of load from other processes on a shared machine hits every library alike. CPU time
    sums all of this process's threads; wall time well above ``CPU time / threads`` means the
    process waited for a core.
    """
    for case in cases:
        for _ in range(warmup):
            case.fn(case.inputs)
        _sync(case.device)
    wall: list[list[float]] = [[] for _ in cases]
    cpu: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for i, case in enumerate(cases):
            start, start_cpu = time.perf_counter(), time.process_time()
            case.fn(case.inputs)
            _sync(case.device)
            wall[i].append(time.perf_counter() - start)
            cpu[i].append(time.process_time() - start_cpu)
        tick()
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu)]


@contextlib.contextmanager
def _timed_attr(obj: Any, name: str, totals: dict[str, float], label: str, device: str) -> Iterator[None]:
    """Temporarily wrap ``obj.name`` so its wall time (device-synced) accumulates in ``totals[label]``."""
    original = obj.__dict__[name] if isinstance(obj, type) else getattr(obj, name)
    target = getattr(obj, name) if isinstance(original, classmethod) else original

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _sync(device)
        start = time.perf_counter()
        try:
            return target(*args, **kwargs)
        finally:
            _sync(device)
            totals[label] = totals.get(label, 0.0) + time.perf_counter() - start

    # A classmethod becomes a static wrapper around the bound original; functions stay functions.
    setattr(obj, name, staticmethod(wrapper) if isinstance(original, classmethod) else wrapper)
    try:
        yield
    finally:
        setattr(obj, name, original)


class _GridSampleTimer:
    """Stands in for ``torch.nn.functional`` inside genaug's warp module, timing ``grid_sample``.

    Its total goes to the label of the ``grid_sample`` row of :data:`STAGES`.
    """

    def __init__(self, totals: dict[str, float], device: str) -> None:
        self._totals, self._device = totals, device

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.nn.functional, name)

    def grid_sample(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        _sync(self._device)
        start = time.perf_counter()
        out = torch.nn.functional.grid_sample(*args, **kwargs)
        _sync(self._device)
        self._totals[GRID_SAMPLE] = self._totals.get(GRID_SAMPLE, 0.0) + time.perf_counter() - start
        return out


GRID_SAMPLE = "grid_sample (bilinear)"
# Stages of genaug's executor (genaug/transforms/pipeline.py, warp.py): (label, module, attribute,
# parent label). A stage whose attribute is missing (genaug's internals moved) is left out.
STAGES = [
    ("input checks + uint8/float conversion", "pipeline", "Batch.from_inputs", None),
    ("parameter sampling (CPU)", "compose", "Compose.sample_params", None),
    ("fused geometric warp", "pipeline", "_run_geometric", None),
    ("antialias pre-blur (separable Gaussian)", "warp", "_antialias", "fused geometric warp"),
    ("sampling grid (warp.sampling_grid)", "warp", "sampling_grid", "fused geometric warp"),
    (GRID_SAMPLE, "F", "grid_sample", "fused geometric warp"),
    ("edge coverage for the constant fill", "warp", "edge_coverage", "fused geometric warp"),
    ("fused colour map", "pipeline", "_run_color", None),
    ("pixel stage: Gaussian blur (separable, per-sample sigma)", "pipeline", "_run_pixel", None),
    ("output conversion", "pipeline", "Batch.outputs", None),
]


def profile_genaug(
    device: str, size: int, dtype: str, batch: int, antialias: bool, calls: int, seed: int
) -> tuple[float, list[tuple[str, float]]]:
    """Median whole-call time and ``(indented label, mean seconds per call)`` of genaug's stages."""
    import genaug.transforms.compose as compose
    import genaug.transforms.pipeline as pipeline
    import genaug.transforms.warp as warp

    modules = {"pipeline": pipeline, "warp": warp, "compose": compose}
    aug = genaug_pipeline(size, antialias, seed)
    x = make_batch(batch, size, dtype, seed).to(device)
    totals: dict[str, float] = {}
    present = []
    with contextlib.ExitStack() as stack:
        for label, module, attr, _ in STAGES:
            if module == "F":  # grid_sample: swap the module's ``F`` for a timing stand-in
                if getattr(warp, "F", None) is not torch.nn.functional:
                    continue
                stack.callback(setattr, warp, "F", torch.nn.functional)
                warp.F = _GridSampleTimer(totals, device)
            else:
                *path, name = attr.split(".")
                owner: Any = modules[module]
                for part in path:
                    owner = getattr(owner, part, None)
                if owner is None or not hasattr(owner, name):
                    continue
                stack.enter_context(_timed_attr(owner, name, totals, label, device))
            present.append(label)
        aug(x)  # warm-up
        totals.clear()
        times = []
        for _ in range(calls):
            _sync(device)
            start = time.perf_counter()
            aug(x)
            _sync(device)
            times.append(time.perf_counter() - start)
    rows: list[tuple[str, float]] = []
    for label, _, _, parent in STAGES:
        if label not in present or parent is not None:
            continue
        rows.append((label, totals.get(label, 0.0) / calls))
        children = [c for c, _, _, p in STAGES if p == label and c in present]
        for child in children:
            rows.append(("  " + child, totals.get(child, 0.0) / calls))
        if children:
            rest = totals.get(label, 0.0) - sum(totals.get(c, 0.0) for c in children)
            rows.append(("  rest (matrices, fill blend, ...)", rest / calls))
    return statistics.median(times), rows


# ------------------------------------------------------------------------------- reporting
@dataclass
class Result:
    library: str
    device: str
    size: int
    dtype: str
    seconds: float  # median wall time per batch
    cpu_seconds: float  # median process CPU time per batch (all threads)
    batch: int

    @property
    def images_per_s(self) -> float:
        return self.batch / self.seconds


def results_table(results: list[Result]) -> str:
    lines = [
        "| device | size | dtype | library | ms / batch | CPU ms / batch | images/s | genaug speed-up (genaug ÷ this) |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        ref = _find(results, "genaug", r.device, r.size, r.dtype)
        ratio = f"{ref.images_per_s / r.images_per_s:.2f}x" if ref else "n/a"
        lines.append(
            f"| {r.device} | {r.size} | {r.dtype} | {r.library} | {r.seconds * 1e3:.1f} | {r.cpu_seconds * 1e3:.0f} "
            f"| {r.images_per_s:,.0f} | {ratio} |"
        )
    return "\n".join(lines)


def _find(results: list[Result], library: str, device: str, size: int, dtype: str) -> Result | None:
    return next(
        (r for r in results if (r.library, r.device, r.size, r.dtype) == (library, device, size, dtype)), None
    )


#: (size, dtype, peers, target speed-up) of issue 11's CPU targets
CPU_TARGETS = ((64, "float32", ("kornia", "albumentations"), TARGET_SPEEDUP), (224, "uint8", ("albumentations",), 2.0))


def target_lines(results: list[Result]) -> list[str]:
    lines = []
    for size, dtype, peers, target in CPU_TARGETS:
        for variant in ("genaug", "genaug (antialias=False)", "genaug (backend=opencv)"):
            ours = _find(results, variant, "cpu", size, dtype)
            for peer in peers:
                theirs = _find(results, peer, "cpu", size, dtype)
                if ours and theirs:
                    ratio = ours.images_per_s / theirs.images_per_s
                    verdict = "met" if ratio >= target else "NOT met"
                    lines.append(f"- {variant} vs {peer} (cpu, {size}x{size}, {dtype}): {ratio:.2f}x (target {target:.0f}x: {verdict})")
    return lines


def profile_table(total: float, stages: list[tuple[str, float]]) -> str:
    lines = ["| stage | ms / batch | share of call |", "|---|---:|---:|"]
    for label, seconds in stages:
        lines.append(f"| {label.replace('  ', '&nbsp;&nbsp;')} | {seconds * 1e3:.1f} | {seconds / total:.0%} |")
    lines.append(f"| **whole call (median)** | {total * 1e3:.1f} | 100% |")
    return "\n".join(lines)


def environment(args: argparse.Namespace) -> list[str]:
    def version(name: str) -> str:
        try:
            return __import__(name).__version__
        except ImportError:
            return "not installed"

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- command: `python {' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}`",
        f"- threads: torch.get_num_threads()={torch.get_num_threads()}, "
        f"cv2.getNumThreads()={cv2.getNumThreads() if cv2 is not None else 'n/a'}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, GPU: {gpu}",
        f"- versions: python {platform.python_version()}, torch {torch.__version__}, genaug {ga.__version__}, "
        f"kornia {version('kornia')}, albumentations {version('albumentations')}, torchvision {version('torchvision')}, "
        f"opencv {cv2.__version__ if cv2 is not None else 'n/a'}, numpy {np.__version__}",
        f"- batch {args.batch}, sizes {args.sizes}, dtypes {args.dtypes}; per case 1 sanity-check call + "
        f"{args.warmup} warm-up call(s), then {args.repeats} timed call(s), median reported",
    ]


def _progress(total: int) -> Any:
    try:
        from tqdm import tqdm

        return tqdm(total=total, unit="step", file=sys.stderr, leave=False)
    except ImportError:  # pragma: no cover
        return None


def main(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    if cv2 is not None:
        cv2.setNumThreads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        if args.device == "cuda":
            print("error: --device cuda but torch.cuda.is_available() is False", file=sys.stderr)
            return 2
        devices.remove("cuda")
        print("note: no CUDA device, running on the CPU only")
    env = environment(args)
    print(env[2])

    grid = [(d, s, t) for d in devices for s in args.sizes for t in args.dtypes]
    bar = _progress(len(grid) * (1 + args.repeats))  # per (device, size, dtype): the checks, then each round
    tick = bar.update if bar is not None else (lambda: None)
    results: list[Result] = []
    for device, size, dtype in grid:
        if bar is not None:
            bar.set_description(f"{device} {size} {dtype}")
        cases = build_cases(device, size, dtype, args.batch, args.seed)
        for case in cases:
            check_output(case, case.fn(case.inputs), args.batch)
        tick()
        for case, (wall, cpu) in zip(cases, time_cases(cases, args.warmup, args.repeats, tick)):
            results.append(Result(case.library, device, size, dtype, wall, cpu, args.batch))
    if bar is not None:
        bar.close()

    table = results_table(results)
    targets = target_lines(results)
    profile_device = "cpu" if "cpu" in devices else devices[0]
    profile_size = 64 if 64 in args.sizes else args.sizes[0]
    profiles = []
    for antialias in (True, False):
        total, stages = profile_genaug(
            profile_device, profile_size, "float32", args.batch, antialias, 1 if args.quick else max(args.repeats, 3), args.seed
        )
        profiles.append(
            f"genaug, antialias={antialias}, {profile_device}, B={args.batch}, {profile_size}x{profile_size}, float32:\n\n"
            + profile_table(total, stages)
        )

    report = "\n".join(
        [
            "## Throughput (images/s; median of timed calls)",
            "",
            *env,
            "",
            table,
            "",
            "### Targets",
            "",
            *(targets or ["- (neither the cpu / 64 / float32 nor the cpu / 224 / uint8 case was run)"]),
            "",
            "### genaug per-stage profile (wall time around each stage, averaged over the timed calls)",
            "",
            "\n\n".join(profiles),
            "",
        ]
    )
    print()
    print(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(_ARGS))
