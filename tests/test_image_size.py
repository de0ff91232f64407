"""The resolution lever: `image_size` runs the vision encoder at another input size, opt-in; at that size litetext
still equals plain transformers configured for it, and the bench measures it against the full size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import litetext
from tests.conftest import Reference, TrackerReference, assert_same_instances


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


def resized_tracker_reference(path, image_size: int) -> TrackerReference:
    """transformers' own `Sam3TrackerModel` and `Sam3TrackerProcessor` with their sizes set to `image_size`."""
    from transformers import Sam3TrackerModel, Sam3TrackerProcessor

    reference = TrackerReference(path)
    config = reference.model.config
    side = image_size // config.prompt_encoder_config.patch_size
    config.prompt_encoder_config.image_size = image_size
    config.vision_config.backbone_config.image_size = image_size
    config.vision_config.backbone_feature_sizes = [[side * 4] * 2, [side * 2] * 2, [side] * 2]
    reference.model = Sam3TrackerModel.from_pretrained(path, config=config).eval()
    reference.processor.image_processor.size = {"height": image_size, "width": image_size}
    reference.processor = Sam3TrackerProcessor(image_processor=reference.processor.image_processor)
    return reference


@pytest.mark.parametrize("layout", ["video", "composed"])
@pytest.mark.parametrize("prompt", [{"points": [[100, 120], [300, 200]], "point_labels": [1, 0]},
                                    {"box": [40, 30, 300, 280], "multimask": True}], ids=["clicks", "box"])
def test_clicks_at_a_smaller_size_equal_transformers_tracker_at_that_size(tracker_checkpoints, photos, layout,
                                                                          prompt):
    engine = litetext.load(str(tracker_checkpoints[layout]), device="cpu", dtype="fp32", image_size=56)
    assert engine.info.image_size == 56 and engine.has_tracker
    cat = litetext.load_image(next(p for p in photos if p.stem == "cat"))
    result = engine.segment_object(cat, **prompt)
    expected = resized_tracker_reference(tracker_checkpoints[layout], 56).segment(cat, **prompt)
    assert result.mask_logits.shape[-1] == 4 * 56 // 14  # the tracker's own grid at this size
    np.testing.assert_array_equal(result.scores, expected["scores"])
    np.testing.assert_array_equal(result.mask_logits, expected["mask_logits"])
    assert np.array_equal(result.masks, expected["masks"])
    again = engine.segment_object(cat, **prompt, mask_input=result.mask_logits[0])  # a refinement round
    assert len(again) == len(result)


def test_clicks_on_a_student_with_sams_tracker_at_a_smaller_size_equal_transformers_tracker_there(
        checkpoints, tracker_checkpoints, photos):
    engine = litetext.load(str(checkpoints["student"]), device="cpu", dtype="fp32", image_size=56,
                           tracker=str(tracker_checkpoints["video"]))
    reference = resized_tracker_reference(tracker_checkpoints["video"], 56)
    reference.model.vision_encoder.backbone = engine.model.vision_encoder.backbone  # the student, as upstream shares it
    cat = litetext.load_image(next(p for p in photos if p.stem == "cat"))
    result = engine.segment_object(cat, points=[[100, 120]], point_labels=[1])
    expected = reference.segment(cat, points=[[100, 120]], point_labels=[1])
    np.testing.assert_array_equal(result.mask_logits, expected["mask_logits"])
    assert np.array_equal(result.masks, expected["masks"])


def test_video_at_a_smaller_size_equals_transformers_video_model_at_that_size(tracker_checkpoints, photos):
    from transformers import AutoConfig, Sam3VideoModel, Sam3VideoProcessor

    from litetext.pipelines.video import install_local_kernels
    from tests.test_video import PROMPTS, assert_same_frame, moving_cat, reference_stream

    path = tracker_checkpoints["composed"]
    config = AutoConfig.from_pretrained(path)  # every size in the sam3_video config, set by hand to 56 px
    for vision in (config.detector_config.vision_config, config.tracker_config.vision_config):
        vision.backbone_config.image_size = 56
        vision.backbone_feature_sizes = [[16, 16], [8, 8], [4, 4]]
    config.tracker_config.image_size = config.tracker_config.prompt_encoder_config.image_size = 56
    config.tracker_config.memory_attention_rope_feat_sizes = [4, 4]
    config.low_res_mask_size = 16
    install_local_kernels()  # the same NMS and hole filling on both sides
    processor = Sam3VideoProcessor.from_pretrained(path)
    processor.image_processor.size = processor.video_processor.size = {"height": 56, "width": 56}
    reference = (Sam3VideoModel.from_pretrained(path, config=config).eval(), processor)

    engine = litetext.load(str(path), device="cpu", dtype="fp32", image_size=56)
    frames = moving_cat(photos, count=6, gap=range(3, 4))
    tracked = list(engine.track(frames, PROMPTS, mode="stream"))
    expected = list(reference_stream(reference, frames, PROMPTS))
    assert sum(len(t.result) for t in tracked) > 0
    for ours, theirs in zip(tracked, expected, strict=True):
        assert_same_frame(ours, theirs)


def test_a_tracker_at_another_size_on_onnx_is_refused_naming_why(tracker_checkpoints):
    with pytest.raises(litetext.ModelError, match="the ONNX backend exports no tracker at another image_size"):
        litetext.load(str(tracker_checkpoints["composed"]), backend="onnx", image_size=56, tracker=True)


def test_bench_measures_a_smaller_size_against_the_full_size_on_the_same_weights(checkpoints):
    from litetext.bench import run_bench

    report = run_bench(model=str(checkpoints["litetext"]), device="cpu", images=1, size=(160, 120), prompts=2,
                       image_size=56, reference_size=112, log=lambda line: None)
    assert report.inexact and report.settings["image_size"] == 56 and report.settings["reference_size"] == 112
    assert "float32 at 56 px against the float32 at 112 px reference" in report.table()
    assert 0.0 <= report.agreement.recall <= 1.0


def test_bench_times_clicks_at_a_smaller_size_against_transformers_tracker_there(tracker_checkpoints):
    from litetext.bench import run_bench

    report = run_bench(model=str(tracker_checkpoints["composed"]), device="cpu", images=1, size=(160, 120),
                       prompts=1, image_size=56, reference_size=112, log=lambda line: None)
    assert report.get("click (litetext, cached)") is not None and report.clicks_agree is True


def test_the_video_bench_tracks_at_a_smaller_size():
    from litetext.bench import run_video_bench

    report = run_video_bench(model="tiny-random-tracker", device="cpu", frames=3, size=(96, 72), prompts=1,
                             image_size=56, log=lambda line: None)
    assert report.settings["image_size"] == 56 and "ms per frame" in report.table()
