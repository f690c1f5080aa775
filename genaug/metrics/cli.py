"""``genaug evaluate-generator`` — the command-line front end of :mod:`genaug.metrics.report`."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate-generator`` subcommand to an argparse ``subparsers`` object.

    Example:
        >>> parser = argparse.ArgumentParser(prog="genaug")
        >>> register(parser.add_subparsers(dest="command"))  # doctest: +ELLIPSIS
        ArgumentParser(...)
    """
    p = subparsers.add_parser(
        "evaluate-generator", help="FID, KID, precision/recall, CAS, GAN-test, diversity of a generator, as one report",
        description="Sample from a generator (or take a folder of generated images), measure it against real data "
                    "and the real-data floor, print a table and write report.json, report.md, samples.png and "
                    "per_class.png to --out.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="shipped name (mnist-cgan, mnist-cvae) or path of a .safetensors checkpoint")
    src.add_argument("--samples", help="generated images instead of a model: imagefolder:PATH (class folders) "
                                       "or a built-in NAME:SPLIT")
    p.add_argument("--data", default="mnist5k:test", help="real reference, NAME[:SPLIT] or imagefolder:PATH "
                                                          "(default: mnist5k:test)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num", type=int, default=None,
                   help="generated images (default: the training split's size, 4000 for mnist5k)")
    p.add_argument("--seed", type=int, default=0, help="seeds the samples, the floor's subsample and KID (default 0)")
    p.add_argument("--features", default=None,
                   help="feature extractor: a classifier name/path, or inception:PATH of a local weights file "
                        "(default: mnist-classifier for 1x28x28 images)")
    p.add_argument("--classifier", default="mnist-classifier", help="real-trained classifier for GAN-test")
    p.add_argument("--train-data", default="auto",
                   help="real training split for CAS and the floor (default: NAME:train for NAME:test; 'none' skips)")
    p.add_argument("--cas-seeds", type=int, nargs="*", default=[0], help="CAS seeds (default: 0; none: skip CAS)")
    p.add_argument("--cas-steps", type=int, default=600, help="CAS classifier training steps (default 600)")
    p.add_argument("--cas-per-class", type=int, default=None,
                   help="samples per class CAS trains on (default: the training split's, 400 for mnist5k)")
    p.add_argument("--no-floor", action="store_true", help="skip the real-data floor")
    p.add_argument("--k", type=int, default=3, help="precision/recall neighbourhood size (default 3)")
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, default=None, help="default: min(1000, sample counts)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (default cpu); only devices "
                                                 "this machine has")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for CPU work")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_evaluate)
    return p


def canonical_command(args: argparse.Namespace) -> str:
    """The ``genaug evaluate-generator`` command for ``args``, every option spelled out."""
    parts: list[Any] = ["genaug", "evaluate-generator"]
    parts += ["--model", args.model] if args.model else ["--samples", args.samples]
    parts += ["--data", args.data, "--out", args.out]
    if args.num is not None:
        parts += ["--num", args.num]
    parts += ["--seed", args.seed]
    if args.features:
        parts += ["--features", args.features]
    parts += ["--classifier", args.classifier, "--train-data", args.train_data,
              "--cas-seeds", *args.cas_seeds, "--cas-steps", args.cas_steps]
    if args.cas_per_class is not None:
        parts += ["--cas-per-class", args.cas_per_class]
    if args.no_floor:
        parts.append("--no-floor")
    parts += ["--k", args.k, "--kid-subsets", args.kid_subsets]
    if args.kid_subset_size is not None:
        parts += ["--kid-subset-size", args.kid_subset_size]
    parts += ["--batch-size", args.batch_size, "--device", args.device]
    if args.threads:
        parts += ["--threads", args.threads]
    return " ".join(shlex.quote(str(x)) for x in parts)


def run_evaluate(args: argparse.Namespace) -> int:
    """Entry point of ``genaug evaluate-generator``; returns the exit status."""
    import torch

    from genaug._folders import _one_line, check_output_folder, remove_empty_folders
    from genaug.generative import CheckpointError

    from .report import evaluate_generator, evaluate_samples, resolve_device, write_report

    def fail(msg: Any) -> int:
        print(f"genaug evaluate-generator: error: {_one_line(msg)}", file=sys.stderr)
        return 2

    try:  # up front: a bad device or an unusable --out fails now, not after every metric was computed
        device = resolve_device(args.device, "--device")
    except ValueError as e:
        return fail(e)
    try:
        created = check_output_folder(args.out)
    except OSError as e:
        return fail(e)
    if args.threads:
        torch.set_num_threads(args.threads)
    common = dict(seed=args.seed, features=args.features, classifier=args.classifier,
                  train_data=None if args.train_data.lower() == "none" else args.train_data,
                  cas_seeds=tuple(args.cas_seeds), cas_steps=args.cas_steps, cas_per_class=args.cas_per_class,
                  floor=not args.no_floor, k=args.k,
                  kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size, batch_size=args.batch_size,
                  device=device, progress=not args.no_progress, command=canonical_command(args))
    try:
        if args.model:
            rep = evaluate_generator(args.model, args.data, num=args.num, **common)
        else:
            rep = evaluate_samples(args.samples, args.data, name=args.samples, num=args.num, **common)
    except (ValueError, TypeError, FileNotFoundError, ImportError, CheckpointError) as e:
        remove_empty_folders(created)
        return fail(e)
    try:
        paths = write_report(rep, args.out)
    except OSError as e:          # last resort: the folder became unusable while the metrics ran
        return fail(f"writing the report to --out {str(args.out)!r} failed: {_one_line(e)}")
    print(rep.table())
    print(f"\n{rep.elapsed_s:.0f} s; wrote {', '.join(str(p) for p in paths)}")
    return 0
