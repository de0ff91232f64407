"""Benchmark: the FiftyOne adapter's batched run against one full model call per prompt.

    python -m litetext_fiftyone.benchmark --images 300 --prompts "cat,coffee cup,person,rocket" --model tiny-random

Builds a temporary dataset of distinct images (crops and flips of the example photos, so no image repeats and
the image cache cannot help), then times, end to end including reading images and writing labels:

- batched: `segment_samples` (one vision encoding per image, batched across images, all prompts decoded
  together, labels written per batch)
- per-prompt loop: for each sample and each prompt, one full `engine.segment(image, [prompt])` call with the
  engine's caches disabled (vision encoder, text encoder and decoder every time), labels saved per sample.

Prints samples/second for both. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import platform
import random
import tempfile
import time
from pathlib import Path

from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "images"


def make_images(count: int, out: Path, seed: int = 0) -> list[Path]:
    """`count` distinct JPEGs cut from the example photos."""
    rng = random.Random(seed)
    sources = [Image.open(p).convert("RGB") for p in sorted(EXAMPLES.glob("*.jpg"))]
    paths = []
    for i in range(count):
        image = sources[i % len(sources)]
        w, h = image.size
        cw, ch = rng.randint(w * 2 // 3, w), rng.randint(h * 2 // 3, h)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        crop = image.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        path = out / f"img_{i:04d}.jpg"
        crop.save(path, quality=90)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--prompts", default="cat,coffee cup,person,rocket")
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)

    import fiftyone as fo
    import litetext
    from litetext_fiftyone import SegmentOptions, segment_samples, to_fiftyone_detections

    prompts = litetext.normalize_prompts(args.prompts.split(","))
    engine = litetext.load(args.model, device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(args.images, Path(tmp))
        dataset = fo.Dataset()
        dataset.add_samples([fo.Sample(filepath=str(p)) for p in paths])
        engine.segment(str(paths[0]), prompts)  # warm-up: weights, kernels, text embeddings

        # Baseline: one full model call per (image, prompt), nothing cached.
        engine.image_cache.resize(0)
        engine.text_cache.resize(0)
        started = time.perf_counter()
        for sample in dataset.iter_samples(autosave=True, batch_size=args.batch_size):
            results = [engine.segment(sample.filepath, [prompt]) for prompt in prompts]
            detections = []
            for result in results:
                detections.extend(to_fiftyone_detections(result).detections)
            sample["per_prompt"] = fo.Detections(detections=detections)
        loop_seconds = time.perf_counter() - started
        engine.image_cache.resize(1 << 30)
        engine.text_cache.resize(64 << 20)

        options = SegmentOptions(prompts=prompts, label_field="batched", model=args.model, device=args.device,
                                 batch_size=args.batch_size)
        started = time.perf_counter()
        summary = segment_samples(dataset, options, engine=engine)
        batched_seconds = time.perf_counter() - started
        assert summary.segmented == args.images, summary
        instances = dataset.count("batched.detections")
        dataset.delete()

    import torch

    device = torch.cuda.get_device_name(0) if engine.info.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"model {engine.info.model} on {engine.info.device} ({device}), {engine.info.dtype}; "
          f"{torch.get_num_threads()} torch threads; python {platform.python_version()}")
    print(f"{args.images} images x {len(prompts)} prompts ({', '.join(prompts)}), batch size {args.batch_size}; "
          f"{instances} instances")
    loop_rate, batched_rate = args.images / loop_seconds, args.images / batched_seconds
    print(f"per-prompt loop : {loop_seconds:8.1f} s  {loop_rate:7.2f} samples/s")
    print(f"batched adapter : {batched_seconds:8.1f} s  {batched_rate:7.2f} samples/s  "
          f"({batched_rate / loop_rate:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
