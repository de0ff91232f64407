"""Export SAM3-LiteText (or SAM3) as ONNX graphs: vision encoder, text encoder, and the prompt-dependent decoder.

The graphs mirror the engine's stages, so the ONNX backend answers the same three calls the engine makes of a
transformers model:

- `vision_encoder`: pixel values (any batch) -> the three FPN levels SAM3 decodes from, and their position
  encodings (batch 1: they depend only on the image size);
- `text_encoder`: token ids and attention mask (any batch) -> projected text features, usable on their own
  with another SAM3 runtime (the part LiteText changed);
- `decoder`: one image's FPN levels and position encodings (batch 1) with K prompts' text features (K
  dynamic), broadcast inside the graph, so an image's features are never copied per prompt;
- `decoder_with_boxes`: the same for one prompt with exemplar boxes (any count);
- with SAM3's tracker (a checkpoint that has one, or `tracker=` a composition): `tracker_decoder` and
  `tracker_decoder_multimask`, its prompt encoder and mask decoder for one object prompt (clicks, a box, an
  earlier mask), one mask or three; the vision encoder then also outputs the tracker's image embeddings.

Every graph is traced by transformers' own code (`torch.onnx.export`, dynamo) with attention routed to ONNX
Runtime's fused MultiHeadAttention (see `attention.py`), and weights go to external data files beside it. The
manifest records the SHA-256 of every file written (`manifest.seal`), so later damage is caught at load.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..models.atomic_dir import check_target, link_or_copy, move_into_place, staging_dir
from ..models.stages import LEVELS, DecoderStage, TextEncoderStage, VisionEncoderStage
from ..prompts import TEXT_LENGTH  # tokens per prompt, as Sam3Processor pads them
from .manifest import (
    DECODER,
    DECODER_WITH_BOXES,
    TEXT_ENCODER,
    TRACKER_DECODER,
    TRACKER_DECODER_MULTIMASK,
    TRACKER_EMBEDDINGS,
    VISION_ENCODER,
    GraphSpec,
    InvalidExportError,
    Manifest,
    TensorSpec,
    is_export,
    read_manifest,
    seal,
)

OPSET = 18
FEATURE_NAMES = tuple(f"fpn_hidden_states_{i}" for i in range(LEVELS))
POSITION_NAMES = tuple(f"fpn_position_encoding_{i}" for i in range(LEVELS))
DECODER_OUTPUTS = ("pred_logits", "pred_boxes", "pred_masks", "presence_logits")
TRACKER_INPUTS = ("image_embedding_0", "image_embedding_1", "image_embedding_2", "input_points", "input_labels",
                  "mask_input", "has_mask_input")
TRACKER_OUTPUTS = ("iou_scores", "pred_masks", "object_score_logits")
QUANTIZATIONS = ("int8",)


def export_onnx(
    model: str | os.PathLike,
    out: str | os.PathLike,
    *,
    quantize: str | None = None,
    image_size: int | None = None,
    tracker: str | os.PathLike | bool | None = None,
    log: Callable[[str], None] | None = None,
) -> Manifest:
    """Export `model` (an alias, hub id or local checkpoint directory) into the directory `out`.

    `quantize="int8"` quantises the vision encoder's matrix products to int8 (ONNX Runtime's dynamic
    quantisation): faster on CPUs, not exact. `image_size` exports the vision encoder for that input size (the
    resolution lever; inexact; no tracker). `tracker` is `litetext.load`'s: by default the checkpoint's own tracker
    is exported when it has one (clicks on ONNX Runtime), `False` leaves it out, a name composes that checkpoint's
    tracker with `model`. Returns the manifest written beside the graphs.
    """
    import torch

    from ..models.building import load_model_and_processor, tracker_for
    from ..models.checkpoints import resolve_checkpoint

    name = os.fspath(model)
    if image_size is not None and tracker not in (None, False):
        raise ModelError("image_size is for text and box prompts; clicks need the checkpoint's own size: export "
                         "without image_size for a tracker")
    _check_target(Path(os.fspath(out)).expanduser())  # before minutes of loading
    checkpoint = resolve_checkpoint(name)
    network, processor = load_model_and_processor(checkpoint, "cpu", torch.float32, image_size=image_size)
    tracker_model = None
    if image_size is None:
        source = tracker if isinstance(tracker, bool) or tracker is None else os.fspath(tracker)
        tracker_model, _ = tracker_for(network, checkpoint, source, "cpu", torch.float32)
    return export_model(network, processor, out, name=name, checkpoint=checkpoint, quantize=quantize,
                        tracker=tracker_model, log=log)


def export_model(
    model: Any,
    processor: Any,
    out: str | os.PathLike,
    *,
    name: str = "custom",
    checkpoint: str = "",
    quantize: str | None = None,
    tracker: Any = None,
    log: Callable[[str], None] | None = None,
) -> Manifest:
    """Export an already-loaded fp32 CPU model and its processor into `out` (see `export_onnx`), with the
    tracker graphs when `tracker` (a `Sam3TrackerModel` sharing `model`'s ViT) is given.

    The export is written beside `out` and moved into place when complete, so an interrupted export never
    leaves a half-written directory that looks whole.
    """
    import torch

    say = log or (lambda line: None)
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ModelError(f"unknown quantization {quantize!r}; use one of {', '.join(QUANTIZATIONS)}")
    parameters = [*model.parameters(), *(() if tracker is None else tracker.parameters())]
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in parameters):
        raise ModelError("ONNX export needs the model in float32 on the CPU (load it with device='cpu', dtype='fp32')")
    out = Path(os.fspath(out)).expanduser()
    _check_target(out)
    staging = staging_dir(out)
    fp32 = staging_dir(out, "fp32") if quantize else staging
    try:
        graphs = {}
        for role, stage in _stages(model, processor, tracker).items():
            started = time.perf_counter()
            say(f"exporting the {role.replace('_', ' ')} ...")
            graphs[role] = _export_graph((model, tracker), stage, fp32, role)
            say(f"  {role}: {time.perf_counter() - started:.0f} s")
        manifest = _manifest(model, processor, graphs, name=name, checkpoint=checkpoint)
        model.config.save_pretrained(fp32)
        processor.save_pretrained(fp32)
        manifest = seal(manifest, fp32)
        if quantize:
            say(f"quantizing the vision encoder to {quantize} ...")
            manifest = _quantized_copy(fp32, staging, manifest)
        move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(fp32, ignore_errors=True)
    return manifest


def quantize_export(source: str | os.PathLike, out: str | os.PathLike, *, quantize: str = "int8") -> Manifest:
    """Write a copy of the fp32 export `source` into `out` with the vision encoder quantised (`int8`).

    `source` is checked first, contents included, so a damaged export is never copied under fresh hashes.
    """
    if quantize not in QUANTIZATIONS:
        raise ModelError(f"unknown quantization {quantize!r}; use one of {', '.join(QUANTIZATIONS)}")
    source = Path(os.fspath(source)).expanduser()
    manifest = read_manifest(source)
    if manifest.precision != "float32":
        raise InvalidExportError(f"{source} is already quantized ({manifest.precision}); quantize an fp32 export")
    out = Path(os.fspath(out)).expanduser()
    _check_target(out)
    staging = staging_dir(out)
    try:
        manifest = _quantized_copy(source, staging, manifest)
        move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


# The three stages with example inputs ----------------------------------------------------------------------


def _stages(model: Any, processor: Any,
            tracker: Any = None) -> dict[str, tuple[Any, tuple[Any, ...], dict[str, Any], tuple[str, ...]]]:
    """Per graph: (module, example inputs, dynamic shapes, output names). Examples need only the right shapes."""
    import torch

    size = int(processor.image_processor.size["height"])
    vision_config = model.config.vision_config
    side = size // vision_config.backbone_config.patch_size
    channels = vision_config.fpn_hidden_size
    sides = [int(side * scale) for scale in vision_config.scale_factors][:LEVELS]
    hidden = model.config.detr_encoder_config.hidden_size
    generator = torch.Generator().manual_seed(0)
    features = tuple(torch.randn(1, channels, s, s, generator=generator) for s in sides)
    positions = tuple(torch.randn(1, channels, s, s, generator=generator) for s in sides)
    # Two of each dynamic axis: an example of size 1 would be specialised to 1.
    pixels = torch.randn(2, 3, size, size, generator=generator)
    tokens = torch.randint(3, 40, (2, TEXT_LENGTH), generator=generator)
    mask = torch.ones(2, TEXT_LENGTH, dtype=torch.long)
    mask[:, 6:] = 0
    text = torch.randn(2, TEXT_LENGTH, hidden, generator=generator)
    boxes = torch.tensor([[[0.3, 0.3, 0.2, 0.2], [0.6, 0.5, 0.3, 0.2]]])
    labels = torch.tensor([[1, 0]])
    prompts = torch.export.Dim("prompts", min=1, max=1024)
    images = torch.export.Dim("images", min=1, max=1024)
    box_count = torch.export.Dim("boxes", min=1, max=256)
    fixed = dict.fromkeys(FEATURE_NAMES + POSITION_NAMES)
    stages = {
        VISION_ENCODER: (VisionEncoderStage(model), (pixels,), {"pixel_values": {0: images}},
                         FEATURE_NAMES + POSITION_NAMES),
        TEXT_ENCODER: (TextEncoderStage(model), (tokens, mask),
                       {"input_ids": {0: prompts}, "attention_mask": {0: prompts}}, ("text_features",)),
        DECODER: (DecoderStage(model), (*features, *positions, text, mask),
                  {**fixed, "text_features": {0: prompts}, "text_mask": {0: prompts}}, DECODER_OUTPUTS),
        # One prompt per call: the geometry encoder's trace specialises the prompt count.
        DECODER_WITH_BOXES: (DecoderStage(model), (*features, *positions, text[:1], mask[:1], boxes, labels),
                             {**fixed, "text_features": None, "text_mask": None, "input_boxes": {1: box_count},
                              "input_boxes_labels": {1: box_count}}, DECODER_OUTPUTS),
    }
    if tracker is not None:
        stages.update(_tracker_stages(model, tracker, pixels, generator))
    return stages


def _tracker_stages(model: Any, tracker: Any, pixels: Any, generator: Any) -> dict[str, tuple[Any, ...]]:
    """The vision encoder with the tracker's embeddings, and the tracker's two decoders (one mask, three)."""
    import torch

    from ..runtime.tracker import tracker_embeddings
    from .tracker_stages import TrackerDecoderStage, TrackerVisionEncoderStage

    side = tracker.prompt_encoder.image_embedding_size
    width = model.config.vision_config.backbone_config.hidden_size
    with torch.no_grad():  # example embeddings of the right shapes: the neck on a random ViT output
        embeddings = [e.contiguous() for e in tracker_embeddings(tracker, torch.randn(1, side[0] * side[1], width,
                                                                                          generator=generator))]
    points = torch.tensor([[[120.0, 300.0], [500.0, 410.0], [0.0, 0.0]]])  # a click, an exclusion, the padding
    labels = torch.tensor([[1, 0, -1]])
    mask = torch.randn(1, 1, *tracker.prompt_encoder.mask_input_size, generator=generator)
    count = torch.export.Dim("points", min=1, max=256)
    dynamic = {**dict.fromkeys(TRACKER_INPUTS), "input_points": {1: count}, "input_labels": {1: count}}
    example = (*embeddings, points, labels, mask, torch.ones(1))
    return {
        VISION_ENCODER: (TrackerVisionEncoderStage(model, tracker), (pixels,),
                         {"pixel_values": {0: torch.export.Dim("images", min=1, max=1024)}},
                         FEATURE_NAMES + POSITION_NAMES + TRACKER_EMBEDDINGS),
        TRACKER_DECODER: (TrackerDecoderStage(tracker, multimask=False), example, dynamic, TRACKER_OUTPUTS),
        TRACKER_DECODER_MULTIMASK: (TrackerDecoderStage(tracker, multimask=True), example, dynamic, TRACKER_OUTPUTS),
    }


# Export, manifest, quantization --------------------------------------------------------------------------------


def _export_graph(models: tuple[Any, ...], stage, directory: Path, role: str) -> GraphSpec:
    import contextlib
    import warnings

    import torch

    from .attention import exportable_attention, translation_table

    module, example, dynamic_shapes, output_names = stage
    path = directory / f"{role}.onnx"
    with contextlib.ExitStack() as attention, torch.no_grad(), warnings.catch_warnings():
        for model in models:
            if model is not None:
                attention.enter_context(exportable_attention(model))
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracing chatter is not the user's concern
        program = torch.onnx.export(module, example, dynamo=True, dynamic_shapes=dynamic_shapes,
                                    output_names=list(output_names), opset_version=OPSET,
                                    custom_translation_table=translation_table(), optimize=True, verbose=False)
    program.save(str(path), external_data=True)
    del program
    return _describe(path)


def _describe(path: Path, precision: str = "float32") -> GraphSpec:
    """The graph's inputs, outputs and files (with sizes), read back from what was written."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False)

    def spec(value) -> TensorSpec:
        tensor = value.type.tensor_type
        shape = tuple(d.dim_param or d.dim_value for d in tensor.shape.dim)
        return TensorSpec(value.name, shape, onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name)

    locations = {entry.value for init in graph.graph.initializer for entry in init.external_data
                 if entry.key == "location"}
    files = {name: (path.parent / name).stat().st_size for name in sorted({path.name, *locations})}
    return GraphSpec(file=path.name, inputs=tuple(spec(v) for v in graph.graph.input),
                     outputs=tuple(spec(v) for v in graph.graph.output), files=files, precision=precision)


def _manifest(model: Any, processor: Any, graphs: dict[str, GraphSpec], *, name: str, checkpoint: str) -> Manifest:
    import onnx
    import torch
    import transformers

    from ..version import __version__

    return Manifest(
        model=name, checkpoint=checkpoint, model_type=model.config.model_type, litetext_version=__version__,
        transformers_version=transformers.__version__, torch_version=torch.__version__, onnx_version=onnx.__version__,
        opset=OPSET, precision="float32", image_size=int(processor.image_processor.size["height"]),
        text_length=TEXT_LENGTH, text_encoder_params=sum(p.numel() for p in model.text_encoder.parameters()),
        graphs=graphs,
    )


def _quantized_copy(source: Path, target: Path, manifest: Manifest) -> Manifest:
    """Copy the fp32 export `source` into `target` (hard links where possible) with its vision encoder's
    MatMuls quantised to int8: ONNX Runtime's dynamic quantisation (int8 weights, activations quantised per
    call). Convolutions stay fp32: ONNX Runtime's ConvInteger is slower than its fp32 convolution on CPUs."""
    from dataclasses import replace

    from onnxruntime.quantization import QuantType, quantize_dynamic

    vision = manifest.graphs[VISION_ENCODER]
    for item in source.iterdir():
        if item.is_file() and item.name not in vision.files:
            link_or_copy(item, target / item.name)
    # The quantiser writes a shape-inferred copy beside the graph it reads, and leaves it there when it fails:
    # it reads a copy in a private folder of `target`, so the source export is never written to. (A copy, not a
    # hard link: ONNX refuses external data with several links.)
    unquantized = target / ".fp32-vision"
    unquantized.mkdir()
    for name in vision.files:
        shutil.copyfile(source / name, unquantized / name)
    quantized = target / vision.file
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # its advice to pre-process the graph concerns static quantisation
    try:
        quantize_dynamic(unquantized / vision.file, quantized, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"], use_external_data_format=True,
                         extra_options={"MatMulConstBOnly": True})
    finally:
        logging.disable(previous)
        shutil.rmtree(unquantized, ignore_errors=True)
    spec = _describe(quantized, precision="int8")
    for name in spec.files:  # the quantiser writes its data through a private temporary file (mode 600)
        (target / name).chmod(0o644)
    manifest = replace(manifest, precision="int8-vision", graphs={**manifest.graphs, VISION_ENCODER: spec})
    return seal(manifest, target)


def _check_target(out: Path) -> None:
    check_target(out, is_export, "litetext ONNX export")


# Exports in litetext's cache: made on first use, found again by name -------------------------------------------

#: Precisions an ONNX export holds, by the `dtype` names `litetext.load` accepts for the ONNX backend.
PRECISIONS = {"auto": None, "fp32": "float32", "float32": "float32", "int8-vision": "int8-vision",
              "int8": "int8-vision"}


def resolve_precision(dtype: Any) -> str | None:
    """The export precision a `dtype` asks for (None: whatever the export holds)."""
    key = dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
    if key not in PRECISIONS:
        raise ModelError(f"the ONNX backend runs fp32 or int8-vision (an export made with --quantize int8), "
                         f"not dtype {dtype!r}")
    return PRECISIONS[key]


def export_directory(model: str | os.PathLike, dtype: Any = "auto", *,
                     image_size: int | None = None) -> tuple[Path, str]:
    """Where the export of `model` is: the directory itself when it is an export, else its place in litetext's
    cache (keyed by the name, the input size and the litetext, transformers and torch versions). Returns
    (directory, precision)."""
    from ..models.checkpoints import cache_dir, resolve_checkpoint

    precision = resolve_precision(dtype)
    name = os.fspath(model)
    if is_export(name):
        directory = Path(name).expanduser()
        manifest = read_manifest(directory, check_contents=False)  # the runtime checks contents on load
        held = manifest.precision
        if precision is not None and precision != held:
            flag = " --quantize int8" if "int8" in precision else ""
            raise ModelError(f"{directory} holds a {held} export, not {precision}; export that one with "
                             f"litetext export MODEL --format onnx{flag} --out DIR")
        if image_size is not None and image_size != manifest.image_size:
            raise ModelError(f"{directory} was exported for {manifest.image_size}-pixel inputs, not {image_size}; "
                             f"export that size with litetext export MODEL --format onnx --image-size {image_size}")
        return directory, held
    if Path(name).expanduser().is_dir():
        resolve_checkpoint(name)  # a folder that is neither an export nor a checkpoint says what it is, now
    import hashlib

    import torch
    import transformers

    from ..version import __version__

    precision = precision or "float32"
    versions = f"{name}|{__version__}|{transformers.__version__}|{torch.__version__}"
    key = hashlib.blake2s(versions.encode(), digest_size=6).hexdigest()
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in name.strip("/").split("/")[-1])[:40]
    size = "" if image_size is None else f"-{image_size}px"
    return cache_dir() / "onnx" / f"{slug}{size}-{key}" / precision, precision


def cached_export(model: str | os.PathLike, dtype: Any = "auto", *, network: Any = None, processor: Any = None,
                  image_size: int | None = None, log: Callable[[str], None] | None = None) -> Path:
    """The export of `model` at the precision `dtype` asks for (and at `image_size`, when given):
    `export_directory`'s, exported (from `network` and `processor` when given, else loaded by name) and quantised
    there on first use (minutes for a full-size model)."""
    directory, precision = export_directory(model, dtype, image_size=image_size)
    if is_export(directory):
        return directory
    say = log or (lambda line: None)
    fp32 = directory.with_name("float32")
    if not is_export(fp32):
        say(f"exporting {os.fspath(model)} to ONNX into {fp32} (once; minutes for a full-size model) ...")
        if network is None:
            export_onnx(model, fp32, image_size=image_size, log=log)
        else:
            export_model(network, processor, fp32, name=os.fspath(model), log=log)
    if precision != "float32":
        say(f"quantizing the vision encoder into {directory} ...")
        quantize_export(fp32, directory)
    return directory
