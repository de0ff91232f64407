"""Clicks and boxes on one object: SAM3's promptable tracker (`Sam3TrackerModel`) on the cached image encoding.

The tracker runs on the same ViT output the detector computed: the engine keeps the tracker neck's levels in its
image cache (`ImageFeatures.tracker_embeddings`), so a click costs only the prompt encoder and mask decoder.
The arithmetic is `Sam3TrackerModel`'s own, fed the same tensors, so results equal
`Sam3TrackerModel.from_pretrained(dir)` run by `Sam3TrackerProcessor`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import PromptError
from .result import Result, upsample_logit_masks


@dataclass(frozen=True)
class ObjectPrompt:
    """A validated prompt for one object: pixel (x, y) points with 1/0 labels, a pixel xyxy box, and low-resolution
    mask logits from an earlier call; any of them may be absent, not all."""

    points: list[list[float]]
    point_labels: list[int]
    box: list[float] | None
    mask_input: np.ndarray | None  # (h, w) float32 logits at the tracker's mask-input size


def object_prompt(points, point_labels, box, mask_input, original_size: tuple[int, int],
                  mask_size: tuple[int, int]) -> ObjectPrompt:
    """Check an object prompt against the image (`original_size` is (height, width)); raise `PromptError` or
    `BoxError` naming what is wrong."""
    from .engine import validate_boxes

    height, width = original_size
    checked_points: list[list[float]] = []
    for point in [] if points is None else points:
        try:
            x, y = (float(v) for v in point)
        except (TypeError, ValueError):
            raise PromptError(f"point {point!r} must be two numbers x, y in pixels") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise PromptError(f"point {point!r} has a NaN or infinite coordinate")
        if not (0 <= x <= width and 0 <= y <= height):
            raise PromptError(f"point ({x:g}, {y:g}) lies outside the {width}x{height} image")
        checked_points.append([x, y])
    if point_labels is None:
        labels = [1] * len(checked_points)
    else:
        try:
            labels = [int(v) for v in point_labels]
        except (TypeError, ValueError):
            raise PromptError(f"point labels must be 1 (include) or 0 (exclude), got {point_labels!r}") from None
        if any(float(a) != b for a, b in zip(point_labels, labels)) or any(v not in (0, 1) for v in labels):
            raise PromptError(f"point labels must be 1 (include) or 0 (exclude), got {list(point_labels)!r}")
    if len(labels) != len(checked_points):
        raise PromptError(f"{len(checked_points)} points but {len(labels)} point labels")
    checked_box = None
    if box is not None:
        checked_box = validate_boxes([box], None, original_size)[0][0]
    mask = None
    if mask_input is not None:
        mask = np.asarray(mask_input, dtype=np.float32)
        while mask.ndim > 2 and mask.shape[0] == 1:
            mask = mask[0]
        if mask.shape != tuple(mask_size):
            raise PromptError(f"mask_input must be low-resolution mask logits of shape {tuple(mask_size)} (a "
                              f"Result's mask_logits[i]), not {np.asarray(mask_input).shape}")
        if not np.isfinite(mask).all():
            raise PromptError("mask_input has NaN or infinite values")
    if not checked_points and checked_box is None and mask is None:
        raise PromptError("no object prompt given: pass points (with point_labels), a box, or mask_input")
    return ObjectPrompt(checked_points, labels, checked_box, mask)


__all__ = ["ObjectPrompt", "Tracker", "mask_boxes", "object_prompt"]


class Tracker:
    """SAM3's tracker sharing the detector's ViT: `embed` turns ViT outputs into its image embeddings, `segment`
    answers one object prompt on them."""

    def __init__(self, model: Any, image_processor: Any):
        from transformers import Sam3TrackerProcessor

        self.model = model
        self.processor = Sam3TrackerProcessor(image_processor=image_processor)
        self.dtype = next(model.mask_decoder.parameters()).dtype
        self.device = next(model.mask_decoder.parameters()).device
        self.mask_size = tuple(model.prompt_encoder.mask_input_size)

    def embed(self, vision_hidden_states: Any) -> list[tuple[Any, ...]]:
        """Per image of the batch, the tracker's three image embeddings (batch dimension 1), from the ViT's
        last hidden state (batch, tokens, channels): its neck, then what `Sam3TrackerModel.get_image_features`
        and its forward do before the mask decoder."""
        model = self.model
        batch = vision_hidden_states.shape[0]
        height, width = model.prompt_encoder.image_embedding_size
        spatial = vision_hidden_states.view(batch, height, width, -1).permute(0, 3, 1, 2)
        levels, _ = model.vision_encoder.neck(spatial)
        levels = [level.to(self.dtype) for level in levels]
        levels[0] = model.mask_decoder.conv_s0(levels[0])
        levels[1] = model.mask_decoder.conv_s1(levels[1])
        flat = [level.flatten(2).permute(2, 0, 1) for level in levels]
        flat[-1] = flat[-1] + model.no_memory_embedding
        embeddings = [level.permute(1, 2, 0).view(batch, -1, *size)
                      for level, size in zip(flat, model.backbone_feature_sizes)]
        return [tuple(level[i : i + 1].clone() for level in embeddings) for i in range(batch)]

    def segment(self, embeddings: Sequence[Any], prompt: ObjectPrompt, original_size: tuple[int, int], *,
                multimask: bool = False, label: str = "object") -> Result:
        """One object's mask (or three candidates with `multimask`), scored by the tracker's predicted IoU."""
        import torch

        height, width = original_size
        encoded = self.processor(
            original_sizes=[[height, width]],
            input_points=[[prompt.points]] if prompt.points else None,
            input_labels=[[prompt.point_labels]] if prompt.points else None,
            input_boxes=[[prompt.box]] if prompt.box is not None else None,
            return_tensors="pt",
        )
        inputs = {name: encoded[name].to(self.device) for name in ("input_points", "input_labels", "input_boxes")
                  if name in encoded}
        if prompt.mask_input is not None:
            inputs["input_masks"] = torch.from_numpy(prompt.mask_input)[None, None].to(self.device, self.dtype)
        with torch.inference_mode():
            outputs = self.model(image_embeddings=list(embeddings), multimask_output=multimask, **inputs)
        logits = outputs.pred_masks[0, 0].float().cpu()  # (candidates, h, w)
        masks = upsample_logit_masks(logits, original_size).numpy()
        return Result(
            prompts=[label],
            prompt_indices=np.zeros(len(logits), dtype=np.int64),
            scores=outputs.iou_scores[0, 0].float().cpu().numpy(),
            boxes=mask_boxes(masks),
            masks=masks,
            image_size=(width, height),
            mask_logits=logits.numpy(),
            mask_logits_kind="tracker",
        )


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Pixel xyxy boxes around each mask's pixels (x2, y2 one past the last pixel); zeros for an empty mask."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows):
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes
