"""Writing a whole directory (an export) so that an interrupted write never leaves one that looks complete.

Build into `staging_dir(out)` beside `out`, then `move_into_place`: the last step is a rename.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import ModelError


def check_target(out: Path, is_ours: Callable[[Path], bool], kind: str) -> None:
    """Refuse to write over anything but an empty directory or an earlier export of the same `kind`."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_ours(out))):
        raise ModelError(f"{out} exists and is not a {kind}; choose an empty or new directory")


def staging_dir(out: Path, purpose: str = "tmp") -> Path:
    """A fresh directory beside `out` to build into (the same filesystem, so the final move is a rename)."""
    path = out.with_name(f"{out.name}.{purpose}-{os.getpid()}")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def move_into_place(staging: Path, out: Path) -> None:
    """Move the finished directory into place (replacing an older export there)."""
    if out.exists():
        old = out.with_name(f"{out.name}.{os.getpid()}.old")
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out)


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
