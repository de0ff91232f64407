"""The tracker seam: what runs SAM3's promptable tracker for clicks and boxes on one object.

`TrackerRuntime` is the protocol the clicks pipeline asks; `TorchTracker` runs a transformers `Sam3TrackerModel`,
and `litetext.onnx`'s `OnnxTracker` runs an export's tracker graphs. Both take the prompt as
`Sam3TrackerProcessor` encodes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import VisionOutput, per_image


@dataclass(frozen=True)
class TrackerOutput:
    """The tracker's answer for one object prompt: predicted IoU (1, 1, M) and low-resolution mask logits
    (1, 1, M, h, w), M = 1, or 3 candidates."""

    iou_scores: Any
    pred_masks: Any


class TrackerRuntime:
    """What runs SAM3's tracker: the protocol `ClickPipeline` asks, implemented by `TorchTracker` and `OnnxTracker`.

    Attributes: `model` (what `engine.tracker.model` shows), `device`, `dtype` (of the embeddings and the mask
    decoder) and `mask_size`, the (height, width) of low-resolution mask logits (`mask_input` and outputs).
    """

    model: Any = None
    device: Any = None
    dtype: Any = None
    mask_size: tuple[int, int] = (0, 0)

    def embed(self, vision: VisionOutput) -> list[tuple[Any, ...]]:
        """Per image of a vision-encoder batch, the tracker's three image embeddings (batch dimension 1)."""
        raise NotImplementedError

    def decode(self, embeddings: tuple[Any, ...], *, input_points: Any = None, input_labels: Any = None,
               input_boxes: Any = None, input_masks: Any = None, multimask: bool = False) -> TrackerOutput:
        """The prompt encoder and mask decoder on one image's embeddings, for one object prompt: points (1, 1, N, 2),
        labels (1, 1, N), box (1, 1, 4) in the processor's frame, and low-resolution mask logits (1, 1, h, w)."""
        raise NotImplementedError

    def check_video(self) -> None:
        """Raise `NoTrackerError` when this tracker cannot serve the video pipeline (which needs its torch modules)."""


def tracker_embeddings(model: Any, vision_hidden_states: Any) -> list[Any]:
    """The tracker's three image embeddings for a batch (each with the batch dimension), from the ViT's last hidden
    state (batch, tokens, channels): its neck, then what `Sam3TrackerModel.get_image_features` and its forward do
    before the mask decoder. Also traced into an ONNX export's vision graph."""
    dtype = next(model.mask_decoder.parameters()).dtype
    batch = vision_hidden_states.shape[0]
    height, width = model.prompt_encoder.image_embedding_size
    spatial = vision_hidden_states.view(batch, height, width, -1).permute(0, 3, 1, 2)
    levels, _ = model.vision_encoder.neck(spatial)
    levels = [level.to(dtype) for level in levels]
    levels[0] = model.mask_decoder.conv_s0(levels[0])
    levels[1] = model.mask_decoder.conv_s1(levels[1])
    flat = [level.flatten(2).permute(2, 0, 1) for level in levels]
    flat[-1] = flat[-1] + model.no_memory_embedding
    return [level.permute(1, 2, 0).view(batch, -1, *size) for level, size in zip(flat, model.backbone_feature_sizes)]


class TorchTracker(TrackerRuntime):
    """Runs a transformers `Sam3TrackerModel` (its forward, fed precomputed image embeddings)."""

    def __init__(self, model: Any):
        import torch

        self.model = model
        self.dtype = next(model.mask_decoder.parameters()).dtype
        self.device = next(model.mask_decoder.parameters()).device
        self.mask_size = tuple(model.prompt_encoder.mask_input_size)
        self._torch = torch

    def embed(self, vision: VisionOutput) -> list[tuple[Any, ...]]:
        return per_image(tracker_embeddings(self.model, vision.last_hidden_state))

    def decode(self, embeddings: tuple[Any, ...], *, input_points: Any = None, input_labels: Any = None,
               input_boxes: Any = None, input_masks: Any = None, multimask: bool = False) -> TrackerOutput:
        inputs = {"input_points": input_points, "input_labels": input_labels, "input_boxes": input_boxes,
                  "input_masks": input_masks}
        inputs = {name: value.to(self.device, self.dtype if name == "input_masks" else value.dtype)
                  for name, value in inputs.items() if value is not None}
        with self._torch.inference_mode():
            outputs = self.model(image_embeddings=list(embeddings), multimask_output=multimask, **inputs)
        return TrackerOutput(outputs.iou_scores, outputs.pred_masks)
