"""SAM3's tracker split into the graphs an ONNX export adds for clicks: the vision encoder that also outputs the
tracker's image embeddings, and the prompt encoder with the mask decoder. Torch modules with plain tensor inputs
and outputs, traced by `export.py`.

Heavy: imports torch. Only the exporter imports it.
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.stages import LEVELS
from ..runtime.tracker import tracker_embeddings


class TrackerVisionEncoderStage(torch.nn.Module):
    """Pixel values to the detector's three FPN levels and their position encodings (batch 1), as
    `VisionEncoderStage`, plus the tracker's three image embeddings (its neck on the same ViT pass)."""

    def __init__(self, model: Any, tracker: Any):
        super().__init__()
        self.model, self.tracker = model, tracker

    def forward(self, pixel_values):
        outputs = self.model.get_vision_features(pixel_values=pixel_values)
        positions = tuple(p[:1] for p in outputs.fpn_position_encoding[:LEVELS])
        embeddings = tuple(tracker_embeddings(self.tracker, outputs.last_hidden_state))
        return tuple(outputs.fpn_hidden_states[:LEVELS]) + positions + embeddings


class TrackerDecoderStage(torch.nn.Module):
    """One image's tracker embeddings and one object prompt to predicted IoU, low-resolution mask logits and the
    object score: `Sam3TrackerModel`'s prompt encoder and mask decoder, as its forward calls them.

    The prompt is SAM's ONNX form, one point list: clicks (label 1 include, 0 exclude), a box as its two corners
    (labels 2 and 3), then one padding point (label -1), which is exactly the token sequence transformers' prompt
    encoder builds from points, a box or neither. `has_mask_input` (1 or 0) chooses `mask_input`'s embedding or
    the no-mask embedding. `multimask` is fixed at export: three candidates, or one (with SAM's stability fallback).
    """

    def __init__(self, tracker: Any, multimask: bool):
        super().__init__()
        self.tracker, self.multimask = tracker, multimask

    def forward(self, image_embedding_0, image_embedding_1, image_embedding_2, input_points, input_labels,
                mask_input, has_mask_input):
        model = self.tracker
        encoder = model.prompt_encoder
        sparse = encoder._embed_points(input_points[:, None], input_labels[:, None], pad=False)
        no_mask = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, *encoder.image_embedding_size)
        dense = torch.where(has_mask_input.reshape(1, 1, 1, 1) > 0, encoder.mask_embed(mask_input), no_mask)
        masks, iou_scores, _, object_scores = model.mask_decoder(
            image_embeddings=image_embedding_2,
            image_positional_embeddings=model.get_image_wide_positional_embeddings(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=self.multimask,
            high_resolution_features=[image_embedding_0, image_embedding_1])
        return iou_scores, masks, object_scores
