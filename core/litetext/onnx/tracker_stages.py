"""SAM3's tracker split into the graphs an ONNX export adds for clicks: the vision encoder that also outputs the
tracker's image embeddings, and the prompt encoder with the mask decoder. Torch modules with plain tensor inputs
and outputs, traced by `export.py`.

Heavy: imports torch. Only the exporter imports it.
"""

from __future__ import annotations

import functools
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
        decoder = model.mask_decoder
        decoder._dynamic_multimask_via_stability = functools.partial(select_stable_mask, decoder)
        try:
            masks, iou_scores, _, object_scores = decoder(
                image_embeddings=image_embedding_2,
                image_positional_embeddings=model.get_image_wide_positional_embeddings(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=self.multimask,
                high_resolution_features=[image_embedding_0, image_embedding_1])
        finally:
            del decoder._dynamic_multimask_via_stability  # the class's own again
        return iou_scores, masks, object_scores


def select_stable_mask(decoder: Any, all_mask_logits, all_iou_scores):
    """transformers' `Sam3TrackerMaskDecoder._dynamic_multimask_via_stability`, the same selection (the single
    mask where it is stable, else the candidate with the best predicted IoU) with the masks gathered as rank-4
    tensors: onnxruntime-web's WebGPU GatherElements does not compile for rank 5 (its shader builds an index
    array with a constructor WGSL refuses), and the masks are (batch, points, candidates, height, width)."""
    batch, points, _, height, width = all_mask_logits.shape
    candidates = all_mask_logits[:, :, 1:].flatten(0, 1)  # (batch * points, 3, height, width)
    candidate_scores = all_iou_scores[:, :, 1:]
    best = torch.argmax(candidate_scores, dim=-1)  # (batch, points)
    index = best.reshape(-1, 1, 1, 1).expand(-1, 1, height, width)
    best_logits = torch.gather(candidates, 1, index).reshape(batch, points, 1, height, width)
    best_scores = torch.gather(candidate_scores, 2, best.unsqueeze(-1))
    single_logits, single_scores = all_mask_logits[:, :, 0:1], all_iou_scores[:, :, 0:1]
    stable = decoder._get_stability_scores(single_logits) >= decoder.dynamic_multimask_stability_thresh
    return (torch.where(stable[..., None, None].expand_as(single_logits), single_logits, best_logits),
            torch.where(stable.expand_as(single_scores), single_scores, best_scores))
