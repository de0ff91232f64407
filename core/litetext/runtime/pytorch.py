"""The PyTorch runtime: a transformers SAM3 or SAM3-LiteText model, called as transformers' own pipeline calls it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..models.precision import precision_name
from .base import DecodeOutput, Runtime, VisionOutput

#: The decode-stage modules `compile` wraps: the prompt-dependent work done once per request.
DECODER_MODULES = ("geometry_encoder", "detr_encoder", "detr_decoder", "mask_decoder")


class TorchRuntime(Runtime):
    """Runs a `Sam3LiteTextModel` or `Sam3Model` (on any torch device, in the dtypes it was cast to)."""

    name = "torch"

    def __init__(self, model: Any):
        super().__init__()
        import torch

        self.model = model
        self.config = model.config
        self.device = next(model.parameters()).device
        self.dtype = next(model.detr_encoder.parameters()).dtype  # what the text encoder and decoder run in
        self.vision_dtype = next(model.vision_encoder.parameters()).dtype
        self.precision = precision_name(self.vision_dtype, self.dtype)
        self.text_encoder_params = sum(p.numel() for p in model.text_encoder.parameters())
        self._graph_outputs = False  # set by compile() for modes whose CUDA graphs reuse their output memory
        self._torch = torch

    def encode_pixels(self, pixel_values: Any) -> VisionOutput:
        torch = self._torch
        with self.lock, torch.inference_mode():
            outputs = self.model.get_vision_features(pixel_values=pixel_values.to(self.device, self.vision_dtype))
            # SAM3 never decodes from the coarsest level; features meet the decoder in its dtype
            levels = tuple(level.to(self.dtype) for level in outputs.fpn_hidden_states[:-1])
            positions = tuple(p.to(self.dtype) for p in outputs.fpn_position_encoding[:-1])
        return VisionOutput(levels, positions, outputs.last_hidden_state)

    def encode_tokens(self, input_ids: Any, attention_mask: Any) -> Any:
        torch = self._torch
        with self.lock, torch.inference_mode():
            return self.model.get_text_features(input_ids=input_ids.to(self.device),
                                                attention_mask=attention_mask.to(self.device)).pooler_output

    def decode(self, levels: Sequence[Any], position_encodings: Sequence[Any], text_features: Any,
               attention_mask: Any, input_boxes: Any = None, input_boxes_labels: Any = None) -> DecodeOutput:
        from transformers.modeling_outputs import BaseModelOutputWithPooling
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        torch = self._torch
        count = len(text_features)
        vision = Sam3VisionEncoderOutput(
            fpn_hidden_states=tuple(levels) + (None,),
            fpn_position_encoding=tuple(p.expand(count, -1, -1, -1) for p in position_encodings) + (None,),
        )
        text = BaseModelOutputWithPooling(pooler_output=text_features)
        boxes = {} if input_boxes is None else {"input_boxes": input_boxes.to(self.device, self.dtype),
                                                "input_boxes_labels": input_boxes_labels.to(self.device)}
        with self.lock, torch.inference_mode():
            if self._graph_outputs:  # a new step for CUDA graph trees, whose replays reuse their output memory
                torch.compiler.cudagraph_mark_step_begin()
            out = self.model(vision_embeds=vision, text_embeds=text, attention_mask=attention_mask, **boxes)
            outputs = DecodeOutput(out.pred_logits, out.pred_boxes, out.pred_masks, out.presence_logits)
            if self._graph_outputs:  # so the next call (another group, another request) cannot overwrite them
                outputs = outputs.rows(0, len(outputs.pred_logits), copy=True)
        return outputs

    def compile(self, mode: str | None = None) -> None:
        """Compile the decoder stages with `torch.compile`; `mode="reduce-overhead"` adds CUDA graphs."""
        with self.lock:
            for name in DECODER_MODULES:
                module = getattr(self.model, name)
                if not getattr(module, "_litetext_compiled", False):
                    module.forward = self._torch.compile(module.forward, mode=mode, dynamic=True)
                    module._litetext_compiled = True
            self.compiled = True
            self._graph_outputs = self._graph_outputs or mode in ("reduce-overhead", "max-autotune")

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)

    def release_memory(self) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()
