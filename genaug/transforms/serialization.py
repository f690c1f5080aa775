"""Save and load pipelines as plain data: dicts, JSON or YAML (never pickle).

A transform is ``{"name": class name, "args": constructor arguments}``; nested transforms (a
Compose's list) are nested the same way. Seeds are arguments, so a pipeline loaded from its dict
produces bitwise the same outputs as a fresh copy of the original.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from genaug._atomic import atomic_write_bytes
from genaug.transforms.base import Transform, registered_transforms


def _plain(value: Any, where: str) -> Any:
    if isinstance(value, Transform):
        return transform_to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"cannot serialize {where}={value!r} ({type(value).__name__}): only genaug transforms and "
        "plain numbers, strings and lists can be saved (third-party modules cannot)"
    )


def transform_to_dict(transform: Transform) -> dict[str, Any]:
    """``{"name": ..., "args": ...}`` for ``transform`` (see :meth:`Transform.to_dict`)."""
    name = type(transform).__name__
    return {"name": name, "args": _plain(transform._init_args, name)}


def _build(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"name", "args"} and isinstance(value["name"], str):
        return from_dict(value)
    if isinstance(value, list):
        return [_build(v) for v in value]
    return value


def from_dict(config: dict[str, Any]) -> Transform:
    """Rebuild a transform from :meth:`Transform.to_dict` output.

    Example:
        >>> import genaug as ga
        >>> aug = ga.Compose([ga.RandomRotation(30)], seed=1)
        >>> ga.from_dict(aug.to_dict()).to_dict() == aug.to_dict()
        True
    """
    if not isinstance(config, dict) or "name" not in config or "args" not in config:
        raise ValueError(f"config must be a dict with 'name' and 'args', got {config!r:.200}")
    registry = registered_transforms()
    name = config["name"]
    if name not in registry:
        raise ValueError(f"unknown transform {name!r}; known: {', '.join(sorted(registry))}")
    args = config["args"]
    if not isinstance(args, dict):
        raise ValueError(f"'args' of {name} must be a dict, got {type(args).__name__}")
    return registry[name](**{k: _build(v) for k, v in args.items()})


def save_pipeline(transform: Transform, path: str | os.PathLike[str]) -> Path:
    """Write ``transform`` as JSON (``.json``) or YAML (``.yaml``/``.yml``), atomically."""
    path = Path(path)
    config = transform.to_dict()
    if path.suffix == ".json":
        text = json.dumps(config, indent=2) + "\n"
    elif path.suffix in (".yaml", ".yml"):
        text = yaml.safe_dump(config, sort_keys=False)
    else:
        raise ValueError(f"path must end in .json, .yaml or .yml, got {str(path)!r}")
    return atomic_write_bytes(path, text.encode())


def load_pipeline(path: str | os.PathLike[str]) -> Transform:
    """Load a pipeline written by :func:`save_pipeline` (JSON or YAML, parsed safely)."""
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".json":
        config = json.loads(text)
    elif path.suffix in (".yaml", ".yml"):
        config = yaml.safe_load(text)
    else:
        raise ValueError(f"path must end in .json, .yaml or .yml, got {str(path)!r}")
    return from_dict(config)
