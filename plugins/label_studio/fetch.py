"""Fetch task images the way Label Studio serves them.

- `/data/upload/...`, `/data/local-files/?d=...`, `/tasks/.../resolve/...` and other paths relative to Label
  Studio: fetched from Label Studio with its API key (`Authorization: Token ...`, or `Bearer` after refreshing
  a personal access token). `/data/local-files/?d=...` is read straight from disk when the path lies under one
  of the allowed roots (`LOCAL_FILES_DOCUMENT_ROOT` / `LITETEXT_ALLOWED_ROOTS`) and refused when it lies
  outside them.
- `http(s)://` URLs: fetched directly; the API key is sent only to Label Studio's own origin.
- `data:` URIs are decoded; plain file paths are read only under the allowed roots.

Downloads are capped at `max_image_bytes`. The API key is never logged.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

from litetext import InvalidImageError

_LS_PREFIXES = ("/data/", "/tasks/", "/storage-data/", "/api/", "/projects/")


class ImageFetchError(InvalidImageError):
    """A task's image could not be fetched (network, HTTP status, size, or a refused path)."""


class ImageFetcher:
    """Turns the image reference in a task into bytes. Thread-safe; one HTTP connection pool per fetcher."""

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
        if not isinstance(reference, str) or not reference.strip():
            raise ImageFetchError(f"the task's image reference is empty or not text: {reference!r}")
        reference = reference.strip()
        if reference.startswith("data:"):
            return self._data_uri(reference)
        parts = urlsplit(reference)
        if parts.scheme in ("http", "https"):
            return self._http(reference, self._auth_headers() if self._same_origin(reference) else {})
        if parts.scheme == "file":
            return self._local(Path(unquote(parts.path)))
        if parts.scheme:
            raise ImageFetchError(
                f"{reference}: unsupported URL scheme {parts.scheme!r}; connect the cloud storage in Label Studio "
                "so it serves the file, or use http(s)"
            )
        if parts.path.startswith("/data/local-files") and self.allowed_roots:
            document = parse_qs(parts.query).get("d", [""])[0]
            if not document:
                raise ImageFetchError(f"{reference}: local-files URL without a ?d= path")
            return self._local(Path(document), relative=True)
        if parts.path.startswith(_LS_PREFIXES):
            if self.label_studio_url is None:
                raise ImageFetchError(
                    f"{reference} is served by Label Studio, but its URL is unknown: set LABEL_STUDIO_URL (and "
                    "LABEL_STUDIO_API_KEY) or connect the backend from Label Studio 1.11 or newer"
                )
            return self._http(urljoin(self.label_studio_url, reference.lstrip("/")), self._auth_headers())
        return self._local(Path(reference))

    # Sources -----------------------------------------------------------------------------------------

    def _data_uri(self, reference: str) -> bytes:
        header, _, payload = reference.partition(",")
        if ";base64" not in header:
            raise ImageFetchError("data: URI images must be base64-encoded")
        if len(payload) * 3 // 4 > self.max_bytes:
            raise ImageFetchError(f"data: URI image is larger than the {self.max_bytes:,}-byte limit")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ImageFetchError("data: URI image is not valid base64") from None

    def _local(self, path: Path, *, relative: bool = False) -> bytes:
        """Read a file that lies under an allowed root (`relative`: `path` is relative to the roots)."""
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
                if size > self.max_bytes:
                    raise ImageFetchError(f"{path}: {size:,} bytes, more than the {self.max_bytes:,}-byte limit")
                return resolved.read_bytes()
        raise ImageFetchError(f"{path}: no such file under the allowed roots")

    def _http(self, url: str, headers: dict[str, str]) -> bytes:
        import httpx

        shown = urlsplit(url)._replace(query="", fragment="").geturl()
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    hint = " (check LABEL_STUDIO_API_KEY)" if response.status_code in (401, 403) and headers else ""
                    raise ImageFetchError(f"{shown}: HTTP {response.status_code}{hint}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise ImageFetchError(f"{shown}: {int(declared):,} bytes, more than the {self.max_bytes:,} limit")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ImageFetchError(f"{shown}: larger than the {self.max_bytes:,}-byte limit")
                    chunks.append(chunk)
                return b"".join(chunks)
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
