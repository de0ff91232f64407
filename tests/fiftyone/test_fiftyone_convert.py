"""Result -> fo.Detections / fo.Segmentation conversions."""

from __future__ import annotations

import numpy as np
import pytest

import litetext
from litetext_fiftyone import detection_to_mask, semantic_targets, to_fiftyone_detections, to_fiftyone_segmentation
from litetext_fiftyone.convert import pixel_box, relative_box


def _synthetic_result() -> litetext.Result:
    """Two instances on a 7x5 image: one whose mask spills outside its box, one fractional box."""
    masks = np.zeros((2, 5, 7), dtype=bool)
    masks[0, 1:3, 1:4] = True
    masks[0, 4, 6] = True  # outside the model's box
    masks[1, 2:5, 3:7] = True
    return litetext.Result(
        prompts=["cat", "cup"], prompt_indices=np.array([0, 1]), scores=np.array([0.9, 0.6], dtype=np.float32),
        boxes=np.array([[1.0, 1.0, 4.0, 3.0], [2.6, 1.7, 6.2, 4.9]], dtype=np.float32), masks=masks,
        image_size=(7, 5),
    )


def test_detection_masks_pasted_back_at_their_boxes_equal_the_engine_masks(engine, photo_paths):
    result = engine.segment(str(photo_paths[0]), ["cat", "coffee cup", "table"])
    assert len(result) > 0
    detections = to_fiftyone_detections(result)
    assert len(detections.detections) == len(result)
    for detection, instance in zip(detections.detections, result):
        assert np.array_equal(detection_to_mask(detection, result.image_size), instance.mask)
        # FiftyOne's own rendering of the detection agrees
        rendered = detection.to_segmentation(frame_size=result.image_size, target=1).mask
        assert np.array_equal(rendered.astype(bool), instance.mask)


def test_detections_carry_label_confidence_and_relative_box():
    result = _synthetic_result()
    detections = to_fiftyone_detections(result, label_map={"cup": "mug"}).detections
    assert [d.label for d in detections] == ["cat", "mug"]
    assert detections[1]["prompt"] == "cup"
    assert detections[0].confidence == pytest.approx(0.9)
    for detection in detections:
        x, y, w, h = detection.bounding_box
        assert 0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9
    # box 0 widened to hold the stray pixel at (6, 4); box 1 snapped outwards to whole pixels
    assert pixel_box(result.boxes[0], result.masks[0], (7, 5)) == (1, 1, 7, 5)
    assert pixel_box(result.boxes[1], result.masks[1], (7, 5)) == (2, 1, 7, 5)
    for detection, mask in zip(detections, result.masks):
        assert np.array_equal(detection_to_mask(detection, (7, 5)), mask)


def test_relative_boxes_recover_exact_pixels_for_every_position():
    for size in (3, 7, 49, 300, 451, 1000, 4097):
        for start in range(0, size, max(1, size // 50)):
            for stop in (start + 1, size):
                x, w = relative_box(start, 0, stop, 1, (size, 1))[::2]
                assert int(size * x) == start and int(size * (x + w)) == stop


def test_semantic_segmentation_is_the_results_semantic_map():
    result = _synthetic_result()
    segmentation = to_fiftyone_segmentation(result)
    assert np.array_equal(segmentation.mask, result.semantic_map())
    assert semantic_targets(result.prompts, {"cup": "mug"}) == {1: "cat", 2: "mug"}


def test_empty_result_gives_no_detections():
    result = litetext.Result.empty(["cat"], (10, 8))
    assert to_fiftyone_detections(result).detections == []
    assert not to_fiftyone_segmentation(result).mask.any()
