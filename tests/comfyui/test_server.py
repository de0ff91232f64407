"""A real ComfyUI server runs the example API workflow with the node pack linked into custom_nodes.

Needs a ComfyUI checkout (with its requirements installed in this Python) named by `LITETEXT_COMFYUI_DIR`;
skipped otherwise. The checkout is copied (symlinks to its code) into a temporary directory so the test
never writes into it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import stop_process

COMFYUI_DIR = os.environ.get("LITETEXT_COMFYUI_DIR")
PACK = Path(__file__).resolve().parents[2] / "plugins" / "comfyui"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not COMFYUI_DIR, reason="set LITETEXT_COMFYUI_DIR to a ComfyUI checkout to run"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post(url: str, payload: dict):
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type":
                                                                                      "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def comfyui_home(tmp_path_factory) -> Path:
    """A private --base-directory: fresh custom_nodes/, input/, output/, user/, models/ (the checkout is untouched)."""
    home = tmp_path_factory.mktemp("comfyui")
    for name in ("custom_nodes", "input", "output", "user", "models", "temp"):
        (home / name).mkdir()
    Image.open(PACK.parents[1] / "examples" / "images" / "cat.jpg").convert("RGB").resize((320, 240)).save(
        home / "input" / "example.png")
    (home / "custom_nodes" / "comfyui-litetext").symlink_to(PACK, target_is_directory=True)  # the documented link
    return home


@pytest.fixture(scope="module")
def server(comfyui_home):
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    log = open(comfyui_home / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
         "--base-directory", str(comfyui_home)],
        cwd=Path(COMFYUI_DIR).resolve(), env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                _get(f"{url}/object_info/LiteTextSegment")
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("ComfyUI did not start:\n" + (comfyui_home / "server.log").read_text()[-4000:])
                time.sleep(1)
        yield url
    finally:
        stop_process(process)
        log.close()


def test_server_lists_the_nodes(server):
    info = _get(f"{server}/object_info")
    for node_id in ("LiteTextModelLoader", "LiteTextSegment", "LiteTextPickInstances", "LiteTextSegmentsInfo"):
        assert node_id in info, f"{node_id} not registered"
    assert info["LiteTextSegment"]["output"][3] == "BOUNDING_BOX"
    assert "tiny-random" in info["LiteTextModelLoader"]["input"]["required"]["model"][1]["options"] or \
        "tiny-random" in info["LiteTextModelLoader"]["input"]["required"]["model"][0]


def test_example_api_workflow_saves_a_mask(server, comfyui_home):
    workflow = json.loads((PACK / "example_workflows" / "litetext_segment_api.json").read_text())
    workflow["2"]["inputs"]["model"] = "tiny-random"  # offline: the random test model instead of the hub one
    queued = _post(f"{server}/prompt", {"prompt": workflow, "client_id": "litetext-test"})
    prompt_id = queued["prompt_id"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        history = _get(f"{server}/history/{prompt_id}")
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            break
        time.sleep(1)
    else:
        pytest.fail("workflow did not finish:\n" + (comfyui_home / "server.log").read_text()[-4000:])
    entry = history[prompt_id]
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:2000]
    saved = entry["outputs"]["5"]["images"]
    assert len(saved) == 1
    mask = np.asarray(Image.open(comfyui_home / "output" / saved[0]["subfolder"] / saved[0]["filename"]))
    assert mask.shape[:2] == (240, 320)
    assert set(np.unique(mask)) <= {0, 255}, "a union mask is black and white"
    overlay = entry["outputs"]["6"]["images"]
    assert Image.open(comfyui_home / "output" / overlay[0]["subfolder"] / overlay[0]["filename"]).size == (320, 240)


def test_ui_workflow_nodes_and_widgets_match_the_server(server):
    """The UI-format example uses only registered nodes, with one widget value per widget, in the frontend's
    order (required inputs, then optional ones)."""
    info = _get(f"{server}/object_info")
    workflow = json.loads((PACK / "example_workflows" / "litetext_segment.json").read_text())
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
