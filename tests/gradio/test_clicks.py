"""The Object tab's clicks on one object, called directly with the offline tiny-random-tracker model on CPU: each
step's mask equals `Engine.segment_object` called with the same points, box and previous mask logits."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
import pytest

import litetext
from litetext_gradio import app
from litetext_gradio.tabs.api import api_segment_object
from litetext_gradio.tabs.errors import friendly
from litetext_gradio.tabs.object_clicks import click_object, refine_instance, undo_click
from litetext_gradio.tabs.rendering import (
    BOX_COLOR,
    EXCLUDE_COLOR,
    INCLUDE_COLOR,
    no_tracker_hint,
    object_picture,
    object_status,
    object_view,
)
from litetext_gradio.tabs.state import ObjectSession
from litetext_gradio.tabs.text_prompts import segment

TRACKER_MODEL = "tiny-random-tracker"


@pytest.fixture
def engine():
    return litetext.load(TRACKER_MODEL, device="cpu")


@pytest.fixture
def photo(cat_photo):
    return ObjectSession(litetext.load_image(cat_photo), "cat.jpg")


def test_each_click_refines_the_previous_mask_with_every_point_so_far(config, photo, engine):
    first = click_object(photo, 200, 150, "include", TRACKER_MODEL, config)
    second = click_object(first, 60, 40, "exclude", TRACKER_MODEL, config)
    assert (second.clicks.points, second.clicks.point_labels) == ([[200, 150], [60, 40]], [1, 0])
    expected_first = engine.segment_object(photo.image, points=[[200, 150]], point_labels=[1])
    expected = engine.segment_object(photo.image, points=[[200, 150], [60, 40]], point_labels=[1, 0],
                                     mask_input=expected_first.mask_logits[0])
    assert np.array_equal(first.last.result.masks, expected_first.masks)
    assert np.array_equal(second.last.result.masks, expected.masks)
    assert np.allclose(second.last.result.scores, expected.scores)
    assert second.last.result.timings.image_cache_hit  # a click runs no vision encoder on a known image
    status = object_status(second)
    assert "1 include, 1 exclude points" in status and "predicted IoU" in status and "from cache" in status


def test_box_mode_takes_two_corners_and_the_first_runs_no_model(config, photo, engine):
    calls = []
    hook = engine.tracker.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        half = click_object(photo, 300, 240, "box", TRACKER_MODEL, config)
        assert calls == [] and half.last is None and half.clicks.corner == [300, 240]
        assert "click the opposite corner" in object_status(half)
        full = click_object(half, 100, 60, "box", TRACKER_MODEL, config)
    finally:
        hook.remove()
    assert calls and full.clicks.box == [100, 60, 300, 240] and full.clicks.corner is None
    assert np.array_equal(full.last.result.masks, engine.segment_object(photo.image, box=[100, 60, 300, 240]).masks)


def test_a_box_whose_corners_share_a_row_gives_a_friendly_error_and_keeps_the_first_corner(config, photo):
    half = click_object(photo, 100, 60, "box", TRACKER_MODEL, config)
    with pytest.raises(gr.Error, match="empty or inverted"):
        friendly(click_object)(half, 300, 60, "box", TRACKER_MODEL, config)
    assert half.clicks.corner == [100, 60]  # the session in gr.State is unchanged: click the corner again
    pointed = click_object(half, 200, 150, "include", TRACKER_MODEL, config)
    assert pointed.clicks.corner is None and pointed.last is not None  # a point instead drops the half box


def test_undo_drops_the_last_click_and_its_mask(config, photo):
    one = click_object(photo, 200, 150, "include", TRACKER_MODEL, config)
    two = click_object(one, 60, 40, "exclude", TRACKER_MODEL, config)
    back = undo_click(two)
    assert back.clicks == one.clicks and back.last.result is one.last.result
    assert undo_click(back).steps == [] and undo_click(None) is None
    picture, status = object_view(undo_click(back))
    assert np.array_equal(np.asarray(picture), np.asarray(photo.image)) and "Click on the object" in status


def test_the_picture_shows_include_points_green_exclude_points_red_and_the_box(config, photo):
    session = click_object(photo, 200, 150, "include", TRACKER_MODEL, config)
    session = click_object(session, 60, 40, "exclude", TRACKER_MODEL, config)
    session = click_object(click_object(session, 100, 60, "box", TRACKER_MODEL, config), 300, 240, "box",
                               TRACKER_MODEL, config)
    pixels = np.asarray(object_picture(session))
    assert tuple(pixels[150, 200]) == INCLUDE_COLOR and tuple(pixels[40, 60]) == EXCLUDE_COLOR
    assert tuple(pixels[60, 200]) == BOX_COLOR  # the box's top edge


def test_a_model_without_a_tracker_is_answered_by_one_line_naming_the_models_that_have_one(config, photo, tmp_path):
    with pytest.raises(litetext.NoTrackerError) as caught:
        click_object(photo, 10, 10, "include", "tiny-random", config)
    line = no_tracker_hint("tiny-random", config, caught.value)
    assert "\n" not in line and "no tracker" in line and line.endswith("choose **tiny-random-tracker**.")
    trackerless = app.AppConfig(model="tiny-random", device="cpu", models=["tiny-random"], work_dir=str(tmp_path))
    hint = next(block for block in app.build_demo(trackerless).blocks.values()
                if getattr(block, "elem_id", None) == "object-hint")
    assert "no tracker" in hint.value  # said on the page before any click


def test_a_text_found_instance_seeds_the_object_with_its_box_and_mask_logits(config, cat_photo, engine):
    text = segment(None, cat_photo, "cat", "", config.model, False, 0.5, 0.5, config)
    with pytest.raises(gr.Error, match="Select an instance"):
        refine_instance(text, TRACKER_MODEL, config)
    text.selected = 0
    seed = text.shown()[0]
    refined = refine_instance(text, TRACKER_MODEL, config)
    expected = engine.segment_object(text.image, instance=seed, label="cat")
    assert np.array_equal(refined.last.result.masks, expected.masks) and refined.last.result.prompts == ["cat"]
    assert "refining **cat**" in object_status(refined)
    clicked = click_object(refined, 200, 150, "include", TRACKER_MODEL, config)
    again = engine.segment_object(text.image, points=[[200, 150]], point_labels=[1], instance=seed,
                                  mask_input=expected.mask_logits[0])
    assert np.array_equal(clicked.last.result.masks, again.masks)


def test_api_segment_object_returns_one_mask_or_three_candidates_as_rle(config, cat_photo, engine):
    data = json.loads(json.dumps(api_segment_object(cat_photo, "+ 200, 150; - 60, 40", "", "", False, config)))
    assert data["model"] == TRACKER_MODEL and len(data["instances"]) == 1
    expected = engine.segment_object(cat_photo, points=[[200, 150], [60, 40]], point_labels=[1, 0])
    assert np.array_equal(litetext.Result.from_dict(data).masks, expected.masks)
    three = api_segment_object(cat_photo, "", "100, 60, 300, 240", "", True, config)
    assert len(three["instances"]) == 3 and {"decode_ms", "image_cache_hit"} <= set(three["timings"])


@pytest.mark.parametrize(("points", "box", "model", "message"), [
    ("", "", "", "at least one point"),
    ("1, 2, 3", "", "", "two numbers"),
    ("+ 900, 10", "", "", "outside"),
    ("", "1, 2, 3", "", "four numbers"),
    ("", "- 1, 2, 30, 40", "", "one box"),
    ("+ 10, 10", "", "tiny-random", "no tracker"),
    ("+ 10, 10", "", "/etc", "not offered"),
])
def test_api_segment_object_refuses_bad_prompts_naming_the_problem(config, cat_photo, points, box, model, message):
    with pytest.raises(gr.Error, match=message):
        friendly(api_segment_object)(cat_photo, points, box, model, False, config)
