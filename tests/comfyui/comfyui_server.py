"""A real ComfyUI server for the tests: a private base directory, the server process, and its HTTP API.

`LITETEXT_COMFYUI_DIR` names a ComfyUI checkout (tests skip without it); `LITETEXT_COMFYUI_PYTHON` the Python
that runs it, with ComfyUI's requirements installed (this test's Python when unset). The checkout is never written
to: every server gets `--base-directory` in a temporary folder.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import REPO, stop_process

COMFYUI_DIR = os.environ.get("LITETEXT_COMFYUI_DIR")
COMFYUI_PYTHON = os.environ.get("LITETEXT_COMFYUI_PYTHON") or sys.executable
NODE_IDS = ("LiteTextModelLoader", "LiteTextSegment", "LiteTextPickInstances", "LiteTextSegmentsInfo",
            "LiteTextSegmentObject", "LiteTextTrack", "LiteTextSelectTracks")
API_WORKFLOW = Path("plugins") / "comfyui" / "api_workflows" / "litetext_segment_api.json"
needs_comfyui = pytest.mark.skipif(not COMFYUI_DIR, reason="set LITETEXT_COMFYUI_DIR to a ComfyUI checkout to run")


def make_home(home: Path) -> Path:
    """A fresh base directory (custom_nodes/, input/ with example.png, output/, ...) for one server."""
    for name in ("custom_nodes", "input", "output", "user", "models", "temp"):
        (home / name).mkdir(parents=True, exist_ok=True)
    Image.open(REPO / "examples" / "images" / "cat.jpg").convert("RGB").resize((320, 240)).save(
        home / "input" / "example.png")
    return home


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def post_json(url: str, payload: dict):
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_log(home: Path) -> str:
    return (home / "server.log").read_text(errors="replace")


@contextmanager
def comfyui_server(home: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `main.py --cpu` on 127.0.0.1 with `home` as its base directory; yields its URL once it serves."""
    port = _free_port()
    environment = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1") | (env or {})
    with open(home / "server.log", "w") as log:
        process = subprocess.Popen(
            [COMFYUI_PYTHON, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
             "--disable-auto-launch", "--base-directory", str(home)],
            cwd=Path(COMFYUI_DIR).resolve(), env=environment, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    get_json(f"{url}/object_info/LoadImage")  # a core node: the server is up, the packs loaded
                    break
                except Exception:
                    if process.poll() is not None or time.monotonic() > deadline:
                        pytest.fail("ComfyUI did not start:\n" + server_log(home)[-4000:])
                    time.sleep(1)
            yield url
        finally:
            stop_process(process)


def run_workflow(url: str, workflow: dict, home: Path) -> dict:
    """Queue an API-format workflow, wait for it and return its history entry (asserting it succeeded)."""
    prompt_id = post_json(f"{url}/prompt", {"prompt": workflow, "client_id": "litetext-test"})["prompt_id"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        history = get_json(f"{url}/history/{prompt_id}")
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            break
        time.sleep(1)
    else:
        pytest.fail("workflow did not finish:\n" + server_log(home)[-4000:])
    entry = history[prompt_id]
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:2000]
    return entry


def saved_image(home: Path, entry: dict, node_id: str) -> Image.Image:
    """The one image a SaveImage node of a finished workflow wrote."""
    (saved,) = entry["outputs"][node_id]["images"]
    return Image.open(home / "output" / saved["subfolder"] / saved["filename"])
