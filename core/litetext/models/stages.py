"""The model split into the graphs litetext exports: vision encoder, text encoder, decoder, each a torch module
with plain tensor inputs and outputs (traced by the ONNX export; the text encoder also by the CoreML export).

Heavy: imports torch. Only exporters import it.
"""

from __future__ import annotations

from typing import Any

import torch

#: FPN levels SAM3 decodes from (the coarsest of its four is never read).
LEVELS = 3


class _Stage(torch.nn.Module):
    def __init__(self, model: Any):
        super().__init__()
        self.model = model


class VisionEncoderStage(_Stage):
    """Pixel values to the three FPN levels SAM3 decodes from and their position encodings (batch 1)."""

    def forward(self, pixel_values):
        outputs = self.model.get_vision_features(pixel_values=pixel_values)
        positions = tuple(p[:1] for p in outputs.fpn_position_encoding[:LEVELS])
        return tuple(outputs.fpn_hidden_states[:LEVELS]) + positions


class TextEncoderStage(_Stage):
    """Token ids and attention mask to the projected per-token text features (also CoreML's input)."""

    def forward(self, input_ids, attention_mask):
        return self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output


class DecoderStage(_Stage):
    """One image's FPN levels and position encodings (batch 1) with K prompts' text features, broadcast inside:
    SAM3's DETR encoder, decoder and mask decoder, optionally with exemplar boxes."""

    def forward(self, fpn_hidden_states_0, fpn_hidden_states_1, fpn_hidden_states_2, fpn_position_encoding_0,
                fpn_position_encoding_1, fpn_position_encoding_2, text_features, text_mask, input_boxes=None,
                input_boxes_labels=None):
        from transformers.modeling_outputs import BaseModelOutputWithPooling
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        count = text_features.shape[0]
        broadcast = lambda levels: tuple(t.expand(count, -1, -1, -1) for t in levels) + (None,)  # noqa: E731
        vision = Sam3VisionEncoderOutput(
            fpn_hidden_states=broadcast((fpn_hidden_states_0, fpn_hidden_states_1, fpn_hidden_states_2)),
            fpn_position_encoding=broadcast((fpn_position_encoding_0, fpn_position_encoding_1,
                                             fpn_position_encoding_2)),
        )
        boxes = {} if input_boxes is None else {"input_boxes": input_boxes, "input_boxes_labels": input_boxes_labels}
        out = self.model(vision_embeds=vision, text_embeds=BaseModelOutputWithPooling(pooler_output=text_features),
                         attention_mask=text_mask, **boxes)
        return out.pred_logits, out.pred_boxes, out.pred_masks, out.presence_logits
