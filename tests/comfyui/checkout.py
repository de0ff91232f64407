"""A clone of the repository these tests run in, as ComfyUI-Manager's "Install via Git URL" makes one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Set to 1 to copy the working tree (tracked files and untracked ones git does not ignore) instead of cloning
#: the committed HEAD: for trying uncommitted changes by hand.
WORKTREE = os.environ.get("LITETEXT_CLONE_WORKTREE") == "1"


def clone_repository(destination: Path) -> Path:
    """`git clone` this repository into `destination` (or copy its working tree, see WORKTREE); returns it."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of litetext")
    if not WORKTREE:
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(destination)], check=True)
        return destination
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source, target = REPO / name, destination / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet in the index
        if any((REPO / parent).is_symlink() for parent in Path(name).parents):
            continue  # an indexed file of a folder that is a link now
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    return destination


def comfy_node(checkout: Path, *arguments: str) -> subprocess.CompletedProcess:
    """`comfy --skip-prompt node ...` (comfy-cli) in `checkout`, with telemetry off and settings in a temp folder."""
    executable = shutil.which("comfy", path=str(Path(sys.executable).parent)) or shutil.which("comfy")
    if executable is None:
        pytest.skip("needs comfy-cli (pip install comfy-cli)")
    home = tempfile.mkdtemp(prefix="comfy-cli-")
    env = dict(os.environ, DO_NOT_TRACK="1", HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"))
    try:
        return subprocess.run([executable, "--skip-prompt", "node", *arguments], cwd=checkout, env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def registry_archive(checkout: Path) -> Path:
    """The archive `comfy node publish` uploads, made by `comfy node pack` (git-tracked files) in `checkout`."""
    run = comfy_node(checkout, "pack")
    assert run.returncode == 0, run.stdout + run.stderr
    return checkout / "node.zip"
