"""ONNX export and the ONNX Runtime backend (`pip install "litetext[onnx]"`).

    >>> from litetext.onnx import export_onnx
    >>> export_onnx("s0-16", "s0-onnx")                      # or: litetext export s0-16 --format onnx --out s0-onnx
    >>> engine = litetext.load("s0-onnx")                    # an export directory runs on ONNX Runtime
    >>> engine = litetext.load("s0-16", backend="onnx")      # or export into the cache on first use
    >>> litetext.load("sam3-onnx").segment_object(image, points=[(412, 230)])  # an export with SAM3's tracker

Importing this package is light; onnx, onnxscript and onnxruntime load when an export or a session needs them.
"""

from __future__ import annotations

from .export import export_model, export_onnx, quantize_export
from .manifest import GraphSpec, InvalidExportError, Manifest, TensorSpec, is_export, read_manifest
from .runtime import OnnxSam3
from .tracker import OnnxTracker

__all__ = ["export_onnx", "export_model", "quantize_export", "read_manifest", "is_export", "Manifest",
           "GraphSpec", "TensorSpec", "InvalidExportError", "OnnxSam3", "OnnxTracker"]
