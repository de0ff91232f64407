"""`litetext models convert`: original-format checkpoints (built here from tiny random transformers models by running
the key mapping backwards) become folders that litetext and transformers load with the very same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

import litetext
from litetext.errors import ModelError
from litetext.models import convert
from litetext.models.random_weights import TINY_IMAGE_SIZE, _tiny_detector_config, build_tiny_checkpoint
from tests.efficientsam3_upstream import BOX


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    """A folder with the tiny word-level tokenizer (what --tokenizer takes offline)."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-tokenizer"))


def _tiny_source(tokenizer_dir, *, context: int = 16, repmixer: bool = True, seed: int = 0):
    """A tiny Sam3LiteTextModel whose head counts follow what the converter reads (64-wide heads in the text
    encoder and ViT, 32-wide in the heads)."""
    from transformers import AutoTokenizer, Sam3LiteTextModel

    vocab = len(AutoTokenizer.from_pretrained(tokenizer_dir))
    config = _tiny_detector_config("litetext", vocab, 32)
    config.text_config.update({"hidden_size": 64, "num_attention_heads": 1, "intermediate_size": 128,
                               "num_hidden_layers": 3, "max_position_embeddings": context,
                               "use_repmixer_blocks": repmixer})
    config.vision_config.backbone_config.update({"hidden_size": 64, "num_attention_heads": 1,
                                                 "intermediate_size": 128})
    for part in (config.geometry_encoder_config, config.detr_encoder_config, config.detr_decoder_config,
                 config.mask_decoder_config):
        part.num_attention_heads = 1
    torch.manual_seed(seed)
    model = Sam3LiteTextModel(config).eval()
    with torch.no_grad():  # like trained BatchNorms, and confident scores as random_weights gives
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
        model.detr_decoder.presence_head.layer3.bias.fill_(4.0)
        model.dot_product_scoring.query_proj.weight.mul_(25.0)
    return model


def _save(path, state_dict, meta=None):
    torch.save({"model": state_dict, "meta": meta or {"note": "tiny test checkpoint"}}, path)
    return path


@pytest.fixture(scope="session")
def converted(tmp_path_factory, tokenizer_dir):
    """{context: (source model, converted folder, report)} for contexts 16 (RepMixer text) and 32 (plain)."""
    made = {}
    for context, repmixer in ((16, True), (32, False)):
        root = tmp_path_factory.mktemp(f"convert-{context}")
        model = _tiny_source(tokenizer_dir, context=context, repmixer=repmixer, seed=context)
        ckpt = _save(root / "original.pt", convert.original_state_dict(model))
        report = convert.convert_checkpoint(ckpt, root / "out", tokenizer=tokenizer_dir)
        made[context] = (model, root / "out", report)
    return made


def _assert_same_state(expected: dict, actual: dict) -> None:
    expected = {k: v for k, v in expected.items() if not k.endswith("num_batches_tracked")}
    actual = {k: v for k, v in actual.items() if not k.endswith("num_batches_tracked")}
    assert sorted(expected) == sorted(actual)
    different = [key for key in expected if not torch.equal(expected[key], actual[key])]
    assert not different, different


@pytest.mark.parametrize("context", [16, 32])
def test_converted_weights_equal_the_source_model_exactly(converted, context):
    from transformers import Sam3LiteTextModel

    model, out, report = converted[context]
    loaded = Sam3LiteTextModel.from_pretrained(out)
    _assert_same_state(model.state_dict(), loaded.state_dict())
    assert loaded.config.text_config.max_position_embeddings == report.context_length == context
    assert loaded.config.text_config.use_repmixer_blocks == (context == 16)
    assert report.variant == "sam3-litetext" and report.image_trunk == "vit" and report.image_size == TINY_IMAGE_SIZE
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "litetext-converted" and manifest["variant"] == "sam3-litetext"
    assert manifest["source"].endswith("original.pt")


def test_converted_folder_segments_like_plain_transformers(converted, photos):
    from tests.conftest import Reference, assert_same_instances

    _, out, _ = converted[16]
    engine = litetext.load(str(out), device="cpu", dtype="fp32")
    image = Image.open(photos[0]).convert("RGB")
    result = engine.segment(image, "cat", threshold=0.3)
    assert len(result) > 0
    assert_same_instances(result, 0, Reference(out).segment(image, "cat", threshold=0.3))


def test_every_drop_rule_is_counted_in_the_report(tmp_path, tokenizer_dir):
    model = _tiny_source(tokenizer_dir)
    state = convert.original_state_dict(model)
    extra = {
        "tracker.maskmem_backbone.weight": torch.zeros(2),
        "detector.backbone.vision_backbone.sam2_convs.0.conv_1x1.weight": torch.zeros(2),
        "detector.geometry_encoder.points_direct_project.weight": torch.zeros(2),
        "detector.backbone.vision_backbone.trunk.model.backbone.model.layers.1.attention_bias_idxs": torch.zeros(2),
        "detector.transformer.decoder.layers.0.norm1.num_batches_tracked": torch.zeros((), dtype=torch.long),
    }
    report = convert.convert_checkpoint(_save(tmp_path / "o.pt", {**state, **extra}), tmp_path / "out",
                                        tokenizer=tokenizer_dir)
    rules = {rule.split(" (")[0]: count for rule, count in report.dropped.items()}
    assert rules == {"tracker": 1, "SAM2 neck of the tracker": 1, "geometry encoder point-prompt weights": 1,
                     "TinyViT attention_bias_idxs": 1, "BatchNorm num_batches_tracked": 1, "ViT RoPE tables": 2}
    from safetensors.torch import load_file

    assert list(load_file(tmp_path / "out" / convert.TRACKER_FILE)) == ["tracker.maskmem_backbone.weight"]


def test_unknown_and_missing_keys_fail_naming_them(tmp_path, tokenizer_dir):
    state = convert.original_state_dict(_tiny_source(tokenizer_dir))
    unknown = {**state, "detector.transformer.decoder.mystery.weight": torch.zeros(2)}
    with pytest.raises(ModelError, match=r"transformer\.decoder\.mystery\.weight"):
        convert.convert_checkpoint(_save(tmp_path / "a.pt", unknown), tmp_path / "a", tokenizer=tokenizer_dir)
    missing = dict(state)
    del missing["detector.dot_prod_scoring.hs_proj.weight"]
    with pytest.raises(ModelError, match=r"dot_product_scoring\.query_proj\.weight"):
        convert.convert_checkpoint(_save(tmp_path / "b.pt", missing), tmp_path / "b", tokenizer=tokenizer_dir)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_sam31_neck_maps_its_detector_convs_and_drops_the_others(tmp_path, tokenizer_dir):
    from transformers import Sam3LiteTextModel

    model = _tiny_source(tokenizer_dir)
    state = convert.original_state_dict(model, sam31=True)
    for name in ("interactive_convs", "propagation_convs"):
        state.update({key.replace(".convs.", f".{name}."): value.clone() for key, value in state.items()
                      if ".vision_backbone.convs." in key})
    report = convert.convert_checkpoint(_save(tmp_path / "o.pt", state), tmp_path / "out", tokenizer=tokenizer_dir)
    assert report.variant == "sam3.1-litetext" and report.neck == "sam3.1"
    assert sum(count for rule, count in report.dropped.items() if rule.startswith("SAM3.1")) > 0
    assert sum(report.filled.values()) == 4  # proj1 and proj2 of the unused 0.5 scale
    loaded = Sam3LiteTextModel.from_pretrained(tmp_path / "out").state_dict()
    expected = model.state_dict()
    for key in [k for k in expected if k.startswith("vision_encoder.neck.fpn_layers.3.")]:
        expected[key] = torch.zeros_like(expected[key])
    _assert_same_state(expected, loaded)


def test_default_tokenizer_offline_fails_naming_the_option(tmp_path, tokenizer_dir, monkeypatch):
    monkeypatch.setattr(convert, "DEFAULT_TOKENIZER", str(tmp_path / "no-such-tokenizer"))
    state = convert.original_state_dict(_tiny_source(tokenizer_dir))
    with pytest.raises(ModelError, match="--tokenizer"):
        convert.convert_checkpoint(_save(tmp_path / "o.pt", state), tmp_path / "out")


def test_cli_convert_prints_one_summary_line(tmp_path, tokenizer_dir, capsys):
    from litetext.cli import main

    ckpt = _save(tmp_path / "o.pt", convert.original_state_dict(_tiny_source(tokenizer_dir)))
    assert main(["models", "convert", str(ckpt), "--out", str(tmp_path / "out"), "--tokenizer",
                 str(tokenizer_dir)]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "sam3-litetext" in lines[0]
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text("mine")
    assert main(["models", "convert", str(ckpt), "--out", str(tmp_path / "busy"), "--tokenizer",
                 str(tokenizer_dir)]) != 0
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("litetext: error:")


@pytest.mark.parametrize("trunk", ["efficientvit_b0", "efficientvit_b1", "efficientvit_b2", "repvit_m0_9",
                                   "repvit_m1_1", "repvit_m2_3", "tiny_vit_5m", "tiny_vit_11m", "tiny_vit_21m"])
def test_student_trunk_round_trip_keeps_every_weight(trunk, tmp_path, tokenizer_dir):
    pytest.importorskip("timm")
    from transformers import Sam3LiteTextModel

    from litetext.models.student_backbones import register_student_backbones, student_backbone_config

    register_student_backbones()
    source = _tiny_source(tokenizer_dir)
    config = source.config
    config.vision_config.backbone_config = student_backbone_config(trunk, hidden_size=64)
    config.vision_config.backbone_feature_sizes = [[288, 288], [144, 144], [72, 72]]
    torch.manual_seed(1)
    model = Sam3LiteTextModel(config).eval()
    state = convert.original_state_dict(model, student=trunk)
    assert any(key.startswith("detector.backbone.vision_backbone.trunk.model.backbone.model.") for key in state)
    report = convert.convert_checkpoint(_save(tmp_path / "o.pt", state), tmp_path / "out", tokenizer=tokenizer_dir)
    assert report.variant == "efficientsam3" and report.image_trunk == trunk
    _assert_same_state(model.state_dict(), Sam3LiteTextModel.from_pretrained(tmp_path / "out").state_dict())


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("LITETEXT_EFFICIENTSAM3_SRC"),
                    reason="set LITETEXT_EFFICIENTSAM3_SRC to a checkout of github.com/SimonZeng7108/efficientsam3")
@pytest.mark.parametrize("trunk", ["efficientvit_b1", "repvit_m1_1", "tiny_vit_11m"])
def test_converted_model_matches_upstream_efficientsam3(trunk, tmp_path, tokenizer_dir):
    """Upstream's full-size model with random weights, converted, computes what upstream computes on a photo.

    Compared where the ports agree (docs/models.md): the FPN levels; the text features of a prompt that fills the
    context, and of a short one when transformers' text encoder is not given the padding mask (the original attends
    over padding); and with text plus a box (text alone, the original appends the geometry encoder's CLS token and
    transformers does not), every query's score, box and mask. The tokens are upstream's: the converted folder
    holds the tests' tiny tokenizer, so only token ids cross over.

    Measured on CPU (FPN, text and mask logits: largest difference / largest value; scores and boxes: absolute):

    | trunk | FPN levels | full text | short text | mask logits | scores | boxes |
    |---|---|---|---|---|---|---|
    | efficientvit_b1 | 0 (bit-exact) | 2.9e-7 | 5.6e-7 | 2.7e-6 | 8.9e-8 | 5.7e-7 |
    | repvit_m1_1 | 0 (bit-exact) | 5.9e-7 | 4.5e-7 | 2.8e-6 | 1.2e-7 | 3.3e-7 |
    | tiny_vit_11m | 7.7e-7 | 3.9e-7 | 5.5e-7 | 3.2e-6 | 6.0e-8 | 4.8e-7 |
    """
    from transformers import Sam3LiteTextModel
    from transformers.models.sam3_lite_text.modeling_sam3_lite_text import box_cxcywh_to_xyxy

    from tests.conftest import REPO

    pytest.importorskip("timm")
    # Upstream in a process of its own: its RepViT and TinyViT modules re-register timm's model names.
    finished = subprocess.run([sys.executable, "-m", "tests.efficientsam3_upstream",
                               os.environ["LITETEXT_EFFICIENTSAM3_SRC"], trunk, str(tmp_path)],
                              capture_output=True, text=True, cwd=REPO)
    assert finished.returncode == 0, finished.stderr[-4000:]
    report = convert.convert_checkpoint(tmp_path / "original.pt", tmp_path / "out", tokenizer=tokenizer_dir)
    assert (report.variant, report.image_trunk, report.context_length) == ("efficientsam3", trunk, 16)
    assert not report.filled
    upstream = torch.load(tmp_path / "upstream.pt")
    model = Sam3LiteTextModel.from_pretrained(tmp_path / "out").eval()

    tokens, padding = upstream["full_tokens"], upstream["full_text_padding"]
    assert not padding.any(), "the long prompt should fill the context"
    with torch.no_grad():
        vision = model.get_vision_features(upstream["pixels"])
        full_text = model.get_text_features(tokens, attention_mask=torch.ones_like(tokens)).pooler_output[0]
        short_text = model.get_text_features(upstream["short_tokens"]).pooler_output[0]  # unmasked, as upstream
        found = model(vision_embeds=vision, input_ids=tokens, attention_mask=torch.ones_like(tokens),
                      input_boxes=torch.tensor([[BOX]]), input_boxes_labels=torch.tensor([[1]]))

    differences = {f"fpn{level}": _relative(expected, vision.fpn_hidden_states[level])
                   for level, expected in enumerate(upstream["fpn"])}  # the 4th, 0.5x level is dropped upstream
    differences.update(full_text=_relative(upstream["full_text"], full_text),
                       short_text=_relative(upstream["short_text"], short_text),
                       masks=_relative(upstream["masks"], found.pred_masks[0]))
    expected_scores = upstream["logits"].sigmoid() * upstream["presence"].sigmoid()
    scores = found.pred_logits[0].sigmoid() * found.presence_logits[0].sigmoid()
    differences.update(scores=(expected_scores - scores).abs().max().item(),
                       boxes=(box_cxcywh_to_xyxy(upstream["boxes_cxcywh"]) - found.pred_boxes[0]).abs().max().item())
    print(trunk, {name: f"{value:.1e}" for name, value in differences.items()})
    # Random weights that ignored their input would pass any comparison: the queries' scores and boxes must differ.
    assert expected_scores.max() - expected_scores.min() > 1e-4 and upstream["boxes_cxcywh"].std(0).min() > 0.01
    # Float32 through the same operations in another order (fused attention, TinyViT's attention in timm): each
    # tolerance is over ten times the largest difference measured, and far under what a wrong weight gives (masking
    # the short prompt's padding alone changes its text features by about half their largest value). The scores of
    # random weights spread over 5e-4 to 9e-4 (a spread is asserted above): 1e-5 is a fiftieth of that.
    assert max(differences[name] for name in differences if name.startswith("fpn")) <= 1e-5, differences
    assert max(differences["full_text"], differences["short_text"]) <= 1e-5, differences
    assert differences["masks"] <= 1e-4, differences  # mask logits: relative to their largest value
    assert differences["scores"] <= 1e-5 and differences["boxes"] <= 1e-5, differences  # absolute, boxes in [0, 1]


def _relative(expected: torch.Tensor, found: torch.Tensor) -> float:
    """Largest difference relative to the largest value of `expected`."""
    assert expected.shape == found.shape, (expected.shape, found.shape)
    return ((expected - found).abs().max() / expected.abs().max()).item()


def test_a_converted_folder_whose_weights_changed_in_place_is_refused_naming_the_file(converted, tmp_path,
                                                                                      monkeypatch):
    import shutil

    _, out, _ = converted[32]
    copy = tmp_path / "converted"
    shutil.copytree(out, copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100:] = bytes(100)  # the same size, other bytes
    weights.write_bytes(bytes(data))
    with pytest.raises(litetext.ModelError, match="model.safetensors does not match its sha256.*models convert"):
        litetext.load(str(copy), device="cpu")
    monkeypatch.setenv("LITETEXT_TRUST_EXPORTS", "1")  # trusted, read-only deployments skip the check
    assert litetext.load(str(copy), device="cpu").info.family == "litetext"
