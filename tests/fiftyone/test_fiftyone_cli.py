"""Installing the plugin: FiftyOne's own `fiftyone plugins download <repository URL>`, and
`litetext fiftyone install|uninstall`."""

from __future__ import annotations

import argparse
import sys

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.plugins as fop
import fiftyone.zoo as foz
import pytest
from fiftyone.core.cli import main as fiftyone_cli

from litetext_fiftyone import OPERATOR_URI
from litetext_fiftyone.cli import PLUGIN_DIRNAME, package_dir, register
from tests.fiftyone.conftest import REPO_URL


def litetext_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="litetext")
    register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.run(args)


@pytest.mark.slow
def test_fiftyone_plugins_download_of_the_repository_url_installs_a_working_plugin(github, tmp_path, monkeypatch,
                                                                                   photos):
    plugins = tmp_path / "plugins"
    monkeypatch.setattr(fo.config, "plugins_dir", str(plugins))
    monkeypatch.setattr(sys, "argv", ["fiftyone", "plugins", "download", REPO_URL,
                                      "--plugin-names", "@litetext/sam3-litetext"])
    fiftyone_cli()  # the documented command, run by FiftyOne's own CLI code
    assert any(path.startswith("/api.github.com/repos/litetext/litetext/zipball") for path in github.requests)
    [plugin] = fo.plugins.list_plugins()
    assert plugin.name == "@litetext/sam3-litetext" and plugin.directory.startswith(str(plugins))
    assert fop.load_plugin_requirements(plugin.name) == [
        "litetext[fiftyone] @ git+https://github.com/litetext/litetext"]
    execution = foo.execute_operator(OPERATOR_URI, dataset=photos, request_delegation=True,
                                     params={"prompts": ["cat"], "label_field": "masks", "model": "tiny-random",
                                             "device": "cpu"})
    assert execution.delegated  # the downloaded plugin's operator is the one FiftyOne runs


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
