"""The launched app serves only files Gradio itself cached for it (uploads, examples, outputs): arbitrary paths,
other temporary folders, the repository and the app's own work folder are refused through the file route."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gradio.gradio_helpers import start_app, stop

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app_url(litetext_cache, tmp_path_factory):
    """The app with its own TMPDIR, so its work folder and Gradio's cache can be found; yields (url, tmpdir)."""
    tmpdir = tmp_path_factory.mktemp("app-tmp")
    url, process = start_app(tmp_path_factory.mktemp("server"), litetext_cache, env={"TMPDIR": str(tmpdir)})
    try:
        yield url, tmpdir
    finally:
        stop(process)


def fetch(url: str, path: str) -> httpx.Response:
    return httpx.get(f"{url}gradio_api/file={path}", timeout=30)


def test_arbitrary_paths_are_refused_through_the_file_route(app_url, tmp_path):
    url, tmpdir = app_url
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    work_files = sorted(tmpdir.glob("litetext-gradio-*/examples/*.jpg"))
    assert work_files, "the app wrote its example photos into its work folder"
    for path in ["/etc/passwd", "../../../../etc/passwd", str(secret), str(REPO / "pyproject.toml"),
                 str(REPO / "gradio_app" / "app.py"), str(work_files[0])]:
        response = fetch(url, path)
        assert response.status_code in (403, 404), (path, response.status_code)
        assert "not for the web" not in response.text and "root:" not in response.text


def test_an_upload_and_the_cached_examples_are_served(app_url):
    url, tmpdir = app_url
    photo = REPO / "examples" / "images" / "cat.jpg"
    with photo.open("rb") as file:
        uploaded = httpx.post(f"{url}gradio_api/upload", files={"files": ("cat.jpg", file, "image/jpeg")},
                              timeout=30).json()
    response = fetch(url, uploaded[0])
    assert response.status_code == 200 and response.content == photo.read_bytes()
    cached = sorted((tmpdir / "gradio").glob("*/cat.jpg"))
    assert cached and all(fetch(url, str(path)).status_code == 200 for path in cached)
