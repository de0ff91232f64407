"""`litetext comfyui install --comfyui-dir PATH`: link this node pack into a ComfyUI checkout's custom_nodes."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

#: The directory name the pack gets under custom_nodes/.
PACK_NAME = "comfyui-litetext"


def pack_dir() -> Path:
    """This node pack's directory (the one holding __init__.py and nodes.py)."""
    return Path(__file__).resolve().parent


def register(subparsers) -> None:
    """Add `litetext comfyui install` to the litetext command line."""
    comfyui = subparsers.add_parser("comfyui", help="ComfyUI node pack: install it into a ComfyUI checkout")
    actions = comfyui.add_subparsers(title="actions", metavar="ACTION")
    install = actions.add_parser("install", help="link the LiteText nodes into ComfyUI's custom_nodes folder")
    install.add_argument("--comfyui-dir", required=True, help="the ComfyUI checkout (holding main.py and "
                                                               "custom_nodes/)")
    install.add_argument("--name", default=PACK_NAME, help="folder name under custom_nodes (default: %(default)s)")
    install.add_argument("--copy", action="store_true", help="copy the files instead of a symlink "
                                                             "(for systems without symlinks)")
    install.add_argument("--force", action="store_true", help="replace an existing link or folder of that name")
    install.set_defaults(run=run_install)
    comfyui.set_defaults(run=lambda args: (comfyui.print_help(), 2)[1])


def install(comfyui_dir: str | os.PathLike, *, name: str = PACK_NAME, copy: bool = False, force: bool = False) -> Path:
    """Link (or copy) the node pack to `comfyui_dir/custom_nodes/name`; returns that path.

    Raises `litetext.InputError` when the directory is not a ComfyUI checkout or the target exists.
    """
    from litetext import InputError

    root = Path(comfyui_dir).expanduser().resolve()
    custom_nodes = root / "custom_nodes"
    if not (root / "main.py").is_file() or not custom_nodes.is_dir():
        raise InputError(f"{root} is not a ComfyUI checkout: expected main.py and a custom_nodes/ folder there")
    target = custom_nodes / name
    source = pack_dir()
    if target.is_symlink() and target.resolve() == source:
        return target  # already installed
    if target.exists() or target.is_symlink():
        if not force:
            raise InputError(f"{target} already exists; pass --force to replace it")
        if target.is_symlink() or target.is_file():
            target.unlink()
        else:
            shutil.rmtree(target)
    if copy:
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        target.symlink_to(source, target_is_directory=True)
    return target


def pip_source() -> str:
    """What `pip install` takes to install this litetext into another Python: the checkout the pack runs from
    (editable), or the repository when litetext was installed from it."""
    checkout = pack_dir().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "core" / "litetext").is_dir():
        return f"-e {checkout}"
    return '"litetext @ git+https://github.com/litetext/litetext"'


def run_install(args: argparse.Namespace) -> int:
    target = install(args.comfyui_dir, name=args.name, copy=args.copy, force=args.force)
    how = "copied to" if args.copy else "linked at"
    print(f"LiteText nodes {how} {target}")
    print(f"Install litetext into ComfyUI's Python too (skip if it is this one), then restart ComfyUI:\n"
          f"  <ComfyUI's python> -m pip install {pip_source()}")
    return 0
