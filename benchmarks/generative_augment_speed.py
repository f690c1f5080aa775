"""Cost of a generative augmenter in a pipeline: ``GenerativeSample(p=0.5)`` + the 5-op classical pipeline
vs the classical pipeline alone.

The classical pipeline is ``benchmarks/throughput.py``'s ``genaug_pipeline`` (RandomResizedCrop,
rotation, scale, colour jitter, Gaussian blur; p=1, per-sample parameters). The generative case puts
``ga.GenerativeSample(mnist-cgan, p=0.5)`` in front of it, in one ``Compose``. Inputs: B images of
28x28 grey (the model's own format) and 64x64 RGB (``adapt=True``: resized and converted to grey for
the model and back), with class labels. Calls alternate between the two cases (so load from other
processes hits both alike); the fastest of ``--repeats`` timed calls is reported as images/s (other
jobs on a shared machine only ever add time), with the time ratio (and the ratio of the medians),
and the time of the GAN's forward pass alone on B/2 images for reference.

Usage (from the repository root):
    python benchmarks/generative_augment_speed.py --threads 2 --out benchmarks/GENERATIVE_AUGMENT.md
    python benchmarks/generative_augment_speed.py --quick            # smoke test
    python benchmarks/generative_augment_speed.py --device cuda       # on a GPU machine
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--formats", nargs="+", default=["28x1", "64x3"], help="SIZExCHANNELS inputs (square)")
    parser.add_argument("--dtypes", nargs="+", choices=["float32", "uint8"], default=["float32", "uint8"])
    parser.add_argument("--repeats", type=int, default=9,
                        help="timed calls per case (the fastest is reported: on a shared machine other jobs only add time)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="batch 8, 1 repeat")
    parser.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.repeats = min(args.batch, 8), 1
    return args


_ARGS = parse_args() if __name__ == "__main__" else None
if _ARGS is not None:  # thread pools are sized when torch loads
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = str(_ARGS.threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads distort timings on a shared CPU

import torch  # noqa: E402

import genaug as ga  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import genaug_pipeline  # noqa: E402


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(fmt: str, dtype: str, args: argparse.Namespace, gan: torch.nn.Module) -> dict[str, float]:
    size, channels = (int(v) for v in fmt.split("x"))
    g = torch.Generator().manual_seed(args.seed)
    images = torch.rand(args.batch, channels, size, size, generator=g)
    if dtype == "uint8":
        images = images.mul(255).round().to(torch.uint8)
    images = images.to(args.device)
    labels = torch.randint(0, 10, (args.batch,), generator=g)
    classical = genaug_pipeline(size, antialias=True, seed=args.seed)
    adapt = (size, channels) != (28, 1)
    generative = ga.Compose([ga.GenerativeSample(gan, p=0.5, adapt=adapt), genaug_pipeline(size, antialias=True,
                                                                                          seed=args.seed)], seed=args.seed)
    half = args.batch // 2
    z, y = torch.randn(half, 64, generator=g), labels[:half]
    cases = {
        "classical": lambda: classical(images),
        "generative": lambda: generative(images, labels=labels),
        "gan_forward": lambda: gan.to(args.device)._generate(z, y.to(args.device), None),
    }
    out = generative(images, labels=labels)  # sanity: shapes, dtype, and some samples replaced
    assert out["image"].shape == images.shape and out["image"].dtype == images.dtype
    times: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():  # warm-up (and the model's copy to the device)
        fn()
    for _ in range(args.repeats):
        for name, fn in cases.items():
            _sync(args.device)
            start = time.perf_counter()
            fn()
            _sync(args.device)
            times[name].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"classical": args.batch / best["classical"], "generative": args.batch / best["generative"],
            "ratio": best["generative"] / best["classical"], "median_ratio": med["generative"] / med["classical"],
            "gan_ms": 1000 * best["gan_forward"], "generative_ms": 1000 * best["generative"],
            "classical_ms": 1000 * best["classical"]}


def main() -> None:
    args = _ARGS or parse_args()
    torch.set_num_threads(args.threads)
    gan = ga.load_model("mnist-cgan")
    rows = []
    for fmt in args.formats:
        for dtype in args.dtypes:
            r = measure(fmt, dtype, args, gan)
            size, channels = fmt.split("x")
            rows.append(f"| {size}×{size}×{channels} | {dtype} | {r['classical']:,.0f} | {r['generative']:,.0f} | "
                        f"{r['ratio']:.1f}× ({r['median_ratio']:.1f}×) | {r['classical_ms']:.1f} | {r['generative_ms']:.1f} | "
                        f"{r['gan_ms']:.1f} |")
    command = "python benchmarks/generative_augment_speed.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        f"B={args.batch}, device {args.device}, {args.threads} threads, fastest of {args.repeats} alternating calls "
        f"per case (the time ratio of the medians in parentheses); torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {datetime.date.today()}.",
        "",
        "| input (H×W×C) | dtype | classical images/s | + GenerativeSample(p=0.5) images/s | time ratio (median) | "
        "classical ms | generative ms | GAN forward, B/2 images, ms |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Command: `{command.strip()}`",
    ])
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
