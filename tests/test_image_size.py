"""The resolution lever: `image_size` runs the vision encoder at another input size, opt-in; at that size litetext
still equals plain transformers configured for it, and the bench measures it against the full size."""

from __future__ import annotations

import pytest
from PIL import Image

import litetext
from tests.conftest import Reference, assert_same_instances


def resized_reference(path, image_size: int) -> Reference:
    """The plain transformers pipeline with the checkpoint's config and processor set to `image_size`."""
    from transformers import AutoConfig, Sam3LiteTextModel

    reference = Reference(path)
    config = AutoConfig.from_pretrained(path)
    config.vision_config.backbone_config.image_size = image_size
    reference.model = Sam3LiteTextModel.from_pretrained(path, config=config).eval()
    reference.processor.image_processor.size = {"height": image_size, "width": image_size}
    return reference


def test_a_smaller_input_size_equals_transformers_run_at_that_size(checkpoints, photos):
    engine = litetext.load(str(checkpoints["litetext"]), device="cpu", dtype="fp32", image_size=56)
    assert engine.info.image_size == 56
    assert engine is not litetext.load(str(checkpoints["litetext"]), device="cpu", dtype="fp32")
    reference = resized_reference(checkpoints["litetext"], 56)
    image = Image.open(photos[0]).convert("RGB")
    result = engine.segment(image, ["cat", "person"], threshold=0.3)
    for k, prompt in enumerate(["cat", "person"]):
        assert_same_instances(result, k, reference.segment(image, prompt, threshold=0.3))


@pytest.mark.parametrize("size", [100, 14, 3024, "504", True, 504.0])
def test_an_image_size_that_is_not_a_multiple_of_14_in_range_is_refused(checkpoints, size):
    with pytest.raises(litetext.ModelError, match="image_size must be a multiple of 14"):
        litetext.load(str(checkpoints["litetext"]), device="cpu", image_size=size)


def test_image_size_with_a_tracker_is_refused_naming_why(tracker_checkpoints):
    with pytest.raises(litetext.ModelError, match="clicks and video need the checkpoint's own size"):
        litetext.load(str(tracker_checkpoints["composed"]), device="cpu", image_size=56, tracker=True)


def test_bench_measures_a_smaller_size_against_the_full_size_on_the_same_weights(checkpoints):
    from litetext.bench import run_bench

    report = run_bench(model=str(checkpoints["litetext"]), device="cpu", images=1, size=(160, 120), prompts=2,
                       image_size=56, reference_size=112, log=lambda line: None)
    assert report.inexact and report.settings["image_size"] == 56 and report.settings["reference_size"] == 112
    assert "float32 at 56 px against the float32 at 112 px reference" in report.table()
    assert 0.0 <= report.agreement.recall <= 1.0
