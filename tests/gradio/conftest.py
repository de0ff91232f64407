"""Fixtures of the Gradio app tests: an offline tiny-random config, the example photos and a tiny H.264 clip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("gradio")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "images"


@pytest.fixture(scope="session", autouse=True)
def litetext_cache(tmp_path_factory):
    """Build the tiny-random checkpoints in a temporary cache unless one is configured already."""
    if os.environ.get("LITETEXT_CACHE"):
        yield Path(os.environ["LITETEXT_CACHE"])
        return
    path = tmp_path_factory.mktemp("litetext-cache")
    os.environ["LITETEXT_CACHE"] = str(path)
    yield path
    os.environ.pop("LITETEXT_CACHE", None)


@pytest.fixture(scope="session")
def cat_photo() -> str:
    return str(EXAMPLES / "cat.jpg")


@pytest.fixture(scope="session")
def coffee_photo() -> str:
    return str(EXAMPLES / "coffee.jpg")


@pytest.fixture
def config(tmp_path):
    """The offline app config: tiny-random student, tiny-random-sam3 teacher, on CPU."""
    from litetext_gradio.app import AppConfig

    return AppConfig(model="tiny-random", device="cpu", work_dir=str(tmp_path / "work"))


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> str:
    """An 8-frame 160x120 H.264 MP4 (written with `litetext.VideoWriter`): a yellow square moving right."""
    import numpy as np
    from PIL import Image

    import litetext

    path = tmp_path_factory.mktemp("video") / "square.mp4"
    with litetext.VideoWriter(path, fps=8) as writer:
        for i in range(8):
            frame = np.full((120, 160, 3), 40, dtype=np.uint8)
            frame[40:80, 20 + 10 * i: 60 + 10 * i] = (230, 190, 40)
            writer.write(Image.fromarray(frame))
    return str(path)
