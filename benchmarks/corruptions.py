"""Corruption throughput: genaug (one batched call) side by side with ``imagecorruptions`` (one call per image).

Both run the ImageNet-C severity parameters (``imagecorruptions`` has only those; genaug is given
``table="imagenet"``) at the same severity, on crops of the built-in photos: 1,000 images of 32x32
and 100 of 224x224, uint8 RGB. Per corruption: images per second of each and their ratio.

``imagecorruptions`` 1.1.2 is run as released, with one shim: it imports ``pkg_resources``
(gone from current setuptools) for ``resource_filename`` only, so a stand-in module providing that
function is installed before the import. Corruptions it cannot run here (``glass_blur`` and
``gaussian_blur`` pass ``multichannel=`` that scikit-image >= 0.19 rejects; ``fog`` uses
``np.float_``, removed in NumPy 2) are reported as failing. Slow per-image loops are timed on the
first images only (at least ``--min-images``, until ``--peer-seconds`` have passed) and reported
as images per second.

Usage:
    OMP_WAIT_POLICY=PASSIVE python benchmarks/corruptions.py --out benchmarks/corruptions.json
    python benchmarks/corruptions.py --quick          # seconds: a smoke run (8 images, 2 corruptions)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genaug.robustness import ALL, corrupt  # noqa: E402


def photo_crops(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``n`` uint8 RGB crops of the two built-in photos, resized to ``size`` (antialiased)."""
    from genaug.data.builtin import load_builtin

    photos = load_builtin("photos", "all").images.float()
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        p = photos[i % 2]
        side = int(torch.randint(96, 400, (1,), generator=g))
        y = int(torch.randint(0, p.shape[1] - side + 1, (1,), generator=g))
        x = int(torch.randint(0, p.shape[2] - side + 1, (1,), generator=g))
        crop = p[:, y:y + side, x:x + side].unsqueeze(0)
        out.append(torch.nn.functional.interpolate(crop, size=(size, size), mode="bilinear", antialias=True))
    return torch.cat(out).round().clamp(0, 255).to(torch.uint8)


def import_imagecorruptions():
    """``imagecorruptions`` with a ``pkg_resources.resource_filename`` stand-in when setuptools lacks it."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        import importlib.util
        import os

        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, name: str) -> str:
            spec = importlib.util.find_spec(package)
            return os.path.join(os.path.dirname(spec.origin), name)

        shim.resource_filename = resource_filename
        sys.modules["pkg_resources"] = shim
    import imagecorruptions

    return imagecorruptions


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_genaug(x: torch.Tensor, name: str, severity: int, repeats: int) -> float:
    """Images per second of one batched call (best of ``repeats``); on a GPU the timer stops after
    the kernels have finished, not when the call returns."""
    corrupt(x[:2], name, severity, generator=torch.Generator().manual_seed(0), table="imagenet")  # warm-up
    _sync(x.device)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        corrupt(x, name, severity, generator=torch.Generator().manual_seed(0), table="imagenet")
        _sync(x.device)
        best = min(best, time.perf_counter() - t)
    return x.shape[0] / best


def time_peer(ic, arrays: np.ndarray, name: str, severity: int, min_images: int, seconds: float) -> float | str:
    np.random.seed(0)
    try:
        ic.corrupt(arrays[0], corruption_name=name, severity=severity)  # warm-up (frost reads its files)
    except Exception as exc:  # noqa: BLE001 - the peer's failure is the result
        return f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:60]}"
    done, t0 = 0, time.perf_counter()
    while done < len(arrays) and (done < min_images or time.perf_counter() - t0 < seconds):
        ic.corrupt(arrays[done], corruption_name=name, severity=severity)
        done += 1
    return done / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--images", type=int, nargs="+", default=None, help="images per size (default 1000 100)")
    parser.add_argument("--corruptions", nargs="+", default=list(ALL))
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="genaug: best of this many runs")
    parser.add_argument("--min-images", type=int, default=20, help="imagecorruptions: at least this many images")
    parser.add_argument("--peer-seconds", type=float, default=4.0, help="imagecorruptions: time budget per cell")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="8 images, 2 corruptions, 1 repeat")
    parser.add_argument("--out", default=None, help="also write the numbers as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    images = args.images or [1000 if s <= 32 else 100 for s in args.sizes]
    names = args.corruptions
    if args.quick:
        images, names, args.repeats, args.min_images, args.peer_seconds = [8] * len(args.sizes), names[:2], 1, 2, 0.1
    try:
        ic = import_imagecorruptions()
    except Exception as exc:  # noqa: BLE001
        ic, why = None, f"{type(exc).__name__}: {exc}"
    results = {"machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                          f"{torch.get_num_threads()} threads, device {args.device}",
               "severity": args.severity, "rows": []}
    print(f"# corruption throughput, images/s (severity {args.severity}, ImageNet-C parameters); "
          f"{results['machine']}")
    print("| corruption | size | images | genaug | imagecorruptions | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for size, n in zip(args.sizes, images):
        x = photo_crops(n, size).to(args.device)
        arrays = x.cpu().permute(0, 2, 3, 1).numpy()
        for name in names:
            ours = time_genaug(x, name, args.severity, args.repeats)
            peer = time_peer(ic, arrays, name, args.severity, args.min_images, args.peer_seconds) if ic else why
            ratio = f"{ours / peer:.1f}x" if isinstance(peer, float) else "—"
            peer_text = f"{peer:,.0f}" if isinstance(peer, float) else peer
            print(f"| {name} | {size}x{size} | {n} | {ours:,.0f} | {peer_text} | {ratio} |", flush=True)
            results["rows"].append({"corruption": name, "size": size, "images": n, "genaug": ours,
                                    "imagecorruptions": peer, "ratio": ours / peer if isinstance(peer, float) else None})
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
