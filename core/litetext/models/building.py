"""Building models from checkpoints: the detector with its processor, SAM3's tracker sharing its ViT, and a
detector composed with a tracker as one checkpoint (`assemble`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ModelError, NoTrackerError
from .checkpoints import local_checkpoint_dir, quiet_loading, resolve_checkpoint
from .compose import Composition, compose_directories, vision_backbone_difference, warn_if_different
from .configs import (
    SUPPORTED_MODEL_TYPES,
    TRACKER_MODEL_TYPES,
    checkpoint_config,
    detector_class,
    has_tracker,
    tracker_config_with_image_size,
    with_image_size,
)
from .precision import set_precision


def load_model_and_processor(checkpoint: str, device: str, dtype, vision_dtype=None, image_size: int | None = None):
    """Load a SAM3 or SAM3-LiteText detector (safetensors only, never remote code) and its `Sam3Processor`.

    A `sam3_video` checkpoint (the layout of `facebook/sam3`) serves its detector, as `Sam3Model.from_pretrained`
    (or `Sam3LiteTextModel`'s) loads it from that directory. The vision encoder is cast to `vision_dtype` when
    given. `image_size` (the resolution lever: inexact, opt-in) runs the vision encoder at that input size instead
    of the checkpoint's.
    """
    from transformers import Sam3Processor

    with quiet_loading(checkpoint):
        config = checkpoint_config(checkpoint)
        resized = {}
        if image_size is not None:
            resized["config"] = with_image_size(config, image_size)
        model = detector_class(config).from_pretrained(checkpoint, dtype=dtype, use_safetensors=True,
                                                       trust_remote_code=False, **resized)
        processor = Sam3Processor.from_pretrained(checkpoint, trust_remote_code=False)
    if image_size is not None:
        processor.image_processor.size = {"height": image_size, "width": image_size}
    if vision_dtype is not None:
        set_precision(model, vision_dtype, dtype)
    return model.to(device).eval(), processor


def load_tracker(checkpoint: str, device: str, dtype, vision_dtype=None):
    """Load SAM3's tracker (`Sam3TrackerModel`) from a checkpoint that has one (`sam3_video`, `sam3_tracker`)."""
    from transformers import Sam3TrackerModel

    with quiet_loading(checkpoint):
        config = checkpoint_config(checkpoint, allowed=SUPPORTED_MODEL_TYPES + TRACKER_MODEL_TYPES)
        if not has_tracker(config):
            raise ModelError(f"{checkpoint}: a {config.model_type!r} checkpoint has no tracker; use one in the "
                             f"sam3_video layout (e.g. facebook/sam3) or compose one with `litetext models assemble`")
        tracker = Sam3TrackerModel.from_pretrained(checkpoint, dtype=dtype, use_safetensors=True,
                                                   trust_remote_code=False)
    if vision_dtype is not None:
        tracker.vision_encoder.to(vision_dtype)
    return tracker.to(device).eval()


def tracker_for(detector: Any, checkpoint: str, tracker: str | os.PathLike | bool | None, device: str, dtype: Any,
                vision_dtype: Any = None, image_size: int | None = None) -> tuple[Any, str]:
    """The tracker to attach to `detector` (loaded from `checkpoint`), sharing the detector's ViT, and the
    checkpoint it came from; (None, "") for none.

    `tracker` is `litetext.load`'s: None for the checkpoint's own when it has one, True to require it, False for
    none, or an alias, hub id or directory whose tracker is composed with the detector (warning when its ViT
    differs from the detector's). `image_size` builds it for the detector's resized input (the resolution lever).
    """
    if tracker is False:
        return None, ""
    if tracker is None or tracker is True:
        if not has_tracker(checkpoint_config(checkpoint)):
            if tracker is True:
                raise NoTrackerError()
            return None, ""
        source = checkpoint
    else:
        source = resolve_checkpoint(tracker)
    model = load_tracker(source, device, dtype, vision_dtype)
    same_kind = type(detector.vision_encoder.backbone) is type(model.vision_encoder.backbone)
    if source != checkpoint and same_kind:  # within one sam3_video checkpoint both read the same ViT weights
        difference = vision_backbone_difference(detector.vision_encoder.backbone.state_dict(),
                                                model.vision_encoder.backbone.state_dict())
        warn_if_different(difference, checkpoint, source)
    # A student trunk (EfficientSAM3) takes the ViT's place for the tracker too, as upstream shares it.
    model.vision_encoder.backbone = detector.vision_encoder.backbone  # one ViT in memory, one pass per image
    return (model if image_size is None else resize_tracker(model, detector, image_size)), source


def resize_tracker(tracker: Any, detector: Any, image_size: int) -> Any:
    """`tracker`'s weights built for `image_size` inputs, sharing `detector`'s vision backbone (already built for
    that size): what the resolution lever gives clicks."""
    from transformers.initialization import no_init_weights

    with no_init_weights():
        resized = type(tracker)(tracker_config_with_image_size(tracker.config, image_size))
    resized.vision_encoder.backbone = detector.vision_encoder.backbone  # a student trunk too, whatever the config says
    backbone = "vision_encoder.backbone."
    state = {key: value for key, value in tracker.state_dict().items() if not key.startswith(backbone)}
    missing, unexpected = resized.load_state_dict(state, strict=False, assign=True)
    if unexpected or any(not key.startswith(backbone) for key in missing):
        raise ModelError(f"the tracker cannot be rebuilt for image_size {image_size}: keys missing "
                         f"{[k for k in missing if not k.startswith(backbone)][:5]}, unexpected {unexpected[:5]}")
    return resized.to(next(tracker.parameters()).device).eval()


def assemble(detector: str | os.PathLike, tracker: str | os.PathLike, out: str | os.PathLike, *,
             overwrite: bool = False) -> Composition:
    """Write `detector` (an alias, hub id or directory of a LiteText or SAM3 detector) composed with the tracker
    of `tracker` (a `sam3_video` checkpoint such as `facebook/sam3`) into the directory `out`.

    Checks that the composed weights are exactly what `Sam3VideoModel` expects (no key missing, unexpected or of
    another shape) and compares the two ViTs, warning with the largest difference when they are not identical.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ModelError(f"{out} exists and is not empty; choose another folder or pass overwrite=True (--force)")
    return compose_directories(local_checkpoint_dir(detector), local_checkpoint_dir(tracker), out, detector=detector,
                               tracker=tracker, overwrite=overwrite)


def resize_model(model: Any, processor: Any, image_size: int) -> tuple[Any, Any]:
    """The same weights taking `image_size` inputs: a new model (its ViT positions or student output size built
    for that size) and a copy of the processor resizing to it. For the bench's comparisons on random weights;
    `litetext.load(..., image_size=)` loads a checkpoint at a size directly."""
    import copy

    processor = copy.deepcopy(processor)
    processor.image_processor.size = {"height": image_size, "width": image_size}
    return _resized(model, with_image_size(model.config, image_size)), processor


def _resized(model: Any, config: Any) -> Any:
    """`model`'s weights (the same tensors: dtypes and device kept) in a model of its class built from `config`
    (another input size)."""
    from transformers.initialization import no_init_weights

    with no_init_weights():
        resized = type(model)(config)
    resized.load_state_dict(model.state_dict(), assign=True)
    return resized.to(next(model.parameters()).device).eval()
