"""Clicks and boxes on one object on ONNX Runtime: an export with SAM3's tracker answers `segment_object` like the
PyTorch engine on the same checkpoint (predicted IoU within 1e-4, mask IoU >= 0.999)."""

from __future__ import annotations

import numpy as np
import pytest

import litetext
from tests.bad_inputs import BAD_OBJECT_PROMPTS
from tests.test_tracker import CASES as TORCH_CASES
from tests.test_tracker import CLICK

#: The PyTorch click cases, and three candidates from a box alone.
CASES = {**TORCH_CASES, "box, three candidates": {"box": [40, 30, 300, 280], "multimask": True}}


@pytest.fixture(scope="module")
def cat(photos):
    return litetext.load_image(next(p for p in photos if p.stem == "cat"))


@pytest.fixture(scope="module")
def onnx_clicks(onnx_tracker_export):
    return litetext.load(str(onnx_tracker_export))


@pytest.fixture(scope="module")
def torch_clicks(tracker_checkpoints):
    return litetext.load(str(tracker_checkpoints["composed"]), device="cpu", dtype="fp32")


def assert_close_object(result, expected) -> None:
    assert len(result) == len(expected)
    np.testing.assert_allclose(result.scores, expected.scores, atol=1e-4, rtol=0)
    np.testing.assert_allclose(result.mask_logits, expected.mask_logits, atol=1e-4, rtol=0)
    for ours, theirs in zip(result.masks, expected.masks):
        union = np.logical_or(ours, theirs).sum()
        iou = np.logical_and(ours, theirs).sum() / union if union else 1.0
        assert iou >= 0.999, f"mask IoU {iou:.5f} < 0.999"


def test_an_export_with_a_tracker_loads_as_an_engine_that_answers_clicks(onnx_clicks, onnx_tracker_export):
    from litetext.onnx import OnnxTracker, read_manifest

    assert onnx_clicks.has_tracker and onnx_clicks.info.has_tracker and onnx_clicks.info.backend == "onnx"
    assert isinstance(onnx_clicks.tracker.model, OnnxTracker)
    manifest = read_manifest(onnx_tracker_export)
    assert manifest.has_tracker
    names = lambda specs: [t.name for t in specs]  # noqa: E731
    assert names(manifest.graphs["vision_encoder"].outputs)[-3:] == [f"tracker_embedding_{i}" for i in range(3)]
    for role, candidates in (("tracker_decoder", 1), ("tracker_decoder_multimask", 3)):
        graph = manifest.graphs[role]
        assert names(graph.inputs) == ["image_embedding_0", "image_embedding_1", "image_embedding_2", "input_points",
                                       "input_labels", "mask_input", "has_mask_input"]
        assert names(graph.outputs) == ["iou_scores", "pred_masks", "object_score_logits"]
        assert graph.inputs[3].shape == (1, "points", 2) and graph.outputs[0].shape == (1, 1, candidates)


@pytest.mark.parametrize("case", list(CASES))
def test_object_prompt_equals_the_pytorch_engine(case, cat, onnx_clicks, torch_clicks):
    prompt = CASES[case]
    result = onnx_clicks.segment_object(cat, **prompt)
    assert len(result) == (3 if prompt.get("multimask") else 1)
    assert_close_object(result, torch_clicks.segment_object(cat, **prompt))


def test_refinement_round_with_previous_logits_equals_the_pytorch_engine(cat, onnx_clicks, torch_clicks):
    first = onnx_clicks.segment_object(cat, **CLICK)
    assert_close_object(first, torch_clicks.segment_object(cat, **CLICK))
    refine = {"points": [[100, 120], [220, 90]], "point_labels": [1, 0], "mask_input": first.mask_logits[0]}
    assert_close_object(onnx_clicks.segment_object(cat, **refine), torch_clicks.segment_object(cat, **refine))
    mask_only = {"mask_input": first.mask_logits[0]}  # no click, no box: SAM's padding point alone
    assert_close_object(onnx_clicks.segment_object(cat, **mask_only), torch_clicks.segment_object(cat, **mask_only))


def test_text_instance_seeds_the_onnx_tracker_like_the_pytorch_one(cat, onnx_clicks, torch_clicks):
    found = torch_clicks.segment(cat, "cat", threshold=0.0, keep_mask_logits=True)
    prompt = {"points": [[120, 140]], "point_labels": [0], "instance": found[0]}
    assert_close_object(onnx_clicks.segment_object(cat, **prompt), torch_clicks.segment_object(cat, **prompt))


def test_click_after_text_prompt_runs_no_vision_graph(cat, onnx_clicks, monkeypatch):
    onnx_clicks.image_cache.clear()
    runtime = onnx_clicks.runtime
    calls = []
    encode = runtime.encode_pixels
    monkeypatch.setattr(runtime, "encode_pixels", lambda pixels: calls.append(1) or encode(pixels))
    onnx_clicks.segment(cat, "cat")
    first = onnx_clicks.segment_object(cat, **CLICK)
    second = onnx_clicks.segment_object(cat, **CASES["box and clicks"])
    assert len(calls) == 1
    assert first.timings.image_cache_hit and second.timings.image_cache_hit
    features = onnx_clicks.encode_image(cat)
    assert features.tracker_embeddings is not None and len(features.tracker_embeddings) == 3


@pytest.mark.parametrize("case", list(BAD_OBJECT_PROMPTS))
def test_bad_object_prompt_is_refused_by_name_on_onnx(case, cat, onnx_clicks):
    prompt, error, words = BAD_OBJECT_PROMPTS[case]
    with pytest.raises(error, match=words):
        onnx_clicks.segment_object(cat, **prompt)


def test_video_on_an_onnx_engine_says_it_needs_pytorch(onnx_clicks):
    frames = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    with pytest.raises(litetext.NoTrackerError, match="video tracking .* needs the PyTorch backend"):
        next(iter(onnx_clicks.track(frames, "cat")))


def test_an_export_without_a_tracker_gives_an_engine_without_one(onnx_engine, onnx_export, cat):
    assert not onnx_engine.has_tracker
    with pytest.raises(litetext.NoTrackerError):
        onnx_engine.segment_object(cat, **CLICK)
    with pytest.raises(litetext.NoTrackerError, match="holds no tracker"):
        litetext.load(str(onnx_export), tracker=True)


def test_tracker_false_leaves_the_exported_tracker_out(onnx_tracker_export, onnx_clicks):
    engine = litetext.load(str(onnx_tracker_export), tracker=False)
    assert engine is not onnx_clicks and not engine.has_tracker


def test_composing_a_tracker_on_onnx_says_to_assemble_first(onnx_tracker_export):
    with pytest.raises(litetext.ModelError, match="litetext models assemble"):
        litetext.load(str(onnx_tracker_export), tracker="sam3")


def test_the_exported_mask_choice_equals_transformers_own(torch_clicks):
    """The single-mask graph chooses the mask with rank-4 gathers (WebGPU compiles no rank-5 GatherElements); the
    choice and its numbers are transformers' own, bit for bit, stable single masks and fallbacks alike."""
    import torch

    from litetext.onnx.tracker_stages import select_stable_mask

    decoder = torch_clicks.tracker.model.mask_decoder
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 16, 16, generator=generator) * 5
    logits[0, 0, 0] = 20.0  # a single mask far from the threshold everywhere: stable, kept
    scores = torch.rand(2, 3, 4, generator=generator)
    expected = decoder._dynamic_multimask_via_stability(logits, scores)
    chosen = select_stable_mask(decoder, logits, scores)
    for ours, theirs in zip(chosen, expected, strict=True):
        assert ours.shape == theirs.shape and torch.equal(ours, theirs)
    stable = decoder._get_stability_scores(logits[:, :, 0:1]) >= decoder.dynamic_multimask_stability_thresh
    assert stable.any() and not stable.all()  # both branches were taken
