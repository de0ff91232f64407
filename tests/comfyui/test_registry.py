"""The Comfy Registry entry: [tool.comfy] as comfy-cli reads, validates and packs it, in a clone of this repository,
and the publish workflow. Nothing is sent anywhere (`comfy node validate` and `pack` work offline)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from tests.comfyui.checkout import REPO, clone_repository, comfy_node, registry_archive

comfy_cli = pytest.importorskip("comfy_cli")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    return clone_repository(tmp_path_factory.mktemp("registry") / "litetext")


def test_comfy_cli_reads_the_registry_metadata(capsys):
    from comfy_cli.registry.config_parser import extract_node_configuration

    config = extract_node_configuration(str(REPO / "pyproject.toml"))
    assert "Warning" not in capsys.readouterr().out  # comfy-cli warns (and drops the field) on a bad format
    project, comfy_section = config.project, config.tool_comfy
    assert project.name == "litetext" and "comfyui" not in project.name.lower()  # the node id
    assert re.fullmatch(r"\d+\.\d+\.\d+", project.version)
    assert project.supported_comfyui_version.startswith(">=")  # requires-comfyui, kept only when well-formed
    assert project.license.text == "Apache-2.0"
    assert project.urls.repository == "https://github.com/litetext/litetext"
    assert project.urls.documentation and project.urls.issues
    assert comfy_section.publisher_id == "litetext" and comfy_section.display_name
    assert comfy_section.icon.startswith("https://") and (REPO / "docs" / "images" / "comfyui_icon.png").is_file()


def test_comfy_node_validate_passes(checkout):
    run = comfy_node(checkout, "validate")
    output = run.stdout + run.stderr  # comfy-cli prints its verdict on stderr when not on a terminal
    assert run.returncode == 0, output
    assert "All validation checks passed" in output and "warning" not in output.lower(), output


def test_the_registry_archive_is_the_pack(checkout):
    names = set(zipfile.ZipFile(registry_archive(checkout)).namelist())
    assert {"__init__.py", "requirements.txt", "pyproject.toml", "LICENSE", "core/litetext/__init__.py",
            "plugins/comfyui/nodes.py", "example_workflows/litetext_segment.json",
            "example_workflows/litetext_segment.jpg"} <= names
    assert not [name for name in names if name.startswith("example_workflows/") and name.endswith("_api.json")]


def test_license_is_the_full_apache_2_text():
    text = (REPO / "LICENSE").read_text()
    assert text.split()[:5] == ["Apache", "License", "Version", "2.0,", "January"]
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 11000


def test_publish_workflow_uses_the_registry_action_with_a_secret():
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "publish_comfyui.yml").read_text())
    steps = workflow["jobs"]["publish-node"]["steps"]
    publish = next(step for step in steps if step.get("uses", "").startswith("Comfy-Org/publish-node-action@"))
    assert publish["with"]["personal_access_token"] == "${{ secrets.REGISTRY_ACCESS_TOKEN }}"
    assert any(step.get("uses", "").startswith("actions/checkout@") for step in steps)
