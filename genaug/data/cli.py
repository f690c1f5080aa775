"""``genaug generate`` and ``genaug augment``: write synthetic or augmented datasets to disk.

Both run the same engine (:mod:`genaug.data.export`): ImageFolder PNGs or WebDataset tar shards,
a manifest and a ``dataset.json``; byte-identical for the same command, atomic, resumable and
self-repairing, and split across ``torchrun`` ranks (``RANK`` / ``WORLD_SIZE``) with the same
result as one process. See ``docs/EXPORT.md``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

FORMATS = ("imagefolder", "webdataset")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _labels(text: str) -> str | int:
    if text in ("balanced", "weighted"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'balanced', 'weighted' or a class id, got {text!r}") from None


def _common(p: argparse.ArgumentParser, block_default: int) -> None:
    p.add_argument("--out", required=True, help="output folder (new, empty, or holding this same export to resume)")
    p.add_argument("--format", choices=FORMATS, default="imagefolder",
                   help="imagefolder: OUT/CLASS/INDEX.png; webdataset: OUT/shard-NNNNNN.tar (default: imagefolder)")
    p.add_argument("--seed", type=int, default=0, help="export seed (default: 0)")
    p.add_argument("--shard-size", type=_positive, default=None,
                   help="images per shard: the unit of work, resume and (webdataset) of files "
                        "(default: 1024 for imagefolder, 10000 for webdataset)")
    p.add_argument("--block-size", type=_positive, default=block_default,
                   help=f"images per batched forward pass / pipeline call; part of the export's identity "
                        f"(default: {block_default})")
    p.add_argument("--device", default="cpu",
                   help="where the model / pipeline runs: cpu (default), cuda (each torchrun rank takes "
                        "cuda:LOCAL_RANK), cuda:N or mps; checked before anything is written")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a different export found in --out (files genaug did not write are kept)")
    p.add_argument("--threads", type=_positive, default=None, help="torch.set_num_threads for this process")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(subparsers: Any) -> None:
    """Add the ``generate`` and ``augment`` subcommands to an argparse ``subparsers`` object.

    Example:
        >>> parser = argparse.ArgumentParser(prog="genaug")
        >>> register(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["generate", "--model", "mnist-cgan", "--num", "10", "--out", "x"]).num
        10
    """
    g = subparsers.add_parser(
        "generate", help="write a synthetic dataset (ImageFolder PNGs or WebDataset shards) from a generative model",
        description="Sample NUM images from a generative model into OUT (ImageFolder or WebDataset), with a manifest "
                    "and dataset.json. Deterministic, atomic, resumable (rerun the same command), and split across "
                    "torchrun ranks (RANK/WORLD_SIZE) with the same result as one process.")
    g.add_argument("--model", required=True,
                   help="shipped model name (mnist-cgan, mnist-cvae) or a .safetensors checkpoint")
    g.add_argument("--num", "--num-images", "-n", dest="num", type=_positive, required=True,
                   help="number of images (>= 1); after torchrun spell it --num-images (torchrun reads --num as its "
                        "--numa-binding)")
    g.add_argument("--labels", type=_labels, default="balanced",
                   help="balanced (item i has class i %% K, default), weighted (with --class-weights) or one class id")
    g.add_argument("--class-weights", type=float, nargs="+", default=None, help="K weights for --labels weighted")
    g.add_argument("--truncation", type=float, default=None, help="latent truncation (default: none)")
    g.add_argument("--pipeline", default=None, help="optional pipeline file (genaug.save_pipeline) applied per image")
    _common(g, 256)
    g.set_defaults(func=run_generate)

    a = subparsers.add_parser(
        "augment", help="write augmented copies of a dataset (ImageFolder PNGs or WebDataset shards)",
        description="Write COPIES augmented copies of every source image into OUT through a pipeline file (classical "
                    "or generative augmenters), with a manifest holding each image's parameters for exact replay. "
                    "Unreadable source files are skipped and listed in dataset.json (--strict: an error).")
    a.add_argument("--data", required=True,
                   help="imagefolder:PATH (one sub-folder per class) or a built-in dataset (mnist5k, digits, photos)")
    a.add_argument("--split", default="train", choices=("train", "test", "all"), help="split of a built-in dataset")
    a.add_argument("--pipeline", required=True, help="pipeline file written by genaug.save_pipeline (.yaml/.json)")
    a.add_argument("--copies", type=_positive, default=1, help="augmented copies per source image (default: 1)")
    a.add_argument("--strict", action="store_true", help="stop at an unreadable source file instead of skipping it")
    _common(a, 64)
    a.set_defaults(func=run_augment)


def _canonical(args: argparse.Namespace) -> str:
    """The command with every output-changing option spelled out (``--out`` is not recorded)."""
    if args.command == "generate":
        parts: list[Any] = ["genaug", "generate", "--model", args.model, "--num", args.num, "--labels", args.labels]
        if args.class_weights:
            parts += ["--class-weights", *args.class_weights]
        if args.truncation is not None:
            parts += ["--truncation", args.truncation]
        if args.pipeline:
            parts += ["--pipeline", args.pipeline]
    else:
        parts = ["genaug", "augment", "--data", args.data]
        if not args.data.startswith("imagefolder:"):
            parts += ["--split", args.split]
        parts += ["--pipeline", args.pipeline, "--copies", args.copies]
        if args.strict:
            parts.append("--strict")
    from .export import DEFAULT_SHARD_SIZE

    parts += ["--format", args.format, "--seed", args.seed,
              "--shard-size", args.shard_size or DEFAULT_SHARD_SIZE[args.format],
              "--block-size", args.block_size, "--device", args.device, "--out", "OUT"]
    return " ".join(shlex.quote(str(p)) for p in parts)


def _device(name: str) -> str:
    """``--device cuda`` is ``cuda:LOCAL_RANK`` (one GPU per torchrun rank); other names pass unchanged.

    The device itself is checked by the exporter before anything is written
    (:func:`genaug.data.export_sources.check_device`).
    """
    if name == "cuda":
        from .export_sources import ExportError

        local = os.environ.get("LOCAL_RANK", "0")
        try:
            rank = int(local)
        except ValueError:
            raise ExportError(f"--device cuda takes cuda:LOCAL_RANK, but LOCAL_RANK={local!r} is not an integer "
                              "(torchrun sets it); pass --device cuda:N instead") from None
        return f"cuda:{rank}"
    return name


def _report(name: str, res: Any) -> None:
    where = f"rank {res.rank}/{res.world_size}: " if res.world_size > 1 else ""
    print(f"genaug {name}: {where}{res.shards} of {res.num_shards} shards, {res.images:,} images in "
          f"{res.seconds:.1f} s ({res.images_per_second:,.0f} images/s): {res.written:,} written, "
          f"{res.verified:,} verified, {res.repaired:,} repaired",
          file=sys.stderr if res.world_size > 1 else sys.stdout)
    if res.finalized:
        counts = ", ".join(f"{k}: {v}" for k, v in res.class_counts.items())
        print(f"complete: {res.num_images:,} images in {res.out} ({res.num_shards} shards; manifest.jsonl, "
              f"dataset.json); per class: {counts}")
        skipped = {sk["file"]: sk["reason"] for sk in res.skipped}
        if skipped:
            print(f"skipped {len(skipped)} unreadable source file(s) (listed in dataset.json):")
            for f, reason in list(skipped.items())[:10]:
                print(f"  {f}: {reason}")
    elif not res.complete:
        print(f"genaug {name}: {where}done; the last rank to finish writes manifest.jsonl and completes "
              f"dataset.json (if a rank failed, rerun the same command: finished shards are verified, not redone)",
              file=sys.stderr)


def _run(name: str, args: argparse.Namespace, fn: Any, **kwargs: Any) -> int:
    import torch

    from .export_sources import ExportError

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        res = fn(format=args.format, seed=args.seed, shard_size=args.shard_size, block_size=args.block_size,
                 device=_device(args.device), overwrite=args.overwrite, progress=not args.no_progress,
                 command=_canonical(args), **kwargs)
    except ExportError as e:
        print(f"genaug {name}: error: {e}", file=sys.stderr)
        return 2
    _report(name, res)
    return 0


def run_generate(args: argparse.Namespace) -> int:
    """Entry point of ``genaug generate``; returns the exit status."""
    from .export import export_synthetic

    return _run("generate", args, lambda **kw: export_synthetic(
        args.model, args.num, args.out, labels=args.labels, class_weights=args.class_weights,
        pipeline=args.pipeline, truncation=args.truncation, **kw))


def run_augment(args: argparse.Namespace) -> int:
    """Entry point of ``genaug augment``; returns the exit status."""
    from .export import export_augmented

    return _run("augment", args, lambda **kw: export_augmented(
        args.data, args.out, args.pipeline, copies=args.copies, split=args.split, strict=args.strict, **kw))


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m genaug.data.cli generate ...`` (also under torchrun)."""
    parser = argparse.ArgumentParser(prog="genaug")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
