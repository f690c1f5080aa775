"""Generator evaluation of the shipped models: every metric of `genaug evaluate-generator`, side by side.

For each model: 4,000 class-balanced samples (seed 0) against the real mnist5k test split
(1,000 images), with FID, KID, precision / recall, CAS, GAN-test, diversity and coverage (and
PSNR / SSIM of the VAE's reconstructions), next to the floor: the same metrics with the 4,000
real training images in place of the samples. Each model's full report (JSON, Markdown, PNGs)
goes to --reports; the combined table to --out.

Usage:
    python benchmarks/generator_eval.py --threads 2 --out benchmarks/GENERATOR_EVAL.md
    python benchmarks/generator_eval.py --quick --out /tmp/generator_eval.md     # seconds: a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from pathlib import Path

import torch


def cpu_name() -> str:
    from generative_quality import cpu_name as name  # benchmarks/ is on sys.path when a script runs

    return name()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["mnist-cgan", "mnist-cvae"], help="shipped names or paths")
    p.add_argument("--data", default="mnist5k:test")
    p.add_argument("--num", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cas-seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--cas-steps", type=int, default=600)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="tiny settings (200 samples, 5 CAS steps): a smoke run")
    p.add_argument("--out", default="benchmarks/GENERATOR_EVAL.md")
    p.add_argument("--reports", default="outputs/generator_eval", help="folder for each model's full report")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from genaug.metrics import evaluate_generator, write_report
    from genaug.metrics.report import SUMMARY_ROWS, _fmt

    num, cas_steps, cas_per_class, kid_subsets = args.num, args.cas_steps, None, 100
    if args.quick:
        num, cas_steps, cas_per_class, kid_subsets = 200, 5, 20, 5
    cache: dict[int, float] = {}
    reports, times = [], []
    for name in args.models:
        t0 = time.perf_counter()
        rep = evaluate_generator(name, args.data, num=num, seed=args.seed, cas_seeds=tuple(args.cas_seeds),
                                 cas_steps=cas_steps, cas_per_class=cas_per_class, cas_cache=cache,
                                 kid_subsets=kid_subsets, progress=True)
        times.append(time.perf_counter() - t0)
        write_report(rep, Path(args.reports) / Path(name).stem)
        reports.append(rep)
        print(rep.table(), file=sys.stderr)
    floors = [r.floor["summary"] for r in reports]
    assert all(f == floors[0] for f in floors), "the floor must not depend on the model"
    floor = reports[0].floor

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    first = reports[0]
    lines = [
        "# Generator evaluation of the shipped models",
        "",
        f"- Command, run from the repository root: `{command}` "
        f"(each model's report: `genaug evaluate-generator --model NAME --data {args.data} --num {num} "
        f"--seed {args.seed} --cas-seeds {' '.join(map(str, args.cas_seeds))} --threads {args.threads} --out DIR`)",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {cpu_name()}, torch {torch.__version__}, {args.threads} CPU thread{'s' if args.threads > 1 else ''}, no GPU",
        f"- Real reference: {first.data} ({first.num_real} images); generated: {first.num} class-balanced samples "
        f"per model (seed {args.seed}); floor: {floor['num']} real images of {floor['source']} in their place",
        f"- Features for FID, KID, precision/recall (k = {first.settings['k']}), diversity and coverage "
        f"(k = {first.settings['coverage_k']}): `{first.extractor}` (128-d penultimate layer). "
        "**FID and KID here are in this extractor's feature space: comparable with each other and with runs "
        "using the same extractor and sample sizes, not with Inception FIDs in papers.**",
        f"- KID: {first.settings['kid_subsets']} subsets of {first.settings['kid_subset_size']}; CAS: reference CNN "
        f"trained {cas_steps} steps on {'the default 400' if cas_per_class is None else cas_per_class} samples per "
        f"class, seeds {args.cas_seeds}, mean ± std; GAN-test: `{first.classifier}`",
        "",
        "| metric | " + " | ".join(r.model for r in reports) + f" | real {floor['source']} (floor) | better |",
        "|---|" + "---|" * len(reports) + "---|---|",
    ]
    for key, label, better in SUMMARY_ROWS:
        cells = [_fmt(key, r.summary) for r in reports]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_fmt(key, floor['summary'])} | {better} |")
    lines.append("| time to evaluate (s) | " + " | ".join(f"{t:.0f}" for t in times) + " | | |")
    lines += ["", "CAS per seed (synthetic-trained / real-trained accuracy on the test split):", ""]
    for r in reports:
        cas = r.details.get("cas")
        if cas:
            per_seed = ", ".join(f"{c:.3f} ({s:.3f} / {a:.3f})" for c, s, a in
                                 zip(cas["cas"], cas["synthetic_acc"], cas["real_acc"]))
            lines.append(f"- {r.model}: {per_seed}")
    lines += ["", "Per class (GAN-test / recall / diversity):", "",
              "| class | " + " | ".join(r.model for r in reports) + " | floor |",
              "|---|" + "---|" * len(reports) + "---|"]
    for c in sorted(first.per_class["gan_test"]):
        def cell(pc: dict) -> str:
            return " / ".join("n/a" if pc[m].get(c) is None else f"{pc[m][c]:.2f}"
                              for m in ("gan_test", "recall", "diversity"))
        lines.append(f"| {c} | " + " | ".join(cell(r.per_class) for r in reports) + f" | {cell(floor['per_class'])} |")
    lines += ["", "Notes:", "", f"- {floor['note']}.", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}; reports in {args.reports}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
