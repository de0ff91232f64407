"""`litetext fiftyone ...`: install the FiftyOne plugin (and the model zoo source) for this environment."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from litetext.cli.common import require_extra

PLUGIN_DIRNAME = "litetext-sam3-litetext"
ZOO_SUBDIR = ("litetext", "sam3-litetext")  # where FiftyOne would put the source registered from GitHub
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "zoo", "benchmark.py", "screenshot.py")


def register(subparsers) -> None:
    """Add the `fiftyone` command to the litetext command line."""
    parser = subparsers.add_parser("fiftyone", help="install the FiftyOne plugin and model zoo source")
    commands = parser.add_subparsers(title="fiftyone commands", metavar="COMMAND")
    install = commands.add_parser("install", help="link (or copy) the plugin into FiftyOne's plugins directory")
    install.add_argument("--plugins-dir", help="plugins directory (default: fiftyone's config plugins_dir)")
    install.add_argument("--copy", action="store_true", help="copy the files instead of linking the package")
    install.add_argument("--zoo", action="store_true",
                         help="also add the litetext models to FiftyOne's model zoo (foz.load_zoo_model)")
    install.add_argument("--force", action="store_true", help="replace an existing installation")
    install.set_defaults(run=run_install)
    uninstall = commands.add_parser("uninstall", help="remove the plugin (and the zoo source) again")
    uninstall.add_argument("--plugins-dir", help="plugins directory (default: fiftyone's config plugins_dir)")
    uninstall.set_defaults(run=run_uninstall)
    parser.set_defaults(run=lambda args: parser.print_help() or 2)


def package_dir() -> Path:
    """The installed `litetext_fiftyone` directory (it is the plugin directory)."""
    import litetext_fiftyone

    return Path(litetext_fiftyone.__file__).resolve().parent


def plugins_dir(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    import fiftyone as fo

    if not fo.config.plugins_dir:
        raise SystemExit("litetext: error: fiftyone has no plugins_dir configured; pass --plugins-dir or set "
                         "FIFTYONE_PLUGINS_DIR")
    return Path(fo.config.plugins_dir).expanduser()


def zoo_dir() -> Path:
    import fiftyone as fo

    return Path(fo.config.model_zoo_dir).expanduser().joinpath(*ZOO_SUBDIR)


def run_install(args: argparse.Namespace) -> int:
    require_extra("fiftyone", "fiftyone")
    source = package_dir()
    target = plugins_dir(args.plugins_dir) / PLUGIN_DIRNAME
    if target.exists() or target.is_symlink():
        if not args.force:
            print(f"litetext: {target} already exists; pass --force to replace it", file=sys.stderr)
            return 1
        _remove(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if args.copy:
        shutil.copytree(source, target, ignore=_IGNORE)
    else:
        target.symlink_to(source, target_is_directory=True)
    print(f"litetext: FiftyOne plugin @litetext/sam3-litetext installed at {target}")
    if args.zoo:
        zoo = zoo_dir()
        if zoo.exists():
            _remove(zoo)
        shutil.copytree(source / "zoo", zoo, ignore=shutil.ignore_patterns("__pycache__"))
        print(f"litetext: model zoo source installed at {zoo} "
              "(foz.load_zoo_model('litetext/sam3-litetext-s0-16', classes=[...]))")
    return 0


def run_uninstall(args: argparse.Namespace) -> int:
    require_extra("fiftyone", "fiftyone")
    removed = False
    for path in (plugins_dir(args.plugins_dir) / PLUGIN_DIRNAME, zoo_dir()):
        if path.exists() or path.is_symlink():
            _remove(path)
            print(f"litetext: removed {path}")
            removed = True
    if not removed:
        print("litetext: nothing to remove", file=sys.stderr)
    return 0


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    else:
        shutil.rmtree(path)
