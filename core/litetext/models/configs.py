"""What a checkpoint's config says: whether litetext runs it, whether it holds SAM3's tracker, which detector class
loads it. Reads configs only; resolving names is `checkpoints`'."""

from __future__ import annotations

from ..errors import ModelError

SUPPORTED_MODEL_TYPES = ("sam3_lite_text", "sam3", "sam3_video")
#: Checkpoint layouts that hold SAM3's tracker.
TRACKER_MODEL_TYPES = ("sam3_video", "sam3_tracker", "sam3_tracker_video")
#: Input sizes the resolution lever accepts: multiples of the patch size (14) in this range.
IMAGE_SIZES = range(56, 2017, 14)


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


def check_image_size(image_size: int) -> int:
    """`image_size` if it is a whole multiple of 14 (SAM3's patch size) in `IMAGE_SIZES`, else `ModelError`."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size not in IMAGE_SIZES:
        raise ModelError(f"image_size must be a multiple of 14 between {IMAGE_SIZES.start} and "
                         f"{IMAGE_SIZES.stop - 1} (e.g. 1008, 672, 504, 336), not {image_size!r}")
    return image_size


def with_image_size(config, image_size: int):
    """A copy of a detector config (or of a `sam3_video` config: its detector, its tracker and its mask size)
    whose vision encoder takes `image_size` x `image_size` inputs: the ViT's positions (or a student trunk's
    output size) and the FPN's feature sizes follow it."""
    config = config.__class__.from_dict(config.to_dict())
    if config.model_type != "sam3_video":
        _resize_vision(config.vision_config, image_size)
        return config
    _resize_vision(config.detector_config.vision_config, image_size)
    _resize_tracker(config.tracker_config, image_size)
    config.low_res_mask_size = 4 * (image_size // config.tracker_config.prompt_encoder_config.patch_size)
    return config


def tracker_config_with_image_size(config, image_size: int):
    """A copy of a `Sam3TrackerConfig` for `image_size` inputs: the vision features' sizes and the prompt
    encoder's image size (its embedding grid and mask-input size follow)."""
    config = config.__class__.from_dict(config.to_dict())
    _resize_tracker(config, image_size)
    return config


def _resize_tracker(config, image_size: int) -> None:
    """A tracker config (image or video) in place: its vision sizes, its prompt encoder's, and where it has them
    its own image size and the memory attention's feature grid."""
    _resize_vision(config.vision_config, image_size)
    config.prompt_encoder_config.image_size = image_size
    side = image_size // config.prompt_encoder_config.patch_size
    if hasattr(config, "memory_attention_rope_feat_sizes"):
        config.memory_attention_rope_feat_sizes = [side, side]
    if "image_size" in config.to_dict():
        config.image_size = image_size


def _resize_vision(vision, image_size: int) -> None:
    side = check_image_size(image_size) // vision.backbone_config.patch_size
    vision.backbone_config.image_size = image_size
    vision.backbone_feature_sizes = [[int(side * scale)] * 2 for scale in vision.scale_factors[:3]]
