"""Tracking through video: `Engine.track` against transformers' own `Sam3VideoModel` session flow."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import litetext
from litetext.pipelines.video import LocalKernels, install_local_kernels, state_bytes

PROMPTS = ["cat", "dog"]


def moving_cat(photos, count: int = 20, gap: range = range(8, 12)) -> list[Image.Image]:
    """The cat photo sliding right, leaving the frame (a grey screen) during `gap`, then coming back."""
    base = Image.open(next(p for p in photos if p.stem == "cat")).convert("RGB").resize((160, 120))
    blank = Image.new("RGB", base.size, (128, 128, 128))
    return [blank if i in gap else base.transform(base.size, Image.AFFINE, (1, 0, -2 * i, 0, 1, 0))
            for i in range(count)]


@pytest.fixture(scope="module")
def frames(photos):
    return moving_cat(photos)


@pytest.fixture(scope="module")
def video_engine(tracker_checkpoints):
    return litetext.load(str(tracker_checkpoints["composed"]), device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def video_reference(tracker_checkpoints):
    from transformers import Sam3VideoModel, Sam3VideoProcessor

    install_local_kernels()  # the same NMS and hole filling on both sides
    path = tracker_checkpoints["composed"]
    return Sam3VideoModel.from_pretrained(path).eval(), Sam3VideoProcessor.from_pretrained(path)


def reference_stream(reference, frames, prompts):
    model, processor = reference
    session = processor.init_video_session(inference_device="cpu")
    processor.add_text_prompt(session, prompts)
    for index, frame in enumerate(frames):
        inputs = processor(images=frame, return_tensors="pt")
        output = model(inference_session=session, frame=inputs.pixel_values[0], frame_idx=index)
        yield processor.postprocess_outputs(session, output, original_sizes=inputs.original_sizes)


def reference_whole_video(reference, frames, prompts, start=0, count=None):
    model, processor = reference
    session = processor.init_video_session(video=frames, inference_device="cpu")
    processor.add_text_prompt(session, prompts)
    steps = None if count is None else count - 1  # transformers tracks start..start+max_frame_num_to_track
    for output in model.propagate_in_video_iterator(session, start_frame_idx=start, max_frame_num_to_track=steps):
        yield output.frame_idx, processor.postprocess_outputs(session, output)


def assert_same_frame(tracked, expected) -> None:
    result = tracked.result
    assert result.object_ids.tolist() == expected["object_ids"].tolist()
    np.testing.assert_array_equal(result.scores, expected["scores"].numpy())
    np.testing.assert_array_equal(result.boxes, expected["boxes"].numpy())
    assert np.array_equal(result.masks, expected["masks"].numpy())
    for text, ids in expected["prompt_to_obj_ids"].items():
        assert sorted(result.object_ids[np.asarray(result.labels) == text].tolist()) == sorted(ids)


def test_streaming_tracking_equals_the_transformers_session(video_engine, video_reference, frames):
    tracked = list(video_engine.track(frames, PROMPTS, mode="stream"))
    expected = list(reference_stream(video_reference, frames, PROMPTS))
    assert [t.index for t in tracked] == list(range(len(frames)))
    assert sum(len(t.result) for t in tracked) > 0
    for ours, theirs in zip(tracked, expected, strict=True):
        assert_same_frame(ours, theirs)


def test_whole_video_tracking_equals_propagate_in_video_iterator(video_engine, video_reference, frames):
    tracked = list(video_engine.track(frames, PROMPTS))  # a list has a length: the whole-video flow
    expected = list(reference_whole_video(video_reference, frames, PROMPTS))
    assert [t.index for t in tracked] == [index for index, _ in expected] == list(range(len(frames)))
    for ours, (_, theirs) in zip(tracked, expected, strict=True):
        assert_same_frame(ours, theirs)


def test_start_frame_and_max_frames_select_like_transformers(video_engine, video_reference, frames):
    tracked = list(video_engine.track(frames, PROMPTS, start_frame=3, max_frames=6, mode="video"))
    expected = list(reference_whole_video(video_reference, frames, PROMPTS, start=3, count=6))
    assert [t.index for t in tracked] == [index for index, _ in expected] == list(range(3, 9))
    for ours, (_, theirs) in zip(tracked, expected, strict=True):
        assert_same_frame(ours, theirs)


def test_ids_stay_stable_while_the_object_is_in_view(video_engine, frames):
    tracked = list(video_engine.track(frames[:8], ["cat"], mode="stream"))
    ids = [tuple(t.result.object_ids) for t in tracked]
    assert ids[0] and all(frame_ids == ids[0] for frame_ids in ids)


def test_folder_and_iterable_sources_give_the_same_tracks(video_engine, frames, tmp_path):
    for i, frame in enumerate(frames[:6]):
        frame.save(tmp_path / f"frame_{i:03d}.png")
    from_folder = list(video_engine.track(tmp_path, ["cat"], mode="stream"))
    from_list = list(video_engine.track(iter(frames[:6]), ["cat"]))  # an iterator: a live stream
    array = np.stack([np.asarray(f) for f in frames[:6]])
    from_array = list(video_engine.track(array, ["cat"], mode="stream"))
    for a, b, c in zip(from_folder, from_list, from_array, strict=True):
        assert a.result.object_ids.tolist() == b.result.object_ids.tolist() == c.result.object_ids.tolist()
        assert np.array_equal(a.result.masks, b.result.masks) and np.array_equal(a.result.masks, c.result.masks)


def test_video_file_is_decoded_frame_by_frame(video_engine, frames, tmp_path):
    path = tmp_path / "cat.mp4"
    with litetext.VideoWriter(path, fps=10) as writer:
        for frame in frames[:5]:
            writer.write(frame)
    source = litetext.open_video(path)
    assert source.frame_count == 5 and source.fps == 10
    decoded = [f.image for f in source.frames()]
    assert len(decoded) == 5 and decoded[0].size == frames[0].size
    tracked = list(video_engine.track(path, ["cat"]))
    expected = list(video_engine.track(decoded, ["cat"]))
    assert [t.result.object_ids.tolist() for t in tracked] == [t.result.object_ids.tolist() for t in expected]


def test_tracker_state_stays_flat_on_a_long_video(video_engine, frames):
    still = [frames[0]] * 60
    sizes = {}
    for tracked in video_engine.track(iter(still), ["cat"]):
        if tracked.index in (20, 40, 59):
            sizes[tracked.index] = state_bytes(video_engine.video_pipeline().session)
    assert sizes[20] > 0 and sizes[40] == sizes[20] and sizes[59] == sizes[20]


def test_tracked_frame_result_round_trips_with_object_ids(video_engine, frames):
    result = next(iter(video_engine.track(frames[:2], ["cat"], mode="stream"))).result
    assert len(result) > 0 and result[0].object_id == int(result.object_ids[0])
    again = litetext.Result.from_dict(result.to_dict())
    assert again.object_ids.tolist() == result.object_ids.tolist()
    assert result.filter(max_instances=1).object_ids.tolist() == result.object_ids[:1].tolist()


def test_local_nms_keeps_the_best_of_duplicates_and_components_match_skimage():
    import torch
    from skimage.measure import label

    ious = torch.tensor([[1.0, 0.9, 0.0], [0.9, 1.0, 0.05], [0.0, 0.05, 1.0]])
    kept = LocalKernels().generic_nms(ious, torch.tensor([0.5, 0.8, 0.7]), 0.1)
    assert kept.tolist() == [1, 2]
    rng = np.random.default_rng(0)
    masks = torch.from_numpy((rng.random((3, 1, 21, 17)) > 0.6).astype(np.uint8))
    _, counts = LocalKernels().cc_2d(masks)
    for n in range(3):  # SAM3's own CPU fallback: skimage's label (8-connectivity), area per pixel
        labels = label(masks[n, 0].numpy())
        expected = np.zeros_like(labels)
        for k in range(1, labels.max() + 1):
            expected[labels == k] = (labels == k).sum()
        assert np.array_equal(counts[n, 0].numpy(), expected)


def test_local_kernels_never_replace_a_loaded_hub_kernel(monkeypatch):
    from transformers.models.sam3_video import modeling_sam3_video

    hub_kernel = object()
    monkeypatch.setattr(modeling_sam3_video, "cv_utils_kernel", hub_kernel)
    assert install_local_kernels() is False and modeling_sam3_video.cv_utils_kernel is hub_kernel
    monkeypatch.setattr(modeling_sam3_video, "cv_utils_kernel", False)  # the hub kernel failed to load
    assert install_local_kernels() is True


def test_unreadable_video_file_is_refused_by_name(video_engine, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    with pytest.raises(litetext.InvalidVideoError, match="broken.mp4"):
        list(video_engine.track(bad, ["cat"]))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(litetext.InvalidVideoError, match="empty"):
        list(video_engine.track(empty, ["cat"]))


def test_truncated_video_keeps_the_frames_before_the_damage(video_engine, frames, tmp_path):
    path = tmp_path / "cat.ts"  # MPEG-TS streams can be cut anywhere, like a recording that stopped
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for frame in frames[:10]:
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    seen = []
    try:
        for tracked in video_engine.track(path, ["cat"], mode="stream"):
            seen.append(tracked.index)
    except litetext.InvalidVideoError as error:
        assert "cat.ts" in str(error)
    assert 0 < len(seen) < 10 and seen == list(range(len(seen)))


def test_zero_frames_changing_sizes_and_empty_prompts_are_refused(video_engine, frames, tmp_path):
    with pytest.raises(litetext.InvalidVideoError, match="no frames"):
        list(video_engine.track(tmp_path, ["cat"]))
    with pytest.raises(litetext.InvalidVideoError, match="no frames"):
        list(video_engine.track([], ["cat"]))
    mixed = frames[:3] + [frames[3].resize((80, 60))]
    seen = []
    with pytest.raises(litetext.InvalidVideoError, match="frame 3 is 80x60"):
        for tracked in video_engine.track(iter(mixed), ["cat"]):
            seen.append(tracked.index)
    assert seen == [0, 1, 2]
    with pytest.raises(litetext.PromptError):
        video_engine.track(frames, [])
    with pytest.raises(litetext.InvalidVideoError, match="not a video"):
        list(video_engine.track(frames[0], ["cat"]))


def test_engine_without_tracker_cannot_track(engine_for, frames):
    with pytest.raises(litetext.NoTrackerError):
        engine_for("litetext").track(frames, ["cat"])


def test_a_student_detector_with_sam3s_tracker_tracks_a_video(checkpoints, tracker_checkpoints, frames):
    engine = litetext.load(str(checkpoints["student"]), device="cpu", dtype="fp32",
                           tracker=str(tracker_checkpoints["video"]))
    tracked = list(engine.track(frames[:4], ["cat"], mode="stream", max_objects=4))
    assert [t.index for t in tracked] == [0, 1, 2, 3]
    assert all(len(t.result.object_ids) == len(t.result) for t in tracked)
