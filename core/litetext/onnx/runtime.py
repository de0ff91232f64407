"""The ONNX Runtime backend: an export that answers the engine's three model calls with torch tensors.

`OnnxSam3` stands where the engine holds a transformers model: `get_vision_features`, `get_text_features` and
the decoder call take and return what transformers' do, so every engine path (caches, batching, boxes) and
every adapter works unchanged.
Only CPU execution is offered: on GPUs, PyTorch with bf16 and batching is the fast path.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .manifest import (
    DECODER,
    DECODER_WITH_BOXES,
    TEXT_ENCODER,
    VISION_ENCODER,
    Manifest,
    is_export,
    read_manifest,
)

#: Precisions the ONNX backend runs, by the `dtype` names `litetext.load` accepts for it.
PRECISIONS = {"auto": None, "fp32": "float32", "float32": "float32", "int8-vision": "int8-vision",
              "int8": "int8-vision"}
#: Most prompts of one image in one decoder call: bounds the decoder's activation memory.
MAX_PROMPTS_PER_CALL = 4


@dataclass(frozen=True)
class BackendInfo:
    """What `Engine` reads from a model that is not a torch module."""

    name: str
    device: Any
    dtype: Any  # the dtype of features the engine holds and passes back (float32)
    vision_dtype: Any  # the dtype of the pixel values the vision encoder takes (float32)
    precision: str  # "float32" or "int8-vision"
    text_encoder_params: int


@dataclass
class VisionFeatures:
    """`Sam3VisionEncoderOutput`'s fields the engine reads; the coarsest level (never decoded) is None."""

    fpn_hidden_states: tuple[Any, ...]
    fpn_position_encoding: tuple[Any, ...]


@dataclass
class TextFeatures:
    pooler_output: Any


@dataclass
class DecoderOutputs:
    pred_logits: Any
    pred_boxes: Any
    pred_masks: Any
    presence_logits: Any


class OnnxSam3:
    """A litetext ONNX export run by ONNX Runtime, with the call signatures of a transformers SAM3 model.

    `threads` sets ONNX Runtime's intra-op threads (default: torch's thread count, so both backends use the
    same cores); `max_prompts_per_call` caps the prompts of one image in one decoder call.
    """

    def __init__(self, directory: str | os.PathLike, *, threads: int | None = None,
                 max_prompts_per_call: int = MAX_PROMPTS_PER_CALL):
        import torch
        from transformers import AutoConfig

        self.directory = Path(os.fspath(directory)).expanduser()
        self.manifest: Manifest = read_manifest(self.directory)
        self.config = AutoConfig.from_pretrained(self.directory)
        self.max_prompts_per_call = max_prompts_per_call
        self.threads = threads or torch.get_num_threads()
        self.litetext_backend = BackendInfo(
            name="onnx", device=torch.device("cpu"), dtype=torch.float32, vision_dtype=torch.float32,
            precision=self.manifest.precision, text_encoder_params=self.manifest.text_encoder_params,
        )
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._torch = torch
        for role in (VISION_ENCODER, TEXT_ENCODER, DECODER):  # load now, so a broken graph fails at load time
            self.session(role)

    def __repr__(self) -> str:
        return f"OnnxSam3({str(self.directory)!r}, precision={self.manifest.precision!r})"

    def eval(self) -> OnnxSam3:
        return self

    def session(self, role: str):
        """The ONNX Runtime session of one graph (created on first use; the boxes decoder only when needed)."""
        with self._lock:
            if role not in self._sessions:
                self._sessions[role] = self._create_session(role)
            return self._sessions[role]

    def _create_session(self, role: str):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # Idle ONNX Runtime threads spin by default, stealing the cores torch's post-processing runs on.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The memory-pattern planner adds one block for a whole run on top of what the arena holds from the
        # first: measured, it raised the decoder's peak from 0.86 to 1.29 GB and the vision encoder's from 2.9
        # to 3.9 GB from the second call on, and was no faster (docs/edge.md, Memory).
        options.enable_mem_pattern = False
        options.log_severity_level = 3  # errors only: its graph-optimiser notes are not the user's concern
        path = self.directory / self.manifest.graphs[role].file
        try:
            return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ONNX Runtime's load errors are untyped; say which file and what to do
            raise ModelError(f"ONNX Runtime cannot load {path}: {str(error).splitlines()[0][:300]}; re-export it: "
                             f"litetext export {self.manifest.model} --format onnx --out {self.directory}") from None

    # The three calls the engine makes --------------------------------------------------------------------------

    def get_vision_features(self, pixel_values: Any) -> VisionFeatures:
        outputs = self._run(VISION_ENCODER, {"pixel_values": pixel_values})
        return VisionFeatures(tuple(outputs[:3]) + (None,), tuple(outputs[3:]) + (None,))

    def get_text_features(self, input_ids: Any, attention_mask: Any) -> TextFeatures:
        (features,) = self._run(TEXT_ENCODER, {"input_ids": input_ids, "attention_mask": attention_mask})
        return TextFeatures(features)

    def __call__(self, *, vision_embeds: Any, text_embeds: Any, attention_mask: Any, input_boxes: Any = None,
                 input_boxes_labels: Any = None) -> DecoderOutputs:
        """Decode K prompts: `vision_embeds` holds K rows of image features (one image broadcast, or several
        images' rows in runs), `text_embeds.pooler_output` and `attention_mask` K rows of text."""
        torch = self._torch
        levels = vision_embeds.fpn_hidden_states[:3]
        positions = [p[:1] for p in vision_embeds.fpn_position_encoding[:3]]
        text = text_embeds.pooler_output
        parts = []
        if input_boxes is not None:  # the boxes graph takes one prompt per call
            for row in range(len(text)):
                parts.append(self._decode([level[row : row + 1] for level in levels], positions,
                                          text[row : row + 1], attention_mask[row : row + 1],
                                          input_boxes[row : row + 1], input_boxes_labels[row : row + 1]))
        else:
            for start, stop in _image_runs(levels):
                image = [level[start : start + 1] for level in levels]
                for first in range(start, stop, self.max_prompts_per_call):
                    last = min(stop, first + self.max_prompts_per_call)
                    parts.append(self._decode(image, positions, text[first:last], attention_mask[first:last]))
        joined = [torch.cat(column) if len(parts) > 1 else column[0] for column in zip(*parts)]
        return DecoderOutputs(*joined)

    def _decode(self, levels, positions, text, mask, boxes=None, labels=None) -> list[Any]:
        feed = {f"fpn_hidden_states_{i}": level for i, level in enumerate(levels)}
        feed.update({f"fpn_position_encoding_{i}": p for i, p in enumerate(positions)})
        feed.update({"text_features": text, "text_mask": mask})
        if boxes is None:
            return self._run(DECODER, feed)
        return self._run(DECODER_WITH_BOXES, {**feed, "input_boxes": boxes, "input_boxes_labels": labels})

    def _run(self, role: str, feed: dict[str, Any]) -> list[Any]:
        """One graph call: torch tensors in, torch tensors out (no copies beyond making inputs contiguous)."""
        import numpy as np

        torch = self._torch
        session = self.session(role)
        expected = {i.name: i.type for i in session.get_inputs()}
        arrays = {}
        for name, tensor in feed.items():
            array = tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor)
            if expected[name] == "tensor(int64)":
                array = array.astype(np.int64, copy=False)
            elif expected[name] == "tensor(float)":
                array = array.astype(np.float32, copy=False)
            arrays[name] = np.ascontiguousarray(array)
        try:
            outputs = session.run(None, arrays)
        except Exception as error:
            text = str(error)
            if "allocate" in text.lower() or "bad_alloc" in text:
                # the engine halves a batch that runs out of memory, as it does for torch
                raise torch.OutOfMemoryError(f"ONNX Runtime ran out of memory in {role}: {text[:300]}") from error
            raise
        return [torch.from_numpy(output) for output in outputs]


def _image_runs(levels) -> list[tuple[int, int]]:
    """Consecutive rows of the same image, as (start, stop): one run when the rows are one image broadcast
    (stride 0), else rows compared exactly (equal features decode identically, whatever their source)."""
    rows = len(levels[0])
    if rows == 1 or all(level.stride(0) == 0 for level in levels):
        return [(0, rows)]
    runs, start = [], 0
    for row in range(1, rows):
        if not all(bool((level[row] == level[row - 1]).all()) for level in levels):
            runs.append((start, row))
            start = row
    runs.append((start, rows))
    return runs


# Loading: an export directory, or a model exported into the cache on first use ---------------------------------


def resolve_precision(dtype: Any) -> str | None:
    """The export precision a `dtype` asks for (None: whatever the export holds)."""
    key = dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
    if key not in PRECISIONS:
        raise ModelError(f"the ONNX backend runs fp32 or int8-vision (an export made with --quantize int8), "
                         f"not dtype {dtype!r}")
    return PRECISIONS[key]


def check_device(device: str) -> None:
    if device not in ("auto", "cpu"):
        raise ModelError(f"the ONNX backend runs on the CPU (ONNX Runtime), not {device!r}; use device='cpu', or "
                         "backend='torch' for GPUs")


def export_directory(model: str | os.PathLike, dtype: Any = "auto") -> tuple[Path, str]:
    """Where the export of `model` is: the directory itself when it is an export, else litetext's cache (the
    export is made there on first use). Returns (directory, precision)."""
    precision = resolve_precision(dtype)
    name = os.fspath(model)
    if is_export(name):
        directory = Path(name).expanduser()
        held = read_manifest(directory).precision
        if precision is not None and precision != held:
            flag = " --quantize int8" if "int8" in precision else ""
            raise ModelError(f"{directory} holds a {held} export, not {precision}; export that one with "
                             f"litetext export MODEL --format onnx{flag} --out DIR")
        return directory, held
    import transformers

    from .. import __version__
    from ..loading import cache_dir

    precision = precision or "float32"
    key = hashlib.blake2s(f"{name}|{__version__}|{transformers.__version__}".encode(), digest_size=6).hexdigest()
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in name.strip("/").split("/")[-1])[:40]
    return cache_dir() / "onnx" / f"{slug}-{key}" / precision, precision


def load_onnx(model: str | os.PathLike, dtype: Any = "auto", *, log=None) -> tuple[OnnxSam3, Any, str]:
    """(ONNX model, processor, directory) for `model`: an export directory, or an alias, hub id or checkpoint
    directory exported into litetext's cache on first use (minutes for a full-size model)."""
    from transformers import AutoProcessor

    directory, precision = export_directory(model, dtype)
    if not is_export(directory):
        from .export import export_onnx, quantize_export

        fp32 = directory.with_name("float32")
        warnings.warn(f"exporting {os.fspath(model)} to ONNX into {directory} (once; minutes for a full-size "
                      "model)", stacklevel=3)
        if not is_export(fp32):
            export_onnx(model, fp32, log=log)
        if precision != "float32":
            quantize_export(fp32, directory)
    network = OnnxSam3(directory)
    processor = AutoProcessor.from_pretrained(directory)
    return network, processor, str(directory)


def load_engine(model: str | os.PathLike, device: str = "auto", dtype: Any = "auto", *, tracker: Any = None,
                image_cache_bytes: int | None = None, text_cache_bytes: int | None = None):
    """`litetext.load(..., backend="onnx")`: the process-wide ONNX engine for `model` (shared like torch's)."""
    from .. import engine as engines

    check_device(device)
    if tracker not in (None, False):
        raise ModelError("the ONNX backend has no tracker (clicks and boxes on one object need PyTorch): "
                         "load with backend='torch' for segment_object")
    directory, precision = export_directory(model, dtype)
    name = os.fspath(model)
    key = (name, "cpu", precision, "onnx")

    def build():
        network, processor, checkpoint = load_onnx(model, dtype)
        return engines.Engine(network, processor, name=name, checkpoint=checkpoint,
                              image_cache_bytes=image_cache_bytes, text_cache_bytes=text_cache_bytes)

    return engines.shared_engine(key, build, image_cache_bytes, text_cache_bytes)
