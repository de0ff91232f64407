"""ComfyUI-Manager's "Install via Git URL", step by step, against a real ComfyUI: `git clone` this repository into
custom_nodes/litetext, `pip install -r requirements.txt` in the clone with ComfyUI's Python, start ComfyUI. And the
Comfy Registry's install: the same with the archive `comfy node publish` uploads, unpacked there instead.

Needs `LITETEXT_COMFYUI_DIR` and `LITETEXT_COMFYUI_PYTHON` (see comfyui_server.py). The install changes that
Python's environment, as the Manager does: give it a ComfyUI virtual environment of its own, never this test's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.comfyui.checkout import clone_repository, registry_archive
from tests.comfyui.comfyui_server import (
    API_WORKFLOW,
    COMFYUI_PYTHON,
    NODE_IDS,
    comfyui_server,
    get_json,
    make_home,
    needs_comfyui,
    run_workflow,
    saved_image,
    server_log,
)

pytestmark = [pytest.mark.slow, needs_comfyui]
TORCH_VERSIONS = "import importlib.metadata as m; print(m.version('torch'), m.version('torchvision'))"


def _same_environment(python: str) -> bool:
    prefix = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return Path(prefix).resolve() == Path(sys.prefix).resolve()


@pytest.fixture(scope="module", params=["git clone", "registry archive"])
def installed(request, tmp_path_factory) -> dict:
    """The pack in a fresh base directory, installed into ComfyUI's Python; the pip log and torch versions."""
    if _same_environment(COMFYUI_PYTHON):
        pytest.skip("set LITETEXT_COMFYUI_PYTHON to a ComfyUI environment of its own: the install changes it")
    home = make_home(tmp_path_factory.mktemp("comfyui-install"))
    clone = home / "custom_nodes" / "litetext"  # the Manager names the folder after the repository (node id)
    if request.param == "git clone":
        clone_repository(clone)
    else:
        archive = registry_archive(clone_repository(tmp_path_factory.mktemp("publish") / "litetext"))
        zipfile.ZipFile(archive).extractall(clone)
    versions = lambda: subprocess.run([COMFYUI_PYTHON, "-c", TORCH_VERSIONS], capture_output=True,  # noqa: E731
                                      text=True, check=True).stdout.split()
    before = versions()
    pip = subprocess.run([COMFYUI_PYTHON, "-m", "pip", "install", "-r", "requirements.txt"], cwd=clone,
                         capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    return {"home": home, "clone": clone, "pip": pip.stdout, "torch_before": before, "torch_after": versions()}


@pytest.fixture(scope="module")
def server(installed):
    with comfyui_server(installed["home"]) as url:
        yield url


def test_pip_install_keeps_comfyuis_torch(installed):
    assert installed["torch_after"] == installed["torch_before"]
    done = re.search(r"^Successfully installed (.*)$", installed["pip"], re.MULTILINE)
    assert done and "litetext-" in done.group(1), installed["pip"][-2000:]
    assert not re.search(r"\btorch(vision)?-\d", done.group(1)), done.group(1)


def test_comfyui_imports_the_clone_as_a_pack(server, installed):
    log = server_log(installed["home"])
    pack_lines = [line for line in log.splitlines() if line.rstrip().endswith(str(installed["clone"]))]
    assert pack_lines, "the clone is missing from ComfyUI's custom node import times:\n" + log[-3000:]
    assert not any("IMPORT FAILED" in line for line in pack_lines), log[-3000:]
    info = get_json(f"{server}/object_info")
    for node_id in NODE_IDS:
        assert node_id in info, f"{node_id} not registered:\n" + log[-3000:]
        assert info[node_id]["python_module"] == "custom_nodes.litetext"


def test_templates_offer_the_ui_workflows_with_their_thumbnails(server, installed):
    templates = sorted(path.stem for path in (installed["clone"] / "example_workflows").glob("*.json"))
    assert "litetext_segment" in templates
    listed = get_json(f"{server}/workflow_templates")
    assert {pack: sorted(names) for pack, names in listed.items()} == {"litetext": templates}
    for template in templates:
        for name, kind in ((f"{template}.json", "application/json"), (f"{template}.jpg", "image/jpeg")):
            with urllib.request.urlopen(f"{server}/api/workflow_templates/litetext/{name}", timeout=10) as response:
                assert response.headers["Content-Type"] == kind


def test_api_workflow_and_exemplar_boxes_run(server, installed):
    """The example API workflow, plus a second Segment that takes the first one's boxes as exemplars."""
    workflow = json.loads((installed["clone"] / API_WORKFLOW).read_text())
    workflow["2"]["inputs"]["model"] = "tiny-random"  # offline: the random test model instead of the hub one
    workflow["7"] = {"class_type": "LiteTextSegment",
                     "inputs": {"model": ["2", 0], "image": ["1", 0], "prompts": "", "threshold": 0.5,
                                "mask_threshold": 0.5, "max_instances": 0, "min_area": 0, "boxes": ["3", 3]}}
    workflow["8"] = {"class_type": "MaskToImage", "inputs": {"mask": ["7", 0]}}
    workflow["9"] = {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "litetext_boxes"}}
    entry = run_workflow(server, workflow, installed["home"])
    for node_id in ("5", "9"):
        mask = np.asarray(saved_image(installed["home"], entry, node_id))
        assert mask.shape[:2] == (240, 320) and set(np.unique(mask)) <= {0, 255}
    assert saved_image(installed["home"], entry, "6").size == (320, 240)
