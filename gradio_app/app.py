"""The litetext Gradio app: text-prompted segmentation with SAM3-LiteText, ready to run as a Hugging Face Space.

Upload an image (or pick an example photo), type noun phrases separated by commas and press Segment. Every
instance appears as a coloured overlay and in a table; the score and mask thresholds re-filter without running
the whole model again; a second prompt on the same image reuses its cached vision features. A side-by-side mode
runs the SAM3 teacher on the same prompts. The Object tab segments one object from include/exclude clicks or a
box, each click refining the last mask (SAM3's tracker on the cached encoding); the Video tab tracks every
instance of the prompts through a clip into an overlay MP4 and RLE JSON Lines. `/segment`, `/segment_object`
and `/track` are documented API endpoints for `gradio_client`.

This file imports only `litetext`, `gradio` and the standard library, so it runs both as `python app.py` from
its own folder (a Space) and as the installed module `litetext_gradio.app` (`litetext app`).
"""

from __future__ import annotations

import atexit
import functools
import io
import json
import logging
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

import litetext
from litetext import TrackSummary, track_to_files
from litetext.coco import CocoBuilder

log = logging.getLogger("litetext.gradio")

#: Seconds of GPU time a ZeroGPU Space reserves for one model call (`spaces.GPU(duration=...)`; its default is
#: 60). One image and its prompts, or one click, take well under a second on its GPUs; the margin covers a freshly
#: forked worker moving the preloaded weights to the GPU. A shorter reservation gets a GPU sooner.
GPU_DURATION_S = 30
#: The reservation of one tracked video: up to `AppConfig.max_video_frames` frames, each a ViT pass plus the
#: tracker (tens of milliseconds per frame on a ZeroGPU GPU), and the overlay MP4 encoded alongside.
GPU_TRACK_DURATION_S = 120

try:  # ZeroGPU Spaces: GPU work must run inside functions wrapped with spaces.GPU; elsewhere a no-op.
    # (`spaces` must come before CUDA is initialised: it is, as litetext imports torch only on first use.)
    import spaces  # type: ignore[import-not-found]

    def gpu(duration: int):
        """`spaces.GPU` reserving `duration` seconds for each call of the function it wraps."""
        return spaces.GPU(duration=duration)
except ImportError:  # pragma: no cover - depends on the environment
    def gpu(duration: int):
        """No-op stand-in for `spaces.GPU` outside Hugging Face Spaces."""
        return lambda fn: fn


def on_zerogpu() -> bool:
    """Whether this process is a ZeroGPU Space (the variable the `spaces` package itself reads)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


#: Offline models used by `--model tiny-random`: a random LiteText student, a random SAM3 teacher, and a random
#: LiteText detector composed with SAM3's tracker (for clicks and video; the stand-in for `s0-16+sam3`).
OFFLINE_MODELS = ("tiny-random", "tiny-random-sam3", "tiny-random-tracker")
#: Online compositions offered next to their detector: `DETECTOR+TRACKER` is `litetext.load(DETECTOR,
#: tracker=TRACKER)`, the LiteText detector with the tracker of a sam3_video checkpoint, for clicks and video.
COMPOSED_MODELS = ("s0-16+sam3",)
#: Example photos shipped with scikit-image (`skimage.data`), with prompts that suit them.
EXAMPLES = (
    ("chelsea", "cat.jpg", "cat"),
    ("coffee", "coffee.jpg", "coffee cup, spoon"),
    ("astronaut", "astronaut.jpg", "person, flag"),
    ("rocket", "rocket.jpg", "rocket, smoke"),
)
TABLE_HEADERS = ["#", "prompt", "score", "area (px)", "box (x1, y1, x2, y2)"]
SELECTED_COLOR = "#ffffff"
MASK_OPACITY = 0.6


@dataclass
class AppConfig:
    """How the app runs: the default model, the models offered, and resource limits.

    `models` defaults to the offline models when `model` is a tiny-random alias, else to every registered
    checkpoint whose hub id is confirmed (`ModelSpec.verified`) and the compositions of confirmed ones
    (`COMPOSED_MODELS`), plus `model` itself. A model name is an alias, hub id or folder, or `DETECTOR+TRACKER`
    (see `load_engine`). `teacher` is the model of the side-by-side mode; `preload` sets it to None (no
    side-by-side mode) when it cannot load. The model runs once per request at `run_threshold`, keeping at most
    `max_instances`; the score slider then only filters that result. A video is tracked for at most
    `max_video_frames` frames of at most `max_video_pixels` pixels each.
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


# Input parsing ------------------------------------------------------------------------------------------------


def friendly(fn):
    """Turn litetext errors into `gr.Error` messages and hide unexpected tracebacks from the user."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except litetext.LitetextError as error:
            raise gr.Error(str(error)) from None
        except Exception as error:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Something went wrong ({type(error).__name__}: {error}). Please try again.") from None

    return wrapper


def parse_prompts(text: str | None) -> list[str]:
    """Comma- or newline-separated noun phrases, each a concept; blanks dropped, duplicates removed."""
    if not (text or "").replace(",", "").strip():
        raise gr.Error("Type at least one noun phrase to segment, e.g. 'cat' or 'red car, person'.")
    return litetext.split_prompts(text)


def parse_labelled(text: str | None, size: int, what: str, example: str,
                   signs: str = "+ (positive) or - (negative)") -> tuple[list[list[float]], list[int]]:
    """Lines (or ';'-separated items) of `size` pixel numbers, each optionally preceded by `+` (label 1, the
    default) or `-` (label 0); a friendly error naming the bad item otherwise."""
    items, labels = [], []
    for line in re.split(r"[;\n]", text or ""):
        line = line.strip()
        if not line:
            continue
        label = 1
        if line[0] in "+-":
            label, line = (1 if line[0] == "+" else 0), line[1:]
        numbers = [p for p in re.split(r"[,\s]+", line.strip().strip("()[]")) if p]
        try:
            item = [float(v) for v in numbers]
        except ValueError:
            item = []
        if len(item) != size:
            count = {2: "two", 4: "four"}.get(size, str(size))
            raise gr.Error(f"{what} {line.strip()!r} must be {count} numbers '{example}', optionally preceded by "
                           f"{signs}.")
        items.append(item)
        labels.append(label)
    return items, labels


def parse_boxes(text: str | None) -> tuple[list[list[float]], list[int]]:
    """Exemplar boxes, one per line or separated by ';': `[+|-] x1, y1, x2, y2` in pixels.

    A leading `-` makes a negative exemplar (label 0); `+` or nothing a positive one (label 1).
    """
    return parse_labelled(text, 4, "Exemplar box", "x1, y1, x2, y2")


def parse_points(text: str | None) -> tuple[list[list[float]], list[int]]:
    """Clicks on one object, separated by ';' or newlines: `[+|-] x, y` in pixels, `-` for an exclude point."""
    return parse_labelled(text, 2, "Point", "x, y", "+ (include) or - (exclude)")


def parse_box(text: str | None) -> list[float] | None:
    """At most one box `x1, y1, x2, y2` in pixels around one object (None when `text` is blank)."""
    boxes, labels = parse_labelled(text, 4, "Box", "x1, y1, x2, y2")
    if len(boxes) > 1 or 0 in labels:
        raise gr.Error("Give one box 'x1, y1, x2, y2' around the object (no sign, no second box).")
    return boxes[0] if boxes else None


def format_box(box: Any, label: int) -> str:
    """One line of the exemplar-box text field."""
    return f"{'+' if label else '-'} " + ", ".join(f"{float(v):.0f}" for v in box)


def read_image(path: str | None, config: AppConfig) -> Image.Image:
    """The uploaded file as an RGB image, or a friendly error naming the problem."""
    if not path:
        raise gr.Error("Upload an image (or pick an example) first.")
    try:
        return litetext.load_image(path, max_pixels=config.max_pixels)
    except litetext.ImageTooLargeError:
        raise gr.Error(f"The image is too large for this app (more than {config.max_pixels:,} pixels). "
                       "Please downscale it and try again.") from None
    except litetext.InvalidImageError as error:
        raise gr.Error(f"Cannot read the image: {error}".replace(str(path), Path(path).name)) from None


def friendly_image(**kwargs: Any) -> gr.Image:
    """A `gr.Image` whose unreadable uploads raise a `gr.Error` instead of a server traceback.

    (The preprocess step is wrapped on the instance: a `gr.Image` subclass would make Gradio write a
    `.pyi` stub next to this file at import time, which fails on a read-only Space.)
    """
    component = gr.Image(**kwargs)
    preprocess = component.preprocess

    @functools.wraps(preprocess)
    def checked_preprocess(payload):
        try:
            return preprocess(payload)
        except gr.Error:
            raise
        except Exception as error:
            raise gr.Error(f"Cannot read the uploaded file as an image ({upload_problem(payload, error)}).") from None

    component.preprocess = checked_preprocess
    return component


def upload_problem(payload: Any, error: Exception) -> str:
    """What is wrong with an upload Gradio could not open, in litetext's words ('the file is empty', 'truncated',
    'too large'...), naming the uploaded file rather than its server path; the error's type if litetext reads it."""
    path = getattr(payload, "path", None)
    if path:
        name = getattr(payload, "orig_name", None) or Path(path).name
        try:
            litetext.load_image(path)
        except litetext.LitetextError as problem:
            return str(problem).replace(str(path), name)
        except Exception:  # noqa: BLE001 - only used to describe the upload
            pass
    return type(error).__name__


# The model (the only GPU work) --------------------------------------------------------------------------------


@gpu(GPU_DURATION_S)
def run_model(model: str, image: Image.Image, prompts: list[str], boxes: list[list[float]], box_labels: list[int],
              mask_threshold: float, config: AppConfig) -> tuple[litetext.Result, float, str]:
    """Segment at the config's low run threshold; returns the result, text-encoder size (M) and device."""
    engine = load_engine(model, config)
    result = engine.segment(image, prompts, boxes=boxes or None, box_labels=box_labels or None,
                            threshold=config.run_threshold, mask_threshold=mask_threshold,
                            max_instances=config.max_instances, keep_mask_logits=True)
    return result, engine.info.text_encoder_params_m, engine.info.device


def make_run(model: str, image: Image.Image, prompts: list[str], boxes, box_labels, mask_threshold: float,
             config: AppConfig) -> Run:
    """Run one model and keep its full (low-threshold) result."""
    check_offered(model, config)
    result, params, device = run_model(model, image, prompts, boxes, box_labels, mask_threshold, config)
    return Run(model, prompts, boxes, box_labels, mask_threshold, result, params, device)


def segment(session: Session | None, image_path: str | None, prompts_text: str, boxes_text: str, model: str,
            compare: bool, score_threshold: float, mask_threshold: float, config: AppConfig) -> Session:
    """Run the chosen model (and, in side-by-side mode, the teacher) and return the new session state."""
    prompts = parse_prompts(prompts_text)
    boxes, labels = parse_boxes(boxes_text)
    image = read_image(image_path, config)
    session = Session(image=image, image_name=Path(image_path).name, score_threshold=score_threshold)
    session.student = make_run(model or config.model, image, prompts, boxes, labels, mask_threshold, config)
    if compare:
        session.teacher = teacher_run(session, config)
    return session


def teacher_run(session: Session, config: AppConfig) -> Run | None:
    """The teacher on the student's inputs; a teacher that cannot load is reported, not raised."""
    student = session.student
    if student is None or config.teacher is None:
        return None
    try:
        return make_run(config.teacher, session.image, student.prompts, student.boxes, student.box_labels,
                        student.mask_threshold, config)
    except (litetext.ModelError, gr.Error) as error:
        empty = litetext.Result.empty(student.prompts, student.result.image_size)
        return Run(config.teacher, student.prompts, student.boxes, student.box_labels, student.mask_threshold,
                   empty, 0.0, "-", error=str(error))


def rethreshold_masks(session: Session | None, mask_threshold: float, config: AppConfig) -> Session | None:
    """Re-binarise the kept instances' masks at a new threshold, from their kept logits: no model runs."""
    if session is None or session.student is None:
        return session
    runs = {}
    for name in ("student", "teacher"):
        run: Run | None = getattr(session, name)
        if run is not None and not run.error and run.mask_threshold != mask_threshold:
            runs[name] = replace(run, result=run.result.with_mask_threshold(mask_threshold),
                                 mask_threshold=mask_threshold)
    return replace(session, **runs)


# Clicks on one object ----------------------------------------------------------------------------------------

#: What a click on the Object tab's image adds: an include point, an exclude point, or a corner of a box.
CLICK_MODES = [("Include point (+)", "include"), ("Exclude point (−)", "exclude"), ("Box: click two corners", "box")]
INCLUDE_COLOR, EXCLUDE_COLOR, BOX_COLOR = (34, 197, 94), (239, 68, 68), (255, 255, 255)


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
        return self.steps[-1].clicks if self.steps else Clicks()

    @property
    def last(self) -> ObjectStep | None:
        """The latest step that has a mask."""
        return next((step for step in reversed(self.steps) if step.result is not None), None)


@gpu(GPU_DURATION_S)
def run_object_model(model: str, image: Image.Image, clicks: Clicks, mask_input: np.ndarray | None,
                     seed: litetext.Instance | None, multimask: bool, config: AppConfig) -> litetext.Result:
    """One object's mask from clicks, a box, earlier mask logits and/or a seed instance (`segment_object`)."""
    return load_engine(model, config).segment_object(
        image, points=clicks.points or None, point_labels=clicks.point_labels or None, box=clicks.box,
        mask_input=mask_input, instance=seed, multimask=multimask, label=seed.prompt if seed else "object")


def answer_clicks(session: ObjectSession, clicks: Clicks, model: str, config: AppConfig) -> ObjectSession:
    """The session with one more step: `clicks` answered by `model`, refining its latest mask (whose low-resolution
    logits are the mask input) or the session's text-found instance. Half a box runs no model."""
    check_offered(model, config)
    if clicks.corner is not None:  # the model waits for the box's second corner
        return replace(session, steps=[*session.steps, ObjectStep(clicks, model, None)])
    last = session.last
    mask_input = None
    if last is not None and last.model == model and last.result.mask_logits is not None:
        mask_input = last.result.mask_logits[0]
    result = run_object_model(model, session.image, clicks, mask_input, session.seed, False, config)
    return replace(session, steps=[*session.steps, ObjectStep(clicks, model, result)])


def click_object(session: ObjectSession | None, x: float, y: float, mode: str, model: str,
                 config: AppConfig) -> ObjectSession:
    """Add one click at pixel (x, y) in `mode` ("include", "exclude", "box") and answer it."""
    if session is None:
        raise gr.Error("Upload an image (or send an instance from the Text tab) first.")
    return answer_clicks(session, session.clicks.add(float(x), float(y), mode), model, config)


def undo_click(session: ObjectSession | None) -> ObjectSession | None:
    """The session without its last click."""
    return session if session is None else replace(session, steps=session.steps[:-1])


def refine_instance(text_session: Session | None, model: str, config: AppConfig) -> ObjectSession:
    """An Object-tab session refining the instance selected in the Text tab: its box and mask logits seed the
    first answer (`segment_object(instance=...)`); clicks then refine it."""
    shown = text_session.shown() if text_session is not None else None
    if shown is None or text_session.selected is None or text_session.selected >= len(shown):
        raise gr.Error("Select an instance in the table first.")
    session = ObjectSession(text_session.image, text_session.image_name, seed=shown[text_session.selected])
    return answer_clicks(session, Clicks(), model, config)


def no_tracker_hint(model: str, config: AppConfig, error: Exception | None = None) -> str:
    """One line saying `model` cannot answer clicks or track (NoTrackerError's message) and which models can."""
    message = str(error or litetext.NoTrackerError())
    others = [m for m in config.tracker_models if m != model]
    return f"**{model}**: {message}" + (f". Here, choose **{', '.join(others)}**." if others else "")


# What the page shows ------------------------------------------------------------------------------------------


def hex_color(index: int) -> str:
    """The prompt's overlay colour as '#rrggbb' (the same colours as `Result.overlay`)."""
    return "#{:02x}{:02x}{:02x}".format(*litetext.prompt_color(index))


def annotated(image: Image.Image, result: litetext.Result, selected: int | None = None):
    """A `gr.AnnotatedImage` value: one layer per prompt (its instances' masks, in its colour), every instance's
    box outlined on the image, and the selected instance highlighted in white."""
    from PIL import ImageDraw

    base = result.overlay(image, alpha=0.0, draw_boxes=True)
    color_map, annotations = {}, []
    for k, prompt in enumerate(result.prompts):
        count = int((result.prompt_indices == k).sum())
        label = f"{prompt} ({count})"
        color_map[label] = hex_color(k)
        if count:
            annotations.append((result.union_mask(prompt) * MASK_OPACITY, label))
    if selected is not None and 0 <= selected < len(result):
        instance = result[selected]
        label = f"selected: #{selected} {instance.prompt} ({instance.score:.2f})"
        color_map[label] = SELECTED_COLOR
        annotations.append((instance.mask * 0.8, label))
        ImageDraw.Draw(base).rectangle(list(instance.box), outline=SELECTED_COLOR,
                                       width=max(2, round(min(image.size) / 150)))
    return gr.AnnotatedImage(value=(base, annotations), color_map=color_map)


def instance_rows(result: litetext.Result | None) -> list[list[Any]]:
    """One table row per instance: index, prompt, score, area, box."""
    if result is None:
        return []
    return [[i, inst.prompt, round(inst.score, 3), inst.area, ", ".join(f"{v:.0f}" for v in inst.box)]
            for i, inst in enumerate(result)]


def timing_text(run: Run, shown: litetext.Result) -> str:
    """A Markdown line: model, text-encoder size, where the time went, cache hit, instance count."""
    if run.error:
        return f"**{run.model}** is not available: {run.error}"
    t = run.result.timings
    image_part = ("image features **from cache** " if t.image_cache_hit else "image encoded ") + \
        f"{t.encode_image_ms:.0f} ms"
    return (f"**{run.model}** on {run.device} · text encoder {run.text_encoder_params_m:g} M params · "
            f"{image_part} · text {t.encode_text_ms:.0f} ms · decode {t.decode_ms:.0f} ms · "
            f"post-process {t.postprocess_ms:.0f} ms · total {t.total_ms:.0f} ms · "
            f"**{len(shown)}** instances shown of {len(run.result)} found")


def comparison_table(session: Session) -> str:
    """Markdown table comparing the student and teacher runs."""
    rows = ["| model | text encoder (M params) | image encode (ms) | text encode (ms) | decode (ms) | instances |",
            "|---|---:|---:|---:|---:|---:|"]
    for run in (session.student, session.teacher):
        if run is None:
            continue
        if run.error:
            rows.append(f"| {run.model} | - | - | - | - | not available |")
            continue
        t = run.result.timings
        shown = session.shown(run)
        rows.append(f"| {run.model} | {run.text_encoder_params_m:g} | {t.encode_image_ms:.0f}"
                    f"{' (cached)' if t.image_cache_hit else ''} | {t.encode_text_ms:.0f} | {t.decode_ms:.0f} "
                    f"| {len(shown)} |")
    return "\n".join(rows)


def render(session: Session | None) -> tuple:
    """Every view output for a session: overlay, table, timings, teacher overlay, comparison, its visibility."""
    if session is None or session.student is None:
        return None, [], "", None, "", gr.update(visible=False)
    shown = session.shown()
    overlay = annotated(session.image, shown, session.selected)
    teacher_overlay, comparison, compare_visible = None, "", session.teacher is not None
    if session.teacher is not None:
        teacher_shown = session.shown(session.teacher)
        teacher_overlay = annotated(session.image, teacher_shown)
        comparison = comparison_table(session) + "\n\n" + timing_text(session.teacher, teacher_shown)
    table = {"data": instance_rows(shown), "headers": TABLE_HEADERS}
    return (overlay, table, timing_text(session.student, shown), teacher_overlay, comparison,
            gr.update(visible=compare_visible))


def object_picture(session: ObjectSession) -> Image.Image:
    """The Object tab's image: the latest mask over the photo, with the points (green include, red exclude), the
    box and a box's first corner drawn on it."""
    from PIL import ImageDraw

    last = session.last
    picture = last.result.overlay(session.image) if last is not None else session.image.copy()
    draw = ImageDraw.Draw(picture)
    radius = max(5, round(min(picture.size) / 50))
    clicks = session.clicks
    box = clicks.box or (list(session.seed.box) if session.seed is not None else None)
    if box is not None:
        draw.rectangle(box, outline=BOX_COLOR, width=max(2, radius // 2))
    for (x, y), label in zip(clicks.points, clicks.point_labels):
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=INCLUDE_COLOR if label else EXCLUDE_COLOR,
                     outline=(255, 255, 255), width=max(1, radius // 3))
    if clicks.corner is not None:
        x, y = clicks.corner
        for dx, dy in ((radius * 2, 0), (0, radius * 2)):
            draw.line([x - dx, y - dy, x + dx, y + dy], fill=BOX_COLOR, width=max(2, radius // 2))
    return picture


def object_status(session: ObjectSession | None) -> str:
    """A Markdown line: what was clicked, the model, the mask's predicted IoU and area, where the time went."""
    if session is None:
        return "Upload an image, then click on an object."
    clicks = session.clicks
    if not session.steps:
        return "Click on the object: each click refines its mask." if session.seed is None else ""
    included = sum(clicks.point_labels)
    parts = [f"{included} include, {len(clicks.points) - included} exclude points"]
    if clicks.box is not None:
        parts.append("box " + ", ".join(f"{v:.0f}" for v in clicks.box))
    if session.seed is not None:
        parts.append(f"refining **{session.seed.prompt}** ({session.seed.score:.2f}) from the Text tab")
    if clicks.corner is not None:
        parts.append("box: first corner at ({:.0f}, {:.0f}), click the opposite corner".format(*clicks.corner))
    last = session.last
    if last is not None and len(last.result):
        t = last.result.timings
        cache = "image features **from cache**" if t.image_cache_hit else f"image encoded {t.encode_image_ms:.0f} ms"
        parts += [f"predicted IoU **{last.result.scores[0]:.2f}**", f"{last.result[0].area:,} px",
                  f"{cache} · mask {t.decode_ms:.0f} ms"]
    return f"**{session.steps[-1].model}** · " + " · ".join(parts)


def object_view(session: ObjectSession | None) -> tuple:
    """The Object tab's outputs: its image (None without a session) and the status line."""
    return (None if session is None else object_picture(session)), object_status(session)


# Downloads ----------------------------------------------------------------------------------------------------


def slug(text: str) -> str:
    """A file-name-safe form of a prompt."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "prompt"


def export_results(session: Session | None, out_dir: str | os.PathLike) -> list[str]:
    """Write the shown result as COCO JSON (RLE), a ZIP of per-instance PNG masks, the union mask and the overlay.

    Returns the four file paths, in that order.
    """
    if session is None or session.student is None:
        raise gr.Error("Nothing to download yet: press Segment first.")
    result = session.shown()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = slug(Path(session.image_name).stem) or "image"
    coco = CocoBuilder(result.prompts)
    coco.add(session.image_name, result)
    coco_path = out / f"{stem}_coco.json"
    coco_path.write_text(json.dumps(coco.to_dict()))
    zip_path = out / f"{stem}_masks.zip"
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i, instance in enumerate(result):
            buffer = io.BytesIO()
            Image.fromarray(instance.mask.astype(np.uint8) * 255).save(buffer, format="PNG")
            archive.writestr(f"{i:03d}_{slug(instance.prompt)}_{instance.score:.2f}.png", buffer.getvalue())
    union_path = out / f"{stem}_union_mask.png"
    Image.fromarray(result.union_mask().astype(np.uint8) * 255).save(union_path)
    overlay_path = out / f"{stem}_overlay.png"
    result.overlay(session.image).save(overlay_path)
    return [str(coco_path), str(zip_path), str(union_path), str(overlay_path)]


def session_dir(config: AppConfig, request: gr.Request | None) -> Path:
    """This browser session's own temporary folder (removed when the session ends)."""
    name = getattr(request, "session_hash", None) or "shared"
    return Path(config.work_dir) / slug(name)


def cleanup_session(config: AppConfig, request: gr.Request | None) -> None:
    """Remove a session's temporary folder (run when its browser tab closes)."""
    shutil.rmtree(session_dir(config, request), ignore_errors=True)


# Video --------------------------------------------------------------------------------------------------------

OBJECT_HEADERS = ["object id", "prompt", "first frame", "last frame", "frames", "best score"]


@dataclass
class TrackedVideo:
    """What tracking one uploaded video gave: its summary, its three files, and whether the frame limit cut it."""

    model: str
    summary: TrackSummary
    overlay_path: str
    jsonl_path: str
    summary_path: str
    frame_count: int | None
    limited: bool

    def files(self) -> list[str]:
        return [self.overlay_path, self.jsonl_path, self.summary_path]


def open_upload(path: str) -> Any:
    """`litetext.open_video` of an uploaded file, named by its file name (so errors and the progress bar show no
    server path)."""
    source = litetext.open_video(path)
    source.name = Path(path).name
    return source


def check_video(path: str, config: AppConfig) -> int | None:
    """Refuse an unreadable, empty or oversized video before any GPU time; returns its frame count."""
    source = open_upload(path)
    frames = source.frames()
    try:
        first = next(frames)
    finally:
        frames.close()
    width, height = first.image.size
    if width * height > config.max_video_pixels:
        raise gr.Error(f"{source.name} is {width}x{height}; this app tracks frames of at most "
                       f"{config.max_video_pixels:,} pixels (1080p). Please downscale it, e.g. with "
                       "ffmpeg -i in.mp4 -vf scale=-2:1080 out.mp4.")
    return source.frame_count


@gpu(GPU_TRACK_DURATION_S)
def run_tracking(model: str, video: str, prompts: list[str], out_dir: str, name: str,
                 config: AppConfig) -> TrackSummary:
    """Track `prompts` through the first `config.max_video_frames` frames of `video` into `TrackWriter` files
    named `name` in `out_dir`; the engine's tqdm bar is what `gr.Progress(track_tqdm=True)` shows."""
    return track_to_files(load_engine(model, config), open_upload(video), prompts, out_dir, name, progress=True,
                          max_frames=config.max_video_frames)


def track_video(video: str | None, prompts_text: str, model: str, out_dir: str | os.PathLike,
                config: AppConfig) -> TrackedVideo:
    """Track the uploaded video's prompts with `model` (the Object tab's default when empty) into `out_dir`."""
    prompts = parse_prompts(prompts_text)
    model = model or config.object_model
    check_offered(model, config)
    if not video:
        raise gr.Error("Upload a video first.")
    name = slug(Path(video).stem)
    try:
        frame_count = check_video(video, config)
        summary = run_tracking(model, video, prompts, str(out_dir), name, config)
    except litetext.InvalidVideoError as error:  # named by its file name, not its server path
        raise gr.Error(f"Cannot track the video: {error}".replace(str(video), Path(video).name)) from None
    out = Path(out_dir)  # TrackWriter's file names
    return TrackedVideo(model, summary, str(out / f"{name}.overlay.mp4"), str(out / f"{name}.jsonl"),
                        str(out / f"{name}.summary.json"), frame_count,
                        frame_count is not None and frame_count > config.max_video_frames)


def object_rows(summary: TrackSummary) -> list[list[Any]]:
    """One table row per tracked object: id, prompt, first and last frame, frames seen, best score."""
    return [[o.object_id, o.prompt, o.first_frame, o.last_frame, o.frames, round(o.best_score, 3)]
            for o in summary.objects]


def video_status(tracked: TrackedVideo) -> str:
    """A Markdown line: model, frames tracked (and the limit when it applied), objects per prompt."""
    summary = tracked.summary
    frames = f"**{summary.frames}** frames tracked"
    if tracked.limited:
        frames += f" (the first {summary.frames} of {tracked.frame_count}: this app's limit)"
    objects = ", ".join(f"{count} {prompt}" for prompt, count in summary.objects_per_prompt.items())
    return f"**{tracked.model}** · {frames} · objects: {objects}"


# The API ------------------------------------------------------------------------------------------------------


def api_segment(image: str | None, prompts: str, threshold: float, mask_threshold: float, model: str,
                boxes: str, config: AppConfig) -> dict[str, Any]:
    """Segment `image` with comma-separated `prompts`; returns `Result.to_dict()` (per-instance RLE) plus the
    model, its text-encoder size and the timings."""
    try:
        threshold, mask_threshold = float(threshold), float(mask_threshold)
    except (TypeError, ValueError):
        raise gr.Error("threshold and mask_threshold must be numbers between 0 and 1.") from None
    if not (0.0 <= threshold <= 1.0 and 0.0 <= mask_threshold <= 1.0):
        raise gr.Error("threshold and mask_threshold must be between 0 and 1.")
    parsed_prompts = parse_prompts(prompts)
    box_list, labels = parse_boxes(boxes)
    picture = read_image(image, config)
    run = make_run(model or config.model, picture, parsed_prompts, box_list, labels, mask_threshold, config)
    result = run.result.filter(min_score=threshold)
    return {"model": run.model, "text_encoder_params_m": run.text_encoder_params_m,
            "timings": asdict(run.result.timings), **result.to_dict()}


def api_segment_object(image: str | None, points: str, box: str, model: str, multimask: bool,
                       config: AppConfig) -> dict[str, Any]:
    """Segment one object in `image` from clicks and/or a box: `points` '+ x, y; - x, y' in pixels (- excludes),
    `box` 'x1, y1, x2, y2'. Returns `Result.to_dict()` (one mask, or three candidates with `multimask`, scored by
    the tracker's predicted IoU) plus the model and the timings."""
    point_list, labels = parse_points(points)
    object_box = parse_box(box)
    if not point_list and object_box is None:
        raise gr.Error("Give at least one point '+ x, y' or a box 'x1, y1, x2, y2'.")
    picture = read_image(image, config)
    model = model or config.object_model
    check_offered(model, config)
    result = run_object_model(model, picture, Clicks(point_list, labels, object_box), None, None, bool(multimask),
                              config)
    return {"model": model, "timings": asdict(result.timings), **result.to_dict()}


def api_track(video: str | None, prompts: str, model: str, out_dir: str | os.PathLike,
              config: AppConfig) -> tuple[str, str, dict[str, Any]]:
    """Track every instance of the comma-separated `prompts` through `video`; returns the overlay MP4, the RLE
    JSON Lines (a line per frame: `Result.to_dict()` with object ids) and the summary (frames, objects)."""
    tracked = track_video(video, prompts, model, out_dir, config)
    return tracked.overlay_path, tracked.jsonl_path, {"model": tracked.model, **tracked.summary.to_dict()}


# Examples -----------------------------------------------------------------------------------------------------


def example_images(folder: str | os.PathLike) -> list[list[str]]:
    """`[path, prompts]` rows for gr.Examples: scikit-image's bundled photos, written once into `folder`."""
    folder = Path(folder)
    rows = []
    try:
        import skimage.data
    except ImportError:  # fall back to the repository's downscaled copies of the same photos
        repo_examples = Path(__file__).resolve().parent.parent / "examples" / "images"
        return [[str(repo_examples / name), prompts] for _, name, prompts in EXAMPLES
                if (repo_examples / name).is_file()]
    folder.mkdir(parents=True, exist_ok=True)
    for function, name, prompts in EXAMPLES:
        path = folder / name
        if not path.is_file():
            Image.fromarray(getattr(skimage.data, function)()).convert("RGB").save(path, quality=92)
        rows.append([str(path), prompts])
    return rows


# The page -----------------------------------------------------------------------------------------------------

DESCRIPTION = """# litetext · text-prompted segmentation
**Text prompts**: upload an image, type noun phrases separated by commas (each is a concept) and press
**Segment**; every instance shows in its prompt's colour, and the sliders re-filter instantly without the model.
**Object**: click on one object (include and exclude points, or a box) and each click refines its mask.
**Video**: track every instance of your prompts through a clip."""

CSS = "#timings, #object-status, #video-status {font-size: 0.9em}"
#: The page footer's links: "Use via API" (the /segment docs the README points to), "Built with Gradio", Settings.
FOOTER_LINKS = ["api", "gradio", "settings"]


def theme() -> gr.themes.Base:
    """A theme using system fonts, so the page needs no font download (works offline)."""
    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    return gr.themes.Soft(font=system, font_mono=["ui-monospace", "monospace"])


def build_demo(config: AppConfig | None = None) -> gr.Blocks:
    """Build the Blocks app for `config` (no model is loaded until the first request)."""
    config = config or AppConfig.from_env()
    model_events = {"concurrency_limit": config.concurrency_limit, "concurrency_id": "model"}

    with gr.Blocks(title="litetext segmentation", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(DESCRIPTION)
        state = gr.State(None)
        object_state = gr.State(None)
        with gr.Tabs() as tabs:
            with gr.Tab("Text prompts", id="text"):
                with gr.Row():
                    with gr.Column(scale=2):
                        image_in = friendly_image(label="Image", type="filepath", sources=["upload", "clipboard"],
                                                 elem_id="input-image", height=360)
                        prompts_in = gr.Textbox(label="Prompts (comma-separated noun phrases)", value="cat",
                                                placeholder="e.g. cat, coffee cup, person", elem_id="prompts",
                                                lines=1)
                        with gr.Row():
                            model_in = gr.Dropdown(config.models, value=config.model, label="Model", scale=2)
                            compare_in = gr.Checkbox(label=f"Side by side with {config.teacher}", value=False,
                                                     scale=1, visible=config.teacher is not None)
                        segment_btn = gr.Button("Segment", variant="primary", elem_id="segment-btn")
                        score_in = gr.Slider(0.05, 0.95, value=0.5, step=0.01,
                                             label="Score threshold (instant, no model)", elem_id="score-threshold")
                        mask_in = gr.Slider(0.05, 0.95, value=0.5, step=0.05,
                                            label="Mask threshold (instant, no model)")
                        with gr.Accordion("Exemplar boxes (optional)", open=False):
                            boxes_in = gr.Textbox(label="Boxes, one per line: [+|-] x1, y1, x2, y2 (pixels)", lines=3,
                                                  placeholder="+ 40, 30, 200, 260\n- 300, 10, 420, 120",
                                                  elem_id="boxes")
                            with gr.Row():
                                add_pos = gr.Button("Add selected instance as +", size="sm")
                                add_neg = gr.Button("Add selected instance as −", size="sm")
                        gr.Examples(example_images(Path(config.work_dir) / "examples"), inputs=[image_in, prompts_in],
                                    label="Example photos (scikit-image)")
                    with gr.Column(scale=3):
                        overlay_out = gr.AnnotatedImage(label="Instances", elem_id="overlay", height=480)
                        timings_out = gr.Markdown(elem_id="timings")
                        table_out = gr.Dataframe(headers=TABLE_HEADERS,
                                                 label="Instances (select a row to highlight it)",
                                                 interactive=False, elem_id="instances", max_height=320)
                        refine_btn = gr.Button("Refine the selected instance with clicks (Object tab)", size="sm",
                                               elem_id="refine-btn")
                        with gr.Column(visible=False) as compare_col:
                            teacher_out = gr.AnnotatedImage(label=f"Teacher: {config.teacher}",
                                                            elem_id="teacher-overlay", height=480)
                            comparison_out = gr.Markdown(elem_id="comparison")
                        with gr.Accordion("Download results", open=False):
                            export_btn = gr.Button("Prepare downloads (COCO JSON, mask PNGs, union mask, overlay)",
                                                   size="sm")
                            files_out = gr.File(label="Files", file_count="multiple", interactive=False,
                                                elem_id="downloads")

            with gr.Tab("Object (clicks)", id="object"):
                with gr.Row():
                    with gr.Column(scale=3):
                        object_image = friendly_image(label="Click on the object", type="filepath", format="png",
                                                      sources=["upload", "clipboard"], elem_id="object-image",
                                                      height=480)
                        object_status_out = gr.Markdown(object_status(None), elem_id="object-status")
                    with gr.Column(scale=2):
                        click_mode = gr.Radio(CLICK_MODES, value="include", label="A click adds",
                                              elem_id="click-mode")
                        object_model = gr.Dropdown(config.models, value=config.object_model, label="Model",
                                                   info="needs SAM3's tracker", elem_id="object-model")
                        object_hint = gr.Markdown(
                            "" if model_has_tracker(config.object_model) else no_tracker_hint(config.object_model,
                                                                                              config),
                            elem_id="object-hint")
                        with gr.Row():
                            undo_btn = gr.Button("Undo last click", size="sm", elem_id="undo-btn")
                            clear_btn = gr.Button("Clear clicks", size="sm", elem_id="clear-btn")

            with gr.Tab("Video", id="video"):
                with gr.Row():
                    with gr.Column(scale=2):
                        video_in = gr.Video(label="Video", sources=["upload"], elem_id="video-input", height=320)
                        video_prompts = gr.Textbox(label="Prompts (comma-separated noun phrases)", value="person",
                                                   elem_id="video-prompts", lines=1)
                        video_model = gr.Dropdown(config.models, value=config.object_model, label="Model",
                                                  info="needs SAM3's tracker", elem_id="video-model")
                        track_btn = gr.Button("Track", variant="primary", elem_id="track-btn")
                        gr.Markdown(f"At most {config.max_video_frames} frames of up to "
                                    f"{config.max_video_pixels:,} pixels are tracked per video.")
                    with gr.Column(scale=3):
                        video_out = gr.Video(label="Tracked objects", interactive=False, elem_id="video-overlay",
                                             height=400)
                        video_status_out = gr.Markdown(elem_id="video-status")
                        objects_out = gr.Dataframe(headers=OBJECT_HEADERS, label="Objects", interactive=False,
                                                   elem_id="video-objects", max_height=320)
                        video_files = gr.File(label="Downloads (overlay MP4, RLE JSON Lines, summary)",
                                              file_count="multiple", interactive=False, elem_id="video-files")

        # Hidden components of the documented API endpoints (/segment, /segment_object, /track).
        with gr.Column(visible=False):
            api_image = friendly_image(type="filepath", label="image")
            api_prompts = gr.Textbox(label="prompts")
            api_threshold = gr.Number(0.5, label="threshold")
            api_mask_threshold = gr.Number(0.5, label="mask_threshold")
            api_model = gr.Textbox("", label="model")
            api_boxes = gr.Textbox("", label="boxes")
            api_points = gr.Textbox("", label="points")
            api_box = gr.Textbox("", label="box")
            api_multimask = gr.Checkbox(False, label="multimask")
            api_video = gr.File(label="video", type="filepath")
            api_out = gr.JSON(label="result")
            api_overlay = gr.File(label="overlay")
            api_jsonl = gr.File(label="tracks")
            api_summary = gr.JSON(label="summary")
            api_btn = gr.Button()
            api_object_btn = gr.Button()
            api_track_btn = gr.Button()

        view = [overlay_out, table_out, timings_out, teacher_out, comparison_out, compare_col]
        object_outputs = [object_state, object_image, object_status_out]

        @friendly
        def on_segment(session, image, prompts, boxes, model, compare, score, mask):
            new = segment(session, image, prompts, boxes, model, compare, score, mask, config)
            return new, *render(new)

        @friendly
        def on_score(session, score):
            if session is None:
                return gr.skip(), *(gr.skip() for _ in view)
            session = replace(session, score_threshold=score, selected=None)
            return session, *render(session)

        @friendly
        def on_mask(session, mask):
            if session is None:
                return gr.skip(), *(gr.skip() for _ in view)
            session = rethreshold_masks(session, mask, config)
            return session, *render(session)

        @friendly
        def on_select(session, evt: gr.SelectData):
            if session is None or session.student is None:
                return gr.skip(), *(gr.skip() for _ in view)
            row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            session = replace(session, selected=int(row))
            return session, *render(session)

        def add_selected(label):
            def handler(session, text):
                shown = session.shown() if session is not None else None
                if shown is None or session.selected is None or session.selected >= len(shown):
                    raise gr.Error("Select an instance in the table first.")
                line = format_box(shown[session.selected].box, label)
                return (text.rstrip() + "\n" + line).strip()
            return handler

        @friendly
        def on_export(session, request: gr.Request):
            return export_results(session, session_dir(config, request))

        @friendly
        def on_object_upload(image):
            if not image:
                return None, *object_view(None)
            session = ObjectSession(read_image(image, config), Path(image).name)
            return session, *object_view(session)

        @friendly
        def on_object_click(session, mode, model, evt: gr.SelectData):
            if session is None or evt.index is None:
                return gr.skip(), gr.skip(), gr.skip()
            x, y = evt.index[:2]
            try:
                session = click_object(session, x, y, mode, model, config)
            except litetext.NoTrackerError as error:  # one line under the image, not an error popup
                return gr.skip(), gr.skip(), no_tracker_hint(model, config, error)
            return session, *object_view(session)

        @friendly
        def on_undo(session):
            return undo_click(session), *object_view(undo_click(session))

        @friendly
        def on_clear(session):
            cleared = None if session is None else ObjectSession(session.image, session.image_name)
            return cleared, *object_view(cleared)

        @friendly
        def on_object_model(model):
            return "" if model_has_tracker(model) else no_tracker_hint(model, config)

        @friendly
        def on_refine(session, model):
            try:
                refined = refine_instance(session, model, config)
            except litetext.NoTrackerError as error:
                return gr.skip(), gr.skip(), no_tracker_hint(model, config, error), gr.Tabs(selected="object")
            return refined, *object_view(refined), gr.Tabs(selected="object")

        @friendly
        def on_track(video, prompts, model, request: gr.Request,
                     progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - how Gradio asks for a progress bar
            tracked = track_video(video, prompts, model, session_dir(config, request) / "video", config)
            return (tracked.overlay_path, {"data": object_rows(tracked.summary), "headers": OBJECT_HEADERS},
                    video_status(tracked), tracked.files())

        @friendly
        def on_api(image, prompts, threshold, mask_threshold, model, boxes):
            return api_segment(image, prompts, threshold, mask_threshold, model, boxes, config)

        @friendly
        def on_api_object(image, points, box, model, multimask):
            return api_segment_object(image, points, box, model, multimask, config)

        @friendly
        def on_api_track(video, prompts, model, request: gr.Request,
                         progress=gr.Progress(track_tqdm=True)):  # noqa: B008
            return api_track(video, prompts, model, session_dir(config, request) / "api-video", config)

        on_api.__doc__ = api_segment.__doc__
        on_api_object.__doc__ = api_segment_object.__doc__
        on_api_track.__doc__ = api_track.__doc__

        def on_unload(request: gr.Request):
            cleanup_session(config, request)

        segment_inputs = [state, image_in, prompts_in, boxes_in, model_in, compare_in, score_in, mask_in]
        gr.on([segment_btn.click, prompts_in.submit], on_segment, segment_inputs, [state, *view],
              api_visibility="private", **model_events)
        score_in.change(on_score, [state, score_in], [state, *view], api_visibility="private",
                        show_progress="hidden", trigger_mode="always_last")
        mask_in.release(on_mask, [state, mask_in], [state, *view], api_visibility="private", **model_events)
        table_out.select(on_select, [state], [state, *view], api_visibility="private", show_progress="hidden")
        add_pos.click(add_selected(1), [state, boxes_in], boxes_in, api_visibility="private")
        add_neg.click(add_selected(0), [state, boxes_in], boxes_in, api_visibility="private")
        export_btn.click(on_export, [state], files_out, api_visibility="private")
        refine_btn.click(on_refine, [state, object_model], [*object_outputs, tabs], api_visibility="private",
                         **model_events)

        object_image.upload(on_object_upload, [object_image], object_outputs, api_visibility="private")
        object_image.clear(on_object_upload, [object_image], object_outputs, api_visibility="private")
        object_image.select(on_object_click, [object_state, click_mode, object_model], object_outputs,
                            api_visibility="private", show_progress="minimal", trigger_mode="always_last",
                            **model_events)
        undo_btn.click(on_undo, [object_state], object_outputs, api_visibility="private")
        clear_btn.click(on_clear, [object_state], object_outputs, api_visibility="private")
        object_model.change(on_object_model, [object_model], object_hint, api_visibility="private")

        track_btn.click(on_track, [video_in, video_prompts, video_model],
                        [video_out, objects_out, video_status_out, video_files], api_visibility="private",
                        **model_events)

        api_btn.click(on_api, [api_image, api_prompts, api_threshold, api_mask_threshold, api_model, api_boxes],
                      api_out, api_name="segment", **model_events)
        api_object_btn.click(on_api_object, [api_image, api_points, api_box, api_model, api_multimask], api_out,
                             api_name="segment_object", **model_events)
        api_track_btn.click(on_api_track, [api_video, api_prompts, api_model], [api_overlay, api_jsonl, api_summary],
                            api_name="track", **model_events)
        demo.unload(on_unload)

    demo.queue(default_concurrency_limit=4, max_size=64)
    demo.litetext_config = config  # type: ignore[attr-defined]
    return demo


def launch(demo: gr.Blocks, **kwargs: Any):
    """`demo.launch` with the app's theme, CSS, footer links and upload limit (keyword arguments override them)."""
    options: dict[str, Any] = {"theme": theme(), "css": CSS, "max_file_size": "50mb", "footer_links": FOOTER_LINKS}
    options.update(kwargs)
    return demo.launch(**options)


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


def __getattr__(name: str) -> Any:
    """`app.demo`, built from the environment on first use: what `gradio app.py` and a Space look for. Lazy, so
    `litetext app`, which builds its own demo from its arguments, does not build a second one."""
    if name == "demo":
        globals()["demo"] = build_demo()
        return globals()["demo"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # a Space runs this: it offers only the models that loaded at start-up
    space_config = AppConfig.from_env()
    preload(space_config, every_model=True)
    demo = build_demo(space_config)
    launch(demo)
