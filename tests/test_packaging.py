"""The distribution as users get it: the wheel carries every adapter's files, an install without an adapter's
extra says in one line which extra to install, and `scripts/bootstrap.sh` on a fresh checkout prints no
setuptools warnings. All build from a copy of the working tree (what a fresh clone would hold, plus edits not yet
committed); pip fetches setuptools from the package registry for the isolated builds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: Each adapter's non-Python files, as (source folder, package, glob): what its ecosystem reads next to the code.
ADAPTER_FILES = [
    ("gradio_app", "litetext_gradio", ["app.py", "README.md", "requirements.txt"]),
    ("plugins/fiftyone", "litetext_fiftyone",
     ["fiftyone.yml", "requirements.txt", "zoo/manifest.json", "zoo/__init__.py"]),
    ("plugins/comfyui", "litetext_comfyui", ["example_workflows/*.json", "api_workflows/*.json"]),
]
#: The adapter commands and the extra each needs, with a command line that gets as far as checking for it.
COMMANDS = [
    ("gradio", ["app", "--model", "tiny-random"], "gradio"),
    ("fiftyone", ["fiftyone", "install"], "fiftyone"),
    ("labelstudio", ["label-studio"], "uvicorn"),
    ("ray", ["segment", "examples/images", "-p", "cat", "--engine", "ray"], "ray"),
]


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600):
    return subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """The repository's files (tracked, and new ones git does not ignore) copied into a clean folder."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout of the repository")
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], ROOT)
    assert listed.returncode == 0, listed.stderr
    target = tmp_path_factory.mktemp("checkout")
    for name in filter(None, listed.stdout.split("\0")):
        source, copy = ROOT / name, target / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # as git checks it out (plugins/comfyui/example_workflows is one)
            copy.symlink_to(os.readlink(source))
        elif source.is_file():  # skips files deleted in the working tree
            shutil.copy2(source, copy)
    return target


@pytest.fixture(scope="module")
def wheel(checkout, tmp_path_factory) -> tuple[Path, str]:
    """The wheel pip builds from the checkout, and pip's output while building it."""
    out = tmp_path_factory.mktemp("wheel")
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(checkout)], checkout)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("litetext-*.whl")
    return path, built.stdout + built.stderr


def setuptools_warnings(output: str) -> list[str]:
    """Lines of pip's output that carry a build-backend warning (pip's own `WARNING:` lines are about pip's
    configuration on this machine, not about the project)."""
    return [line for line in output.splitlines()
            if "warning" in line.lower() and not line.lstrip().startswith("WARNING:")]


def test_the_wheel_carries_every_adapters_files_and_builds_without_warnings(checkout, wheel):
    path, output = wheel
    names = set(zipfile.ZipFile(path).namelist())
    for folder, package, patterns in ADAPTER_FILES:
        for pattern in patterns:
            files = sorted((checkout / folder).glob(pattern))
            assert files, f"{folder}/{pattern} matches no file: was it moved?"
            missing = {f"{package}/{f.relative_to(checkout / folder).as_posix()}" for f in files} - names
            assert not missing, f"the wheel lacks {sorted(missing)}"
    assert {"litetext/__init__.py", "litetext_label_studio/server.py", "litetext_comfyui/nodes.py"} <= names
    assert setuptools_warnings(output) == []


@pytest.mark.parametrize(("extra", "arguments", "module"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_an_adapter_command_without_its_extra_says_which_extra_to_install(wheel, tmp_path, extra, arguments, module):
    # The wheel's files on a bare interpreter (-S: no site-packages): litetext without any dependency installed.
    with zipfile.ZipFile(wheel[0]) as archive:
        archive.extractall(tmp_path / "site")
    code = "import sys; from litetext.cli import main; sys.exit(main(sys.argv[1:]))"
    done = run([sys.executable, "-S", "-c", code, *arguments], ROOT, env={"PYTHONPATH": str(tmp_path / "site")},
               timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1:] == [
        f'litetext: error: {module} is not installed: pip install "litetext[{extra}]"']
    assert "Traceback" not in done.stderr


def test_bootstrap_on_a_fresh_checkout_prints_no_setuptools_warnings(checkout):
    # Everything bootstrap.sh does except downloading torch (TORCH_SPEC="") and the dependencies (PIP_NO_DEPS).
    done = run(["bash", "scripts/bootstrap.sh"], checkout, env={"TORCH_SPEC": "", "PIP_NO_DEPS": "1"})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert setuptools_warnings(output) == [], output
    imported = run([str(checkout / ".venv" / "bin" / "python"), "-c",
                    "import litetext_gradio, litetext_comfyui, litetext_label_studio; print(litetext_gradio.__file__)"],
                   checkout)
    assert imported.stdout.strip() == str(checkout / "gradio_app" / "__init__.py"), imported.stderr  # editable
