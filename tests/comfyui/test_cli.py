"""`litetext comfyui install` links the node pack into a ComfyUI checkout."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import litetext
from litetext_comfyui.cli import PACK_NAME, pack_dir, register


def fake_comfyui(root: Path) -> Path:
    (root / "custom_nodes").mkdir(parents=True)
    (root / "main.py").write_text("# ComfyUI\n")
    return root


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="litetext")
    register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.run(args)


def test_install_links_the_pack_into_custom_nodes(tmp_path, capsys):
    comfyui = fake_comfyui(tmp_path / "ComfyUI")
    assert run("comfyui", "install", "--comfyui-dir", str(comfyui)) == 0
    target = comfyui / "custom_nodes" / PACK_NAME
    assert target.is_symlink() and target.resolve() == pack_dir()
    assert (target / "__init__.py").is_file() and (target / "example_workflows" / "litetext_segment.json").is_file()
    out = capsys.readouterr().out
    assert str(target) in out and "pip install -e " + str(pack_dir().parents[1]) in out  # litetext from here
    assert run("comfyui", "install", "--comfyui-dir", str(comfyui)) == 0  # idempotent


def test_install_copy_mode_copies_files(tmp_path):
    comfyui = fake_comfyui(tmp_path / "ComfyUI")
    run("comfyui", "install", "--comfyui-dir", str(comfyui), "--copy")
    target = comfyui / "custom_nodes" / PACK_NAME
    assert not target.is_symlink() and (target / "nodes.py").is_file()
    assert (target / "example_workflows" / "litetext_segment.jpg").is_file()  # the linked folder's files, copied
    assert (target / "api_workflows" / "litetext_segment_api.json").is_file()
    assert not list(target.rglob("__pycache__"))


def test_install_refuses_a_directory_that_is_not_comfyui(tmp_path):
    with pytest.raises(litetext.InputError, match="not a ComfyUI checkout"):
        run("comfyui", "install", "--comfyui-dir", str(tmp_path))


def test_install_keeps_an_existing_folder_unless_forced(tmp_path):
    comfyui = fake_comfyui(tmp_path / "ComfyUI")
    (comfyui / "custom_nodes" / PACK_NAME).mkdir()
    with pytest.raises(litetext.InputError, match="--force"):
        run("comfyui", "install", "--comfyui-dir", str(comfyui))
    assert run("comfyui", "install", "--comfyui-dir", str(comfyui), "--force") == 0
    assert (comfyui / "custom_nodes" / PACK_NAME).is_symlink()


def test_pack_imports_without_comfyui():
    import litetext_comfyui

    assert callable(litetext_comfyui.comfy_entrypoint)
    assert not hasattr(litetext_comfyui, "NODE_CLASS_MAPPINGS")  # V3 only: ComfyUI prefers V1 mappings if present
