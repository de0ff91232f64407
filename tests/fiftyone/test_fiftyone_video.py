"""Video datasets: `LitetextVideoModel` through FiftyOne's `apply_model`, and the operator on videos, against
`Engine.track` on the same files (real FiftyOne + MongoDB, H.264 clips written by `litetext.VideoWriter`)."""

from __future__ import annotations

import math
import re
import shutil

import fiftyone as fo
import fiftyone.operators as foo
import numpy as np
import pytest
from fiftyone.operators.delegated import DelegatedOperationService
from fiftyone.operators.executor import ExecutionContext

import litetext
from litetext_fiftyone import OPERATOR_URI, LitetextVideoModel, SegmentOptions, detection_to_mask, segment_samples
from litetext_fiftyone.operators import SegmentWithText, build_options
from tests.fiftyone.conftest import PHOTOS
from tests.fiftyone.test_fiftyone_operator import app_requests, run_operator

TRACKER_MODEL = "tiny-random-tracker"
PROMPTS = ["cat", "coffee cup"]
FRAMES, SIZE = 8, (160, 120)

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="apply_model reads videos with ffmpeg and ffprobe: apt install ffmpeg")


@pytest.fixture(scope="module")
def clip_paths(tmp_path_factory) -> list[str]:
    """Two 8-frame 160x120 H.264 clips (a photo drifting), and a .mp4 file that is not a video, last."""
    root = tmp_path_factory.mktemp("videos")
    paths = []
    for n, photo in enumerate(PHOTOS[:2]):
        image = litetext.load_image(photo).resize((SIZE[0] + FRAMES * 2, SIZE[1] + FRAMES * 2))
        path = root / f"clip{n}.mp4"
        with litetext.VideoWriter(path, fps=8) as writer:
            for i in range(FRAMES):
                writer.write(image.crop((2 * i, i, 2 * i + SIZE[0], i + SIZE[1])))
        paths.append(str(path))
    broken = root / "broken.mp4"
    broken.write_bytes(b"this is not a video")
    return [*paths, str(broken)]


@pytest.fixture(scope="module")
def tracker_engine():
    return litetext.load(TRACKER_MODEL, device="cpu")


@pytest.fixture(scope="module")
def expected(clip_paths, tracker_engine) -> dict[str, list[litetext.TrackedFrame]]:
    """`Engine.track` on each good clip, all prompts at once: what the frame labels must equal."""
    return {path: list(tracker_engine.track(path, PROMPTS)) for path in clip_paths[:2]}


@pytest.fixture
def videos(clip_paths):
    dataset = fo.Dataset.from_videos(clip_paths)
    yield dataset
    dataset.delete()


def assert_frames_equal_tracks(sample, field, tracked_frames):
    """The sample's frame labels are exactly the tracked frames: 1-based frame numbers, one detection per
    tracked object (label, index = object id, confidence, relative box, mask pixel for pixel)."""
    labelled = [n for n, frame in sample.frames.items() if frame[field] is not None]
    assert labelled == [t.index + 1 for t in tracked_frames]
    for tracked in tracked_frames:
        detections = sample.frames[tracked.index + 1][field].detections
        instances = list(tracked.result)
        assert len(detections) == len(instances)
        for detection, instance in zip(detections, instances):
            assert detection.label == instance.prompt
            assert instance.object_id is not None and detection.index == instance.object_id
            assert detection.confidence == pytest.approx(instance.score, abs=1e-6)
            x, y, w, h = detection.bounding_box
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= 1 + 1e-9 and y + h <= 1 + 1e-9
            assert np.array_equal(detection_to_mask(detection, tracked.result.image_size), instance.mask)


def test_tracks_found_objects_that_keep_their_ids_across_frames(expected):
    for tracked_frames in expected.values():  # the comparisons below are not vacuous
        assert len(tracked_frames) == FRAMES
        ids = [set(t.result.object_ids.tolist()) for t in tracked_frames]
        assert ids[-1] and ids[-1] & ids[-2]


@needs_ffmpeg
def test_apply_model_writes_frame_detections_equal_to_one_track_pass_per_video(videos, clip_paths, expected,
                                                                               tracker_engine, monkeypatch):
    calls = []
    track = tracker_engine.track
    monkeypatch.setattr(tracker_engine, "track", lambda video, prompts, **kw: calls.append((video, prompts)) or
                        track(video, prompts, **kw))
    for sample in videos:
        sample["what"] = fo.Classification(label=PROMPTS[1])  # each video's own prompt, after the fixed one
        sample.save()
    model = LitetextVideoModel(PROMPTS[:1], model=TRACKER_MODEL, device="cpu")
    assert model.media_type == "video" and model.engine is tracker_engine
    videos.apply_model(model, label_field="tracks", prompt_field="what")  # FiftyOne's video path
    assert calls == [(path, PROMPTS) for path in clip_paths[:2]]  # all prompts in ONE pass; broken one skipped
    for path in clip_paths[:2]:
        assert_frames_equal_tracks(videos[path], "tracks", expected[path])
    assert videos.match(fo.ViewField("filepath") == clip_paths[2]).count("frames.tracks") == 0
    with pytest.raises(litetext.InvalidVideoError, match="broken.mp4"):
        model.predict(clip_paths[2])  # the reason FiftyOne logged and skipped it


@needs_ffmpeg
def test_a_clips_view_tracks_only_the_clips_frames(videos, clip_paths, tracker_engine):
    clips = videos.select(videos[clip_paths[0]].id).to_clips([[(3, 6)]])
    clips.apply_model(LitetextVideoModel(["cat"], model=TRACKER_MODEL, device="cpu"), label_field="clip")
    expected = list(tracker_engine.track(clip_paths[0], ["cat"], start_frame=2, max_frames=4))
    assert [t.index for t in expected] == [2, 3, 4, 5]
    assert_frames_equal_tracks(videos[clip_paths[0]], "clip", expected)  # the clip's frames, in the video

    summary = segment_samples(clips, SegmentOptions(prompts=["cat"], label_field="clip_op", model=TRACKER_MODEL,
                                                    device="cpu"))  # what the operator runs
    assert (summary.segmented, summary.frames) == (1, 4)
    assert_frames_equal_tracks(videos[clip_paths[0]], "clip_op", expected)


def test_video_model_needs_a_tracker_and_sample_level_prompts():
    with pytest.raises(litetext.NoTrackerError, match="tiny-random has no tracker.*tracker 'sam3'.*'sam3'"):
        LitetextVideoModel(["cat"], model="tiny-random", device="cpu")
    with pytest.raises(ValueError, match="sample-level field"):
        LitetextVideoModel(["cat"], model=TRACKER_MODEL, device="cpu", prompt_field="frames.ground_truth")
    with pytest.raises(ValueError, match="unknown LitetextVideoModel option.*mask_threshold"):
        LitetextVideoModel(["cat"], model=TRACKER_MODEL, device="cpu", mask_threshold=0.4)


def test_operator_tracks_videos_with_per_frame_progress_and_skips_the_broken_one(videos, clip_paths, expected):
    params = {"prompts": PROMPTS, "model": TRACKER_MODEL, "tracker": "", "label_field": "tracks"}
    result, execution = run_operator(videos, **params)
    assert (result["segmented"], result["failed"], result["frames"]) == (2, 1, 2 * FRAMES)
    assert [f["filepath"] for f in result["failures"]] == [clip_paths[2]]
    assert result["message"].startswith("tracked 2 of 3 videos (16 frames") and "1 failed" in result["message"]
    for path in clip_paths[:2]:
        assert_frames_equal_tracks(videos[path], "tracks", expected[path])
    assert result["objects"] == sum(len({i for t in tracked for i in t.result.object_ids.tolist()})
                                    for tracked in expected.values())
    assert len(videos.to_trajectories("frames.tracks")) == result["objects"]  # FiftyOne links them by index
    progress = [r["params"] for r in app_requests(execution) if r["operator_uri"] == "set_progress"]
    assert "video 1 of 3: frame 1 of 8" in [p["label"] for p in progress]  # as frames are tracked
    values = [p["progress"] for p in progress]
    assert len(values) > 3 and values == sorted(values) and values[-1] == 1.0
    assert videos[clip_paths[0]].metadata.total_frame_count == FRAMES  # missing video metadata is filled in

    again, _ = run_operator(videos, **params)  # labelled videos are skipped, the broken one retried
    assert (again["segmented"], again["skipped_existing"], again["failed"]) == (0, 2, 1)


@pytest.mark.slow
def test_delegated_operator_run_on_videos_is_queued_then_tracked(videos, clip_paths, expected):
    result, operation = run_operator(videos, delegate=True, prompts=PROMPTS, model=TRACKER_MODEL, tracker="",
                                     label_field="queued")
    assert operation.run_state == "completed" and operation.status.progress == pytest.approx(1.0)
    assert (result["segmented"], result["failed"]) == (2, 1)
    for path in clip_paths[:2]:
        assert_frames_equal_tracks(videos[path], "queued", expected[path])


@pytest.mark.parametrize(("setting", "value", "words"), [
    *[("max_objects", value, "max_objects must be a whole number >= 1") for value in (-1, 0, 2.5, "3", True, math.nan)],
    *[(name, value, f"{name} must be a number between 0 and 1")
      for name in ("confidence_thresh", "new_object_threshold") for value in (math.nan, True, "0.5", 1.5)],
])
def test_bad_tracking_settings_are_refused_when_the_model_is_built(setting, value, words):
    with pytest.raises(ValueError, match=re.escape(f"{words}, not {value!r}")):
        LitetextVideoModel(["cat"], model=TRACKER_MODEL, device="cpu", **{setting: value})


def test_settings_changed_after_the_model_is_built_are_refused_by_the_engine(clip_paths):
    model = LitetextVideoModel(["cat"], model=TRACKER_MODEL, device="cpu", max_objects=3.0)
    assert model.config.track_options().max_objects == 3 and isinstance(model.config.max_objects, int)
    model.config.max_objects = 2.5  # not rounded to 2 on the way
    with pytest.raises(litetext.InputError, match=r"max_objects must be a whole number >= 1, not 2\.5"):
        model.predict(clip_paths[0])


@needs_ffmpeg
def test_a_bad_confidence_thresh_given_to_apply_model_fails_each_video_naming_it(videos, clip_paths):
    model = LitetextVideoModel(["cat"], model=TRACKER_MODEL, device="cpu")
    videos.apply_model(model, label_field="nan", confidence_thresh=math.nan)  # FiftyOne sets it on the config
    assert not videos.has_frame_field("nan")  # every video failed (logged); none was tracked at a NaN threshold
    with pytest.raises(litetext.InputError, match="threshold must be a number between 0 and 1, not nan"):
        videos.apply_model(model, label_field="nan", confidence_thresh=math.nan, skip_failures=False)


def test_a_clip_past_the_end_of_its_video_fails_naming_the_frames_it_has(videos, clip_paths):
    clips = videos.select(videos[clip_paths[0]].id).to_clips([[(20, 30)]])
    model = LitetextVideoModel(["cat"], model=TRACKER_MODEL, device="cpu")
    with pytest.raises(litetext.InputError, match=r"start_frame 19 is past the end of .*clip0\.mp4, which has 8"):
        model.predict(clip_paths[0], sample=clips.first())
    summary = segment_samples(clips, SegmentOptions(prompts=["cat"], label_field="late", model=TRACKER_MODEL,
                                                    device="cpu"))  # what the operator runs
    assert (summary.segmented, summary.failed) == (0, 1) and "past the end" in summary.failures[0]["error"]


def test_the_operator_fails_each_video_on_a_nan_threshold_naming_it(videos):
    result, _ = run_operator(videos, prompts=["cat"], model=TRACKER_MODEL, tracker="", threshold=math.nan,
                             label_field="nan")
    assert (result["segmented"], result["failed"]) == (0, 3)
    assert [f["error"] for f in result["failures"][:2]] == ["threshold must be a number between 0 and 1, not nan"] * 2


def form(dataset, **params) -> dict:
    ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": params})
    return SegmentWithText().resolve_input(ctx).type.properties


def test_video_form_accepts_a_model_with_a_tracker_and_refuses_one_without(videos):
    accepted = form(videos, model=TRACKER_MODEL)
    assert "no_tracker" not in accepted and accepted["tracker"].default == ""  # its own tracker
    assert "semantic" not in accepted and "batch_size" not in accepted  # image-only settings are hidden
    assert form(videos, model="s0-16")["tracker"].default == "sam3"  # composed with SAM3's tracker

    refused = form(videos, model="tiny-random", tracker="")["no_tracker"]
    assert refused.invalid and "tiny-random has no tracker" in refused.error_message
    for delegate in (False, True):
        with pytest.raises(Exception, match="Validation error.*tiny-random has no tracker"):  # neither run nor queued
            foo.execute_operator(OPERATOR_URI, dataset=videos, request_delegation=delegate,
                                 params={"prompts": ["cat"], "model": "tiny-random", "tracker": ""})
    assert DelegatedOperationService().get_queued_operations(dataset_name=videos.name) == []


def test_prompts_can_come_from_the_classes_of_a_frame_label_field(videos):
    sample = videos.first()
    dog = fo.Detection(label="dog", bounding_box=[0.0, 0.0, 0.5, 0.5])
    sample.frames[2]["ground_truth"] = fo.Detections(detections=[dog])
    sample.save()
    choices = form(videos, model=TRACKER_MODEL, prompt_source="field")["classes_field"].type.values
    assert "frames.ground_truth" in choices
    assert build_options({"prompt_source": "field", "classes_field": "frames.ground_truth"}, videos,
                         video=True).prompts == ["dog"]


def test_a_grouped_dataset_is_refused_when_the_form_is_resolved():
    dataset = fo.Dataset()
    try:
        dataset.add_group_field("group", default="left")
        group = fo.Group()
        dataset.add_sample(fo.Sample(filepath=str(PHOTOS[0]), group=group.element("left")))
        properties = form(dataset)
        assert properties["unsupported_media_type"].invalid and "'group'" in properties[
            "unsupported_media_type"].error_message
        assert "prompts" not in properties  # nothing else to fill in
    finally:
        dataset.delete()
