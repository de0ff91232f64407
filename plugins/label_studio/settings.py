"""Backend settings, read from the environment variables Label Studio ML backends conventionally use."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from litetext import DEFAULT_MODEL, InputError, SegmentOptions


@dataclass(frozen=True)
class BackendSettings(SegmentOptions):
    """How the backend runs. `from_env()` reads the environment; every field can also be set directly.

    Label Studio conventions: `LABEL_STUDIO_URL`, `LABEL_STUDIO_API_KEY`, `BASIC_AUTH_USER`/`BASIC_AUTH_PASS`,
    `MODEL_DIR`, `WORKERS`, `THREADS`, `LOG_LEVEL`. litetext's own: `LITETEXT_MODEL`, `LITETEXT_TRACKER`,
    `LITETEXT_DEVICE`, `LITETEXT_DTYPE`, `LITETEXT_SCORE_THRESHOLD`, `LITETEXT_MASK_THRESHOLD`,
    `LITETEXT_MAX_INSTANCES`, `LITETEXT_MIN_AREA`, `LITETEXT_BATCH_SIZE`, `LITETEXT_ALLOWED_ROOTS` (also
    `LOCAL_FILES_DOCUMENT_ROOT`), `LITETEXT_MAX_REQUEST_BYTES`, `LITETEXT_MAX_IMAGE_BYTES`,
    `LITETEXT_MAX_VIDEO_BYTES`, `LITETEXT_MAX_VIDEO_FRAMES`, `LITETEXT_FETCH_TIMEOUT`.
    The model and segmentation fields, and `engine()`, come from `litetext.SegmentOptions`; `threshold` is the
    score threshold, and `tracker` composes SAM3's tracker with `model` (`litetext.load(model, tracker=...)`), for
    keypoint clicks and videos.
    """

    label_studio_url: str | None = None
    label_studio_api_key: str | None = field(default=None, repr=False)
    basic_auth_user: str | None = None
    basic_auth_pass: str | None = field(default=None, repr=False)
    model_dir: str | None = None
    allowed_roots: tuple[str, ...] = ()
    max_request_bytes: int = 16 << 20
    max_image_bytes: int = 64 << 20
    max_video_bytes: int = 1 << 30
    max_video_frames: int | None = None
    fetch_timeout: float = 30.0
    workers: int = 1
    threads: int = 8
    log_level: str = "INFO"
    polygon_tolerance: float = 1.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> BackendSettings:
        """Settings from `environ` (default `os.environ`); keyword overrides that are not None win."""
        env = os.environ if environ is None else environ

        def get(*names: str) -> str | None:
            for name in names:
                value = env.get(name)
                if value not in (None, ""):
                    return value
            return None

        roots = [r for r in (get("LITETEXT_ALLOWED_ROOTS") or "").split(os.pathsep) if r]
        if get("LOCAL_FILES_DOCUMENT_ROOT"):
            roots.append(get("LOCAL_FILES_DOCUMENT_ROOT"))
        max_instances = get("LITETEXT_MAX_INSTANCES")
        max_video_frames = get("LITETEXT_MAX_VIDEO_FRAMES")
        values = dict(
            model=get("LITETEXT_MODEL", "MODEL") or DEFAULT_MODEL,
            tracker=get("LITETEXT_TRACKER"),
            device=get("LITETEXT_DEVICE", "DEVICE") or "auto",
            dtype=get("LITETEXT_DTYPE") or "auto",
            threshold=_number(get("LITETEXT_SCORE_THRESHOLD", "SCORE_THRESHOLD"), 0.5, "score threshold"),
            mask_threshold=_number(get("LITETEXT_MASK_THRESHOLD"), 0.5, "mask threshold"),
            max_instances=int(max_instances) if max_instances else None,
            min_area=int(get("LITETEXT_MIN_AREA") or 0),
            batch_size=int(get("LITETEXT_BATCH_SIZE") or 4),
            label_studio_url=get("LABEL_STUDIO_URL", "LABEL_STUDIO_HOST"),
            label_studio_api_key=get("LABEL_STUDIO_API_KEY", "LABEL_STUDIO_ACCESS_TOKEN"),
            basic_auth_user=get("BASIC_AUTH_USER"),
            basic_auth_pass=get("BASIC_AUTH_PASS"),
            model_dir=get("MODEL_DIR"),
            allowed_roots=tuple(roots),
            max_request_bytes=int(get("LITETEXT_MAX_REQUEST_BYTES") or 16 << 20),
            max_image_bytes=int(get("LITETEXT_MAX_IMAGE_BYTES") or 64 << 20),
            max_video_bytes=int(get("LITETEXT_MAX_VIDEO_BYTES") or 1 << 30),
            max_video_frames=int(max_video_frames) if max_video_frames else None,
            fetch_timeout=float(get("LITETEXT_FETCH_TIMEOUT") or 30.0),
            workers=int(get("WORKERS") or 1),
            threads=int(get("THREADS") or 8),
            log_level=(get("LOG_LEVEL") or "INFO").upper(),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise `InputError` naming the first setting that is out of range."""
        for name in ("threshold", "mask_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be between 0 and 1, not {value}")
        for name in ("batch_size", "workers", "threads", "max_request_bytes", "max_image_bytes", "max_video_bytes"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.max_video_frames is not None and self.max_video_frames < 1:
            raise InputError(f"max_video_frames must be at least 1, not {self.max_video_frames}")
        if bool(self.basic_auth_user) != bool(self.basic_auth_pass):
            raise InputError("set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither")

    @property
    def allowed_paths(self) -> list[Path]:
        """Allowed local roots, resolved."""
        return [Path(r).expanduser().resolve() for r in self.allowed_roots]

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables (to hand to uvicorn worker processes)."""
        names = {
            "model": "LITETEXT_MODEL", "tracker": "LITETEXT_TRACKER", "device": "LITETEXT_DEVICE",
            "dtype": "LITETEXT_DTYPE",
            "threshold": "LITETEXT_SCORE_THRESHOLD", "mask_threshold": "LITETEXT_MASK_THRESHOLD",
            "max_instances": "LITETEXT_MAX_INSTANCES", "min_area": "LITETEXT_MIN_AREA",
            "batch_size": "LITETEXT_BATCH_SIZE", "label_studio_url": "LABEL_STUDIO_URL",
            "label_studio_api_key": "LABEL_STUDIO_API_KEY", "basic_auth_user": "BASIC_AUTH_USER",
            "basic_auth_pass": "BASIC_AUTH_PASS", "model_dir": "MODEL_DIR",
            "max_request_bytes": "LITETEXT_MAX_REQUEST_BYTES", "max_image_bytes": "LITETEXT_MAX_IMAGE_BYTES",
            "max_video_bytes": "LITETEXT_MAX_VIDEO_BYTES", "max_video_frames": "LITETEXT_MAX_VIDEO_FRAMES",
            "fetch_timeout": "LITETEXT_FETCH_TIMEOUT", "workers": "WORKERS", "threads": "THREADS",
            "log_level": "LOG_LEVEL",
        }
        env = {names[f.name]: str(getattr(self, f.name)) for f in fields(self)
               if f.name in names and getattr(self, f.name) is not None}
        env["LITETEXT_ALLOWED_ROOTS"] = os.pathsep.join(self.allowed_roots)
        return env

    def replace(self, **changes) -> BackendSettings:
        """A copy with `changes` applied."""
        return replace(self, **changes)


def _number(value: str | None, default: float, what: str) -> float:
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise InputError(f"{what} must be a number, not {value!r}") from None
