"""The example scripts run as a user would copy them (offline, with the tiny random checkpoints)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def run_example(name: str, *args: str, cwd) -> str:
    finished = subprocess.run([sys.executable, str(REPO / "examples" / name), *args], capture_output=True,
                              text=True, timeout=600, cwd=cwd)
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


def test_segment_folder_example_writes_coco(tmp_path):
    out = run_example("segment_folder_to_coco.py", str(REPO / "examples" / "images"), "--prompt", "cat",
                      "--model", "tiny-random", "--out", str(tmp_path / "coco.json"), cwd=tmp_path)
    assert "instances in 4 images" in out
    assert len(json.loads((tmp_path / "coco.json").read_text())["images"]) == 4


def test_many_prompts_example_hits_the_cache(tmp_path):
    out = run_example("many_prompts_cached.py", str(REPO / "examples" / "images" / "cat.jpg"),
                      "--model", "tiny-random", cwd=tmp_path)
    assert out.count("image cache hit=True") == 3
    assert (tmp_path / "overlay.png").exists()


def test_student_teacher_example_compares_both(tmp_path):
    out = run_example("litetext_vs_sam3.py", str(REPO / "examples" / "images" / "astronaut.jpg"),
                      "--prompt", "person", "--student", "tiny-random", "--teacher", "tiny-random-sam3", cwd=tmp_path)
    assert "tiny-random-sam3" in out and "mask IoU" in out
