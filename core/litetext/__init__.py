"""litetext: one engine for SAM3-LiteText text-prompted segmentation.

    >>> import litetext
    >>> engine = litetext.load("s0-16")
    >>> result = engine.segment("street.jpg", ["yellow school bus", "person"])
    >>> result.to_rle()

`import litetext` stays light: torch and transformers load on first use of the engine.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from .errors import (
    BoxError,
    ImageTooLargeError,
    InputError,
    InvalidImageError,
    InvalidVideoError,
    LitetextError,
    ModelError,
    ModelNotFoundError,
    NoTrackerError,
    PromptError,
    UnsafeCheckpointError,
)
from .models import DEFAULT_MODEL, MODELS, ModelSpec, list_models
from .options import SegmentOptions

__version__ = "0.1.0"

_LAZY = {
    "load": "engine",
    "loaded_engines": "engine",
    "Engine": "engine",
    "BatchItem": "engine",
    "EngineInfo": "engine",
    "normalize_prompts": "engine",
    "split_prompts": "engine",
    "Result": "result",
    "Instance": "result",
    "Timings": "result",
    "masks_from_rle": "result",
    "prompt_color": "result",
    "load_image": "images",
    "list_images": "images",
    "CacheStats": "cache",
    "TrackedFrame": "tracking",
    "TrackWriter": "tracks",
    "TrackSummary": "tracks",
    "read_tracks": "tracks",
    "track_to_files": "tracks",
    "open_video": "videos",
    "VideoWriter": "videos",
    "assemble": "compose",
    "Composition": "compose",
}

__all__ = [
    "__version__", "DEFAULT_MODEL", "MODELS", "ModelSpec", "list_models", "SegmentOptions",
    "LitetextError", "InputError", "InvalidImageError", "ImageTooLargeError", "PromptError", "BoxError",
    "ModelError", "ModelNotFoundError", "UnsafeCheckpointError", "NoTrackerError", "assemble", "Composition",
    "InvalidVideoError", "TrackedFrame", "open_video", "VideoWriter", "TrackWriter", "TrackSummary", "read_tracks",
    "track_to_files",
    "load", "loaded_engines", "Engine", "BatchItem", "EngineInfo", "normalize_prompts", "split_prompts",
    "Result", "Instance", "Timings", "masks_from_rle", "prompt_color", "load_image", "list_images", "CacheStats",
]
assert set(_LAZY) <= set(__all__)

if TYPE_CHECKING:
    from .cache import CacheStats
    from .compose import Composition, assemble
    from .engine import BatchItem, Engine, EngineInfo, load, loaded_engines, normalize_prompts, split_prompts
    from .images import list_images, load_image
    from .result import Instance, Result, Timings, masks_from_rle, prompt_color
    from .tracking import TrackedFrame
    from .tracks import TrackSummary, TrackWriter, read_tracks, track_to_files
    from .videos import VideoWriter, open_video


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'litetext' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
