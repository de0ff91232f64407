"""Fixtures of the Gradio app tests: an offline tiny-random config and the example photos."""

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
