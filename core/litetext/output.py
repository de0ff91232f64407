"""Writing results honestly: the output folder checked before the work starts, JSON files written beside their
place and renamed (never half a file), JSON Lines appended a whole line or nothing. Every failure is an
`OutputError` naming the path."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, BinaryIO

from .errors import OutputError

#: Free space an output folder needs before a run starts: room for the first results.
MIN_FREE_BYTES = 16 * 2**20


def check_output_dir(path: str | os.PathLike, *, min_free_bytes: int | None = None) -> Path:
    """Create `path` if needed and check it is a writable folder with room for the first results
    (`MIN_FREE_BYTES` unless `min_free_bytes` says otherwise)."""
    folder = Path(path)
    min_free_bytes = MIN_FREE_BYTES if min_free_bytes is None else min_free_bytes
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot write into {folder}: it, or a folder above it, is a file") from None
    except OSError as error:
        raise _output_error(folder, error, "cannot write into") from None
    if not folder.is_dir():
        raise OutputError(f"cannot write into {folder}: it is not a folder")
    probe = folder / f".litetext-write-check-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise _output_error(folder, error, "cannot write into") from None
    free = shutil.disk_usage(folder).free
    if free < min_free_bytes:
        raise OutputError(f"cannot write into {folder}: only {free / 2**20:.1f} MB free, at least "
                          f"{min_free_bytes / 2**20:.0f} MB needed")
    return folder


def replace_file(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` beside `path` and rename it into place: the file is whole or as it was (a new file, never
    through a hard link to another). Raises the `OSError` (nothing is left beside it)."""
    target = Path(path)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        staging.write_bytes(data)
        os.replace(staging, target)
    except OSError:
        staging.unlink(missing_ok=True)
        raise
    return target


def write_json(path: str | os.PathLike, data: Any, *, indent: int | None = 2) -> Path:
    """`data` as JSON at `path`, written beside it and renamed into place: the file is whole or absent."""
    try:
        return replace_file(path, (json.dumps(data, indent=indent) + "\n").encode())
    except OSError as error:
        raise _output_error(Path(path), error) from None


def append_line(handle: BinaryIO, path: Path, line: str) -> None:
    """Append one line to an open JSON Lines file (opened `ab`, unbuffered): the whole line, or nothing (a failed
    write is cut back to the previous line's end, so the file stays valid)."""
    data = memoryview((line.rstrip("\n") + "\n").encode())
    start = handle.seek(0, os.SEEK_END)
    try:
        while data:
            written = handle.write(data)
            data = data[written:]
    except OSError as error:
        try:
            os.ftruncate(handle.fileno(), start)
        except OSError:
            pass
        raise _output_error(path, error) from None


def _output_error(path: Path, error: OSError, doing: str = "cannot write") -> OutputError:
    reason = error.strerror or type(error).__name__
    return OutputError(f"{doing} {path}: {reason}")


def write_lines(path: str | os.PathLike, data: bytes) -> None:
    """Replace the file at `path` with `data` (whole lines), or raise `OutputError` naming it."""
    target = Path(path)
    try:
        target.write_bytes(data)
    except OSError as error:
        raise _output_error(target, error) from None
