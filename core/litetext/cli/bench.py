"""`litetext bench`: litetext timed against the plain transformers loops, on any model or full-size random weights."""

from __future__ import annotations

import argparse
import sys

from .common import DTYPE_HELP


def register(commands) -> None:
    """Add the command to `litetext`'s subparsers."""
    bench = commands.add_parser("bench", help="time litetext against the plain transformers loops")
    bench.add_argument("-m", "--model", default="random-s0",
                       help="random-s0/-s1/-l/-sam3 (full-size random weights: real cost, no download), or any "
                            "alias, hub id or directory (default: %(default)s)")
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    bench.add_argument("--dtype", default="auto", help=DTYPE_HELP)
    bench.add_argument("--images", type=int, default=None, help="images in the dataset run (default: 8 GPU, 1 CPU)")
    bench.add_argument("--size", default="1280x960", help="image size WxH (default: %(default)s)")
    bench.add_argument("--prompts", type=int, default=4, help="prompts per image (default: %(default)s)")
    bench.add_argument("--batch-size", type=int, default=4, help="images per vision-encoder batch")
    bench.add_argument("--no-baselines", action="store_true", help="time litetext only")
    bench.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE",
                       help="compile litetext's decoder with torch.compile first (MODE: default, "
                            "reduce-overhead for CUDA graphs, max-autotune)")
    bench.add_argument("--reference-dtype", metavar="DTYPE",
                       help="run the baselines in this dtype (e.g. fp32) and litetext in --dtype, to measure an "
                            "inexact mode by recall and mask IoU instead of requiring identical results")
    bench.add_argument("--image-size", type=int, metavar="PIXELS",
                       help="run litetext at this input size (a multiple of 14, e.g. 504): the resolution lever")
    bench.add_argument("--reference-size", type=int, metavar="PIXELS",
                       help="run the baselines at this input size (e.g. 1008), to measure --image-size by recall "
                            "and mask IoU on the same weights")
    bench.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                       help="onnx: also run the ONNX Runtime engine (CPU), side by side with PyTorch's")
    bench.add_argument("--quantize", choices=["int8"], help="with --backend onnx: an int8 vision encoder (inexact)")
    bench.add_argument("--video", type=int, metavar="FRAMES",
                       help="instead: track --prompts prompts through a synthetic video of FRAMES frames (streamed, "
                            "--size) and report ms per frame, host memory and tracker state as it goes; the model "
                            "needs a tracker (random-s0 ... bring SAM3's random full-size one)")
    bench.add_argument("--max-objects", type=int, default=None, help="with --video: cap on tracked objects")
    bench.add_argument("--json", help="also write the report as JSON to this file")
    bench.add_argument("--plot", help="also write a bar chart (PNG; needs matplotlib) to this file")
    bench.set_defaults(run=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    """`litetext bench`: the report as a table (and JSON, a plot); exit code 1 when litetext's results differ."""
    from ..bench import plot, run_bench, run_video_bench, save_json
    from ..models.precision import resolve_device

    width, _, height = args.size.partition("x")
    if args.video:
        video = run_video_bench(model=args.model, device=args.device, dtype=args.dtype, frames=args.video,
                                size=(int(width), int(height)), prompts=args.prompts,
                                max_objects=args.max_objects, image_size=args.image_size,
                                log=lambda line: print(line, file=sys.stderr))
        settings = ", ".join(f"{k}={v}" for k, v in video.settings.items())
        print(f"litetext bench (video): {settings}\nmachine: {video.machine}\n\n{video.table()}")
        if args.json:
            save_json(video, args.json)
        return 0
    images = args.images or (8 if resolve_device(args.device) != "cpu" else 1)
    report = run_bench(model=args.model, device=args.device, dtype=args.dtype, images=images,
                       size=(int(width), int(height)), prompts=args.prompts, batch_size=args.batch_size,
                       baselines=not args.no_baselines, compile_mode=args.compile,
                       reference_dtype=args.reference_dtype, backend=args.backend, quantize=args.quantize,
                       image_size=args.image_size, reference_size=args.reference_size,
                       log=lambda line: print(line, file=sys.stderr))
    settings = ", ".join(f"{k}={v}" for k, v in report.settings.items())
    print(f"litetext bench: {settings}\nmachine: {report.machine}\n")
    print(report.table())
    if args.json:
        save_json(report, args.json)
    if args.plot:
        plot(report, args.plot)
    if report.agreement is not None and not report.inexact and not report.agreement.same_instances:
        print("litetext bench: error: litetext's instances differ from the naive loop's; no speed-up is claimed",
              file=sys.stderr)
        return 1
    return 0
