"""Result: filtering without the model, and converters proven by round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from litetext import Result, masks_from_rle, prompt_color


def make_result(masks: np.ndarray, prompt_indices=None, scores=None, prompts=("cat", "dog")) -> Result:
    count, height, width = masks.shape
    prompt_indices = np.zeros(count, np.int64) if prompt_indices is None else np.asarray(prompt_indices)
    scores = np.linspace(0.9, 0.5, count).astype(np.float32) if scores is None else np.asarray(scores, np.float32)
    boxes = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [0, 0, 0, 0])
    return Result(list(prompts), prompt_indices, scores, np.array(boxes, np.float32).reshape(-1, 4), masks,
                  (width, height))


@pytest.fixture
def blobs() -> Result:
    masks = np.zeros((3, 60, 80), bool)
    masks[0, 10:30, 10:40] = True
    masks[1, 35:55, 50:75] = True
    yy, xx = np.mgrid[:60, :80]
    masks[2] = (yy - 30) ** 2 + (xx - 40) ** 2 < 15**2
    return make_result(masks, prompt_indices=[0, 1, 0], scores=[0.9, 0.6, 0.75])


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(bool, st.tuples(st.integers(0, 4), st.integers(1, 40), st.integers(1, 40))))
def test_rle_round_trip_is_exact(masks):
    result = make_result(masks)
    rles = result.to_rle()
    assert len(rles) == len(masks)
    decoded = masks_from_rle(rles)
    if len(masks):
        assert np.array_equal(decoded, masks)
    json.dumps(rles)


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(bool, st.tuples(st.integers(0, 3), st.integers(1, 30), st.integers(1, 30))))
def test_dict_round_trip_keeps_every_instance(masks):
    result = make_result(masks)
    again = Result.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.prompts == result.prompts and again.image_size == result.image_size
    assert np.array_equal(again.masks, result.masks)
    np.testing.assert_array_equal(again.prompt_indices, result.prompt_indices)
    np.testing.assert_allclose(again.scores, result.scores)
    np.testing.assert_allclose(again.boxes, result.boxes)


def test_polygons_rasterise_back_to_the_mask(blobs):
    import cv2

    for mask, shapes in zip(blobs.masks, blobs.to_polygons(tolerance=0)):
        canvas = np.zeros(mask.shape, np.uint8)
        for flat in shapes:
            cv2.fillPoly(canvas, [np.array(flat).reshape(-1, 2).astype(np.int32)], 1)
        iou = (canvas.astype(bool) & mask).sum() / (canvas.astype(bool) | mask).sum()
        assert iou > 0.97


def test_filter_by_score_area_prompt_and_count_needs_no_model(blobs):
    assert len(blobs.filter(min_score=0.7)) == 2
    assert blobs.filter(prompts=["dog"]).labels == ["dog"]
    assert len(blobs.filter(min_area=int(blobs.areas.max()))) == 1
    best = blobs.filter(max_instances=2)
    assert list(best.scores) == pytest.approx([0.9, 0.75])
    assert blobs.filter(max_instances=0).masks.shape == (0, 60, 80)


def test_a_filter_that_keeps_every_instance_shares_the_masks_instead_of_copying(blobs):
    kept = blobs.filter(min_area=1)
    assert kept is not blobs and len(kept) == len(blobs)
    assert np.shares_memory(kept.masks, blobs.masks)
    assert not np.shares_memory(blobs.filter(min_score=0.7).masks, blobs.masks)


def test_union_and_semantic_maps(blobs):
    assert np.array_equal(blobs.union_mask(), blobs.masks.any(0))
    assert np.array_equal(blobs.union_mask("dog"), blobs.masks[1])
    semantic = blobs.semantic_map()
    assert set(np.unique(semantic)) == {0, 1, 2}
    overlap = blobs.masks[0] & blobs.masks[2]
    assert (semantic[overlap] == 1).all()  # both answer "cat", index 0 -> value 1


def test_overlay_tints_masks_in_their_prompt_colour(blobs):
    image = Image.new("RGB", (80, 60), (0, 0, 0))
    overlay = np.asarray(blobs.overlay(image, alpha=1.0, draw_boxes=False))
    assert tuple(overlay[45, 60]) == prompt_color(1)
    assert tuple(overlay[0, 0]) == (0, 0, 0)
    with pytest.raises(ValueError, match="overlay image"):
        blobs.overlay(Image.new("RGB", (10, 10)))


def test_coco_annotations_load_in_pycocotools(blobs, tmp_path):
    from pycocotools.coco import COCO

    from litetext.coco import CocoBuilder

    builder = CocoBuilder(["cat", "dog"])
    builder.add("a.png", blobs)
    builder.add("b.png", blobs.filter(prompts=["dog"]))
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(builder.to_dict()))
    coco = COCO(str(path))
    assert len(coco.getAnnIds()) == 4
    first = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    for annotation, mask in zip(first, blobs.masks):
        assert np.array_equal(coco.annToMask(annotation).astype(bool), mask)
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["cat", "dog"]


def test_empty_result_converts_cleanly():
    empty = Result.empty(["cat"], (20, 10))
    assert len(empty) == 0 and empty.to_rle() == [] and empty.to_polygons() == []
    assert empty.union_mask().shape == (10, 20)
    assert Result.from_dict(empty.to_dict()).masks.shape == (0, 10, 20)


def test_instances_iterate_with_prompt_and_area(blobs):
    instances = list(blobs)
    assert [i.prompt for i in instances] == ["cat", "dog", "cat"]
    assert instances[0].area == 600 and instances[0].box == (10.0, 10.0, 40.0, 30.0)
