"""The browser tests' shared pieces: Debian's chromium driven by Playwright, and a folder served by http.server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def serve_folder():
    """serve_folder(root, probe) -> the base URL of `root` served by `python -m http.server` (once `probe`, a path
    under it, answers); the servers stop at the end of the session."""
    servers = []

    def serve(root: Path, probe: str) -> str:
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d",
                                   str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        servers.append(server)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/{probe}", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        return base

    yield serve
    for server in servers:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def playwright():
    """Playwright's sync API for one test module. One at a time in a process (a second start in the same thread
    fails), so it stops with the module: other suites on the same worker start their own."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as started:
        yield started


@pytest.fixture(scope="module")
def browser(playwright):
    """Debian's chromium, headless (WebAssembly, one thread: http.server sends no cross-origin isolation headers)."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def site_for(serve_folder, tmp_path_factory):
    """site_for(export, photo) -> the URL of index.html of the site `litetext web` builds from `export`, with `photo`
    as photo.jpg beside it, served by http.server; built once per export and photo."""
    import shutil

    from litetext.cli import main

    sites = {}

    def build(export: Path, photo: Path) -> str:
        key = (str(export), str(photo))
        if key not in sites:
            site = tmp_path_factory.mktemp("web-site") / "site"
            assert main(["web", str(export), "--out", str(site)]) == 0
            shutil.copy(photo, site / "photo.jpg")
            sites[key] = f"{serve_folder(site.parent, 'site/site.json')}/site/index.html"
        return sites[key]

    return build
