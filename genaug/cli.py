"""The ``genaug`` command: ``genaug demo``, ``genaug train`` and ``genaug evaluate-generator``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from genaug.generative.cli import register as register_train
from genaug.metrics.cli import register as register_evaluate
from genaug.robustness.cli import register as register_robustness
from genaug.data.cli import register as register_export


class OutputFolderError(OSError):
    """The output folder cannot be created or written to (the message names it and the OS error)."""


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def check_output_folder(path: str | os.PathLike[str], option: str = "--out") -> list[Path]:
    """Create the output folder ``path`` if needed and prove it writable (a temporary file, written and removed).

    Run it before any long work, so that an unusable folder fails in a second, not after the work.

    Returns:
        The folders it created, deepest first (:func:`remove_empty_folders` undoes them after a failure).

    Raises:
        OutputFolderError: naming ``option``, the folder and the OS error.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> [p.name for p in check_output_folder(root / "a" / "b")], list((root / "a" / "b").iterdir())
        (['b', 'a'], [])
    """
    out = Path(path)
    created = []
    for folder in (out, *out.parents):
        try:
            if folder.exists():
                break
        except OSError:
            break
        created.append(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputFolderError(f"{option} {str(out)!r} exists and is not a folder; give the path of a folder "
                                "(it is created if missing)") from None
    except OSError as e:
        remove_empty_folders(created)
        raise OutputFolderError(f"{option} {str(out)!r}: cannot create the output folder ({_one_line(e)})") from None
    try:
        fd, name = tempfile.mkstemp(dir=out, prefix=".genaug-write-test.", suffix=".tmp")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        remove_empty_folders(created)
        raise OutputFolderError(f"{option} {str(out)!r}: cannot write to the output folder ({_one_line(e)})") from None
    return created


def remove_empty_folders(folders: Sequence[Path]) -> None:
    """Remove ``folders`` (deepest first) where they are empty; a folder that is not empty stays."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


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
