"""`litetext track --engine ray`: one task per video, each video's files exactly once, equal to a local run."""

from __future__ import annotations

import json

import pytest

import litetext
from litetext.distributed import run_track_job
from litetext.track_files import read_tracks, track_to_files

from ..test_video import moving_cat

PROMPTS = ["cat", "dog"]
MODEL = "tiny-random-tracker"


@pytest.fixture(scope="module")
def videos(photos, tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    frames = moving_cat(photos, count=5, gap=range(0))
    for name, shift in (("a", 0), ("b", 2), ("c", 4)):
        with litetext.VideoWriter(folder / f"{name}.mp4", fps=5) as writer:
            for frame in frames[shift:] + frames[:shift]:
                writer.write(frame)
    (folder / "broken.mp4").write_bytes(b"no video here" * 40)
    return folder


@pytest.mark.slow
def test_each_video_is_tracked_once_despite_a_killed_worker_and_equals_a_local_run(videos, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("LITETEXT_TEST_CRASH_BEFORE_COMMIT", "b.mp4")
    monkeypatch.setenv("LITETEXT_TEST_CRASH_MARKERS", str(markers))
    out = tmp_path / "out"
    summary = run_track_job([videos], PROMPTS, out, model=MODEL, device="cpu", workers=2, overlay=False,
                            log=lambda message: None)
    assert [p.name for p in markers.iterdir()] == ["LITETEXT_TEST_CRASH_BEFORE_COMMIT-b.mp4"]
    assert (summary.total, summary.tracked, summary.failed, summary.skipped) == (4, 3, 1, 0)
    assert summary.failures[0]["path"].endswith("broken.mp4") and "broken.mp4" in summary.failures[0]["error"]
    assert not list(out.glob(".tmp-*"))
    engine = litetext.load(MODEL, device="cpu")
    for name in ("a", "b", "c"):
        assert json.loads((out / f"{name}.summary.json").read_text())["status"] == "done"
        local = track_to_files(engine, videos / f"{name}.mp4", PROMPTS, tmp_path / "local", name, overlay=False)
        assert (out / f"{name}.jsonl").read_text() == (tmp_path / "local" / f"{name}.jsonl").read_text()
        assert [i for i, _ in read_tracks(out / f"{name}.jsonl")] == list(range(local.frames))
    assert (out / "broken.summary.partial.json").is_file() is False  # it never opened: nothing written for it

    again = run_track_job([videos], PROMPTS, out, model=MODEL, device="cpu", workers=1, overlay=False,
                          log=lambda message: None)
    assert (again.skipped, again.tracked) == (3, 0) and again.failed == 1  # the broken one is tried again
