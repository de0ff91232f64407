"""What each tab keeps between events (in `gr.State`): the Text tab's runs, the Object tab's clicks, a tracked video."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import gradio as gr
from PIL import Image

import litetext


@dataclass
class Run:
    """One model run kept in the session: the result at the low run threshold and what produced it."""

    model: str
    prompts: list[str]
    boxes: list[list[float]]
    box_labels: list[int]
    mask_threshold: float
    result: litetext.Result
    text_encoder_params_m: float
    device: str
    error: str = ""


@dataclass
class Session:
    """What one browser session holds in `gr.State`: the image, the student and teacher runs, the view."""

    image: Image.Image | None = None
    image_name: str = "image"
    student: Run | None = None
    teacher: Run | None = None
    score_threshold: float = 0.5
    selected: int | None = None

    def shown(self, run: Run | None = None) -> litetext.Result | None:
        """The run's result filtered by the current score threshold (the student's by default)."""
        run = run or self.student
        return None if run is None else run.result.filter(min_score=self.score_threshold)


@dataclass
class Clicks:
    """The prompt on one object: pixel points with labels 1 (include) or 0 (exclude), a pixel xyxy box, and the
    first corner of a box while its second is awaited."""

    points: list[list[float]] = field(default_factory=list)
    point_labels: list[int] = field(default_factory=list)
    box: list[float] | None = None
    corner: list[float] | None = None

    def add(self, x: float, y: float, mode: str) -> Clicks:
        """These clicks and one more: a point (mode "include" or "exclude") or a box corner (mode "box")."""
        if mode == "box":
            if self.corner is None:
                return replace(self, corner=[x, y])
            (x0, y0) = self.corner
            return replace(self, box=[min(x0, x), min(y0, y), max(x0, x), max(y0, y)], corner=None)
        if mode not in ("include", "exclude"):
            raise gr.Error(f"Unknown click mode {mode!r}: choose include, exclude or box.")
        # A point drops a box's pending first corner: the user changed mode half-way through the box.
        return replace(self, points=[*self.points, [x, y]], point_labels=[*self.point_labels, int(mode == "include")],
                       corner=None)


@dataclass
class ObjectStep:
    """One click's outcome: the clicks so far, the model that answered and its mask (after a box's first corner,
    the previous step's mask is kept)."""

    clicks: Clicks
    model: str
    result: litetext.Result | None


@dataclass
class ObjectSession:
    """What the Object tab holds in `gr.State`: the image, the text-found instance being refined (if any), and one
    step per click; undo drops the last step."""

    image: Image.Image
    image_name: str = "image"
    seed: litetext.Instance | None = None
    steps: list[ObjectStep] = field(default_factory=list)

    @property
    def clicks(self) -> Clicks:
        """The clicks so far (none before the first)."""
        return self.steps[-1].clicks if self.steps else Clicks()

    @property
    def last(self) -> ObjectStep | None:
        """The latest step that has a mask."""
        return next((step for step in reversed(self.steps) if step.result is not None), None)


@dataclass
class TrackedVideo:
    """What tracking one uploaded video gave: its summary, its three files, and whether the frame limit cut it."""

    model: str
    summary: litetext.TrackSummary
    overlay_path: str
    jsonl_path: str
    summary_path: str
    frame_count: int | None
    limited: bool

    def files(self) -> list[str]:
        """The overlay MP4, the JSON Lines and the summary, in that order."""
        return [self.overlay_path, self.jsonl_path, self.summary_path]
