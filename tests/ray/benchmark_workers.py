"""Throughput of the Ray job with 1, 2, ... workers on generated images (numbers for docs/scale.md).

    python tests/ray/benchmark_workers.py --images 300 --workers 1 2 --model tiny-random

Each worker count runs in a fresh output folder on one local Ray instance. Reports the job's wall time (with
actor start-up and model loading) and the steady rate between the first and the last committed shard.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def make_images(folder: Path, count: int, seed: int = 0) -> None:
    from PIL import Image

    photos = [Image.open(p).convert("RGB") for p in sorted((REPO / "examples" / "images").glob("*.jpg"))]
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = photos[i % len(photos)]
        side = rng.randint(min(image.size) // 3, min(image.size))
        x, y = rng.randint(0, image.width - side), rng.randint(0, image.height - side)
        image.crop((x, y, x + side, y + side)).resize((rng.randint(64, 128), rng.randint(64, 128))).save(
            folder / f"img{i:05d}.jpg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shard-size", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("LITETEXT_CACHE", tempfile.mkdtemp(prefix="litetext-bench-cache-"))

    import ray

    import litetext
    from litetext.distributed import run_segment_job

    litetext.load(args.model, device=args.device)  # build/download the checkpoint once, before the workers
    root = Path(tempfile.mkdtemp(prefix="litetext-bench-"))
    make_images(root / "images", args.images)
    paths = sorted(str(p) for p in (root / "images").glob("*.jpg"))
    started = time.perf_counter()
    engine = litetext.load(args.model, device=args.device)
    for _ in engine.segment_batch(paths, ["cat", "person"]):
        pass
    wall = time.perf_counter() - started
    print(json.dumps({"workers": "none (one process, segment_batch)", "images": args.images, "wall_s": round(wall, 1),
                      "images_per_s_overall": round(args.images / wall, 2),
                      "load_average_before": round(os.getloadavg()[0], 2)}), flush=True)
    ray.init(num_cpus=max(args.workers), include_dashboard=False, _node_ip_address="127.0.0.1",
             logging_level="WARNING")
    rows = []
    for workers in args.workers:
        output = root / f"out-{workers}"
        load = os.getloadavg()[0]
        started = time.perf_counter()
        summary = run_segment_job([root / "images"], ["cat", "person"], output, model=args.model, device=args.device,
                                  workers=workers, shard_size=args.shard_size, log=lambda message: None)
        wall = time.perf_counter() - started
        stamps = sorted(p.stat().st_mtime for p in output.glob("part-*"))
        per_shard = args.images / len(stamps)
        steady = (len(stamps) - 1) * per_shard / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
        rows.append({"workers": workers, "images": args.images, "shards": summary.shards, "wall_s": round(wall, 1),
                     "images_per_s_overall": round(args.images / wall, 2), "images_per_s_steady": round(steady, 2),
                     "load_average_before": round(load, 2)})
        print(json.dumps(rows[-1]), flush=True)
    ray.shutdown()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, ray {ray.__version__}")


if __name__ == "__main__":
    main()
