"""`litetext export`: a model as ONNX graphs for ONNX Runtime, or its text encoder for CoreML."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import LitetextError
from .common import add_image_size_argument, require_extra, warn_if_random


def register(commands) -> None:
    """Add the command to `litetext`'s subparsers."""
    export = commands.add_parser("export", help="export a model as ONNX graphs for ONNX Runtime, or its text encoder "
                                                "for CoreML (docs/edge.md)")
    export.add_argument("model", help="alias (see `litetext models`), hub id or local checkpoint directory")
    export.add_argument("--format", choices=["onnx", "coreml"], default="onnx",
                        help="onnx: every stage, for litetext's ONNX Runtime backend; coreml: the text encoder "
                             "alone, for Apple devices (default: %(default)s)")
    export.add_argument("-o", "--out", required=True, help="directory to write the export and its manifest into")
    export.add_argument("--quantize", choices=["int8"],
                        help="onnx: int8 vision encoder (dynamic quantisation): faster on CPUs, not exact")
    export.add_argument("--precision", choices=["fp32", "fp16"], default=None,
                        help="coreml: compute precision (default fp32; fp16 suits the Neural Engine, not exact)")
    add_image_size_argument(export)
    export.add_argument("--no-tracker", action="store_true",
                        help="onnx: leave out SAM3's tracker graphs (clicks) of a checkpoint that has a tracker")
    export.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    """`litetext export`: an ONNX export, or the text encoder for CoreML."""
    if args.format == "coreml":
        return _run_coreml_export(args)
    if args.precision is not None:
        raise LitetextError("--precision is for --format coreml; the ONNX export is fp32, or --quantize int8")
    require_extra("onnx", "onnx", "onnxscript", "onnxruntime")
    from ..onnx import export_onnx

    warn_if_random(args.model)
    manifest = export_onnx(args.model, args.out, quantize=args.quantize, image_size=args.image_size,
                           tracker=False if args.no_tracker else None, log=lambda line: print(line, file=sys.stderr))
    size = sum(n for graph in manifest.graphs.values() for n in graph.files.values())
    print(f"litetext: wrote {args.out} ({manifest.precision}, {len(manifest.graphs)} graphs, {size / 2**20:,.0f} MB); "
          f"run it with litetext.load({args.out!r})", file=sys.stderr)
    return 0


def _run_coreml_export(args: argparse.Namespace) -> int:
    if args.image_size is not None or args.no_tracker:
        raise LitetextError("--image-size and --no-tracker are for --format onnx; the CoreML export is the text "
                            "encoder alone")
    if args.quantize is not None:
        raise LitetextError("--quantize int8 is for --format onnx; a CoreML export takes --precision fp16")
    require_extra("coreml", "coremltools")
    from ..coreml import export_coreml

    warn_if_random(args.model)
    manifest = export_coreml(args.model, args.out, precision=args.precision or "fp32",
                             log=lambda line: print(line, file=sys.stderr))
    print(f"litetext: wrote {Path(args.out) / manifest.package} (the text encoder, {manifest.precision}); running "
          "it needs Apple hardware (docs/edge.md)", file=sys.stderr)
    return 0
