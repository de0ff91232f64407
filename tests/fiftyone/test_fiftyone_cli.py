"""`litetext fiftyone install|uninstall`."""

from __future__ import annotations

import argparse

import fiftyone as fo
import fiftyone.zoo as foz
import pytest

from litetext_fiftyone.cli import PLUGIN_DIRNAME, package_dir, register


def litetext_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="litetext")
    register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.run(args)


@pytest.fixture
def zoo_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(fo.config, "model_zoo_dir", str(tmp_path / "model-zoo"))
    return tmp_path / "model-zoo"


def test_install_links_the_plugin_and_fiftyone_finds_it(tmp_path, monkeypatch, zoo_dir):
    plugins = tmp_path / "plugins"
    assert litetext_cli("fiftyone", "install", "--plugins-dir", str(plugins)) == 0
    installed = plugins / PLUGIN_DIRNAME
    assert installed.is_symlink() and installed.resolve() == package_dir()
    monkeypatch.setattr(fo.config, "plugins_dir", str(plugins))
    assert [p.name for p in fo.plugins.list_plugins()] == ["@litetext/sam3-litetext"]
    assert litetext_cli("fiftyone", "install", "--plugins-dir", str(plugins)) == 1  # exists: needs --force


def test_install_copy_and_zoo_then_uninstall(tmp_path, zoo_dir):
    plugins = tmp_path / "plugins"
    assert litetext_cli("fiftyone", "install", "--plugins-dir", str(plugins), "--copy", "--zoo") == 0
    installed = plugins / PLUGIN_DIRNAME
    assert (installed / "fiftyone.yml").is_file() and (installed / "__init__.py").is_file()
    assert not installed.is_symlink() and not (installed / "zoo").exists()
    assert (zoo_dir / "litetext" / "sam3-litetext" / "manifest.json").is_file()
    assert "litetext/sam3-litetext-s0-16" in foz.list_zoo_models()
    assert litetext_cli("fiftyone", "uninstall", "--plugins-dir", str(plugins)) == 0
    assert not installed.exists() and not (zoo_dir / "litetext").joinpath("sam3-litetext").exists()
