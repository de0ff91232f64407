"""`litetext.SegmentOptions`: the settings every adapter shares, defined once."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import litetext


def test_options_give_the_shared_engine_and_keywords_segment_accepts(checkpoints, photos):
    options = litetext.SegmentOptions(model=str(checkpoints["litetext"]), device="cpu", dtype="fp32", threshold=0.2,
                                      max_instances=3, min_area=10)
    engine = options.engine()
    assert engine is litetext.load(str(checkpoints["litetext"]), device="cpu", dtype="fp32")
    result = engine.segment(photos[0], "cat", **options.filters())
    expected = engine.segment(photos[0], "cat", threshold=0.2, max_instances=3, min_area=10)
    assert 0 < len(result) <= 3 and result.scores.min() > 0.2 and result.masks.sum(axis=(1, 2)).min() >= 10
    assert np.array_equal(result.masks, expected.masks)


def test_options_are_frozen_with_the_documented_defaults():
    options = litetext.SegmentOptions()
    assert (options.model, options.device, options.dtype) == (litetext.DEFAULT_MODEL, "auto", "auto")
    assert options.filters() == {"threshold": 0.5, "mask_threshold": 0.5, "max_instances": None, "min_area": 0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.threshold = 0.1  # type: ignore[misc]


def test_the_ray_job_options_extend_the_core_options():
    from litetext.distributed import JobOptions

    options = JobOptions(prompts=("cat",), threshold=0.3)
    assert isinstance(options, litetext.SegmentOptions)
    assert options.identity() == {"model": litetext.DEFAULT_MODEL, "prompts": ["cat"], **options.filters()}
