"""The Video tab's tracking, called directly with the offline tiny-random-tracker model on CPU on an 8-frame
160x120 H.264 clip (the app's frame limit set to 4, to keep it short): its files and table equal what
`Engine.track` gives, and bad videos give friendly errors."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import litetext
from litetext.track_files import read_tracks
from litetext_gradio import app
from litetext_gradio.tabs.api import api_track
from litetext_gradio.tabs.errors import friendly
from litetext_gradio.tabs.rendering import object_rows, video_status
from litetext_gradio.tabs.video import track_video

TRACKER_MODEL = "tiny-random-tracker"


@pytest.fixture(scope="module")
def video_config(tmp_path_factory):
    return app.AppConfig(model="tiny-random", device="cpu", max_video_frames=4,
                         work_dir=str(tmp_path_factory.mktemp("work")))


@pytest.fixture(scope="module")
def tracked(video_config, clip, tmp_path_factory):
    return track_video(clip, "square, person", "", tmp_path_factory.mktemp("tracks"), video_config)


def test_tracking_writes_the_overlay_mp4_and_rle_json_lines_equal_to_engine_track(tracked, clip):
    assert tracked.model == TRACKER_MODEL  # the default: the offered model with a tracker
    assert tracked.summary.frames == 4 and tracked.summary.status == "done"
    assert (tracked.frame_count, tracked.limited) == (8, True)
    engine = litetext.load(TRACKER_MODEL, device="cpu")
    expected = list(engine.track(clip, ["square", "person"], max_frames=4))
    written = list(read_tracks(tracked.jsonl_path))
    assert [index for index, _ in written] == [frame.index for frame in expected] == [0, 1, 2, 3]
    for (_, result), frame in zip(written, expected):
        assert np.array_equal(result.masks, frame.result.masks)
        assert result.object_ids.tolist() == frame.result.object_ids.tolist()
    overlay = litetext.open_video(tracked.overlay_path)
    assert [f.image.size for f in overlay.frames()] == [(160, 120)] * 4
    assert json.loads(open(tracked.summary_path).read())["frames"] == 4


def test_the_objects_table_and_status_line_come_from_the_track_summary(tracked):
    rows = object_rows(tracked.summary)
    assert [row[0] for row in rows] == [o.object_id for o in tracked.summary.objects] and rows
    assert all(row[1] in ("square", "person") and 0 <= row[2] <= row[3] <= 3 for row in rows)
    status = video_status(tracked)
    assert "**4** frames tracked" in status and "the first 4 of 8" in status and "objects:" in status
    assert tracked.files() == [tracked.overlay_path, tracked.jsonl_path, tracked.summary_path]


def test_api_track_returns_the_overlay_the_json_lines_and_the_summary(video_config, clip, tmp_path):
    overlay, jsonl, summary = api_track(clip, "square", TRACKER_MODEL, tmp_path, video_config)
    assert overlay.endswith(".overlay.mp4") and jsonl.endswith(".jsonl")
    assert summary["model"] == TRACKER_MODEL and summary["frames"] == 4 and summary["prompts"] == ["square"]
    assert set(summary["objects_per_prompt"]) == {"square"}


@pytest.fixture(scope="module")
def bad_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-videos")
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.mp4").write_bytes(b"this is not a video at all")
    with litetext.VideoWriter(folder / "huge.mp4", fps=4) as writer:
        writer.write(Image.fromarray(np.zeros((120, 200, 3), dtype=np.uint8)))
    return folder


@pytest.mark.parametrize(("name", "prompts", "model", "message"), [
    (None, "square", "", "Upload a video"),
    ("empty.mp4", "square", "", "empty"),
    ("text.mp4", "square", "", "not a readable video"),
    ("huge.mp4", "square", "", "downscale"),
    ("huge.mp4", " , ", "", "noun phrase"),
    ("huge.mp4", "square", "/etc", "not offered"),
])
def test_bad_videos_and_inputs_give_a_friendly_error_before_any_tracking(bad_videos, tmp_path, name, prompts, model,
                                                                        message):
    config = app.AppConfig(model="tiny-random", device="cpu", max_video_pixels=160 * 120, work_dir=str(tmp_path))
    video = None if name is None else str(bad_videos / name)
    with pytest.raises(gr.Error, match=message) as caught:
        friendly(track_video)(video, prompts, model, tmp_path / "out", config)
    assert str(bad_videos) not in str(caught.value)  # the file's name, not its server path
    assert not (tmp_path / "out").exists()


def test_a_model_without_a_tracker_gives_a_friendly_error_naming_both_ways_to_get_one(clip, tmp_path, video_config):
    with pytest.raises(gr.Error, match="no tracker.*tracker='sam3'") as caught:
        friendly(track_video)(clip, "square", "tiny-random", tmp_path, video_config)
    assert str(tmp_path) not in str(caught.value) and "kept in square.jsonl" in str(caught.value)  # no server path
