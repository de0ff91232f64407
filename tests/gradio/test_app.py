"""The app's functions called directly, with the offline tiny-random models on CPU."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import litetext
from litetext_gradio import app
from litetext_gradio.tabs.api import api_segment
from litetext_gradio.tabs.config import load_engine
from litetext_gradio.tabs.errors import friendly, friendly_image
from litetext_gradio.tabs.parsing import format_box, parse_boxes, parse_prompts
from litetext_gradio.tabs.rendering import (
    SELECTED_COLOR,
    TABLE_HEADERS,
    cleanup_session,
    export_results,
    hex_color,
    render,
    session_dir,
    timing_text,
)
from litetext_gradio.tabs.text_prompts import example_images, rethreshold_masks, segment


def run_segment(config, image, prompts="cat, dog", *, boxes="", compare=False, score=0.5, mask=0.5, model=""):
    return segment(None, image, prompts, boxes, model or config.model, compare, score, mask, config)


def test_prompts_are_split_on_commas_and_cleaned():
    assert parse_prompts(" cat ,  red   car,\nperson, cat") == ["cat", "red car", "person"]


@pytest.mark.parametrize("text", ["", "   ", " , ,\n", None])
def test_empty_prompts_give_a_friendly_error(text):
    with pytest.raises(gr.Error, match="noun phrase"):
        parse_prompts(text)


def test_exemplar_boxes_parse_with_positive_and_negative_labels():
    boxes, labels = parse_boxes("+ 10, 20, 110, 120\n- 5 5 50 50; [1,2,3,4]")
    assert boxes == [[10, 20, 110, 120], [5, 5, 50, 50], [1, 2, 3, 4]]
    assert labels == [1, 0, 1]
    assert parse_boxes("") == ([], [])
    assert format_box((10.2, 20, 110, 120.7), 0) == "- 10, 20, 110, 121"


@pytest.mark.parametrize("text", ["1, 2, 3", "+ a, b, c, d", "1,2,3,4,5"])
def test_malformed_boxes_give_a_friendly_error(text):
    with pytest.raises(gr.Error, match="four numbers"):
        parse_boxes(text)


def test_config_offers_the_offline_models_for_tiny_random(config):
    assert config.models == ["tiny-random", "tiny-random-sam3", "tiny-random-tracker"]
    assert config.teacher == "tiny-random-sam3"
    assert config.tracker_models == ["tiny-random-tracker"] and config.object_model == "tiny-random-tracker"
    online = app.AppConfig(model="s0-16", work_dir=config.work_dir)
    assert online.models == ["s0-16", "s0-16+sam3", "sam3", "ev-m", "rv-m", "tv-m"] and online.teacher == "sam3"
    assert online.object_model == "s0-16+sam3"  # LiteText's detector with SAM3's tracker answers clicks and video
    assert "s0-32" not in online.models  # not published on the hub
    assert "s1-16" not in online.models  # its hub id is unconfirmed


def test_a_composed_model_name_loads_the_detector_with_that_checkpoints_tracker(config):
    engine = load_engine("tiny-random+tiny-random-video", config)
    assert engine.has_tracker and engine.info.model == "tiny-random"
    assert engine is litetext.load("tiny-random", device="cpu", tracker="tiny-random-video")
    assert not load_engine("tiny-random", config).has_tracker


def test_segment_shows_instances_as_overlay_and_table(config, cat_photo):
    session = run_segment(config, cat_photo)
    shown = session.shown()
    assert session.student.result.image_size == (451, 300)
    assert 0 < len(shown) < len(session.student.result)  # the model ran low, the view filters at 0.5
    assert (shown.scores > 0.5).all()
    overlay, table, timings, teacher, comparison, compare_col = render(session)
    base, layers = overlay.value["image"], overlay.value["annotations"]
    assert Image.open(base["path"]).size == (451, 300)
    labels = {layer["label"] for layer in layers}
    assert labels <= {f"cat ({(shown.prompt_indices == 0).sum()})", f"dog ({(shown.prompt_indices == 1).sum()})"}
    assert overlay.color_map[f"cat ({(shown.prompt_indices == 0).sum()})"] == hex_color(0)
    assert len(table["data"]) == len(shown)
    assert table["headers"] == TABLE_HEADERS
    assert [row[1] for row in table["data"]] == shown.labels
    assert "tiny-random" in timings and "instances shown" in timings
    assert teacher is None and compare_col["visible"] is False


def test_score_threshold_refilters_without_running_the_model(config, cat_photo):
    session = run_segment(config, cat_photo, score=0.3)
    engine = litetext.load("tiny-random", device="cpu")
    before = (engine.image_cache.stats(), engine.text_cache.stats())
    counts = []
    for threshold in (0.3, 0.5, 0.6, 0.9):
        session.score_threshold = threshold
        counts.append(len(render(session)[1]["data"]))
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    assert (engine.image_cache.stats(), engine.text_cache.stats()) == before  # no model call at all


def test_a_new_prompt_on_the_same_image_reuses_the_image_features(config, coffee_photo):
    first = run_segment(config, coffee_photo, "coffee cup")
    second = segment(first, coffee_photo, "coffee cup, spoon", "", config.model, False, 0.5, 0.5, config)
    assert second.student.result.timings.image_cache_hit
    assert "from cache" in timing_text(second.student, second.shown())
    assert second.student.prompts == ["coffee cup", "spoon"]


def test_mask_threshold_refilters_without_running_the_model(config, cat_photo):
    session = run_segment(config, cat_photo, "cat", score=0.05, mask=0.3)
    loose = session.student.result.masks.sum()
    engine = litetext.load(config.model, device=config.device)
    calls = []
    hook = engine.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        tighter = rethreshold_masks(session, 0.7, config)
    finally:
        hook.remove()
    assert calls == [], "re-thresholding must not run the model"
    assert tighter.student.mask_threshold == 0.7
    assert tighter.student.result.masks.sum() < loose
    fresh = run_segment(config, cat_photo, "cat", score=0.05, mask=0.7)
    assert (tighter.student.result.masks == fresh.student.result.masks).all()
    assert rethreshold_masks(tighter, 0.7, config).student is tighter.student  # unchanged: nothing to do


def test_selecting_a_row_highlights_that_instance(config, cat_photo):
    session = run_segment(config, cat_photo, "cat")
    session.selected = 1
    overlay = render(session)[0]
    instance = session.shown()[1]
    label = f"selected: #1 cat ({instance.score:.2f})"
    assert overlay.color_map[label] == SELECTED_COLOR
    highlighted = [layer for layer in overlay.value["annotations"] if layer["label"] == label]
    assert len(highlighted) == 1
    alpha = np.asarray(Image.open(highlighted[0]["image"]["path"]))[..., 3] > 0
    assert np.array_equal(alpha, instance.mask)


def test_exemplar_boxes_refine_the_concept(config, cat_photo):
    plain = run_segment(config, cat_photo, "cat").student.result
    refined = run_segment(config, cat_photo, "cat", boxes="+ 100, 60, 340, 240\n- 0, 0, 60, 60").student
    assert refined.boxes == [[100, 60, 340, 240], [0, 0, 60, 60]] and refined.box_labels == [1, 0]
    assert not np.allclose(np.sort(plain.scores), np.sort(refined.result.scores))


def test_a_box_outside_the_image_gives_a_friendly_error(config, cat_photo):
    with pytest.raises(gr.Error, match="outside"):
        friendly(run_segment)(config, cat_photo, "cat", boxes="0, 0, 900, 900")


def test_side_by_side_runs_the_teacher_on_the_same_prompts(config, cat_photo):
    session = run_segment(config, cat_photo, "cat, dog", compare=True)
    assert session.teacher.model == "tiny-random-sam3" and session.teacher.prompts == ["cat", "dog"]
    assert session.teacher.text_encoder_params_m > 0 and not session.teacher.error
    overlay, _, _, teacher, comparison, compare_col = render(session)
    assert teacher is not None and compare_col["visible"] is True
    assert "| tiny-random |" in comparison and "| tiny-random-sam3 |" in comparison
    assert f"{session.teacher.text_encoder_params_m:g}" in comparison


def test_an_unavailable_teacher_is_reported_not_raised(tmp_path, cat_photo):
    config = app.AppConfig(model="tiny-random", device="cpu", teacher="s0-32", work_dir=str(tmp_path))
    session = run_segment(config, cat_photo, "cat", compare=True)
    assert session.teacher.error and len(session.teacher.result) == 0
    assert "not available" in render(session)[4]


def test_models_not_offered_are_refused(config, cat_photo):
    with pytest.raises(gr.Error, match="not offered"):
        run_segment(config, cat_photo, "cat", model="/etc")


def test_downloads_hold_coco_rle_mask_pngs_union_and_overlay(config, cat_photo, tmp_path):
    from pycocotools.coco import COCO

    session = run_segment(config, cat_photo, "cat, dog")
    shown = session.shown()
    coco_path, zip_path, union_path, overlay_path = map(Path, export_results(session, tmp_path / "s"))
    coco = COCO(str(coco_path))
    assert len(coco.getAnnIds()) == len(shown)
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["cat", "dog"]
    first = coco.loadAnns(coco.getAnnIds())[0]
    assert np.array_equal(coco.annToMask(first).astype(bool), shown.masks[0])
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        assert len(names) == len(shown) and names[0].startswith("000_")
        assert np.array_equal(np.asarray(Image.open(archive.open(names[0]))) > 0, shown.masks[0])
    assert np.array_equal(np.asarray(Image.open(union_path)) > 0, shown.union_mask())
    assert Image.open(overlay_path).size == (451, 300)
    assert json.loads(coco_path.read_text())["images"][0]["file_name"] == "cat.jpg"


def test_downloads_before_segmenting_give_a_friendly_error(tmp_path):
    with pytest.raises(gr.Error, match="Segment first"):
        export_results(None, tmp_path)


def test_session_folders_are_removed_when_the_session_ends(config, cat_photo):
    request = SimpleNamespace(session_hash="abc123")
    folder = session_dir(config, request)
    export_results(run_segment(config, cat_photo, "cat"), folder)
    assert any(folder.iterdir())
    cleanup_session(config, request)
    assert not folder.exists() and Path(config.work_dir).exists()


def test_unreadable_files_give_a_friendly_error(config, tmp_path):
    garbage = tmp_path / "photo.jpg"
    garbage.write_bytes(b"this is not an image")
    with pytest.raises(gr.Error, match="Cannot read the image") as error:
        run_segment(config, str(garbage))
    assert str(tmp_path) not in str(error.value)  # no server paths in the message
    with pytest.raises(gr.Error, match="Upload an image"):
        run_segment(config, None)


def test_uploads_that_are_not_images_are_refused_by_the_image_input(tmp_path):
    from gradio.data_classes import ImageData

    garbage = tmp_path / "upload.png"
    garbage.write_bytes(b"\x00garbage")
    component = friendly_image(type="filepath", render=False)
    with pytest.raises(gr.Error, match="Cannot read the uploaded file"):
        component.preprocess(ImageData(path=str(garbage), orig_name="upload.png"))


def test_huge_images_give_a_friendly_error(tmp_path, cat_photo):
    config = app.AppConfig(model="tiny-random", device="cpu", max_pixels=100_000, work_dir=str(tmp_path))
    with pytest.raises(gr.Error, match="too large"):
        run_segment(config, cat_photo)


def test_api_segment_returns_per_instance_rle(config, cat_photo):
    data = api_segment(cat_photo, "cat, dog", 0.55, 0.5, "", "", config)
    assert data["model"] == "tiny-random" and data["text_encoder_params_m"] > 0
    assert data["image_size"] == {"width": 451, "height": 300} and data["prompts"] == ["cat", "dog"]
    assert data["instances"] and all(inst["score"] > 0.55 for inst in data["instances"])
    result = litetext.Result.from_dict(json.loads(json.dumps(data)))
    assert result.masks.shape == (len(data["instances"]), 300, 451)
    assert set(data["timings"]) >= {"encode_image_ms", "decode_ms", "image_cache_hit"}
    with pytest.raises(gr.Error, match="between 0 and 1"):
        api_segment(cat_photo, "cat", 1.5, 0.5, "", "", config)


def test_examples_are_real_photos_from_scikit_image(tmp_path):
    rows = example_images(tmp_path)
    assert [Path(path).name for path, _ in rows] == ["cat.jpg", "coffee.jpg", "astronaut.jpg", "rocket.jpg"]
    cat = np.asarray(Image.open(rows[0][0]))
    assert cat.shape == (300, 451, 3)
    assert np.abs(np.diff(cat.astype(int), axis=1)).mean() < 20  # smooth like a photo, unlike random noise
    assert rows[0][1] == "cat"


def test_the_demo_has_named_segment_segment_object_and_track_endpoints(config):
    demo = app.build_demo(config)
    public = {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert public == {"segment", "segment_object", "track"}
    assert demo.litetext_config is config


def test_the_cli_registers_the_app_command():
    import argparse

    from litetext_gradio.cli import register, run_app

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["app", "--model", "tiny-random", "--port", "7999", "--host", "0.0.0.0"])
    assert (args.model, args.port, args.host, args.run) == ("tiny-random", 7999, "0.0.0.0", run_app)
    assert parser.parse_args(["app"]).host == "127.0.0.1"


def test_app_py_runs_from_its_own_folder_without_the_package_and_builds_its_demo_on_first_use():
    folder = Path(app.__file__).parent
    code = ("import sys; sys.path.insert(0, '.'); import app; "
            "assert 'litetext_gradio' not in sys.modules; assert 'demo' not in vars(app); "
            "print(type(app.demo).__name__); assert app.demo is app.demo")
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Blocks"
