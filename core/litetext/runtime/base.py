"""The protocol every runtime implements, and the two results that cross it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ModelError


@dataclass(frozen=True)
class VisionOutput:
    """The vision encoder's answer for a batch of images: the three FPN levels SAM3 decodes from (in the runtime's
    feature dtype), their position encodings, the ViT's last hidden state (what SAM3's tracker reads; None
    where a runtime does not expose it), and the tracker's three image embeddings where the runtime computes them
    with the vision encoder (an ONNX export with a tracker; else None)."""

    levels: tuple[Any, ...]
    position_encodings: tuple[Any, ...]
    last_hidden_state: Any = None
    tracker_embeddings: tuple[Any, ...] | None = None


def per_image(levels: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Batched feature levels split into one tuple per image, each level keeping a batch dimension of 1 (copies, so
    that a cached image does not hold the whole batch)."""
    return [tuple(level[i : i + 1].clone() for level in levels) for i in range(len(levels[0]))]


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


class Runtime:
    """What runs the model: the protocol the pipelines ask, implemented by `TorchRuntime` and `OnnxSam3`.

    Attributes: `name` ("torch", "onnx"), `model` (what `Engine.model` shows), `config` (the transformers config),
    `device`, `dtype` (of features and the decoder), `vision_dtype` (of pixel values), `precision` (a name for
    `EngineInfo`), `text_encoder_params`, `compiled`, and `lock`, which serialises the model calls of every
    pipeline sharing the runtime (an `RLock`: a pipeline may hold it across several calls).
    """

    name: str = "runtime"
    model: Any = None
    config: Any = None
    device: Any = None
    dtype: Any = None
    vision_dtype: Any = None
    precision: str = ""
    text_encoder_params: int = 0
    compiled: bool = False

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def encode_pixels(self, pixel_values: Any) -> VisionOutput:
        """The vision encoder on a (B, 3, H, W) batch of the processor's pixel values."""
        raise NotImplementedError

    def encode_tokens(self, input_ids: Any, attention_mask: Any) -> Any:
        """Projected per-token text features (K, tokens, hidden) for K prompts' token ids and attention masks."""
        raise NotImplementedError

    def decode(self, levels: Sequence[Any], position_encodings: Sequence[Any], text_features: Any,
               attention_mask: Any, input_boxes: Any = None, input_boxes_labels: Any = None) -> DecodeOutput:
        """SAM3's DETR encoder, decoder and mask decoder for K prompts: `levels` hold K rows of image features
        (one image broadcast, or several images' rows in runs), `position_encodings` one row, the text K rows;
        exemplar boxes (relative cxcywh, as the processor encodes them) apply to every row."""
        raise NotImplementedError

    def compile(self, mode: str | None = None) -> None:
        """Compile the decoder (opt-in); a runtime that cannot says so with a `ModelError`."""
        raise ModelError(f"compile() is for the PyTorch backend; {self.model!r} runs {self.name} graphs, which it "
                         "optimises itself when it loads them")

    def synchronize(self) -> None:
        """Wait until the device has finished its queued work (for honest timings)."""

    def release_memory(self) -> None:
        """Return cached device memory after running out of it (before a smaller retry)."""

    @property
    def out_of_memory(self) -> type[BaseException]:
        """The exception this runtime raises when the device runs out of memory."""
        import torch

        return torch.OutOfMemoryError
