"""The clicks pipeline: clicks and boxes on one object with SAM3's promptable tracker (`Sam3TrackerModel`) on the
cached image encoding.

The tracker runs on the same ViT output the detector computed: the image pipeline keeps the tracker neck's levels
in its image cache (`ImageFeatures.tracker_embeddings`), so a click costs only the prompt encoder and mask
decoder.
The arithmetic is `Sam3TrackerModel`'s own, fed the same tensors, so results equal
`Sam3TrackerModel.from_pretrained(dir)` run by `Sam3TrackerProcessor`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..images import ImageInput, PreparedImage
from ..prompts import ObjectPrompt, object_prompt
from ..result import Result, Timings, mask_boxes, upsample_logit_masks
from .image import ImagePipeline


class ClickPipeline:
    """SAM3's tracker sharing the detector's ViT: `embed` turns ViT outputs into its image embeddings,
    `segment_object` answers one object prompt on an image (its encoding from `images`, the image pipeline, and
    its cache), `segment` on embeddings already made. `model` is the `Sam3TrackerModel`."""

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

    def segment_object(self, images: ImagePipeline, image: ImageInput | PreparedImage, *, points=None,
                       point_labels=None, box=None, mask_input: Any = None, instance: Any = None,
                       multimask: bool = False, label: str = "object") -> Result:
        """One object's mask from clicks and/or a box on `image` (see `Engine.segment_object`)."""
        started = time.perf_counter()
        prepared = images.prepare_image(image)
        prompt = object_prompt(points, point_labels, box, mask_input, (prepared.image.height, prepared.image.width),
                               self.mask_size, instance)
        cache_hit = prepared.digest in images.image_cache
        (features,) = images.encode_images([prepared])
        encoded = images.clock(started)
        with images.runtime.lock:
            result = self.segment(features.tracker_embeddings, prompt, features.original_size,
                                  multimask=multimask, label=label)
        result.timings = Timings(encode_image_ms=encoded * 1e3, decode_ms=(images.clock(started) - encoded) * 1e3,
                                 image_cache_hit=cache_hit)
        return result

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
