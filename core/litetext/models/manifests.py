"""What litetext writes beside the folders it makes (exports, converted checkpoints): `manifest.json`'s format,
and a SHA-256 digest of every file, checked when the folder is loaded unless `LITETEXT_TRUST_EXPORTS=1`."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..errors import ModelError

MANIFEST_NAME = "manifest.json"
TRUST_VARIABLE = "LITETEXT_TRUST_EXPORTS"
DIGEST_ALGORITHM = "sha256"  # SHA-NI makes it the fastest of hashlib's on current CPUs (docs/edge.md)
_CHUNK = 1 << 20


class InvalidExportError(ModelError):
    """A directory that is not a usable litetext export (missing, stale or damaged files)."""


def export_format(directory: str | os.PathLike) -> str | None:
    """The `format` its `manifest.json` names when `directory` holds a litetext export ("litetext-onnx",
    "litetext-coreml"), else None."""

    path = Path(os.fspath(directory)).expanduser() / "manifest.json"
    try:
        value = json.loads(path.read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def file_digest(path: str | os.PathLike) -> str:
    """`sha256:<hex>` of a file, read in 1 MiB chunks (never whole into memory)."""
    digest = hashlib.new(DIGEST_ALGORITHM)
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return f"{DIGEST_ALGORITHM}:{digest.hexdigest()}"


def digest_directory(directory: str | os.PathLike) -> dict[str, str]:
    """`file_digest` of every file under `directory` but its `manifest.json`, by relative POSIX path (sorted;
    packages such as CoreML's `.mlpackage` are folders)."""
    root = Path(os.fspath(directory))
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return {name: file_digest(root / name) for name in names if name != MANIFEST_NAME}


def check_digests(directory: str | os.PathLike, digests: dict[str, str], hint: str) -> None:
    """Raise `InvalidExportError` naming the first file of `digests` that is missing, outside `directory`, or
    whose content changed."""
    directory = Path(os.fspath(directory))
    for name, expected in digests.items():
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise InvalidExportError(f"{directory / MANIFEST_NAME} names a file outside its folder ({name!r}): {hint}")
        file = directory / name
        if not str(expected).startswith(f"{DIGEST_ALGORITHM}:"):
            raise InvalidExportError(f"{directory / MANIFEST_NAME} records no {DIGEST_ALGORITHM} of {name}: {hint}")
        if not file.is_file():
            raise InvalidExportError(f"{file} is missing: copy the whole export directory, or {hint}")
        if file_digest(file) != expected:
            raise InvalidExportError(f"{file} does not match its {DIGEST_ALGORITHM} in {directory / MANIFEST_NAME}: "
                                     f"it was changed or damaged after export; {hint}")



def trusted() -> bool:
    """True when `LITETEXT_TRUST_EXPORTS=1`: exports load without their content check."""
    return os.environ.get(TRUST_VARIABLE, "") == "1"
