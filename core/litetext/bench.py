"""`litetext bench`: the plain transformers loops and litetext, side by side, on the same workload.

Workloads (every image gets the same K prompts):
1. naive loop: `processor(images, text)` -> `model(**inputs)` -> post-process, once per image and prompt;
2. vision reuse: the documented pattern, vision features computed once per image, one forward per prompt;
3. litetext: `engine.segment_batch` from a cold cache (image encoding included);
4. interactive re-prompt: one new prompt on an image already in litetext's cache, against one naive call;
5. a click (with a tracker): one point on an image in litetext's cache (`segment_object`), against the naive
   path, a full `Sam3TrackerModel` forward with its own vision pass; their masks must be equal.
With `backend="onnx"`, (3) and (4) run again on the ONNX Runtime engine (`litetext.onnx`, exported into the
cache once, untimed) in a process of its own, so its peak memory is the ONNX engine's alone: a process that held
the PyTorch model keeps much of that memory after releasing it.
Before reporting a speed-up it checks that (3) found the same instances as (1). With `reference_dtype`, the
baselines run in that dtype and litetext in `dtype`: an inexact mode (bf16 on a CPU, say) is then measured by
how many of the reference's instances it finds and their mask IoU, not held to identical results.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

ONNX_RUN, ONNX_REPROMPT = "litetext (onnx)", "re-prompt (onnx, cached)"
#: Full-size random architectures by bench name: (text variant, student image trunk or None for SAM3's ViT-H).
RANDOM_VARIANTS = {"random-s0": ("s0", None), "random-s1": ("s1", None), "random-l": ("l", None),
                   "random-sam3": ("sam3", None), "random-ev-m": ("s0", "EV-M"), "random-rv-m": ("s0", "RV-M"),
                   "random-tv-m": ("s0", "TV-M")}
PROMPTS = ["person", "car", "dog", "bicycle", "traffic light", "bus", "tree", "window", "wheel", "road",
           "sky", "building", "cat", "chair", "bottle", "cup"]


@dataclass
class Measurement:
    """One workload's timing and memory."""

    name: str
    seconds: float
    images: int
    peak_host_mb: float
    peak_device_mb: float | None

    @property
    def ms_per_image(self) -> float:
        return self.seconds * 1e3 / max(1, self.images)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds else float("inf")


@dataclass
class Agreement:
    """How litetext's instances compare with the naive loop's, over every image and prompt."""

    instances_reference: int
    instances_litetext: int
    max_score_difference: float
    max_box_difference: float
    mean_mask_iou: float
    identical_masks: bool
    matched_instances: int = 0

    @property
    def recall(self) -> float:
        """Share of the reference's instances that litetext found (paired with mask IoU >= 0.5)."""
        return self.matched_instances / self.instances_reference if self.instances_reference else 1.0

    @property
    def same_instances(self) -> bool:
        return (self.instances_reference == self.instances_litetext == self.matched_instances
                and self.max_score_difference <= 1e-2 and (self.identical_masks or self.mean_mask_iou >= 0.99))


@dataclass
class BenchReport:
    """Everything `litetext bench` measured, with the machine it ran on."""

    settings: dict[str, Any]
    machine: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    agreement: Agreement | None = None
    onnx_agreement: Agreement | None = None  # the ONNX engine against the naive loop, with --backend onnx
    #: Whether the click's mask equalled the naive tracker's (None: no click workload).
    clicks_agree: bool | None = None
    #: ms of each stage for one image and its prompts on the PyTorch engine (trunk, neck, text, heads).
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def inexact(self) -> bool:
        """True when litetext ran in another dtype or at another input size than the baselines: results may
        differ by design."""
        s = self.settings
        return s.get("reference_dtype", s.get("dtype")) != s.get("dtype") or (
            s.get("reference_size", s.get("image_size")) != s.get("image_size"))

    @property
    def mode(self) -> str:
        """How litetext ran against the baselines, in words (dtype, and input size where they differ)."""
        s = self.settings
        ours, theirs = str(s.get("dtype")), str(s.get("reference_dtype", s.get("dtype")))
        if s.get("reference_size", s.get("image_size")) != s.get("image_size"):
            ours, theirs = f"{ours} at {s['image_size']} px", f"{theirs} at {s['reference_size']} px"
        return f"{ours} against the {theirs} reference"

    def get(self, name: str) -> Measurement | None:
        return next((m for m in self.measurements if m.name == name), None)

    @property
    def onnx_inexact(self) -> bool:
        """True when the ONNX engine ran a quantised graph: measured by recall and IoU, not held to equality."""
        return bool(self.settings.get("quantize"))

    def ratios(self) -> dict[str, float]:
        """Speed-ups of litetext over each baseline (ms per image divided)."""
        ours, naive, reuse = self.get("litetext"), self.get("naive loop"), self.get("vision reuse")
        ratios = {}
        if ours and naive:
            ratios["litetext vs naive"] = naive.ms_per_image / ours.ms_per_image
        if ours and reuse:
            ratios["litetext vs vision reuse"] = reuse.ms_per_image / ours.ms_per_image
        reprompt, naive_one = self.get("re-prompt (litetext, cached)"), self.get("re-prompt (naive, one call)")
        if reprompt and naive_one:
            ratios["re-prompt vs naive"] = naive_one.ms_per_image / reprompt.ms_per_image
        click, naive_click = self.get("click (litetext, cached)"), self.get("click (naive tracker, one call)")
        if click and naive_click:
            ratios["click vs naive"] = naive_click.ms_per_image / click.ms_per_image
        onnx, onnx_reprompt = self.get(ONNX_RUN), self.get(ONNX_REPROMPT)
        if onnx and ours:
            ratios["onnx vs litetext (torch)"] = ours.ms_per_image / onnx.ms_per_image
        if onnx and naive:
            ratios["onnx vs naive"] = naive.ms_per_image / onnx.ms_per_image
        if onnx_reprompt and reprompt:
            ratios["onnx re-prompt vs litetext re-prompt"] = reprompt.ms_per_image / onnx_reprompt.ms_per_image
        return ratios

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "machine": self.machine,
            "measurements": [{**asdict(m), "ms_per_image": m.ms_per_image, "images_per_second": m.images_per_second}
                             for m in self.measurements],
            "agreement": None if self.agreement is None else {**asdict(self.agreement),
                                                              "same_instances": self.agreement.same_instances,
                                                              "recall": self.agreement.recall},
            "onnx_agreement": None if self.onnx_agreement is None else {
                **asdict(self.onnx_agreement), "same_instances": self.onnx_agreement.same_instances,
                "recall": self.onnx_agreement.recall},
            "ratios": self.ratios(),
            "clicks_agree": self.clicks_agree,
            "stages_ms": self.stages,
        }

    def table(self) -> str:
        """A Markdown table of the measurements and ratios."""
        lines = ["| workload | ms / image | images / s | peak host MB | peak device MB |", "|---|---|---|---|---|"]
        for m in self.measurements:
            device = "-" if m.peak_device_mb is None else f"{m.peak_device_mb:,.0f}"
            lines.append(f"| {m.name} | {m.ms_per_image:,.1f} | {m.images_per_second:.3f} | "
                         f"{m.peak_host_mb:,.0f} | {device} |")
        for name, ratio in self.ratios().items():
            lines.append(f"| **{name}** | **{ratio:.1f}x** | | | |")
        a = self.agreement
        if a is not None and self.inexact:
            lines.append("")
            lines.append(f"Inexact mode, {self.mode}: found {a.matched_instances} of {a.instances_reference} "
                         f"reference instances ({a.recall:.1%}) plus {a.instances_litetext - a.matched_instances} "
                         f"others; mean mask IoU of the pairs {a.mean_mask_iou:.4f}, max score diff "
                         f"{a.max_score_difference:.2e}")
        elif a is not None:
            lines.append("")
            lines.append(f"Agreement with the naive loop: {a.instances_litetext}/{a.instances_reference} instances, "
                         f"max score diff {a.max_score_difference:.2e}, max box diff {a.max_box_difference:.2e} px, "
                         f"mean mask IoU {a.mean_mask_iou:.4f}, masks identical: {a.identical_masks} -> "
                         f"{'same instances' if a.same_instances else 'DIFFERENT INSTANCES'}")
        if self.stages:
            split = ", ".join(f"{name} {ms:,.0f} ms" for name, ms in self.stages.items())
            lines.append(f"Stages of one image with its prompts (PyTorch): {split}")
        if self.clicks_agree is not None:
            same = "identical mask" if self.clicks_agree else "MASKS DIFFER"
            lines.append(f"Click against the naive tracker: {same}")
        o = self.onnx_agreement
        if o is not None:
            lines.append("")
            lines.append(f"ONNX Runtime ({self.settings.get('quantize') or 'fp32'}) against the naive loop: found "
                         f"{o.matched_instances} of {o.instances_reference} instances ({o.recall:.1%}) plus "
                         f"{o.instances_litetext - o.matched_instances} others; mean mask IoU {o.mean_mask_iou:.4f}, "
                         f"max score diff {o.max_score_difference:.2e}, max box diff {o.max_box_difference:.2e} px"
                         + ("" if self.onnx_inexact else
                            f" -> {'same instances' if o.same_instances else 'DIFFERENT INSTANCES'}"))
        return "\n".join(lines)


class PeakMemory:
    """Peak resident host memory (sampled) and peak device memory (CUDA allocator) over a `with` block."""

    def __init__(self, device: str):
        self.device = device
        self.host_mb = 0.0
        self.device_mb: float | None = None
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.host_mb = _rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        self._stop.set()
        self._thread.join()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.device_mb = torch.cuda.max_memory_allocated() / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.host_mb = max(self.host_mb, _rss_mb())


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: fall back to the process-lifetime peak
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_bench(
    *,
    model: str = "random-s0",
    device: str = "auto",
    dtype: str = "auto",
    images: int = 2,
    size: tuple[int, int] = (1280, 960),
    prompts: int = 4,
    batch_size: int = 4,
    baselines: bool = True,
    compile_mode: str | None = None,
    reference_dtype: str | None = None,
    backend: str = "torch",
    quantize: str | None = None,
    image_size: int | None = None,
    reference_size: int | None = None,
    log: Callable[[str], None] = print,
) -> BenchReport:
    """Run the workloads and return the report. `model` is an alias, hub id, directory or a full-size random
    architecture (`random-s0`, `random-s1`, `random-l`, `random-sam3`). `compile_mode` ("default",
    "reduce-overhead", ...) compiles litetext's decoder first; compile time is not billed to a workload.
    `reference_dtype` runs the baselines in another dtype than litetext, to measure an inexact mode.
    `backend="onnx"` adds the ONNX Runtime engine (CPU, fp32 or with `quantize="int8"` an int8 vision encoder).
    `image_size` runs litetext (both backends) at that input size and `reference_size` the baselines (both default
    to the model's own), the same weights: where they differ, results are measured by recall and mask IoU."""
    import torch

    from .engine import Engine
    from .errors import InputError
    from .models.building import load_model_and_processor, resize_model, resize_tracker, tracker_for
    from .models.checkpoints import resolve_checkpoint
    from .models.configs import check_image_size
    from .models.precision import precision_name, resolve_device, resolve_dtypes, set_precision

    resolved_device = resolve_device(device)
    precision = resolve_dtypes(dtype, resolved_device)
    # the plain transformers loops need one dtype throughout: a vision-only precision is measured against fp32
    baseline_precision = resolve_dtypes(reference_dtype, resolved_device) if reference_dtype else (precision[1],) * 2
    if baseline_precision[0] != baseline_precision[1]:
        raise InputError(f"reference dtype {reference_dtype!r} mixes dtypes; the plain transformers loops need one")
    if backend not in ("torch", "onnx"):
        raise InputError(f"unknown backend {backend!r}; use torch or onnx")
    if quantize is not None and backend != "onnx":
        raise InputError("--quantize applies to the ONNX backend: add --backend onnx")
    if backend == "onnx" and (resolved_device != "cpu" or baseline_precision[1] != torch.float32):
        raise InputError("--backend onnx runs on the CPU against fp32 baselines: use --device cpu and an fp32 "
                         "reference (--reference-dtype fp32 with another --dtype)")
    if model in RANDOM_VARIANTS:
        from .models.random_weights import build_full_size_random_model, build_full_size_random_tracker

        log(f"building a full-size random {model} model (cost does not depend on trained weights)...")
        variant, student = RANDOM_VARIANTS[model]
        network, processor = build_full_size_random_model(variant, student=student, dtype=baseline_precision[1],
                                                          device=resolved_device)
        tracker = build_full_size_random_tracker(network, dtype=baseline_precision[1], device=resolved_device)
    else:
        checkpoint = resolve_checkpoint(model)
        network, processor = load_model_and_processor(checkpoint, resolved_device, baseline_precision[1])
        tracker, _ = tracker_for(network, checkpoint, None, resolved_device, baseline_precision[1])
    native = int(processor.image_processor.size["height"])
    reference_size = check_image_size(reference_size) if reference_size else native
    image_size = check_image_size(image_size) if image_size else native
    if reference_size != native:
        log(f"the baselines run at {reference_size} px (the model's own: {native})")
        network, processor = resize_model(network, processor, reference_size)
        tracker = None if tracker is None else resize_tracker(tracker, network, reference_size)
    engine = Engine(network, processor, name=model, tracker=tracker)  # private: the bench may cast or compile it
    prompt_list = (PROMPTS * (prompts // len(PROMPTS) + 1))[:prompts]
    pictures = _photos(images, size)
    report = BenchReport(
        settings={"model": model, "device": resolved_device, "dtype": precision_name(*precision),
                  "reference_dtype": precision_name(*baseline_precision), "images": images, "size": list(size),
                  "prompts": prompts, "batch_size": batch_size,
                  "batched": engine.batched, "compiled": compile_mode or False, "backend": backend,
                  "quantize": quantize, "image_size": image_size, "reference_size": reference_size},
        machine=_machine(resolved_device),
    )
    threshold = 0.5

    def measure(name: str, count: int, work: Callable[[], Any]) -> Any:
        measurement, value = _measure(name, count, work, resolved_device, log)
        report.measurements.append(measurement)
        return value

    reference = None
    with torch.inference_mode():  # the plain transformers loops run first, on the uncompiled model
        # Lazy CUDA set-up and autotuning are not billed to a workload; against the ONNX engine (timed warm),
        # the PyTorch one is warm from the baselines, or from this when they are skipped.
        if resolved_device != "cpu" or (backend == "onnx" and not baselines):
            _warm_up(engine, pictures[0], prompt_list)
        if baselines:
            reference = measure("naive loop", len(pictures),
                                lambda: [[_naive_call(engine, p, text, threshold) for text in prompt_list]
                                         for p in pictures])
            measure("vision reuse", len(pictures), lambda: [_vision_reuse(engine, p, prompt_list, threshold)
                                                            for p in pictures])
            measure("re-prompt (naive, one call)", 1,
                    lambda: _naive_call(engine, pictures[0], "fresh prompt", threshold))
    if image_size != reference_size:
        log(f"litetext runs at {image_size} px (the same weights; not timed) ...")
        network, processor = resize_model(engine.model, engine.processor, image_size)
        tracker = None if tracker is None else resize_tracker(tracker, network, image_size)
        engine = Engine(network, processor, name=model, tracker=tracker)
    onnx_directory = None
    if backend == "onnx":  # from the fp32 model, before litetext may cast or compile it; not timed
        onnx_directory = _onnx_export(model, engine.model, engine.processor, quantize, log,
                                      None if image_size == native else image_size)
    if baseline_precision != precision:
        log(f"casting the model to {precision_name(*precision)} for litetext ...")
        tracker = None if tracker is None else tracker.to(precision[1])
        if tracker is not None:
            tracker.vision_encoder.to(precision[0])
        engine = Engine(set_precision(engine.model, *precision), engine.processor, name=model, tracker=tracker)
    if compile_mode is not None:
        log("compiling the decoder (not timed) ...")
        engine.compile(None if compile_mode == "default" else compile_mode)
        _warm_up(engine, pictures[0], prompt_list, naive=False)
    engine.image_cache.clear()
    engine.text_cache.clear()
    results = measure("litetext", len(pictures), lambda: [
        item.result for item in engine.segment_batch(pictures, prompt_list, batch_size=batch_size,
                                                     threshold=threshold)])
    measure("re-prompt (litetext, cached)", 1, lambda: engine.segment(pictures[0], "fresh prompt", threshold=threshold))
    report.stages = _stage_split(engine, pictures[0], prompt_list)
    if baselines:
        report.agreement = _agreement(reference, results)
    if engine.has_tracker:
        click = [[pictures[0].width * 0.4, pictures[0].height * 0.55]]
        ours = measure("click (litetext, cached)", 1, lambda: engine.segment_object(pictures[0], points=click))
        if baselines:
            with torch.inference_mode():
                naive = measure("click (naive tracker, one call)", 1,
                                lambda: _naive_click(engine, pictures[0], click))
            report.clicks_agree = bool(np.array_equal(naive, ours.masks))
    if onnx_directory is not None:
        del engine, network, tracker, results  # free the PyTorch model while the ONNX engine's process runs
        measurements, onnx_results = _onnx_workloads(onnx_directory, model, pictures, prompt_list, batch_size,
                                                     threshold, log)
        report.measurements.extend(measurements)
        if baselines:
            report.onnx_agreement = _agreement(reference, onnx_results)
    return report


def _measure(name: str, count: int, work: Callable[[], Any], device: str, log) -> tuple[Measurement, Any]:
    """Run `work` once: its measurement (wall time, peak memory) and its value."""
    log(f"running: {name} ...")
    with PeakMemory(device) as memory:
        started = time.perf_counter()
        value = work()
        if device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    log(f"  {name}: {seconds * 1e3 / max(1, count):,.1f} ms / image")
    return Measurement(name, seconds, count, memory.host_mb, memory.device_mb), value


def _onnx_workloads(directory, model: str, pictures, prompt_list, batch_size: int, threshold: float, log):
    """The ONNX engine's dataset run and re-prompt, in a fresh process (its memory alone, as a user's process
    running only the ONNX backend would have). Returns (measurements, dataset-run results)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import torch

    log(f"running the ONNX Runtime engine from {directory} in a process of its own ...")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        measurements, results, lines = pool.submit(
            _onnx_process, str(directory), model, pictures, prompt_list, batch_size, threshold,
            torch.get_num_threads()).result()
    for line in lines:
        log(line)
    return measurements, results


def _onnx_process(directory: str, model: str, pictures, prompt_list, batch_size: int, threshold: float,
                  threads: int):
    """`_onnx_workloads`' child: load the export, run the two workloads, return their measurements."""
    import torch
    from transformers import AutoProcessor

    from .engine import Engine
    from .onnx.runtime import OnnxSam3

    torch.set_num_threads(threads)
    lines: list[str] = []
    engine = Engine(OnnxSam3(directory), AutoProcessor.from_pretrained(directory), name=f"{model} (onnx)")
    # The PyTorch engine is timed warm, after the baselines ran the same model in its process; so is this one
    # (ONNX Runtime's first run of a session grows its memory arena page by page).
    _warm_up(engine, pictures[0], prompt_list, naive=False)
    run, results = _measure(ONNX_RUN, len(pictures), lambda: [
        item.result for item in engine.segment_batch(pictures, prompt_list, batch_size=batch_size,
                                                     threshold=threshold)], "cpu", lines.append)
    reprompt, _ = _measure(ONNX_REPROMPT, 1, lambda: engine.segment(pictures[0], "fresh prompt", threshold=threshold),
                           "cpu", lines.append)
    return [run, reprompt], results, lines


def _onnx_export(model: str, network: Any, processor: Any, quantize: str | None, log,
                 image_size: int | None = None) -> Any:
    """The ONNX export the bench runs, from the model in memory: made once into litetext's cache, the one
    `load(backend="onnx")` uses (random architectures by name and versions, as their seed is fixed), then its
    int8 copy when asked for. Not timed."""
    from .onnx.export import cached_export

    return cached_export(model, "int8" if quantize else "fp32", network=network, processor=processor,
                         image_size=image_size, log=log)


def _stage_split(engine, picture, prompt_list: list[str]) -> dict[str, float]:
    """ms of each stage for one image and its prompts on a warm PyTorch engine: the image trunk (ViT-H or a
    student with its projection head), the FPN neck, the text encoder (prompts not cached) and the heads (DETR
    encoder and decoder, mask decoder; one call per prompt unless batched)."""
    import torch

    model = engine.model
    pixels = engine.images.pixel_values(picture).to(engine.device, engine.vision_dtype)

    def timed(work: Callable[[], Any]) -> tuple[Any, float]:
        engine.runtime.synchronize()
        started = time.perf_counter()
        value = work()
        engine.runtime.synchronize()
        return value, (time.perf_counter() - started) * 1e3

    with torch.inference_mode():
        _, trunk = timed(lambda: model.vision_encoder.backbone(pixels))
        _, vision = timed(lambda: model.vision_encoder(pixels))
        engine.text_cache.clear()
        embeddings, text = timed(lambda: engine.encode_text(prompt_list))
        features = engine.encode_image(picture)
        _, heads = timed(lambda: engine.decode(features, embeddings))
    return {"trunk": round(trunk, 1), "neck": round(max(0.0, vision - trunk), 1), "text": round(text, 1),
            "heads": round(heads, 1)}


def _photos(count: int, size: tuple[int, int]):
    """Real photos (the examples) resized to `size`; cycled when more are asked for."""
    from pathlib import Path

    from PIL import Image

    folder = Path(__file__).resolve().parents[2] / "examples" / "images"
    paths = sorted(folder.glob("*.jpg"))
    if not paths:  # installed without the repository: structured noise still costs the same
        rng = np.random.default_rng(0)
        return [Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(count)]
    return [Image.open(paths[i % len(paths)]).convert("RGB").resize(size) for i in range(count)]


def _naive_call(engine, image, prompt: str, threshold: float) -> dict:
    processor, model = engine.processor, engine.model
    inputs = processor(images=image, text=prompt, return_tensors="pt").to(engine.device)
    inputs["pixel_values"] = inputs["pixel_values"].to(engine.dtype)
    outputs = model(**inputs)
    found = processor.post_process_instance_segmentation(outputs, threshold=threshold, mask_threshold=0.5,
                                                         target_sizes=inputs["original_sizes"].tolist())[0]
    return {k: v.float().cpu().numpy() for k, v in found.items()}


def _naive_click(engine, image, points) -> np.ndarray:
    """What a user of transformers' tracker writes for one click: its processor, a full forward, post-processing."""
    from transformers import Sam3TrackerProcessor

    processor = Sam3TrackerProcessor(image_processor=engine.processor.image_processor)
    model = engine.tracker.model
    inputs = processor(images=image, input_points=[[points]], input_labels=[[[1] * len(points)]],
                       return_tensors="pt").to(engine.device)
    inputs["pixel_values"] = inputs["pixel_values"].to(next(model.vision_encoder.parameters()).dtype)
    outputs = model(**inputs, multimask_output=False)
    return processor.post_process_masks(outputs.pred_masks.float().cpu(), inputs["original_sizes"].cpu())[0][0].numpy()


def _vision_reuse(engine, image, prompts: list[str], threshold: float) -> list[dict]:
    processor, model = engine.processor, engine.model
    image_inputs = processor(images=image, return_tensors="pt").to(engine.device)
    vision = model.get_vision_features(pixel_values=image_inputs["pixel_values"].to(engine.dtype))
    found = []
    for prompt in prompts:
        text = processor(text=prompt, return_tensors="pt").to(engine.device)
        outputs = model(vision_embeds=vision, **text)
        found.append(processor.post_process_instance_segmentation(
            outputs, threshold=threshold, mask_threshold=0.5,
            target_sizes=image_inputs["original_sizes"].tolist())[0])
    return found


def _warm_up(engine, image, prompts: list[str], *, naive: bool = True) -> None:
    """One untimed pass of each code path (and of each prompt count the compiled decoder will see)."""
    import torch

    if naive:
        with torch.inference_mode():
            _naive_call(engine, image.resize((64, 48)), prompts[0], 0.5)
    for count in sorted({1, len(prompts)}):
        engine.segment(image.resize((64, 48)), prompts[:count])
    engine.image_cache.clear()
    engine.text_cache.clear()


def _agreement(reference: list[list[dict]], results: list) -> Agreement:
    """Compare per image and prompt. Each reference instance is paired, in score order, with litetext's unpaired
    instance of largest mask IoU (at least 0.5), so an inexact mode that drops, adds or reorders instances is
    still measured fairly; the exact check needs equal counts and every pair identical."""
    count_ref = count_ours = matched = 0
    score_diff = box_diff = 0.0
    ious = []
    identical = True
    for per_prompt, result in zip(reference, results):
        for k, expected in enumerate(per_prompt):
            chosen = np.flatnonzero(result.prompt_indices == k)
            count_ref += len(expected["scores"])
            count_ours += len(chosen)
            identical &= len(chosen) == len(expected["scores"])
            overlaps = _mask_ious(expected["masks"].astype(bool), result.masks[chosen])
            free = np.ones(len(chosen), dtype=bool)
            for j, row in enumerate(overlaps):
                best = int(np.argmax(np.where(free, row, -1.0))) if free.any() else -1
                if best < 0 or row[best] < 0.5:
                    identical = False
                    continue
                free[best] = False
                i = chosen[best]
                matched += 1
                ious.append(float(row[best]))
                identical &= bool(row[best] == 1.0)
                score_diff = max(score_diff, abs(float(result.scores[i]) - float(expected["scores"][j])))
                box_diff = max(box_diff, float(np.abs(result.boxes[i] - expected["boxes"][j]).max()))
    return Agreement(count_ref, count_ours, score_diff, box_diff, float(np.mean(ious)) if ious else 1.0, identical,
                     matched)


def _mask_ious(a: np.ndarray, b: np.ndarray, chunk: int = 1 << 18) -> np.ndarray:
    """IoU of every mask in `a` (n, H, W) with every mask in `b` (m, H, W), by exact pixel counts."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    intersections = np.zeros((len(a), len(b)))
    for start in range(0, a.shape[1], chunk):  # float32 counts up to 2**24 are exact
        intersections += a[:, start:start + chunk].astype(np.float32) @ b[:, start:start + chunk].T.astype(np.float32)
    unions = a.sum(1)[:, None] + b.sum(1)[None, :] - intersections
    return np.where(unions > 0, intersections / np.maximum(unions, 1), 1.0)


def _machine(device: str) -> dict[str, Any]:
    import torch
    import transformers

    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            # what torch's CPU kernels use: "AVX512" or "AVX2" made a 1.7x difference to ONNX Runtime's lead
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def plot(report: BenchReport, path: str) -> None:
    """A bar chart of ms per image per workload (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    names = [m.name for m in report.measurements]
    values = [m.ms_per_image for m in report.measurements]
    figure, axis = plt.subplots(figsize=(8, 0.6 * len(names) + 1.5))
    bars = axis.barh(names, values, color=["#888888" if "litetext" not in n else "#e6194b" for n in names])
    axis.bar_label(bars, labels=[f"{v:,.0f} ms" for v in values], padding=3)
    axis.invert_yaxis()
    axis.set_xlabel("ms per image (lower is better)")
    s = report.settings
    precision = report.mode if report.inexact else s["dtype"]
    axis.set_title(f"{s['model']} on {report.machine.get('gpu', 'CPU')} ({precision})\n"
                   f"{s['size'][0]}x{s['size'][1]}, {s['prompts']} prompts")
    axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
    axis.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def save_json(report: BenchReport, path: str) -> None:
    """Write the report, with ratios and agreement, as JSON."""
    with open(path, "w") as file:
        json.dump(report.to_dict(), file, indent=2)


# Video ------------------------------------------------------------------------------------------------------


@dataclass
class VideoBenchReport:
    """Tracking through a long synthetic video: time per frame, and host memory and tracker state as it goes."""

    settings: dict[str, Any]
    machine: dict[str, Any]
    ms_per_frame: float = 0.0
    #: (frame index, resident host MB, tracker state MB, objects in the frame) every tenth of the video.
    samples: list[tuple[int, float, float, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        lines = [f"{self.ms_per_frame:,.1f} ms per frame (mean after the first frame)", "",
                 "| frame | host MB | tracker state MB | objects |", "|---|---|---|---|"]
        lines += [f"| {i} | {host:,.0f} | {state:,.2f} | {objects} |" for i, host, state, objects in self.samples]
        return "\n".join(lines)


def run_video_bench(*, model: str = "tiny-random-tracker", device: str = "auto", dtype: str = "auto",
                    frames: int = 1000, size: tuple[int, int] = (640, 480), prompts: int = 2,
                    max_objects: int | None = None, image_size: int | None = None,
                    log: Callable[[str], None] = print) -> VideoBenchReport:
    """Track `prompts` through a synthetic video of `frames` frames (a photo sliding by, generated on the fly, so
    the video itself costs no memory) in streaming mode. `model` is an alias, hub id or directory with a tracker, or
    a full-size random architecture (`random-s0`, ...) with SAM3's random full-size tracker. `max_objects` caps the
    tracked objects (random weights keep finding new ones, and each object's state is bounded, not the count).
    `image_size` tracks at that input size (the resolution lever)."""
    import torch

    from .engine import Engine
    from .loader import load
    from .models.building import resize_model, resize_tracker
    from .models.precision import resolve_device, resolve_dtypes
    from .pipelines.video import VideoTrackerWeights, state_bytes

    resolved_device = resolve_device(device)
    if model in RANDOM_VARIANTS:
        from .models.random_weights import build_full_size_random_model, build_full_size_random_video_tracker

        log(f"building a full-size random {model} model with SAM3's tracker (cost does not depend on weights)...")
        vision_dtype, text_dtype = resolve_dtypes(dtype, resolved_device)
        variant, student = RANDOM_VARIANTS[model]
        network, processor = build_full_size_random_model(variant, student=student, dtype=text_dtype,
                                                          device=resolved_device)
        if image_size is not None:
            network, processor = resize_model(network, processor, image_size)
        image_tracker, config, video_tracker = build_full_size_random_video_tracker(
            network, dtype=text_dtype, device=resolved_device, image_size=image_size)
        if image_size is not None:
            image_tracker = resize_tracker(image_tracker, network, image_size)
        engine = Engine(network, processor, name=model, tracker=image_tracker,
                        video_tracker=VideoTrackerWeights(config, video_tracker))
    else:
        engine = load(model, device=device, dtype=dtype, image_size=image_size)
    prompt_list = (PROMPTS * (prompts // len(PROMPTS) + 1))[:prompts]
    photo = _photos(1, size)[0]
    step = max(1, size[0] // 200)

    def video():
        for i in range(frames):
            shift = (i * step) % size[0]
            yield photo.transform(photo.size, 0, (1, 0, -shift, 0, 1, 0))  # 0: Image.AFFINE

    report = VideoBenchReport(
        settings={"model": model, "device": resolved_device, "dtype": engine.info.dtype, "frames": frames,
                  "size": list(size), "prompts": prompt_list, "mode": "stream", "max_objects": max_objects,
                  "image_size": engine.info.image_size},
        machine=_machine(resolved_device))
    marks = {max(0, round(frames * k / 10) - 1) for k in range(1, 11)} | {0}
    started = first = None
    for tracked in engine.track(video(), prompt_list, mode="stream", max_objects=max_objects):
        if started is None:
            first = time.perf_counter()
        if tracked.index in marks:
            state = state_bytes(engine.video_pipeline().session) / 2**20
            report.samples.append((tracked.index, _rss_mb(), state, len(tracked.result)))
            log(f"  frame {tracked.index}: host {_rss_mb():,.0f} MB, tracker state {state:,.2f} MB, "
                f"{len(tracked.result)} objects")
        started = time.perf_counter()
    if resolved_device.startswith("cuda"):
        torch.cuda.synchronize()
    report.ms_per_frame = (started - first) * 1e3 / max(1, frames - 1)
    return report
