"""The ``genaug`` command: ``genaug demo``, ``genaug train`` and ``genaug evaluate-generator``."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from genaug._folders import OutputFolderError, _one_line, check_output_folder, remove_empty_folders  # noqa: F401
from genaug.generative.cli import register as register_train
from genaug.metrics.cli import register as register_evaluate
from genaug.robustness.cli import register as register_robustness
from genaug.data.cli import register as register_export


def _demo(args: argparse.Namespace) -> int:
    from genaug.demo import run_demo

    try:
        check_output_folder(args.out)
    except OSError as e:
        print(f"genaug demo: error: {_one_line(e)}", file=sys.stderr)
        return 2
    try:
        paths = run_demo(args.out, seed=args.seed)
    except OSError as e:           # the folder became unusable meanwhile (permissions, full disk, ...)
        print(f"genaug demo: error: writing to --out {str(args.out)!r} failed: {_one_line(e)}", file=sys.stderr)
        return 2
    print(f"genaug demo wrote to {args.out}/:")
    for path in paths:
        print(f"  {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``genaug`` command."""
    parser = argparse.ArgumentParser(prog="genaug", description="Batched and generative data augmentation.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="augment the built-in photos and write labelled PNG grids")
    demo.add_argument("--out", default="outputs/demo", help="output folder (default: outputs/demo)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the demo pipeline (default: 0)")
    demo.set_defaults(func=_demo)
    register_train(sub)
    register_evaluate(sub)
    register_robustness(sub)
    register_export(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``genaug`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
