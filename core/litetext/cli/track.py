"""`litetext track`: text-prompted objects followed through videos, written as JSON Lines, overlays, summaries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import LitetextError, NoTrackerError, OutputError
from ..options import TrackOptions
from ..output import check_output_dir
from ..prompts import normalize_prompts
from .common import add_model_arguments, track_options, warn_if_random
from .ray import add_engine_arguments


def register(commands) -> None:
    """Add the command to `litetext`'s subparsers."""
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
    track.add_argument("--start-frame", type=int, default=TrackOptions.start_frame,
                       help="first frame to track (default: 0)")
    track.add_argument("--max-frames", type=int, default=None, help="track at most this many frames per video")
    track.add_argument("--mode", choices=("auto", "stream", "video"), default=TrackOptions.mode,
                       help="video: hold outputs back to drop unconfirmed tracks (the default for files and "
                            "folders); stream: frame by frame, no look-ahead")
    track.add_argument("--no-overlay", action="store_true", help="write only the JSON Lines and summary")
    track.add_argument("--resume", action="store_true",
                       help="skip videos already finished in --out and continue unfinished ones")
    add_engine_arguments(track, unit="video")
    track.set_defaults(run=run_track)


def run_track(args: argparse.Namespace) -> int:
    """`litetext track`: tracks of every video as files; exit code 1 when a video failed."""
    if args.engine == "ray":
        from .ray import run_track_args

        return run_track_args(args)
    from ..loader import load
    from ..track_files import output_names, track_to_files
    from ..videos import video_inputs

    prompts = normalize_prompts(args.prompt)
    videos = video_inputs(args.videos)
    if not videos:
        print("litetext: error: no videos found", file=sys.stderr)
        return 2
    warn_if_random(args.model)
    check_output_dir(args.out)
    engine = load(args.model, device=args.device, dtype=args.dtype, tracker=args.tracker)
    if not engine.has_tracker:
        raise NoTrackerError(f"{args.model} has no tracker: pass --tracker sam3 (SAM3's tracker, composed with this "
                             "model's detector), or a model that has one (--model sam3)")
    failures = 0
    for video, name in zip(videos, output_names(videos)):
        try:
            summary = track_to_files(engine, video, prompts, args.out, name, overlay=not args.no_overlay,
                                     resume=args.resume, progress=True, options=track_options(args))
        except OutputError:
            raise  # a full disk or a lost folder stops the run: the next videos could not be written either
        except LitetextError as error:
            failures += 1
            print(f"litetext: {video}: {error}", file=sys.stderr)
            continue
        if summary.status == "skipped":
            print(f"litetext: {video}: already done, skipped (--resume)", file=sys.stderr)
            continue
        counts = ", ".join(f"{n} {prompt}" for prompt, n in summary.objects_per_prompt.items())
        print(f"litetext: {video}: {summary.frames} frames, objects: {counts} -> {Path(args.out) / name}.jsonl",
              file=sys.stderr)
    return 1 if failures else 0
