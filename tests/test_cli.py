"""The command line: segment writes COCO JSON and overlays, skips bad files, lists models."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from PIL import Image

import litetext
from litetext.cli import main


def test_segment_writes_coco_json_and_overlays_and_skips_bad_files(tmp_path, photos, checkpoints, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for photo in photos[:2]:
        shutil.copy(photo, images)
    (images / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    code = main(["segment", str(images), "-p", "cat", "-p", "coffee cup", "--model", str(checkpoints["litetext"]),
                 "--device", "cpu", "--out", str(out)])
    assert code == 1, "a skipped file makes the exit code 1"
    assert "broken.jpg" in capsys.readouterr().err
    from pycocotools.coco import COCO

    coco = COCO(str(out / "coco.json"))
    names = [img["file_name"] for img in coco.dataset["images"]]
    assert names == sorted(p.name for p in photos[:2]), "written on threads, still in input order"
    assert [c["name"] for c in coco.dataset["categories"]] == ["cat", "coffee cup"]
    engine = litetext.load(str(checkpoints["litetext"]), device="cpu")
    counts = [len(engine.segment(images / name, ["cat", "coffee cup"])) for name in names]
    assert [len(coco.getAnnIds(imgIds=[i + 1])) for i in range(len(names))] == counts and sum(counts) > 0
    annotation = coco.loadAnns(coco.getAnnIds())[0]
    image = coco.loadImgs(annotation["image_id"])[0]
    assert coco.annToMask(annotation).shape == (image["height"], image["width"])
    for photo in photos[:2]:
        with Image.open(out / "overlays" / f"{photo.stem}.png") as overlay:
            assert overlay.size == Image.open(photo).size
    failures = json.loads((out / "failures.json").read_text())
    assert failures[0]["file"].endswith("broken.jpg") and "not a readable image" in failures[0]["error"]


def test_segment_with_tiny_random_alias_runs_offline_as_installed_command(tmp_path, photos):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "litetext.cli", "segment", str(photos[0]), "-p", "cat",
               "--model", "tiny-random", "--out", str(out)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "random weights" in finished.stderr
    assert json.loads((out / "coco.json").read_text())["images"][0]["file_name"] == photos[0].name


def test_segment_without_images_or_with_empty_prompt_fails_clearly(tmp_path, capsys):
    assert main(["segment", str(tmp_path), "-p", "cat", "--model", "tiny-random"]) == 2
    assert "no image files" in capsys.readouterr().err
    assert main(["segment", str(tmp_path), "-p", "  ", "--model", "tiny-random"]) == 2
    assert "empty or blank" in capsys.readouterr().err


def test_unknown_model_gives_one_clear_error(photos, capsys):
    assert main(["segment", str(photos[0]), "-p", "cat", "--model", "no-such-alias"]) == 2
    assert "neither a known alias" in capsys.readouterr().err


def test_models_lists_aliases_with_verification_status(capsys):
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    for alias in ("s0-16", "s1-16", "l-16", "s0-32", "sam3", "tiny-random"):
        assert alias in table
    assert "unverified" in table and "not published" in table
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {m["alias"] for m in listed} >= {"s0-16", "sam3"}


def test_info_reports_versions_and_device(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "transformers" in text and "default device: cpu" in text
