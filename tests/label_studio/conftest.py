"""Fixtures for the Label Studio backend tests: a tiny engine, a local image server, a test client."""

from __future__ import annotations

import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

from tests.label_studio.label_studio_helpers import EXAMPLES, TOKEN, VIDEO_LABELS, write_clip


@pytest.fixture(scope="session")
def litetext_cache(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("litetext-cache")
    previous = os.environ.get("LITETEXT_CACHE")
    os.environ["LITETEXT_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("LITETEXT_CACHE", None)
    else:
        os.environ["LITETEXT_CACHE"] = previous


@pytest.fixture(scope="session")
def engine(litetext_cache):
    import litetext

    return litetext.load("tiny-random", device="cpu")


@pytest.fixture(scope="session")
def tracker_engine(litetext_cache):
    """A tiny engine with SAM3's tracker: clicks (`segment_object`) and video tracking (`track`)."""
    import litetext

    return litetext.load("tiny-random-tracker", device="cpu")


@pytest.fixture(scope="session")
def image_root(tmp_path_factory) -> Path:
    """A directory of real photos plus broken files (and a small video clip, `clip.mp4`, and a broken one),
    served by `image_server` and read as local files."""
    root = tmp_path_factory.mktemp("images")
    write_clip(root / "clip.mp4")
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not really a video")
    for path in EXAMPLES.glob("*.jpg"):
        shutil.copy(path, root / path.name)
    (root / "upload" / "1").mkdir(parents=True)
    shutil.copy(EXAMPLES / "cat.jpg", root / "upload" / "1" / "cat.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="session")
def clip_frames(tracker_engine, image_root):
    """`engine.track` on the test clip with the video config's prompts, at the backend's score threshold."""
    return list(tracker_engine.track(image_root / "clip.mp4", list(VIDEO_LABELS), threshold=0.5))


class ServerURL(str):
    """The server's base URL; `.seen` lists (Host, path, Authorization) of every request it got."""

    seen: list


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves `image_root`; `/data/upload/...` needs `Authorization: Token TOKEN`, like Label Studio."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.server.seen.append((self.headers.get("Host"), self.path, self.headers.get("Authorization")))
        if self.path.startswith("/data/upload/"):
            if self.headers.get("Authorization") != f"Token {TOKEN}":
                self.send_error(401, "Unauthorized")
                return
            self.path = "/upload/" + self.path[len("/data/upload/"):]
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def image_server(image_root):
    """Base URL of a small HTTP server on 127.0.0.1 serving `image_root` (and fake LS uploads)."""
    handler = lambda *a, **k: _Handler(*a, directory=str(image_root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = ServerURL(f"http://127.0.0.1:{server.server_address[1]}")
    url.seen = server.seen
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_client(engine):
    """Build a Starlette TestClient around the backend with the given settings overrides."""
    from starlette.testclient import TestClient

    from litetext_label_studio import BackendSettings, create_app

    clients = []

    def make(**overrides):
        settings = BackendSettings.from_env({}, model="tiny-random", device="cpu", **overrides)
        client = TestClient(create_app(settings, engine=engine))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def tracker_client(tracker_engine):
    """A TestClient around the backend on `tracker_engine` (tiny-random-tracker)."""
    from starlette.testclient import TestClient

    from litetext_label_studio import BackendSettings, create_app

    settings = BackendSettings.from_env({}, model="tiny-random-tracker", device="cpu")
    with TestClient(create_app(settings, engine=tracker_engine)) as client:
        yield client
