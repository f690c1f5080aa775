"""Export speed: ``genaug generate`` images/s for one process and for ``torchrun`` with 2 ranks,
next to the raw sampling speed of the same model.

Cases (each a fresh process, run alternately so that load from other jobs hits all of them alike;
the fastest of ``--repeats`` runs is reported, since other jobs only ever add time):

* **raw sampling** — ``model.sample(block, labels, generator)`` in blocks of ``--block-size`` (no
  per-index seeding, no encoding, no files), with ``--threads`` threads, timed after one warm-up block;
* **SyntheticDataset** — ``get_batch`` over the same indices (per-index seeds, fixed blocks), the
  images an export writes, without encoding or files;
* **export, 1 process** — ``genaug generate --format F`` with ``--threads`` threads;
* **export, torchrun 2 ranks** — ``torchrun --standalone --nproc-per-node 2 -m genaug generate``
  with ``--threads // 2`` threads per rank.

For the exports, "images/s" is the export phase (claim the folder, generate, encode, write, fsync,
rename, merge the manifest) as each process reports it; for torchrun it is the number of images over
the slowest rank's time. "wall" is the whole command, Python and torch start-up included.

Usage (from the repository root):
    python benchmarks/export.py --out benchmarks/EXPORT.md            # 8,192 images, 3 repeats
    python benchmarks/export.py --quick                                # smoke test
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RAW = r"""
import sys, time, torch, genaug as ga
model_name, num, block = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = ga.load_model(model_name)
g = torch.Generator().manual_seed(0)
k = model.config.num_classes
labels = torch.arange(block) % k if k else None
with torch.no_grad():
    model.sample(block, labels=labels, generator=g)
    t = time.perf_counter()
    done = 0
    while done < num:
        model.sample(block, labels=labels, generator=g)
        done += block
print(f"RAW {done / (time.perf_counter() - t):.3f}")
ds = ga.SyntheticDataset(model, length=num + block, seed=0, chunk_size=block, block_size=block, cache_chunks=1)
ds.get_batch(range(num, num + block))
t = time.perf_counter()
for a in range(0, num, block):
    ds.get_batch(range(a, min(num, a + block)))
print(f"DATASET {num / (time.perf_counter() - t):.3f}")
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mnist-cgan")
    p.add_argument("--num", type=int, default=8192, help="images per export (default 8192)")
    p.add_argument("--formats", nargs="+", choices=["imagefolder", "webdataset"], default=["imagefolder", "webdataset"])
    p.add_argument("--block-size", type=int, default=256)
    p.add_argument("--shard-size", type=int, default=1024,
                   help="images per shard (default 1024: 8 shards, 4 per rank, for both formats)")
    p.add_argument("--threads", type=int, default=2, help="threads of the one-process runs (ranks get half each)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", default=None, help="where the exports are written (default: a temporary folder)")
    p.add_argument("--quick", action="store_true", help="128 images, 1 repeat")
    p.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    args = p.parse_args(argv)
    if args.quick:
        args.num, args.repeats, args.shard_size, args.block_size = 128, 1, 64, 64
    return args


def _env(threads: int) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return env


def _run(cmd: list[str], threads: int) -> tuple[str, float]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(threads), capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr, wall


def sample_speed(args: argparse.Namespace) -> tuple[float, float]:
    """Raw ``model.sample`` and ``SyntheticDataset.get_batch`` images/s, in one process."""
    out, _ = _run([sys.executable, "-c", RAW, args.model, str(args.num), str(args.block_size)], args.threads)
    raw = float(re.search(r"RAW ([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    return raw, float(re.search(r"DATASET ([0-9.]+)", out).group(1))  # type: ignore[union-attr]


_SUMMARY = re.compile(r"genaug generate: (?:rank (\d+)/(\d+): )?\d+ of \d+ shards, ([0-9,]+) images in ([0-9.]+) s")


def export_speed(args: argparse.Namespace, fmt: str, ranks: int, out_dir: Path,
                 threads: int | None = None) -> tuple[float, float]:
    shutil.rmtree(out_dir, ignore_errors=True)
    gen = ["generate", "--model", args.model, "--num-images", str(args.num), "--format", fmt,
           "--shard-size", str(args.shard_size), "--block-size", str(args.block_size), "--no-progress",
           "--out", str(out_dir)]
    if ranks == 1:
        text, wall = _run([sys.executable, "-m", "genaug", *gen], threads or args.threads)
    else:
        text, wall = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                           str(ranks), "-m", "genaug", *gen], max(1, args.threads // ranks))
    found = _SUMMARY.findall(text)
    if len(found) != ranks:
        raise RuntimeError(f"expected {ranks} summary lines, got:\n{text[-3000:]}")
    images = sum(int(f[2].replace(",", "")) for f in found)
    seconds = max(float(f[3]) for f in found)
    assert images == args.num, text
    return images / seconds, wall


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="genaug-export-bench-"))
    best: dict[str, float] = {}
    walls: dict[str, float] = {}
    load_before = os.getloadavg()[0]

    runs: list[dict[str, float]] = []  # one dict per repeat: the cases measured back to back

    def keep(name: str, value: float, wall: float | None = None) -> None:
        best[name] = max(best.get(name, 0.0), value)
        runs[-1][name] = value
        if wall is not None:
            walls[name] = min(walls.get(name, float("inf")), wall)

    try:
        for rep in range(args.repeats):
            runs.append({})
            raw, dataset = sample_speed(args)
            keep("raw", raw)
            keep("dataset", dataset)
            for fmt in args.formats:
                for ranks in (1, 2):
                    keep(f"{fmt}/{ranks}", *export_speed(args, fmt, ranks, work / f"{fmt}-{ranks}"))
                if args.threads > 1 and not args.quick:  # what one rank of the torchrun case gets
                    keep(f"{fmt}/1x1", *export_speed(args, fmt, 1, work / f"{fmt}-1x1", threads=1))
            print(f"repeat {rep + 1}/{args.repeats}: " + ", ".join(f"{k} {v:,.0f}" for k, v in best.items()),
                  file=sys.stderr)
        same = {fmt: _same_tree(work / f"{fmt}-1", work / f"{fmt}-2") for fmt in args.formats}
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    import torch

    raw = best["raw"]

    def ratio(a: str, b: str) -> float:
        return statistics.median(r[a] / r[b] for r in runs)

    load_after = os.getloadavg()[0]
    lines = [
        "# Export speed: `genaug generate`",
        "",
        f"{args.model}, {args.num:,} images of 28×28, block {args.block_size}, shard size {args.shard_size}; "
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch {torch.__version__}; "
        f"{datetime.date.today().isoformat()}. Fastest of {args.repeats} runs per case, cases alternated. "
        f"One process: {args.threads} threads; torchrun: 2 ranks × {max(1, args.threads // 2)} thread(s). "
        f"Load average (1 min) of the machine, shared with other jobs: {load_before:.1f} before, "
        f"{load_after:.1f} after.",
        "",
        "Ratios are the median over repeats of the ratio *within* a repeat (cases of one repeat run back to "
        "back, so they share the machine's load); images/s are the fastest run of each case.",
        "",
        "| case | images/s (fastest) | vs raw sampling (median ratio) | vs 1 process (median ratio) "
        "| wall (s), start-up included |",
        "|---|---|---|---|---|",
        f"| raw sampling (`model.sample`, blocks of {args.block_size}) | {raw:,.0f} | 1.00× | | |",
        f"| `SyntheticDataset.get_batch` (per-index seeds) | {best['dataset']:,.0f} | "
        f"{ratio('dataset', 'raw'):.2f}× | | |",
    ]
    for fmt in args.formats:
        one, two = best[f"{fmt}/1"], best[f"{fmt}/2"]
        lines.append(f"| export {fmt}, 1 process | {one:,.0f} | {ratio(f'{fmt}/1', 'raw'):.2f}× | 1.00× | "
                     f"{walls[f'{fmt}/1']:.1f} |")
        lines.append(f"| export {fmt}, torchrun 2 ranks | {two:,.0f} | {ratio(f'{fmt}/2', 'raw'):.2f}× | "
                     f"{ratio(f'{fmt}/2', f'{fmt}/1'):.2f}× | {walls[f'{fmt}/2']:.1f} |")
        if f"{fmt}/1x1" in best:
            lines.append(f"| export {fmt}, 1 process, 1 thread | {best[f'{fmt}/1x1']:,.0f} | "
                         f"{ratio(f'{fmt}/1x1', 'raw'):.2f}× | {ratio(f'{fmt}/1x1', f'{fmt}/1'):.2f}× "
                         f"(2 ranks: {ratio(f'{fmt}/2', f'{fmt}/1x1'):.2f}× this) | {walls[f'{fmt}/1x1']:.1f} |")
    lines += ["", "Per repeat (images/s): " + "; ".join(
        ", ".join(f"{k} {v:,.0f}" for k, v in r.items()) for r in runs) + "."]
    lines += ["", "Byte-identical output of 1 process and 2 ranks: " +
              ", ".join(f"{fmt} {'yes' if ok else 'NO'}" for fmt, ok in same.items()) + ".", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


def _same_tree(a: Path, b: Path) -> bool:
    def tree(p: Path) -> dict[str, bytes]:
        return {q.relative_to(p).as_posix(): q.read_bytes() for q in sorted(p.rglob("*")) if q.is_file()}

    return tree(a) == tree(b)


if __name__ == "__main__":
    sys.exit(main())
