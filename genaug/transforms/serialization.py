"""Save and load pipelines as plain data: dicts, JSON or YAML (never pickle).

A transform is ``{"name": class name, "args": constructor arguments}``; nested transforms (a
Compose's list) are nested the same way. Seeds are arguments, so a pipeline loaded from its dict
produces bitwise the same outputs as a fresh copy of the original.

Pipeline files may come from untrusted sources, so loading is bounded before anything is built:
at most :data:`MAX_PIPELINE_BYTES` bytes are read, and the parsed structure may hold at most
:data:`MAX_PIPELINE_NODES` values (YAML aliases counted once per use, so "billion laughs" files
are refused while still tiny) nested at most :data:`MAX_PIPELINE_DEPTH` levels deep.
"""

from __future__ import annotations

import json
import os
import reprlib
from pathlib import Path
from typing import Any

import yaml

from genaug._atomic import atomic_write_bytes
from genaug.transforms.base import Transform, registered_transforms

MAX_PIPELINE_BYTES = 2**20
"""Largest pipeline file :func:`load_pipeline` reads (1 MiB; saved pipelines are a few KB, and
pure-Python YAML parsing reads well under 1 MB/s, so this also bounds the parse time)."""
MAX_PIPELINE_NODES = 10_000
"""Most values (scalars, lists, mappings; YAML aliases expanded) a pipeline may hold; a
20-transform pipeline holds a few hundred."""
MAX_PIPELINE_DEPTH = 64
"""Deepest nesting of lists/mappings in a pipeline file or in a :func:`from_dict` config."""

_short = reprlib.Repr()
_short.maxlevel, _short.maxstring, _short.maxother = 3, 60, 60


def _check_structure(root: Any, children: Any, source: str) -> None:
    """Walk ``root`` iteratively, stopping as soon as a node or depth limit is passed.

    ``children(node)`` lists a node's children. Shared nodes (YAML aliases, repeated Python
    references) are walked again at every use, so the count is that of the fully expanded
    document; nodes are counted when pushed, so memory stays bounded by the limit.

    Raises:
        ValueError: naming ``source`` and the limit passed.
    """
    stack, count = [(root, 1)], 1
    while stack:
        node, depth = stack.pop()
        kids = children(node)
        if not kids:
            continue
        if depth + 1 > MAX_PIPELINE_DEPTH:
            raise ValueError(f"{source} is nested more than MAX_PIPELINE_DEPTH={MAX_PIPELINE_DEPTH} levels deep; "
                             "a real pipeline is never that deep (refusing it as possibly malicious)")
        count += len(kids)
        if count > MAX_PIPELINE_NODES:
            raise ValueError(f"{source} expands to more than MAX_PIPELINE_NODES={MAX_PIPELINE_NODES} values "
                             "(YAML aliases counted at every use); refusing it as possibly malicious")
        stack.extend((k, depth + 1) for k in kids)


class _BoundedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses, while still parsing, documents over the node/depth limits.

    Pure-Python PyYAML spends tens of microseconds per node, and its scanner does work
    proportional to the ``[``/``{`` nesting depth for every token, so both are checked as the
    text is read: at most :data:`MAX_PIPELINE_NODES` nodes are composed (an alias counts once
    here; :func:`_check_structure` then counts it at every use) and nothing nests deeper than
    :data:`MAX_PIPELINE_DEPTH`.
    """

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source, self.composed, self.depth = source, 0, 0

    def _refuse(self, what: str) -> ValueError:
        return ValueError(f"{self.source} {what}; refusing it as possibly malicious")

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MAX_PIPELINE_DEPTH:
            raise self._refuse(f"is nested more than MAX_PIPELINE_DEPTH={MAX_PIPELINE_DEPTH} levels deep")
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.composed += 1
        if self.composed > MAX_PIPELINE_NODES:
            raise self._refuse(f"holds more than MAX_PIPELINE_NODES={MAX_PIPELINE_NODES} values")
        if self.depth >= MAX_PIPELINE_DEPTH:
            raise self._refuse(f"is nested more than MAX_PIPELINE_DEPTH={MAX_PIPELINE_DEPTH} levels deep")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _yaml_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _data_children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, (list, tuple)):
        return list(value)
    return []


def _plain(value: Any, where: str) -> Any:
    if isinstance(value, Transform):
        return value.to_dict()  # a transform may describe itself (a generative augmenter names its model)
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"cannot serialize {where}={_short.repr(value)} ({type(value).__name__}): only genaug transforms and "
        "plain numbers, strings and lists can be saved (third-party modules cannot)"
    )


def transform_to_dict(transform: Transform) -> dict[str, Any]:
    """``{"name": ..., "args": ...}`` for ``transform`` (see :meth:`Transform.to_dict`)."""
    name = type(transform).__name__
    return {"name": name, "args": _plain(transform._init_args, name)}


def _build(value: Any, depth: int) -> Any:
    """Turn nested ``{"name", "args"}`` dicts (also inside lists) into transforms.

    ``depth`` bounds the recursion even for callers that skip :func:`_check_structure`.
    """
    if depth > MAX_PIPELINE_DEPTH:
        raise ValueError(f"config is nested more than MAX_PIPELINE_DEPTH={MAX_PIPELINE_DEPTH} levels deep")
    if isinstance(value, dict) and set(value) == {"name", "args"} and isinstance(value["name"], str):
        return _from_dict(value, depth)
    if isinstance(value, list):
        return [_build(v, depth + 1) for v in value]
    return value


def from_dict(config: dict[str, Any]) -> Transform:
    """Rebuild a transform from :meth:`Transform.to_dict` output.

    Example:
        >>> import genaug as ga
        >>> aug = ga.Compose([ga.RandomRotation(30)], seed=1)
        >>> ga.from_dict(aug.to_dict()).to_dict() == aug.to_dict()
        True

    Raises:
        ValueError: not a ``{"name", "args"}`` dict, an unknown transform, or a config nested
            deeper than :data:`MAX_PIPELINE_DEPTH` / holding more than :data:`MAX_PIPELINE_NODES`
            values (shared lists counted at every use).
    """
    _check_structure(config, _data_children, "config")
    return _from_dict(config, 0)


def _from_dict(config: Any, depth: int) -> Transform:
    """:func:`from_dict` at nesting ``depth`` (bounded by :data:`MAX_PIPELINE_DEPTH`)."""
    if not isinstance(config, dict) or "name" not in config or "args" not in config:
        raise ValueError(f"config must be a dict with 'name' and 'args', got {_short.repr(config)}")
    registry = registered_transforms()
    name = config["name"]
    if name not in registry:
        raise ValueError(f"unknown transform {_short.repr(name)}; known: {', '.join(sorted(registry))}")
    args = config["args"]
    if not isinstance(args, dict):
        raise ValueError(f"'args' of {name} must be a dict, got {type(args).__name__}")
    return registry[name](**{k: _build(v, depth + 2) for k, v in args.items()})


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


def _read_bounded(path: Path) -> str:
    """The text of ``path``, refusing files over :data:`MAX_PIPELINE_BYTES` without reading them."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        data = f.read(min(size, MAX_PIPELINE_BYTES) + 1)  # +1: notice a file that grew meanwhile
    if size > MAX_PIPELINE_BYTES or len(data) > MAX_PIPELINE_BYTES:
        raise ValueError(f"pipeline file {str(path)!r} is {max(size, len(data))} bytes; the limit is "
                         f"MAX_PIPELINE_BYTES={MAX_PIPELINE_BYTES} bytes")
    return data.decode("utf-8")


def _load_yaml(text: str, source: str) -> Any:
    """Compose ``text`` with a bounded safe loader, check the expanded node graph, then construct."""
    loader = _BoundedSafeLoader(text, source)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_structure(node, _yaml_children, source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_pipeline(path: str | os.PathLike[str]) -> Transform:
    """Load a pipeline written by :func:`save_pipeline` (JSON or YAML, parsed safely).

    Untrusted files are safe to try: the size, the number of values (YAML aliases expanded) and
    the nesting depth are checked before anything is built (see the module docstring).

    Raises:
        ValueError: wrong suffix, a file over :data:`MAX_PIPELINE_BYTES`, a structure over
            :data:`MAX_PIPELINE_NODES` / :data:`MAX_PIPELINE_DEPTH`, or an invalid config.
    """
    path = Path(path)
    if path.suffix not in (".json", ".yaml", ".yml"):
        raise ValueError(f"path must end in .json, .yaml or .yml, got {str(path)!r}")
    text = _read_bounded(path)
    source = f"pipeline file {str(path)!r}"
    if path.suffix == ".json":
        try:
            config = json.loads(text)
        except RecursionError:
            raise ValueError(f"{source} is nested too deeply to parse (limit "
                             f"MAX_PIPELINE_DEPTH={MAX_PIPELINE_DEPTH})") from None
        _check_structure(config, _data_children, source)
    else:
        config = _load_yaml(text, source)
    return from_dict(config)
