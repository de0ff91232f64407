"""The vectorised brush RLE encoder gives exactly the Label Studio SDK's encoding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from litetext_label_studio.rle import mask_to_brush_rle
from tests.label_studio.label_studio_helpers import EXAMPLES

brush = pytest.importorskip("label_studio_sdk.converter.brush")


def sdk_rle(mask: np.ndarray) -> list[int]:
    return brush.mask2rle(mask.astype(np.uint8) * 255)


@settings(max_examples=200, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_random_masks_encode_exactly_like_the_sdk(mask):
    assert mask_to_brush_rle(mask) == sdk_rle(mask)


@pytest.mark.parametrize("fill", [0.0, 1.0, 0.5, 0.001])
def test_large_masks_with_runs_over_65536_encode_exactly_like_the_sdk(fill):
    mask = np.random.default_rng(1).random((400, 700)) < fill  # all-equal masks have one run of 1,120,000 bytes
    encoded = mask_to_brush_rle(mask)
    assert encoded == sdk_rle(mask)
    assert np.array_equal(brush.decode_rle(encoded).reshape(400, 700, 4)[:, :, 3] > 0, mask)


def test_engine_masks_encode_exactly_like_the_sdk(engine):
    result = engine.segment(EXAMPLES / "astronaut.jpg", ["astronaut", "rocket"])
    assert len(result) > 0
    for mask in result.masks:
        assert mask_to_brush_rle(mask) == sdk_rle(mask)


def test_a_mask_must_be_two_dimensional():
    with pytest.raises(ValueError, match="2D"):
        mask_to_brush_rle(np.zeros((2, 2, 2), dtype=bool))
