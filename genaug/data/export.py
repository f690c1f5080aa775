"""Export synthetic or augmented datasets to disk: ImageFolder PNGs or WebDataset tar shards.

``genaug generate`` / ``genaug augment`` (and :func:`export_synthetic` / :func:`export_augmented`)
write, into ``OUT``::

    imagefolder                               webdataset
    OUT/dataset.json                          OUT/dataset.json
    OUT/manifest.jsonl                        OUT/manifest.jsonl
    OUT/<class>/<index>.png                   OUT/shard-000000.tar  (KEY.cls, KEY.json, KEY.png)

The guarantees (the full story, with the file formats, is in ``docs/EXPORT.md``):

* **Shards are pure functions of index ranges.** Shard ``s`` holds the indices
  ``[s * shard_size, (s + 1) * shard_size)``; its bytes depend on nothing else (not the rank, the
  world size, the order of work or earlier crashes). Rank ``r`` of ``W`` (``RANK`` /
  ``WORLD_SIZE`` from the environment, as ``torchrun`` sets them) takes the shards with
  ``s % W == r``, so any world size writes the same files, and a resume may use another one.
* **Atomic.** Every file is written under a hidden temporary name, flushed to disk and renamed:
  nothing partial is ever visible under a final name, even after ``kill -9``.
* **Resumable and self-repairing.** A shard is done when its record (``.genaug-part-S.json``
  while the export runs; ``manifest.jsonl`` once complete) lists its files with size and
  sha256 and the files match. A rerun verifies every shard it owns and regenerates those that
  do not match (only the files whose bytes differ are rewritten). The last rank to finish merges
  the records into ``manifest.jsonl`` and completes ``dataset.json``; no rank waits for another.
* **Identity.** ``dataset.json`` holds the export's identity (model or source digest, seed,
  labels, pipeline, sizes, versions). Rerunning into a folder with another identity is an error
  unless ``overwrite=True``.

Example:
    >>> import tempfile, genaug as ga
    >>> out = tempfile.mkdtemp() + "/digits"
    >>> res = ga.data.export_synthetic("mnist-cgan", 20, out, block_size=16, progress=False)
    >>> res.complete, res.written, sorted(p.name for p in __import__("pathlib").Path(out).iterdir())[:3]
    (True, 20, ['0', '1', '2'])
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .export_io import (PNG_COMPRESS_LEVEL, TarShard, create_exclusive, durable_replace,
                        encode_png, file_matches,
                        is_tmp_name, remove_stale_tmps, sha256_bytes, tmp_name, write_files_durably)
from .export_sources import (AugmentSource, Block, ExportError, SyntheticSource, block_ranges, params_from_json,
                             params_to_json)

__all__ = ["FORMATS", "ExportError", "ExportResult", "dist_env", "export_augmented", "export_synthetic",
           "load_export", "params_from_json", "params_to_json", "read_manifest"]

FORMATS = ("imagefolder", "webdataset")
#: Images per shard when ``shard_size`` is not given: the unit of work, resume and (for
#: WebDataset) of files. ImageFolder shards are only work units, so they are smaller.
DEFAULT_SHARD_SIZE = {"imagefolder": 1024, "webdataset": 10000}
DATASET_JSON = "dataset.json"
MANIFEST = "manifest.jsonl"
FORMAT_NAME = "genaug-export"
FORMAT_VERSION = 1
_PART = ".genaug-part-{:06d}.json"
_PART_RE = re.compile(r"^\.genaug-part-(\d{6,})\.json$")
_SHARD = "shard-{:06d}.tar"
_SHARD_RE = re.compile(r"^shard-(\d{6,})\.tar$")
_MAX_JSON_BYTES = 1 << 30
#: The final name inside one of genaug's temporary names: ``.NAME.tmp`` or ``.NAME~HOST~PID.tmp``.
_TMP_RE = re.compile(r"^\.(?P<name>.+?)(?:~[^~]*~\d+)?\.tmp$")


def _index_width(num: int) -> int:
    """Digits of an image's name: its index zero-padded to 8 digits (more when ``num`` needs them)."""
    return max(8, len(str(num - 1)))


def _png_index(name: str, width: int) -> int | None:
    """The index in a PNG name genaug writes (``INDEX.png``, ``width`` digits exactly), else ``None``."""
    stem, _, ext = name.partition(".")
    if ext != "png" or len(stem) != width or not stem.isdigit() or not stem.isascii():
        return None
    return int(stem)


def _shard_index(name: str) -> int | None:
    """The shard number in a shard name genaug writes (``shard-NNNNNN.tar`` exactly), else ``None``."""
    m = _SHARD_RE.match(name)
    if m is None or not m.group(1).isascii() or name != _SHARD.format(int(m.group(1))):
        return None
    return int(m.group(1))


def _tmp_target(name: str) -> str | None:
    """The final name that a temporary file of genaug's (``.NAME.tmp``, ``.NAME~HOST~PID.tmp``) stands for."""
    m = _TMP_RE.match(name)
    return m.group("name") if m else None


def _safe_folder(out: Path, rel: str) -> Path | None:
    """``OUT/rel`` if ``rel`` names a real folder inside ``OUT`` (no ``..``, no symlink), else ``None``."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return None
    path = out.joinpath(*parts)
    return path if path.is_dir() and not any(out.joinpath(*parts[:i + 1]).is_symlink()
                                              for i in range(len(parts))) else None


def dist_env() -> tuple[int, int]:
    """``(rank, world_size)`` from ``RANK`` / ``WORLD_SIZE`` (``(0, 1)`` when unset), validated."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        raise ExportError(f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} must be "
                          "integers (torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world:
        raise ExportError(f"RANK={rank} and WORLD_SIZE={world} need 0 <= RANK < WORLD_SIZE")
    return rank, world


def _versions() -> dict[str, str]:
    import zlib

    import PIL

    from genaug.generative.checkpoint import _genaug_version

    import torchvision

    return {"genaug": _genaug_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "pillow": PIL.__version__, "zlib": zlib.ZLIB_RUNTIME_VERSION}


def _dumps(obj: Any, indent: int | None = None) -> bytes:
    return (json.dumps(obj, indent=indent, ensure_ascii=False) + "\n").encode()


def _read_json(path: Path) -> Any:
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise ValueError(f"{path} is larger than {_MAX_JSON_BYTES} bytes")
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class ExportResult:
    """What one process did.

    Attributes:
        out: the output folder.
        rank, world_size: this process's place in the job.
        num_shards: shards of the whole export; ``shards``: how many this rank owned.
        written: images written for the first time; ``verified``: images found intact;
            ``repaired``: images whose file was missing, truncated or corrupted and was rewritten.
        skipped: unreadable source files met by this rank (``genaug augment``).
        seconds: wall time of this rank's work; ``images_per_second`` its throughput.
        complete: ``dataset.json`` says the whole export is done (this rank or another finished it).
        finalized: this rank wrote the final ``manifest.jsonl`` / ``dataset.json``.
        class_counts: images per class (when ``complete``).
    """

    out: Path
    rank: int
    world_size: int
    num_shards: int
    shards: int = 0
    written: int = 0
    verified: int = 0
    repaired: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    complete: bool = False
    finalized: bool = False
    class_counts: dict[str, int] = field(default_factory=dict)
    num_images: int = 0

    @property
    def images(self) -> int:
        return self.written + self.verified + self.repaired

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


# ----------------------------------------------------------------------------- the exporter
class _Exporter:
    def __init__(self, source: Any, out: str | os.PathLike[str], fmt: str, shard_size: int | None, *,
                 overwrite: bool, progress: bool, rank: int | None, world_size: int | None,
                 command: str | None, wait_seconds: float) -> None:
        if fmt not in FORMATS:
            raise ExportError(f"format={fmt!r} is not supported; allowed: {FORMATS}")
        shard_size = DEFAULT_SHARD_SIZE[fmt] if shard_size is None else shard_size
        if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
            raise ExportError(f"shard_size must be a positive int, got {shard_size!r}")
        if rank is None or world_size is None:
            env_rank, env_world = dist_env()
            rank = env_rank if rank is None else rank
            world_size = env_world if world_size is None else world_size
        if world_size < 1 or not 0 <= rank < world_size:
            raise ExportError(f"rank={rank} and world_size={world_size} need 0 <= rank < world_size")
        self.source, self.fmt, self.shard_size = source, fmt, shard_size
        self.out = Path(out).expanduser()
        self.overwrite, self.progress, self.rank, self.world = overwrite, progress, rank, world_size
        self.command, self.wait_seconds = command, wait_seconds
        self.num = source.num
        self.num_shards = -(-self.num // shard_size)
        self.width = _index_width(self.num)
        self.identity = {"kind": source.kind, "format": fmt, "num": self.num, "shard_size": shard_size,
                         "png": {"encoder": "pillow", "zlib_level": PNG_COMPRESS_LEVEL},
                         **source.identity(), "versions": _versions()}
        self.result = ExportResult(self.out, rank, world_size, self.num_shards)
        self._manifest_recs: dict[int, dict[str, Any]] | None = None

    # ---------------------------------------------------------------- naming
    def shard_range(self, s: int) -> tuple[int, int]:
        return s * self.shard_size, min((s + 1) * self.shard_size, self.num)

    def key(self, index: int) -> str:
        return f"{index:0{self.width}d}"

    def part_path(self, s: int) -> Path:
        return self.out / _PART.format(s)

    def shard_path(self, s: int) -> Path:
        return self.out / _SHARD.format(s)

    # ---------------------------------------------------------------- dataset.json
    def _header(self) -> dict[str, Any]:
        return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "complete": False,
                "layout": self.fmt, "command": self.command, "identity": self.identity,
                "classes": list(self.source.classes), "num_shards": self.num_shards}

    def _read_header(self) -> dict[str, Any] | None:
        path = self.out / DATASET_JSON
        try:
            data = _read_json(path)
        except FileNotFoundError:
            return None
        except (ValueError, OSError) as e:
            raise ExportError(f"{path} is unreadable ({e}); it is not a genaug export this command can resume. "
                              "Pass --overwrite to replace the export, or choose another --out") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME or "identity" not in data:
            raise ExportError(f"{path} is not a genaug export's dataset.json; choose another --out")
        return data

    def _damaged_header(self) -> bool:
        """dataset.json exists but is not valid JSON (as opposed to another program's dataset.json)."""
        try:
            json.loads((self.out / DATASET_JSON).read_text(encoding="utf-8"))
            return False
        except (ValueError, OSError):
            return True

    def _differences(self, other: dict[str, Any] | None) -> str:
        if not isinstance(other, dict):
            return "everything: its dataset.json is damaged"
        mine, diffs = self.identity, []
        for k in sorted(set(mine) | set(other)):
            if mine.get(k) != other.get(k):
                a, b = other.get(k), mine.get(k)
                short = lambda v: json.dumps(v)[:60]  # noqa: E731
                diffs.append(f"{k} ({short(a)} -> {short(b)})" if not isinstance(a, dict) and not isinstance(b, dict)
                             else k)
        return ", ".join(diffs)

    def _check_out(self) -> None:
        out = self.out
        src_root = getattr(self.source, "root", None)
        if src_root is not None:
            o, r = out.resolve(), Path(src_root).resolve()
            if o == r or r in o.parents:
                raise ExportError(f"--out {str(out)!r} is inside the source folder {str(src_root)!r}: the export would "
                                  "become part of its own input; choose a folder outside it")
        if out.exists() and not out.is_dir():
            raise ExportError(f"--out {str(out)!r} exists and is not a folder")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except PermissionError:
            raise ExportError(f"cannot create the output folder {str(out)!r}: permission denied") from None
        except OSError as e:
            raise ExportError(f"cannot create the output folder {str(out)!r}: {e.strerror or e}") from None
        if not os.access(out, os.W_OK | os.X_OK):
            raise ExportError(f"cannot write to the output folder {str(out)!r}: permission denied")

    def claim(self) -> None:
        """Make sure ``OUT`` holds this export (or nothing yet); write the header of dataset.json."""
        self._check_out()
        try:
            header = self._read_header()
        except ExportError:
            if not (self.overwrite and self._damaged_header()):
                raise
            header = {"identity": None}  # a damaged dataset.json of an export: --overwrite replaces it
        was_export = header is not None
        if header is not None and header["identity"] != self.identity:
            if not self.overwrite:
                raise ExportError(
                    f"{str(self.out)!r} holds a different export "
                    f"(differs in: {self._differences(header['identity'])}). "
                    "Pass --overwrite to replace it, or choose another --out")
            if self.rank == 0:
                self._clear(header)
                header = None
            else:
                header = self._wait_for_identity()
        if header is None:
            foreign = [e.name for e in os.scandir(self.out) if not is_tmp_name(e.name)]
            if foreign and not was_export:  # after --overwrite cleared an export, the user's own files may stay
                raise ExportError(f"{str(self.out)!r} is not empty and holds no genaug export (no dataset.json; found "
                                  f"{', '.join(sorted(foreign)[:5])}); choose an empty or new folder")
            try:
                if not create_exclusive(self.out / DATASET_JSON, _dumps(self._header(), indent=1)):
                    again = self._read_header()
                    if again is None or again["identity"] != self.identity:
                        raise ExportError(f"another process wrote a different export into {str(self.out)!r} meanwhile")
            except PermissionError:
                raise ExportError(f"cannot write to the output folder {str(self.out)!r}: permission denied") from None

    def _wait_for_identity(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.wait_seconds
        while time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                header = self._read_header()
            except ExportError:
                continue
            if header is not None and header["identity"] == self.identity:
                return header
        raise ExportError(f"rank {self.rank}: rank 0 did not replace the export in {str(self.out)!r} within "
                          f"{self.wait_seconds:.0f} s (--overwrite is carried out by rank 0)")

    def _recorded_files(self) -> set[str]:
        """Files listed by the export's own records (manifest.jsonl, shard records), best effort."""
        files: set[str] = set()
        try:
            with open(self.out / MANIFEST, encoding="utf-8") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(row, dict) and isinstance(row.get("file"), str):
                        files.add(row["file"])
        except (OSError, ValueError):
            pass
        for e in os.scandir(self.out):
            if _PART_RE.match(e.name):
                try:
                    rec = _read_json(Path(e.path))
                except (OSError, ValueError):
                    continue
                rows = rec.get("rows") if isinstance(rec, dict) else None
                for row in rows if isinstance(rows, list) else []:
                    if isinstance(row, dict) and isinstance(row.get("file"), str):
                        files.add(row["file"])
        return files

    def _clear(self, old: dict[str, Any] | None) -> None:
        """Remove what the export described by ``old`` (its dataset.json) wrote, and never other files.

        Only genaug's own names are removed: dataset.json, manifest.jsonl, shard records, and for the
        old layout its ``shard-NNNNNN.tar`` files (webdataset) or, in its class folders only, its
        ``INDEX.png`` files of its index width (imagefolder); plus the temporary files of those names.
        A class folder left empty is removed. With a damaged dataset.json (layout, classes and size
        unknown), only the files its manifest or shard records list are removed.
        """
        old = old if isinstance(old, dict) else {}
        ident = old.get("identity") if isinstance(old.get("identity"), dict) else {}
        layout = old.get("layout") if old.get("layout") in FORMATS else None
        num = ident.get("num")
        width = _index_width(num) if isinstance(num, int) and not isinstance(num, bool) and num >= 1 else None
        # a complete header names every folder it used (class_counts); otherwise ask the records
        recorded = self._recorded_files() if layout is None or width is None or not old.get("complete") else set()
        # top level: control files, shard records, shards of a webdataset export, their temporary files
        for e in list(os.scandir(self.out)):
            if not e.is_file(follow_symlinks=False) and not e.is_symlink():
                continue
            name = _tmp_target(e.name) or e.name
            shard = _shard_index(name) is not None and (layout == "webdataset" or name in recorded)
            if name in (MANIFEST, DATASET_JSON) or _PART_RE.match(name) or shard:
                Path(e.path).unlink(missing_ok=True)
        # class folders: the old export's PNGs
        folders: dict[str, int | None] = {}  # folder -> index width of its genaug PNGs (None: listed files only)
        if layout == "imagefolder" and width is not None:
            names = [c for c in old.get("classes") or [] if isinstance(c, str)]
            counts = old.get("class_counts")
            names += [c for c in (counts if isinstance(counts, dict) else {}) if isinstance(c, str)]
            names += [f.rsplit("/", 1)[0] for f in recorded if "/" in f]
            folders.update((c, width) for c in names)
        listed = {f for f in recorded if "/" in f}
        for f in listed:
            folders.setdefault(f.rsplit("/", 1)[0], None)
        for rel, w in folders.items():
            path = _safe_folder(self.out, rel)
            if path is None:
                continue
            for f in list(os.scandir(path)):
                if not f.is_file(follow_symlinks=False):
                    continue
                name = _tmp_target(f.name) or f.name
                ours = (_png_index(name, w) is not None) if w is not None else \
                    (f"{rel}/{name}" in listed and len(name) >= 12 and _png_index(name, len(name) - 4) is not None)
                if ours:
                    os.unlink(f.path)
            try:
                path.rmdir()  # only if empty: a folder holding the user's files is kept
            except OSError:
                pass

    # ---------------------------------------------------------------- records
    def _load_manifest_recs(self) -> dict[int, dict[str, Any]]:
        """Shard records of a complete export, rebuilt from manifest.jsonl and dataset.json."""
        if self._manifest_recs is not None:
            return self._manifest_recs
        recs: dict[int, dict[str, Any]] = {}
        header = self._read_header()
        if header is None or not header.get("complete"):
            self._manifest_recs = recs
            return recs
        try:
            rows = read_manifest(self.out)
        except (OSError, ValueError):
            rows = []  # a damaged manifest: every shard is regenerated (and rewritten only where bytes differ)
        for s in range(self.num_shards):
            a, b = self.shard_range(s)
            recs[s] = {"shard": s, "start": a, "stop": b, "rows": [], "skipped": [], "file": None}
        for row in rows:
            s = int(row["index"]) // self.shard_size
            if s in recs:
                recs[s]["rows"].append(row)
        copies = getattr(self.source, "copies", 1)
        for sk in header.get("skipped", []):
            j = int(sk.get("source_index", -1))
            for s in sorted({k // self.shard_size for k in range(j * copies, (j + 1) * copies)}):
                if s in recs:
                    recs[s]["skipped"].append(sk)
        for sh in header.get("shards", []):
            s = sh.get("shard")
            if s in recs and "file" in sh:
                recs[s]["file"] = {k: sh[k] for k in ("file", "bytes", "sha256") if k in sh}
        self._manifest_recs = recs
        return recs

    def _read_part(self, s: int) -> dict[str, Any] | None:
        try:
            rec = _read_json(self.part_path(s))
        except (OSError, ValueError):
            return None
        if not isinstance(rec, dict) or rec.get("shard") != s or not isinstance(rec.get("rows"), list):
            return None
        return rec

    def _covers(self, rec: dict[str, Any]) -> bool:
        """The record accounts for every index of its shard (an item, or a skipped source's copy)."""
        a, b = self.shard_range(rec["shard"])
        seen = sorted(int(r["index"]) for r in rec["rows"])
        copies = getattr(self.source, "copies", 1)
        for sk in rec.get("skipped", []):
            j = int(sk["source_index"])
            seen.extend(k for k in range(j * copies, (j + 1) * copies) if a <= k < b)
        return sorted(seen) == list(range(a, b))

    def _verify(self, rec: dict[str, Any]) -> bool:
        if not self._covers(rec):
            return False
        if self.fmt == "webdataset":
            f = rec.get("file")
            return bool(f) and file_matches(self.out / f["file"], int(f["bytes"]), f["sha256"])
        return all(file_matches(self.out / r["file"], int(r["bytes"]), r["sha256"]) for r in rec["rows"])

    # ---------------------------------------------------------------- writing
    def _finish_rows(self, block: Block, files: list[tuple[str, bytes]],
                     shard_file: str | None) -> list[dict[str, Any]]:
        rows = []
        for (rel, data), i, facts in zip(files, block.indices, block.rows):
            row: dict[str, Any] = {"index": i, "file": shard_file if shard_file else rel}
            if shard_file:
                row["key"] = self.key(i)
            row.update((k, v) for k, v in facts.items() if k != "index")
            row["sha256"] = sha256_bytes(data)
            row["bytes"] = len(data)
            rows.append(row)
        return rows

    def _encode(self, block: Block) -> list[tuple[str, bytes]]:
        return [(f"{self.source.class_dir(label)}/{self.key(i)}.png", encode_png(img))
                for i, img, label in zip(block.indices, block.images, block.labels)]

    def _write_imagefolder_block(self, block: Block, counts: dict[str, int]) -> list[dict[str, Any]]:
        files = self._encode(block)
        todo = []
        for rel, data in files:
            path = self.out / rel
            try:
                same = path.stat().st_size == len(data) and path.read_bytes() == data
                counts["verified" if same else "repaired"] += 1
            except FileNotFoundError:
                same = False
                counts["written"] += 1
            if not same:
                todo.append((path, data))
        write_files_durably(todo)
        return self._finish_rows(block, files, None)

    def _write_tar_block(self, block: Block, tar: TarShard, shard_file: str) -> list[dict[str, Any]]:
        files = self._encode(block)
        rows = self._finish_rows(block, files, shard_file)
        for (_, png), row, label in zip(files, rows, block.labels):
            key = row["key"]
            meta = {k: v for k, v in row.items() if k not in ("file", "sha256", "bytes")}
            tar.add(f"{key}.cls", str(label).encode())
            tar.add(f"{key}.json", json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
            tar.add(f"{key}.png", png)
        return rows

    def _remove_tmps(self, s: int, tmps: dict[int, list[Path]]) -> None:
        a, b = self.shard_range(s)
        for i in range(a, b):
            for p in tmps.pop(i, []):
                p.unlink(missing_ok=True)
        tmp_name(self.part_path(s)).unlink(missing_ok=True)
        if self.fmt == "webdataset":
            tmp_name(self.shard_path(s)).unlink(missing_ok=True)

    def _scan_tmps(self) -> dict[int, list[Path]]:
        """Leftover temporary PNGs of killed runs, by index (ImageFolder; each rank removes its own shards')."""
        found: dict[int, list[Path]] = {}
        if self.fmt != "imagefolder":
            return found
        for rel in self._class_folders(["unlabeled/"]):  # class_dir() of a label outside the classes
            path = _safe_folder(self.out, rel)
            if path is None:
                continue
            for f in os.scandir(path):
                target = _tmp_target(f.name)
                i = _png_index(target, self.width) if target is not None and f.name == f".{target}.tmp" else None
                if i is not None:
                    found.setdefault(i, []).append(Path(f.path))
        return found

    def _produce_blocks(self, s: int):  # noqa: ANN202 - generator of Blocks
        a, b = self.shard_range(s)
        for lo, hi in block_ranges(a, b, self.source.block_size):
            block = self.source.produce(lo, hi)
            block.span = hi - lo
            yield block

    def _do_shard(self, s: int, pool: ThreadPoolExecutor, bar: Any) -> None:
        """Generate shard ``s`` and write what differs; generation of block n+1 overlaps writing block n."""
        counts = {"written": 0, "verified": 0, "repaired": 0}
        rows: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        pending: Future | None = None
        tar = TarShard(self.shard_path(s)) if self.fmt == "webdataset" else None
        shard_file = _SHARD.format(s) if tar is not None else None

        def collect(fut: Future | None) -> None:
            if fut is not None:
                got, n = fut.result()
                rows.extend(got)
                if bar is not None:
                    bar.update(n)
                    bar.set_postfix(self._postfix(counts), refresh=False)

        def write(block: Block) -> tuple[list[dict[str, Any]], int]:
            n = block.span
            if tar is None:
                return self._write_imagefolder_block(block, counts), n
            return self._write_tar_block(block, tar, shard_file or ""), n

        try:
            for block in self._produce_blocks(s):
                skipped.extend(sk for sk in block.skipped
                               if all(sk["source_index"] != o["source_index"] for o in skipped))
                collect(pending)
                pending = pool.submit(write, block)
            collect(pending)
            pending = None
            file_rec = None
            if tar is not None:
                size, sha = tar.finish()
                final = self.shard_path(s)
                n_img = len(rows)
                if file_matches(final, size, sha):
                    tar.tmp.unlink(missing_ok=True)
                    counts["verified"] += n_img
                else:
                    counts["repaired" if final.exists() else "written"] += n_img
                    os.replace(tar.tmp, final)
                    from .export_io import fsync_dir

                    fsync_dir(final.parent)
                file_rec = {"file": final.name, "bytes": size, "sha256": sha}
        except BaseException:
            if pending is not None:
                pending.cancel()
                try:
                    pending.result()
                except BaseException:
                    pass
            if tar is not None:
                tar.abort()
            raise
        a, b = self.shard_range(s)
        rec = {"shard": s, "start": a, "stop": b, "file": file_rec, "rows": rows, "skipped": skipped}
        durable_replace(self.part_path(s), _dumps(rec))
        for k in counts:
            setattr(self.result, k, getattr(self.result, k) + counts[k])
        self.result.skipped.extend(skipped)

    def _postfix(self, counts: dict[str, int]) -> dict[str, int]:
        r = self.result
        return {"new": r.written + counts["written"], "ok": r.verified + counts["verified"],
                "fixed": r.repaired + counts["repaired"]}

    # ---------------------------------------------------------------- finalize
    def try_finalize(self) -> bool:
        """Merge the shard records into manifest.jsonl and complete dataset.json, if every shard is done."""
        header = self._read_header()
        if header is None:
            return False
        complete = bool(header.get("complete"))
        manifest_recs = self._load_manifest_recs() if complete else {}
        recs, parts = [], []
        for s in range(self.num_shards):
            rec = self._read_part(s)
            if rec is not None:
                parts.append(s)
            else:
                rec = manifest_recs.get(s)
                if rec is None or not self._covers(rec):
                    return False
            recs.append(rec)
        rows = [r for rec in recs for r in sorted(rec["rows"], key=lambda r: int(r["index"]))]
        skipped, seen = [], set()
        for rec in recs:
            for sk in rec.get("skipped", []):
                if sk["source_index"] not in seen:
                    seen.add(sk["source_index"])
                    skipped.append(sk)
        manifest = b"".join(_dumps(r) for r in rows)
        counts: dict[str, int] = {}
        for r in rows:
            name = self.source.class_dir(int(r["label"]))
            counts[name] = counts.get(name, 0) + 1
        final = self._header()
        final["complete"] = True
        final.update({
            "num_images": len(rows),
            "class_counts": {c: counts[c] for c in sorted(counts)},
            "shards": [{"shard": rec["shard"], "first_index": rec["start"], "stop_index": rec["stop"],
                        "images": len(rec["rows"]), **(rec.get("file") or {})} for rec in recs],
            "manifest": {"file": MANIFEST, "rows": len(rows), "sha256": sha256_bytes(manifest)},
            "skipped": skipped,
            "ignored": list(getattr(self.source, "ignored", [])),
        })
        if self.fmt == "webdataset":
            last = self.num_shards - 1
            final["webdataset_urls"] = _SHARD.format(0) if last == 0 else \
                f"shard-{{{0:06d}..{last:06d}}}.tar"
        durable_replace(self.out / MANIFEST, manifest, unique=True)
        durable_replace(self.out / DATASET_JSON, _dumps(final, indent=1), unique=True)
        remove_stale_tmps(self.out)
        self._remove_strays({r["file"] for r in rows})
        for s in parts:
            self.part_path(s).unlink(missing_ok=True)
        self.result.complete = self.result.finalized = True
        self.result.class_counts = final["class_counts"]
        self.result.num_images = len(rows)
        return True

    def _class_folders(self, files: Any = ()) -> list[str]:
        """The folders this (imagefolder) export writes into: its classes, and any that ``files`` use."""
        return list(dict.fromkeys([*self.source.classes, *(f.rsplit("/", 1)[0] for f in files if "/" in f)]))

    def _remove_strays(self, files: set[str]) -> None:
        """Delete genaug-named files that no manifest row lists (they would pollute an ImageFolder).

        Only in the folders this export owns and only genaug's exact names: ``INDEX.png`` of this
        export's index width in its class folders (imagefolder), ``shard-NNNNNN.tar`` beyond the
        last shard (webdataset). The user's own files (``1.png``, ``cover.png``, any file in a
        folder that is not a class folder) are never touched.
        """
        if self.fmt == "imagefolder":
            for rel in self._class_folders(files):
                path = _safe_folder(self.out, rel)
                if path is None:
                    continue
                for f in os.scandir(path):
                    if f.is_file(follow_symlinks=False) and _png_index(f.name, self.width) is not None \
                            and f"{rel}/{f.name}" not in files:
                        os.unlink(f.path)
            return
        for e in os.scandir(self.out):
            s = _shard_index(e.name)
            if s is not None and s >= self.num_shards and e.name not in files and e.is_file(follow_symlinks=False):
                os.unlink(e.path)

    # ---------------------------------------------------------------- run
    def run(self) -> ExportResult:
        t0 = time.perf_counter()
        self.claim()
        owned = [s for s in range(self.num_shards) if s % self.world == self.rank]
        self.result.shards = len(owned)
        tmps = self._scan_tmps()
        total = sum(b - a for a, b in map(self.shard_range, owned))
        bar = None
        if self.progress and self.rank == 0 and owned:
            from tqdm.auto import tqdm

            label = f"genaug {self.source.kind}" + (f" [rank 0/{self.world}]" if self.world > 1 else "")
            bar = tqdm(total=total, unit="img", desc=label, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="genaug-export-writer") as pool:
                for s in owned:
                    self._remove_tmps(s, tmps)
                    rec = self._read_part(s)
                    if rec is None:
                        rec = self._load_manifest_recs().get(s)
                    if rec is not None and self._verify(rec):
                        a, b = self.shard_range(s)
                        n = b - a
                        self.result.verified += len(rec["rows"])
                        self.result.skipped.extend(rec.get("skipped", []))
                        if bar is not None:
                            bar.update(n)
                            bar.set_postfix(self._postfix({"written": 0, "verified": 0, "repaired": 0}), refresh=False)
                        continue
                    self._do_shard(s, pool, bar)
        except OSError as e:
            if isinstance(e, PermissionError) or getattr(e, "errno", None) in (13, 30):
                raise ExportError(f"cannot write to {str(self.out)!r}: {e.strerror or e}") from None
            if getattr(e, "errno", None) == 28:
                raise ExportError(f"no space left on the device holding {str(self.out)!r}; free space and rerun the "
                                  "same command (finished shards are kept)") from None
            raise
        finally:
            if bar is not None:
                bar.close()
        self.result.seconds = time.perf_counter() - t0
        if not self.try_finalize():
            header = self._read_header()
            self.result.complete = bool(header and header.get("complete"))
        if self.result.complete and not self.result.finalized:
            header = self._read_header() or {}
            self.result.class_counts = header.get("class_counts", {})
            self.result.num_images = header.get("num_images", 0)
        return self.result


# ----------------------------------------------------------------------------- public API
def export_synthetic(model: Any, num: int, out: str | os.PathLike[str], *, format: str = "imagefolder",
                     labels: Any = "balanced", class_weights: Any = None, seed: int = 0, pipeline: Any = None,
                     truncation: float | None = None, shard_size: int | None = None, block_size: int = 256,
                     device: Any = None, overwrite: bool = False, progress: bool = True, rank: int | None = None,
                     world_size: int | None = None, command: str | None = None,
                     wait_seconds: float = 600.0) -> ExportResult:
    """Write ``num`` generated images (``genaug generate``): item ``k`` is ``SyntheticDataset(...)[k]``.

    Args:
        model: shipped name (``"mnist-cgan"``, ``"mnist-cvae"``), checkpoint path or model object.
        num: number of images (>= 1).
        out: output folder (created; must be empty, new, or hold this same export).
        format: ``"imagefolder"`` (PNG per image, a folder per class) or ``"webdataset"`` (tar shards).
        labels, class_weights, seed, truncation: as in :class:`~genaug.SyntheticDataset`.
        pipeline: a genaug transform (or a path to a pipeline file) applied per index.
        shard_size: images per shard (default 1024 for imagefolder, 10000 for webdataset).
        block_size: latents per forward pass (part of the identity; see ``SyntheticDataset``).
        device: where the model runs.
        overwrite: replace a different export found in ``out``.
        progress: show a progress bar (rank 0 only).
        rank, world_size: this process's share (default: ``RANK`` / ``WORLD_SIZE`` from the environment).
        command: the command line recorded in ``dataset.json``.
        wait_seconds: with ``overwrite``, how long ranks > 0 wait for rank 0 to clear ``out``.

    Returns:
        An :class:`ExportResult`.

    Raises:
        ExportError: bad arguments, an unusable output folder, or another export in ``out``.
    """
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ExportError(f"num must be a positive int (images to generate), got {num!r}")
    _check_block(block_size)
    pipeline = _load_pipeline_arg(pipeline)
    try:
        source = SyntheticSource(model, num, seed=seed, labels=labels, class_weights=class_weights, pipeline=pipeline,
                                 truncation=truncation, block_size=block_size, device=device)
    except ExportError:
        raise
    except (ValueError, TypeError) as e:
        raise ExportError(str(e)) from None
    return _Exporter(source, out, format, shard_size, overwrite=overwrite, progress=progress, rank=rank,
                     world_size=world_size, command=command, wait_seconds=wait_seconds).run()


def export_augmented(data: str, out: str | os.PathLike[str], pipeline: Any, *, copies: int = 1,
                     format: str = "imagefolder", seed: int = 0, split: str = "train", shard_size: int | None = None,
                     block_size: int = 64, device: Any = None, strict: bool = False, overwrite: bool = False,
                     progress: bool = True, rank: int | None = None, world_size: int | None = None,
                     command: str | None = None, wait_seconds: float = 600.0) -> ExportResult:
    """Write ``copies`` augmented copies of every source image (``genaug augment``).

    Item ``k`` is copy ``k % copies`` of source image ``k // copies`` (sources in ImageFolder
    order: classes sorted, files sorted by path). Unreadable source files are skipped and listed
    in ``dataset.json`` (``skipped``: file and reason; their indices stay unused so every other
    image keeps its index and bytes), or raise with ``strict=True``; files whose extension is not
    an image's are ignored and listed (``ignored``).

    Args:
        data: ``"imagefolder:PATH"`` or a built-in dataset name (``"mnist5k"``, ``"digits"``, ``"photos"``).
        out: output folder.
        pipeline: a genaug transform or a pipeline file written by :func:`genaug.save_pipeline`
            (classical and generative augmenters alike).
        copies: augmented copies per source image (>= 1).
        format, shard_size, device, overwrite, progress, rank, world_size, command, wait_seconds:
            as in :func:`export_synthetic`.
        seed: export seed (mixed with the pipeline's own seed).
        split: split of a built-in dataset.
        block_size: items per batched pipeline call (part of the identity).
        strict: raise on an unreadable source file instead of skipping it.

    Returns:
        An :class:`ExportResult`.
    """
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ExportError(f"copies must be a positive int, got {copies!r}")
    _check_block(block_size)
    if pipeline is None:
        raise ExportError("genaug augment needs a pipeline (a file written by genaug.save_pipeline)")
    pipeline = _load_pipeline_arg(pipeline)
    try:
        source = AugmentSource(data, pipeline, copies=copies, seed=seed, split=split, block_size=block_size,
                               device=device, strict=strict)
    except ExportError:
        raise
    except (ValueError, TypeError, FileNotFoundError) as e:
        raise ExportError(str(e)) from None
    return _Exporter(source, out, format, shard_size, overwrite=overwrite, progress=progress, rank=rank,
                     world_size=world_size, command=command, wait_seconds=wait_seconds).run()


def _check_block(block_size: Any) -> None:
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ExportError(f"block_size must be a positive int, got {block_size!r}")


def _load_pipeline_arg(pipeline: Any) -> Any:
    if pipeline is None or not isinstance(pipeline, (str, os.PathLike)):
        return pipeline
    from genaug.transforms.serialization import load_pipeline

    path = Path(pipeline)
    if not path.is_file():
        raise ExportError(f"pipeline file {str(path)!r} does not exist")
    try:
        return load_pipeline(path)
    except Exception as e:  # yaml/json errors, unknown ops, bad arguments, model digests (CheckpointError)
        raise ExportError(f"cannot load pipeline file {str(path)!r}: {e}") from None


def read_manifest(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of ``OUT/manifest.jsonl`` (one dict per image, in index order).

    Example:
        >>> import tempfile, genaug as ga
        >>> out = tempfile.mkdtemp()
        >>> _ = ga.data.export_synthetic("mnist-cgan", 3, out, block_size=4, progress=False)
        >>> [(r["index"], r["file"], r["label"]) for r in read_manifest(out)]
        [(0, '0/00000000.png', 0), (1, '1/00000001.png', 1), (2, '2/00000002.png', 2)]
    """
    path = Path(out) / MANIFEST
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_export(out: str | os.PathLike[str]) -> Any:
    """A finished export (either layout) as an in-memory ``ImageTensorDataset`` (images of one size).

    Example:
        >>> import tempfile, genaug as ga
        >>> out = tempfile.mkdtemp()
        >>> _ = ga.data.export_synthetic("mnist-cgan", 12, out, format="webdataset", block_size=16, progress=False)
        >>> ds = load_export(out)
        >>> ds.images.shape, ds.labels[:3].tolist()
        (torch.Size([12, 1, 28, 28]), [0, 1, 2])
    """
    import tarfile

    from .builtin import ImageTensorDataset
    from .export_io import decode_image

    root = Path(out)
    try:
        header = _read_json(root / DATASET_JSON)
    except (OSError, ValueError):  # missing, unreadable, oversized or not JSON
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ExportError(f"{str(root)!r} holds no genaug export (dataset.json)")
    if not header.get("complete"):
        raise ExportError(f"the export in {str(root)!r} is not complete; rerun its command to finish it")
    rows = read_manifest(root)
    images: list[torch.Tensor] = []
    if header["layout"] == "webdataset":
        members: dict[str, bytes] = {}
        for name in sorted({r["file"] for r in rows}):
            with tarfile.open(root / name, mode="r:") as tar:
                for m in tar:
                    if m.isfile() and m.name.endswith(".png"):
                        f = tar.extractfile(m)
                        assert f is not None
                        members[f"{name}/{m.name[:-4]}"] = f.read()
        images = [decode_image(members[f"{r['file']}/{r['key']}"]) for r in rows]
    else:
        images = [decode_image(root / r["file"]) for r in rows]
    shapes = {tuple(t.shape) for t in images}
    if len(shapes) > 1:
        raise ExportError(f"the exported images have several shapes {sorted(shapes)[:3]}; load them with "
                          "torchvision's ImageFolder or webdataset and a resize instead")
    labels = torch.tensor([int(r["label"]) for r in rows], dtype=torch.int64)
    stacked = torch.stack(images) if images else torch.empty(0, 1, 1, 1, dtype=torch.uint8)
    return ImageTensorDataset(stacked, labels, name=f"export:{root}", split="all", classes=list(header["classes"]))

