"""The ONNX backend answers every engine path like the plain transformers pipeline (fp32: same instances,
scores and boxes within 1e-4, mask IoU >= 0.999), on a tiny checkpoint exported once per session."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import litetext
from tests.onnx.conftest import assert_close_instances

PROMPTS = ["cat", "coffee cup", "person", "red car"]


def test_export_directory_loads_as_an_onnx_engine(onnx_engine, onnx_export):
    from litetext.onnx import OnnxSam3

    assert isinstance(onnx_engine.model, OnnxSam3)
    assert onnx_engine.info.dtype == "float32" and onnx_engine.info.device == "cpu"
    assert onnx_engine.info.family == "litetext" and onnx_engine.batched is False
    assert onnx_engine.info.backend == "onnx"
    assert litetext.load(str(onnx_export), backend="onnx") is onnx_engine  # one engine per export, shared


def test_one_prompt_matches_transformers_pipeline(onnx_engine, reference_for, photos):
    reference = reference_for("litetext")
    for path in photos[:2]:
        result = onnx_engine.segment(path, "cat")
        assert len(result) > 0
        assert_close_instances(result, 0, reference.segment(Image.open(path).convert("RGB"), "cat"))


@pytest.mark.parametrize("batched", [False, True])
def test_many_prompts_match_transformers_pipeline(onnx_engine, reference_for, photos, monkeypatch, batched):
    monkeypatch.setattr(onnx_engine, "batched", batched)
    monkeypatch.setattr(onnx_engine.model, "max_prompts_per_call", 3)  # 4 prompts: a call of 3, then 1
    image = Image.open(photos[0]).convert("RGB")
    result = onnx_engine.segment(image, PROMPTS, threshold=0.3, mask_threshold=0.4)
    for k, prompt in enumerate(PROMPTS):
        expected = reference_for("litetext").segment(image, prompt, threshold=0.3, mask_threshold=0.4)
        assert_close_instances(result, k, expected)


def test_cached_image_skips_the_vision_graph_and_gives_the_same_result(onnx_engine, photos, monkeypatch):
    onnx_engine.image_cache.clear()
    miss = onnx_engine.segment(photos[1], PROMPTS[:2])
    calls = []
    vision = onnx_engine.model.encode_pixels
    monkeypatch.setattr(onnx_engine.model, "encode_pixels", lambda *a, **kw: calls.append(1) or vision(*a, **kw))
    hit = onnx_engine.segment(photos[1], PROMPTS[:2])
    assert hit.timings.image_cache_hit and not calls
    assert np.array_equal(hit.masks, miss.masks) and np.array_equal(hit.scores, miss.scores)


@pytest.mark.parametrize("batched", [False, True])
def test_batch_of_images_matches_pipeline_and_skips_a_bad_item(onnx_engine, reference_for, photos, monkeypatch,
                                                               batched):
    monkeypatch.setattr(onnx_engine, "batched", batched)
    onnx_engine.image_cache.clear()
    sources = [str(photos[0]), b"not an image", str(photos[2])]
    items = list(onnx_engine.segment_batch(sources, ["cat", "person"], batch_size=3))
    assert [item.ok for item in items] == [True, False, True]
    assert isinstance(items[1].error, litetext.InvalidImageError)
    for item in (items[0], items[2]):
        image = Image.open(item.source).convert("RGB")
        for k, prompt in enumerate(["cat", "person"]):
            assert_close_instances(item.result, k, reference_for("litetext").segment(image, prompt))


def test_images_with_their_own_prompts_decode_in_runs_per_image(onnx_engine, reference_for, photos, monkeypatch):
    """Batched, several images' prompts reach the decoder as one call; the runtime splits it per image."""
    monkeypatch.setattr(onnx_engine, "batched", True)
    pairs = [(str(photos[0]), ["cat"]), (str(photos[1]), ["coffee cup", "person"])]
    items = list(onnx_engine.segment_batch(pairs, batch_size=2))
    for item, (path, prompts) in zip(items, pairs):
        image = Image.open(path).convert("RGB")
        for k, prompt in enumerate(prompts):
            assert_close_instances(item.result, k, reference_for("litetext").segment(image, prompt))


def test_exemplar_boxes_and_box_only_queries_match_pipeline(onnx_engine, reference_for, photos):
    reference = reference_for("litetext")
    image = Image.open(photos[0]).convert("RGB")
    boxes, labels = [[10, 20, 200, 180], [250, 40, 400, 300]], [1, 0]
    result = onnx_engine.segment(image, ["cat", "dog"], boxes=boxes, box_labels=labels, threshold=0.3)
    for k, prompt in enumerate(["cat", "dog"]):
        expected = reference.segment(image, prompt, boxes=boxes, box_labels=labels, threshold=0.3)
        assert_close_instances(result, k, expected)
    visual = onnx_engine.segment(image, None, boxes=[[100, 50, 300, 300]])
    assert visual.prompts == ["visual"]
    assert_close_instances(visual, 0, reference.segment(image, None, boxes=[[100, 50, 300, 300]], box_labels=[1]))


def test_text_encoder_graph_runs_on_its_own(onnx_export, reference_for):
    """Apps pairing LiteText's text encoder with their own SAM3 runtime need only onnxruntime and the tokenizer."""
    import onnxruntime
    import torch
    from transformers import AutoTokenizer

    from litetext.onnx import read_manifest

    spec = read_manifest(onnx_export).graphs["text_encoder"]
    assert [t.name for t in spec.inputs] == ["input_ids", "attention_mask"]
    tokenizer = AutoTokenizer.from_pretrained(onnx_export)
    tokens = tokenizer(["cat", "red car"], padding="max_length", max_length=32, return_tensors="np")
    session = onnxruntime.InferenceSession(str(onnx_export / spec.file))
    (features,) = session.run(None, {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]})
    model = reference_for("litetext").model
    with torch.no_grad():
        expected = model.get_text_features(input_ids=torch.from_numpy(tokens["input_ids"]),
                                           attention_mask=torch.from_numpy(tokens["attention_mask"])).pooler_output
    assert features.shape == tuple(expected.shape) == (2, 32, spec.outputs[0].shape[-1])
    np.testing.assert_allclose(features, expected.numpy(), atol=1e-5, rtol=1e-4)


def test_adapters_get_the_onnx_engine_from_the_export_directory(onnx_engine, onnx_export):
    assert litetext.SegmentOptions(model=str(onnx_export)).engine() is onnx_engine


def test_attention_exports_as_fused_multi_head_attention(onnx_export):
    """The decoder's 5,184-token attention must not be a materialised MatMul/Softmax (memory per prompt)."""
    import onnx

    for name in ("vision_encoder", "decoder"):
        ops = {node.op_type for node in onnx.load(str(onnx_export / f"{name}.onnx"), load_external_data=False)
               .graph.node}
        assert "MultiHeadAttention" in ops and "Softmax" not in ops, name


def test_int8_vision_runs_and_says_it_is_inexact(onnx_int8_export, onnx_export, onnx_engine, photos):
    import onnx

    from litetext.onnx import read_manifest

    assert read_manifest(onnx_export).precision == "float32"  # the fp32 export it was made from is untouched
    engine = litetext.load(str(onnx_int8_export))
    assert engine.info.dtype == "int8-vision" and engine is not onnx_engine
    ops = {n.op_type for n in onnx.load(str(onnx_int8_export / "vision_encoder.onnx"),
                                        load_external_data=False).graph.node}
    assert ops & {"DynamicQuantizeMatMul", "MatMulInteger"}
    result = engine.segment(photos[0], PROMPTS)
    assert result.prompts == PROMPTS and result.masks.shape[1:] == Image.open(photos[0]).size[::-1]


def test_segment_command_runs_an_export_directory(onnx_export, photos, tmp_path):
    import json

    from litetext.cli import main

    out = tmp_path / "out"
    assert main(["segment", str(photos[0]), "-p", "cat", "--model", str(onnx_export), "--out", str(out),
                 "--no-overlays"]) == 0
    assert json.loads((out / "coco.json").read_text())["annotations"]


def test_a_student_model_exports_and_runs_on_onnx_runtime_like_the_pipeline(onnx_student_export, reference_for,
                                                                            photos):
    """EfficientSAM3 (a student trunk in place of the ViT) through the same export and runtime."""
    engine = litetext.load(str(onnx_student_export))
    assert engine.info.backend == "onnx"
    image = Image.open(photos[0]).convert("RGB")
    result = engine.segment(image, PROMPTS[:2], threshold=0.3)
    for k, prompt in enumerate(PROMPTS[:2]):
        assert_close_instances(result, k, reference_for("student").segment(image, prompt, threshold=0.3))
