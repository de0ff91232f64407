"""Helpers for commands, litetext's own and the adapters' (a public module: adapters' `register` functions
use it). Light: it imports neither torch nor any adapter's ecosystem."""

from __future__ import annotations

import argparse
import sys
from importlib.util import find_spec

from ..errors import LitetextError
from ..options import SegmentOptions, TrackOptions

DTYPE_HELP = ("auto, fp32, bf16, fp16, or bf16-vision (a bf16 vision encoder with an fp32 text encoder and "
              "decoder: faster on CPUs with bf16 support, not bit-identical)")

__all__ = ["DTYPE_HELP", "add_model_arguments", "add_filter_arguments", "add_image_size_argument", "require_extra",
           "warn_if_random", "say", "track_options"]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The --model/--device/--dtype options every model-running command shares."""
    defaults = SegmentOptions()
    parser.add_argument("-m", "--model", default=defaults.model,
                        help="alias (see `litetext models`), hub id or local directory (default: %(default)s)")
    parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--dtype", default=defaults.dtype, help=DTYPE_HELP + " (default: auto)")


def add_image_size_argument(parser: argparse.ArgumentParser) -> None:
    """--image-size: the resolution lever (opt-in, inexact)."""
    parser.add_argument("--image-size", type=int, default=SegmentOptions.image_size, metavar="PIXELS",
                        help="run the vision encoder at this input size, a multiple of 14 (e.g. 672, 504, 336) "
                             "instead of the checkpoint's 1008: faster, not exact (default: the checkpoint's)")


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """The instance filters and batch size of `SegmentOptions`, with its defaults."""
    defaults = SegmentOptions()
    parser.add_argument("--threshold", type=float, default=defaults.threshold, help="instance score threshold (0..1)")
    parser.add_argument("--mask-threshold", type=float, default=defaults.mask_threshold,
                        help="mask probability threshold (0..1)")
    parser.add_argument("--max-instances", type=int, default=defaults.max_instances,
                        help="keep at most this many per image")
    parser.add_argument("--min-area", type=int, default=defaults.min_area,
                        help="drop instances smaller than this (pixels)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="images per vision-encoder batch")


def require_extra(extra: str, *modules: str) -> None:
    """Raise a one-line `LitetextError` naming the pip extra when one of an adapter's libraries is missing.

    Adapter commands call it before importing their ecosystem, e.g. `require_extra("gradio", "gradio")`.
    """
    for module in modules:
        try:
            installed = find_spec(module) is not None
        except ValueError:  # a module object without a spec: it is importable
            installed = True
        if not installed:
            raise LitetextError(f'{module} is not installed: pip install "litetext[{extra}]"')


def warn_if_random(model: str) -> None:
    """Say so when a tiny random checkpoint is in use: its masks are meaningless."""
    if model.startswith("tiny-random"):
        say(f"note: {model} has random weights; its masks are meaningless (for offline demos and tests only)")


def say(message: str) -> None:
    """One line for the user on standard error, prefixed `litetext: `."""
    print(f"litetext: {message}", file=sys.stderr)


def track_options(args: argparse.Namespace) -> TrackOptions:
    """`Engine.track`'s settings from `litetext track`'s options."""
    return TrackOptions(threshold=args.threshold, new_object_threshold=args.new_object_threshold,
                        max_objects=args.max_objects, start_frame=args.start_frame, max_frames=args.max_frames,
                        mode=args.mode)
