"""Clicks and boxes on one object: `Engine.segment_object` against transformers' own `Sam3TrackerModel`."""

from __future__ import annotations

import numpy as np
import pytest

import litetext

from .bad_inputs import BAD_OBJECT_PROMPTS
from .conftest import TrackerReference

#: The checkpoints with a tracker: SAM3's own (facebook/sam3's layout) and LiteText composed with SAM3's tracker.
LAYOUTS = ("video", "composed")

CLICK = {"points": [[100, 120]], "point_labels": [1]}
CASES = {
    "one click": CLICK,
    "clicks with negatives": {"points": [[100, 120], [300, 200], [50, 60]], "point_labels": [1, 0, 1]},
    "box only": {"box": [40, 30, 300, 280]},
    "box and clicks": {"box": [40, 30, 300, 280], **CLICK},
    "three candidates": {**CLICK, "multimask": True},
}


@pytest.fixture(scope="module")
def cat(photos):
    return litetext.load_image(next(p for p in photos if p.stem == "cat"))


@pytest.fixture(scope="module")
def tracker_engine(tracker_checkpoints):
    return lambda layout: litetext.load(str(tracker_checkpoints[layout]), device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def tracker_reference(tracker_checkpoints):
    cache = {}
    return lambda layout: cache.setdefault(layout, TrackerReference(tracker_checkpoints[layout]))


def assert_same_object(result, reference) -> None:
    assert np.array_equal(result.masks, reference["masks"])
    np.testing.assert_array_equal(result.scores, reference["scores"])
    np.testing.assert_array_equal(result.mask_logits, reference["mask_logits"])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", list(CASES))
def test_object_prompt_equals_sam3_tracker_model(layout, case, cat, tracker_engine, tracker_reference):
    prompt = CASES[case]
    result = tracker_engine(layout).segment_object(cat, **prompt)
    assert len(result) == (3 if prompt.get("multimask") else 1)
    assert_same_object(result, tracker_reference(layout).segment(cat, **prompt))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_refinement_round_with_previous_logits_equals_reference(layout, cat, tracker_engine, tracker_reference):
    engine = tracker_engine(layout)
    first = engine.segment_object(cat, **CLICK)
    points, labels = [[100, 120], [220, 90]], [1, 0]
    refined = engine.segment_object(cat, points=points, point_labels=labels, mask_input=first.mask_logits[0])
    expected = tracker_reference(layout).segment(cat, points=points, point_labels=labels,
                                                 mask_input=first.mask_logits[0])
    assert_same_object(refined, expected)


def test_click_after_text_prompt_runs_no_vision_encoder(cat, tracker_engine):
    engine = tracker_engine("composed")
    engine.image_cache.clear()
    calls = []
    hook = engine.model.vision_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        engine.segment(cat, "cat")
        clicked = engine.segment_object(cat, **CLICK)
    finally:
        hook.remove()
    assert len(calls) == 1
    assert clicked.timings.image_cache_hit


def test_text_instance_seeds_the_tracker_with_its_box_and_logits(cat, tracker_engine, tracker_reference):
    engine = tracker_engine("composed")
    found = engine.segment(cat, "cat", threshold=0.0, keep_mask_logits=True)
    instance = found[0]
    fixed = engine.segment_object(cat, points=[[120, 140]], point_labels=[0], instance=instance)
    expected = tracker_reference("composed").segment(cat, points=[[120, 140]], point_labels=[0], box=instance.box,
                                                     mask_input=instance.mask_logits)
    assert_same_object(fixed, expected)


def test_in_memory_composition_equals_assembled_checkpoint(cat, tracker_checkpoints, tracker_engine):
    composed = litetext.load(str(tracker_checkpoints["detector"]), device="cpu", dtype="fp32",
                             tracker=str(tracker_checkpoints["video"]))
    assert composed.has_tracker and composed.info.family == "litetext"
    assert composed.tracker.model.vision_encoder.backbone is composed.model.vision_encoder.backbone
    for prompt in CASES.values():
        expected = tracker_engine("composed").segment_object(cat, **prompt)
        got = composed.segment_object(cat, **prompt)
        assert np.array_equal(got.masks, expected.masks) and np.array_equal(got.scores, expected.scores)


def test_tracker_result_rethresholds_like_the_tracker_processor(cat, tracker_engine):
    result = tracker_engine("video").segment_object(cat, **CLICK, multimask=True)
    assert np.array_equal(result.with_mask_threshold(0.5).masks, result.masks)
    assert result.with_mask_threshold(0.9).masks.sum() <= result.masks.sum()
    assert result.boxes.shape == (3, 4)
    for mask, box in zip(result.masks, result.boxes):
        if mask.any():
            rows, cols = np.nonzero(mask)
            assert tuple(box) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


def test_cached_image_holds_tracker_embeddings_within_budget(cat, tracker_engine):
    engine = tracker_engine("video")
    engine.image_cache.clear()
    features = engine.encode_image(cat)
    assert features.tracker_embeddings is not None and len(features.tracker_embeddings) == 3
    tracker_bytes = sum(t.numel() * t.element_size() for t in features.tracker_embeddings)
    assert engine.image_cache.stats().bytes == features.nbytes > tracker_bytes




@pytest.mark.parametrize("case", list(BAD_OBJECT_PROMPTS))
def test_bad_object_prompt_is_refused_by_name(case, cat, tracker_engine):
    prompt, error, words = BAD_OBJECT_PROMPTS[case]
    with pytest.raises(error, match=words):
        tracker_engine("video").segment_object(cat, **prompt)


def test_engine_without_tracker_names_both_ways_to_get_one(cat, engine_for):
    engine = engine_for("litetext")
    assert not engine.has_tracker
    with pytest.raises(litetext.NoTrackerError) as raised:
        engine.segment_object(cat, **CLICK)
    message = str(raised.value)
    assert "\n" not in message and "tracker='sam3'" in message and "litetext models assemble" in message


def test_a_student_detector_composed_with_sam3s_tracker_answers_clicks_like_the_tracker_on_the_student(
        cat, checkpoints, tracker_checkpoints):
    """EfficientSAM3 shares its student trunk with SAM3's tracker, as upstream does: the click equals
    `Sam3TrackerModel` whose image encoder runs the student trunk, and the composition warns about nothing."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'the ViTs differ' warning: a student replaces the ViT by design
        engine = litetext.load(str(checkpoints["student"]), device="cpu", dtype="fp32",
                               tracker=str(tracker_checkpoints["video"]))
    reference = TrackerReference(tracker_checkpoints["video"])
    reference.model.vision_encoder.backbone = engine.model.vision_encoder.backbone
    for case in ("one click", "box and clicks"):
        result = engine.segment_object(cat, **CASES[case])
        expected = reference.segment(cat, **CASES[case])
        assert np.array_equal(result.masks, expected["masks"])
        np.testing.assert_array_equal(result.scores, expected["scores"])
