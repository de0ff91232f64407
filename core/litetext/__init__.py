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
    OutputError,
    PromptError,
    UnsafeCheckpointError,
)
from .models import DEFAULT_MODEL, MODELS, ModelSpec, list_models
from .models.registration import register_when_transformers_loads
from .options import SegmentOptions, TrackOptions
from .version import __version__

_LAZY = {
    "load": "loader",
    "loaded_engines": "loader",
    "Engine": "engine",
    "EngineInfo": "engine",
    "BatchItem": "pipelines.image",
    "normalize_prompts": "prompts",
    "split_prompts": "prompts",
    "Result": "result",
    "Instance": "result",
    "Timings": "result",
    "masks_from_rle": "result",
    "prompt_color": "result",
    "CocoBuilder": "coco",
    "load_image": "images",
    "list_images": "images",
    "PreparedImage": "images",
    "CacheStats": "cache",
    "TrackedFrame": "pipelines.video",
    "TrackWriter": "track_files",
    "TrackSummary": "track_files",
    "read_tracks": "track_files",
    "track_to_files": "track_files",
    "open_video": "videos",
    "VideoWriter": "videos",
    "assemble": "models.building",
    "convert_checkpoint": "models.convert",
    "Composition": "models.compose",
}

__all__ = [
    "__version__", "DEFAULT_MODEL", "MODELS", "ModelSpec", "list_models", "SegmentOptions", "TrackOptions",
    "LitetextError", "InputError", "InvalidImageError", "ImageTooLargeError", "PromptError", "BoxError",
    "ModelError", "ModelNotFoundError", "UnsafeCheckpointError", "NoTrackerError", "OutputError", "assemble",
    "Composition", "convert_checkpoint",
    "InvalidVideoError", "TrackedFrame", "open_video", "VideoWriter", "TrackWriter", "TrackSummary", "read_tracks",
    "track_to_files",
    "load", "loaded_engines", "Engine", "BatchItem", "EngineInfo", "normalize_prompts", "split_prompts",
    "Result", "Instance", "Timings", "masks_from_rle", "prompt_color", "CocoBuilder", "load_image", "list_images",
    "PreparedImage", "CacheStats",
]
assert set(_LAZY) <= set(__all__)

#: Modules besides this one whose names users and adapters may import; every other module is internal.
PUBLIC_MODULES = ("litetext.cli", "litetext.cli.common", "litetext.onnx", "litetext.coreml", "litetext.distributed",
                  "litetext.testing", "litetext.track_files")

if TYPE_CHECKING:
    from .cache import CacheStats
    from .coco import CocoBuilder
    from .engine import Engine, EngineInfo
    from .images import PreparedImage, list_images, load_image
    from .loader import load, loaded_engines
    from .models.building import assemble
    from .models.compose import Composition
    from .models.convert import convert_checkpoint
    from .pipelines.image import BatchItem
    from .pipelines.video import TrackedFrame
    from .prompts import normalize_prompts, split_prompts
    from .result import Instance, Result, Timings, masks_from_rle, prompt_color
    from .track_files import TrackSummary, TrackWriter, read_tracks, track_to_files
    from .videos import VideoWriter, open_video




def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'litetext' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


register_when_transformers_loads()  # EfficientSAM3's student backbones, for transformers alone too
