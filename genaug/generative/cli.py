"""``genaug train {vae,gan,classifier}`` — the command-line front end of :func:`train`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import sys
from typing import Any

from .train import CONFIGS, KINDS, TrainConfig, TrainingDivergedError, train


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _set_item(item: str) -> str:
    """argparse ``type`` of ``--set``: checks the ``KEY=VALUE`` form (the value is typed by :func:`_parse_set`)."""
    key, eq, _ = item.partition("=")
    if not eq or not key.strip():
        raise argparse.ArgumentTypeError(f"expects KEY=VALUE (a model config field, e.g. latent_dim=32), got {item!r}")
    return item


def _convert(cls_name: str, key: str, declared: str, raw: str) -> Any:
    """``raw`` (the text after ``KEY=``) as the field's declared type, or a ValueError naming the key."""
    text = raw.strip()
    try:  # JSON spellings are accepted too: "ns" (quoted), true / false
        decoded = json.loads(text)
    except ValueError:
        decoded = text
    if declared == "str":
        return decoded if isinstance(decoded, str) else text
    if declared == "bool":
        if isinstance(decoded, bool):
            return decoded
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"--set {key}={raw!r}: {cls_name}.{key} is a bool; use true or false")
    if declared == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"--set {key}={raw!r}: {cls_name}.{key} is an int; give a whole number, e.g. "
                             f"{key}=32") from None
    if declared == "float":
        try:
            v = float(text)
        except ValueError:
            raise ValueError(f"--set {key}={raw!r}: {cls_name}.{key} is a number; give a finite number, e.g. "
                             f"{key}=0.5") from None
        if not math.isfinite(v):
            raise ValueError(f"--set {key}={raw!r}: {cls_name}.{key} must be a finite number (not NaN or infinity)")
        return v
    return decoded


def _parse_set(items: list[str], kind: str | None = None) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as a dict of model config overrides.

    With ``kind``, each key must be a field of that kind's config dataclass and each value is
    converted to the field's declared type (``int``, finite ``float``, ``bool`` as true/false,
    ``str``); a bad key or value raises ``ValueError`` naming it and what is allowed. Without
    ``kind`` values are JSON-decoded where possible (strings otherwise).

    Example:
        >>> _parse_set(["latent_dim=32", "beta=0.5", "prior=aggregate"], "vae")
        {'latent_dim': 32, 'beta': 0.5, 'prior': 'aggregate'}
    """
    out: dict[str, Any] = {}
    fields = None
    cls_name = ""
    if kind is not None:
        cls = CONFIGS[kind]
        cls_name = cls.__name__
        fields = {f.name: (f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type)))
                  for f in dataclasses.fields(cls)}
    for item in items:
        k, eq, v = _set_item(item).partition("=")
        k = k.strip()
        if fields is None:
            try:
                out[k] = json.loads(v)
            except ValueError:
                out[k] = v
            continue
        if k not in fields:
            raise ValueError(f"--set {k}=...: {cls_name} has no field {k!r}; allowed: {sorted(fields)}")
        out[k] = _convert(cls_name, k, fields[k], v)
    return out


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to an argparse ``subparsers`` object.

    Example:
        >>> parser = argparse.ArgumentParser(prog="genaug")
        >>> register(parser.add_subparsers(dest="command"))  # doctest: +ELLIPSIS
        ArgumentParser(...)
    """
    p = subparsers.add_parser(
        "train", help="train a conditional VAE, GAN or the reference classifier",
        description="Train a model; writes last.safetensors/last.json (resume state), best.safetensors and "
                    "model.safetensors to --out.")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--data", default="mnist5k",
                   help="mnist5k (built in), imagefolder:PATH or export:PATH: square images of side 28, 32 or 64 "
                        "with 1 or 3 channels (default: mnist5k)")
    p.add_argument("--split", default="train", choices=("train", "test", "all"))
    p.add_argument("--out", required=True, help="output folder")
    d = TrainConfig()
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-d", type=float, default=None, help="discriminator learning rate (GAN)")
    p.add_argument("--betas", type=float, nargs=2, default=list(d.betas))
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--ckpt-every", type=int, default=d.ckpt_every)
    p.add_argument("--val-every", type=int, default=d.val_every, help="0 disables validation")
    p.add_argument("--patience", type=int, default=d.patience, help="early stopping patience in validations (0 = off)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--val-classifier", default=None,
                   help="GAN: classifier checkpoint or shipped name scoring samples for validation/early stopping")
    p.add_argument("--d-augment", default=None, metavar="POLICY",
                   help="GAN: differentiable discriminator augmentation (DiffAugment) on real and fake images, "
                        "comma-separated ops from color, translation, cutout, e.g. 'translation,cutout' "
                        "(default: off)")
    p.add_argument("--d-augment-fill", type=float, default=d.d_augment_fill, metavar="VALUE",
                   help="GAN: value in [-1, 1] of pixels vacated by translation / removed by cutout "
                        "(0 = DiffAugment's mid-grey, -1 = black)")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA when available, else cpu), cpu, cuda, cuda:N, mps or xpu (default: auto)")
    p.add_argument("--resume", action="store_true", help="continue exactly from OUT/last.safetensors")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", type=_set_item,
                   help="model config field, converted to the field's type: e.g. --set latent_dim=32 --set loss=ns "
                        "--set minibatch_std=false (repeatable)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for CPU training")
    p.set_defaults(func=run_train)
    return p


def canonical_command(args: argparse.Namespace) -> str:
    """The full ``genaug train`` command for ``args`` (every option spelled out, defaults included).

    Recorded in checkpoint provenance: re-running it reproduces the run, whatever way the
    command was first invoked (console script, ``python -m`` or ``main(argv)``).
    """
    parts = ["genaug", "train", args.kind, "--data", args.data, "--split", args.split, "--out", args.out,
             "--steps", args.steps, "--batch-size", args.batch_size, "--lr", args.lr]
    if args.lr_d is not None:
        parts += ["--lr-d", args.lr_d]
    parts += ["--betas", *args.betas, "--weight-decay", args.weight_decay, "--seed", args.seed,
              "--ckpt-every", args.ckpt_every, "--val-every", args.val_every, "--patience", args.patience,
              "--val-fraction", args.val_fraction]
    if args.val_classifier:
        parts += ["--val-classifier", args.val_classifier]
    if args.d_augment is not None:
        parts += ["--d-augment", args.d_augment]
    if args.d_augment_fill != 0:
        parts += ["--d-augment-fill", args.d_augment_fill]
    parts += ["--device", args.device]
    for item in args.set:
        parts += ["--set", item]
    if args.threads:
        parts += ["--threads", args.threads]
    if args.resume:
        parts.append("--resume")
    return " ".join(shlex.quote(str(p)) for p in parts)


def run_train(args: argparse.Namespace) -> int:
    """Entry point for ``genaug train``; returns the exit status."""
    import torch

    if args.threads is not None and args.threads < 1:
        print(f"genaug train: error: --threads {args.threads} must be a positive int (CPU threads)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        overrides = _parse_set(args.set, args.kind)
        tc = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, lr_d=args.lr_d,
                         betas=tuple(args.betas), weight_decay=args.weight_decay, seed=args.seed,
                         ckpt_every=args.ckpt_every, val_every=args.val_every, patience=args.patience,
                         val_fraction=args.val_fraction, device=args.device, progress=not args.no_progress,
                         d_augment=args.d_augment, d_augment_fill=args.d_augment_fill)
        res = train(args.kind, args.data, args.out, overrides or None, tc, split=args.split, resume=args.resume,
                    val_classifier=args.val_classifier, command=canonical_command(args))
    except (ValueError, TypeError, OSError, TrainingDivergedError) as e:
        print(f"genaug train: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    msg = f"done: {res.step} steps; model written to {res.out / 'model.safetensors'}"
    if res.best_step is not None:
        msg += f" (best validation metric {res.best_metric:.4f} at step {res.best_step})"
    print(msg)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m genaug.generative.cli train ...``)."""
    parser = argparse.ArgumentParser(prog="genaug")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
