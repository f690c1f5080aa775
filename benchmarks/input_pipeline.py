"""End-to-end input pipeline: PNG files -> decoded -> augmented -> a batch where training wants it.

Writes N PNGs per size (crops of the two built-in photos, ``ga.data.load_builtin("photos")``,
resized with PIL; synthetic smooth images when scikit-learn is missing) into a temporary
ImageFolder, then times whole epochs of ``torchvision.datasets.ImageFolder`` + ``DataLoader``
(PIL decoding in the workers) side by side, with the same 5-op pipeline everywhere (the builders
of ``throughput.py``, imported: RandomResizedCrop, rotation, zoom, colour jitter, Gaussian blur;
p=1, per-sample parameters; input size = output size):

* decode only (no augmentation): the ceiling the loader itself sets;
* torchvision v2 per sample, in the workers;
* albumentations per sample (HWC uint8 arrays, its native form), in the workers;
* genaug per sample, in the workers (one call per image: its fixed cost per call dominates);
* genaug per batch, in the ``collate_fn`` (in the workers), on the torch and on the OpenCV backend;
* genaug ``DeviceLoader``: the workers only decode; the batch is augmented in the main process on
  the device (CUDA when present, else the CPU, with ``--threads`` threads).

Every configuration delivers the same thing: a uint8 ``(B, 3, S, S)`` batch on the device (on
CUDA the worker-based ones use ``pin_memory=True`` and a ``non_blocking`` copy; the end of each
epoch synchronizes). Before timing, the first batch of each configuration is checked for shape,
dtype and device, and for differing from the decoded images (so a no-op cannot be timed).
Epochs are timed round-robin over the configurations, after untimed warm-up epochs; workers
persist across epochs, so their start-up is not timed. Reported: images/s of the median epoch.

Usage (from the repository root):
    python benchmarks/input_pipeline.py                    # writes benchmarks/INPUT_PIPELINE.md
    python benchmarks/input_pipeline.py --quick --out /tmp/ip.md   # smoke test, seconds
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # throughput.py sits beside this file

CONFIGS = (
    "decode only (no augmentation)",
    "torchvision v2, per sample in workers",
    "albumentations, per sample in workers",
    "genaug, per sample in workers",
    "genaug, per batch in collate_fn (workers)",
    'genaug backend="opencv", per batch in collate_fn (workers)',
    "genaug DeviceLoader",
)
DECODE_ONLY, TORCHVISION, ALBUMENTATIONS, GENAUG_SAMPLE, GENAUG_COLLATE, OPENCV_COLLATE, DEVICE_LOADER = CONFIGS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224], help="square image sizes (files and output)")
    p.add_argument("--images", type=int, nargs="+", default=[512, 256],
                   help="PNG files per size (one number for all sizes, or one per size)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (every configuration)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per configuration (median reported)")
    p.add_argument("--warmup-epochs", type=int, default=1, help="untimed epochs first (workers start, caches warm)")
    p.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads of the main process")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where batches go (auto: cuda when available)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 32x32, 24 synthetic images, batch 8, 1 worker, 1 epoch")
    p.add_argument("--out", default=str(HERE / "INPUT_PIPELINE.md"), help="markdown report to write")
    p.add_argument("--root", default=None, help="folder for the PNGs (default: a temporary folder, removed after)")
    p.add_argument("--source", choices=["photos", "synthetic"], default=None,
                   help="crops of the built-in photos (default; synthetic without scikit-learn) or synthetic smooth "
                   "images (default with --quick)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.images, args.batch, args.epochs, args.warmup_epochs = [32], [24], 8, 1, 0
        args.workers = min(args.workers, 1)
        args.source = args.source or "synthetic"
    args.source = args.source or "photos"
    if len(args.images) == 1:
        args.images = args.images * len(args.sizes)
    if len(args.images) != len(args.sizes):
        p.error(f"--images takes one number or one per size ({len(args.sizes)}), got {len(args.images)}")
    if min(args.sizes) < 16 or min(args.images) < 1 or args.batch < 1 or args.epochs < 1 or args.warmup_epochs < 0 \
            or args.workers < 0 or args.threads < 1:
        p.error("sizes >= 16; images, batch, epochs, threads >= 1; warmup-epochs, workers >= 0")
    return args


_ARGS = parse_args() if __name__ == "__main__" else None
if _ARGS is not None:  # thread pools are sized when torch / OpenCV load
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = str(_ARGS.threads)
    # Idle OpenMP threads of the main process must not spin on the cores the workers decode on
    # (README: on a busy CPU spinning threads slow batched work by 10x); kept if the caller set it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, default_collate  # noqa: E402

import genaug as ga  # noqa: E402
import throughput as tp  # noqa: E402


# ------------------------------------------------------------------------------------ the files
def source_images(kind: str, seed: int) -> tuple[list[np.ndarray], str]:
    """HWC uint8 source images: the 2 built-in photos, or 2 synthetic smooth ones (also without scikit-learn)."""
    why = ""
    if kind == "photos":
        try:
            photos = ga.data.load_builtin("photos", "all").images
            return [im.permute(1, 2, 0).numpy() for im in photos], "the 2 built-in photos (scikit-learn), cropped"
        except ImportError:
            why = " (scikit-learn missing)"
    batch = tp.make_batch(2, 427, "uint8", seed)
    return [im.permute(1, 2, 0).numpy() for im in batch], f"2 synthetic smooth 427x427 images{why}, cropped"


def write_folder(root: Path, size: int, count: int, sources: list[np.ndarray], seed: int) -> Path:
    """``count`` PNGs of ``size``x``size`` in ``root/<size>/<class>/``: random square crops, resized with PIL."""
    from PIL import Image

    folder = root / str(size)
    rng = np.random.default_rng([seed, size])
    for c in range(len(sources)):
        (folder / f"class{c}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        c = i % len(sources)
        src = sources[c]
        h, w = src.shape[:2]
        side = int(rng.integers(min(2 * size, h), h + 1)) if size < h else h
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(np.ascontiguousarray(src[y:y + side, x:x + side]))
        crop.resize((size, size), Image.BILINEAR, reducing_gap=None).save(folder / f"class{c}" / f"{i:06d}.png")
    return folder


# ------------------------------------------------------------------------------------ decoding + per-sample work
def decode_tensor(path: str) -> torch.Tensor:
    """PIL decode -> uint8 (3, H, W) tensor (torchvision's ``pil_to_tensor``)."""
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor

    with Image.open(path) as im:
        return pil_to_tensor(im.convert("RGB"))


def decode_array(path: str) -> np.ndarray:
    """PIL decode -> uint8 (H, W, 3) array (albumentations' native input)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


class PerSample:
    """A Dataset transform: a list-in, list-out pipeline of ``throughput.py`` applied to one image."""

    def __init__(self, fn: Callable[[list[Any]], list[Any]]) -> None:
        self.fn = fn

    def __call__(self, image: Any) -> Any:
        return self.fn([image])[0]


class CollateAugment:
    """``collate_fn`` that augments the collated batch with a genaug pipeline."""

    def __init__(self, aug: Any) -> None:
        self.aug = aug

    def __call__(self, items: list[Any]) -> Any:
        images, labels = default_collate(items)
        return self.aug(images), labels


# ------------------------------------------------------------------------------------ configurations
@dataclass
class Config:
    name: str
    loader: Any  # iterable of batches
    hwc: bool = False  # batches are (B, H, W, C) (albumentations): permuted to (B, C, H, W)
    on_device: bool = False  # batches already on the device (DeviceLoader)


@dataclass
class Result:
    config: str
    size: int
    images: int
    epoch_s: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def images_per_s(self) -> float:
        return self.images / statistics.median(self.epoch_s)


def build_configs(folder: Path, size: int, args: argparse.Namespace, device: torch.device) -> list[Config]:
    from torchvision.datasets import ImageFolder

    cuda = device.type == "cuda"
    common = dict(batch_size=args.batch, num_workers=args.workers, shuffle=False, pin_memory=cuda)
    if args.workers > 0:
        common.update(persistent_workers=True)

    def loader(transform: Any = None, decoder: Callable[[str], Any] = decode_tensor, **kw: Any) -> DataLoader:
        return DataLoader(ImageFolder(str(folder), loader=decoder, transform=transform), **common, **kw)

    configs = [Config(DECODE_ONLY, loader())]
    try:
        configs.append(Config(TORCHVISION, loader(PerSample(tp.torchvision_pipeline(size)))))
    except ImportError:  # pragma: no cover
        pass
    try:
        configs.append(Config(ALBUMENTATIONS, loader(PerSample(tp.albumentations_pipeline(size)), decode_array),
                              hwc=True))
    except ImportError:  # pragma: no cover
        pass
    configs += [
        Config(GENAUG_SAMPLE, loader(tp.genaug_pipeline(size, True, args.seed))),
        Config(GENAUG_COLLATE, loader(collate_fn=CollateAugment(tp.genaug_pipeline(size, True, args.seed)))),
        Config(OPENCV_COLLATE, loader(collate_fn=CollateAugment(tp.genaug_pipeline(size, True, args.seed, "opencv")))),
        Config(f"{DEVICE_LOADER} ({device.type})",
               ga.DeviceLoader(loader(), tp.genaug_pipeline(size, True, args.seed), device=device), on_device=True),
    ]
    if cuda:
        configs.append(Config(f"{DEVICE_LOADER} (cuda, prefetch=False)",
                              ga.DeviceLoader(loader(), tp.genaug_pipeline(size, True, args.seed), device=device,
                                              prefetch=False), on_device=True))
    return configs


def images_of(batch: Any, config: Config, device: torch.device) -> torch.Tensor:
    """The image batch as (B, C, H, W) on the device: what the training step would get."""
    images = batch[0]
    if config.hwc:
        images = images.permute(0, 3, 1, 2)
    return images if config.on_device else images.to(device, non_blocking=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_first_batch(config: Config, reference: torch.Tensor | None, size: int, device: torch.device) -> torch.Tensor:
    images = images_of(next(iter(config.loader)), config, device)
    b = images.shape[0]
    assert images.shape == (b, 3, size, size), f"{config.name}: shape {tuple(images.shape)}"
    assert images.dtype == torch.uint8, f"{config.name}: dtype {images.dtype}"
    assert images.device.type == device.type, f"{config.name}: on {images.device}, want {device}"
    if reference is not None:
        changed = sum(not torch.equal(a, r) for a, r in zip(images.cpu(), reference))
        assert changed == b, f"{config.name}: only {changed} of {b} images changed (a no-op is being timed?)"
    return images.cpu()


def run_epoch(config: Config, device: torch.device) -> tuple[float, int]:
    sync(device)
    start, seen = time.perf_counter(), 0
    for batch in config.loader:
        images = images_of(batch, config, device)
        seen += images.shape[0]
    sync(device)
    return time.perf_counter() - start, seen


def run_size(folder: Path, size: int, count: int, args: argparse.Namespace, device: torch.device,
             log: Callable[[str], None], deadline: float | None = None) -> list[Result]:
    """Check, warm up and time every configuration on one folder; epochs round-robin."""
    configs = build_configs(folder, size, args, device)
    results = {c.name: Result(c.name, size, count) for c in configs}
    reference = None
    for config in configs:
        try:
            t = time.perf_counter()
            out = check_first_batch(config, reference, size, device)
            log(f"  {size}x{size} {config.name}: first batch checked ({time.perf_counter() - t:.1f} s, workers "
                "started)")
            if config.name == DECODE_ONLY:
                reference = out
        except Exception as exc:  # noqa: BLE001 - reported in the table, the others still run
            results[config.name].error = f"{type(exc).__name__}: {exc}"
            log(f"  {size}x{size} {config.name}: FAILED: {results[config.name].error}")
    live = [c for c in configs if results[c.name].error is None]
    for epoch in range(args.warmup_epochs + args.epochs):
        timed = epoch >= args.warmup_epochs
        if timed and deadline is not None and epoch > args.warmup_epochs and time.perf_counter() > deadline:
            log(f"  {size}x{size}: time budget reached, {epoch - args.warmup_epochs} timed epoch(s) kept")
            break
        for config in live:
            seconds, seen = run_epoch(config, device)
            assert seen == count, f"{config.name}: {seen} images in an epoch of {count}"
            if timed:
                results[config.name].epoch_s.append(seconds)
            log(f"  {size}x{size} {'epoch' if timed else 'warm-up'} {epoch}: {config.name:45s} "
                f"{seconds:6.2f} s  {count / seconds:8,.0f} images/s")
    for config in configs:  # stop the persistent workers now
        inner = getattr(config.loader, "loader", config.loader)
        if getattr(inner, "_iterator", None) is not None:
            inner._iterator._shutdown_workers()
            inner._iterator = None
    return [results[c.name] for c in configs]


# ------------------------------------------------------------------------------------ report
def results_table(results: list[Result]) -> str:
    lines = ["| size | configuration | images / epoch | s / epoch (median) | images/s | ÷ torchvision | "
             "share of decode-only |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        if r.error is not None or not r.epoch_s:
            lines.append(f"| {r.size} | {r.config} | {r.images} | failed: {(r.error or 'not timed')[:200]} | | | |")
            continue
        tv = next((x for x in results if x.size == r.size and x.config == TORCHVISION and x.epoch_s), None)
        dec = next((x for x in results if x.size == r.size and x.config == DECODE_ONLY and x.epoch_s), None)
        vs_tv = f"{r.images_per_s / tv.images_per_s:.2f}x" if tv else "n/a"
        vs_dec = f"{r.images_per_s / dec.images_per_s:.0%}" if dec else "n/a"
        lines.append(f"| {r.size} | {r.config} | {r.images} | {statistics.median(r.epoch_s):.2f} | "
                     f"{r.images_per_s:,.0f} | {vs_tv} | {vs_dec} |")
    return "\n".join(lines)


def environment(args: argparse.Namespace, device: torch.device, source: str, command: str) -> list[str]:
    from importlib import metadata

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none (the DeviceLoader row runs on the CPU)"
    return [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- command (repository root): `{command}`",
        f"- machine: {cpu_name()}, {os.cpu_count()} logical CPUs; GPU: {gpu}; load average (1 min) at the start "
        f"{LOAD_AT_START:.2f}, at the end {load_average():.2f}",
        f"- threads: main process torch.get_num_threads()={torch.get_num_threads()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}; each of the {args.workers} DataLoader workers: 1 torch "
        "thread (PyTorch's default) and 1 OpenCV thread (`cv2.setNumThreads(1)` before the workers fork)",
        "- versions: " + ", ".join(f"{n} {version(n)}" for n in ("torch", "torchvision", "albumentations", "kornia",
                                                                  "pillow", "numpy")) + f", genaug {ga.__version__}",
        f"- data: {source}; PNG files written with PIL at sizes {args.sizes}, {args.images} files; decoded with PIL "
        "in the workers by `torchvision.datasets.ImageFolder`",
        f"- batch {args.batch}, {args.workers} workers, `shuffle=False`, `pin_memory={device.type == 'cuda'}`, "
        f"`persistent_workers=True`; {args.warmup_epochs} untimed warm-up epoch(s), then {args.epochs} timed epochs "
        "per configuration, round-robin; images/s of the median epoch",
    ]


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        return float("nan")


LOAD_AT_START = load_average()


def cpu_name() -> str:
    from generative_quality import cpu_name as name  # benchmarks/ is on sys.path when a script runs

    return name()


def report(results: list[Result], env: list[str]) -> str:
    return "\n".join([
        "# End-to-end input pipeline: PNG files to augmented batches",
        "",
        "Whole epochs over an ImageFolder of PNGs, the same 5-op pipeline in every row (`throughput.py`'s "
        "RandomResizedCrop, rotation, zoom, colour jitter, Gaussian blur; p=1, per-sample parameters); every row "
        "delivers uint8 `(B, 3, S, S)` batches on the device. Written by `benchmarks/input_pipeline.py`.",
        "",
        *env,
        "",
        results_table(results),
        "",
        "How to read it:",
        "",
        "- *decode only* is the ceiling the loader sets (PIL decoding in the workers); *share of decode-only* says how "
        "much of it each way of augmenting keeps.",
        "- *per sample in workers* calls the pipeline once per image: genaug then pays its fixed cost per call (about "
        "2 ms, `benchmarks/per_image.py`) on every image. Call it per batch instead: in the `collate_fn` (the work is "
        "still spread over the workers) or with `DeviceLoader`.",
        "- `DeviceLoader` leaves only decoding to the workers and augments the whole batch in the main process on the "
        "device. On CUDA that takes the augmentation off the CPU (and, with `prefetch=True`, overlaps the copy and "
        "augmentation of the next batch with the current one). On a CPU-only machine the main process shares the "
        "cores with the workers: compare it with the `collate_fn` form on the machine at hand.",
        "- Epochs are timed round-robin over the configurations, so load from other processes hits them alike: on a "
        "shared machine (see the load average above) read the ratios, not the absolute images/s.",
        "- On a shared or small CPU, set `OMP_WAIT_POLICY=PASSIVE` (this script does unless it is set): spinning "
        "OpenMP threads of the main process otherwise take the cores the workers decode on.",
        "",
    ])


# ------------------------------------------------------------------------------------ main
def resolve(device_arg: str) -> torch.device:
    if device_arg == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device_arg == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but torch.cuda.is_available() is False")
    return torch.device(device_arg)


def run_all(args: argparse.Namespace, device: torch.device, log: Callable[[str], None],
            deadline: float | None = None) -> tuple[list[Result], str]:
    """Write the PNGs of each size and time every configuration on them; return the results and the data source.

    ``deadline`` (a ``time.perf_counter()`` value): past it, sizes not yet started are skipped and a
    size being timed keeps the timed epochs it has (at least one).
    """
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="genaug-input-pipeline-"))
    results: list[Result] = []
    cv2_threads = opencv_threads(1)
    try:
        sources, source = source_images(args.source, args.seed)
        for size, count in zip(args.sizes, args.images):
            if deadline is not None and time.perf_counter() > deadline:
                log(f"{size}x{size}: skipped (time budget reached)")
                continue
            folder = write_folder(root, size, count, sources, args.seed)
            log(f"{size}x{size}: wrote {count} PNGs to {folder}")
            results += run_size(folder, size, count, args, device, log, deadline)
    finally:
        opencv_threads(cv2_threads)
        if not args.root:
            shutil.rmtree(root, ignore_errors=True)
    return results, source


def opencv_threads(n: int | None) -> int | None:
    """Set OpenCV's thread count here, in the main process; return the previous one (None without OpenCV).

    The workers (forked) inherit one OpenCV thread, as PyTorch gives each one torch thread. Setting
    it *in* a forked worker can hang: when the parent had used OpenCV's thread pool, the child's
    ``cv2.setNumThreads`` waits for pool threads that were not forked.
    """
    try:
        import cv2
    except ImportError:  # pragma: no cover
        return None
    previous = cv2.getNumThreads()
    if n is not None:
        cv2.setNumThreads(n)
    return previous


def main(args: argparse.Namespace, command: str | None = None) -> int:
    torch.set_num_threads(args.threads)
    device = resolve(args.device)
    command = command or "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    t0 = time.perf_counter()
    log = lambda msg: print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", flush=True)  # noqa: E731
    results, source = run_all(args, device, log)
    text = report(results, environment(args, device, source, command))
    print()
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    log(f"wrote {out}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(_ARGS))
