"""Byte-deterministic, crash-safe files for ``genaug generate`` / ``genaug augment``.

Everything an export writes goes through this module:

* :func:`encode_png` — PNG bytes from a uint8 ``(C, H, W)`` tensor with Pillow (no metadata
  chunks, fixed zlib level), so the same pixels give the same bytes for the same Pillow and zlib
  (both recorded in ``dataset.json``).
* :class:`TarShard` — a WebDataset shard in plain USTAR format with fixed member order and
  fixed headers (``mtime=0``, ``uid=gid=0``, ``uname=gname=""``, mode ``0o644``), streamed to a
  temporary file while its sha256 is computed, then made durable and renamed.
* :func:`durable_replace` / :func:`write_files_durably` — temp name + fsync (or one ``syncfs``
  per batch of files on Linux) + ``os.replace``: a file under its final name is always complete,
  even after ``kill -9`` or a power cut.
* :func:`create_exclusive` — create a file only if it does not exist yet (``os.link`` of a
  complete temporary file), so concurrent ranks agree on who wrote it.

Example:
    >>> import torch
    >>> a = encode_png(torch.zeros(1, 4, 4, dtype=torch.uint8))
    >>> a == encode_png(torch.zeros(1, 4, 4, dtype=torch.uint8)), a[:8]
    (True, b'\\x89PNG\\r\\n\\x1a\\n')
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import os
import re
import socket
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: zlib level of every PNG genaug exports (part of an export's identity).
PNG_COMPRESS_LEVEL = 6
#: Permissions of exported files and of tar members (``rw-r--r--`` before the umask for files).
FILE_MODE = 0o644


def tmp_name(path: Path) -> Path:
    """The fixed temporary name of ``path`` (hidden, beside it): ``DIR/.NAME.tmp``.

    Fixed (not random) so that a rerun removes what a killed run left behind; only one rank
    ever writes a given final name, so two writers never share a temporary name.
    """
    return path.with_name(f".{path.name}.tmp")


def is_tmp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


_HOST = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"
_UNIQUE_TMP_RE = re.compile(r"^\.(?P<name>.+)~(?P<host>[^~]*)~(?P<pid>\d+)\.tmp$")


def unique_tmp_name(path: Path) -> Path:
    """A temporary name beside ``path`` owned by this process: ``DIR/.NAME~HOST~PID.tmp``.

    For files that several ranks may write at once (``dataset.json``, ``manifest.jsonl``: same bytes).
    """
    return path.with_name(f".{path.name}~{_HOST}~{os.getpid()}.tmp")


def remove_stale_tmps(folder: Path) -> None:
    """Delete :func:`unique_tmp_name` files in ``folder`` left by dead processes of this host.

    A process of another host (or a live one) is never touched: its file may be in use.
    """
    for e in os.scandir(folder):
        m = _UNIQUE_TMP_RE.match(e.name)
        if not m or m.group("host") != _HOST or int(m.group("pid")) == os.getpid():
            continue
        try:
            os.kill(int(m.group("pid")), 0)
        except ProcessLookupError:
            Path(e.path).unlink(missing_ok=True)
        except (PermissionError, OSError, OverflowError):
            pass


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_matches(path: Path, size: int, sha256: str) -> bool:
    """True when ``path`` exists with exactly ``size`` bytes and that sha256."""
    try:
        if path.stat().st_size != size:
            return False
        return sha256_file(path) == sha256
    except OSError:
        return False


# ----------------------------------------------------------------------------- PNG
def encode_png(image: torch.Tensor) -> bytes:
    """PNG bytes of a uint8 ``(C, H, W)`` image (C = 1 gray, 3 RGB, 4 RGBA), deterministically.

    Pillow's encoder at zlib level :data:`PNG_COMPRESS_LEVEL`, with no metadata (no time, text,
    ICC or DPI chunks), so the bytes depend only on the pixels and the Pillow / zlib versions
    (both recorded in ``dataset.json``). About 60-70 us per 28x28 digit here.
    """
    from PIL import Image

    if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8 or image.dim() != 3 \
            or image.shape[0] not in _PIL_MODE:
        raise ValueError(f"encode_png needs a uint8 (C, H, W) tensor with C in (1, 3, 4); got "
                         f"{getattr(image, 'dtype', type(image).__name__)} {tuple(getattr(image, 'shape', ()))}")
    c, h, w = (int(v) for v in image.shape)
    pixels = image.detach().cpu().permute(1, 2, 0).contiguous().numpy().tobytes()
    mode = _PIL_MODE[c]
    buffer = io.BytesIO()
    Image.frombuffer(mode, (w, h), pixels, "raw", mode, 0, 1).save(buffer, format="PNG",
                                                                   compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


_PIL_MODE = {1: "L", 3: "RGB", 4: "RGBA"}


def decode_image(data: bytes | str | os.PathLike[str]) -> torch.Tensor:
    """A source image as uint8 ``(C, H, W)``: grayscale stays 1 channel, everything else becomes RGB.

    Raises whatever Pillow raises for a file that is not a readable image (the caller lists it).
    """
    from PIL import Image

    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
        im.load()
        if im.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
            im = im.convert("L") if im.mode in ("1", "L", "LA") else _to_8bit_gray(im)
        elif im.mode != "RGB":
            im = im.convert("RGB")
        arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.array(arr, dtype=np.uint8, copy=True)).permute(2, 0, 1).contiguous()


def _to_8bit_gray(im: Any) -> Any:
    """16-bit / 32-bit gray -> 8 bit by scaling the type's full range (not clipping)."""
    from PIL import Image

    arr = np.asarray(im).astype(np.float64)
    top = 65535.0 if im.mode.startswith("I;16") else max(float(arr.max()), 1.0) if im.mode in ("I", "F") else 255.0
    return Image.fromarray(np.clip(np.round(arr * (255.0 / top)), 0, 255).astype(np.uint8), mode="L")


# ----------------------------------------------------------------------------- durability
_libc: Any = None


def _syncfs(fd: int) -> bool:
    """Linux ``syncfs(fd)``: flush the whole filesystem holding ``fd``; False where unavailable."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        return _libc.syncfs(fd) == 0
    except (OSError, AttributeError):
        return False


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return FILE_MODE & ~mask


def _write_tmp(path: Path, data: bytes, fsync: bool, unique: bool = False) -> Path:
    tmp = unique_tmp_name(path) if unique else tmp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _default_mode())
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def durable_replace(path: Path, data: bytes, unique: bool = False) -> None:
    """Write ``data`` to ``path``: temporary name, fsync, rename, fsync of the folder.

    ``unique=True`` uses a per-process temporary name, for files concurrent processes may write.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_tmp(path, data, fsync=True, unique=unique)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_files_durably(files: Iterable[tuple[Path, bytes]]) -> None:
    """Write many (small) files durably and atomically.

    Each goes to its temporary name first; then the data are flushed (one ``syncfs`` for the
    whole batch on Linux, an ``fsync`` per file elsewhere), then each temporary file is renamed
    to its final name and the folders are fsynced. A crash at any point leaves every final name
    either absent, as before, or complete.
    """
    files = list(files)
    if not files:
        return
    dirs = sorted({p.parent for p, _ in files})
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    use_syncfs = sys.platform.startswith("linux")
    tmps = [_write_tmp(p, data, fsync=not use_syncfs) for p, data in files]
    if use_syncfs:
        fd = os.open(dirs[0], os.O_RDONLY)
        try:
            synced = _syncfs(fd)
        finally:
            os.close(fd)
        if not synced:  # no syncfs here after all: one fsync per file
            for t in tmps:
                tfd = os.open(t, os.O_RDONLY)
                try:
                    os.fsync(tfd)
                finally:
                    os.close(tfd)
    for tmp, (path, _) in zip(tmps, files):
        os.replace(tmp, path)
    for d in dirs:
        fsync_dir(d)


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists; True if this call created it.

    The bytes are written and fsynced under a process-unique temporary name and then hard-linked
    to ``path`` (``link`` fails if the name exists), so ``path`` is never seen half-written and
    of two concurrent creators exactly one wins. Filesystems without hard links fall back to an
    existence check and ``os.replace`` (fine when concurrent writers write the same bytes).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_tmp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _default_mode())
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            if path.exists():
                return False
            os.replace(tmp, path)
        fsync_dir(path.parent)
        return True
    finally:
        tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- tar shards
class _HashingFile(io.RawIOBase):
    """A write-only file that also feeds every byte to sha256 and counts them."""

    def __init__(self, f: Any) -> None:
        super().__init__()
        self._f = f
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._f.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size


class TarShard:
    """Write one WebDataset shard deterministically to ``DIR/.NAME.tmp``; :meth:`commit` renames it.

    Members are added in the order given (the exporter adds samples by index and, per sample,
    ``.cls``, ``.json``, ``.png``), each with fixed USTAR headers: ``mtime=0``, ``uid=gid=0``,
    ``uname=gname=""``, mode ``0o644``, regular file. USTAR (not PAX or GNU) is fixed, so no
    extended header with times or ids is ever written.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> w = TarShard(d / "shard-000000.tar")
        >>> w.add("00000000.cls", b"3")
        >>> size, sha = w.commit()
        >>> (d / "shard-000000.tar").stat().st_size == size
        True
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = tmp_name(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _default_mode())
        self._raw = os.fdopen(self._fd, "wb", buffering=1 << 20)
        self._hash = _HashingFile(self._raw)
        self._open = True

    @staticmethod
    def header(name: str, size: int) -> bytes:
        """The member's 512-byte USTAR header (what ``tarfile`` writes for these fields, byte for byte)."""
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = 0
        info.mode = FILE_MODE
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.type = tarfile.REGTYPE
        return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")

    def add(self, name: str, data: bytes) -> None:
        """Append a member: header, data, NUL padding to the next 512-byte block."""
        pad = -len(data) % tarfile.BLOCKSIZE
        self._hash.write(self.header(name, len(data)) + data + b"\0" * pad)

    def finish(self) -> tuple[int, str]:
        """Close the archive and flush it to disk (still under its temporary name): ``(bytes, sha256)``.

        The end of archive is two zero blocks, then zeros up to a multiple of 10240 bytes (the
        record size), exactly as ``tarfile`` ends an archive.
        """
        end = 2 * tarfile.BLOCKSIZE
        end += -(self._hash.size + end) % tarfile.RECORDSIZE
        self._hash.write(b"\0" * end)
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        self._open = False
        return self._hash.size, self._hash.sha.hexdigest()

    def commit(self) -> tuple[int, str]:
        """Finish and rename to the final name; returns ``(bytes, sha256)``."""
        size, sha = self.finish()
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)
        return size, sha

    def abort(self) -> None:
        if self._open:
            try:
                self._raw.close()
            except OSError:
                pass
            self._open = False
        self.tmp.unlink(missing_ok=True)
