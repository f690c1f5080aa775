"""``genaug robustness``: evaluate a classifier on the corruption benchmark and write the reports."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``robustness`` subcommand to an argparse ``subparsers`` object.

    Example:
        >>> parser = argparse.ArgumentParser(prog="genaug")
        >>> register(parser.add_subparsers(dest="command"))  # doctest: +ELLIPSIS
        ArgumentParser(...)
    """
    p = subparsers.add_parser(
        "robustness", help="classifier error under the 15 (+4) corruptions at severities 1-5: CE, mCE, reports",
        description="Corrupt --data with each corruption and severity (published tables of Hendrycks & Dietterich "
                    "2019), measure --model's top-1 error, print the Markdown table and write robustness.json, "
                    ".csv, .md and .png to --out.")
    p.add_argument("--model", required=True, help="shipped classifier name (mnist-classifier) or a .safetensors path")
    p.add_argument("--data", default="mnist5k:test",
                   help="NAME[:SPLIT] of a built-in set (mnist5k:test, digits:test, photos) or imagefolder:DIR "
                        "(default: mnist5k:test)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--baseline", default=None,
                   help="robustness.json of an earlier run to normalise CE by, or 'alexnet' (ImageNet-C; the "
                        "default with --table imagenet)")
    p.add_argument("--corruptions", nargs="+", default=["benchmark"],
                   help="names, or benchmark (the 15, default), extra (the 4 held out), all")
    p.add_argument("--severities", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--table", default=None, choices=["cifar", "tiny-imagenet", "imagenet"],
                   help="severity table (default: by image size: <= 32 px cifar, <= 64 tiny-imagenet, else imagenet)")
    p.add_argument("--generator", default=None,
                   help="conditional generator (mnist-cgan, mnist-cvae or a path) for the generative shift")
    p.add_argument("--n-per-class", type=int, default=100, help="generator samples per class (default 100)")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate a random subset of N images, drawn with --seed (torch.randperm with "
                        "torch.Generator().manual_seed(SEED), first N; the built-in sets are sorted by class, "
                        "so the first N would be one class or a few)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the corruptions' randomness and of the --limit subset (default 0)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_robustness)
    return p


def _load_data(spec: str) -> Any:
    from genaug.data.builtin import BUILTIN_NAMES, load_builtin

    if spec.startswith("imagefolder:"):
        return load_builtin(spec, "all")
    name, _, split = spec.partition(":")
    if name not in BUILTIN_NAMES:
        raise SystemExit(f"genaug robustness: --data {spec!r}: use one of {', '.join(BUILTIN_NAMES)} "
                         "(optionally :train/:test/:all) or imagefolder:DIR")
    return load_builtin(name, split or "test")


def limit_subset(n: int, limit: int, seed: int) -> "torch.Tensor":
    """Indices of the ``--limit`` subset: the first ``limit`` of a seeded random permutation of ``n``.

    Example:
        >>> limit_subset(10, 3, seed=0).tolist() == limit_subset(10, 3, seed=0).tolist()
        True
        >>> len(limit_subset(10, 30, seed=0))
        10
    """
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit]


def run_robustness(args: argparse.Namespace) -> int:
    """Run the evaluation for parsed ``args`` and print the Markdown report."""
    import genaug
    from genaug.robustness.evaluation import evaluate

    from genaug._device import check_device
    from genaug._folders import check_output_folder

    if args.limit is not None and args.limit < 1:
        print(f"genaug robustness: --limit must be a positive number of images, got {args.limit}", file=sys.stderr)
        return 2
    try:  # before any work: a bad device or an unusable --out fails in a second, not after the run
        if args.device is not None:
            check_device(args.device, "--device")
        created = check_output_folder(args.out)
    except (ValueError, TypeError, OSError) as exc:
        print(f"genaug robustness: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    data = _load_data(args.data)
    if args.limit is not None:  # a seeded random subset: the built-in sets are sorted by class
        index = limit_subset(len(data.labels), args.limit, args.seed)
        data = (data.images[index], data.labels[index])
    model = genaug.load_model(args.model, device=args.device)
    generator = genaug.load_model(args.generator, device=args.device) if args.generator else None
    corruptions: Any = args.corruptions[0] if len(args.corruptions) == 1 and args.corruptions[0] in (
        "benchmark", "extra", "all") else args.corruptions
    try:
        result = evaluate(model, data, corruptions=corruptions, severities=args.severities, batch_size=args.batch_size,
                          device=args.device, table=args.table, seed=args.seed, baseline=args.baseline,
                          generator=generator, n_per_class=args.n_per_class, out=args.out,
                          progress=not args.no_progress, model_name=args.model, data_name=args.data)
    except (ValueError, TypeError, OSError) as exc:
        from genaug._folders import remove_empty_folders

        remove_empty_folders(created)
        print(f"genaug robustness: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    from genaug.robustness.report import to_markdown

    print(to_markdown(result))
    print(f"wrote robustness.json, robustness.csv, robustness.md and robustness.png to {args.out}/")
    return 0
