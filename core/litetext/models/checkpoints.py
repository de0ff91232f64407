"""Where a checkpoint is and what it holds: aliases, hub ids and local directories; the config checks; quiet,
explained loading errors; litetext's cache."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..errors import ModelError, ModelNotFoundError, UnsafeCheckpointError
from .manifests import MANIFEST_NAME, check_digests, export_format, trusted
from .registry import MODELS, TINY_RANDOM_ALIASES

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def cache_dir() -> Path:
    """Where litetext keeps files it builds itself (the tiny-random checkpoints): `$LITETEXT_CACHE`,
    else `$XDG_CACHE_HOME/litetext`, else `~/.cache/litetext`."""
    if os.environ.get("LITETEXT_CACHE"):
        return Path(os.environ["LITETEXT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "litetext"


def resolve_checkpoint(model: str | os.PathLike) -> str:
    """Turn an alias, hub id or local directory into what `from_pretrained` takes.

    The tiny-random aliases build their checkpoint in `cache_dir()` on first use; aliases of models published
    only as original `.pt` files (EfficientSAM3's `ev-m`, `rv-m`, `tv-m`) download and convert it there once.
    """
    name = os.fspath(model)
    if name in TINY_RANDOM_ALIASES:
        return str(_tiny_random_checkpoint(name))
    spec = MODELS.get(name)
    if spec is not None:
        if spec.original_file is not None:
            return str(_converted_checkpoint(spec))
        if spec.repo_id is None:
            raise ModelNotFoundError(f"model {name!r}: {spec.note}")
        return spec.repo_id
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(f"{name}: a checkpoint must be a directory saved with save_pretrained")
        _check_local_weights(path)
        return str(path)
    if name.count("/") != 1 or name.startswith((".", "/", "~")):
        known = ", ".join(MODELS)
        raise ModelNotFoundError(
            f"{name!r} is neither a known alias ({known}), a local directory, nor a hub id of the form owner/name"
        )
    return name


def local_checkpoint_dir(model: str | os.PathLike) -> Path:
    """A local directory holding `model`'s files: the directory itself, or the hub snapshot (downloaded once, or
    found in the local hub cache when HF_HUB_OFFLINE is set)."""
    checkpoint = resolve_checkpoint(model)
    if Path(checkpoint).is_dir():
        return Path(checkpoint)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(checkpoint, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))
    except Exception as error:
        raise _explain_load_error(checkpoint, error) from error


@contextlib.contextmanager
def quiet_loading(checkpoint: str):
    """One quiet load; hub and filesystem errors (many types) become a `ModelError` that says what to do."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # litetext reports its own progress
    verbosity = transformers_logging.get_verbosity()
    # Loading a detector or tracker out of a sam3_video checkpoint is expected; transformers warns about it.
    transformers_logging.set_verbosity_error()
    try:
        yield
    except ModelError:
        raise
    except Exception as error:
        raise _explain_load_error(checkpoint, error) from error
    finally:
        transformers_logging.set_verbosity(verbosity)
        transformers_logging.enable_progress_bar()


def _explain_load_error(checkpoint: str, error: Exception) -> ModelError:
    text = f"{type(error).__name__}: {error}"
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
    if "gated" in text.lower() or "401" in text or "403" in text:
        return ModelNotFoundError(
            f"{checkpoint} is a gated repository: accept its licence on the Hugging Face hub, then log in "
            "(`hf auth login` or HF_TOKEN), or pass a local directory"
        )
    if "safetensors" in text.lower() and ("no file" in text.lower() or "does not appear" in text.lower()):
        return UnsafeCheckpointError(
            f"{checkpoint} has no safetensors weights; litetext never loads pickle weights. Convert it with "
            "`model.save_pretrained(dir, safe_serialization=True)` and pass that directory"
        )
    hint = (
        "HF_HUB_OFFLINE is set, so only the local hub cache is searched: download it first, or pass a local "
        "directory" if offline else
        "check the id, your network, or pass a local directory saved with save_pretrained; set HF_HUB_OFFLINE=1 "
        "to use only the local cache"
    )
    return ModelNotFoundError(f"cannot load checkpoint {checkpoint!r}: {hint} ({text.splitlines()[0][:300]})")


def _check_local_weights(path: Path) -> None:
    files = [p.name for p in path.iterdir()]
    if any(name.endswith(".safetensors") for name in files):
        if export_format(path) == "litetext-converted":
            _check_converted(path)
        return
    if export_format(path) == "litetext-coreml":
        raise ModelNotFoundError(f"{path} is a CoreML export of the text encoder alone, for Apple devices; litetext "
                                 "runs a checkpoint directory or an ONNX export (docs/edge.md)")
    problem = _export_problem(path, files)
    if problem:
        raise ModelNotFoundError(problem)
    if any(name.endswith(_PICKLE_SUFFIXES) for name in files):
        raise UnsafeCheckpointError(
            f"{path} holds only pickle weights ({', '.join(n for n in files if n.endswith(_PICKLE_SUFFIXES))}); "
            "litetext loads safetensors only. Re-save with save_pretrained(..., safe_serialization=True)"
        )
    raise ModelNotFoundError(f"{path} has no model weights (*.safetensors); is it a save_pretrained directory?")


def _check_converted(path: Path) -> None:
    """A folder `litetext models convert` wrote: every file must be the one it wrote (unless trusted)."""
    import json

    if trusted():
        return
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    check_digests(path, manifest.get("digests") or {},
                  f"convert it again: litetext models convert {manifest.get('source', 'CHECKPOINT')} --out {path} "
                  "--force")


def _export_problem(path: Path, files: list[str]) -> str | None:
    """What to say of a folder without weights that holds ONNX graphs or a manifest.json: an ONNX export asked
    for as a checkpoint, or graphs that are not a litetext export. None for anything else."""
    if export_format(path) == "litetext-onnx":  # reached with backend="torch", or given to export again
        return (f"{path} is a litetext ONNX export, not a checkpoint: run it with litetext.load({str(path)!r}) "
                "(the ONNX backend); backend='torch' and exporting need the checkpoint it was exported from")
    if "manifest.json" in files:
        reason = "its manifest.json is not litetext's"
    elif any(name.endswith(".onnx") for name in files):
        reason = "manifest.json missing"
    else:
        return None
    return (f"{path} is not a litetext export ({reason}); re-export the model into it: "
            f"litetext export MODEL --format onnx --out {path}")


def _tiny_random_checkpoint(alias: str) -> Path:
    from . import random_weights

    path = cache_dir() / f"{alias}-v1"
    if not (path / "model.safetensors").exists():
        # Build beside the final place, then rename: a concurrent or interrupted build never leaves half a dir.
        staging = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        if alias == "tiny-random-video":
            random_weights.build_tiny_video_checkpoint(staging)
        elif alias == "tiny-random-tracker":
            random_weights.build_tiny_composed_checkpoint(staging, _tiny_random_checkpoint("tiny-random-video"))
        elif alias == "tiny-random-student":
            random_weights.build_tiny_checkpoint(staging, student=random_weights.TINY_STUDENT_TRUNK)
        else:
            random_weights.build_tiny_checkpoint(staging, architecture="sam3" if alias.endswith("sam3") else "litetext")
        try:
            staging.rename(path)
        except OSError:  # another process won the race; use its copy
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
    return path


def is_converted(alias: str) -> bool:
    """Whether the model of `alias`, published as an original `.pt`, is already converted in litetext's cache."""
    return export_format(cache_dir() / "converted" / f"{alias}-v1") == "litetext-converted"


def _converted_checkpoint(spec) -> Path:
    """The transformers folder of a model published as an original `.pt` (`spec.original_file` in
    `spec.repo_id`): downloaded and converted into `cache_dir()` on first use (`litetext models convert`)."""
    path = cache_dir() / "converted" / f"{spec.alias}-v1"
    if is_converted(spec.alias):
        return path
    from huggingface_hub import hf_hub_download

    from .convert import convert_checkpoint

    try:
        original = hf_hub_download(spec.repo_id, spec.original_file)
    except Exception as error:
        raise ModelNotFoundError(
            f"model {spec.alias!r}: cannot download {spec.original_file} from {spec.repo_id} ({type(error).__name__}); "
            f"download it yourself and run: litetext models convert FILE --out DIR, then pass DIR") from None
    convert_checkpoint(original, path)
    return path
