"""Fetch task images and videos the way Label Studio serves them.

- `/data/upload/...`, `/data/local-files/?d=...`, `/tasks/.../resolve/...` and other paths relative to Label
  Studio: fetched from Label Studio with its API key (`Authorization: Token ...`, or `Bearer` after refreshing
  a personal access token). `/data/local-files/?d=...` is read straight from disk when the path lies under one
  of the allowed roots (`LOCAL_FILES_DOCUMENT_ROOT` / `LITETEXT_ALLOWED_ROOTS`) and refused when it lies
  outside them.
- `http(s)://` URLs: fetched directly; the API key is sent only to Label Studio's own origin.
- `data:` URIs are decoded; plain file paths are read only under the allowed roots.

Downloads are capped at `max_bytes` (a video's own cap is passed to `fetch_file`). The API key is never logged.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

from litetext import InvalidImageError

_LS_PREFIXES = ("/data/", "/tasks/", "/storage-data/", "/api/", "/projects/")


class ImageFetchError(InvalidImageError):
    """A task's image (or video) could not be fetched (network, HTTP status, size, or a refused path)."""


class ImageFetcher:
    """Turns the image or video reference in a task into bytes, or a file. Thread-safe; one HTTP connection pool
    per fetcher."""

    def __init__(self, label_studio_url: str | None, api_key: str | None, *, allowed_roots=(),
                 max_bytes: int = 64 << 20, timeout: float = 30.0):
        import httpx

        self.label_studio_url = label_studio_url.rstrip("/") + "/" if label_studio_url else None
        self._api_key = api_key
        self.allowed_roots = [Path(r).expanduser().resolve() for r in allowed_roots]
        self.max_bytes = max_bytes
        self._client = httpx.Client(timeout=timeout, follow_redirects=True)
        self._access: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return f"ImageFetcher(label_studio_url={self.label_studio_url!r}, api_key={'set' if self._api_key else None})"

    def close(self) -> None:
        self._client.close()

    def fetch(self, reference: str) -> bytes:
        """The bytes of the image `reference` names; raises `ImageFetchError` saying why not."""
        kind, where, headers = self._locate(reference)
        if kind == "data":
            return self._data_uri(where, self.max_bytes)
        if kind == "local":
            return self._local_file(where, self.max_bytes).read_bytes()
        chunks: list[bytes] = []
        self._http(where, headers, self.max_bytes, chunks.append)
        return b"".join(chunks)

    def fetch_file(self, reference: str, directory: str | os.PathLike, *, max_bytes: int | None = None) -> Path:
        """The file `reference` names, on disk (a video, read by path): a local file under the allowed roots as it
        is, anything else downloaded into `directory` (a scratch folder the caller removes, partial downloads
        included), at most `max_bytes` (default the fetcher's limit)."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        kind, where, headers = self._locate(reference)
        if kind == "local":
            return self._local_file(where, limit)
        suffix = Path(urlsplit(where).path).suffix if kind == "http" else ""
        with tempfile.NamedTemporaryFile("wb", dir=directory, suffix=suffix[:8], delete=False) as file:
            if kind == "data":
                file.write(self._data_uri(where, limit))
            else:
                self._http(where, headers, limit, file.write)
        return Path(file.name)

    def _locate(self, reference: str) -> tuple[str, Any, dict[str, str]]:
        """Where `reference` is: ("data", the URI, {}), ("local", (path, relative), {}) or ("http", url, headers)."""
        if not isinstance(reference, str) or not reference.strip():
            raise ImageFetchError(f"the task's file reference is empty or not text: {reference!r}")
        reference = reference.strip()
        if reference.startswith("data:"):
            return "data", reference, {}
        parts = urlsplit(reference)
        if parts.scheme in ("http", "https"):
            return "http", reference, self._auth_headers() if self._same_origin(reference) else {}
        if parts.scheme == "file":
            return "local", (Path(unquote(parts.path)), False), {}
        if parts.scheme:
            raise ImageFetchError(
                f"{reference}: unsupported URL scheme {parts.scheme!r}; connect the cloud storage in Label Studio "
                "so it serves the file, or use http(s)"
            )
        if parts.path.startswith("/data/local-files") and self.allowed_roots:
            document = parse_qs(parts.query).get("d", [""])[0]
            if not document:
                raise ImageFetchError(f"{reference}: local-files URL without a ?d= path")
            return "local", (Path(document), True), {}
        if parts.path.startswith(_LS_PREFIXES):
            if self.label_studio_url is None:
                raise ImageFetchError(
                    f"{reference} is served by Label Studio, but its URL is unknown: set LABEL_STUDIO_URL (and "
                    "LABEL_STUDIO_API_KEY) or connect the backend from Label Studio 1.11 or newer"
                )
            return "http", urljoin(self.label_studio_url, reference.lstrip("/")), self._auth_headers()
        return "local", (Path(reference), False), {}

    # Sources -----------------------------------------------------------------------------------------

    def _data_uri(self, reference: str, max_bytes: int) -> bytes:
        header, _, payload = reference.partition(",")
        if ";base64" not in header:
            raise ImageFetchError("data: URIs must be base64-encoded")
        if len(payload) * 3 // 4 > max_bytes:
            raise ImageFetchError(f"data: URI is larger than the {max_bytes:,}-byte limit")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ImageFetchError("data: URI is not valid base64") from None

    def _local_file(self, where: tuple[Path, bool], max_bytes: int) -> Path:
        """A file that lies under an allowed root (`relative`: its path is relative to the roots), size-checked."""
        path, relative = where
        if relative:
            tail = path.relative_to(path.anchor) if path.is_absolute() else path
            candidates = [root / tail for root in self.allowed_roots]
        else:
            candidates = [path.expanduser()]
        inside = [c.resolve() for c in candidates
                  if any(c.resolve().is_relative_to(root) for root in self.allowed_roots)]
        if not inside:
            raise ImageFetchError(
                f"{path}: refused, the path is outside the allowed roots (set LOCAL_FILES_DOCUMENT_ROOT or "
                "LITETEXT_ALLOWED_ROOTS to let the backend read local files)"
            )
        for resolved in inside:
            if resolved.is_file():
                size = resolved.stat().st_size
                if size > max_bytes:
                    raise ImageFetchError(f"{path}: {size:,} bytes, more than the {max_bytes:,}-byte limit")
                return resolved
        raise ImageFetchError(f"{path}: no such file under the allowed roots")

    def _http(self, url: str, headers: dict[str, str], max_bytes: int, write: Callable[[bytes], object]) -> None:
        """Download `url` into `write`, chunk by chunk, refusing more than `max_bytes`."""
        import httpx

        shown = urlsplit(url)._replace(query="", fragment="").geturl()
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    hint = " (check LABEL_STUDIO_API_KEY)" if response.status_code in (401, 403) and headers else ""
                    raise ImageFetchError(f"{shown}: HTTP {response.status_code}{hint}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise ImageFetchError(f"{shown}: {int(declared):,} bytes, more than the {max_bytes:,} limit")
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ImageFetchError(f"{shown}: larger than the {max_bytes:,}-byte limit")
                    write(chunk)
        except httpx.HTTPError as error:
            raise ImageFetchError(f"{shown}: cannot download ({type(error).__name__}: {error})") from None

    # Label Studio authentication ---------------------------------------------------------------------

    def _same_origin(self, url: str) -> bool:
        if self.label_studio_url is None:
            return False
        a, b = urlsplit(url), urlsplit(self.label_studio_url)
        return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)

    def _auth_headers(self) -> dict[str, str]:
        key = self._api_key
        if not key:
            return {}
        if not _is_jwt(key):
            return {"Authorization": f"Token {key}"}
        return {"Authorization": f"Bearer {self._access_token(key)}"}

    def _access_token(self, refresh: str) -> str:
        """Exchange a personal access token (a JWT refresh token) for a short-lived access token."""
        with self._lock:
            if self._access is not None and self._access[1] > time.monotonic():
                return self._access[0]
            import httpx

            try:
                response = self._client.post(urljoin(self.label_studio_url, "api/token/refresh"),
                                             json={"refresh": refresh})
                response.raise_for_status()
                access = response.json()["access"]
            except (httpx.HTTPError, ValueError, KeyError) as error:
                raise ImageFetchError(
                    f"cannot refresh the Label Studio personal access token ({type(error).__name__})"
                ) from None
            self._access = (access, time.monotonic() + 240)
            return access


def _is_jwt(key: str) -> bool:
    return key.startswith("eyJ") and key.count(".") == 2
