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
PLUGIN_DIR = Path(__file__).resolve().parents[2] / "plugins" / "fiftyone"
IMAGES = Path(__file__).resolve().parents[2] / "examples" / "images"

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
