"""What ``genaug generate`` and ``genaug augment`` export: item producers over an index space.

A source maps every export index ``k`` in ``[0, num)`` to one image, its label and its manifest
facts, as a pure function of ``k`` and the source's identity, computed in fixed blocks of
indices (``[b * block_size, (b + 1) * block_size)``, cut at shard edges), never in batches that
depend on who asks. That is what makes a shard a pure function of its index range, so any
number of ranks, in any order, with any resume history, writes the same bytes.

* :class:`SyntheticSource` — item ``k`` is ``SyntheticDataset(model, num, seed, ...)[k]``.
* :class:`AugmentSource` — item ``k`` is copy ``k % copies`` of source image ``k // copies``,
  augmented with parameters drawn from a per-index seed (the same SplitMix64 construction as
  ``SyntheticDataset``), all items of a block that share a size in one batched call.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genaug.data.synthetic import (SyntheticDataset, _cat_params, _ParamsMismatch, convert_images,
                                   index_seeds, stream_key)
from genaug._device import check_device as _check_device
from genaug.transforms.base import Transform, take_rows

__all__ = ["AugmentSource", "Block", "ExportError", "SyntheticSource", "check_device", "params_from_json",
           "params_to_json"]

#: Stream id of the augmentation parameters of ``genaug augment`` (``SyntheticDataset`` uses 1-3).
STREAM_AUGMENT = 21
#: File extensions read as images from an ``imagefolder:`` source (torchvision's ``IMG_EXTENSIONS``).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class ExportError(ValueError):
    """A problem with an export's inputs or output folder, with a message a user can act on."""


def check_device(device: Any) -> torch.device | None:
    """``device`` as a :class:`torch.device`, or :class:`ExportError` if this machine cannot run on it.

    Checked before anything is written (:func:`genaug._device.check_device`), so ``--device cuda``
    on a machine without CUDA (or ``cuda:7`` with two GPUs) fails with one line saying what is
    available, instead of a traceback after the output folder was claimed. ``None`` (the model's
    own device) passes unchanged.

    Example:
        >>> check_device("cpu")
        device(type='cpu')
        >>> check_device("gpu")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        genaug.data.export_sources.ExportError: --device='gpu' is not a device name torch knows; allowed: cpu, ...
    """
    if device is None:
        return None
    try:
        return _check_device(device, "--device", auto=False)
    except (ValueError, TypeError) as e:
        hint = ("; under torchrun, --device cuda takes cuda:LOCAL_RANK, so start at most as many ranks per machine "
                "as it has GPUs") if "there is no such device" in str(e) else ""
        raise ExportError(f"{e}{hint}") from None


# ----------------------------------------------------------------------------- params as JSON
def params_to_json(params: Any) -> Any:
    """Params (nested dicts of tensors) as JSON-able data; :func:`params_from_json` inverts it exactly.

    A tensor becomes ``{"dtype": "float32", "shape": [...], "data": [...]}`` (floats are written
    with ``repr`` precision, so float32/float64 values come back bit for bit).

    Example:
        >>> p = {"apply": torch.tensor([True]), "angle": torch.tensor([12.5]), "drawn_for": {"op": "X", "size": (2, 3)}}
        >>> q = params_from_json(params_to_json(p))
        >>> torch.equal(q["angle"], p["angle"]), q["apply"].dtype, q["drawn_for"]["size"]
        (True, torch.bool, [2, 3])
    """
    if isinstance(params, torch.Tensor):
        t = params.detach().cpu()
        return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "data": t.flatten().tolist()}
    if isinstance(params, dict):
        return {str(k): params_to_json(v) for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        return [params_to_json(v) for v in params]
    if isinstance(params, (np.integer, np.floating)):
        return params.item()
    return params


def params_from_json(data: Any) -> Any:
    """Inverse of :func:`params_to_json`: replayable params (``aug(x, params=...)``)."""
    if isinstance(data, dict):
        if set(data) == {"dtype", "shape", "data"} and isinstance(data["shape"], list):
            dtype = getattr(torch, str(data["dtype"]), None)
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f"params hold a tensor of unknown dtype {data['dtype']!r}")
            return torch.tensor(data["data"], dtype=dtype).reshape(data["shape"])
        return {k: params_from_json(v) for k, v in data.items()}
    if isinstance(data, list):
        return [params_from_json(v) for v in data]
    return data


# ----------------------------------------------------------------------------- blocks
@dataclass
class Block:
    """The items of one block: parallel lists, in index order (a skipped source leaves no item)."""

    indices: list[int] = field(default_factory=list)
    images: list[torch.Tensor] = field(default_factory=list)  # uint8 (C, H, W), CPU
    labels: list[int] = field(default_factory=list)  # class id (argmax of a soft label), -1 unlabeled
    rows: list[dict[str, Any]] = field(default_factory=list)  # manifest facts (no file / sha256 yet)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # unreadable sources met here
    span: int = 0  # how many indices the block covers (items + skipped copies)


def block_ranges(start: int, stop: int, block_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` cut on the absolute grid of ``block_size``."""
    out, a = [], start
    while a < stop:
        b = min(stop, (a // block_size + 1) * block_size)
        out.append((a, b))
        a = b
    return out


def _label_fields(label: torch.Tensor) -> tuple[int, dict[str, Any]]:
    """Class id for folders / ``.cls`` and the manifest's label fields (soft labels kept in full)."""
    if label.dim() == 0:
        return int(label), {"label": int(label)}
    soft = label.float()
    return int(soft.argmax()), {"label": int(soft.argmax()), "soft_label": [float(v) for v in soft.tolist()]}


def _pipeline_desc(pipeline: Transform | None) -> Any:
    if pipeline is None:
        return None
    try:
        return pipeline.to_dict()
    except Exception as e:  # a third-party stage cannot be serialized
        raise ExportError(f"the pipeline cannot be serialized ({e}); an export records its pipeline in dataset.json, "
                          "so use genaug transforms (save_pipeline / load_pipeline)") from None


# ----------------------------------------------------------------------------- generate
class SyntheticSource:
    """Items of ``SyntheticDataset(model, num, seed, labels, transform=pipeline, ...)``, uint8.

    Item ``k`` of the export is exactly ``SyntheticDataset(...)[k]`` built with the same arguments
    (``chunk_size`` never changes an item), so anyone can regenerate any exported image.
    """

    kind = "generate"

    def __init__(self, model: Any, num: int, *, seed: int = 0, labels: Any = "balanced",
                 class_weights: Any = None, pipeline: Transform | None = None, truncation: float | None = None,
                 block_size: int = 256, device: Any = None) -> None:
        from genaug.generative.checkpoint import SHIPPED, file_sha256, shipped_path

        check_device(device)  # before the model is moved there (a missing GPU: one line, not a traceback)
        if pipeline is not None and not isinstance(pipeline, Transform):
            raise ExportError("pipeline must be a genaug Transform (e.g. from load_pipeline), got "
                              f"{type(pipeline).__name__}")
        self.ds = SyntheticDataset(model, length=num, seed=seed, labels=labels, transform=pipeline,
                                   class_weights=class_weights, truncation=truncation, dtype=torch.uint8,
                                   device=device, chunk_size=block_size, block_size=block_size, cache_chunks=2)
        self.num = num
        self.block_size = block_size
        self.pipeline = pipeline
        if isinstance(model, str) and model in SHIPPED:
            self.model_name, self.model_sha256 = model, file_sha256(shipped_path(model))
        elif isinstance(model, (str, os.PathLike)):
            self.model_name, self.model_sha256 = os.path.basename(os.fspath(model)), file_sha256(model)
        else:
            self.model_name, self.model_sha256 = type(model).__name__, None  # weights_sha256 identifies it
        k = self.ds.num_classes
        width = len(str(max(k - 1, 0)))
        self.classes = [str(c).zfill(width) for c in range(k)] if k else ["unlabeled"]

    def identity(self) -> dict[str, Any]:
        d = self.ds.describe()
        for key in ("model", "torch_version", "genaug_version", "type", "transform"):
            d.pop(key, None)
        return {"source": "generate", "model": {"name": self.model_name, "file_sha256": self.model_sha256,
                                                 "weights_sha256": d.pop("model_sha256")},
                "pipeline": _pipeline_desc(self.pipeline), **d}

    def class_dir(self, label: int) -> str:
        return self.classes[label] if 0 <= label < len(self.classes) else "unlabeled"

    def produce(self, start: int, stop: int) -> Block:
        """Items ``[start, stop)`` (within one block of the grid)."""
        ds = self.ds
        x, y = ds.get_batch(range(start, stop))
        idx = np.arange(start, stop, dtype=np.int64)
        # ds.latent_seed(i) / ds.transform_seed(i) for the whole block at once (the same numbers)
        latent = index_seeds(ds._latent_key, idx).tolist()
        tseeds = index_seeds(ds._transform_key, idx).tolist() if self.pipeline is not None else None
        hard = y.dim() == 1
        ys = y.tolist() if hard else None
        out = Block()
        for j, i in enumerate(range(start, stop)):
            cls, fields = (ys[j], {"label": ys[j]}) if ys is not None else _label_fields(y[j])
            row: dict[str, Any] = {"index": i, **fields, "seed": latent[j], "model": self.model_name,
                                   "model_sha256": self.model_sha256}
            if tseeds is not None:
                row["transform_seed"] = tseeds[j]
                row["params"] = params_to_json(ds.transform_params(i))
            out.indices.append(i)
            out.images.append(x[j])
            out.labels.append(cls)
            out.rows.append(row)
        return out


# ----------------------------------------------------------------------------- augment
@dataclass
class _SourceFile:
    name: str  # relative path (imagefolder) or "NAME:SPLIT/j" (built-in)
    label: int
    size: int
    sha256: str


class AugmentSource:
    """Copies of every image of a source folder (or built-in dataset) through a pipeline.

    Args:
        data: ``"imagefolder:PATH"`` (one sub-folder per class, like torchvision's ``ImageFolder``)
            or a built-in name (``"mnist5k"``, ``"digits"``, ``"photos"``) with ``split``.
        pipeline: a genaug Transform (classical or generative augmenters).
        copies: augmented copies per source image (>= 1).
        seed: export seed (mixed with the pipeline's own seed into the per-index seeds).
        block_size: items per batched pipeline call (fixed grid; part of the identity).
        device: where the pipeline runs.
        strict: raise instead of skipping unreadable source files.
    """

    kind = "augment"

    def __init__(self, data: str, pipeline: Transform, *, copies: int = 1, seed: int = 0, split: str = "train",
                 block_size: int = 64, device: Any = None, strict: bool = False) -> None:
        if not isinstance(pipeline, Transform):
            raise ExportError("pipeline must be a genaug Transform (e.g. from load_pipeline), got "
                              f"{type(pipeline).__name__}")
        self.pipeline, self.copies, self.seed, self.block_size = pipeline, copies, seed, block_size
        self.device = check_device(device) or torch.device("cpu")
        self.strict = strict
        self.data = data
        self.ignored: list[dict[str, Any]] = []  # files that are not images by extension
        self._tensors: torch.Tensor | None = None
        if data.startswith("imagefolder:"):
            self.root: Path | None = Path(data.split(":", 1)[1]).expanduser()
            self._scan_folder()
        else:
            self.root = None
            self._load_builtin(data, split)
        if not self.files:
            raise ExportError(f"the source {data!r} holds no image files (extensions {', '.join(IMAGE_EXTENSIONS)})")
        self.num = len(self.files) * copies
        self._key = stream_key(seed, STREAM_AUGMENT, getattr(pipeline, "seed", None) or 0)
        h = hashlib.sha256()
        for f in self.files:
            h.update(f"{f.name}\t{f.label}\t{f.size}\t{f.sha256}\n".encode())
        self.files_digest = h.hexdigest()

    # ---------------------------------------------------------------- source listing
    def _scan_folder(self) -> None:
        root = self.root
        assert root is not None
        if not root.exists():
            raise ExportError(f"source folder {str(root)!r} does not exist")
        if not root.is_dir():
            raise ExportError(f"source {str(root)!r} is not a folder (imagefolder: needs one sub-folder per class)")
        try:
            classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
        except PermissionError:
            raise ExportError(f"cannot read source folder {str(root)!r}: permission denied") from None
        if not classes:
            raise ExportError(f"source folder {str(root)!r} has no class sub-folders (imagefolder layout: "
                              "ROOT/CLASS/IMAGE.png, as torchvision's ImageFolder reads it)")
        self.classes = classes
        files: list[_SourceFile] = []
        for label, cls in enumerate(classes):
            for dirpath, dirnames, filenames in sorted(os.walk(root / cls, followlinks=True)):
                dirnames.sort()
                for fname in sorted(filenames):
                    path = Path(dirpath) / fname
                    rel = path.relative_to(root).as_posix()
                    if fname.startswith("."):
                        continue
                    if not fname.lower().endswith(IMAGE_EXTENSIONS):
                        self.ignored.append({"file": rel, "reason": "not an image file (extension)"})
                        continue
                    try:
                        size, sha = path.stat().st_size, _sha256_path(path)
                    except OSError as e:
                        if self.strict:
                            raise ExportError(f"cannot read source file {rel!r}: {e.strerror or e}") from None
                        self.ignored.append({"file": rel, "reason": f"unreadable: {e.strerror or e}"})
                        continue
                    files.append(_SourceFile(rel, label, size, sha))
        self.files = files

    def _load_builtin(self, name: str, split: str) -> None:
        from genaug.data.builtin import BUILTIN_NAMES, load_builtin

        if name not in BUILTIN_NAMES and not name.startswith("export:"):
            raise ExportError(f"unknown --data {name!r}; allowed: 'imagefolder:PATH', 'export:PATH' (a finished "
                              f"genaug export, either format) or a built-in name {BUILTIN_NAMES}")
        try:
            ds = load_builtin(name, split)
        except (FileNotFoundError, ValueError) as e:
            raise ExportError(f"--data {name!r}: {e}") from None
        self._tensors = ds.images
        self.classes = list(ds.classes)
        self.files = []
        for j in range(len(ds)):
            raw = ds.images[j].numpy().tobytes()
            self.files.append(_SourceFile(f"{name}:{split}/{j}", int(ds.labels[j]), len(raw),
                                          hashlib.sha256(raw).hexdigest()))
        self.data = f"{name}:{split}"

    # ---------------------------------------------------------------- identity
    def identity(self) -> dict[str, Any]:
        return {"source": "augment", "data": {"classes": self.classes, "files": len(self.files),
                                              "files_sha256": self.files_digest},
                "pipeline": _pipeline_desc(self.pipeline), "copies": self.copies, "seed": self.seed,
                "block_size": self.block_size, "device_type": self.device.type}

    def class_dir(self, label: int) -> str:
        return self.classes[label] if 0 <= label < len(self.classes) else "unlabeled"

    # ---------------------------------------------------------------- items
    def _read(self, j: int) -> torch.Tensor:
        if self._tensors is not None:
            return self._tensors[j]
        from genaug.data.export_io import decode_image

        f = self.files[j]
        assert self.root is not None
        data = (self.root / f.name).read_bytes()
        if hashlib.sha256(data).hexdigest() != f.sha256:
            raise ExportError(f"source file {f.name!r} changed while the export ran (its sha256 differs from the "
                              "one recorded at the start); rerun the command")
        return decode_image(data)

    def produce(self, start: int, stop: int) -> Block:
        """Items ``[start, stop)`` (within one block of the grid)."""
        out = Block()
        cache: dict[int, torch.Tensor | None] = {}
        items: list[tuple[int, int, int, torch.Tensor]] = []  # (k, j, copy, image)
        for k in range(start, stop):
            j, c = divmod(k, self.copies)
            if j not in cache:
                try:
                    cache[j] = self._read(j)
                except ExportError:
                    raise
                except Exception as e:  # PIL: UnidentifiedImageError, truncated file, decompression bomb, ...
                    if self.strict:
                        raise ExportError(f"cannot read source image {self.files[j].name!r}: {e}") from None
                    cache[j] = None
                    out.skipped.append({"file": self.files[j].name, "reason": _reason(e),
                                        "source_index": j, "first_index": j * self.copies})
            img = cache[j]
            if img is not None:
                items.append((k, j, c, img))
        groups: dict[tuple[int, ...], list[int]] = {}
        for n, (_, _, _, img) in enumerate(items):
            groups.setdefault(tuple(img.shape), []).append(n)
        results: dict[int, tuple[torch.Tensor, torch.Tensor, dict[str, Any]]] = {}
        for shape, members in groups.items():
            ks = [items[n][0] for n in members]
            images = torch.stack([items[n][3] for n in members])
            labels = torch.tensor([self.files[items[n][1]].label for n in members], dtype=torch.int64)
            outs = self._augment(ks, images, labels, (int(shape[1]), int(shape[2])))
            for n, res in zip(members, outs):
                results[n] = res
        for n, (k, j, c, _) in enumerate(items):
            image, label, params = results[n]
            cls, fields = _label_fields(label)
            f = self.files[j]
            out.indices.append(k)
            out.images.append(image)
            out.labels.append(cls)
            out.rows.append({"index": k, **fields, "source": f.name, "source_index": j, "source_sha256": f.sha256,
                             "copy": c, "seed": int(index_seeds(self._key, [k])[0]), "params": params_to_json(params)})
        return out

    def _call(self, images: torch.Tensor, labels: torch.Tensor, params: dict[str, Any]
              ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        dev = self.device
        res, p = self.pipeline(images.to(dev), labels=labels.to(dev), params=params, return_params=True)
        image = res["image"] if isinstance(res, dict) else res
        label = res.get("labels", labels) if isinstance(res, dict) else labels
        return convert_images(image, torch.uint8).cpu(), label.cpu(), p

    def _augment(self, ks: list[int], images: torch.Tensor, labels: torch.Tensor, size: tuple[int, int]
                 ) -> list[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]]:
        seeds = index_seeds(self._key, ks)
        plist = [self.pipeline.sample_params(1, size, torch.Generator().manual_seed(int(s))) for s in seeds]
        try:
            params = _cat_params(plist)
        except _ParamsMismatch:
            params = None
        if params is not None:  # one batched call (a non-per-sample op, e.g. partners, sees the whole group)
            x, y, p = self._call(images, labels, params)
            return [(x[n], y[n], take_rows(p, slice(n, n + 1))) for n in range(len(ks))]
        outs = []
        for n in range(len(ks)):
            x, y, p = self._call(images[n:n + 1], labels[n:n + 1], plist[n])
            outs.append((x[0], y[0], p))
        return outs


def _reason(e: BaseException) -> str:
    """Why a source file was skipped, without object addresses (dataset.json stays byte-identical)."""
    msg = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the file", str(e))
    return f"{type(e).__name__}: {msg}"


def _sha256_path(path: Path) -> str:
    from genaug.data.export_io import sha256_file

    return sha256_file(path)
