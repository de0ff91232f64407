"""`litetext segment`: text prompts on images, written as COCO JSON and overlays."""

from __future__ import annotations

import argparse
import os
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..errors import OutputError
from ..output import check_output_dir, write_json
from ..prompts import normalize_prompts
from .common import add_filter_arguments, add_image_size_argument, add_model_arguments, warn_if_random
from .ray import add_engine_arguments


def register(commands) -> None:
    """Add the command to `litetext`'s subparsers."""
    segment = commands.add_parser("segment", help="segment images with text prompts; write COCO JSON and overlays")
    segment.add_argument("images", nargs="+", help="image files or directories (searched recursively)")
    segment.add_argument("-p", "--prompt", action="append", required=True,
                         help="a noun phrase to segment; repeat for several (e.g. -p 'red car' -p person)")
    add_model_arguments(segment)
    segment.add_argument("-o", "--out", default="litetext-out", help="output directory (default: %(default)s)")
    add_filter_arguments(segment)
    add_image_size_argument(segment)
    segment.add_argument("--no-overlays", action="store_true", help="write only the COCO JSON")
    add_engine_arguments(segment)
    segment.set_defaults(run=run_segment)


def run_segment(args: argparse.Namespace) -> int:
    """`litetext segment`: COCO JSON and overlays for every image; exit code 1 when an image failed."""
    if args.engine == "ray":
        from .ray import run_segment_args

        return run_segment_args(args)
    from ..coco import CocoBuilder
    from ..images import list_images
    from ..loader import load

    prompts = normalize_prompts(args.prompt)
    paths = list_images(args.images)
    if not paths:
        print("litetext: error: no image files found", file=sys.stderr)
        return 2
    warn_if_random(args.model)
    out = check_output_dir(args.out)
    overlays = check_output_dir(out / "overlays")
    engine = load(args.model, device=args.device, dtype=args.dtype, image_size=args.image_size)
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
    coco_path = write_json(out / "coco.json", coco.to_dict(), indent=None)
    if failures:
        write_json(out / "failures.json", failures)
    done = len(paths) - len(failures)
    print(f"litetext: {done} of {len(paths)} images segmented, {coco.annotation_count} instances -> {coco_path}",
          file=sys.stderr)
    return 1 if failures else 0


def _save_overlay(result, image, path: Path) -> None:
    try:
        result.overlay(image).save(path)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from None
