"""The output folder of a command: created and proved writable before any long work."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence


class OutputFolderError(OSError):
    """The output folder cannot be created or written to (the message names it and the OS error).

    ``os_error`` is the error the OS gave (``None`` when the path exists and is not a folder).
    """

    def __init__(self, message: str, os_error: OSError | None = None) -> None:
        super().__init__(message)
        self.os_error = os_error


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
        raise OutputFolderError(f"{option} {str(out)!r}: cannot create the output folder ({_one_line(e)})", e) from None
    try:
        fd, name = tempfile.mkstemp(dir=out, prefix=".genaug-write-test.", suffix=".tmp")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        remove_empty_folders(created)
        raise OutputFolderError(f"{option} {str(out)!r}: cannot write to the output folder ({_one_line(e)})", e) from None
    return created


def remove_empty_folders(folders: Sequence[Path]) -> None:
    """Remove ``folders`` (deepest first) where they are empty; a folder that is not empty stays."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
