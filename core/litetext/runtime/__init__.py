"""The runtime seam: one face for whatever runs the model's three calls (vision encoder, text encoder, decoder).

`Runtime` is the protocol; `TorchRuntime` runs a transformers model (`pytorch.py`), and `litetext.onnx`'s
`OnnxSam3` runs an ONNX export. The pipelines ask the runtime and never branch on which one they hold. A new
runtime implements `Runtime` in its own module or package; `litetext.loader` is the one place that picks one.
"""

from __future__ import annotations

from typing import Any

from .base import DecodeOutput, Runtime, VisionOutput

__all__ = ["DecodeOutput", "Runtime", "VisionOutput", "as_runtime"]


def as_runtime(model: Any) -> Runtime:
    """`model` itself when it is a `Runtime`, else the PyTorch runtime around it (a transformers SAM3 model)."""
    if isinstance(model, Runtime):
        return model
    from .pytorch import TorchRuntime

    return TorchRuntime(model)
