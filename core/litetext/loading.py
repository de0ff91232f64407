"""Checkpoint resolution and loading: aliases, hub ids and local directories; device and dtype choice."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from .errors import ModelError, ModelNotFoundError, UnsafeCheckpointError
from .models import MODELS, TINY_RANDOM_ALIASES

SUPPORTED_MODEL_TYPES = ("sam3_lite_text", "sam3", "sam3_video")
#: Checkpoint layouts that hold SAM3's tracker.
TRACKER_MODEL_TYPES = ("sam3_video", "sam3_tracker", "sam3_tracker_video")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def cache_dir() -> Path:
    """Where litetext keeps files it builds itself (the tiny-random checkpoints): `$LITETEXT_CACHE`,
    else `$XDG_CACHE_HOME/litetext`, else `~/.cache/litetext`."""
    if os.environ.get("LITETEXT_CACHE"):
        return Path(os.environ["LITETEXT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "litetext"


def resolve_checkpoint(model: str | os.PathLike) -> str:
    """Turn an alias, hub id or local directory into what `from_pretrained` takes.

    The tiny-random aliases build their checkpoint in `cache_dir()` on first use.
    """
    name = os.fspath(model)
    if name in TINY_RANDOM_ALIASES:
        return str(_tiny_random_checkpoint(name))
    spec = MODELS.get(name)
    if spec is not None:
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


def resolve_device(device: str = "auto") -> str:
    """`auto` picks cuda, then mps, then cpu; anything else is passed through after a check."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} was asked for but CUDA is not available; use device='cpu' or 'auto'")
    return device


def resolve_dtype(dtype: Any = "auto", device: str = "cpu"):
    """`auto` is bf16 on CUDA GPUs that support it, else fp32. Accepts torch dtypes or names like 'fp16'."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if dtype not in names:
        raise ModelError(f"unknown dtype {dtype!r}; use one of auto, {', '.join(names)}, "
                         f"{', '.join(VISION_ONLY)}")
    return names[dtype]


#: Precisions that run only the vision encoder (most of the arithmetic) in half precision, the rest in fp32.
VISION_ONLY = ("bf16-vision", "fp16-vision")


def resolve_dtypes(dtype: Any = "auto", device: str = "cpu") -> tuple[Any, Any]:
    """(vision encoder dtype, dtype of everything else) for a precision name: `resolve_dtype`'s names, or
    `bf16-vision` / `fp16-vision` for a half-precision vision encoder in front of an fp32 text encoder and
    decoder."""
    import torch

    if isinstance(dtype, str) and dtype in VISION_ONLY:
        return resolve_dtype(dtype.removesuffix("-vision"), device), torch.float32
    resolved = resolve_dtype(dtype, device)
    return resolved, resolved


def precision_name(vision_dtype: Any, dtype: Any) -> str:
    """`float32`, `bfloat16`, ... or `bfloat16-vision` when only the vision encoder runs in that dtype."""
    name = str(vision_dtype).removeprefix("torch.")
    return name if vision_dtype == dtype else f"{name}-vision"


def set_precision(model: Any, vision_dtype: Any, dtype: Any) -> Any:
    """Cast `model` to `dtype` and its vision encoder to `vision_dtype`, in place; returns the model."""
    model.to(dtype)
    model.vision_encoder.to(vision_dtype)
    return model


def load_model_and_processor(checkpoint: str, device: str, dtype, vision_dtype=None):
    """Load a SAM3 or SAM3-LiteText detector (safetensors only, never remote code) and its `Sam3Processor`.

    A `sam3_video` checkpoint (the layout of `facebook/sam3`) serves its detector, as `Sam3Model.from_pretrained`
    (or `Sam3LiteTextModel`'s) loads it from that directory. The vision encoder is cast to `vision_dtype` when
    given.
    """
    from transformers import Sam3Processor

    with _loading(checkpoint):
        config = checkpoint_config(checkpoint)
        model = detector_class(config).from_pretrained(checkpoint, dtype=dtype, use_safetensors=True,
                                                       trust_remote_code=False)
        processor = Sam3Processor.from_pretrained(checkpoint, trust_remote_code=False)
    if vision_dtype is not None:
        set_precision(model, vision_dtype, dtype)
    return model.to(device).eval(), processor


def load_tracker(checkpoint: str, device: str, dtype, vision_dtype=None):
    """Load SAM3's tracker (`Sam3TrackerModel`) from a checkpoint that has one (`sam3_video`, `sam3_tracker`)."""
    from transformers import Sam3TrackerModel

    with _loading(checkpoint):
        config = checkpoint_config(checkpoint, allowed=SUPPORTED_MODEL_TYPES + TRACKER_MODEL_TYPES)
        if not has_tracker(config):
            raise ModelError(f"{checkpoint}: a {config.model_type!r} checkpoint has no tracker; use one in the "
                             f"sam3_video layout (e.g. facebook/sam3) or compose one with `litetext models assemble`")
        tracker = Sam3TrackerModel.from_pretrained(checkpoint, dtype=dtype, use_safetensors=True,
                                                   trust_remote_code=False)
    if vision_dtype is not None:
        tracker.vision_encoder.to(vision_dtype)
    return tracker.to(device).eval()


def checkpoint_config(checkpoint: str, allowed: tuple[str, ...] = SUPPORTED_MODEL_TYPES):
    """The checkpoint's config, after checking it is a model type litetext runs."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(checkpoint)
    if config.model_type not in allowed:
        raise ModelError(f"{checkpoint}: model type {config.model_type!r} is not SAM3 or SAM3-LiteText "
                         f"(supported: {', '.join(allowed)})")
    return config


def has_tracker(config) -> bool:
    """Whether a checkpoint's config carries SAM3's tracker (the `sam3_video` layout)."""
    return config.model_type in TRACKER_MODEL_TYPES


def detector_class(config):
    """`Sam3LiteTextModel` or `Sam3Model`, for a detector config or the detector inside a `sam3_video` one."""
    from transformers import Sam3LiteTextModel, Sam3Model

    model_type = config.detector_config.model_type if config.model_type == "sam3_video" else config.model_type
    if model_type == "sam3_lite_text":
        return Sam3LiteTextModel
    if model_type == "sam3":
        return Sam3Model
    raise ModelError(f"detector model type {model_type!r} is not SAM3 or SAM3-LiteText")


@contextlib.contextmanager
def _loading(checkpoint: str):
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
        return
    from .coreml import is_coreml_export

    if is_coreml_export(path):
        raise ModelNotFoundError(f"{path} is a CoreML export of the text encoder alone, for Apple devices; litetext "
                                 "runs a checkpoint directory or an ONNX export (docs/edge.md)")
    if any(name.endswith(_PICKLE_SUFFIXES) for name in files):
        raise UnsafeCheckpointError(
            f"{path} holds only pickle weights ({', '.join(n for n in files if n.endswith(_PICKLE_SUFFIXES))}); "
            "litetext loads safetensors only. Re-save with save_pretrained(..., safe_serialization=True)"
        )
    raise ModelNotFoundError(f"{path} has no model weights (*.safetensors); is it a save_pretrained directory?")


def _tiny_random_checkpoint(alias: str) -> Path:
    from . import testing

    path = cache_dir() / f"{alias}-v1"
    if not (path / "model.safetensors").exists():
        # Build beside the final place, then rename: a concurrent or interrupted build never leaves half a dir.
        staging = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        if alias == "tiny-random-video":
            testing.build_tiny_video_checkpoint(staging)
        elif alias == "tiny-random-tracker":
            testing.build_tiny_composed_checkpoint(staging, _tiny_random_checkpoint("tiny-random-video"))
        else:
            testing.build_tiny_checkpoint(staging, architecture="sam3" if alias.endswith("sam3") else "litetext")
        try:
            staging.rename(path)
        except OSError:  # another process won the race; use its copy
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
    return path
