"""EfficientSAM3's student image encoders: nine timm trunks behind transformers' own SAM3 neck and heads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import litetext
from tests.conftest import REPO, Reference, assert_same_instances

pytest.importorskip("timm")

TRUNKS = ("efficientvit_b0", "efficientvit_b1", "efficientvit_b2", "repvit_m0_9", "repvit_m1_1", "repvit_m2_3",
          "tiny_vit_5m", "tiny_vit_11m", "tiny_vit_21m")
UPSTREAM_SOURCE = os.environ.get("LITETEXT_EFFICIENTSAM3_SRC")


@pytest.fixture(scope="session")
def student_checkpoint(tmp_path_factory) -> Path:
    """A tiny LiteText detector whose image encoder is the smallest student trunk, saved with save_pretrained."""
    from litetext.models.random_weights import TINY_STUDENT_TRUNK, build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("student") / "tiny", student=TINY_STUDENT_TRUNK)


def test_table_lists_the_nine_trunks_and_the_released_models():
    from litetext.models.student_backbones import RELEASED_STUDENTS, STUDENT_TRUNKS, student_trunk

    assert tuple(STUDENT_TRUNKS) == TRUNKS
    assert {name: student_trunk(name).size for name in RELEASED_STUDENTS} == {"EV-M": "b1", "RV-M": "m1.1",
                                                                               "TV-M": "11m"}
    with pytest.raises(litetext.ModelError, match="unknown student trunk"):
        student_trunk("vit_h")


@pytest.mark.parametrize("trunk", TRUNKS)
def test_each_trunk_runs_in_sam3_lite_text_and_round_trips_bit_exact(trunk, student_checkpoint, tmp_path):
    import torch
    from transformers import Sam3LiteTextConfig, Sam3LiteTextModel

    from litetext.models.student_backbones import student_backbone_config

    config = Sam3LiteTextConfig.from_pretrained(student_checkpoint)
    config.vision_config.backbone_config = student_backbone_config(trunk, 112, hidden_size=32)
    torch.manual_seed(0)
    model = Sam3LiteTextModel(config)
    _randomise_norm_statistics(model)
    model.save_pretrained(tmp_path)
    loaded = Sam3LiteTextModel.from_pretrained(tmp_path).eval()
    model.eval()

    pixels = torch.randn(1, 3, 112, 140)  # not square: height and width each come out at 1/14
    with torch.no_grad():
        expected, found = model.vision_encoder(pixels), loaded.vision_encoder(pixels)
    assert expected.last_hidden_state.shape == (1, 8 * 10, 32)
    assert expected.fpn_hidden_states[2].shape[-2:] == (8, 10)
    assert torch.equal(expected.last_hidden_state, found.last_hidden_state)
    assert all(torch.equal(a, b) for a, b in zip(expected.fpn_hidden_states, found.fpn_hidden_states))
    assert set(model.state_dict()) == set(loaded.state_dict())
    buffers = dict(loaded.named_buffers())
    assert all(torch.equal(value, buffers[name]) for name, value in model.named_buffers())  # TinyViT's index tables


@pytest.mark.parametrize("trunk", TRUNKS)
def test_key_rules_map_every_timm_weight_to_upstream_and_back(trunk):
    import torch

    from litetext.models.student_backbones import student_trunk, timm_key_to_trunk, timm_trunk, trunk_key_to_timm

    with torch.device("meta"):
        keys = list(timm_trunk(student_trunk(trunk).timm_name).state_dict())
    upstream = [timm_key_to_trunk(trunk, key) for key in keys]
    assert len(set(upstream)) == len(keys)
    assert [trunk_key_to_timm(trunk, key) for key in upstream] == keys


def test_key_rules_rename_as_upstream_names():
    from litetext.models.student_backbones import trunk_key_to_timm

    assert trunk_key_to_timm("repvit_m1_1", "features.0.2.c.weight") == "stem.conv2.c.weight"
    assert trunk_key_to_timm("repvit_m0_9", "features.4.token_mixer.2.bn.weight") == \
        "stages.1.downsample.channel_downsample.bn.weight"
    assert trunk_key_to_timm("tinyvit", "layers.0.downsample.conv1.c.weight") == "stages.1.downsample.conv1.conv.weight"
    assert trunk_key_to_timm("efficientvit", "input_stem.op_list.1.main.depth_conv.conv.weight") == \
        "stem.res0.main.depth_conv.conv.weight"
    with pytest.raises(litetext.ModelError, match="depend on its depths"):
        trunk_key_to_timm("repvit", "features.1.token_mixer.0.bn.weight")


def test_engine_on_a_student_checkpoint_matches_transformers_pipeline(student_checkpoint, photos):
    engine = litetext.load(str(student_checkpoint), device="cpu", dtype="fp32")
    reference = Reference(student_checkpoint)
    assert type(engine.model.vision_encoder.backbone) is type(reference.model.vision_encoder.backbone)
    for path in photos[:2]:
        result = engine.segment(path, ["cat"])
        assert len(result) > 0, "the tiny model should keep some instances at 0.5"
        assert_same_instances(result, 0, reference.segment(Image.open(path).convert("RGB"), "cat"))


def test_plain_transformers_loads_a_student_checkpoint_after_a_light_import_litetext(student_checkpoint):
    code = (
        "import sys, litetext\n"
        "heavy = [m for m in ('torch', 'transformers', 'timm') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from transformers import Sam3LiteTextModel\n"
        f"model = Sam3LiteTextModel.from_pretrained({str(student_checkpoint)!r})\n"
        "print(type(model.vision_encoder.backbone).__name__)\n"
    )
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "StudentBackboneModel"


@pytest.mark.parametrize(("released", "millions"), [("EV-M", 22.15), ("RV-M", 25.54), ("TV-M", 28.25)])
def test_full_size_student_has_the_released_vision_encoder_size(released, millions):
    from litetext.models.random_weights import build_full_size_random_student_model

    model, _ = build_full_size_random_student_model(released)
    assert sum(p.numel() for p in model.vision_encoder.parameters()) / 1e6 == pytest.approx(millions, abs=0.005)


@pytest.mark.skipif(not UPSTREAM_SOURCE, reason="set LITETEXT_EFFICIENTSAM3_SRC to a checkout of "
                                                "github.com/SimonZeng7108/efficientsam3 to compare with its code")
@pytest.mark.parametrize("trunk", TRUNKS)
def test_timm_trunk_reproduces_upstream_trunk_with_mapped_weights(trunk):
    # In a subprocess: upstream's tiny_vit.py and repvit.py re-register timm's model names when imported.
    code = f"from tests.test_student_backbones import compare_with_upstream; print(compare_with_upstream({trunk!r}))"
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert finished.returncode == 0, finished.stderr
    assert float(finished.stdout.split()[-1]) <= 5e-5


def compare_with_upstream(trunk: str, size: int = 224, source: str | None = None) -> float:
    """Largest difference, relative to the largest output, between upstream's trunk and timm's loaded with
    upstream's random weights renamed by `trunk_key_to_timm`, on one image of `size` pixels."""
    import importlib

    import torch

    from litetext.models.student_backbones import student_trunk, timm_key_to_trunk, timm_trunk, trunk_key_to_timm

    spec = student_trunk(trunk)
    # Before upstream's modules replace timm's registrations: our trunk, and the key rules' view of its stages.
    ours = timm_trunk(spec.timm_name)
    trunk_key_to_timm(trunk, timm_key_to_trunk(trunk, next(iter(ours.state_dict()))))
    from tests.efficientsam3_upstream import stand_in_packages

    stand_in_packages(source or UPSTREAM_SOURCE)
    if spec.family == "efficientvit":
        module = importlib.import_module("sam3.backbones.efficientvit.efficientvit.backbone")
        theirs = getattr(module, f"efficientvit_backbone_{spec.size}")()
        run = lambda x: theirs(x)["stage_final"]  # noqa: E731
    elif spec.family == "repvit":
        module = importlib.import_module("sam3.backbones.repvit")
        theirs = getattr(module, spec.timm_name)(distillation=False)
        for head in ("classifier", "distill_head"):
            if hasattr(theirs, head):
                delattr(theirs, head)
        run = lambda x: _sequence(theirs.features, x)  # noqa: E731
    else:
        module = importlib.import_module("sam3.backbones.tiny_vit")
        theirs = getattr(module, spec.timm_name)(img_size=size, num_classes=0)

        def run(x):
            x = _sequence(theirs.layers, theirs.patch_embed(x))
            side = int(x.shape[1] ** 0.5)
            return x.view(x.shape[0], side, side, -1).permute(0, 3, 1, 2)

    torch.manual_seed(0)
    _randomise_norm_statistics(theirs)  # before eval(): upstream's TinyViT caches its attention biases there
    weights = {trunk_key_to_timm(trunk, key): value for key, value in theirs.state_dict().items()}
    ours.load_state_dict(weights, strict=True)
    theirs.eval()
    ours.eval()
    image = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected, found = run(image), ours.forward_features(image)
    return (expected - found).abs().max().item() / expected.abs().max().item()


def _sequence(modules, x):
    for module in modules:
        x = module(x)
    return x


def _randomise_norm_statistics(model) -> None:
    """Give norms and biases random values (defaults make BatchNorm an identity that hides wrong mappings)."""
    import torch

    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            elif tensor.dim() == 1 or name.endswith("attention_biases"):
                tensor.add_(torch.randn_like(tensor) * 0.1)
