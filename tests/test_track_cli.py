"""`litetext track`: JSON Lines with object ids as it goes, an overlay MP4, a summary, --resume, bad videos."""

from __future__ import annotations

import json

import numpy as np

import litetext
from litetext.cli import main
from litetext.track_files import read_tracks


def track(*args) -> int:
    return main(["track", *map(str, args), "-p", "cat", "-p", "dog", "--model", "tiny-random-tracker",
                 "--device", "cpu"])


def test_track_writes_rle_lines_overlay_and_summary_equal_to_the_engine(clip, tmp_path):
    out = tmp_path / "out"
    assert track(clip, "--out", out) == 0
    lines = list(read_tracks(out / "cat.jsonl"))
    engine = litetext.load("tiny-random-tracker", device="cpu")
    expected = list(engine.track(clip, ["cat", "dog"]))
    assert [index for index, _ in lines] == [t.index for t in expected] == list(range(6))
    for (_, result), tracked in zip(lines, expected):
        assert result.object_ids.tolist() == tracked.result.object_ids.tolist()
        assert result.labels == tracked.result.labels
        assert np.array_equal(result.masks, tracked.result.masks)
    summary = json.loads((out / "cat.summary.json").read_text())
    assert summary["status"] == "done" and summary["frames"] == 6
    ids = {obj["object_id"] for obj in summary["objects"]}
    assert ids == {int(i) for _, r in lines for i in r.object_ids}
    assert all(0 <= obj["first_frame"] <= obj["last_frame"] <= 5 for obj in summary["objects"])
    overlay = litetext.open_video(out / "cat.overlay.mp4")
    assert overlay.frame_count == 6


def test_resume_skips_finished_videos_and_continues_a_killed_one(clip, tmp_path):
    out = tmp_path / "out"
    assert track(clip, "--out", out, "--no-overlay") == 0
    complete = (out / "cat.jsonl").read_text()
    lines = complete.splitlines(keepends=True)
    (out / "cat.summary.json").unlink()  # killed during frame 4: three lines and half a line written
    (out / "cat.jsonl").write_text("".join(lines[:3]) + lines[3][:40])
    assert track(clip, "--out", out, "--no-overlay", "--resume") == 0
    assert (out / "cat.jsonl").read_text() == complete
    stamp = (out / "cat.jsonl").stat().st_mtime_ns
    assert track(clip, "--out", out, "--no-overlay", "--resume") == 0  # done: not touched again
    assert (out / "cat.jsonl").stat().st_mtime_ns == stamp


def test_bad_video_is_reported_and_the_others_are_tracked(clip, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 50)
    out = tmp_path / "out"
    assert track(bad, clip, "--out", out, "--no-overlay") == 1
    assert "broken.mp4" in capsys.readouterr().err
    assert (out / "cat.summary.json").is_file()


def test_model_without_tracker_says_how_to_get_one(clip, tmp_path, capsys):
    code = main(["track", str(clip), "-p", "cat", "--model", "tiny-random", "--device", "cpu", "--out",
                 str(tmp_path)])
    assert code == 2 and "--tracker sam3" in capsys.readouterr().err
