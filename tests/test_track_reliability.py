"""Nothing tracked is lost and no traceback reaches a user: videos that break part-way in every mode, output that
cannot be written, and tracking arguments that are not what they should be."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

import litetext
import litetext.output
from litetext.cli import main
from litetext.track_files import read_tracks

from .test_video import moving_cat

PROMPTS = ["cat", "dog"]


@pytest.fixture(scope="module")
def engine():
    return litetext.load("tiny-random-tracker", device="cpu")


@pytest.fixture(scope="module")
def broken_folder(photos, tmp_path_factory) -> Path:
    """Eight frames, of which frame 5 is not an image: the video breaks part-way."""
    folder = tmp_path_factory.mktemp("broken") / "broken"
    folder.mkdir()
    for index, frame in enumerate(moving_cat(photos, count=8, gap=range(0))):
        frame.save(folder / f"{index:03d}.png")
    (folder / "005.png").write_bytes(b"not a png")
    return folder


def track(*args) -> int:
    return main(["track", *map(str, args), "-p", "cat", "-p", "dog", "--model", "tiny-random-tracker",
                 "--device", "cpu", "--no-overlay"])


@pytest.mark.parametrize("mode", ["auto", "video", "stream"])
def test_a_video_that_breaks_part_way_yields_every_frame_before_the_break_in_every_mode(engine, broken_folder,
                                                                                         mode):
    seen = []
    with pytest.raises(litetext.InvalidVideoError, match="frame 5 cannot be read"):
        for tracked in engine.track(broken_folder, PROMPTS, mode=mode):
            seen.append(tracked.index)
    assert seen == [0, 1, 2, 3, 4]


def test_track_command_writes_the_frames_before_the_break_records_why_and_goes_on(broken_folder, clip, tmp_path,
                                                                                  capsys):
    out = tmp_path / "out"
    assert track(broken_folder, clip, "--out", out) == 1
    error = capsys.readouterr().err
    assert "frame 5 cannot be read" in error and "5 frames tracked before it are kept" in error
    assert [index for index, _ in read_tracks(out / "broken.jsonl")] == [0, 1, 2, 3, 4]
    partial = json.loads((out / "broken.summary.partial.json").read_text())
    assert partial["status"].startswith("failed") and "frame 5" in partial["status"] and partial["frames"] == 5
    assert not (out / "broken.summary.json").exists()  # never silently "done"
    assert json.loads((out / "cat.summary.json").read_text())["status"] == "done"  # the next video ran


def test_output_that_is_a_file_or_under_a_file_is_refused_before_any_work(clip, tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    for out in (a_file, a_file / "below"):
        assert track(clip, "--out", out) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines[-1].startswith("litetext: error: cannot write into") and str(a_file) in lines[-1]
    assert main(["segment", str(clip), "-p", "cat", "--model", "tiny-random", "--device", "cpu", "--out",
                 str(a_file)]) == 2
    assert "cannot write into" in capsys.readouterr().err


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 16 kB (root only, as CI runs); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_stops_the_run_with_one_line_and_the_json_lines_stay_whole(small_disk, photos, clip, tmp_path,
                                                                               monkeypatch, capsys):
    monkeypatch.setattr(litetext.output, "MIN_FREE_BYTES", 0)  # let the run start on the tiny disk
    frames = tmp_path / "long"
    frames.mkdir()
    for index, frame in enumerate(moving_cat(photos, count=40, gap=range(0))):
        frame.save(frames / f"{index:03d}.png")
    assert track(frames, clip, "--out", small_disk / "out") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("litetext: error: cannot write") and "No space left on device" in lines[-1]
    jsonl = small_disk / "out" / "long.jsonl"
    text = jsonl.read_bytes()
    assert text == b"" or text.endswith(b"\n")  # no half line
    written = list(read_tracks(jsonl))
    assert len(written) == text.count(b"\n") < 40
    assert not (small_disk / "out" / "long.summary.json").exists()
    assert not (small_disk / "out" / "cat.jsonl").exists()  # the run stopped: the next video was not started


def test_a_read_only_disk_is_refused_naming_the_folder(small_disk, clip, capsys):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    assert track(clip, "--out", small_disk / "out") == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(small_disk / "out") in error and "Read-only file system" in error


def test_too_little_free_space_is_refused_before_any_work(clip, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(litetext.output, "MIN_FREE_BYTES", 2**62)
    assert track(clip, "--out", tmp_path / "out") == 2
    assert "MB free" in capsys.readouterr().err


def test_an_interrupted_line_write_is_cut_back_to_the_last_whole_line(tmp_path):
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b'{"frame": 0}\n')

    class DiskFull:
        """A file whose disk fills after 5 more bytes."""

        def __init__(self, handle):
            self.handle, self.room = handle, 5

        def seek(self, *args):
            return self.handle.seek(*args)

        def fileno(self):
            return self.handle.fileno()

        def write(self, data):
            if self.room <= 0:
                raise OSError(28, "No space left on device")
            taken = self.handle.write(bytes(data[: self.room]))
            self.room -= taken
            return taken

    with open(path, "ab", buffering=0) as handle:
        with pytest.raises(litetext.OutputError, match="No space left on device"):
            litetext.output.append_line(DiskFull(handle), path, '{"frame": 1, "long": "' + "x" * 100 + '"}')
    assert path.read_bytes() == b'{"frame": 0}\n'


@pytest.mark.parametrize(("arguments", "words"), [
    ({"max_objects": -1}, "max_objects must be a whole number >= 1"),
    ({"max_objects": 0}, "max_objects"),
    ({"max_objects": 2.5}, "max_objects"),
    ({"max_objects": "3"}, "max_objects"),
    ({"max_objects": True}, "max_objects"),
    ({"start_frame": -1}, "start_frame must be a whole number >= 0"),
    ({"start_frame": 1.5}, "start_frame"),
    ({"max_frames": 0}, "max_frames must be a whole number >= 1"),
    ({"threshold": math.nan}, "threshold"),
    ({"threshold": True}, "threshold"),
    ({"threshold": "0.5"}, "threshold"),
    ({"new_object_threshold": 1.5}, "new_object_threshold"),
    ({"new_object_threshold": math.inf}, "new_object_threshold"),
    ({"mode": "fast"}, "mode must be one of"),
])
def test_tracking_arguments_of_the_wrong_kind_or_range_are_refused_by_name(engine, photos, arguments, words):
    frames = moving_cat(photos, count=2, gap=range(0))
    with pytest.raises(litetext.InputError, match=words):
        engine.track(frames, PROMPTS, **arguments)


def test_a_start_frame_past_the_end_is_refused_not_reported_done(engine, broken_folder, photos):
    with pytest.raises(litetext.InputError, match="start_frame 8 is past the end .* 8 frames"):
        list(engine.track(broken_folder, PROMPTS, start_frame=8))
    stream = iter(moving_cat(photos, count=3, gap=range(0)))  # a live stream: its length is unknown
    with pytest.raises(litetext.InputError, match="start_frame 5 is past the end"):
        list(engine.track(stream, PROMPTS, start_frame=5, mode="stream"))


def test_resume_refuses_other_prompts_or_settings_naming_both(clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert track(clip, "--out", out, "--max-frames", "3") == 0
    (out / "cat.summary.json").rename(out / "cat.summary.partial.json")  # as if killed before the end
    before = (out / "cat.jsonl").read_bytes()
    code = main(["track", str(clip), "-p", "person", "--model", "tiny-random-tracker", "--device", "cpu",
                 "--no-overlay", "--out", str(out), "--resume", "--max-frames", "3"])
    error = capsys.readouterr().err
    assert code == 1 and "['cat', 'dog']" in error and "['person']" in error
    assert track(clip, "--out", out, "--resume", "--max-frames", "4") == 1
    assert "'max_frames': 3" in capsys.readouterr().err
    assert (out / "cat.jsonl").read_bytes() == before
    assert track(clip, "--out", out, "--resume", "--max-frames", "3") == 0  # the same run resumes


def test_whole_numbers_given_as_floats_track_and_track_options_check_themselves(engine, photos):
    frames = moving_cat(photos, count=2, gap=range(0))
    assert len(list(engine.track(frames, PROMPTS, max_objects=2.0, max_frames=2.0, mode="stream"))) == 2
    with pytest.raises(litetext.InputError, match="max_objects must be a whole number"):
        litetext.TrackOptions(max_objects=-1)
    assert litetext.TrackOptions(max_frames=3).as_kwargs()["max_frames"] == 3
    settled = litetext.TrackOptions(max_objects=3.0, threshold=1)  # kept as the engine takes them
    assert settled.max_objects == 3 and isinstance(settled.max_objects, int) and isinstance(settled.threshold, float)


def test_a_long_value_in_a_message_is_cut_and_the_explanation_kept(engine, photos):
    with pytest.raises(litetext.PromptError, match=r"\.\.\. must be two numbers x, y in pixels"):
        engine.segment_object(photos[0], points=[[10**400, 5, 7]])
