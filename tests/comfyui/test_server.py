"""A real ComfyUI server runs the example API workflow with the node pack linked into custom_nodes, as
`litetext comfyui install` links it (the git-clone route is test_git_install.py).

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
pytestmark = [pytest.mark.slow, needs_comfyui]


@pytest.fixture(scope="module")
def comfyui_home(tmp_path_factory) -> Path:
    home = make_home(tmp_path_factory.mktemp("comfyui"))
    (home / "custom_nodes" / "comfyui-litetext").symlink_to(PACK, target_is_directory=True)  # the documented link
    return home


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


def test_templates_offer_only_the_ui_workflow_with_its_thumbnail(server):
    assert get_json(f"{server}/workflow_templates") == {"comfyui-litetext": ["litetext_segment"]}
    thumbnail = f"{server}/api/workflow_templates/comfyui-litetext/litetext_segment.jpg"  # what the dialog asks
    with urllib.request.urlopen(thumbnail, timeout=10) as response:
        assert response.headers["Content-Type"] == "image/jpeg"


def test_ui_workflow_nodes_and_widgets_match_the_server(server):
    """The UI-format example uses only registered nodes, with one widget value per widget, in the frontend's
    order (required inputs, then optional ones)."""
    info = get_json(f"{server}/object_info")
    workflow = json.loads((REPO / "example_workflows" / "litetext_segment.json").read_text())
    for node in workflow["nodes"]:
        assert node["type"] in info, node["type"]
        if not node["type"].startswith("LiteText"):
            continue
        spec = info[node["type"]]["input"]
        widgets = [name for group in ("required", "optional") for name, value in spec.get(group, {}).items()
                   if value[0] in ("STRING", "FLOAT", "INT", "BOOLEAN", "COMBO") or isinstance(value[0], list)]
        assert len(node["widgets_values"]) == len(widgets), (node["type"], widgets)
        values = dict(zip(widgets, node["widgets_values"]))
        if node["type"] == "LiteTextModelLoader":
            assert values["hub_id"] == "" and values["device"] == "auto"
