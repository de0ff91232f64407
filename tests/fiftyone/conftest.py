"""FiftyOne tests run against a real MongoDB in a temporary directory, with no network.

FiftyOne reads its configuration when it is first imported, so the environment is set here, before any
test module imports it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_ROOT = Path(tempfile.mkdtemp(prefix="litetext-fiftyone-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "plugins" / "fiftyone"
IMAGES = REPO / "examples" / "images"
#: Where the project would be published; tests serve this working tree under it (`fake_github`).
REPO_URL = "https://github.com/litetext/litetext"
#: Plugins downloaded for the tests, e.g. ``@voxel51/zoo`` (see `voxel51_zoo_plugin`).
THIRD_PARTY_PLUGINS = Path(os.environ.get("LITETEXT_FIFTYONE_PLUGINS", "~/.cache/litetext/fiftyone-plugins"))

os.environ.update({
    "FIFTYONE_DATABASE_DIR": str(_ROOT / "db"),
    "FIFTYONE_DATABASE_VALIDATION": "false",
    "FIFTYONE_DO_NOT_TRACK": "true",
    "FIFTYONE_PLUGINS_DIR": str(PLUGIN_DIR),
    "FIFTYONE_MODEL_ZOO_DIR": str(_ROOT / "zoo"),
    "FIFTYONE_DEFAULT_DATASET_DIR": str(_ROOT / "datasets"),
    "FIFTYONE_SHOW_PROGRESS_BARS": "false",
    "HF_HUB_OFFLINE": "1",
})
os.environ.setdefault("LITETEXT_CACHE", str(_ROOT / "litetext-cache"))

fo = pytest.importorskip("fiftyone")

PHOTOS = sorted(IMAGES.glob("*.jpg"))
MODEL = "tiny-random"


@pytest.fixture(scope="session")
def photo_paths() -> list[Path]:
    """The example photos (cat, coffee, astronaut, rocket)."""
    return PHOTOS


@pytest.fixture(scope="session")
def engine():
    """The shared tiny random engine (the same one the plugin and model load)."""
    import litetext

    return litetext.load(MODEL, device="cpu")


@pytest.fixture
def photos(engine):
    """A fresh dataset of the example photos."""
    dataset = fo.Dataset()
    dataset.add_samples([fo.Sample(filepath=str(p)) for p in PHOTOS])
    yield dataset
    dataset.delete()


@pytest.fixture
def broken_image(tmp_path) -> Path:
    """A .jpg file that is not an image."""
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"this is not a jpeg")
    return path


@pytest.fixture(scope="session")
def fake_github():
    """This working tree served on 127.0.0.1 the way GitHub serves `REPO_URL`'s zipball."""
    from tests.fiftyone.fake_github import FakeGitHub, short_head, working_tree_zip

    server = FakeGitHub({"litetext/litetext": working_tree_zip(REPO, f"litetext-litetext-{short_head(REPO)}")})
    yield server
    server.close()


@pytest.fixture
def github(fake_github, monkeypatch):
    """`fake_github`, with requests' calls to GitHub routed to it for this test."""
    fake_github.route(monkeypatch)
    return fake_github


@pytest.fixture
def zoo_dir(tmp_path, monkeypatch) -> Path:
    """An empty FiftyOne model zoo directory for this test."""
    monkeypatch.setattr(fo.config, "model_zoo_dir", str(tmp_path / "model-zoo"))
    return tmp_path / "model-zoo"


@pytest.fixture(scope="session")
def voxel51_zoo_plugin() -> Path:
    """The ``@voxel51/zoo`` plugin (voxel51/fiftyone-plugins), downloaded as users get it:
    ``FIFTYONE_PLUGINS_DIR=$LITETEXT_FIFTYONE_PLUGINS fiftyone plugins download
    https://github.com/voxel51/fiftyone-plugins --plugin-names @voxel51/zoo`` (`.ci/run` does this)."""
    root = THIRD_PARTY_PLUGINS.expanduser()
    for metadata in sorted(root.rglob("fiftyone.yml")) if root.is_dir() else []:
        if any(line.strip() in ('name: "@voxel51/zoo"', "name: '@voxel51/zoo'", "name: @voxel51/zoo")
               for line in metadata.read_text().splitlines()):
            return metadata.parent
    pytest.skip(f"the @voxel51/zoo plugin is not downloaded under {root} (set LITETEXT_FIFTYONE_PLUGINS)")
