"""How the app runs (`AppConfig`): the models it offers, how each one loads, and the resource limits."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

import litetext

log = logging.getLogger("litetext.gradio")

#: Offline models used by `--model tiny-random`: a random LiteText student, a random SAM3 teacher, and a random
#: LiteText detector composed with SAM3's tracker (for clicks and video; the stand-in for `s0-16+sam3`).
OFFLINE_MODELS = ("tiny-random", "tiny-random-sam3", "tiny-random-tracker")
#: Online compositions offered next to their detector: `DETECTOR+TRACKER` is `litetext.load(DETECTOR,
#: tracker=TRACKER)`, the LiteText detector with the tracker of a sam3_video checkpoint, for clicks and video.
COMPOSED_MODELS = ("s0-16+sam3",)
#: EfficientSAM3's small-image-encoder models, offered online after the confirmed checkpoints: published only as
#: upstream `.pt` files, which litetext downloads and converts on first use (their file names are unconfirmed, so
#: a failed download is a one-line error naming the file; they need timm, the `efficient` extra).
STUDENT_MODELS = ("ev-m", "rv-m", "tv-m")


@dataclass
class AppConfig:
    """How the app runs: the default model, the models offered, and resource limits.

    `models` defaults to the offline models when `model` is a tiny-random alias, else to every registered
    checkpoint whose hub id is confirmed (`ModelSpec.verified`), the compositions of confirmed ones
    (`COMPOSED_MODELS`) and EfficientSAM3's models (`STUDENT_MODELS`), plus `model` itself. A model name is an
    alias, hub id or folder, or `DETECTOR+TRACKER` (see `load_engine`). `teacher` is the model of the side-by-side
    mode; `preload` sets it to None (no side-by-side mode) when it cannot load. The model runs once per request at
    `run_threshold`, keeping at most `max_instances`; the score slider then only filters that result. A video is
    tracked for at most `max_video_frames` frames of at most `max_video_pixels` pixels each.
    """

    model: str = litetext.DEFAULT_MODEL
    device: str = "auto"
    dtype: str = "auto"
    models: list[str] = field(default_factory=list)
    teacher: str | None = None
    max_pixels: int = 40_000_000
    max_instances: int = 100
    run_threshold: float = 0.05
    concurrency_limit: int = 1
    max_video_frames: int = 300
    max_video_pixels: int = 1920 * 1080
    work_dir: str | None = None

    def __post_init__(self) -> None:
        frames = self.max_video_frames  # refused here, at start-up, not on every upload (`Engine.track` would)
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise litetext.InputError(f"max_video_frames must be a whole number >= 1, not {frames!r}")
        offline = self.model in OFFLINE_MODELS
        if not self.models:
            if offline:
                self.models = list(OFFLINE_MODELS)
            else:
                self.models = [s.alias for s in litetext.list_models() if confirmed(s.alias)]
                for composed in COMPOSED_MODELS:  # right after its detector, so it is the default for clicks
                    detector = composed.split("+")[0]
                    if detector in self.models and all(confirmed(part) for part in composed.split("+")):
                        self.models.insert(self.models.index(detector) + 1, composed)
                self.models += [alias for alias in STUDENT_MODELS if alias in litetext.MODELS]
        if self.model not in self.models:
            self.models.insert(0, self.model)
        if self.teacher is None:
            self.teacher = "tiny-random-sam3" if offline else "sam3"
        if self.work_dir is None:
            self.work_dir = tempfile.mkdtemp(prefix="litetext-gradio-")
            atexit.register(shutil.rmtree, self.work_dir, ignore_errors=True)

    @property
    def tracker_models(self) -> list[str]:
        """The offered models known to answer clicks and track video (they carry SAM3's tracker)."""
        return [m for m in self.models if model_has_tracker(m)]

    @property
    def object_model(self) -> str:
        """The default model of the Object and Video tabs: the first offered one with a tracker."""
        return (self.tracker_models or [self.model])[0]

    @property
    def model_events(self) -> dict[str, Any]:
        """The Gradio event settings of every model call: they share one queue slot of `concurrency_limit`."""
        return {"concurrency_limit": self.concurrency_limit, "concurrency_id": "model"}

    @classmethod
    def from_env(cls) -> AppConfig:
        """Config from `LITETEXT_MODEL`, `LITETEXT_DEVICE` and `LITETEXT_DTYPE` (what a Space sets)."""
        return cls(model=os.environ.get("LITETEXT_MODEL", litetext.DEFAULT_MODEL),
                   device=os.environ.get("LITETEXT_DEVICE", "auto"), dtype=os.environ.get("LITETEXT_DTYPE", "auto"))


def confirmed(alias: str) -> bool:
    """Whether `alias` is a registered checkpoint whose hub id is confirmed (the Space offers only those)."""
    spec = litetext.MODELS.get(alias)
    return spec is not None and spec.verified and spec.repo_id is not None


def model_has_tracker(model: str) -> bool:
    """Whether an offered model name is known to carry SAM3's tracker: a `DETECTOR+TRACKER` composition, or a
    registered checkpoint that holds one (an unregistered hub id or folder is found out on its first use)."""
    spec = litetext.MODELS.get(model)
    return "+" in model or (spec is not None and spec.has_tracker)


def load_engine(model: str, config: AppConfig) -> litetext.Engine:
    """The shared engine of an offered model name on the config's device: an alias, hub id or folder, or
    `DETECTOR+TRACKER`, which is `litetext.load(DETECTOR, tracker=TRACKER)` (e.g. `s0-16+sam3`)."""
    detector, _, tracker = model.partition("+")
    return litetext.load(detector, device=config.device, dtype=config.dtype, tracker=tracker or None)


def check_offered(model: str, config: AppConfig) -> None:
    """Refuse a model the app does not offer (an API caller may name any)."""
    if model not in config.models:
        raise gr.Error(f"Model {model!r} is not offered here; choose one of: {', '.join(config.models)}.")


def on_zerogpu() -> bool:
    """Whether this process is a ZeroGPU Space (the variable the `spaces` package itself reads)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def preload(config: AppConfig, every_model: bool | None = None) -> None:
    """Load the default model now, so the first request is fast; with `every_model` also every other offered
    model and the teacher, and stop offering (remove from `config`) those that cannot load.

    `every_model` defaults to `on_zerogpu()`: ZeroGPU runs `run_model` in a worker process forked from this one,
    so only weights loaded here, before the first call, reach every worker; a model first loaded inside a worker
    is lost with it. A default model that cannot load raises.
    """
    load_engine(config.model, config)
    if every_model is None:
        every_model = on_zerogpu()
    if not every_model:
        return
    unavailable = set()
    for model in dict.fromkeys([*config.models, config.teacher]):
        if model is None or model == config.model:
            continue
        try:
            load_engine(model, config)
        except Exception as error:  # noqa: BLE001 - whatever the cause, a model that cannot load is not offered
            log.warning("not offering %s: it cannot load (%s)", model, error)
            unavailable.add(model)
    config.models = [m for m in config.models if m not in unavailable]
    if config.teacher in unavailable:
        config.teacher = None
