"""The runtime seam: one face for whatever runs the model's three calls (vision encoder, text encoder, decoder).

`Runtime` is the protocol; `TorchRuntime` runs a transformers model (`pytorch.py`), and `litetext.onnx`'s
`OnnxSam3` runs an ONNX export. `TrackerRuntime` (`tracker.py`) is the same seam for SAM3's tracker (clicks).
The pipelines ask the runtime and never branch on which one they hold. A new
runtime implements `Runtime` in its own module or package; `litetext.loader` is the one place that picks one.
"""

from __future__ import annotations

from typing import Any

from .base import DecodeOutput, Runtime, VisionOutput
from .tracker import TrackerOutput, TrackerRuntime

__all__ = ["DecodeOutput", "Runtime", "TrackerOutput", "TrackerRuntime", "VisionOutput", "as_runtime",
           "as_tracker_runtime"]


def as_runtime(model: Any) -> Runtime:
    """`model` itself when it is a `Runtime`, else the PyTorch runtime around it (a transformers SAM3 model)."""
    if isinstance(model, Runtime):
        return model
    from .pytorch import TorchRuntime

    return TorchRuntime(model)


def as_tracker_runtime(tracker: Any) -> TrackerRuntime:
    """`tracker` itself when it is a `TrackerRuntime`, else the PyTorch one around it (a `Sam3TrackerModel`)."""
    if isinstance(tracker, TrackerRuntime):
        return tracker
    from .tracker import TorchTracker

    return TorchTracker(tracker)
