"""The clicks pipeline: clicks and boxes on one object with SAM3's promptable tracker (`Sam3TrackerModel`) on the
cached image encoding.

The tracker runs on the same ViT output the detector computed: the image pipeline keeps the tracker neck's levels
in its image cache (`ImageFeatures.tracker_embeddings`), so a click costs only the prompt encoder and mask
decoder.
The arithmetic is `Sam3TrackerModel`'s own, fed the same tensors, so results equal
`Sam3TrackerModel.from_pretrained(dir)` run by `Sam3TrackerProcessor`. The model calls go through a
`litetext.runtime.TrackerRuntime` (PyTorch, or an ONNX export's tracker graphs).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..images import ImageInput, PreparedImage
from ..prompts import ObjectPrompt, object_prompt
from ..result import Result, Timings, mask_boxes, upsample_logit_masks
from ..runtime import TrackerRuntime, VisionOutput, as_tracker_runtime
from .image import ImagePipeline


class ClickPipeline:
    """SAM3's tracker sharing the detector's ViT: `embed` turns vision-encoder outputs into its image embeddings,
    `segment_object` answers one object prompt on an image (its encoding from `images`, the image pipeline, and
    its cache), `segment` on embeddings already made. `tracker` is a `Sam3TrackerModel` or a
    `litetext.runtime.TrackerRuntime` (an ONNX export's tracker); `runtime` runs it."""

    def __init__(self, tracker: Any, image_processor: Any):
        from transformers import Sam3TrackerProcessor

        self.runtime: TrackerRuntime = as_tracker_runtime(tracker)
        self.model = self.runtime.model
        self.processor = Sam3TrackerProcessor(image_processor=image_processor)

    def embed(self, vision: VisionOutput) -> list[tuple[Any, ...]]:
        """Per image of the batch, the tracker's three image embeddings (batch dimension 1)."""
        return self.runtime.embed(vision)

    def segment_object(self, images: ImagePipeline, image: ImageInput | PreparedImage, *, points=None,
                       point_labels=None, box=None, mask_input: Any = None, instance: Any = None,
                       multimask: bool = False, label: str = "object") -> Result:
        """One object's mask from clicks and/or a box on `image` (see `Engine.segment_object`)."""
        started = time.perf_counter()
        prepared = images.prepare_image(image)
        prompt = object_prompt(points, point_labels, box, mask_input, (prepared.image.height, prepared.image.width),
                               self.runtime.mask_size, instance)
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
        inputs = {name: encoded[name] for name in ("input_points", "input_labels", "input_boxes") if name in encoded}
        if prompt.mask_input is not None:
            inputs["input_masks"] = torch.from_numpy(prompt.mask_input)[None, None]
        outputs = self.runtime.decode(tuple(embeddings), multimask=multimask, **inputs)
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
