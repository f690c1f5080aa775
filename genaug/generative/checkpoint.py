"""Safe checkpoints: ``.safetensors`` weights with JSON config/provenance in the metadata.

No pickle anywhere: weights are read with ``safetensors`` only, and a ``.pt``/``.pkl``-style
path (or a file that starts like a pickle or a ``torch.save`` zip) is refused with a message
explaining how to convert it safely.

Metadata keys (all strings): ``format`` (``"genaug"``), ``kind`` (``"vae"``, ``"gan"``,
``"classifier"``), ``config`` (JSON of the config dataclass), ``provenance`` (JSON: data,
split, steps, seed, command, genaug version, ...), ``sha256`` (digest of every tensor's
name, dtype, shape and bytes, checked on load; a file without it is refused unless loaded with
``verify=False``) and ``genaug_version``.

Checkpoints may come from untrusted sources, so :func:`load_model` reads only the header first
(at most :data:`MAX_HEADER_BYTES`), builds the model its config describes on the ``meta``
device (shapes only, no memory) and checks its tensor names and shapes against the header's;
a config asking for more or other weights than the file holds is refused before any real
allocation.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from genaug._atomic import atomic_path, atomic_write_bytes

from .models import (Classifier, ClassifierConfig, ConditionalGAN, ConditionalVAE, GANConfig,
                     VAEConfig)

FORMAT = "genaug"
MAX_HEADER_BYTES = 8 * 2**20
"""Largest safetensors header (tensor table + metadata) read; genaug's own are a few KB."""
SHIPPED = {
    "mnist-cvae": "mnist-cvae.safetensors",
    "mnist-cgan": "mnist-cgan.safetensors",
    "mnist-classifier": "mnist-classifier.safetensors",
}
_KINDS: dict[str, tuple[type, type]] = {
    "vae": (ConditionalVAE, VAEConfig),
    "gan": (ConditionalGAN, GANConfig),
    "classifier": (Classifier, ClassifierConfig),
}
_UNSAFE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar", ".joblib")
_CONVERT_HINT = (
    "genaug never unpickles files (unpickling can run arbitrary code). To convert a checkpoint you "
    "trust: in a separate, trusted Python session run `sd = torch.load(path, weights_only=True)` "
    "(or your framework's loader), build the matching genaug model, `model.load_state_dict(sd)`, "
    "then `genaug.generative.save_checkpoint(model, 'model.safetensors')`."
)


class CheckpointError(ValueError):
    """A checkpoint file is missing, unsafe, corrupted or does not match its config."""


def _genaug_version() -> str:
    try:
        from importlib.metadata import version

        return version("genaug")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over each tensor's name, dtype, shape and raw bytes, in sorted name order."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_safe_path(path: Path) -> None:
    if path.suffix.lower() in _UNSAFE_SUFFIXES:
        raise CheckpointError(f"path={str(path)!r} looks like a pickle/torch.save file ({path.suffix}); "
                              f"only .safetensors checkpoints are accepted. {_CONVERT_HINT}")
    if not path.exists():
        raise FileNotFoundError(f"checkpoint path={str(path)!r} does not exist; give a .safetensors file or one of "
                                f"the shipped names {sorted(SHIPPED)}")
    if path.is_dir():
        raise CheckpointError(f"path={str(path)!r} is a directory; give the .safetensors file inside it")
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header ('{'). The length's
    # low byte may be 0x80 or its first two bytes "PK", so those alone do not mean pickle / zip.
    if head[8:9] != b"{" and (head[:1] == b"\x80" or head[:2] == b"PK"):
        raise CheckpointError(f"path={str(path)!r} is a pickle / torch.save archive, not safetensors. {_CONVERT_HINT}")


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike,
                        metadata: dict[str, str]) -> Path:
    """Write ``tensors`` to ``path`` as safetensors, atomically (see :func:`genaug._atomic.atomic_path`).

    The metadata always gets the ``sha256`` of the tensors (:func:`tensor_digest`) when it has none,
    so every file genaug writes (model checkpoints and training state alike) can be verified on load.
    """
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    metadata = dict(metadata)
    metadata.setdefault("sha256", tensor_digest(tensors))
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write text atomically (see :func:`genaug._atomic.atomic_path`)."""
    return atomic_write_bytes(path, text.encode())


def model_kind(model: nn.Module) -> str:
    kind = getattr(model, "kind", None)
    if kind not in _KINDS:
        raise TypeError(f"model must be a ConditionalVAE, ConditionalGAN or Classifier; got {type(model).__name__}")
    return kind


def save_checkpoint(model: nn.Module, path: str | os.PathLike, provenance: dict[str, Any] | None = None,
                    *, inference_only: bool = False) -> Path:
    """Save a model as ``.safetensors`` with config, provenance and sha256 in the metadata.

    Args:
        model: a :class:`ConditionalVAE`, :class:`ConditionalGAN` or :class:`Classifier`.
        path: destination; must end in ``.safetensors``. Written atomically.
        provenance: JSON-serialisable facts (data, split, steps, seed, command, ...).
        inference_only: for a GAN, store only the sampling generator (the EMA weights when
            present) and drop the discriminator — a smaller file that can sample but not be
            trained further.

    Returns:
        The path written.

    Example:
        >>> save_checkpoint(model, "out/model.safetensors", {"data": "mnist5k"})  # doctest: +SKIP
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"path={str(path)!r} must end in .safetensors (genaug writes safetensors only)")
    kind = model_kind(model)
    if inference_only and kind == "gan":
        net = model.generator_ema if model.generator_ema is not None else model.generator
        tensors = {f"generator.{k}": v for k, v in net.state_dict().items()}
    else:
        tensors = dict(model.state_dict())
    prov = dict(provenance or {})
    prov.setdefault("genaug_version", _genaug_version())
    meta = {
        "format": FORMAT,
        "kind": kind,
        "config": json.dumps(model.config.to_dict(), sort_keys=True),
        "provenance": json.dumps(prov, sort_keys=True, default=str),
        "genaug_version": _genaug_version(),
        "sha256": tensor_digest(tensors),
    }
    return atomic_save_tensors(tensors, path, meta)


def read_header(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """Metadata and tensor shapes of a ``.safetensors`` file, reading only its header.

    The header size (the file's first 8 bytes) must be at most :data:`MAX_HEADER_BYTES`.

    Raises:
        CheckpointError: unsafe format, oversized header, or unreadable/corrupted file.
    """
    path = Path(path)
    _check_safe_path(path)
    with open(path, "rb") as f:
        head = f.read(8)
    header_bytes = int.from_bytes(head, "little") if len(head) == 8 else 0
    if header_bytes > MAX_HEADER_BYTES:
        raise CheckpointError(f"checkpoint {str(path)!r} declares a {header_bytes}-byte header; the limit is "
                              f"MAX_HEADER_BYTES={MAX_HEADER_BYTES} (refusing a corrupted or malicious file)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupted or not a safetensors file ({e})") from e
    return meta, shapes


def _missing_digest_error(path: Path) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {str(path)!r} has no sha256 in its metadata: every file genaug writes records the digest of "
        "its tensors, so this one was altered (tampered with) or not written by genaug, and its integrity cannot "
        "be checked. If you trust it, load it with verify=False (load_model(path, verify=False), "
        "read_checkpoint(path, verify=False) or checkpoint_info(path, verify=False)) and re-save it with "
        "genaug.generative.save_checkpoint, which records the digest")


def read_checkpoint(path: str | os.PathLike, verify: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read tensors and metadata from a ``.safetensors`` file, with safety and integrity checks.

    Args:
        path: the ``.safetensors`` file.
        verify: recompute the tensors' sha256 and compare it with the one in the metadata (the
            default). A file without a recorded sha256 is refused then: genaug writes one into every
            file, so its absence means the file was altered or comes from elsewhere. ``False`` skips
            the check (only for files you trust).

    Returns:
        ``(tensors, metadata)``.

    Raises:
        CheckpointError: unsafe format, oversized header, unreadable/corrupted file, sha256
            mismatch, or (with ``verify``) no sha256 recorded.
    """
    path = Path(path)
    meta, _ = read_header(path)
    if verify and "sha256" not in meta:
        raise _missing_digest_error(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupted or not a safetensors file ({e})") from e
    if verify:
        got = tensor_digest(tensors)
        if got != meta["sha256"]:
            raise CheckpointError(f"checkpoint {str(path)!r} is corrupted: tensor sha256 {got[:12]}... does not "
                                  f"match the recorded {meta['sha256'][:12]}...")
    return tensors, meta


def checkpoint_info(path_or_name: str | os.PathLike, verify: bool = True) -> dict[str, Any]:
    """Metadata of a checkpoint (path or shipped name) with ``config``/``provenance`` decoded.

    ``verify`` as in :func:`read_checkpoint` (the tensors' sha256 is checked by default).
    """
    _, meta = read_checkpoint(_resolve(path_or_name), verify=verify)
    out: dict[str, Any] = dict(meta)
    for k in ("config", "provenance"):
        if k in out:
            out[k] = json.loads(out[k])
    return out


def shipped_path(name: str) -> Path:
    """Path of a weights file shipped inside the installed package."""
    if name not in SHIPPED:
        raise ValueError(f"unknown shipped model name={name!r}; allowed: {sorted(SHIPPED)}")
    p = Path(str(resources.files("genaug") / "weights" / SHIPPED[name]))
    if not p.exists():
        raise FileNotFoundError(f"shipped weights for {name!r} are missing from the installation ({p})")
    return p


def _resolve(name_or_path: str | os.PathLike) -> Path:
    if isinstance(name_or_path, str) and name_or_path in SHIPPED:
        return shipped_path(name_or_path)
    return Path(name_or_path)


def _parse_config(kind: str, config: dict[str, Any], source: str) -> Any:
    """The config dataclass for ``kind`` from its dict, or a :class:`CheckpointError`."""
    if kind not in _KINDS:
        raise CheckpointError(f"{source}: unknown model kind {kind!r}; allowed: {sorted(_KINDS)}")
    cfg_cls = _KINDS[kind][1]
    if not isinstance(config, dict):
        raise CheckpointError(f"{source}: config metadata must be a JSON object, got {type(config).__name__}")
    try:
        return cfg_cls.from_dict(config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: invalid {cfg_cls.__name__} in metadata: {e}") from e


def _make_model(kind: str, cfg: Any, names: Any) -> nn.Module:
    """The model for ``kind``/``cfg``; a GAN's optional parts follow the tensor ``names`` present."""
    model_cls = _KINDS[kind][0]
    if kind == "gan":
        return model_cls(cfg, with_discriminator=any(k.startswith("discriminator.") for k in names),
                         with_ema=any(k.startswith("generator_ema.") for k in names))
    return model_cls(cfg)


def check_shapes(kind: str, config: dict[str, Any], shapes: dict[str, tuple[int, ...]],
                 source: str = "checkpoint") -> Any:
    """Check that the model ``kind``/``config`` describes has exactly the tensors ``shapes`` lists.

    The model is built on the ``meta`` device (shapes only, no memory, no compute), so a config
    asking for huge layers costs nothing. Every state-dict name and shape must match the file's
    (the error names the first few that do not), and the config's value count must not exceed
    the file's.

    Returns:
        The parsed config dataclass.

    Raises:
        CheckpointError: unknown kind, invalid config, or names/shapes that do not match.
    """
    cfg = _parse_config(kind, config, source)
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in _make_model(kind, cfg, shapes).state_dict().items()}
    except (RuntimeError, ValueError, TypeError, OverflowError, MemoryError) as e:
        raise CheckpointError(f"{source}: cannot build a model from config {cfg}: {e}") from e
    wanted = sum(math.prod(s) for s in expected.values())
    held = sum(math.prod(s) for s in shapes.values())
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    shape_bad = [f"{k}: file {shapes[k]} vs config {expected[k]}"
                 for k in sorted(set(expected) & set(shapes)) if shapes[k] != expected[k]]
    problems = [f"missing {missing[:5]}" if missing else "",
                f"unexpected {unexpected[:5]}" if unexpected else "",
                f"shape mismatch {shape_bad[:3]}" if shape_bad else "",
                f"the config needs {wanted:,} values but the file holds only {held:,}" if wanted > held else ""]
    if any(problems):
        raise CheckpointError(f"{source}: weights do not match the config {cfg}: "
                              + "; ".join(p for p in problems if p))
    return cfg


def build_from_tensors(kind: str, config: dict[str, Any], tensors: dict[str, torch.Tensor],
                       source: str = "checkpoint") -> nn.Module:
    """Construct the model for ``kind``/``config`` and load ``tensors`` strictly.

    Names and shapes are checked first on the ``meta`` device (:func:`check_shapes`), so
    nothing real is allocated for a config that does not match the tensors.
    """
    cfg = check_shapes(kind, config, {k: tuple(v.shape) for k, v in tensors.items()}, source)
    model = _make_model(kind, cfg, tensors)
    model.load_state_dict(tensors, strict=True)
    return model


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu", *,
               verify: bool = True) -> nn.Module:
    """Load a shipped model by name or a user checkpoint by path, in eval mode.

    Args:
        name_or_path: ``"mnist-cvae"``, ``"mnist-cgan"``, ``"mnist-classifier"`` (weights
            shipped in the package, trained on the mnist5k train split) or a path to a
            ``.safetensors`` checkpoint written by genaug.
        device: where to put the model.
        verify: check the tensors against the sha256 recorded in the metadata (the default; a
            file without one is refused). ``False`` skips that check, for a file you trust.

    Returns:
        A :class:`ConditionalVAE`, :class:`ConditionalGAN` or :class:`Classifier` in eval
        mode; its ``checkpoint_metadata`` attribute holds the decoded metadata.

    Raises:
        CheckpointError: pickle-format path, corrupted file (sha256 mismatch), no sha256 recorded
            (with ``verify``), oversized header, or weights that do
            not match the config in the metadata (checked on the ``meta`` device before the
            real model is built, so a forged config cannot trigger a huge allocation).

    Example:
        >>> import genaug, torch
        >>> gan = genaug.load_model("mnist-cgan")
        >>> x = gan.sample(10, labels=list(range(10)), generator=torch.Generator().manual_seed(0))
    """
    path = _resolve(name_or_path)
    source = f"checkpoint {str(path)!r}"
    meta, shapes = read_header(path)  # header only: nothing is allocated before the checks below
    if meta.get("format") != FORMAT or "kind" not in meta or "config" not in meta:
        raise CheckpointError(f"checkpoint {str(path)!r} has no genaug metadata (format/kind/config); it was not "
                              "written by genaug.generative.save_checkpoint")
    try:
        config = json.loads(meta["config"])
        provenance = json.loads(meta.get("provenance", "{}"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError, over-long ints, absurd nesting
        raise CheckpointError(f"{source}: config/provenance metadata is not valid JSON ({e})") from e
    check_shapes(meta["kind"], config, shapes, source)
    # refuses a file without a recorded sha256 (verify) before reading any tensor data; build_from_tensors
    # re-checks the shapes, should the file change meanwhile
    tensors, _ = read_checkpoint(path, verify=verify)
    model = build_from_tensors(meta["kind"], config, tensors, source=source)
    model.checkpoint_metadata = {**meta, "config": config, "provenance": provenance}
    return model.to(device).eval()
