"""The engine: one face over a runtime and the image, clicks and video pipelines.

`Engine` holds the caches every adapter in the process shares (`litetext.load` returns one engine per model,
device and dtype) and delegates: the model calls to its runtime (`litetext.runtime`), the work to the pipelines
(`litetext.pipelines`). It never asks which runtime it holds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .cache import DEFAULT_IMAGE_CACHE_BYTES_CPU, DEFAULT_IMAGE_CACHE_BYTES_GPU, DEFAULT_TEXT_CACHE_BYTES, LRUCache
from .errors import NoTrackerError
from .images import DEFAULT_MAX_PIXELS, ImageInput, PreparedImage
from .pipelines.clicks import ClickPipeline
from .pipelines.image import BatchItem, DecodeOutput, ImageFeatures, ImagePipeline, TextEmbedding
from .pipelines.video import TrackedFrame, VideoPipeline, VideoTrackerWeights
from .prompts import check_track_settings, normalize_prompts
from .result import Result
from .runtime import Runtime, as_runtime

__all__ = ["BatchItem", "Engine", "EngineInfo", "ImageFeatures", "TextEmbedding", "DecodeOutput"]


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

    Get one with `litetext.load(...)`; build one directly only to wrap an already-loaded model (a transformers
    model, or a `litetext.runtime.Runtime` such as an `OnnxSam3`). Thread-safe: model calls are serialised per
    runtime, caches have their own locks.

    `batched` (default: on for GPUs, off on CPU) sends all prompts of an image through one decoder call and
    several images through one vision-encoder call. Off, every call has batch size 1, exactly as the plain
    transformers pipeline runs, so results are bit-identical to it; on, they are equal up to float rounding
    (batch size changes the kernels' summation order), which is where GPUs gain speed. A CPU gains nothing
    from batching, so it keeps exactness. `max_decode_batch` caps how many (image, prompt) pairs share one
    decoder call, which bounds the decoder's activation memory when many prompts meet many images.
    """

    def __init__(self, model: Any, processor: Any, *, name: str = "custom", checkpoint: str = "",
                 image_cache_bytes: int | None = None, text_cache_bytes: int | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS, batched: bool | None = None, tracker: Any = None,
                 tracker_checkpoint: str = "", video_tracker: VideoTrackerWeights | None = None):
        self.runtime: Runtime = as_runtime(model)
        self.processor = processor
        on_gpu = self.runtime.device.type != "cpu"
        if image_cache_bytes is None:
            image_cache_bytes = DEFAULT_IMAGE_CACHE_BYTES_GPU if on_gpu else DEFAULT_IMAGE_CACHE_BYTES_CPU
        #: The tracker pipeline (`segment_object`): SAM3's tracker sharing this model's ViT, or None.
        self.tracker = None if tracker is None else ClickPipeline(tracker, processor.image_processor)
        #: Where the tracker came from: the video pipeline (`track`) loads its memory modules from there.
        self.tracker_checkpoint = tracker_checkpoint
        self.images = ImagePipeline(
            self.runtime, processor, max_pixels=max_pixels, batched=on_gpu if batched is None else batched,
            image_cache=LRUCache(image_cache_bytes, sizeof=lambda f: f.nbytes),
            text_cache=LRUCache(DEFAULT_TEXT_CACHE_BYTES if text_cache_bytes is None else text_cache_bytes,
                                sizeof=lambda t: t.nbytes),
            embed_for_tracker=None if self.tracker is None else self.tracker.embed)
        self._video_weights = video_tracker
        self._video: VideoPipeline | None = None
        self._video_lock = threading.Lock()
        runtime = self.runtime
        self.info = EngineInfo(
            model=name, checkpoint=checkpoint,
            family="litetext" if runtime.config.model_type == "sam3_lite_text" else "sam3",
            device=str(runtime.device), dtype=runtime.precision,
            text_encoder_params_m=round(runtime.text_encoder_params / 1e6, 2),
            image_size=int(processor.image_processor.size["height"]), has_tracker=self.tracker is not None,
            backend=runtime.name)

    def __repr__(self) -> str:
        return f"Engine(model={self.info.model!r}, device={self.info.device!r}, dtype={self.info.dtype!r})"

    # What the engine runs, read from the runtime and the image pipeline ------------------------------------------

    model = property(lambda self: self.runtime.model, doc="The model: a transformers model, or the ONNX export.")
    device = property(lambda self: self.runtime.device, doc="The torch device the model runs on.")
    dtype = property(lambda self: self.runtime.dtype, doc="The dtype of the text encoder and decoder.")
    vision_dtype = property(lambda self: self.runtime.vision_dtype, doc="The dtype of the vision encoder.")
    compiled = property(lambda self: self.runtime.compiled, doc="Whether `compile()` ran.")
    image_cache = property(lambda self: self.images.image_cache, doc="Vision features by image digest.")
    text_cache = property(lambda self: self.images.text_cache, doc="Text embeddings by prompt.")
    max_pixels = property(lambda self: self.images.max_pixels, doc="The largest image accepted, in pixels.")

    @property
    def batched(self) -> bool:
        """Whether prompts and images share model calls (see the class docstring)."""
        return self.images.batched

    @batched.setter
    def batched(self, value: bool) -> None:
        self.images.batched = value

    @property
    def max_decode_batch(self) -> int:
        """Most (image, prompt) pairs in one batched decoder call."""
        return self.images.max_decode_batch

    @max_decode_batch.setter
    def max_decode_batch(self, value: int) -> None:
        self.images.max_decode_batch = value

    @property
    def has_tracker(self) -> bool:
        """Whether this engine answers clicks and boxes on one object (`segment_object`)."""
        return self.tracker is not None

    def compile(self, mode: str | None = None) -> Engine:
        """Compile the decoder stages with `torch.compile` (opt-in; returns the engine).

        The decoder runs about a thousand small kernels per call, so on GPUs it is bound by launch overhead;
        compilation fuses them (`mode="reduce-overhead"` adds CUDA graphs). The first calls pay the compile
        time. Results stay equal to the reference up to float rounding, as with batching. Leave it off
        where processes are short-lived or compilation is unavailable (ZeroGPU Spaces). A runtime that
        cannot compile (ONNX Runtime optimises its graphs itself) raises `ModelError`.
        """
        self.runtime.compile(mode)
        return self

    # The stages, one method each ------------------------------------------------------------------------------

    def prepare_image(self, image: ImageInput | PreparedImage) -> PreparedImage:
        """Validate and decode an image input into RGB and compute its content digest."""
        return self.images.prepare_image(image)

    def encode_image(self, image: ImageInput | PreparedImage) -> ImageFeatures:
        """Vision features of one image, from the cache when its pixels were seen before."""
        return self.images.encode_images([image])[0]

    def encode_images(self, images: Sequence[ImageInput | PreparedImage]) -> list[ImageFeatures]:
        """Vision features of several images; cache misses go through the vision encoder as one batch."""
        return self.images.encode_images(images)

    def embed_image(self, image: ImageInput | PreparedImage) -> np.ndarray:
        """A global embedding of the image for similarity search: the detector's FPN features at the ViT's
        stride (the coarsest level the decoder reads, 256 channels at full size) averaged over all positions,
        as float32. From the shared image cache, so segmenting the same image afterwards runs no vision encoder.
        It describes what the detector sees (layout, textures, objects), not a CLIP-style semantic embedding."""
        return self.images.embed_image(image)

    def encode_text(self, prompts: Sequence[str]) -> list[TextEmbedding]:
        """Projected text embeddings per prompt, each computed once and then served from the cache."""
        return self.images.encode_text(prompts)

    def decode(self, features: ImageFeatures, embeddings: Sequence[TextEmbedding], *,
               boxes: Sequence[Sequence[float]] | None = None,
               box_labels: Sequence[int] | None = None) -> DecodeOutput:
        """Run the DETR encoder/decoder and mask decoder for every prompt on one image.

        When `batched`, the K prompts go through one call (up to `max_decode_batch` at a time) with the image's
        features broadcast to K (a view, not a copy); otherwise one call per prompt. Exemplar boxes apply to
        every prompt.
        """
        return self.images.decode(features, embeddings, boxes=boxes, box_labels=box_labels)

    def postprocess(self, outputs: Any, prompts: Sequence[str], original_size: tuple[int, int], *,
                    threshold: float = 0.5, mask_threshold: float = 0.5, keep_mask_logits: bool = False) -> Result:
        """Scores, pixel boxes and full-resolution masks of the instances scoring above `threshold`.

        Same arithmetic as `Sam3Processor.post_process_instance_segmentation`; only kept instances are
        upsampled, in chunks, so memory stays bounded on large images.
        """
        return self.images.postprocess(outputs, prompts, original_size, threshold=threshold,
                                       mask_threshold=mask_threshold, keep_mask_logits=keep_mask_logits)

    # Whole requests ---------------------------------------------------------------------------------------------

    def segment(self, image: ImageInput | PreparedImage, prompts: str | Sequence[str] | None, *,
                boxes: Sequence[Sequence[float]] | None = None, box_labels: Sequence[int] | None = None,
                threshold: float = 0.5, mask_threshold: float = 0.5, max_instances: int | None = None,
                min_area: int = 0, keep_mask_logits: bool = False) -> Result:
        """Find every instance of each prompt (a noun phrase, or a list of them) in `image`.

        `boxes` are optional exemplar boxes in pixel xyxy, with `box_labels` 1 (positive) or 0 (negative);
        with boxes and no prompts the query is visual only. `keep_mask_logits` keeps the low-resolution
        mask logits on the result so `Result.with_mask_threshold` can re-binarise without the model.
        Returns a `Result` at the image's size.
        """
        return self.images.segment(image, prompts, boxes=boxes, box_labels=box_labels, threshold=threshold,
                                   mask_threshold=mask_threshold, max_instances=max_instances, min_area=min_area,
                                   keep_mask_logits=keep_mask_logits)

    def segment_batch(self, images: Iterable[Any], prompts: str | Sequence[str] | None = None, *,
                      batch_size: int = 4, threshold: float = 0.5, mask_threshold: float = 0.5,
                      max_instances: int | None = None, min_area: int = 0,
                      progress: bool = False) -> Iterator[BatchItem]:
        """Segment many images, yielding a `BatchItem` per image in input order.

        With `prompts` given, every image gets them; with `prompts=None` each item of `images` is an
        `(image, prompts)` pair. Images go through the vision encoder `batch_size` at a time while the next
        batch is read in the background. A bad image or prompt yields an item with `error` set; the rest go on.
        """
        return self.images.segment_batch(images, prompts, batch_size=batch_size, threshold=threshold,
                                         mask_threshold=mask_threshold, max_instances=max_instances,
                                         min_area=min_area, progress=progress)

    def segment_object(self, image: ImageInput | PreparedImage, *, points: Sequence[Sequence[float]] | None = None,
                       point_labels: Sequence[int] | None = None, box: Sequence[float] | None = None,
                       mask_input: Any = None, instance: Any = None, multimask: bool = False,
                       label: str = "object") -> Result:
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
        if self.tracker is None:
            raise NoTrackerError()
        return self.tracker.segment_object(self.images, image, points=points, point_labels=point_labels, box=box,
                                           mask_input=mask_input, instance=instance, multimask=multimask,
                                           label=label)

    def track(self, video: Any, prompts: str | Sequence[str], *, threshold: float | None = None,
              new_object_threshold: float | None = None, max_objects: int | None = None, start_frame: int = 0,
              max_frames: int | None = None, mode: str = "auto", local_kernels: bool = True,
              progress: bool = False) -> Iterator[TrackedFrame]:
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
        `InvalidVideoError`, `PromptError`, `InputError` or `NoTrackerError`. A video that breaks part-way
        yields every frame tracked before the break (in "video" mode too), then raises its `InvalidVideoError`.
        `TrackOptions(...).as_kwargs()` gives these settings as one value.
        """
        prompts = normalize_prompts(prompts)
        settings = check_track_settings(threshold=threshold, new_object_threshold=new_object_threshold,
                                        max_objects=max_objects, start_frame=start_frame, max_frames=max_frames,
                                        mode=mode)
        return self.video_pipeline().track(video, prompts, **settings, local_kernels=local_kernels,
                                           progress=progress)

    def video_pipeline(self) -> VideoPipeline:
        """The video pipeline (made on first use); raises `NoTrackerError` when this engine cannot track."""
        if self.tracker is None:
            raise NoTrackerError()
        self.tracker.runtime.check_video()
        if self._video_weights is None and not self.tracker_checkpoint:
            raise NoTrackerError("this engine's tracker was built in memory without a checkpoint; tracking needs "
                                 "the checkpoint's video tracker: load one with litetext.load(..., tracker=...)")
        with self._video_lock:
            if self._video is None:
                self._video = VideoPipeline(self.images, self.tracker, checkpoint=self.tracker_checkpoint,
                                            weights=self._video_weights)
            return self._video
