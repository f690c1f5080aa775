"""Per-image cost: the same 5-op pipeline called on one image at a time, as in a Dataset's
``__getitem__`` inside DataLoader workers (one thread each).

Uses the pipelines of ``throughput.py`` (same ops and parameters for every library) and reports
milliseconds per image and genaug's speed-up; genaug's batched cost per image (one call on the
whole batch, the way genaug is meant to be used) is printed beside it.

Usage (from the repository root)::

    python benchmarks/per_image.py --sizes 64 224 --images 64 --threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    p.add_argument("--images", type=int, default=64, help="images per timed loop")
    p.add_argument("--repeats", type=int, default=3, help="timed loops per case (the fastest is reported: on a shared machine, noise only adds time)")
    p.add_argument("--threads", type=int, default=1, help="threads (DataLoader workers use 1)")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import numpy as np
    import torch

    import throughput as tp  # the shared pipeline definitions

    torch.set_num_threads(args.threads)
    if tp.cv2 is not None:
        tp.cv2.setNumThreads(args.threads)

    def per_image_ms(fn: Callable[[], Any]) -> float:
        fn()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times) / args.images * 1e3

    print(f"command: python benchmarks/per_image.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.images} images per loop, fastest of {args.repeats}\n")
    print("| size | genaug, one call per image | kornia (batch of 1) | torchvision v2 | albumentations (uint8) | genaug, one call per batch |")
    print("|---|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        batch = tp.make_batch(args.images, size, "float32", 0)
        images = list(batch)
        arrays = [(im.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for im in images]
        genaug, tv, al = tp.genaug_pipeline(size, True, 0), tp.torchvision_pipeline(size), tp.albumentations_pipeline(size)
        kornia = tp.kornia_pipeline(size, "cpu")
        g = per_image_ms(lambda: [genaug(im) for im in images])
        k = per_image_ms(lambda: [kornia(im.unsqueeze(0)) for im in images])
        t = per_image_ms(lambda: tv(images))
        a = per_image_ms(lambda: al(arrays))
        b = per_image_ms(lambda: genaug(batch))
        print(f"| {size}×{size} | {g:.2f} ms | {k:.2f} ms ({k / g:.2f}×) | {t:.2f} ms ({t / g:.2f}×) | {a:.2f} ms ({a / g:.2f}×) | {b:.2f} ms |")
    print("\n(×) = genaug's speed-up: the peer's time divided by genaug's one-call-per-image time.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
