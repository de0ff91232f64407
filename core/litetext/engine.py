"""The engine: load image -> encode image -> encode text -> decode -> post-process.

Each stage is a method. Vision features and text embeddings are cached per engine (shared by every adapter
in the process, since `load` returns one engine per model, device and dtype), and all prompts for an image
are decoded together against one copy of its vision features.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from .cache import (
    DEFAULT_IMAGE_CACHE_BYTES_CPU,
    DEFAULT_IMAGE_CACHE_BYTES_GPU,
    DEFAULT_TEXT_CACHE_BYTES,
    LRUCache,
)
from .errors import BoxError, InputError, InvalidImageError, LitetextError, NoTrackerError, PromptError
from .images import DEFAULT_MAX_PIXELS, ImageInput, describe_source, image_digest, load_image
from .loading import precision_name
from .models import DEFAULT_MODEL
from .result import Result, Timings, upsample_masks

#: Tokens per prompt: Sam3Processor always pads text to this length, so litetext does too.
TEXT_LENGTH = 32
#: Prompt used for box-only (visual) queries, as Sam3Processor does.
VISUAL_PROMPT = "visual"


@dataclass(frozen=True)
class ImageFeatures:
    """What decoding needs from one image: the three FPN levels SAM3 decodes from, batch dimension 1; with a
    tracker, also its three image embeddings (its neck's levels: as many bytes as the ViT's output, and they
    spare every click the neck)."""

    fpn_hidden_states: tuple[Any, ...]
    original_size: tuple[int, int]  # (height, width), as Sam3Processor reports it
    digest: str = ""  # the image's content digest (its cache key)
    tracker_embeddings: tuple[Any, ...] | None = None

    @property
    def nbytes(self) -> int:
        tensors = self.fpn_hidden_states + (self.tracker_embeddings or ())
        return sum(t.numel() * t.element_size() for t in tensors)


@dataclass(frozen=True)
class TextEmbedding:
    """One prompt's projected text features (1, 32, hidden) and attention mask (1, 32)."""

    prompt: str
    features: Any
    attention_mask: Any

    @property
    def nbytes(self) -> int:
        return self.features.numel() * self.features.element_size() + self.attention_mask.numel() * 8


@dataclass(frozen=True)
class DecodeOutput:
    """Raw decoder outputs for K prompts on one image (batch dimension K)."""

    pred_logits: Any
    pred_boxes: Any
    pred_masks: Any
    presence_logits: Any

    @staticmethod
    def concatenate(parts: Sequence[DecodeOutput]) -> DecodeOutput:
        import torch

        if len(parts) == 1:
            return parts[0]
        presence = None if parts[0].presence_logits is None else torch.cat([p.presence_logits for p in parts])
        return DecodeOutput(torch.cat([p.pred_logits for p in parts]), torch.cat([p.pred_boxes for p in parts]),
                            torch.cat([p.pred_masks for p in parts]), presence)

    def rows(self, start: int, stop: int, *, copy: bool = False) -> DecodeOutput:
        """The outputs of prompts `start` to `stop`: a view, or a copy with `copy`."""
        take = (lambda t: t[start:stop].clone()) if copy else (lambda t: t[start:stop])
        presence = None if self.presence_logits is None else take(self.presence_logits)
        return DecodeOutput(take(self.pred_logits), take(self.pred_boxes), take(self.pred_masks), presence)


@dataclass(frozen=True)
class PreparedImage:
    """A validated RGB image with its content digest (the image-cache key).

    `pixel_values` holds the processor's resized, normalised tensor when it was computed ahead of time
    (`segment_batch` does this on its reader thread, overlapping it with model work).
    """

    image: Image.Image
    digest: str
    pixel_values: Any = None

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


@dataclass(frozen=True)
class BatchItem:
    """One item of `segment_batch`: its position and source, then a result or the error that stopped it."""

    index: int
    source: Any
    result: Result | None
    error: LitetextError | None = None
    image: Image.Image | None = None  # the decoded RGB image, for overlays and exports

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class EngineInfo:
    """What an engine runs: the model it was asked for, the checkpoint it loaded, where and how."""

    model: str
    checkpoint: str
    family: str
    device: str
    dtype: str
    text_encoder_params_m: float
    image_size: int
    has_tracker: bool = False
    backend: str = "torch"  # or "onnx": ONNX Runtime graphs, no torch weights (litetext.onnx)


class Engine:
    """Text-prompted segmentation with SAM3-LiteText (or SAM3) and shared caches.

    Get one with `litetext.load(...)`; build one directly only to wrap an already-loaded model.
    Thread-safe: model calls are serialised per engine, caches have their own locks.

    `batched` (default: on for GPUs, off on CPU) sends all prompts of an image through one decoder call and
    several images through one vision-encoder call. Off, every call has batch size 1, exactly as the plain
    transformers pipeline runs, so results are bit-identical to it; on, they are equal up to float rounding
    (batch size changes the kernels' summation order), which is where GPUs gain speed. A CPU gains nothing
    from batching, so it keeps exactness. `max_decode_batch` caps how many (image, prompt) pairs share one
    decoder call, which bounds the decoder's activation memory when many prompts meet many images.
    """

    #: Most (image, prompt) pairs in one batched decoder call.
    max_decode_batch = 32

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        name: str = "custom",
        checkpoint: str = "",
        image_cache_bytes: int | None = None,
        text_cache_bytes: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        batched: bool | None = None,
        tracker: Any = None,
        tracker_checkpoint: str = "",
    ):
        import torch

        self.model = model
        self.processor = processor
        backend = getattr(model, "litetext_backend", None)  # set by a model that is no torch module (litetext.onnx)
        if backend is None:
            self.device = next(model.parameters()).device
            self.dtype = next(model.detr_encoder.parameters()).dtype  # what the text encoder and decoder run in
            self.vision_dtype = next(model.vision_encoder.parameters()).dtype
        else:
            self.device, self.dtype, self.vision_dtype = backend.device, backend.dtype, backend.vision_dtype
        self.max_pixels = max_pixels
        on_gpu = self.device.type != "cpu"
        self.batched = on_gpu if batched is None else batched
        self.compiled = False
        self._graph_outputs = False  # set by compile() for modes whose CUDA graphs reuse their output memory
        if image_cache_bytes is None:
            image_cache_bytes = DEFAULT_IMAGE_CACHE_BYTES_GPU if on_gpu else DEFAULT_IMAGE_CACHE_BYTES_CPU
        self.image_cache = LRUCache(image_cache_bytes, sizeof=lambda f: f.nbytes)
        self.text_cache = LRUCache(
            DEFAULT_TEXT_CACHE_BYTES if text_cache_bytes is None else text_cache_bytes, sizeof=lambda t: t.nbytes
        )
        self._lock = threading.RLock()
        self._position_encodings: tuple[Any, ...] | None = None
        self.tracker = None
        #: Where the tracker came from: the video tracker (`track`) loads its memory modules from there.
        self.tracker_checkpoint = tracker_checkpoint
        self._video_tracker = None
        if tracker is not None:  # a Sam3TrackerModel sharing this model's ViT
            from .tracker import Tracker

            self.tracker = Tracker(tracker, processor.image_processor)
        text_params = (sum(p.numel() for p in model.text_encoder.parameters()) if backend is None
                       else backend.text_encoder_params)
        self.info = EngineInfo(
            model=name,
            checkpoint=checkpoint,
            family="litetext" if model.config.model_type == "sam3_lite_text" else "sam3",
            device=str(self.device),
            dtype=precision_name(self.vision_dtype, self.dtype) if backend is None else backend.precision,
            text_encoder_params_m=round(text_params / 1e6, 2),
            image_size=int(processor.image_processor.size["height"]),
            has_tracker=self.tracker is not None,
            backend="torch" if backend is None else backend.name,
        )
        self._torch = torch

    def __repr__(self) -> str:
        return f"Engine(model={self.info.model!r}, device={self.info.device!r}, dtype={self.info.dtype!r})"

    #: The decode-stage modules `compile` wraps: the prompt-dependent work done once per request.
    DECODER_MODULES = ("geometry_encoder", "detr_encoder", "detr_decoder", "mask_decoder")

    def compile(self, mode: str | None = None) -> Engine:
        """Compile the decoder stages with `torch.compile` (opt-in; returns the engine).

        The decoder runs about a thousand small kernels per call, so on GPUs it is bound by launch overhead;
        compilation fuses them (`mode="reduce-overhead"` adds CUDA graphs). The first calls pay the compile
        time. Results stay equal to the reference up to float rounding, as with batching. Leave it off
        where processes are short-lived or compilation is unavailable (ZeroGPU Spaces).
        """
        torch = self._torch
        if self.info.backend != "torch":
            from .errors import ModelError

            raise ModelError(f"compile() is for the PyTorch backend; {self.model!r} runs ONNX Runtime graphs, which "
                             "it optimises itself when it loads them")
        with self._lock:
            for name in self.DECODER_MODULES:
                module = getattr(self.model, name)
                if not getattr(module, "_litetext_compiled", False):
                    module.forward = torch.compile(module.forward, mode=mode, dynamic=True)
                    module._litetext_compiled = True
            self.compiled = True
            self._graph_outputs = self._graph_outputs or mode in ("reduce-overhead", "max-autotune")
        return self

    # Stage 1: load image ------------------------------------------------------------------------------

    def prepare_image(self, image: ImageInput | PreparedImage) -> PreparedImage:
        """Validate and decode an image input into RGB and compute its content digest."""
        if isinstance(image, PreparedImage):
            return image
        rgb = load_image(image, max_pixels=self.max_pixels)
        return PreparedImage(rgb, image_digest(rgb))

    # Stage 2: encode image ----------------------------------------------------------------------------

    def encode_image(self, image: ImageInput | PreparedImage) -> ImageFeatures:
        """Vision features of one image, from the cache when its pixels were seen before."""
        return self.encode_images([image])[0]

    def encode_images(self, images: Sequence[ImageInput | PreparedImage]) -> list[ImageFeatures]:
        """Vision features of several images; cache misses go through the vision encoder as one batch."""
        prepared = [self.prepare_image(image) for image in images]
        found: dict[str, ImageFeatures] = {}
        for item in prepared:
            if item.digest not in found:
                cached = self.image_cache.get(item.digest)
                if cached is not None:
                    found[item.digest] = cached
        missing = list({p.digest: p for p in prepared if p.digest not in found}.values())
        for group_features in self._run_grouped(missing, self._run_vision_encoder):
            for features in group_features:
                found[features.digest] = features
                self.image_cache.put(features.digest, features)
        return [found[p.digest] for p in prepared]

    def embed_image(self, image: ImageInput | PreparedImage) -> np.ndarray:
        """A global embedding of the image for similarity search: the detector's FPN features at the ViT's
        stride (the coarsest level the decoder reads, 256 channels at full size) averaged over all positions,
        as float32. From the shared image cache, so segmenting the same image afterwards runs no vision encoder.
        It describes what the detector sees (layout, textures, objects), not a CLIP-style semantic embedding."""
        features = self.encode_image(image)
        with self._torch.inference_mode():
            return features.fpn_hidden_states[-1][0].float().mean(dim=(1, 2)).cpu().numpy()

    def _pixel_values(self, image: Image.Image) -> Any:
        """The processor's model input for one image: resized to the model's size and normalised."""
        return self.processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]

    def _run_vision_encoder(self, prepared: Sequence[PreparedImage]) -> list[ImageFeatures]:
        torch = self._torch
        images = [p.image for p in prepared]
        pixel_values = torch.cat([p.pixel_values if p.pixel_values is not None else self._pixel_values(p.image)
                                  for p in prepared])
        with self._lock, torch.inference_mode():
            outputs = self.model.get_vision_features(pixel_values=pixel_values.to(self.device, self.vision_dtype))
            # SAM3 never decodes from the coarsest level; features meet the decoder in its dtype
            levels = [level.to(self.dtype) for level in outputs.fpn_hidden_states[:-1]]
            if self._position_encodings is None:
                # Position encodings depend only on the feature shape: keep one copy, not one per image.
                self._position_encodings = tuple(p[:1].to(self.dtype, copy=True)
                                                for p in outputs.fpn_position_encoding[:-1])
            tracker_embeddings = ([None] * len(images) if self.tracker is None
                                  else self.tracker.embed(outputs.last_hidden_state))
        return [
            ImageFeatures(tuple(level[i : i + 1].clone() for level in levels), (image.height, image.width),
                          prepared[i].digest, tracker_embeddings[i])
            for i, image in enumerate(images)
        ]

    # Stage 3: encode text -----------------------------------------------------------------------------

    def encode_text(self, prompts: Sequence[str]) -> list[TextEmbedding]:
        """Projected text embeddings per prompt, each computed once and then served from the cache."""
        prompts = normalize_prompts(prompts)
        found = {p: self.text_cache.get(p) for p in prompts}
        missing = [p for p, embedding in found.items() if embedding is None]
        if missing:
            self._warn_if_truncated(missing)
        self._run_grouped(missing, lambda group: self._encode_text_group(group, found))
        return [found[p] for p in prompts]

    def _encode_text_group(self, missing: Sequence[str], found: dict[str, TextEmbedding | None]) -> None:
        tokens = self.processor.tokenizer(
            missing, padding="max_length", max_length=TEXT_LENGTH, truncation=True, return_tensors="pt"
        )
        torch = self._torch
        with self._lock, torch.inference_mode():
            input_ids = tokens["input_ids"].to(self.device)
            attention_mask = tokens["attention_mask"].to(self.device)
            features = self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            features = features.pooler_output
        for i, prompt in enumerate(missing):
            embedding = TextEmbedding(prompt, features[i : i + 1].clone(), attention_mask[i : i + 1].clone())
            found[prompt] = embedding
            self.text_cache.put(prompt, embedding)

    def _warn_if_truncated(self, prompts: list[str]) -> None:
        lengths = [len(ids) for ids in self.processor.tokenizer(prompts)["input_ids"]]
        for prompt, length in zip(prompts, lengths):
            if length > TEXT_LENGTH:
                warnings.warn(
                    f"prompt {prompt[:60]!r} is {length} tokens; only the first {TEXT_LENGTH} are used",
                    stacklevel=3,
                )

    # Stage 4: decode ----------------------------------------------------------------------------------

    def decode(
        self,
        features: ImageFeatures,
        embeddings: Sequence[TextEmbedding],
        *,
        boxes: Sequence[Sequence[float]] | None = None,
        box_labels: Sequence[int] | None = None,
    ) -> DecodeOutput:
        """Run the DETR encoder/decoder and mask decoder for every prompt on one image.

        When `batched`, the K prompts go through one call (up to `max_decode_batch` at a time) with the image's
        features broadcast to K (a view, not a copy); otherwise one call per prompt. Exemplar boxes apply to
        every prompt.
        """
        decode = lambda group: self._decode_group([(features, group)], boxes, box_labels)  # noqa: E731
        return DecodeOutput.concatenate(self._run_grouped(embeddings, decode, limit=self.max_decode_batch))

    def _decode_images(self, jobs: Sequence[tuple[ImageFeatures, Sequence[TextEmbedding]]]) -> list[DecodeOutput]:
        """Decode several images' prompts; when `batched`, every (image, prompt) pair goes into one call.

        On GPUs the decoder is bound by kernel launches, so one call for a whole chunk of images costs little
        more than one call for one image. Returns one `DecodeOutput` per job.
        """
        pairs = [(features, embedding) for features, embeddings in jobs for embedding in embeddings]
        decode = lambda group: self._decode_group(_runs(group))  # noqa: E731
        outputs = DecodeOutput.concatenate(self._run_grouped(pairs, decode, limit=self.max_decode_batch))
        split, start = [], 0
        for _, embeddings in jobs:
            split.append(outputs.rows(start, start + len(embeddings)))
            start += len(embeddings)
        return split

    def _decode_group(self, runs, boxes=None, box_labels=None) -> DecodeOutput:
        """One model call for `runs`, a list of (features, embeddings): each image's features are broadcast to
        its prompts (a view, not a copy, when there is one image). Boxes apply to a single image's prompts."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        torch = self._torch
        if self._position_encodings is None:
            raise LitetextError("decode() needs encode_image() to have run on this engine first")
        embeddings = [embedding for _, group in runs for embedding in group]
        count = len(embeddings)
        levels = []
        for level in range(len(runs[0][0].fpn_hidden_states)):
            parts = [features.fpn_hidden_states[level].expand(len(group), -1, -1, -1) for features, group in runs]
            levels.append(parts[0] if len(parts) == 1 else torch.cat(parts))
        vision = Sam3VisionEncoderOutput(
            fpn_hidden_states=tuple(levels) + (None,),
            fpn_position_encoding=tuple(p.expand(count, -1, -1, -1) for p in self._position_encodings) + (None,),
        )
        text = BaseModelOutputWithPooling(pooler_output=torch.cat([e.features for e in embeddings]))
        attention_mask = torch.cat([e.attention_mask for e in embeddings])
        box_inputs = self._box_inputs(boxes, box_labels, runs[0][0].original_size, count)
        with self._lock, torch.inference_mode():
            if self._graph_outputs:  # a new step for CUDA graph trees, whose replays reuse their output memory
                torch.compiler.cudagraph_mark_step_begin()
            out = self.model(vision_embeds=vision, text_embeds=text, attention_mask=attention_mask, **box_inputs)
            outputs = DecodeOutput(out.pred_logits, out.pred_boxes, out.pred_masks, out.presence_logits)
            if self._graph_outputs:  # so the next call (another group, another request) cannot overwrite them
                outputs = outputs.rows(0, len(outputs.pred_logits), copy=True)
        return outputs

    def _run_grouped(self, items: Sequence[Any], run, *, limit: int | None = None) -> list[Any]:
        """`run(group)` over the items: in groups of up to `limit` (all in one without) when batched, else one
        at a time (see `batched`).

        A group that runs out of device memory is split in halves and retried, so a batch too large for the
        GPU slows down instead of failing; a single item that does not fit still raises.
        """
        if not len(items):
            return []
        size = (limit or len(items)) if self.batched else 1
        pending: list[Sequence[Any]] = [items[i : i + size] for i in range(0, len(items), size)]
        outputs = []
        while pending:
            group = pending.pop(0)
            try:
                outputs.append(run(group))
            except self._torch.OutOfMemoryError:
                if len(group) == 1:
                    raise
                if self.device.type == "cuda":
                    self._torch.cuda.empty_cache()
                half = len(group) // 2
                pending[:0] = [group[:half], group[half:]]
                warnings.warn(f"out of device memory with a batch of {len(group)}; retrying as {half} + "
                              f"{len(group) - half}", stacklevel=3)
        return outputs

    def _box_inputs(self, boxes, box_labels, original_size, count: int) -> dict[str, Any]:
        if boxes is None or len(boxes) == 0:
            return {}
        boxes, box_labels = validate_boxes(boxes, box_labels, original_size)
        # The processor normalises pixel xyxy to relative cxcywh; reuse it so results match it exactly.
        encoded = self.processor(
            original_sizes=[list(original_size)], input_boxes=[boxes], input_boxes_labels=[box_labels],
            return_tensors="pt",
        )
        return {
            "input_boxes": encoded["input_boxes"].to(self.device, self.dtype).expand(count, -1, -1),
            "input_boxes_labels": encoded["input_boxes_labels"].to(self.device).expand(count, -1),
        }

    # Stage 5: post-process ----------------------------------------------------------------------------

    def postprocess(
        self,
        outputs: Any,
        prompts: Sequence[str],
        original_size: tuple[int, int],
        *,
        threshold: float = 0.5,
        mask_threshold: float = 0.5,
        keep_mask_logits: bool = False,
    ) -> Result:
        """Scores, pixel boxes and full-resolution masks of the instances scoring above `threshold`.

        Same arithmetic as `Sam3Processor.post_process_instance_segmentation`; only kept instances are
        upsampled, in chunks, so memory stays bounded on large images.
        """
        torch = self._torch
        height, width = original_size
        with torch.inference_mode():
            scores = outputs.pred_logits.float().sigmoid()
            if outputs.presence_logits is not None:
                scores = scores * outputs.presence_logits.float().sigmoid()
            scale = torch.tensor([width, height, width, height], device=scores.device)
            boxes = outputs.pred_boxes.float() * scale
            keep = scores > threshold
            prompt_indices = keep.nonzero()[:, 0]
            kept_logits = outputs.pred_masks[keep]
            masks = upsample_masks(kept_logits, (height, width), mask_threshold)
            return Result(
                prompts=list(prompts),
                prompt_indices=prompt_indices.cpu().numpy().astype(np.int64),
                scores=scores[keep].cpu().numpy().astype(np.float32),
                boxes=boxes[keep].cpu().numpy().astype(np.float32).reshape(-1, 4),
                masks=masks.numpy(),
                image_size=(width, height),
                mask_logits=kept_logits.float().cpu().numpy() if keep_mask_logits else None,
            )

    # The whole request --------------------------------------------------------------------------------

    def segment(
        self,
        image: ImageInput | PreparedImage,
        prompts: str | Sequence[str] | None,
        *,
        boxes: Sequence[Sequence[float]] | None = None,
        box_labels: Sequence[int] | None = None,
        threshold: float = 0.5,
        mask_threshold: float = 0.5,
        max_instances: int | None = None,
        min_area: int = 0,
        keep_mask_logits: bool = False,
    ) -> Result:
        """Find every instance of each prompt (a noun phrase, or a list of them) in `image`.

        `boxes` are optional exemplar boxes in pixel xyxy, with `box_labels` 1 (positive) or 0 (negative);
        with boxes and no prompts the query is visual only. `keep_mask_logits` keeps the low-resolution
        mask logits on the result so `Result.with_mask_threshold` can re-binarise without the model.
        Returns a `Result` at the image's size.
        """
        check_thresholds(threshold, mask_threshold)
        prompts = resolve_prompts(prompts, boxes)
        started = time.perf_counter()
        prepared = self.prepare_image(image)
        cache_hit = prepared.digest in self.image_cache
        features = self.encode_image(prepared)
        encode_image_ms = self._clock(started) * 1e3
        result = self._segment_features(features, prompts, boxes=boxes, box_labels=box_labels, threshold=threshold,
                                        mask_threshold=mask_threshold, max_instances=max_instances,
                                        min_area=min_area, keep_mask_logits=keep_mask_logits)
        result.timings = replace(result.timings, encode_image_ms=encode_image_ms, image_cache_hit=cache_hit)
        return result

    def segment_object(
        self,
        image: ImageInput | PreparedImage,
        *,
        points: Sequence[Sequence[float]] | None = None,
        point_labels: Sequence[int] | None = None,
        box: Sequence[float] | None = None,
        mask_input: Any = None,
        instance: Any = None,
        multimask: bool = False,
        label: str = "object",
    ) -> Result:
        """The mask of one object, from clicks and/or a box, with SAM3's tracker (like segment-anything's
        `SamPredictor.predict`).

        `points` are pixel (x, y) clicks with `point_labels` 1 (include, the default) or 0 (exclude); `box` is a
        pixel xyxy box; `mask_input` is low-resolution mask logits from an earlier result (`result.mask_logits[i]`)
        for a refinement round. `instance` (an `Instance` of a text result kept with `keep_mask_logits=True`, or
        of an earlier `segment_object` result) seeds the prompt with its box (unless `box` is given) and its mask
        logits (unless `mask_input` is). Returns one mask, or three candidates with `multimask`, scored by the
        tracker's predicted IoU, with their `mask_logits` kept. The image encoding comes from the shared cache,
        so a click after a text prompt on the same image runs no vision encoder. Raises `NoTrackerError` when
        the checkpoint has no tracker.
        """
        from .tracker import object_prompt

        if self.tracker is None:
            raise NoTrackerError()
        if instance is not None:
            box = instance.box if box is None else box
            if mask_input is None and instance.mask_logits is not None:
                mask_input = instance.mask_logits
        started = time.perf_counter()
        prepared = self.prepare_image(image)
        prompt = object_prompt(points, point_labels, box, mask_input, (prepared.image.height, prepared.image.width),
                               self.tracker.mask_size)
        cache_hit = prepared.digest in self.image_cache
        features = self.encode_image(prepared)
        encoded = self._clock(started)
        with self._lock:
            result = self.tracker.segment(features.tracker_embeddings, prompt, features.original_size,
                                          multimask=multimask, label=label)
        result.timings = Timings(encode_image_ms=encoded * 1e3, decode_ms=(self._clock(started) - encoded) * 1e3,
                                 image_cache_hit=cache_hit)
        return result

    def track(
        self,
        video: Any,
        prompts: str | Sequence[str],
        *,
        threshold: float | None = None,
        new_object_threshold: float | None = None,
        max_objects: int | None = None,
        start_frame: int = 0,
        max_frames: int | None = None,
        mode: str = "auto",
        local_kernels: bool = True,
        progress: bool = False,
    ) -> Iterator[Any]:
        """Find every instance of each prompt in a video and follow it, yielding one `TrackedFrame` per frame
        in order; its `result`'s instances carry a stable `object_ids` entry and the prompt that found them.

        `video` is a video file (decoded frame by frame, never wholly in memory), a folder of frames, a (T, H, W,
        C) array or any iterable of images (a live stream). `threshold` is the detection score to keep a
        detection, `new_object_threshold` the score a detection needs to start a new track, `max_objects` a cap
        on tracked objects (all three default to the checkpoint's settings). `mode` "stream" processes frames
        as they come; "video" (the default when the frame count is known) holds outputs back the checkpoint's
        `hotstart_delay` frames to drop tracks that never match or duplicate another, as transformers'
        whole-video flow does. `local_kernels` gives transformers' video model a local NMS and hole filling when
        its hub kernel is not installed (offline it is not, and it would silently skip them). Bad input raises
        `InvalidVideoError`, `PromptError` or `NoTrackerError`; frames already yielded stay valid.
        """
        if self.tracker is None:
            raise NoTrackerError()
        if self._video_tracker is None and not self.tracker_checkpoint:
            raise NoTrackerError("this engine's tracker was built in memory without a checkpoint; tracking needs "
                                 "the checkpoint's video tracker: load one with litetext.load(..., tracker=...)")
        prompts = normalize_prompts(prompts)
        check_thresholds(0.5 if threshold is None else threshold,
                         0.5 if new_object_threshold is None else new_object_threshold)
        with self._lock:
            if self._video_tracker is None:
                from .tracking import VideoTracker

                self._video_tracker = VideoTracker(self)
        return self._video_tracker.track(video, prompts, threshold=threshold,
                                         new_object_threshold=new_object_threshold, max_objects=max_objects,
                                         start_frame=start_frame, max_frames=max_frames, mode=mode,
                                         local_kernels=local_kernels, progress=progress)

    @property
    def has_tracker(self) -> bool:
        """Whether this engine answers clicks and boxes on one object (`segment_object`)."""
        return self.tracker is not None

    def _segment_features(self, features, prompts, *, boxes=None, box_labels=None, threshold, mask_threshold,
                          max_instances, min_area, keep_mask_logits=False) -> Result:
        """Stages 3 to 5 on features already encoded; timings of those stages are set on the result."""
        started = time.perf_counter()
        embeddings = self.encode_text(prompts)
        encoded_text = self._clock(started)
        outputs = self.decode(features, embeddings, boxes=boxes, box_labels=box_labels)
        decoded = self._clock(started)
        result = self._finish(outputs, embeddings, features, threshold=threshold, mask_threshold=mask_threshold,
                              max_instances=max_instances, min_area=min_area, keep_mask_logits=keep_mask_logits)
        finished = self._clock(started)
        result.timings = Timings(encode_text_ms=encoded_text * 1e3, decode_ms=(decoded - encoded_text) * 1e3,
                                 postprocess_ms=(finished - decoded) * 1e3)
        return result

    def _finish(self, outputs, embeddings, features, *, threshold, mask_threshold, max_instances, min_area,
                keep_mask_logits=False) -> Result:
        """Stage 5 and the `max_instances`/`min_area` filter."""
        result = self.postprocess(outputs, [e.prompt for e in embeddings], features.original_size,
                                  threshold=threshold, mask_threshold=mask_threshold,
                                  keep_mask_logits=keep_mask_logits)
        return result.filter(min_area=min_area, max_instances=max_instances)

    def _segment_images(self, jobs, options) -> Iterator[Result | LitetextError]:
        """Stages 3 to 5 for several images' (features, prompts), yielding a result or the error per job.

        When `batched`, all the jobs' prompts share one decoder call (`_decode_images`); otherwise each job
        runs on its own, lazily, so only one image's decoder outputs are held at a time.
        """
        if not self.batched or len(jobs) < 2:
            for features, prompts in jobs:
                yield _attempt(self._segment_features, features, prompts, **options)
            return
        started = time.perf_counter()
        embedded = [_attempt(self.encode_text, prompts) for _, prompts in jobs]
        ready = [(features, e) for (features, _), e in zip(jobs, embedded) if not isinstance(e, LitetextError)]
        encoded_text = self._clock(started)
        outputs = iter(self._decode_images(ready))
        decoded = self._clock(started)
        share = 1e3 / max(1, len(ready))
        for (features, _), embeddings in zip(jobs, embedded):
            if isinstance(embeddings, LitetextError):
                yield embeddings
                continue
            began = time.perf_counter()
            result = self._finish(next(outputs), embeddings, features, **options)
            result.timings = Timings(encode_text_ms=encoded_text * share, decode_ms=(decoded - encoded_text) * share,
                                     postprocess_ms=self._clock(began) * 1e3)
            yield result

    def segment_batch(
        self,
        images: Iterable[Any],
        prompts: str | Sequence[str] | None = None,
        *,
        batch_size: int = 4,
        threshold: float = 0.5,
        mask_threshold: float = 0.5,
        max_instances: int | None = None,
        min_area: int = 0,
        progress: bool = False,
    ) -> Iterator[BatchItem]:
        """Segment many images, yielding a `BatchItem` per image in input order.

        With `prompts` given, every image gets them; with `prompts=None` each item of `images` is an
        `(image, prompts)` pair. Images go through the vision encoder `batch_size` at a time while the next
        batch is read in the background. A bad image or prompt yields an item with `error` set; the rest go on.
        """
        check_thresholds(threshold, mask_threshold)
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, not {batch_size}")
        options = dict(threshold=threshold, mask_threshold=mask_threshold, max_instances=max_instances,
                       min_area=min_area)
        total = len(images) if hasattr(images, "__len__") else None
        bar = _progress_bar(total, enabled=progress)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="litetext-read") as reader:
            pending = None
            for chunk in _chunks(enumerate(images), batch_size):
                upcoming = reader.submit(self._read_chunk, chunk, prompts)
                if pending is not None:
                    yield from self._segment_chunk(pending.result(), options, bar)
                pending = upcoming
            if pending is not None:
                yield from self._segment_chunk(pending.result(), options, bar)
        bar.close()

    def _read_chunk(self, chunk: list[tuple[int, Any]], prompts) -> list[tuple[int, Any, Any, Any]]:
        """Decode and validate one chunk's images and prompts (runs on the reader thread)."""
        read = []
        for index, item in chunk:
            source = item
            try:
                source, item_prompts = (item, prompts) if prompts is not None else _split_pair(item)
                prepared = self.prepare_image(source)
                if prepared.digest not in self.image_cache:
                    prepared = replace(prepared, pixel_values=self._pixel_values(prepared.image))
                read.append((index, source, prepared, normalize_prompts(item_prompts)))
            except LitetextError as error:
                read.append((index, source, None, error))
            except Exception as error:  # an unforeseen decoder failure loses this item only, never the batch
                problem = InvalidImageError(f"{describe_source(source)}: cannot read ({type(error).__name__}: {error})")
                read.append((index, source, None, problem))
        return read

    def _segment_chunk(self, read, options, bar) -> Iterator[BatchItem]:
        good = [prepared for _, _, prepared, _ in read if prepared is not None]
        started = time.perf_counter()
        features = dict(zip((p.digest for p in good), self.encode_images(good)))  # one batched vision pass
        encode_ms = self._clock(started) * 1e3 / max(1, len(good))
        jobs = [(features[prepared.digest], prompts) for _, _, prepared, prompts in read if prepared is not None]
        outcomes = self._segment_images(jobs, options)
        for index, source, prepared, prompts_or_error in read:
            outcome = prompts_or_error if prepared is None else next(outcomes)
            if isinstance(outcome, Result):
                outcome.timings = replace(outcome.timings, encode_image_ms=encode_ms)
                yield BatchItem(index, source, outcome, image=prepared.image)
            else:
                yield BatchItem(index, source, None, outcome)
            bar.update(1)

    def _clock(self, since: float) -> float:
        """Seconds since `since`, after the device has finished its queued work."""
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)
        return time.perf_counter() - since


# Validation shared by the engine and the adapters ---------------------------------------------------------


def normalize_prompts(prompts: str | Sequence[str] | None) -> list[str]:
    """Validate prompts: one noun phrase or a list; strips whitespace, drops duplicates, keeps order."""
    if isinstance(prompts, (str, bytes)):
        prompts = [prompts]
    if prompts is None or len(prompts) == 0:
        raise PromptError("no prompt given: pass at least one noun phrase, e.g. 'red car'")
    cleaned: list[str] = []
    for prompt in prompts:
        if isinstance(prompt, bytes):
            try:
                prompt = prompt.decode("utf-8")
            except UnicodeDecodeError:
                raise PromptError(f"prompt {prompt[:40]!r} is not valid UTF-8 text") from None
        if not isinstance(prompt, str):
            raise PromptError(f"prompts must be text, got {type(prompt).__name__}")
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates, e.g. from JSON "\udcff"
            raise PromptError(f"prompt {prompt[:40]!r} is not valid UTF-8 text") from None
        prompt = " ".join(prompt.split())
        if not prompt:
            raise PromptError("a prompt is empty or blank: every prompt must name something, e.g. 'person'")
        if prompt not in cleaned:
            cleaned.append(prompt)
    return cleaned


def split_prompts(text: str | None, separators: str = ",\n") -> list[str]:
    """Prompts typed in one text box: split on `separators` (commas and newlines by default), then
    validated like `normalize_prompts` (blanks dropped, duplicates removed; none at all is a `PromptError`)."""
    pattern = "[" + re.escape(separators) + "]"
    return normalize_prompts([part for part in re.split(pattern, text or "") if part.strip()])


def resolve_prompts(prompts: str | Sequence[str] | None, boxes: Sequence[Any] | None) -> list[str]:
    """The prompts to decode: the given ones, or the processor's visual prompt for box-only queries."""
    if (prompts is None or (not isinstance(prompts, (str, bytes)) and len(prompts) == 0)) and boxes:
        return [VISUAL_PROMPT]
    return normalize_prompts(prompts)


def validate_boxes(
    boxes: Sequence[Sequence[float]], box_labels: Sequence[int] | None, original_size: tuple[int, int]
) -> tuple[list[list[float]], list[int]]:
    """Check exemplar boxes are finite pixel xyxy inside the image and labels are 0/1; return them as lists."""
    height, width = original_size
    checked = []
    for box in boxes:
        try:
            x1, y1, x2, y2 = (float(v) for v in box)
        except (TypeError, ValueError):
            raise BoxError(f"box {box!r} must be four numbers x1, y1, x2, y2 in pixels") from None
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            raise BoxError(f"box {box!r} has a NaN or infinite coordinate")
        if x2 <= x1 or y2 <= y1:
            raise BoxError(f"box {box!r} is empty or inverted: need x1 < x2 and y1 < y2")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise BoxError(f"box {box!r} lies outside the {width}x{height} image")
        checked.append([x1, y1, x2, y2])
    labels = [1] * len(checked) if box_labels is None else [int(v) for v in box_labels]
    if len(labels) != len(checked):
        raise BoxError(f"{len(checked)} boxes but {len(labels)} box labels")
    if any(v not in (0, 1) for v in labels):
        raise BoxError(f"box labels must be 1 (positive) or 0 (negative), got {labels}")
    return checked, labels


def check_thresholds(threshold: float, mask_threshold: float) -> None:
    """Thresholds must be finite numbers in [0, 1]."""
    for name, value in (("threshold", threshold), ("mask_threshold", mask_threshold)):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise InputError(f"{name} must be a number between 0 and 1, not {value!r}")


def _split_pair(item: Any) -> tuple[Any, Any]:
    if isinstance(item, tuple) and len(item) == 2:
        return item
    raise InputError(
        f"{describe_source(item)}: with prompts=None each item must be an (image, prompts) pair"
    )


def _attempt(run, *args, **kwargs) -> Any:
    """`run(*args, **kwargs)`, or the `LitetextError` it raised (one bad item must not stop a batch)."""
    try:
        return run(*args, **kwargs)
    except LitetextError as error:
        return error


def _runs(pairs: Sequence[tuple[ImageFeatures, TextEmbedding]]) -> list[tuple[ImageFeatures, list[TextEmbedding]]]:
    """Consecutive (features, embedding) pairs of the same image, gathered as (features, embeddings)."""
    runs: list[tuple[ImageFeatures, list[TextEmbedding]]] = []
    for features, embedding in pairs:
        if runs and runs[-1][0] is features:
            runs[-1][1].append(embedding)
        else:
            runs.append((features, [embedding]))
    return runs


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _progress_bar(total: int | None, *, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="image", desc="segmenting", disable=not enabled)


# One engine per model, device and dtype, shared by the whole process --------------------------------------

_ENGINES: dict[tuple[str, str, str], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def load(
    model: str | os.PathLike = DEFAULT_MODEL,
    device: str = "auto",
    dtype: Any = "auto",
    *,
    tracker: str | os.PathLike | bool | None = None,
    image_cache_bytes: int | None = None,
    text_cache_bytes: int | None = None,
    backend: str = "auto",
) -> Engine:
    """The process-wide engine for `model` (an alias, hub id or local directory), `device` and `dtype`.

    `tracker` gives clicks and boxes on one object (`Engine.segment_object`): by default a checkpoint that
    holds SAM3's tracker (the `sam3_video` layout, as `facebook/sam3`) loads it too; `False` leaves it out; an
    alias, hub id or directory of such a checkpoint composes its tracker with `model`'s detector, sharing the
    detector's ViT (`litetext models assemble` writes that composition as one checkpoint).

    Calling it again with the same arguments returns the same engine: weights are loaded once and every
    adapter shares the caches. Cache budgets, when given, resize the shared caches (0 disables one).

    `backend="onnx"` runs the same engine on ONNX Runtime (CPU; `pip install "litetext[onnx]"`): `model` is an
    export directory (`litetext export`), or a model exported into litetext's cache on first use. The default,
    `auto`, is ONNX for an export directory and PyTorch for everything else.
    """
    from .onnx.manifest import is_export

    if backend == "onnx" or (backend == "auto" and is_export(model)):
        from .onnx.runtime import load_engine

        return load_engine(model, device, dtype, tracker=tracker, image_cache_bytes=image_cache_bytes,
                           text_cache_bytes=text_cache_bytes)
    if backend not in ("auto", "torch"):
        from .errors import ModelError

        raise ModelError(f"unknown backend {backend!r}: use 'torch', 'onnx' or 'auto'")
    from .loading import load_model_and_processor, resolve_checkpoint, resolve_device, resolve_dtypes

    resolved_device = resolve_device(device)
    vision_dtype, resolved_dtype = resolve_dtypes(dtype, resolved_device)
    name = os.fspath(model)
    tracker_name = tracker if isinstance(tracker, bool) or tracker is None else os.fspath(tracker)
    key = (name, resolved_device, precision_name(vision_dtype, resolved_dtype), tracker_name)

    def build() -> Engine:
        checkpoint = resolve_checkpoint(name)
        loaded_model, processor = load_model_and_processor(checkpoint, resolved_device, resolved_dtype, vision_dtype)
        tracker_model, tracker_source = _load_tracker(loaded_model, checkpoint, tracker_name, resolved_device,
                                                      resolved_dtype, vision_dtype)
        return Engine(loaded_model, processor, name=name, checkpoint=checkpoint, tracker=tracker_model,
                      tracker_checkpoint=tracker_source, image_cache_bytes=image_cache_bytes,
                      text_cache_bytes=text_cache_bytes)

    return shared_engine(key, build, image_cache_bytes, text_cache_bytes)


def shared_engine(key: tuple, build: Callable[[], Engine], image_cache_bytes: int | None,
                  text_cache_bytes: int | None) -> Engine:
    """The process-wide engine under `key` (built once by `build`); a later call's cache sizes resize it."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = build()
            return engine
    if image_cache_bytes is not None:
        engine.image_cache.resize(image_cache_bytes)
    if text_cache_bytes is not None:
        engine.text_cache.resize(text_cache_bytes)
    return engine


def _load_tracker(detector: Any, checkpoint: str, tracker: str | bool | None, device: str, dtype: Any,
                  vision_dtype: Any) -> tuple[Any, str]:
    """The tracker to attach to `detector` (None for none), sharing the detector's ViT, and its checkpoint."""
    from .compose import vision_backbone_difference, warn_if_different
    from .loading import checkpoint_config, has_tracker, load_tracker, resolve_checkpoint

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
    if source != checkpoint:  # within one sam3_video checkpoint both read the same ViT weights
        difference = vision_backbone_difference(detector.vision_encoder.backbone.state_dict(),
                                                model.vision_encoder.backbone.state_dict())
        warn_if_different(difference, checkpoint, source)
    model.vision_encoder.backbone = detector.vision_encoder.backbone  # one ViT in memory, one pass per image
    return model, source


def loaded_engines() -> list[Engine]:
    """Every engine loaded in this process so far."""
    with _ENGINES_LOCK:
        return list(_ENGINES.values())

