"""The correctness contract: every litetext path equals the plain transformers pipeline, prompt by prompt."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import litetext
from tests.conftest import assert_same_instances

PROMPTS = ["cat", "coffee cup", "person", "red car"]


def test_single_prompt_matches_transformers_pipeline(architecture, engine_for, reference_for, photos):
    engine, reference = engine_for(architecture), reference_for(architecture)
    for path in photos:
        image = Image.open(path).convert("RGB")
        result = engine.segment(path, "cat")
        assert len(result) > 0, "the tiny model should keep some instances at 0.5"
        assert_same_instances(result, 0, reference.segment(image, "cat"))


def test_prompts_decoded_together_match_separate_reference_runs(architecture, engine_for, reference_for, photos):
    engine, reference = engine_for(architecture), reference_for(architecture)
    image = Image.open(photos[0]).convert("RGB")
    result = engine.segment(image, PROMPTS, threshold=0.3, mask_threshold=0.4)
    assert result.prompts == PROMPTS
    for k, prompt in enumerate(PROMPTS):
        assert_same_instances(result, k, reference.segment(image, prompt, threshold=0.3, mask_threshold=0.4))


def test_cache_hit_gives_the_same_result_as_a_miss(architecture, engine_for, reference_for, photos):
    engine, reference = engine_for(architecture), reference_for(architecture)
    image = Image.open(photos[1]).convert("RGB")
    engine.image_cache.clear()
    engine.text_cache.clear()
    miss = engine.segment(image, PROMPTS[:2])
    hit = engine.segment(image, PROMPTS[:2])
    assert not miss.timings.image_cache_hit and hit.timings.image_cache_hit
    for k, prompt in enumerate(PROMPTS[:2]):
        expected = reference.segment(image, prompt)
        assert_same_instances(miss, k, expected)
        assert_same_instances(hit, k, expected)


@pytest.mark.parametrize("layout", ["video", "composed"])
def test_sam3_video_checkpoint_serves_images_like_its_detector_class(layout, tracker_checkpoints, photos):
    """facebook/sam3 is a sam3_video checkpoint: litetext.load serves images from it exactly as
    Sam3Model.from_pretrained (Sam3LiteTextModel's, for a composed LiteText one) does on that directory."""
    from transformers import Sam3LiteTextModel, Sam3Model

    from tests.conftest import Reference

    path = tracker_checkpoints[layout]
    engine = litetext.load(str(path), device="cpu", dtype="fp32")
    reference = Reference(path, model_class=Sam3Model if layout == "video" else Sam3LiteTextModel)
    assert type(engine.model) is type(reference.model)
    image = Image.open(photos[0]).convert("RGB")
    result = engine.segment(image, PROMPTS, threshold=0.3)
    assert len(result) > 0
    for k, prompt in enumerate(PROMPTS):
        assert_same_instances(result, k, reference.segment(image, prompt, threshold=0.3))


#: Batched calls change the kernels' summation order: logits move by ~1e-6 relative, so the odd pixel that
#: sits exactly at the mask threshold may flip. Allowed: one pixel in 100,000.
BATCHED_MASK_MISMATCH = 1e-5


def test_cpu_default_is_unbatched_and_exact(engine_for):
    assert engine_for("litetext").batched is False


def test_prompts_batched_into_one_decode_match_reference(architecture, batched_engine_for, reference_for, photos):
    engine, reference = batched_engine_for(architecture), reference_for(architecture)
    image = Image.open(photos[0]).convert("RGB")
    result = engine.segment(image, PROMPTS, threshold=0.3, mask_threshold=0.4)
    for k, prompt in enumerate(PROMPTS):
        expected = reference.segment(image, prompt, threshold=0.3, mask_threshold=0.4)
        assert_same_instances(result, k, expected, max_mask_mismatch=BATCHED_MASK_MISMATCH)


def test_images_batched_through_the_vision_encoder_match_reference(
    architecture, batched_engine_for, reference_for, photos
):
    engine, reference = batched_engine_for(architecture), reference_for(architecture)
    engine.image_cache.clear()
    items = list(engine.segment_batch([str(p) for p in photos], ["cat", "person"], batch_size=4))
    for item, path in zip(items, photos):
        image = Image.open(path).convert("RGB")
        for k, prompt in enumerate(["cat", "person"]):
            expected = reference.segment(image, prompt)
            assert_same_instances(item.result, k, expected, max_mask_mismatch=BATCHED_MASK_MISMATCH)


def test_batch_of_images_matches_one_at_a_time(architecture, engine_for, reference_for, photos):
    engine, reference = engine_for(architecture), reference_for(architecture)
    engine.image_cache.clear()
    items = list(engine.segment_batch([str(p) for p in photos], ["cat", "person"], batch_size=3))
    assert [item.index for item in items] == list(range(len(photos)))
    for item, path in zip(items, photos):
        assert item.ok
        image = Image.open(path).convert("RGB")
        for k, prompt in enumerate(["cat", "person"]):
            assert_same_instances(item.result, k, reference.segment(image, prompt))


def test_per_image_prompts_in_a_batch(engine_for, photos):
    engine = engine_for("litetext")
    pairs = [(str(photos[0]), ["cat"]), (str(photos[1]), ["coffee cup", "table"])]
    items = list(engine.segment_batch(pairs))
    assert items[0].result.prompts == ["cat"]
    assert items[1].result.prompts == ["coffee cup", "table"]
    single = engine.segment(photos[1], ["coffee cup", "table"])
    assert np.array_equal(items[1].result.masks, single.masks)


@pytest.mark.parametrize("cap, expected_calls", [(32, [6]), (4, [4, 2])])
def test_images_with_their_own_prompts_share_batched_decoder_calls_and_match_reference(
    architecture, batched_engine_for, reference_for, photos, monkeypatch, cap, expected_calls
):
    engine, reference = batched_engine_for(architecture), reference_for(architecture)
    monkeypatch.setattr(engine, "max_decode_batch", cap)
    pairs = [(str(photos[0]), ["cat"]), (str(photos[1]), ["coffee cup", "table", "person"]),
             (str(photos[2]), ["person", "cat"])]
    calls = []
    hook = engine.model.register_forward_hook(
        lambda module, args, kwargs, out: calls.append(len(kwargs["attention_mask"])), with_kwargs=True)
    try:
        items = list(engine.segment_batch(pairs, batch_size=3))
    finally:
        hook.remove()
    assert calls == expected_calls  # every image's prompts in as few calls as the cap allows
    for item, (path, prompts) in zip(items, pairs):
        assert item.result.prompts == prompts
        image = Image.open(path).convert("RGB")
        for k, prompt in enumerate(prompts):
            expected = reference.segment(image, prompt)
            assert_same_instances(item.result, k, expected, max_mask_mismatch=BATCHED_MASK_MISMATCH)


def test_exemplar_boxes_match_reference(architecture, engine_for, reference_for, photos):
    engine, reference = engine_for(architecture), reference_for(architecture)
    image = Image.open(photos[0]).convert("RGB")
    boxes, labels = [[10, 20, 200, 180], [250, 40, 400, 300]], [1, 0]
    result = engine.segment(image, ["cat", "dog"], boxes=boxes, box_labels=labels, threshold=0.3)
    for k, prompt in enumerate(["cat", "dog"]):
        expected = reference.segment(image, prompt, boxes=boxes, box_labels=labels, threshold=0.3)
        assert_same_instances(result, k, expected)


def test_box_only_query_uses_the_visual_prompt_like_the_processor(engine_for, reference_for, photos):
    engine, reference = engine_for("litetext"), reference_for("litetext")
    image = Image.open(photos[2]).convert("RGB")
    result = engine.segment(image, None, boxes=[[100, 50, 300, 300]])
    assert result.prompts == ["visual"]
    assert_same_instances(result, 0, reference.segment(image, None, boxes=[[100, 50, 300, 300]], box_labels=[1]))


def test_rethresholding_kept_logits_equals_a_fresh_segment(engine_for, photos):
    engine = engine_for("litetext")
    kept = engine.segment(photos[3], ["rocket", "sky"], keep_mask_logits=True)
    for mask_threshold in (0.3, 0.5, 0.7):
        fresh = engine.segment(photos[3], ["rocket", "sky"], mask_threshold=mask_threshold)
        assert np.array_equal(kept.with_mask_threshold(mask_threshold).masks, fresh.masks)


def test_large_image_upsampled_in_chunks_matches_reference(engine_for, reference_for):
    engine, reference = engine_for("litetext"), reference_for("litetext")
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 255, (2400, 3000, 3), dtype=np.uint8))
    result = engine.segment(image, "cat", threshold=0.55)
    assert result.masks.shape[1:] == (2400, 3000)
    assert_same_instances(result, 0, reference.segment(image, "cat", threshold=0.55))


def test_max_instances_and_min_area_keep_the_best(engine_for, photos):
    engine = engine_for("litetext")
    everything = engine.segment(photos[0], PROMPTS)
    best = engine.segment(photos[0], PROMPTS, max_instances=3)
    assert len(best) == 3
    assert sorted(best.scores) == sorted(np.sort(everything.scores)[-3:])
    big = engine.segment(photos[0], PROMPTS, min_area=int(np.median(everything.areas)))
    assert len(big) < len(everything) and (big.areas >= np.median(everything.areas)).all()


def test_public_api_is_small_and_importable():
    for name in litetext.__all__:
        assert getattr(litetext, name) is not None
