"""Prompt, box and threshold validation, in the engine and as properties."""

from __future__ import annotations

import math
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litetext import BoxError, InputError, PromptError, normalize_prompts, split_prompts
from litetext.prompts import validate_boxes

from .bad_inputs import BAD_EXEMPLAR_BOXES


@pytest.mark.parametrize("prompts", [[], "", "   ", ["cat", ""], [None], [3]])
def test_empty_blank_or_non_text_prompts_are_refused(engine_for, photos, prompts):
    with pytest.raises(PromptError):
        engine_for("litetext").segment(photos[0], prompts)


def test_prompts_are_stripped_and_deduplicated_in_order():
    assert normalize_prompts([" red  car ", "person", "red car"]) == ["red car", "person"]
    assert normalize_prompts("cat") == ["cat"]


def test_prompts_typed_in_one_box_are_split_and_cleaned():
    assert split_prompts(" cat ,  red   car,\nperson, cat") == ["cat", "red car", "person"]
    assert split_prompts("a; b, c", separators=",;") == ["a", "b", "c"]
    with pytest.raises(PromptError, match="no prompt"):
        split_prompts(" , ,\n")


def test_non_utf8_bytes_prompt_is_refused():
    with pytest.raises(PromptError, match="UTF-8"):
        normalize_prompts([b"\xff\xfe cat"])


def test_text_with_unpaired_surrogates_is_refused():
    with pytest.raises(PromptError, match="UTF-8"):
        normalize_prompts(["cat \udcff"])  # what JSON "\udcff" decodes to


def test_overlong_prompt_is_truncated_with_a_warning(engine_for, photos):
    engine = engine_for("litetext")
    long_prompt = " ".join(["red car"] * 5000)  # 10 kB
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = engine.segment(photos[0], long_prompt)
    assert any("only the first 32" in str(w.message) for w in caught)
    assert result.prompts == [long_prompt]


@pytest.mark.parametrize(
    "box, match",
    [([0, 0, 10_000, 10], "outside"), ([-5, 0, 10, 10], "outside"), ([10, 10, 5, 20], "inverted"),
     ([0, 0, math.nan, 10], "NaN"), ([1, 2, 3], "four numbers"), (["a", 0, 1, 1], "four numbers")],
)
def test_bad_boxes_are_refused(engine_for, photos, box, match):
    with pytest.raises(BoxError, match=match):
        engine_for("litetext").segment(photos[0], "cat", boxes=[box])


def test_box_labels_must_match_and_be_binary(engine_for, photos):
    engine = engine_for("litetext")
    with pytest.raises(BoxError, match="labels"):
        engine.segment(photos[0], "cat", boxes=[[0, 0, 10, 10]], box_labels=[1, 0])
    with pytest.raises(BoxError, match="1 \\(positive\\) or 0"):
        engine.segment(photos[0], "cat", boxes=[[0, 0, 10, 10]], box_labels=[2])


@pytest.mark.parametrize("threshold", [math.nan, -0.1, 1.5, "0.5", math.inf])
def test_bad_thresholds_are_refused(engine_for, photos, threshold):
    with pytest.raises(InputError, match="between 0 and 1"):
        engine_for("litetext").segment(photos[0], "cat", threshold=threshold)
    with pytest.raises(InputError, match="between 0 and 1"):
        engine_for("litetext").segment(photos[0], "cat", mask_threshold=threshold)


@given(st.lists(st.text(max_size=30), max_size=8))
def test_normalize_prompts_returns_unique_clean_text_or_refuses(prompts):
    try:
        cleaned = normalize_prompts(prompts)
    except PromptError:
        assert not prompts or any(not " ".join(p.split()) for p in prompts)
        return
    assert cleaned and len(cleaned) == len(set(cleaned))
    assert all(p == " ".join(p.split()) and p for p in cleaned)


@given(
    st.tuples(st.integers(1, 2000), st.integers(1, 2000)),
    st.lists(st.tuples(*[st.floats(-100, 2100) | st.just(math.nan)] * 4), min_size=1, max_size=5),
)
def test_validate_boxes_accepts_exactly_the_boxes_inside_the_image(size, boxes):
    height, width = size

    def inside(b):
        x1, y1, x2, y2 = b
        return all(map(math.isfinite, b)) and 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height

    if all(inside(b) for b in boxes):
        checked, labels = validate_boxes(boxes, None, (height, width))
        assert checked == [list(b) for b in boxes] and labels == [1] * len(boxes)
    else:
        with pytest.raises(BoxError):
            validate_boxes(boxes, None, (height, width))


@pytest.mark.parametrize("case", list(BAD_EXEMPLAR_BOXES))
def test_exemplar_boxes_of_text_or_infinite_labels_are_refused_by_name(case, engine_for, photos):
    arguments, error, words = BAD_EXEMPLAR_BOXES[case]
    with pytest.raises(error, match=words):
        engine_for("litetext").segment(photos[0], "cat", **arguments)
