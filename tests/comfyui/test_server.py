"""A real ComfyUI server runs the example API workflows (text prompts, clicks, video tracking) with the node pack
linked into custom_nodes, as `litetext comfyui install` links it (the git-clone route is test_git_install.py).

Needs a ComfyUI checkout, see comfyui_server.py; skipped otherwise. The server imports litetext from this
checkout's core/ (PYTHONPATH), whatever the ComfyUI Python has installed.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import litetext
from tests.comfyui.comfyui_server import (
    API_WORKFLOW,
    NODE_IDS,
    REPO,
    comfyui_server,
    get_json,
    make_home,
    needs_comfyui,
    run_workflow,
    saved_image,
)

PACK = REPO / "plugins" / "comfyui"
TEMPLATES = sorted(path.stem for path in (REPO / "example_workflows").glob("*.json"))
CLIP_FRAMES = 6
pytestmark = [pytest.mark.slow, needs_comfyui]


@pytest.fixture(scope="module")
def comfyui_home(tmp_path_factory) -> Path:
    home = make_home(tmp_path_factory.mktemp("comfyui"))
    (home / "custom_nodes" / "comfyui-litetext").symlink_to(PACK, target_is_directory=True)  # the documented link
    write_clip(home / "input" / "clip.mp4")  # before the server starts: Load Video lists input/ then
    return home


def write_clip(path: Path) -> None:
    """A short H.264 clip for the track workflow: a window panning across a photo, four pixels a frame."""
    photo = Image.open(REPO / "examples" / "images" / "cat.jpg").convert("RGB").resize((160 + 4 * CLIP_FRAMES, 120))
    with litetext.VideoWriter(path, fps=8) as writer:
        for i in range(CLIP_FRAMES):
            writer.write(photo.crop((4 * i, 0, 4 * i + 160, 120)))


@pytest.fixture(scope="module")
def server(comfyui_home):
    path = os.pathsep.join([str(REPO / "core"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with comfyui_server(comfyui_home, env={"PYTHONPATH": path}) as url:
        yield url


def test_server_lists_the_nodes(server):
    info = get_json(f"{server}/object_info")
    for node_id in NODE_IDS:
        assert node_id in info, f"{node_id} not registered"
    assert info["LiteTextSegment"]["output"][3] == "BOUNDING_BOX"
    assert info["LiteTextSegment"]["input"]["optional"]["boxes"][0] == "BOUNDING_BOX"
    assert "tiny-random" in info["LiteTextModelLoader"]["input"]["required"]["model"][1]["options"] or \
        "tiny-random" in info["LiteTextModelLoader"]["input"]["required"]["model"][0]
    assert info["LiteTextSegmentObject"]["input"]["optional"]["box"][0] == "BOUNDING_BOX"
    assert info["LiteTextTrack"]["output"][0] == info["LiteTextSelectTracks"]["input"]["required"]["tracks"][0] == \
        "LITETEXT_TRACKS"
    kind, *options = info["LiteTextModelLoader"]["input"]["optional"]["tracker"]
    assert {"auto", "none", "sam3"} <= set(kind if isinstance(kind, list) else options[0]["options"])
    aliases = info["LiteTextSegment"].get("search_aliases")
    if aliases is not None:  # releases whose node schema has the field; 0.8.0 has none and loads the nodes anyway
        assert {"sam3", "segment anything"} <= set(aliases)


def test_example_api_workflow_saves_a_mask(server, comfyui_home):
    workflow = json.loads((REPO / API_WORKFLOW).read_text())
    workflow["2"]["inputs"]["model"] = "tiny-random"  # offline: the random test model instead of the hub one
    entry = run_workflow(server, workflow, comfyui_home)
    mask = np.asarray(saved_image(comfyui_home, entry, "5"))
    assert mask.shape[:2] == (240, 320)
    assert set(np.unique(mask)) <= {0, 255}, "a union mask is black and white"
    assert saved_image(comfyui_home, entry, "6").size == (320, 240)


def test_clicks_workflow_saves_the_engines_mask(server, comfyui_home):
    workflow = json.loads((REPO / "plugins" / "comfyui" / "api_workflows" / "litetext_segment_object_api.json")
                          .read_text())
    workflow["2"]["inputs"] |= {"model": "tiny-random-tracker", "tracker": "auto"}  # offline stand-in for sam3
    # The test's example.png is 320x240 (ComfyUI's own is 768x768): clicks inside it, as the Points Editor writes.
    workflow["3"]["inputs"] |= {"positive_coords": '[{"x": 150, "y": 110}]', "negative_coords": '[{"x": 10, "y": 10}]'}
    entry = run_workflow(server, workflow, comfyui_home)
    mask = np.asarray(saved_image(comfyui_home, entry, "5").convert("L")) > 127
    picture = Image.open(comfyui_home / "input" / "example.png").convert("RGB")
    engine = litetext.load("tiny-random-tracker", device="cpu", dtype="fp32")
    expected = engine.segment_object(picture, points=[[150, 110], [10, 10]], point_labels=[1, 0])
    np.testing.assert_array_equal(mask, expected.masks[0])
    assert saved_image(comfyui_home, entry, "6").size == picture.size


def test_track_workflow_saves_the_engines_masks_per_frame_and_a_preview_video(server, comfyui_home):
    workflow = json.loads((REPO / "plugins" / "comfyui" / "api_workflows" / "litetext_track_api.json").read_text())
    workflow["3"]["inputs"] |= {"model": "tiny-random-tracker", "tracker": "auto"}
    workflow["4"]["inputs"]["prompts"] = "cat, dog"
    entry = run_workflow(server, workflow, comfyui_home)
    saved = entry["outputs"]["9"]["images"]
    assert len(saved) == CLIP_FRAMES
    # Frames decoded as Load Video decodes them (PyAV, RGB), tracked by the engine in this process.
    frames = [frame.image for frame in litetext.open_video(comfyui_home / "input" / "clip.mp4").frames()]
    engine = litetext.load("tiny-random-tracker", device="cpu", dtype="fp32")
    tracked = [frame.result for frame in engine.track(frames, ["cat", "dog"], threshold=0.5,
                                                      new_object_threshold=0.7)]
    assert any(len(result) for result in tracked), "the tiny model tracks objects at these thresholds"
    for item, result in zip(saved, tracked):
        image = Image.open(comfyui_home / "output" / item["subfolder"] / item["filename"]).convert("L")
        np.testing.assert_array_equal(np.asarray(image) > 127, result.union_mask())
    (preview,) = entry["outputs"]["6"]["images"]  # Save Video reports its file as a (video) preview image
    source = litetext.open_video(comfyui_home / "output" / preview["subfolder"] / preview["filename"])
    assert sum(1 for _ in source.frames()) == CLIP_FRAMES


def test_templates_offer_the_ui_workflows_with_their_thumbnails(server):
    listed = get_json(f"{server}/workflow_templates")
    assert {pack: sorted(names) for pack, names in listed.items()} == {"comfyui-litetext": TEMPLATES}
    assert {"litetext_segment", "litetext_segment_object", "litetext_track"} <= set(TEMPLATES)
    for name in TEMPLATES:
        thumbnail = f"{server}/api/workflow_templates/comfyui-litetext/{name}.jpg"  # what the dialog asks
        with urllib.request.urlopen(thumbnail, timeout=10) as response:
            assert response.headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("template", TEMPLATES)
def test_ui_workflow_nodes_and_widgets_match_the_server(server, template):
    """Each UI-format example uses only registered nodes, with one widget value per widget, in the frontend's
    order (required inputs, then optional ones), and links whose types match the sockets they join."""
    info = get_json(f"{server}/object_info")
    workflow = json.loads((REPO / "example_workflows" / f"{template}.json").read_text())
    nodes = {node["id"]: node for node in workflow["nodes"]}
    for _, source, slot, target, target_slot, kind in workflow["links"]:
        assert info[nodes[source]["type"]]["output"][slot] == kind, (template, source, slot)
        assert nodes[target]["inputs"][target_slot]["type"] == kind, (template, target, target_slot)
    for node in workflow["nodes"]:
        assert node["type"] in info, node["type"]
        if not node["type"].startswith("LiteText"):
            continue
        spec = info[node["type"]]["input"]
        widgets = [name for group in ("required", "optional") for name, value in spec.get(group, {}).items()
                   if value[0] in ("STRING", "FLOAT", "INT", "BOOLEAN", "COMBO") or isinstance(value[0], list)]
        assert len(node["widgets_values"]) == len(widgets), (node["type"], widgets)
        values = dict(zip(widgets, node["widgets_values"]))
        declared = spec.get("required", {}) | spec.get("optional", {})
        for name, value in values.items():
            kind, *options = declared[name]
            choices = kind if isinstance(kind, list) else (options[0].get("options") if kind == "COMBO" else None)
            assert choices is None or value in choices, (node["type"], name, value)
        if node["type"] == "LiteTextModelLoader":
            assert values["hub_id"] == "" and values["device"] == "auto"
