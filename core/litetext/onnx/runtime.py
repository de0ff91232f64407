"""The ONNX Runtime runtime: an export that answers the pipelines' three model calls with torch tensors.

`OnnxSam3` implements `litetext.runtime.Runtime`, as `TorchRuntime` does for a transformers model, so every
pipeline path (caches, batching, boxes) and every adapter works unchanged. Only CPU execution is offered: on
GPUs, PyTorch with bf16 and batching is the fast path. Finding or making the export a name asks for is the
loader's job (`litetext.loader`); this module only runs one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..runtime.base import DecodeOutput, Runtime, VisionOutput
from .manifest import (
    DECODER,
    DECODER_WITH_BOXES,
    TEXT_ENCODER,
    VISION_ENCODER,
    Manifest,
    read_manifest,
    reexport_hint,
)

#: Most prompts of one image in one decoder call: bounds the decoder's activation memory.
MAX_PROMPTS_PER_CALL = 4


class OnnxSam3(Runtime):
    """A litetext ONNX export run by ONNX Runtime: the `Runtime` protocol over its graphs.

    `threads` sets ONNX Runtime's intra-op threads (default: torch's thread count, so both backends use the
    same cores); `max_prompts_per_call` caps the prompts of one image in one decoder call.
    """

    name = "onnx"

    def __init__(self, directory: str | os.PathLike, *, threads: int | None = None,
                 max_prompts_per_call: int = MAX_PROMPTS_PER_CALL):
        super().__init__()
        import torch
        from transformers import AutoConfig

        self.directory = Path(os.fspath(directory)).expanduser()
        # Checks every file's SHA-256 before a session reads it (unless LITETEXT_TRUST_EXPORTS=1).
        self.manifest: Manifest = read_manifest(self.directory)
        self.config = AutoConfig.from_pretrained(self.directory)
        self.max_prompts_per_call = max_prompts_per_call
        self.threads = threads or torch.get_num_threads()
        self.model = self
        self.device, self.dtype, self.vision_dtype = torch.device("cpu"), torch.float32, torch.float32
        self.precision = self.manifest.precision  # "float32" or "int8-vision"
        self.text_encoder_params = self.manifest.text_encoder_params
        self._sessions: dict[str, Any] = {}
        self._sessions_lock = threading.Lock()
        self._torch = torch
        for role in (VISION_ENCODER, TEXT_ENCODER, DECODER):  # load now, so a broken graph fails at load time
            self.session(role)

    def __repr__(self) -> str:
        return f"OnnxSam3({str(self.directory)!r}, precision={self.manifest.precision!r})"

    def session(self, role: str):
        """The ONNX Runtime session of one graph (created on first use; the boxes decoder only when needed)."""
        with self._sessions_lock:
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
            hint = reexport_hint(self.manifest.model, self.directory, self.manifest.precision)
            raise ModelError(f"ONNX Runtime cannot load {path}: {str(error).splitlines()[0][:300]}; {hint}") from None

    # The three calls of the runtime protocol ---------------------------------------------------------------------

    def encode_pixels(self, pixel_values: Any) -> VisionOutput:
        outputs = self.run_graph(VISION_ENCODER, {"pixel_values": pixel_values})
        # an export with the tracker adds its three image embeddings after the detector's six outputs
        return VisionOutput(tuple(outputs[:3]), tuple(outputs[3:6]), tracker_embeddings=tuple(outputs[6:]) or None)

    def encode_tokens(self, input_ids: Any, attention_mask: Any) -> Any:
        (features,) = self.run_graph(TEXT_ENCODER, {"input_ids": input_ids, "attention_mask": attention_mask})
        return features

    def decode(self, levels: Any, position_encodings: Any, text_features: Any, attention_mask: Any,
               input_boxes: Any = None, input_boxes_labels: Any = None) -> DecodeOutput:
        torch = self._torch
        positions = [p[:1] for p in position_encodings]
        text = text_features
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
        return DecodeOutput(*joined)

    def _decode(self, levels, positions, text, mask, boxes=None, labels=None) -> list[Any]:
        feed = {f"fpn_hidden_states_{i}": level for i, level in enumerate(levels)}
        feed.update({f"fpn_position_encoding_{i}": p for i, p in enumerate(positions)})
        feed.update({"text_features": text, "text_mask": mask})
        if boxes is None:
            return self.run_graph(DECODER, feed)
        return self.run_graph(DECODER_WITH_BOXES, {**feed, "input_boxes": boxes, "input_boxes_labels": labels})

    def run_graph(self, role: str, feed: dict[str, Any]) -> list[Any]:
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
