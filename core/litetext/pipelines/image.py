"""The image pipeline: load image -> encode image -> encode text -> decode -> post-process, each a method.

Vision features and text embeddings are cached (the caches are the engine's, shared by every adapter in the
process), all prompts for an image are decoded together against one copy of its vision features, and datasets
stream through `segment_batch` with the next images read on a background thread. The model calls go through a
`litetext.runtime.Runtime`, whatever runs them.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from ..cache import LRUCache
from ..errors import InputError, InvalidImageError, LitetextError
from ..images import DEFAULT_MAX_PIXELS, ImageInput, PreparedImage, describe_source, prepare_image
from ..prompts import TEXT_LENGTH, check_thresholds, normalize_prompts, resolve_prompts, validate_boxes
from ..result import Result, Timings, upsample_masks
from ..runtime.base import DecodeOutput, Runtime, per_image
from .batching import attempt, chunks, progress_bar, read_ahead, run_grouped


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


class ImagePipeline:
    """Text and exemplar-box prompts on images, through `runtime`, with `processor`'s tokenizer and image
    processor (`Sam3Processor`).

    `batched` sends all prompts of an image through one decoder call and several images through one vision
    call (up to `max_decode_batch` (image, prompt) pairs per decoder call); off, every call has batch size 1, as
    the plain transformers pipeline runs. `embed_for_tracker`, when given, turns the vision encoder's output
    (`VisionOutput`) into the tracker's image embeddings, kept in the image cache beside the detector's features.
    """

    def __init__(self, runtime: Runtime, processor: Any, *, image_cache: LRUCache, text_cache: LRUCache,
                 max_pixels: int = DEFAULT_MAX_PIXELS, batched: bool = False, max_decode_batch: int = 32,
                 embed_for_tracker: Callable[[Any], list[tuple[Any, ...]]] | None = None):
        import torch

        self.runtime = runtime
        self.processor = processor
        self.image_cache = image_cache
        self.text_cache = text_cache
        self.max_pixels = max_pixels
        self.batched = batched
        self.max_decode_batch = max_decode_batch
        self.embed_for_tracker = embed_for_tracker
        self._position_encodings: tuple[Any, ...] | None = None
        self._torch = torch

    # Stage 1: load image ------------------------------------------------------------------------------------

    def prepare_image(self, image: ImageInput | PreparedImage) -> PreparedImage:
        """Validate and decode an image input into RGB and compute its content digest."""
        return prepare_image(image, max_pixels=self.max_pixels)

    def pixel_values(self, image: Image.Image) -> Any:
        """The processor's model input for one image: resized to the model's size and normalised."""
        return self.processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]

    # Stage 2: encode image ----------------------------------------------------------------------------------

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
        for group_features in self._grouped(missing, self._run_vision_encoder):
            for features in group_features:
                found[features.digest] = features
                self.image_cache.put(features.digest, features)
        return [found[p.digest] for p in prepared]

    def _run_vision_encoder(self, prepared: Sequence[PreparedImage]) -> list[ImageFeatures]:
        torch = self._torch
        images = [p.image for p in prepared]
        pixel_values = torch.cat([p.pixel_values if p.pixel_values is not None else self.pixel_values(p.image)
                                  for p in prepared])
        with self.runtime.lock, torch.inference_mode():
            outputs = self.runtime.encode_pixels(pixel_values)
            if self._position_encodings is None:
                # Position encodings depend only on the feature shape: keep one copy, not one per image.
                self._position_encodings = tuple(p[:1].clone() for p in outputs.position_encodings)
            tracker_embeddings = ([None] * len(images) if self.embed_for_tracker is None
                                  else self.embed_for_tracker(outputs))
            return [ImageFeatures(levels, (image.height, image.width), prepared[i].digest, tracker_embeddings[i])
                    for i, (image, levels) in enumerate(zip(images, per_image(outputs.levels), strict=True))]

    def embed_image(self, image: ImageInput | PreparedImage) -> np.ndarray:
        """The detector's coarsest decoded FPN level averaged over all positions, as float32 (see
        `Engine.embed_image`)."""
        (features,) = self.encode_images([image])
        with self._torch.inference_mode():
            return features.fpn_hidden_states[-1][0].float().mean(dim=(1, 2)).cpu().numpy()

    # Stage 3: encode text -----------------------------------------------------------------------------------

    def encode_text(self, prompts: Sequence[str]) -> list[TextEmbedding]:
        """Projected text embeddings per prompt, each computed once and then served from the cache."""
        prompts = normalize_prompts(prompts)
        found = {p: self.text_cache.get(p) for p in prompts}
        missing = [p for p, embedding in found.items() if embedding is None]
        if missing:
            self._warn_if_truncated(missing)
        self._grouped(missing, lambda group: self._encode_text_group(group, found))
        return [found[p] for p in prompts]

    def _encode_text_group(self, missing: Sequence[str], found: dict[str, TextEmbedding | None]) -> None:
        tokens = self.processor.tokenizer(
            missing, padding="max_length", max_length=TEXT_LENGTH, truncation=True, return_tensors="pt"
        )
        input_ids = tokens["input_ids"].to(self.runtime.device)
        attention_mask = tokens["attention_mask"].to(self.runtime.device)
        with self._torch.inference_mode():
            features = self.runtime.encode_tokens(input_ids, attention_mask)
            for i, prompt in enumerate(missing):
                embedding = TextEmbedding(prompt, features[i : i + 1].clone(), attention_mask[i : i + 1].clone())
                found[prompt] = embedding
                self.text_cache.put(prompt, embedding)

    def _warn_if_truncated(self, prompts: list[str]) -> None:
        lengths = [len(ids) for ids in self.processor.tokenizer(prompts)["input_ids"]]
        for prompt, length in zip(prompts, lengths):
            if length > TEXT_LENGTH:
                warnings.warn(f"prompt {prompt[:60]!r} is {length} tokens; only the first {TEXT_LENGTH} are used",
                              stacklevel=4)

    # Stage 4: decode ----------------------------------------------------------------------------------------

    def decode(self, features: ImageFeatures, embeddings: Sequence[TextEmbedding], *,
               boxes: Sequence[Sequence[float]] | None = None,
               box_labels: Sequence[int] | None = None) -> DecodeOutput:
        """The DETR encoder/decoder and mask decoder for every prompt on one image (see `Engine.decode`)."""
        decode = lambda group: self._decode_group([(features, group)], boxes, box_labels)  # noqa: E731
        return DecodeOutput.concatenate(self._grouped(embeddings, decode, limit=self.max_decode_batch))

    def _decode_images(self, jobs: Sequence[tuple[ImageFeatures, Sequence[TextEmbedding]]]) -> list[DecodeOutput]:
        """Decode several images' prompts; when `batched`, every (image, prompt) pair goes into one call.

        On GPUs the decoder is bound by kernel launches, so one call for a whole chunk of images costs little
        more than one call for one image. Returns one `DecodeOutput` per job.
        """
        pairs = [(features, embedding) for features, embeddings in jobs for embedding in embeddings]
        decode = lambda group: self._decode_group(_runs(group))  # noqa: E731
        outputs = DecodeOutput.concatenate(self._grouped(pairs, decode, limit=self.max_decode_batch))
        split, start = [], 0
        for _, embeddings in jobs:
            split.append(outputs.rows(start, start + len(embeddings)))
            start += len(embeddings)
        return split

    def _decode_group(self, runs, boxes=None, box_labels=None) -> DecodeOutput:
        """One runtime call for `runs`, a list of (features, embeddings): each image's features are broadcast to
        its prompts (a view, not a copy, when there is one image). Boxes apply to a single image's prompts."""
        torch = self._torch
        if self._position_encodings is None:
            raise LitetextError("decode() needs encode_image() to have run on this engine first")
        embeddings = [embedding for _, group in runs for embedding in group]
        count = len(embeddings)
        levels = []
        for level in range(len(runs[0][0].fpn_hidden_states)):
            parts = [features.fpn_hidden_states[level].expand(len(group), -1, -1, -1) for features, group in runs]
            levels.append(parts[0] if len(parts) == 1 else torch.cat(parts))
        text = torch.cat([e.features for e in embeddings])
        attention_mask = torch.cat([e.attention_mask for e in embeddings])
        box_inputs = self._box_inputs(boxes, box_labels, runs[0][0].original_size, count)
        return self.runtime.decode(levels, self._position_encodings, text, attention_mask, **box_inputs)

    def _box_inputs(self, boxes, box_labels, original_size, count: int) -> dict[str, Any]:
        if boxes is None or len(boxes) == 0:
            return {}
        boxes, box_labels = validate_boxes(boxes, box_labels, original_size)
        # The processor normalises pixel xyxy to relative cxcywh; reuse it so results match it exactly.
        encoded = self.processor(
            original_sizes=[list(original_size)], input_boxes=[boxes], input_boxes_labels=[box_labels],
            return_tensors="pt",
        )
        return {"input_boxes": encoded["input_boxes"].expand(count, -1, -1),
                "input_boxes_labels": encoded["input_boxes_labels"].expand(count, -1)}

    def _grouped(self, items: Sequence[Any], run, *, limit: int | None = None) -> list[Any]:
        """`run` over groups of items: up to `limit` (all without) when `batched`, else one at a time."""
        size = (limit or len(items) or 1) if self.batched else 1
        return run_grouped(items, run, size=size, out_of_memory=self.runtime.out_of_memory,
                           release=self.runtime.release_memory)

    # Stage 5: post-process ----------------------------------------------------------------------------------

    def postprocess(self, outputs: Any, prompts: Sequence[str], original_size: tuple[int, int], *,
                    threshold: float = 0.5, mask_threshold: float = 0.5, keep_mask_logits: bool = False) -> Result:
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

    # The whole request --------------------------------------------------------------------------------------

    def segment(self, image: ImageInput | PreparedImage, prompts: str | Sequence[str] | None, *,
                boxes: Sequence[Sequence[float]] | None = None, box_labels: Sequence[int] | None = None,
                threshold: float = 0.5, mask_threshold: float = 0.5, max_instances: int | None = None,
                min_area: int = 0, keep_mask_logits: bool = False) -> Result:
        """Every instance of each prompt in `image` (see `Engine.segment`)."""
        check_thresholds(threshold, mask_threshold)
        prompts = resolve_prompts(prompts, boxes)
        started = time.perf_counter()
        prepared = self.prepare_image(image)
        cache_hit = prepared.digest in self.image_cache
        (features,) = self.encode_images([prepared])
        encode_image_ms = self.clock(started) * 1e3
        result = self.segment_features(features, prompts, boxes=boxes, box_labels=box_labels, threshold=threshold,
                                       mask_threshold=mask_threshold, max_instances=max_instances,
                                       min_area=min_area, keep_mask_logits=keep_mask_logits)
        result.timings = replace(result.timings, encode_image_ms=encode_image_ms, image_cache_hit=cache_hit)
        return result

    def segment_features(self, features: ImageFeatures, prompts: Sequence[str], *, boxes=None, box_labels=None,
                         threshold: float, mask_threshold: float, max_instances: int | None, min_area: int,
                         keep_mask_logits: bool = False) -> Result:
        """Stages 3 to 5 on features already encoded; timings of those stages are set on the result."""
        started = time.perf_counter()
        embeddings = self.encode_text(prompts)
        encoded_text = self.clock(started)
        outputs = self.decode(features, embeddings, boxes=boxes, box_labels=box_labels)
        decoded = self.clock(started)
        result = self._finish(outputs, embeddings, features, threshold=threshold, mask_threshold=mask_threshold,
                              max_instances=max_instances, min_area=min_area, keep_mask_logits=keep_mask_logits)
        finished = self.clock(started)
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

    def segment_batch(self, images: Iterable[Any], prompts: str | Sequence[str] | None = None, *,
                      batch_size: int = 4, threshold: float = 0.5, mask_threshold: float = 0.5,
                      max_instances: int | None = None, min_area: int = 0,
                      progress: bool = False) -> Iterator[BatchItem]:
        """A `BatchItem` per image in input order (see `Engine.segment_batch`)."""
        check_thresholds(threshold, mask_threshold)
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, not {batch_size}")
        options = dict(threshold=threshold, mask_threshold=mask_threshold, max_instances=max_instances,
                       min_area=min_area)
        total = len(images) if hasattr(images, "__len__") else None
        bar = progress_bar(total, enabled=progress)
        try:
            read = lambda chunk: self._read_chunk(chunk, prompts)  # noqa: E731
            for chunk in read_ahead(chunks(enumerate(images), batch_size), read):
                yield from self._segment_chunk(chunk, options, bar)
        finally:
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
                    prepared = replace(prepared, pixel_values=self.pixel_values(prepared.image))
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
        encode_ms = self.clock(started) * 1e3 / max(1, len(good))
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

    def _segment_images(self, jobs, options) -> Iterator[Result | LitetextError]:
        """Stages 3 to 5 for several images' (features, prompts), yielding a result or the error per job.

        When `batched`, all the jobs' prompts share one decoder call (`_decode_images`); otherwise each job
        runs on its own, lazily, so only one image's decoder outputs are held at a time.
        """
        if not self.batched or len(jobs) < 2:
            for features, prompts in jobs:
                yield attempt(self.segment_features, features, prompts, **options)
            return
        started = time.perf_counter()
        embedded = [attempt(self.encode_text, prompts) for _, prompts in jobs]
        ready = [(features, e) for (features, _), e in zip(jobs, embedded) if not isinstance(e, LitetextError)]
        encoded_text = self.clock(started)
        outputs = iter(self._decode_images(ready))
        decoded = self.clock(started)
        share = 1e3 / max(1, len(ready))
        for (features, _), embeddings in zip(jobs, embedded):
            if isinstance(embeddings, LitetextError):
                yield embeddings
                continue
            began = time.perf_counter()
            result = self._finish(next(outputs), embeddings, features, **options)
            result.timings = Timings(encode_text_ms=encoded_text * share, decode_ms=(decoded - encoded_text) * share,
                                     postprocess_ms=self.clock(began) * 1e3)
            yield result

    def clock(self, since: float) -> float:
        """Seconds since `since`, after the device has finished its queued work."""
        self.runtime.synchronize()
        return time.perf_counter() - since


def _split_pair(item: Any) -> tuple[Any, Any]:
    if isinstance(item, tuple) and len(item) == 2:
        return item
    raise InputError(f"{describe_source(item)}: with prompts=None each item must be an (image, prompts) pair")


def _runs(pairs: Sequence[tuple[ImageFeatures, TextEmbedding]]) -> list[tuple[ImageFeatures, list[TextEmbedding]]]:
    """Consecutive (features, embedding) pairs of the same image, gathered as (features, embeddings)."""
    runs: list[tuple[ImageFeatures, list[TextEmbedding]]] = []
    for features, embedding in pairs:
        if runs and runs[-1][0] is features:
            runs[-1][1].append(embedding)
        else:
            runs.append((features, [embedding]))
    return runs
