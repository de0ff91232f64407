"""GitHub, as FiftyOne downloads from it, served on 127.0.0.1.

For a GitHub URL, `fiftyone plugins download` and `foz.register_zoo_model_source` fetch
``https://api.github.com/repos/<owner>/<repo>/zipball[/<ref>]`` with `requests`; GitHub answers with a redirect
to ``https://codeload.github.com/<owner>/<repo>/legacy.zip/<ref>``, a zip whose one top folder is
``<owner>-<repo>-<sha7>/``. `FakeGitHub` answers both the same way, and `route` points requests' https
connections to those two hosts at it, so FiftyOne's own download code runs unchanged.
"""

from __future__ import annotations

import http.server
import io
import subprocess
import threading
import urllib.parse
import zipfile
from pathlib import Path

import requests
import requests.adapters

GITHUB_HOSTS = ("api.github.com", "codeload.github.com")


def working_tree_zip(root: Path, top: str) -> bytes:
    """The repository's files under `top/`: tracked and untracked-but-not-ignored files of the working tree,
    i.e. what a `git archive` of a commit of this working tree would hold."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True).stdout.decode().split("\0")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name in sorted(set(filter(None, listed))):
            path = root / name
            if path.is_file():
                archive.write(path, f"{top}/{name}")
    return buffer.getvalue()


def short_head(root: Path) -> str:
    result = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or "0000000"


class FakeGitHub:
    """Serves `repos` ("owner/name" -> zip bytes) as GitHub's zipball API and codeload do."""

    def __init__(self, repos: dict[str, bytes]):
        self.repos = repos
        handler = type("Handler", (_Handler,), {"github": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.requests: list[str] = []
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def route(self, monkeypatch) -> None:
        """Send every `requests` call to api.github.com and codeload.github.com here (for this test)."""
        adapter = _LoopbackAdapter(self.base)
        original = requests.Session.__init__

        def init(session, *args, **kwargs):
            original(session, *args, **kwargs)
            for host in GITHUB_HOSTS:
                session.mount(f"https://{host}/", adapter)

        monkeypatch.setattr(requests.Session, "__init__", init)


class _LoopbackAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, base: str):
        super().__init__()
        self.base = base

    def send(self, request, **kwargs):
        parts = urllib.parse.urlsplit(request.url)
        request.url = f"{self.base}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        kwargs["proxies"] = {}
        return super().send(request, **kwargs)


class _Handler(http.server.BaseHTTPRequestHandler):
    github: FakeGitHub

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.github.requests.append(self.path)
        host, _, path = self.path.lstrip("/").partition("/")
        parts = path.split("/")
        if host == "api.github.com" and parts[:1] == ["repos"] and len(parts) >= 4 and parts[3] == "zipball":
            owner, name, ref = parts[1], parts[2], "/".join(parts[4:]) or "refs/heads/main"
            if f"{owner}/{name}" not in self.github.repos:
                return self._send(404, b'{"message": "Not Found"}', "application/json")
            self.send_response(302)
            self.send_header("Location", f"https://codeload.github.com/{owner}/{name}/legacy.zip/{ref}")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if host == "codeload.github.com" and len(parts) >= 3 and parts[2] == "legacy.zip":
            archive = self.github.repos.get(f"{parts[0]}/{parts[1]}")
            if archive is not None:
                return self._send(200, archive, "application/zip")
        self._send(404, b"Not Found", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass
