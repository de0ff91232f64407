"""What a checkpoint's config says: whether litetext runs it, whether it holds SAM3's tracker, which detector class
loads it. Reads configs only; resolving names is `checkpoints`'."""

from __future__ import annotations

from ..errors import ModelError

SUPPORTED_MODEL_TYPES = ("sam3_lite_text", "sam3", "sam3_video")
#: Checkpoint layouts that hold SAM3's tracker.
TRACKER_MODEL_TYPES = ("sam3_video", "sam3_tracker", "sam3_tracker_video")

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
