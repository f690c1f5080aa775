"""System time and page faults of one genaug call, with and without huge pages for the output.

A whole output batch is fresh memory on every call (glibc maps blocks above 32 MB anew), so its
first write faults it in page by page; on a virtual machine those faults can cost as much as the
augmentation itself. genaug advises such blocks to use transparent huge pages
(``genaug.transforms.base.new_result``). This script times the 5-op pipeline of
``throughput.py`` both ways, alternating, and reports wall time, user and system CPU time and
minor page faults per call (``resource.getrusage``).

Usage (from the repository root):
    OMP_WAIT_POLICY=PASSIVE python benchmarks/page_faults.py --sizes 64 224 --batch 256 --repeats 5
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput  # noqa: E402  (the same pipeline and inputs)

from genaug.transforms import base  # noqa: E402


def measure(fn, x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median wall ms, and mean user ms, system ms and minor faults per call."""
    fn(x)  # warm-up: scratch buffers, thread pools
    walls = []
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        walls.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "wall": statistics.median(walls) * 1e3,
        "user": (after.ru_utime - before.ru_utime) / repeats * 1e3,
        "sys": (after.ru_stime - before.ru_stime) / repeats * 1e3,
        "faults": (after.ru_minflt - before.ru_minflt) / repeats,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dtype", choices=["float32", "uint8"], default="float32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    backends = ["torch"] + (["opencv"] if throughput.cv2 is not None else [])
    print(f"B={args.batch}, {args.dtype}, {args.threads} threads; per call: median wall, mean CPU and faults")
    print("| size | backend | huge pages | wall ms | user ms | sys ms | minor faults |")
    print("|---|---|---|---:|---:|---:|---:|")
    threshold = base.HUGE_PAGE_MIN_BYTES
    for size in args.sizes:
        x = throughput.make_batch(args.batch, size, args.dtype, 0)
        for backend in backends:
            fn = throughput.genaug_pipeline(size, True, 0, backend)
            for huge in (False, True):
                base.HUGE_PAGE_MIN_BYTES = threshold if huge else 1 << 62
                try:
                    m = measure(fn, x, args.repeats)
                finally:
                    base.HUGE_PAGE_MIN_BYTES = threshold
                print(f"| {size} | {backend} | {'yes' if huge else 'no'} | {m['wall']:.1f} | {m['user']:.0f} "
                      f"| {m['sys']:.0f} | {m['faults']:,.0f} |")


if __name__ == "__main__":
    main()
