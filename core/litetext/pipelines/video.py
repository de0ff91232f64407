"""The video pipeline: text-prompted tracking through a video, transformers' `Sam3VideoModel` on the image and
clicks pipelines' own modules.

The video model is assembled from what the engine already holds — its detector (LiteText or SAM3), its
tracker's neck — plus the checkpoint's video tracker (memory attention and encoder), so every frame has one
ViT pass for detector and tracker, and text embeddings come from the engine's text cache. Frames stream in one
at a time; the session's state is pruned to what later frames read, so memory stays bounded on long videos.
Per-frame results equal transformers' own `Sam3VideoProcessor` session flow on the same checkpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, InvalidVideoError, ModelError
from ..models.checkpoints import quiet_loading
from ..models.configs import with_image_size
from ..result import Result
from ..videos import VideoSource, open_video
from .batching import progress_bar
from .clicks import ClickPipeline
from .image import ImagePipeline


@dataclass(frozen=True)
class TrackedFrame:
    """One frame of a tracked video: its index and a `Result` whose instances carry a stable `object_ids` entry
    and the prompt that found them (ordered by object id)."""

    index: int
    result: Result


class LocalKernels:
    """A local stand-in for the hub kernel (`kernels-community/cv-utils`) that `Sam3VideoModel` fetches for
    detection NMS and for hole filling and sprinkle removal. Offline it cannot be fetched, and transformers then
    silently skips all three, which leaves duplicate tracks; this does the same arithmetic as SAM3's CPU code:
    greedy NMS over the IoU matrix and 8-connected components (OpenCV)."""

    def generic_nms(self, ious, scores, iou_threshold: float, use_iou_matrix: bool = True):
        """Indices (int64) kept by greedy NMS: the best score first, dropping those overlapping a kept one by
        more than `iou_threshold`."""
        import torch

        overlaps = ious.float().cpu().numpy()
        order = np.argsort(-scores.float().cpu().numpy(), kind="stable")
        kept = []
        while order.size:
            best = int(order[0])
            kept.append(best)
            order = order[1:][overlaps[best, order[1:]] <= iou_threshold]
        return torch.tensor(kept, dtype=torch.int64, device=scores.device)

    def cc_2d(self, masks, get_counts: bool = True):
        """Connected components of (N, 1, H, W) uint8 masks: per pixel its component's label and area (0 on
        the background)."""
        import cv2
        import torch

        source = masks.cpu().numpy()
        labels = np.zeros(source.shape, dtype=np.int32)
        counts = np.zeros(source.shape, dtype=np.int32)
        for n in range(source.shape[0]):
            count, label, stats, _ = cv2.connectedComponentsWithStats(source[n, 0], connectivity=8)
            areas = stats[:, cv2.CC_STAT_AREA].astype(np.int32)
            areas[0] = 0
            labels[n, 0] = label
            counts[n, 0] = areas[label]
        return torch.from_numpy(labels).to(masks.device), torch.from_numpy(counts).to(masks.device)


def install_local_kernels() -> bool:
    """Give transformers' video model the local NMS and connected components when its hub kernel is not loaded
    (never replacing one that is); returns whether the local ones are in use."""
    from transformers.models.sam3_video import modeling_sam3_video

    if not modeling_sam3_video.cv_utils_kernel:  # None (not tried yet) or False (failed): use ours
        modeling_sam3_video.cv_utils_kernel = LocalKernels()
    return isinstance(modeling_sam3_video.cv_utils_kernel, LocalKernels)


@dataclass(frozen=True)
class VideoTrackerWeights:
    """The parts of `Sam3VideoModel` the image and clicks pipelines lack, given directly rather than read from a
    checkpoint: its `Sam3VideoConfig` and a `Sam3TrackerVideoModel` without vision encoder (memory attention and
    encoder; the bench's random full-size ones)."""

    config: Any
    model: Any


class VideoPipeline:
    """`Sam3VideoModel` built around the image pipeline's detector and the clicks pipeline's tracker, with the
    video tracker from `checkpoint` (or `weights`). One per engine, made on first use; `session` is the latest
    tracking session, for inspection (`state_bytes`)."""

    def __init__(self, images: ImagePipeline, clicks: ClickPipeline, *, checkpoint: str = "",
                 weights: VideoTrackerWeights | None = None):
        import torch
        from transformers import AutoConfig, Sam3TrackerVideoModel, Sam3VideoModel, Sam3VideoProcessor
        from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

        self.images = images
        runtime = images.runtime
        image_size = images.processor.image_processor.size["height"]
        if weights is None:
            with quiet_loading(checkpoint):
                config = AutoConfig.from_pretrained(checkpoint)
                if image_size != config.tracker_config.image_size:  # the resolution lever: the tracker follows it
                    config = with_image_size(config, image_size)
                # The memory attention and encoder the image tracker lacks; the ViT stays the detector's.
                video_tracker = Sam3TrackerVideoModel.from_pretrained(checkpoint, config=config,
                                                                      remove_vision_encoder=True,
                                                                      dtype=runtime.dtype, use_safetensors=True)
        else:
            config, video_tracker = weights.config, weights.model
            if image_size != config.tracker_config.image_size:
                raise ModelError(f"the video tracker given is built for {config.tracker_config.image_size} px, and "
                                 f"this engine runs at image_size={image_size}")
        with torch.device("meta"):  # every submodule is replaced below: allocate nothing
            model = Sam3VideoModel(config)
        model.detector_model = runtime.model
        model.tracker_model = video_tracker.to(runtime.device).eval()
        model.tracker_neck = clicks.model.vision_encoder.neck
        self.model = model.eval()
        processor = images.processor
        size = dict(processor.image_processor.size)
        self.processor = Sam3VideoProcessor(
            image_processor=processor.image_processor, tokenizer=processor.tokenizer,
            video_processor=Sam2VideoVideoProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3))
        tracker_config = config.tracker_config
        #: Frames of non-conditioning outputs the tracker reads back (memories and object pointers).
        self.memory_window = max(tracker_config.num_maskmem, tracker_config.max_object_pointers_in_encoder)
        self.max_conditioning_frames = tracker_config.max_cond_frame_num
        self.defaults = {"score_threshold_detection": model.score_threshold_detection,
                         "new_det_thresh": model.new_det_thresh, "max_num_objects": model.max_num_objects}
        self._lock = threading.Lock()
        self.session = None
        _quiet_object_cap_warnings()

    def track(self, video: Any, prompts: Sequence[str], *, threshold: float | None = None,
              new_object_threshold: float | None = None, max_objects: int | None = None, start_frame: int = 0,
              max_frames: int | None = None, mode: str = "auto", local_kernels: bool = True,
              progress: bool = False) -> Iterator[TrackedFrame]:
        """`TrackedFrame`s of `video` (see `Engine.track`; its settings are checked there). A video that breaks
        part-way yields every frame tracked before the break, held ones included, then raises."""
        import torch

        source = open_video(video)
        whole = mode == "video" or (mode == "auto" and source.frame_count is not None)
        if whole and source.frame_count is None:
            raise InvalidVideoError(f"{source.name}: mode='video' needs the frame count; use mode='stream'")
        if source.frame_count and start_frame >= source.frame_count:  # (no frames at all: frames() says so)
            raise InputError(f"start_frame {start_frame} is past the end of {source.name}, which has "
                             f"{source.frame_count} frames (0 to {source.frame_count - 1})")
        embeddings = self.images.encode_text(prompts)
        settings = {"score_threshold_detection": threshold, "new_det_thresh": new_object_threshold,
                    "max_num_objects": max_objects}
        settings = {name: self.defaults[name] if value is None else value for name, value in settings.items()}
        if local_kernels:
            install_local_kernels()
        session = self._session(embeddings, source.frame_count if whole else None)
        self.session = session  # the latest session, for inspection (`state_bytes`)
        end = None
        if whole:
            end = source.frame_count - 1 if max_frames is None else min(start_frame + max_frames - 1,
                                                                         source.frame_count - 1)
        last = None if max_frames is None else start_frame + max_frames - 1
        held: list[tuple[int, Any, tuple[int, int]]] = []  # whole-video mode: outputs held for hotstart
        bar = progress_bar(_frames_to_track(source, start_frame, max_frames), enabled=progress, unit="frame",
                           desc=f"tracking {source.name}")
        tracked = 0
        try:
            for frame in source.frames():
                if frame.index < start_frame:
                    continue
                if last is not None and frame.index > last:
                    break
                size = (frame.image.height, frame.image.width)
                pixel_values = self.images.pixel_values(frame.image)[0]
                with self.images.runtime.lock, self._lock, torch.inference_mode():
                    for name, value in settings.items():
                        setattr(self.model, name, value)
                    if whole:
                        session.processed_frames[frame.index] = pixel_values.to(session.video_storage_device,
                                                                                 session.dtype)
                        output = self.model(inference_session=session, frame_idx=frame.index)
                    else:
                        output = self.model(inference_session=session, frame=pixel_values, frame_idx=frame.index)
                    self._prune(session, frame.index)
                tracked += 1
                bar.update(1)
                if not whole:
                    yield TrackedFrame(frame.index, self._result(session, output, size, embeddings))
                    continue
                held.append((frame.index, output, size))
                delay = self.model.hotstart_delay
                if delay > 0:  # as propagate_in_video_iterator: hide what hotstart removed, hold `delay` frames
                    session.hotstart_removed_obj_ids.update(output.removed_obj_ids)
                ready = len(held) if delay <= 0 or frame.index == end else max(0, len(held) - delay + 1)
                for index, out, out_size in held[:ready]:
                    yield TrackedFrame(index, self._result(session, out, out_size, embeddings))
                del held[:ready]
        except Exception:  # the video broke part-way: what was tracked is still given, then the error
            for index, out, out_size in held:
                yield TrackedFrame(index, self._result(session, out, out_size, embeddings))
            raise
        finally:
            bar.close()
        for index, out, out_size in held:  # the container held fewer frames than it said
            yield TrackedFrame(index, self._result(session, out, out_size, embeddings))
        if tracked == 0:
            raise InputError(f"start_frame {start_frame} is past the end of {source.name}: no frame was tracked")

    def _session(self, embeddings, frame_count: int | None):
        from transformers.modeling_outputs import BaseModelOutputWithPooling
        from transformers.models.sam3_video.modeling_sam3_video import Sam3VideoInferenceSession

        runtime = self.images.runtime
        session = Sam3VideoInferenceSession(inference_device=runtime.device, inference_state_device=runtime.device,
                                            video_storage_device=runtime.device, dtype=runtime.vision_dtype)
        if frame_count is not None:
            # The whole-video flow reads the video's length; frames are filled in as they are decoded.
            session.processed_frames = dict.fromkeys(range(frame_count))
        for embedding in embeddings:
            prompt_id = session.add_prompt(embedding.prompt)
            session.prompt_embeddings[prompt_id] = BaseModelOutputWithPooling(pooler_output=embedding.features)
            session.prompt_attention_masks[prompt_id] = embedding.attention_mask
        return session

    def _result(self, session, output, size: tuple[int, int], embeddings) -> Result:
        processed = self.processor.postprocess_outputs(session, output, original_sizes=[list(size)])
        prompts = [e.prompt for e in embeddings]
        object_ids = processed["object_ids"].numpy().astype(np.int64)
        index_of = {obj_id: prompts.index(text) for text, ids in processed["prompt_to_obj_ids"].items()
                    for obj_id in ids}
        height, width = size
        return Result(
            prompts=prompts,
            prompt_indices=np.array([index_of[int(i)] for i in object_ids], dtype=np.int64),
            scores=processed["scores"].float().numpy().reshape(-1),
            boxes=processed["boxes"].float().cpu().numpy().reshape(-1, 4),
            masks=processed["masks"].cpu().numpy().astype(bool).reshape(-1, height, width),
            image_size=(width, height),
            object_ids=object_ids,
        )

    def _prune(self, session, frame_index: int) -> None:
        """Drop what no later frame reads: this frame's pixels (the key stays: the tracker counts frames),
        full-resolution masks, non-conditioning outputs and mask inputs older than the memory window, and the
        heavy tensors of conditioning frames that can no longer be selected (their object pointers stay)."""
        if session.processed_frames is not None and frame_index in session.processed_frames:
            session.processed_frames[frame_index] = None
        oldest = frame_index - self.memory_window
        for obj_idx, outputs in session.output_dict_per_obj.items():
            for out in list(outputs["cond_frame_outputs"].values()) + list(outputs["non_cond_frame_outputs"].values()):
                out.pop("high_res_masks", None)
            for frame in [f for f in outputs["non_cond_frame_outputs"] if f < oldest]:
                del outputs["non_cond_frame_outputs"][frame]
            conditioning = sorted(outputs["cond_frame_outputs"])
            for frame in conditioning[: max(0, len(conditioning) - self.max_conditioning_frames)]:
                if frame < oldest:
                    out = outputs["cond_frame_outputs"][frame]
                    for key in ("maskmem_features", "maskmem_pos_enc", "pred_masks"):
                        out.pop(key, None)
            inputs = session.mask_inputs_per_obj.get(obj_idx, {})
            for frame in [f for f in inputs if f < oldest]:
                del inputs[frame]


def _quiet_object_cap_warnings() -> None:
    """transformers logs a warning on every frame where `max_objects` stops new tracks; the cap is the caller's
    choice, so those lines are dropped (once per process)."""
    import logging

    logger = logging.getLogger("transformers.models.sam3_video.modeling_sam3_video")
    if not any(isinstance(f, _ObjectCapFilter) for f in logger.filters):
        logger.addFilter(_ObjectCapFilter())


class _ObjectCapFilter:
    def filter(self, record) -> bool:
        return "max_num_objects" not in record.getMessage()


def state_bytes(session) -> int:
    """Bytes of the tensors a tracking session holds (frames, per-object outputs, inputs): what pruning bounds."""
    import torch

    seen: set[int] = set()

    def size(value) -> int:
        if isinstance(value, torch.Tensor):
            if id(value) in seen:
                return 0
            seen.add(id(value))
            return value.numel() * value.element_size()
        if isinstance(value, dict):
            return sum(size(v) for v in value.values())
        if isinstance(value, (list, tuple)):
            return sum(size(v) for v in value)
        return 0

    return sum(size(part) for part in (session.processed_frames, session.output_dict_per_obj,
                                       session.mask_inputs_per_obj, session.point_inputs_per_obj))


def _frames_to_track(source: VideoSource, start: int, max_frames: int | None) -> int | None:
    """How many frames a run will track, where the video's length is known."""
    if source.frame_count is None:
        return None
    total = max(0, source.frame_count - start)
    return total if max_frames is None else min(total, max_frames)
