"""genaug's CUDA numbers in one command, within a few minutes of GPU time.

Sections, cheapest first, each with its elapsed time printed; the report is rewritten after
every section, so a run stopped early still leaves what it measured:

1. throughput of the 5-op pipeline of ``throughput.py`` (its functions, imported: same ops,
   same parameters, same output checks, same round-robin timing with ``torch.cuda.synchronize``)
   at B=256, 224x224 and 64x64, float32 and uint8: genaug vs kornia's ``AugmentationSequential``
   (eager); then the same calls queued, ``--queue`` back to back with one synchronisation at the
   end (a training loop's view: a pipeline that never waits for the GPU overlaps its host work
   with the previous batch's kernels);
2. latency of one call at B=8, 224x224: genaug vs kornia eager (ms per call);
3. sampling speed of the shipped generative models (``ga.load_model``) at a large batch, with
   ``generative_quality.throughput``;
4. genaug's per-stage profile on the device (``throughput.profile_genaug``);
5. kornia under ``torch.compile`` (the largest size only, unless ``--compile-sizes``), timed
   round-robin with genaug, in a child process: a compilation that runs past ``--compile-limit``
   seconds (or the whole section past its budget) is killed and reported as skipped; a
   compilation error is reported with its reason;
6. the end-to-end input pipeline of ``input_pipeline.py`` (its functions, imported): PNG files
   decoded in 2 DataLoader workers, augmented per sample in the workers (torchvision,
   albumentations, genaug), per batch in the ``collate_fn`` (genaug), or on the GPU by
   ``ga.DeviceLoader`` (with and without prefetching); it runs before the compiled section,
   within ``--loader-budget`` seconds.

Targets (from the issue) are printed as met / not met, never asserted: at B=256, 224x224,
genaug >= 10x kornia eager and >= 2x kornia compiled; at B=8, genaug's latency <= 1/3 of
kornia eager's.

Usage (from the repository root):
    python benchmarks/gpu_suite.py                       # on a CUDA machine: benchmarks/RESULTS-cuda.md
    python benchmarks/gpu_suite.py --out /tmp/r.md --no-compile
    python benchmarks/gpu_suite.py --smoke --out /tmp/x.md   # tiniest settings, any device (tests)

The device command used on the lent GPU machine is in ``benchmarks/gpu_command.txt``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # throughput.py and generative_quality.py sit beside this file

T0 = time.perf_counter()
TARGET_EAGER = 10.0  # genaug / kornia eager, B=256, 224x224
TARGET_COMPILED = 2.0  # genaug / kornia under torch.compile, B=256, 224x224
TARGET_LATENCY = 1.0 / 3.0  # genaug ms / kornia eager ms, B=8, 224x224
EVENT = "@@gpu_suite "  # prefix of the compile worker's JSON event lines on its stdout


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="benchmarks/RESULTS-cuda.md", help="markdown report to write")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto",
                   help="auto: cuda when available (without it only --smoke runs, unless --device cpu)")
    p.add_argument("--smoke", action="store_true", help="tiniest settings on whatever device exists, well under a minute")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--sizes", type=int, nargs="+", default=[224, 64])
    p.add_argument("--dtypes", nargs="+", default=["float32", "uint8"], choices=["float32", "uint8"])
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per case after the output check")
    p.add_argument("--repeats", type=int, default=10, help="timed calls per case (median reported)")
    p.add_argument("--queue", type=int, default=10,
                   help="calls issued back to back, one sync at the end, for the queued throughput table")
    p.add_argument("--latency-batch", type=int, default=8)
    p.add_argument("--latency-size", type=int, default=224)
    p.add_argument("--latency-repeats", type=int, default=30)
    p.add_argument("--gen-models", nargs="+", default=["mnist-cgan", "mnist-cvae"])
    p.add_argument("--gen-batches", type=int, nargs="+", default=[256, 4096])
    p.add_argument("--gen-seconds", type=float, default=1.5, help="timed sampling seconds per (model, batch)")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="skip kornia under torch.compile")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor; eager with --smoke)")
    p.add_argument("--compile-limit", type=float, default=None,
                   help="seconds one compilation (kornia's first compiled call) may take before it is killed "
                   "(default 90; 3 with --smoke)")
    p.add_argument("--compile-sizes", type=int, nargs="+", default=None,
                   help="sizes to time under torch.compile (default: the largest of --sizes)")
    p.add_argument("--compile-budget", type=float, default=None,
                   help="seconds for the whole compiled section, child start-up included (default 140; 60 with --smoke)")
    p.add_argument("--no-loader", dest="loader", action="store_false",
                   help="skip the DeviceLoader / end-to-end input pipeline section")
    p.add_argument("--loader-sizes", type=int, nargs="+", default=[224, 64])
    p.add_argument("--loader-images", type=int, nargs="+", default=[256, 512], help="PNG files per loader size")
    p.add_argument("--loader-budget", type=float, default=60.0,
                   help="seconds for the input pipeline section: past it, sizes not started are skipped")
    p.add_argument("--budget", type=float, default=270.0,
                   help="seconds for the whole run: sections that would start past it are skipped")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile-worker", default=None, help=argparse.SUPPRESS)  # internal: JSON spec
    args = p.parse_args(argv)
    if args.smoke:
        args.batch, args.sizes, args.warmup, args.repeats, args.queue = 2, [32], 0, 1, 2
        args.latency_batch, args.latency_size, args.latency_repeats = 2, 32, 2
        args.gen_batches, args.gen_seconds = [8], 0.0
    # With --smoke the compiled section starts its child and kills it after a few seconds of
    # compiling: that checks the time limit, the kill and the report line without minutes of
    # compiling on a CPU.
    defaults = ("eager", 3.0, 60.0) if args.smoke else ("inductor", 90.0, 140.0)
    for name, value in zip(("compile_backend", "compile_limit", "compile_budget"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


# ------------------------------------------------------------------------------------ helpers
def versions() -> dict[str, str]:
    """Installed versions, read from the package metadata (importing triton or cv2 costs seconds)."""
    from importlib import metadata

    import torch

    import genaug

    out = {"python": platform.python_version(), "torch": torch.__version__, "genaug": genaug.__version__}
    for name in ("torchvision", "kornia", "kornia_rs", "triton", "numpy", "opencv-python-headless", "opencv-python"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if not name.startswith("opencv"):
                out[name] = "not installed"
    return out


def cpu_name() -> str:
    import generative_quality as gq

    return gq.cpu_name()


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def fmt_ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e3:.2f}"


# ------------------------------------------------------------------------------------ sections
def section_throughput(args: argparse.Namespace, device: str, state: dict[str, Any]) -> None:
    import throughput as tp

    for size in args.sizes:
        for dtype in args.dtypes:
            t = time.perf_counter()
            cases = tp.build_cases(device, size, dtype, args.batch, args.seed)
            for case in cases:
                tp.check_output(case, case.fn(case.inputs), args.batch)
            for case, (wall, cpu) in zip(cases, tp.time_cases(cases, args.warmup, args.repeats, lambda: None)):
                state["throughput"].append(tp.Result(case.library, device, size, dtype, wall, cpu, args.batch))
                log(f"  {size}x{size} {dtype:7s} {case.library:26s} {wall * 1e3:8.2f} ms/batch  "
                    f"{args.batch / wall:10,.0f} images/s")
            for case in cases:
                per_call = queued_seconds(case, args.queue, max(1, args.repeats // 2))
                state["queued"].append({"library": case.library, "size": size, "dtype": dtype, "seconds": per_call})
                log(f"  {size}x{size} {dtype:7s} {case.library:26s} {per_call * 1e3:8.2f} ms/batch queued "
                    f"({args.queue} calls back to back)")
            log(f"  {size}x{size} {dtype}: {time.perf_counter() - t:.1f} s")


def queued_seconds(case: Any, calls: int, rounds: int) -> float:
    """Median seconds per call of ``calls`` calls issued back to back with one synchronisation at the end.

    This is what a training loop sees: the host queues the next batch's work while the device
    still runs the previous one, so a pipeline that never waits for the device costs
    max(host time, device time) per batch, and one that synchronises inside a call costs their sum.
    """
    import throughput as tp

    times = []
    for _ in range(rounds):
        tp._sync(case.device)
        start = time.perf_counter()
        for _ in range(calls):
            case.fn(case.inputs)
        tp._sync(case.device)
        times.append((time.perf_counter() - start) / calls)
    return sorted(times)[len(times) // 2]


def section_latency(args: argparse.Namespace, device: str, state: dict[str, Any]) -> None:
    import throughput as tp

    size, batch = args.latency_size, args.latency_batch
    for dtype in args.dtypes:
        cases = tp.build_cases(device, size, dtype, batch, args.seed)
        for case in cases:
            tp.check_output(case, case.fn(case.inputs), batch)
        timings = tp.time_cases(cases, max(args.warmup, 2 if not args.smoke else 0), args.latency_repeats, lambda: None)
        for case, (wall, _) in zip(cases, timings):
            state["latency"].append({"library": case.library, "dtype": dtype, "size": size, "batch": batch, "seconds": wall})
            log(f"  B={batch} {size}x{size} {dtype:7s} {case.library:26s} {wall * 1e3:8.3f} ms/call")


def section_generative(args: argparse.Namespace, device: str, state: dict[str, Any]) -> None:
    import torch

    import generative_quality as gq
    import genaug as ga

    for name in args.gen_models:
        for batch in args.gen_batches:
            model = ga.load_model(name)
            ips = gq.throughput(model, torch.device(device), batch=batch, seconds=args.gen_seconds)
            state["generative"].append({"model": name, "batch": batch, "images_per_s": ips})
            log(f"  {name} batch {batch}: {ips:,.0f} images/s")
            del model
    if device == "cuda":
        torch.cuda.empty_cache()


def loader_settings(args: argparse.Namespace) -> argparse.Namespace:
    """``input_pipeline.py``'s settings for this suite (its ``--quick`` ones with ``--smoke``)."""
    import input_pipeline as ip

    if args.smoke:
        return ip.parse_args(["--quick", "--seed", str(args.seed)])
    return ip.parse_args(["--sizes", *map(str, args.loader_sizes), "--images", *map(str, args.loader_images),
                          "--epochs", "2", "--warmup-epochs", "1", "--seed", str(args.seed)])


def section_loader(args: argparse.Namespace, device: str, state: dict[str, Any]) -> None:
    """``input_pipeline.py`` with this suite's settings, within ``--loader-budget`` (and the run's budget)."""
    import input_pipeline as ip
    import torch

    settings = loader_settings(args)
    state["loader_settings"] = settings
    remaining = args.budget - (time.perf_counter() - T0)
    deadline = time.perf_counter() + min(args.loader_budget, remaining - 10)
    results, source = ip.run_all(settings, torch.device(device), log, deadline)
    state["loader"].extend(results)
    state["loader_source"] = source
    failed = [r.config for r in results if r.error]
    if failed:
        raise RuntimeError(f"input pipeline configurations failed their checks: {failed}")


def section_profile(args: argparse.Namespace, device: str, state: dict[str, Any]) -> None:
    import throughput as tp

    size = 224 if 224 in args.sizes else max(args.sizes)
    for antialias in (True, False):
        total, stages = tp.profile_genaug(device, size, "float32", args.batch, antialias, max(3, min(args.repeats, 5)), args.seed)
        state["profile"].append({"antialias": antialias, "size": size, "total": total, "stages": stages})
        log(f"  antialias={antialias}: {total * 1e3:.2f} ms per call (with a sync around every stage)")


# ------------------------------------------------------------------------------------ compiled kornia
def compile_configs(args: argparse.Namespace) -> list[tuple[int, str]]:
    """Largest size first (the targets are at 224x224), float32 before uint8; only ``--compile-sizes``
    (default: the largest size: inductor took 84 s for kornia's first 224x224 configuration on an H100,
    so a budget of minutes does not cover every size)."""
    sizes = args.compile_sizes if args.compile_sizes else [max(args.sizes)]
    return [(s, d) for s in sorted(sizes, reverse=True) for d in args.dtypes]


def section_compiled(args: argparse.Namespace, device: str, state: dict[str, Any], budget: float) -> None:
    """Run the compile worker as a child; kill it when a compilation or the section overruns."""
    configs = compile_configs(args)
    spec = {"device": device, "configs": configs, "batch": args.batch, "warmup": args.warmup, "repeats": args.repeats,
            "backend": args.compile_backend, "seed": args.seed}
    out = Path(args.out)
    log_path = out.with_name(out.stem + ".compile-worker.log")
    state["compile_log"] = str(log_path)
    results: dict[tuple[int, str], dict[str, Any]] = state["compiled"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    with open(log_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--compile-worker", json.dumps(spec)],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env, start_new_session=True,
        )
        events: queue.Queue = queue.Queue()

        def reader() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(EVENT):
                    events.put(json.loads(line[len(EVENT):]))
            events.put(None)

        threading.Thread(target=reader, daemon=True).start()
        current: tuple[int, str] | None = None
        compiling_since: float | None = None
        stop_reason: str | None = None
        while True:
            try:
                ev = events.get(timeout=0.5)
            except queue.Empty:
                ev = "tick"
            now = time.perf_counter()
            if ev is None:
                break
            if isinstance(ev, dict):
                cfg = (ev["size"], ev["dtype"]) if "size" in ev else None
                if ev["event"] == "start":
                    current, compiling_since = cfg, now
                    log(f"  {cfg[0]}x{cfg[0]} {cfg[1]}: compiling kornia (backend={args.compile_backend}) ...")
                elif ev["event"] == "compiled":
                    compiling_since = None
                    log(f"  {cfg[0]}x{cfg[0]} {cfg[1]}: first compiled call took {ev['compile_s']:.1f} s, the next "
                        + ", ".join(f"{w:.2f}" for w in ev["warmup_s"]) + " s")
                elif ev["event"] in ("result", "error"):
                    results[cfg] = ev
                    compiling_since = None
                    if ev["event"] == "result":
                        log(f"  {cfg[0]}x{cfg[0]} {cfg[1]}: kornia compiled {ev['kornia_s'] * 1e3:.2f} ms/batch, "
                            f"genaug {ev['genaug_s'] * 1e3:.2f} ms/batch (genaug {ev['kornia_s'] / ev['genaug_s']:.2f}x faster)")
                    else:
                        log(f"  {cfg[0]}x{cfg[0]} {cfg[1]}: FAILED: {ev['reason'][:300]}")
            if compiling_since is not None and now - compiling_since > args.compile_limit:
                stop_reason = (f"compilation (first call + warm-up recompilations) still running after "
                               f"{args.compile_limit:.0f} s (--compile-limit): killed, skipped")
            elif now - start > budget:
                stop_reason = f"compiled section over its {budget:.0f} s budget: killed, skipped"
            if stop_reason:
                log(f"  {stop_reason}")
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # our own child's process group (inductor's workers too)
                except ProcessLookupError:  # it had just finished
                    pass
                break
        proc.wait()
    rc = proc.returncode
    for cfg in configs:
        if cfg in results:
            continue
        if stop_reason and cfg == current:
            results[cfg] = {"event": "skipped", "reason": stop_reason}
        elif stop_reason:
            results[cfg] = {"event": "skipped", "reason": "not reached: " + stop_reason.split(":")[0]}
        else:
            tail = " | ".join(Path(log_path).read_text(errors="replace").strip().splitlines()[-3:])
            results[cfg] = {"event": "error", "reason": f"compile worker exited with code {rc}: {tail[-400:]}"}


def compile_worker(spec_json: str) -> int:
    """Child process: per config, compile kornia's pipeline and time it round-robin with genaug."""
    spec = json.loads(spec_json)
    import torch
    from torch._dynamo.utils import counters

    import throughput as tp

    device, batch = spec["device"], spec["batch"]

    def emit(**event: Any) -> None:
        print(EVENT + json.dumps(event), flush=True)

    for size, dtype in spec["configs"]:
        cfg = dict(size=size, dtype=dtype)
        torch._dynamo.reset()
        counters.clear()
        try:
            x = tp.make_batch(batch, size, dtype, spec["seed"]).to(device)
            genaug = tp.Case("genaug", device, size, dtype, tp.genaug_pipeline(size, True, spec["seed"]), x)
            compiled = torch.compile(tp.kornia_pipeline(size, device), backend=spec["backend"])
            kornia = tp.Case("kornia (torch.compile)", device, size, dtype, compiled, x)
        except Exception as exc:  # noqa: BLE001 - e.g. kornia missing
            emit(event="error", reason=f"{type(exc).__name__}: {exc}", **cfg)
            continue
        emit(event="start", **cfg)
        try:
            t = time.perf_counter()
            out = kornia.fn(x)
            sync(device)
            compile_s = time.perf_counter() - t
        except Exception as exc:  # noqa: BLE001 - reported with its reason
            emit(event="error", reason=f"torch.compile failed: {type(exc).__name__}: {str(exc).strip()[:1500]}", **cfg)
            continue
        try:
            tp.check_output(kornia, out, batch)
            tp.check_output(genaug, genaug.fn(x), batch)
            warm = []  # kornia recompiles on its second call or two (guards on its params dicts)
            for _ in range(max(spec["warmup"], 2)):
                t = time.perf_counter()
                kornia.fn(x)
                sync(device)
                warm.append(time.perf_counter() - t)
            emit(event="compiled", compile_s=compile_s, warmup_s=warm, **cfg)  # the time limit ends here
            (g, _), (k, _) = tp.time_cases([genaug, kornia], 1, spec["repeats"], lambda: None)
        except Exception as exc:  # noqa: BLE001
            emit(event="error", reason=f"after compiling: {type(exc).__name__}: {str(exc).strip()[:1500]}", **cfg)
            continue
        stats = counters["stats"]
        emit(event="result", compile_s=compile_s, warmup_s=warm, genaug_s=g, kornia_s=k,
             graphs=int(stats.get("unique_graphs", 0)), graph_breaks=int(sum(counters["graph_break"].values())),
             **cfg)
    return 0


# ------------------------------------------------------------------------------------ report
def _result(state: dict[str, Any], library: str, size: int, dtype: str) -> Any:
    return next((r for r in state["throughput"] if (r.library, r.size, r.dtype) == (library, size, dtype)), None)


def _latency(state: dict[str, Any], library: str, dtype: str) -> dict[str, Any] | None:
    return next((r for r in state["latency"] if (r["library"], r["dtype"]) == (library, dtype)), None)


def target_lines(args: argparse.Namespace, state: dict[str, Any]) -> list[str]:
    size = 224 if 224 in args.sizes else max(args.sizes)
    where = f"B={args.batch}, {size}x{size}"
    note = "" if (size, args.batch) == (224, 256) else " (smoke/custom settings, not the target's B=256 224x224)"
    lines = []
    for dtype in args.dtypes:
        ours = _result(state, "genaug", size, dtype)
        eager = _result(state, "kornia", size, dtype)
        if ours is None or eager is None:
            lines.append(f"- genaug >= {TARGET_EAGER:.0f}x kornia eager ({where}, {dtype}): not measured"
                         + ("" if ours else " (genaug row missing)") + ("" if eager else " (kornia row missing)"))
        else:
            ratio = eager.seconds / ours.seconds
            verdict = "met" if ratio >= TARGET_EAGER else "not met"
            lines.append(f"- genaug >= {TARGET_EAGER:.0f}x kornia eager ({where}, {dtype}): {ratio:.2f}x: **{verdict}**{note}")
        comp = state["compiled"].get((size, dtype))
        if comp is None or comp["event"] != "result":
            why = "section not run" if comp is None else f"{comp['event']}: {comp['reason'][:200]}"
            lines.append(f"- genaug >= {TARGET_COMPILED:.0f}x kornia compiled ({where}, {dtype}): not measured ({why})")
        else:
            ratio = comp["kornia_s"] / comp["genaug_s"]
            verdict = "met" if ratio >= TARGET_COMPILED else "not met"
            lines.append(f"- genaug >= {TARGET_COMPILED:.0f}x kornia compiled ({where}, {dtype}): {ratio:.2f}x: **{verdict}**{note}")
    lat_note = "" if (args.latency_batch, args.latency_size) == (8, 224) else " (smoke/custom settings)"
    for dtype in args.dtypes:
        ours, theirs = _latency(state, "genaug", dtype), _latency(state, "kornia", dtype)
        where = f"B={args.latency_batch}, {args.latency_size}x{args.latency_size}, {dtype}"
        if ours is None or theirs is None:
            lines.append(f"- genaug latency <= 1/3 of kornia eager ({where}): not measured")
        else:
            share = ours["seconds"] / theirs["seconds"]
            verdict = "met" if share <= TARGET_LATENCY else "not met"
            lines.append(f"- genaug latency <= 1/3 of kornia eager ({where}): {ours['seconds'] * 1e3:.2f} ms vs "
                         f"{theirs['seconds'] * 1e3:.2f} ms = {share:.2f} of kornia's: **{verdict}**{lat_note}")
    return lines


def queued_table(args: argparse.Namespace, state: dict[str, Any]) -> list[str]:
    if not state["queued"]:
        return ["(not run)"]
    lines = ["| size | dtype | library | ms / batch, queued | images/s | genaug speed-up |", "|---|---|---|---:|---:|---:|"]
    for r in state["queued"]:
        ours = next((q for q in state["queued"] if q["library"] == "genaug" and q["size"] == r["size"]
                     and q["dtype"] == r["dtype"]), None)
        ratio = f"{r['seconds'] / ours['seconds']:.2f}x" if ours else "n/a"
        lines.append(f"| {r['size']} | {r['dtype']} | {r['library']} | {r['seconds'] * 1e3:.2f} | "
                     f"{args.batch / r['seconds']:,.0f} | {ratio} |")
    return lines


def compiled_table(args: argparse.Namespace, state: dict[str, Any]) -> list[str]:
    lines = ["| size | dtype | status | first call (compile) s | next calls s | genaug ms / batch | "
             "kornia compiled ms / batch | kornia compiled images/s | genaug speed-up | graphs / graph breaks |",
             "|---|---|---|---:|---|---:|---:|---:|---:|---|"]
    for size, dtype in compile_configs(args):
        r = state["compiled"].get((size, dtype))
        if r is None:
            continue
        if r["event"] == "result":
            warm = ", ".join(f"{w:.2f}" for w in r["warmup_s"])
            lines.append(f"| {size} | {dtype} | ok | {r['compile_s']:.1f} | {warm} | {fmt_ms(r['genaug_s'])} | "
                         f"{fmt_ms(r['kornia_s'])} | {args.batch / r['kornia_s']:,.0f} | "
                         f"{r['kornia_s'] / r['genaug_s']:.2f}x | {r['graphs']} / {r['graph_breaks']} |")
        else:
            reason = r["reason"].replace("|", "\\|").replace("\n", " ")[:400]
            lines.append(f"| {size} | {dtype} | {r['event']}: {reason} | | | | | | | |")
    return lines


def write_report(args: argparse.Namespace, device: str, state: dict[str, Any], final: bool) -> None:
    import throughput as tp
    import torch

    v = state["versions"]
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none (CPU run)"
    cc = ", ".join(f"{c}={'yes' if shutil.which(c) else 'no'}" for c in ("gcc", "g++", "cc"))
    lines = [
        "# genaug on CUDA: throughput, latency, generative sampling",
        "",
        *([] if final else ["**Partial report: the run was still going (or was stopped) when this was written.**", ""]),
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- device: **{gpu}**" + (f", compute capability {'.'.join(map(str, torch.cuda.get_device_capability(0)))}, "
                                  f"CUDA runtime {torch.version.cuda}" if device == "cuda" else ""),
        f"- host: {cpu_name()}, {os.cpu_count()} logical CPUs; torch threads {torch.get_num_threads()}; C compilers: {cc}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- precision flags (PyTorch defaults, untouched): cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, "
        f"cuda.matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}",
        f"- command (repository root): `{state['command']}`; on the lent GPU machine the whole device command line is "
        "`benchmarks/gpu_command.txt`",
        f"- pipeline: `throughput.py`'s 5 ops (RandomResizedCrop, rotation, zoom, colour jitter, Gaussian blur; p=1, "
        f"per-sample parameters); every output checked for shape, dtype, device and change before timing; per case "
        f"1 check call + {args.warmup} warm-up call(s), then {args.repeats} timed calls round-robin over the libraries, "
        "each followed by `torch.cuda.synchronize()`; median reported",
        "",
        f"## 1. Throughput, B={args.batch} (eager)",
        "",
        tp.results_table(state["throughput"]) if state["throughput"] else "(not run)",
        "",
        "CPU ms / batch: host CPU time of the call (all threads), i.e. the Python and launch overhead.",
        "",
        f"### 1b. Queued: {args.queue} calls back to back, one synchronisation at the end (ms per batch, median of "
        f"{max(1, args.repeats // 2)} rounds)",
        "",
        "What a training loop sees when the host queues the next batch while the GPU still works on the last one. "
        "The targets below are judged on the per-call table above, not on this one.",
        "",
        *queued_table(args, state),
        "",
        "## 2. kornia under `torch.compile`",
        "",
        f"Backend `{args.compile_backend}`, one child process, `torch._dynamo.reset()` before each configuration; "
        f"kornia's compiled pipeline and genaug (eager) timed round-robin in that process. A compilation (the first call and "
        f"the recompilations of the next calls) over {args.compile_limit:.0f} s, or the section over its budget, is "
        f"killed and reported as skipped. Child log: `{Path(state.get('compile_log', '-')).name}`.",
        "",
        *(compiled_table(args, state) if state["compiled"] else ["(not run: see the section times below)"]),
        "",
        f"## 3. Latency, B={args.latency_batch}, {args.latency_size}x{args.latency_size} (ms per call, median of "
        f"{args.latency_repeats})",
        "",
        "| dtype | library | ms / call | ÷ genaug |",
        "|---|---|---:|---:|",
    ]
    for r in state["latency"]:
        ref = _latency(state, "genaug", r["dtype"])
        lines.append(f"| {r['dtype']} | {r['library']} | {r['seconds'] * 1e3:.3f} | "
                     f"{r['seconds'] / ref['seconds']:.2f}x |" if ref else f"| {r['dtype']} | {r['library']} | "
                     f"{r['seconds'] * 1e3:.3f} | n/a |")
    lines += [
        "",
        f"## 4. Generative sampling (`model.sample(batch)`, latents from a generator on the device, "
        f"{args.gen_seconds:g} s timed per row after 2 warm-up calls)",
        "",
        "| model | batch | images/s |",
        "|---|---:|---:|",
        *(f"| {r['model']} | {r['batch']} | {r['images_per_s']:,.0f} |" for r in state["generative"]),
        "",
        "## 5. genaug per-stage profile (float32; a sync around every stage, so the whole call is slower than in 1.)",
        "",
    ]
    for prof in state["profile"]:
        lines += [f"antialias={prof['antialias']}, B={args.batch}, {prof['size']}x{prof['size']}:", "",
                  tp.profile_table(prof["total"], prof["stages"]), ""]
    lines += [
        "## 6. DeviceLoader: end-to-end input pipeline (images/s of whole epochs)",
        "",
    ]
    if state["loader"]:
        import input_pipeline as ip

        ls = state["loader_settings"]
        lines += [
            f"`benchmarks/input_pipeline.py`'s configurations: {state['loader_source']}, PNG files "
            f"{ls.sizes} px ({ls.images} files), decoded with PIL in {ls.workers} DataLoader worker(s) "
            f"(`pin_memory` on CUDA), batch {ls.batch}, the same 5-op pipeline in every row; {ls.warmup_epochs} "
            f"warm-up epoch(s), then {ls.epochs} timed epoch(s) round-robin, median; every row delivers uint8 "
            "batches on the device. Main-process torch threads: "
            f"{torch.get_num_threads()}.",
            "",
            ip.results_table(state["loader"]),
            "",
        ]
    else:
        lines += ["(not run: see the section times below)", ""]
    lines += ["## Targets (printed, never asserted)", "", *target_lines(args, state), "",
              "## Section times (s)", "", "| section | seconds |", "|---|---:|",
              *(f"| {k} | {s:.1f} |" for k, s in state["times"].items()),
              *(f"| {k} | skipped: {why} |" for k, why in state["skipped"].items()), ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))


# ------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compile_worker is not None:
        return compile_worker(args.compile_worker)
    import torch

    if args.device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu" and not args.smoke:
            print("error: no CUDA device (torch.cuda.is_available() is False); use --smoke, or --device cpu "
                  "for the full settings on the CPU (slow)", file=sys.stderr)
            return 2
    else:
        device = args.device
        if device == "cuda" and not torch.cuda.is_available():
            print("error: --device cuda but torch.cuda.is_available() is False", file=sys.stderr)
            return 2
    if device == "cpu":
        torch.set_num_threads(min(2, torch.get_num_threads()))
    state: dict[str, Any] = {
        "throughput": [], "queued": [], "latency": [], "generative": [], "profile": [], "compiled": {}, "times": {}, "skipped": {},
        "loader": [],
        "versions": versions(),
        "command": " ".join(["python3", shlex.quote(Path(sys.argv[0]).as_posix()), *map(shlex.quote, sys.argv[1:])])
        if argv is None else "python3 benchmarks/gpu_suite.py " + shlex.join(argv),
    }
    log(f"device: {torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu'}; "
        + ", ".join(f"{k} {v}" for k, v in state["versions"].items()))
    sections = [
        ("1. throughput (eager)", lambda: section_throughput(args, device, state)),
        ("2. latency", lambda: section_latency(args, device, state)),
        ("3. generative sampling", lambda: section_generative(args, device, state)),
        ("4. per-stage profile", lambda: section_profile(args, device, state)),
    ]
    if args.loader:  # before the compiled section, which takes what is left of the budget
        sections.append(("6. DeviceLoader (end-to-end input pipeline)",
                         lambda: section_loader(args, device, state)))
    if args.compile:
        sections.append(("5. kornia torch.compile", None))
    failures = 0
    for name, fn in sections:
        remaining = args.budget - (time.perf_counter() - T0)
        if remaining < 15:
            state["skipped"][name] = f"{remaining:.0f} s of the {args.budget:.0f} s budget left"
            log(f"{name}: skipped ({state['skipped'][name]})")
            continue
        log(f"{name} ...")
        t = time.perf_counter()
        try:
            if fn is None:
                section_compiled(args, device, state, budget=min(args.compile_budget, remaining - 10))
            else:
                fn()
        except Exception as exc:  # noqa: BLE001 - one broken section must not lose the others
            failures += 1
            state["skipped"][name] = f"failed: {type(exc).__name__}: {exc}"
            log(f"{name}: FAILED: {type(exc).__name__}: {exc}")
        state["times"][name] = time.perf_counter() - t
        log(f"{name}: {state['times'][name]:.1f} s")
        write_report(args, device, state, final=False)
    state["times"]["total (incl. start-up)"] = time.perf_counter() - T0
    write_report(args, device, state, final=True)
    print()
    print("Targets:")
    for line in target_lines(args, state):
        print(line.replace("**", ""))
    log(f"wrote {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
