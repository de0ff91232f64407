"""Video tasks through the Label Studio backend: Label Studio's video tracking config, `videorectangle` regions
whose keyframes equal `engine.track`'s objects, failed tasks for unreadable videos, and the keyframe rules."""

from __future__ import annotations

import numpy as np
import pytest

import litetext
from tests.label_studio.label_studio_helpers import (
    VIDEO_CONFIG,
    VIDEO_LABELS,
    assert_regions_match,
    expected_tracks,
)

pytest.importorskip("starlette")
pytest.importorskip("av")


def predict(client, tasks, config=VIDEO_CONFIG, context=None):
    return client.post("/predict", json={"tasks": tasks, "project": "11.1700000000", "label_config": config,
                                         "params": {"context": context}})


def video_task(task_id: int, video: str, **data) -> dict:
    return {"id": task_id, "data": {"video": video, **data}, "annotations": [], "predictions": []}


def test_a_video_task_gets_one_videorectangle_per_tracked_object_with_the_engines_keyframes(
        tracker_client, image_server, clip_frames):
    response = predict(tracker_client, [video_task(1, f"{image_server}/clip.mp4")])
    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == []
    [prediction] = body["results"]
    assert prediction["model_version"] == "litetext-tiny-random-tracker-score0.5-mask0.5"
    expected = expected_tracks(clip_frames, VIDEO_LABELS)
    assert_regions_match(prediction["result"], expected)
    assert prediction["score"] == pytest.approx(np.mean([r["score"] for r in prediction["result"]]), abs=1e-5)


def test_unreadable_videos_fail_their_own_tasks_and_the_server_keeps_serving(make_client, tracker_engine,
                                                                             image_server):
    from starlette.testclient import TestClient

    from litetext_label_studio import BackendSettings, create_app

    settings = BackendSettings.from_env({}, model="tiny-random-tracker", device="cpu", max_video_bytes=4096)
    with TestClient(create_app(settings, engine=tracker_engine)) as client:
        tasks = [video_task(1, f"{image_server}/broken.mp4"), video_task(2, f"{image_server}/missing.mp4"),
                 video_task(3, f"{image_server}/clip.mp4"), {"id": 4, "data": {"image": "x.jpg"}}]
        body = predict(client, tasks).json()
        assert client.get("/health").json()["status"] == "UP"
    errors = {e["task"]: e["error"] for e in body["errors"]}
    assert set(errors) == {1, 2, 3, 4}
    assert "broken.mp4" in errors[1] and "not a readable video" in errors[1]
    assert "litetext-video-" not in errors[1]  # the task's video is named, not the scratch file
    assert "HTTP 404" in errors[2]
    assert "clip.mp4" in errors[3] and "more than the 4,096" in errors[3]  # LITETEXT_MAX_VIDEO_BYTES
    assert "data['video']" in errors[4]
    assert all("result" not in r and r["error"] for r in body["results"])  # Label Studio stores nothing


def test_video_configs_need_a_tracker_and_say_how_to_get_one(client, image_server):
    setup = client.post("/setup", json={"project": "11.1", "schema": VIDEO_CONFIG})
    assert setup.status_code == 422 and "--tracker sam3" in setup.json()["error"]
    [result] = predict(client, [video_task(1, f"{image_server}/clip.mp4")]).json()["results"]
    assert "video tracking needs SAM3's tracker" in result["error"] and "result" not in result


def test_an_interactive_request_on_a_video_task_is_answered_with_what_to_do(tracker_client, image_server):
    drawn = {"result": [{"id": "v1", "type": "videorectangle", "from_name": "box", "to_name": "video",
                         "value": {"sequence": [{"frame": 1, "x": 1, "y": 1, "width": 5, "height": 5}],
                                   "framesCount": 6, "duration": 0.25}}]}
    response = predict(tracker_client, [video_task(1, f"{image_server}/clip.mp4")], context=drawn)
    assert response.status_code == 200
    assert "tracked automatically" in response.json()["results"][0]["error"]


# The labelling config ----------------------------------------------------------------------------------


def test_the_video_config_maps_labels_to_prompts_and_reads_the_framerate():
    from litetext_label_studio import parse_label_config

    config = VIDEO_CONFIG.replace('<Video name="video" value="$video"/>',
                                  '<Video name="video" value="$video" framerate="$fps"/>')
    [video] = parse_label_config(config).active_videos
    assert (video.name, video.to_name, video.video_key) == ("box", "video", "video")
    assert video.label_of_prompts() == VIDEO_LABELS
    assert video.frames_per_second({"fps": "29.97"}) == pytest.approx(29.97)
    assert video.frames_per_second({}) == 24.0  # Label Studio's default
    [plain] = parse_label_config(VIDEO_CONFIG).active_videos
    assert plain.frames_per_second(None) == 24.0


def test_a_video_rectangle_without_labels_is_refused_with_what_to_add():
    from litetext_label_studio import LabelConfigError, parse_label_config

    config = '<View><Video name="video" value="$video"/><VideoRectangle name="box" toName="video"/></View>'
    with pytest.raises(LabelConfigError, match='<Labels name="videoLabels" toName="video">'):
        parse_label_config(config)
    with pytest.raises(LabelConfigError, match="naming a <Video>"):
        parse_label_config(config.replace('toName="video"/>', 'toName="nowhere"/>'))


# Keyframes ---------------------------------------------------------------------------------------------


def tracked(index: int, objects: dict[int, tuple[list[float], int]], size=(100, 50)):
    """A TrackedFrame whose instances are {object id: (box, mask pixels)} (a mask of 0 pixels is empty)."""
    width, height = size
    masks = np.zeros((len(objects), height, width), dtype=bool)
    for row, (_, pixels) in enumerate(objects.values()):
        masks[row].flat[:pixels] = True
    result = litetext.Result(prompts=["cat"], prompt_indices=np.zeros(len(objects), dtype=np.int64),
                             scores=np.full(len(objects), 0.8, dtype=np.float32),
                             boxes=np.array([box for box, _ in objects.values()], dtype=np.float32).reshape(-1, 4),
                             masks=masks, image_size=size, object_ids=np.array(list(objects), dtype=np.int64))
    return litetext.TrackedFrame(index, result)


def test_an_object_that_leaves_ends_its_stretch_and_one_still_there_at_the_end_stays_enabled():
    from litetext_label_studio.video import collect_tracks

    box = [10.0, 5.0, 60.0, 30.0]
    frames = [tracked(0, {7: (box, 9), 3: (box, 9)}), tracked(1, {7: (box, 9)}), tracked(2, {7: (box, 0)}),
              tracked(3, {7: (box, 9), 3: (box, 9)})]
    tracks, count = collect_tracks(frames, framerate=10.0)
    assert count == 4 and [t.object_id for t in tracks] == [3, 7]
    three, seven = ({k["frame"]: k["enabled"] for k in t.keyframes} for t in tracks)
    assert three == {1: False, 4: True}  # gone after frame 1 (hidden from frame 2), back on frame 4
    assert seven == {1: True, 2: False, 4: True}  # an empty mask on frame 3 counts as gone
    first = tracks[0].keyframes[0]
    assert [first[k] for k in ("x", "y", "width", "height", "rotation")] == [10.0, 10.0, 50.0, 50.0, 0]
    assert first["time"] == pytest.approx(0.1) and tracks[0].score == pytest.approx(0.8)
