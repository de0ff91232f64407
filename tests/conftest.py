"""Shared fixtures: tiny offline checkpoints, the plain transformers reference, real photos."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Builds of the tiny-random aliases go to a throwaway cache, never the user's.
os.environ.setdefault("LITETEXT_CACHE", tempfile.mkdtemp(prefix="litetext-test-cache-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The tiny checkpoints' ops take microseconds: one thread beats a pool's hand-offs, and servers the tests start
# inherit it. (Timings are measured by `litetext bench`, never here.)
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
PHOTOS = sorted((REPO / "examples" / "images").glob("*.jpg"))
#: The tiny checkpoints every equivalence test runs on: LiteText (ViT + MobileCLIP-style text), SAM3 (ViT + CLIP
#: text), and EfficientSAM3 (a student trunk in place of the ViT).
ARCHITECTURES = ("litetext", "sam3", "student")


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist's `--dist loadgroup` (as `.ci/run` runs), keep each ecosystem's tests on one worker
    (one Label Studio server, one mongod, one Ray cluster at a time), and each other test file's on one."""
    tests = REPO / "tests"
    for item in items:
        path = Path(str(item.path))
        parts = path.relative_to(tests).parts if path.is_relative_to(tests) else (path.name,)
        item.add_marker(pytest.mark.xdist_group(parts[0] if len(parts) > 1 else path.stem))


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    """Real photos shipped with the examples (cat, coffee, astronaut, rocket)."""
    assert PHOTOS, "examples/images is empty"
    return PHOTOS


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """One tiny random checkpoint per architecture, saved with save_pretrained."""
    from litetext.testing import build_tiny_checkpoint

    root = tmp_path_factory.mktemp("checkpoints")
    from litetext.testing import TINY_STUDENT_TRUNK

    def build(arch: str) -> Path:
        if arch == "student":
            return build_tiny_checkpoint(root / arch, student=TINY_STUDENT_TRUNK)
        return build_tiny_checkpoint(root / arch, architecture=arch)

    return {arch: build(arch) for arch in ARCHITECTURES}


@pytest.fixture(scope="session")
def tracker_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Tiny checkpoints with SAM3's tracker: `video` in the hub layout of facebook/sam3 (a SAM3 detector and its
    tracker), `detector` a LiteText detector sharing its ViT, `composed` the two assembled into one checkpoint."""
    from litetext import assemble
    from litetext.testing import TRACKER_WIDTH, build_tiny_checkpoint, build_tiny_video_checkpoint

    root = tmp_path_factory.mktemp("tracker-checkpoints")
    video = build_tiny_video_checkpoint(root / "video")
    detector = build_tiny_checkpoint(root / "detector", width=TRACKER_WIDTH, seed=1, vision_from=video)
    assemble(detector, video, root / "composed")
    return {"video": video, "detector": detector, "composed": root / "composed"}


@pytest.fixture(scope="session", params=ARCHITECTURES)
def architecture(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def engine_for(checkpoints):
    """engine_for(arch) -> the shared litetext engine on CPU, fp32."""
    import litetext

    return lambda arch: litetext.load(str(checkpoints[arch]), device="cpu", dtype="fp32")


@pytest.fixture(scope="session")
def reference_for(checkpoints):
    """reference_for(arch) -> a Reference running the plain transformers pipeline on the same checkpoint."""
    cache = {}

    def get(arch):
        if arch not in cache:
            cache[arch] = Reference(checkpoints[arch])
        return cache[arch]

    return get


class Reference:
    """processor(images, text) -> model(**inputs) -> processor.post_process_instance_segmentation.

    `model_class` (default `AutoModel`) is what loads the checkpoint: `Sam3Model` for a sam3_video one.
    """

    def __init__(self, path: Path, model_class=None):
        from transformers import AutoModel, Sam3Processor

        self.model = (model_class or AutoModel).from_pretrained(path).eval()
        self.processor = Sam3Processor.from_pretrained(path)

    def segment(self, image, prompt, *, threshold=0.5, mask_threshold=0.5, boxes=None, box_labels=None) -> dict:
        import torch

        kwargs = {}
        if boxes is not None:
            kwargs = {"input_boxes": [boxes], "input_boxes_labels": [box_labels]}
        inputs = self.processor(images=image, text=prompt, return_tensors="pt", **kwargs)
        with torch.no_grad():
            outputs = self.model(**inputs)
        found = self.processor.post_process_instance_segmentation(
            outputs, threshold=threshold, mask_threshold=mask_threshold,
            target_sizes=inputs["original_sizes"].tolist(),
        )[0]
        return {"scores": found["scores"].numpy(), "boxes": found["boxes"].numpy(),
                "masks": found["masks"].numpy().astype(bool)}


class TrackerReference:
    """Sam3TrackerProcessor(images, points, boxes) -> Sam3TrackerModel(**inputs) -> post_process_masks."""

    def __init__(self, path: Path):
        from transformers import Sam3TrackerModel, Sam3TrackerProcessor

        self.model = Sam3TrackerModel.from_pretrained(path).eval()
        self.processor = Sam3TrackerProcessor.from_pretrained(path)

    def segment(self, image, *, points=None, point_labels=None, box=None, mask_input=None,
                multimask=False) -> dict:
        import torch

        kwargs = {}
        if points is not None:
            kwargs.update(input_points=[[points]], input_labels=[[point_labels]])
        if box is not None:
            kwargs["input_boxes"] = [[list(box)]]
        inputs = self.processor(images=image, return_tensors="pt", **kwargs)
        if mask_input is not None:
            inputs["input_masks"] = torch.as_tensor(mask_input, dtype=torch.float32)[None, None]
        with torch.no_grad():
            outputs = self.model(**inputs, multimask_output=multimask)
        masks = self.processor.post_process_masks(outputs.pred_masks, inputs["original_sizes"])[0][0]
        return {"masks": masks.numpy(), "scores": outputs.iou_scores[0, 0].numpy(),
                "mask_logits": outputs.pred_masks[0, 0].numpy()}


def stop_process(process) -> None:
    """Stop a server a test started: SIGTERM, then SIGKILL after 20 s. A process started with
    `start_new_session=True` leads its own group, and the whole group is stopped (servers that fork)."""
    import signal
    import subprocess

    if process.poll() is not None:
        return
    try:
        leads_group = os.getpgid(process.pid) == process.pid
    except ProcessLookupError:  # it exited just now
        return
    send = (lambda sig: os.killpg(process.pid, sig)) if leads_group else process.send_signal
    send(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait()


def assert_same_instances(result, prompt_index: int, reference: dict, *, max_mask_mismatch: float = 0.0) -> None:
    """The result's instances for one prompt equal the reference's: scores and boxes within 1e-4, masks equal.

    `max_mask_mismatch` is the fraction of mask pixels allowed to differ (batched paths: float rounding of
    pixels that sit exactly at the threshold); 0 demands identical masks.
    """
    chosen = result.prompt_indices == prompt_index
    assert chosen.sum() == len(reference["scores"]), "different number of instances"
    np.testing.assert_allclose(result.scores[chosen], reference["scores"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(result.boxes[chosen], reference["boxes"], atol=1e-4, rtol=0)
    mismatched = np.count_nonzero(result.masks[chosen] != reference["masks"])
    assert mismatched <= max_mask_mismatch * reference["masks"].size, f"{mismatched} mask pixels differ"


@pytest.fixture
def batched_engine_for(engine_for):
    """Like engine_for, with batching on (the GPU default) for the duration of one test."""
    switched = []

    def get(arch):
        engine = engine_for(arch)
        engine.batched = True
        switched.append(engine)
        return engine

    yield get
    for engine in switched:
        engine.batched = False
        # Features encoded in a batch differ from one-at-a-time ones in the last bits: an exact test that
        # found them in the shared caches would fail by a few mask pixels, depending on test order.
        engine.image_cache.clear()
        engine.text_cache.clear()


@pytest.fixture(scope="session")
def clip(photos, tmp_path_factory):
    """A short H.264 clip (six frames of a cat moving across), as `litetext track` users pass videos."""
    import litetext

    from .test_video import moving_cat

    path = tmp_path_factory.mktemp("clips") / "cat.mp4"
    with litetext.VideoWriter(path, fps=8) as writer:
        for frame in moving_cat(photos, count=6, gap=range(0)):
            writer.write(frame)
    return path


def export_by_command_line(checkpoint: Path, out: Path) -> Path:
    """`litetext export CHECKPOINT --format onnx --out OUT` (fp32), as a user runs it; returns `out`."""
    pytest.importorskip("onnxruntime", reason='the ONNX export needs pip install "litetext[onnx]"')
    from litetext.cli import main

    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def onnx_export(checkpoints, tmp_path_factory) -> Path:
    """The tiny LiteText checkpoint exported to ONNX. Shared by the ONNX and web tests, so a site built from it must
    leave it usable (quantising it after `litetext web` is tested too)."""
    return export_by_command_line(checkpoints["litetext"], tmp_path_factory.mktemp("onnx") / "tiny-litetext")


@pytest.fixture(scope="session")
def onnx_student_export(checkpoints, tmp_path_factory) -> Path:
    """The tiny EfficientSAM3 checkpoint (a student trunk in place of the ViT) exported to ONNX."""
    return export_by_command_line(checkpoints["student"], tmp_path_factory.mktemp("onnx-student") / "tiny-student")


@pytest.fixture(scope="session")
def onnx_tracker_export(tracker_checkpoints, tmp_path_factory) -> Path:
    """The tiny LiteText detector composed with SAM3's tracker, exported to ONNX (tracker graphs too)."""
    return export_by_command_line(tracker_checkpoints["composed"],
                                  tmp_path_factory.mktemp("onnx-tracker") / "tiny-tracker")
