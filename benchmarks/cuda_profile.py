"""Where one call of genaug's 5-op pipeline spends its time on a GPU, kernel by kernel.

``torch.profiler`` around a few calls of ``throughput.py``'s genaug pipeline: the CUDA kernels
grouped by name (time, launches), the host time spent issuing them, and the GPU's busy share of
the wall time. It answers whether a call is bound by the GPU's work or by the launches, and which
kernels to fuse first.

Usage (repository root, a CUDA machine; on a CPU it profiles CPU ops instead):
    python benchmarks/cuda_profile.py --size 224 --batch 256 --dtype float32 --out /tmp/profile.md
    python benchmarks/cuda_profile.py --quick          # tiny settings (tests)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import throughput as tp  # noqa: E402  (the same pipeline as the throughput tables)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--dtype", choices=["float32", "uint8"], default="float32")
    p.add_argument("--calls", type=int, default=5, help="profiled calls (after 3 warm-up calls)")
    p.add_argument("--top", type=int, default=25, help="kernel rows to print")
    p.add_argument("--antialias", action="store_true", help="Compose(antialias=True) (the default pipeline)")
    p.add_argument("--quick", action="store_true", help="B=2, 32x32, 1 call: a smoke test on any device")
    p.add_argument("--out", default=None, help="markdown file to write (else only printed)")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.batch, args.calls, args.top = 32, 2, 1, 5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pipeline = tp.genaug_pipeline(args.size, args.antialias, 0)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    if args.dtype == "uint8":
        x = (x * 255).round().to(torch.uint8)
    x = x.to(device)
    for _ in range(3):
        pipeline(x)
    tp._sync(device.type)
    walls = []
    for _ in range(max(args.calls, 1)):  # unprofiled wall time of one call
        start = time.perf_counter()
        pipeline(x)
        tp._sync(device.type)
        walls.append(time.perf_counter() - start)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(args.calls):
            pipeline(x)
        tp._sync(device.type)
    on_gpu = device.type == "cuda"
    rows = []
    for e in prof.key_averages():
        t = (e.device_time_total if on_gpu else e.self_cpu_time_total) / args.calls / 1e3
        if on_gpu and e.device_type.name != "CUDA":
            continue
        if not on_gpu and e.self_cpu_time_total <= 0:
            continue
        rows.append((t, e.count / args.calls, e.key))
    rows.sort(reverse=True)
    busy = sum(r[0] for r in rows)
    launches = sum(r[1] for r in rows)
    wall = statistics.median(walls) * 1e3
    name = torch.cuda.get_device_name(device) if on_gpu else "CPU"
    lines = [
        f"## genaug {args.size}x{args.size} {args.dtype}, B={args.batch}, antialias={args.antialias}, on {name}",
        "",
        f"- command: `python benchmarks/cuda_profile.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        f"- wall time per call (unprofiled, median of {len(walls)}): {wall:.2f} ms",
        f"- {'GPU kernel' if on_gpu else 'CPU op (self)'} time per call: {busy:.2f} ms "
        f"({100 * busy / wall:.0f}% of the wall time), {launches:.0f} {'kernels' if on_gpu else 'ops'} per call",
        "",
        "| kernel / op | ms per call | share | launches per call |",
        "|---|---:|---:|---:|",
    ]
    for t, count, key in rows[: args.top]:
        lines.append(f"| `{key[:90].replace('|', '/')}` | {t:.3f} | {100 * t / max(busy, 1e-9):.0f}% | {count:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
