"""The `litetext` command line: segment, models, info, and the commands adapters register.

Adapters add their own subcommands (`litetext app`, `litetext label-studio`, ...) through the entry-point
group `litetext.commands`: each entry is a function `register(subparsers)`. The core never imports them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.metadata import entry_points
from importlib.util import find_spec
from pathlib import Path

from . import __version__
from .distributed import add_engine_arguments
from .errors import LitetextError
from .models import DEFAULT_MODEL, list_models

COMMAND_GROUP = "litetext.commands"


DTYPE_HELP = ("auto, fp32, bf16, fp16, or bf16-vision (a bf16 vision encoder with an fp32 text encoder and "
              "decoder: faster on CPUs with bf16 support, not bit-identical)")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except LitetextError as error:
        print(f"litetext: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litetext", description="SAM3-LiteText text-prompted segmentation")
    parser.add_argument("--version", action="version", version=f"litetext {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    segment = commands.add_parser("segment", help="segment images with text prompts; write COCO JSON and overlays")
    segment.add_argument("images", nargs="+", help="image files or directories (searched recursively)")
    segment.add_argument("-p", "--prompt", action="append", required=True,
                         help="a noun phrase to segment; repeat for several (e.g. -p 'red car' -p person)")
    add_model_arguments(segment)
    segment.add_argument("-o", "--out", default="litetext-out", help="output directory (default: %(default)s)")
    segment.add_argument("--threshold", type=float, default=0.5, help="instance score threshold (0..1)")
    segment.add_argument("--mask-threshold", type=float, default=0.5, help="mask probability threshold (0..1)")
    segment.add_argument("--max-instances", type=int, default=None, help="keep at most this many per image")
    segment.add_argument("--min-area", type=int, default=0, help="drop instances smaller than this (pixels)")
    segment.add_argument("--batch-size", type=int, default=4, help="images per vision-encoder batch")
    segment.add_argument("--no-overlays", action="store_true", help="write only the COCO JSON")
    add_engine_arguments(segment)
    segment.set_defaults(run=run_segment)

    track = commands.add_parser("track", help="track text-prompted objects through videos; write RLE, overlays")
    track.add_argument("videos", nargs="+",
                       help="video files, folders of videos, or folders of frames (one video each)")
    track.add_argument("-p", "--prompt", action="append", required=True,
                       help="a noun phrase to track; repeat for several (e.g. -p person -p car)")
    add_model_arguments(track)
    track.add_argument("--tracker", default=None,
                       help="where SAM3's tracker comes from when the model has none: alias, hub id or directory "
                            "(e.g. sam3); default: the model's own")
    track.add_argument("-o", "--out", default="litetext-tracks", help="output directory (default: %(default)s)")
    track.add_argument("--threshold", type=float, default=None,
                       help="detection score to keep (0..1; default: the checkpoint's)")
    track.add_argument("--new-object-threshold", type=float, default=None,
                       help="detection score that starts a new track (0..1; default: the checkpoint's)")
    track.add_argument("--max-objects", type=int, default=None, help="most objects tracked at once")
    track.add_argument("--start-frame", type=int, default=0, help="first frame to track (default: 0)")
    track.add_argument("--max-frames", type=int, default=None, help="track at most this many frames per video")
    track.add_argument("--mode", choices=("auto", "stream", "video"), default="auto",
                       help="video: hold outputs back to drop unconfirmed tracks (the default for files and "
                            "folders); stream: frame by frame, no look-ahead")
    track.add_argument("--no-overlay", action="store_true", help="write only the JSON Lines and summary")
    track.add_argument("--resume", action="store_true",
                       help="skip videos already finished in --out and continue unfinished ones")
    add_engine_arguments(track, unit="video")
    track.set_defaults(run=run_track)

    models = commands.add_parser("models", help="list known checkpoints and their aliases; assemble one")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(run=run_models)
    model_actions = models.add_subparsers(title="actions", metavar="ACTION")
    assemble = model_actions.add_parser(
        "assemble", help="compose a LiteText detector with SAM3's tracker into one checkpoint (sam3_video layout)")
    assemble.add_argument("detector", help="the detector: alias, hub id or directory (e.g. s0-16)")
    assemble.add_argument("--tracker", required=True,
                          help="a checkpoint holding SAM3's tracker: alias, hub id or directory (e.g. sam3)")
    assemble.add_argument("-o", "--out", required=True, help="the directory to write")
    assemble.add_argument("--force", action="store_true", help="write into a non-empty directory")
    assemble.set_defaults(run=run_assemble)

    info = commands.add_parser("info", help="versions, devices, and loaded adapters")
    info.set_defaults(run=run_info)

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
    bench.set_defaults(run=run_bench)

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
    export.set_defaults(run=run_export)

    for entry in entry_points(group=COMMAND_GROUP):
        try:
            entry.load()(commands)
        except Exception as error:  # a broken adapter must not take the core commands down with it
            print(f"litetext: adapter command {entry.name!r} is unavailable: {error}", file=sys.stderr)
    return parser


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The --model/--device/--dtype options every model-running command shares."""
    parser.add_argument("-m", "--model", default=DEFAULT_MODEL,
                        help="alias (see `litetext models`), hub id or local directory (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--dtype", default="auto", help=DTYPE_HELP + " (default: auto)")


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
        print(f"litetext: note: {model} has random weights; its masks are meaningless (for offline demos and "
              "tests only)", file=sys.stderr)


def run_segment(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        from .distributed import run_segment_args

        return run_segment_args(args)
    from .coco import CocoBuilder
    from .engine import load, normalize_prompts
    from .images import list_images

    prompts = normalize_prompts(args.prompt)
    paths = list_images(args.images)
    if not paths:
        print("litetext: error: no image files found", file=sys.stderr)
        return 2
    warn_if_random(args.model)
    engine = load(args.model, device=args.device, dtype=args.dtype)
    out = Path(args.out)
    overlays = out / "overlays"
    overlays.mkdir(parents=True, exist_ok=True)
    coco = CocoBuilder(prompts)
    failures = []
    items = engine.segment_batch(
        [str(p) for p in paths], prompts, batch_size=args.batch_size, threshold=args.threshold,
        mask_threshold=args.mask_threshold, max_instances=args.max_instances, min_area=args.min_area,
        progress=True,
    )
    # RLE encoding and overlay PNGs run on writer threads while the model works on the next images; COCO ids
    # stay in input order because one thread adds to the COCO file. At most a few results wait in memory.
    writers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(1, thread_name_prefix="litetext-coco") as ordered, \
            ThreadPoolExecutor(writers, thread_name_prefix="litetext-write") as pool:
        pending: deque[Future] = deque()
        for item in items:
            path = paths[item.index]
            if not item.ok:
                failures.append({"file": str(path), "error": str(item.error)})
                print(f"litetext: skipped {path}: {item.error}", file=sys.stderr)
                continue
            pending.append(ordered.submit(coco.add, path.name, item.result))
            if not args.no_overlays:
                pending.append(pool.submit(_save_overlay, item.result, item.image, overlays / f"{path.stem}.png"))
            while len(pending) > 2 * writers + 2:
                pending.popleft().result()
        for future in pending:
            future.result()
    coco_path = out / "coco.json"
    coco_path.write_text(json.dumps(coco.to_dict()))
    if failures:
        (out / "failures.json").write_text(json.dumps(failures, indent=2))
    done = len(paths) - len(failures)
    print(f"litetext: {done} of {len(paths)} images segmented, {coco.annotation_count} instances -> {coco_path}",
          file=sys.stderr)
    return 1 if failures else 0


def run_track(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        from .distributed import run_track_args

        return run_track_args(args)
    from .engine import load, normalize_prompts
    from .errors import NoTrackerError
    from .tracks import output_names, track_to_files
    from .videos import video_inputs

    prompts = normalize_prompts(args.prompt)
    videos = video_inputs(args.videos)
    if not videos:
        print("litetext: error: no videos found", file=sys.stderr)
        return 2
    warn_if_random(args.model)
    engine = load(args.model, device=args.device, dtype=args.dtype, tracker=args.tracker)
    if not engine.has_tracker:
        raise NoTrackerError(f"{args.model} has no tracker: pass --tracker sam3 (SAM3's tracker, composed with this "
                             "model's detector), or a model that has one (--model sam3)")
    failures = 0
    for video, name in zip(videos, output_names(videos)):
        try:
            summary = track_to_files(engine, video, prompts, args.out, name, overlay=not args.no_overlay,
                                     resume=args.resume, progress=True, **track_options(args))
        except LitetextError as error:
            failures += 1
            print(f"litetext: {video}: {error} (frames already tracked are kept)", file=sys.stderr)
            continue
        if summary.status == "skipped":
            print(f"litetext: {video}: already done, skipped (--resume)", file=sys.stderr)
            continue
        counts = ", ".join(f"{n} {prompt}" for prompt, n in summary.objects_per_prompt.items())
        print(f"litetext: {video}: {summary.frames} frames, objects: {counts} -> {Path(args.out) / name}.jsonl",
              file=sys.stderr)
    return 1 if failures else 0


def track_options(args: argparse.Namespace) -> dict:
    """`Engine.track`'s keyword arguments from `litetext track`'s options."""
    return {"threshold": args.threshold, "new_object_threshold": args.new_object_threshold,
            "max_objects": args.max_objects, "start_frame": args.start_frame, "max_frames": args.max_frames,
            "mode": args.mode}


def _save_overlay(result, image, path: Path) -> None:
    result.overlay(image).save(path)


def run_bench(args: argparse.Namespace) -> int:
    from .bench import plot, run_bench, run_video_bench, save_json
    from .loading import resolve_device

    width, _, height = args.size.partition("x")
    if args.video:
        video = run_video_bench(model=args.model, device=args.device, dtype=args.dtype, frames=args.video,
                                size=(int(width), int(height)), prompts=args.prompts,
                                max_objects=args.max_objects, log=lambda line: print(line, file=sys.stderr))
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


def run_models(args: argparse.Namespace) -> int:
    specs = list_models()
    if args.json:
        from dataclasses import asdict

        print(json.dumps([asdict(s) for s in specs], indent=2))
        return 0
    rows = [("alias", "checkpoint", "text encoder", "params", "ctx", "tracker", "status")]
    for s in specs:
        status = "verified" if s.verified else "unverified"
        if s.repo_id is None and not s.alias.startswith("tiny-random"):
            status = "not published"
        rows.append((s.alias, s.repo_id or ("(built locally)" if s.alias.startswith("tiny") else "-"),
                     s.text_encoder, f"{s.text_encoder_params_m:g}M", str(s.context_length),
                     "yes" if s.has_tracker else "-", status))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print("\nAny hub id (owner/name) or local save_pretrained directory works too. Clicks need a tracker: "
          "`litetext models assemble s0-16 --tracker sam3 --out DIR` composes one.")
    return 0


def run_assemble(args: argparse.Namespace) -> int:
    from .compose import assemble

    composition = assemble(args.detector, args.tracker, args.out, overwrite=args.force)
    same = ("identical ViT weights" if composition.vit_max_difference == 0.0 else
            f"ViT weights differ by up to {composition.vit_max_difference:.3g}")
    print(f"litetext: wrote {composition.path}: {args.detector} with the tracker of {args.tracker} "
          f"({composition.tensors} tensors, {same}); load it with litetext.load({str(composition.path)!r})",
          file=sys.stderr)
    return 0


def run_info(args: argparse.Namespace) -> int:
    print(f"litetext {__version__}")
    print(f"python {platform.python_version()} on {platform.platform()}")
    for name in ("torch", "torchvision", "transformers", "numpy", "pillow", "pycocotools"):
        print(f"{name} {_version(name)}")
    import torch

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"
    mps = getattr(torch.backends, "mps", None)
    print(f"cuda: {cuda}")
    print(f"mps: {'available' if mps is not None and mps.is_available() else 'not available'}")
    from .loading import cache_dir, resolve_device

    print(f"default device: {resolve_device('auto')}")
    print(f"litetext cache: {cache_dir()}")
    commands = sorted(e.name for e in entry_points(group=COMMAND_GROUP))
    print(f"adapter commands: {', '.join(commands) or 'none installed'}")
    print(f"onnx backend: {_onnx_suggestion(resolve_device('auto'))}")
    return 0


def _onnx_suggestion(device: str) -> str:
    """Whether ONNX Runtime is installed, and what it measured against PyTorch on a CPU-only machine."""
    installed = _version("onnxruntime")
    if installed == "not installed":
        return 'not installed (pip install "litetext[onnx]"; for CPU-only and edge machines, see docs/edge.md)'
    if device != "cpu":
        return f"onnxruntime {installed} (CPU only; on this {device} machine PyTorch is the faster backend)"
    import torch

    if "AVX512" in torch.backends.cpu.get_cpu_capability():
        measured = ("recommended here: on a 2-core AVX-512 CPU, fp32 measured 1.7x PyTorch's speed with the same "
                    "results and less memory, and an int8 vision encoder (inexact) 2.8x")
    else:
        measured = ("on a 2-core AVX2 CPU, fp32 measured as fast as PyTorch with less memory, and an int8 vision "
                    "encoder (inexact) 1.2-1.4x faster")
    return (f"onnxruntime {installed}; {measured}: litetext export MODEL --format onnx [--quantize int8] --out DIR, "
            "then litetext.load(DIR); figures in docs/performance.md")


def run_export(args: argparse.Namespace) -> int:
    if args.format == "coreml":
        return _run_coreml_export(args)
    if args.precision is not None:
        raise LitetextError("--precision is for --format coreml; the ONNX export is fp32, or --quantize int8")
    require_extra("onnx", "onnx", "onnxscript", "onnxruntime")
    from .onnx import export_onnx

    warn_if_random(args.model)
    manifest = export_onnx(args.model, args.out, quantize=args.quantize, log=lambda line: print(line, file=sys.stderr))
    size = sum(n for graph in manifest.graphs.values() for n in graph.files.values())
    print(f"litetext: wrote {args.out} ({manifest.precision}, {len(manifest.graphs)} graphs, {size / 2**20:,.0f} MB); "
          f"run it with litetext.load({args.out!r})", file=sys.stderr)
    return 0


def _run_coreml_export(args: argparse.Namespace) -> int:
    if args.quantize is not None:
        raise LitetextError("--quantize int8 is for --format onnx; a CoreML export takes --precision fp16")
    require_extra("coreml", "coremltools")
    from .coreml import export_coreml

    warn_if_random(args.model)
    manifest = export_coreml(args.model, args.out, precision=args.precision or "fp32",
                             log=lambda line: print(line, file=sys.stderr))
    print(f"litetext: wrote {Path(args.out) / manifest.package} (the text encoder, {manifest.precision}); running "
          "it needs Apple hardware (docs/edge.md)", file=sys.stderr)
    return 0


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
