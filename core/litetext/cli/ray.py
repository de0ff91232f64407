"""The Ray engine's command-line glue: `--engine ray` and its options on `litetext segment` and `litetext track`,
run as `litetext.distributed` jobs (Ray is imported by the jobs, never here)."""

from __future__ import annotations

import sys
from typing import Any

from ..distributed import DEFAULT_SHARD_SIZE, FORMATS
from .common import require_extra, track_options, warn_if_random


def add_engine_arguments(parser: Any, *, unit: str = "image") -> None:
    """Add `--engine` and the Ray options to `litetext segment`'s parser (`unit` "image") or `litetext track`'s
    ("video": one task per video, no shards or formats)."""
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: this process (default); ray: a Ray Data job over many workers, resumable")
    group = parser.add_argument_group("Ray engine (--engine ray; needs `pip install litetext[ray]`)")
    group.add_argument("--address", default=None,
                       help="Ray cluster to join (auto, host:6379, ray://host:10001); default: start a local one")
    group.add_argument("--workers", type=int, default=None,
                       help="model replicas (actors); default: as many as the cluster's CPUs (or GPUs) allow")
    group.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs reserved per worker (default: 1)")
    group.add_argument("--gpus-per-worker", type=float, default=0.0,
                       help="GPUs per worker, e.g. 1 or 0.5 to share a GPU between two (default: 0)")
    if unit == "image":
        group.add_argument("--output-format", choices=FORMATS, default="jsonl",
                           help="one file per shard: COCO-RLE JSON lines or Parquet (default: jsonl)")
        group.add_argument("--shard-size", type=int, default=None,
                           help=f"images per shard, the unit of retry and output (default: up to "
                                f"{DEFAULT_SHARD_SIZE})")
    group.add_argument("--retry-failed", action="store_true",
                       help=f"on a rerun, process again the {unit}s that failed before (default: skip them)")


def run_segment_args(args: Any) -> int:
    """`litetext segment --engine ray ...`: run the job, print a summary; exit code 1 when an image failed."""
    from ..distributed import run_segment_job

    require_extra("ray", "ray")

    warn_if_random(args.model)
    summary = run_segment_job(
        args.images, args.prompt, args.out, model=args.model, device=args.device, dtype=args.dtype,
        threshold=args.threshold, mask_threshold=args.mask_threshold, max_instances=args.max_instances,
        min_area=args.min_area, batch_size=args.batch_size, output_format=args.output_format,
        address=args.address, workers=args.workers, cpus_per_worker=args.cpus_per_worker,
        gpus_per_worker=args.gpus_per_worker, shard_size=args.shard_size, retry_failed=args.retry_failed,
        progress=sys.stderr.isatty(),
    )
    for failure in summary.failures:
        print(f"litetext: failed: {failure['error']}", file=sys.stderr)
    print(f"litetext: {summary.segmented} segmented, {summary.failed} failed, {summary.skipped} already done, "
          f"of {summary.total} images in {summary.seconds:.1f}s -> {summary.output}", file=sys.stderr)
    return 1 if summary.failed else 0


def run_track_args(args: Any) -> int:
    """`litetext track --engine ray ...`: run the job, print a summary; exit code 1 when a video failed."""
    from ..distributed import run_track_job

    require_extra("ray", "ray")
    warn_if_random(args.model)
    summary = run_track_job(
        args.videos, args.prompt, args.out, model=args.model, tracker=args.tracker, device=args.device,
        dtype=args.dtype, overlay=not args.no_overlay, address=args.address, workers=args.workers,
        cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker, retry_failed=args.retry_failed,
        progress=sys.stderr.isatty(), track=track_options(args),
    )
    for failure in summary.failures:
        print(f"litetext: failed: {failure['path']}: {failure['error']}", file=sys.stderr)
    print(f"litetext: {summary.tracked} videos tracked ({summary.frames} frames), {summary.failed} failed, "
          f"{summary.skipped} already done, of {summary.total} in {summary.seconds:.1f}s -> {summary.output}",
          file=sys.stderr)
    return 1 if summary.failed else 0
