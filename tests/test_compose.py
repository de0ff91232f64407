"""Composed checkpoints: a LiteText detector with SAM3's tracker in the hub's sam3_video layout."""

from __future__ import annotations

import json
import warnings

import pytest

import litetext
from litetext.cli import main
from litetext.testing import TRACKER_WIDTH, build_tiny_checkpoint


def test_assembled_checkpoint_loads_in_every_transformers_class_without_missing_keys(tracker_checkpoints):
    from transformers import Sam3LiteTextModel, Sam3TrackerModel, Sam3TrackerVideoModel, Sam3VideoModel

    for model_class in (Sam3VideoModel, Sam3LiteTextModel, Sam3TrackerModel, Sam3TrackerVideoModel):
        _, info = model_class.from_pretrained(tracker_checkpoints["composed"], output_loading_info=True)
        assert not info["missing_keys"] and not info["mismatched_keys"], model_class.__name__
    provenance = json.loads((tracker_checkpoints["composed"] / "litetext_composition.json").read_text())
    assert provenance["vit_max_difference"] == 0.0


def test_assemble_command_writes_a_loadable_checkpoint(tracker_checkpoints, tmp_path, capsys):
    out = tmp_path / "composed"
    assert main(["models", "assemble", str(tracker_checkpoints["detector"]), "--tracker",
                 str(tracker_checkpoints["video"]), "--out", str(out)]) == 0
    assert "identical ViT weights" in capsys.readouterr().err
    engine = litetext.load(str(out), device="cpu")
    assert engine.has_tracker and engine.info.family == "litetext"
    assert main(["models", "assemble", str(tracker_checkpoints["detector"]), "--tracker",
                 str(tracker_checkpoints["video"]), "--out", str(out)]) == 2  # not empty: refused
    assert "not empty" in capsys.readouterr().err


def test_detector_with_another_vit_composes_with_a_warning_naming_the_difference(tracker_checkpoints, tmp_path):
    other = build_tiny_checkpoint(tmp_path / "other", width=TRACKER_WIDTH, seed=7)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        composition = litetext.assemble(other, tracker_checkpoints["video"], tmp_path / "composed")
    assert composition.vit_max_difference > 0
    assert any("largest weight difference" in str(w.message) for w in caught)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        litetext.load(str(other), device="cpu", tracker=str(tracker_checkpoints["video"]))
    assert any("largest weight difference" in str(w.message) for w in caught)


def test_detector_that_cannot_meet_the_tracker_is_refused_by_name(tracker_checkpoints, checkpoints, tmp_path):
    with pytest.raises(litetext.ModelError, match="does not fit Sam3VideoModel: other shape: tracker_neck"):
        litetext.assemble(checkpoints["litetext"], tracker_checkpoints["video"], tmp_path / "out")


def test_tracker_source_without_a_tracker_is_refused(checkpoints, tmp_path):
    with pytest.raises(litetext.ModelError, match="without a tracker"):
        litetext.assemble(checkpoints["litetext"], checkpoints["sam3"], tmp_path / "out")
    with pytest.raises(litetext.ModelError, match="has no tracker"):
        litetext.load(str(checkpoints["litetext"]), device="cpu", tracker=str(checkpoints["sam3"]))


def test_tracker_false_leaves_it_out(tracker_checkpoints):
    engine = litetext.load(str(tracker_checkpoints["video"]), device="cpu", tracker=False)
    assert not engine.has_tracker and not engine.info.has_tracker
    assert engine is not litetext.load(str(tracker_checkpoints["video"]), device="cpu")


def test_tiny_random_tracker_alias_is_a_composed_offline_checkpoint():
    engine = litetext.load("tiny-random-tracker", device="cpu")
    assert engine.has_tracker and engine.info.family == "litetext"
    video = litetext.load("tiny-random-video", device="cpu")
    assert video.has_tracker and video.info.family == "sam3"
