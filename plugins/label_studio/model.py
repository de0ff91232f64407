"""`LitetextModel`: the Label Studio ML backend model, shaped like `LabelStudioMLBase` (setup, predict, fit).

Automatic pre-annotation: every label of every predicted control is a prompt; all prompts of a task run as one
batched decode over one image encoding, and the tasks of a request go through `engine.segment_batch`. A video's
labels are tracked through it (`engine.track`), one `videorectangle` region per object.
Interactive pre-annotation: a phrase typed in a `TextArea` returns every instance of it; smart keypoints and a
smart rectangle select the ONE object under them, as Label Studio's SAM backends do: with SAM3's tracker on the
engine (`engine.segment_object`), else (a rectangle alone) by the text model's exemplar query.
The results become Label Studio regions in `regions.py`; an interactive request's context is read in
`interactive.py`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

import litetext

from .config import ControlSpec, LabelConfigError, ParsedConfig, VideoSpec, parse_label_config
from .fetch import ImageFetcher
from .interactive import DrawnRegion, InteractivePrompt, read_context
from .regions import Region, control_regions, object_regions, video_regions
from .settings import BackendSettings
from .video import collect_tracks

logger = logging.getLogger("litetext.label_studio")

#: Events Label Studio sends to /webhook that would start training in a trainable backend.
TRAIN_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED", "START_TRAINING")


@dataclass
class Connection:
    """Where Label Studio is and the key to read its files, as `/setup` sent them or the environment says."""

    url: str | None = None
    api_key: str | None = field(default=None, repr=False)


class BackendState:
    """Process-wide state: settings, the shared engine, Label Studio connections per project, fetchers."""

    def __init__(self, settings: BackendSettings, engine: Any = None):
        self.settings = settings
        self._engine = engine
        self._lock = threading.Lock()
        self._connections: dict[str, Connection] = {}
        self._fetchers: dict[tuple[str | None, str | None], ImageFetcher] = {}

    @property
    def engine(self):
        """The litetext engine (loaded on first use)."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    s = self.settings
                    self._engine = s.engine()
        return self._engine

    def remember(self, project: str | None, url: str | None, api_key: str | None) -> None:
        """Keep the hostname and token Label Studio sent to /setup for `project`."""
        if url or api_key:
            with self._lock:
                self._connections[str(project)] = Connection(url or None, api_key or None)

    def connection(self, project: str | None) -> Connection:
        """The Label Studio URL and key for `project`: the environment wins, then what /setup sent."""
        with self._lock:
            sent = self._connections.get(str(project)) or next(iter(self._connections.values()), Connection())
        return Connection(self.settings.label_studio_url or sent.url,
                          self.settings.label_studio_api_key or sent.api_key)

    def fetcher(self, project: str | None) -> ImageFetcher:
        """A (cached) image fetcher for `project`'s Label Studio."""
        connection = self.connection(project)
        key = (connection.url, connection.api_key)
        with self._lock:
            fetcher = self._fetchers.get(key)
            if fetcher is None:
                s = self.settings
                fetcher = ImageFetcher(connection.url, connection.api_key, allowed_roots=s.allowed_roots,
                                       max_bytes=s.max_image_bytes, timeout=s.fetch_timeout)
                self._fetchers[key] = fetcher
        return fetcher

    def close(self) -> None:
        with self._lock:
            for fetcher in self._fetchers.values():
                fetcher.close()
            self._fetchers.clear()


@lru_cache(maxsize=64)
def cached_config(label_config: str) -> ParsedConfig:
    """Parse a labelling config once per distinct text."""
    return parse_label_config(label_config)


class LitetextModel:
    """Text-prompted segmentation for Label Studio, in the shape of `LabelStudioMLBase`.

    Built per request with the project and its labelling config, like Label Studio's own backends; the heavy
    state (engine, caches, connections) lives in the shared `BackendState`.
    """

    def __init__(self, state: BackendState, project_id: str | None = None, label_config: str | None = None):
        self.state = state
        self.settings = state.settings
        self.project_id = project_id
        self.label_config = label_config

    # LabelStudioMLBase-style API ----------------------------------------------------------------------

    def setup(self) -> None:
        """Check the labelling config (raises `LabelConfigError`) and make sure the engine is loaded."""
        engine = self.state.engine  # load now, not on the first prediction
        if self.label_config and cached_config(self.label_config).active_videos and not _has_tracker(engine):
            raise LabelConfigError(str(NeedsTrackerError.for_engine(engine, "video tracking needs")))

    @property
    def parsed_config(self) -> ParsedConfig:
        if not self.label_config:
            raise LabelConfigError("no labelling config was sent (label_config is empty)")
        return cached_config(self.label_config)

    @property
    def model_version(self) -> str:
        """Names the checkpoint (and the tracker composed with it) and the thresholds, e.g.
        `litetext-s0-16-score0.5-mask0.5` or `litetext-s0-16+sam3-score0.5-mask0.5`."""
        s = self.settings
        name = _checkpoint_name(self.state.engine.info.model)
        if s.tracker:
            name += "+" + _checkpoint_name(s.tracker)
        version = f"litetext-{name}-score{s.threshold:g}-mask{s.mask_threshold:g}"
        if s.max_instances is not None:
            version += f"-max{s.max_instances}"
        if s.min_area:
            version += f"-area{s.min_area}"
        return version

    def predict(self, tasks: list[dict[str, Any]], context: dict[str, Any] | None = None,
                **kwargs: Any) -> dict[str, Any]:
        """Predictions for `tasks`, in order: `{"results": [...], "errors": [...]}`.

        Each result is `{"result": regions, "score": mean score, "model_version": ...}`; a task that failed (its
        image or video could not be read, or it asked for something the model cannot do) gets `{"error": ...}` with
        no `result` and is listed in `errors`; the others go on. A malformed interactive `context` fails the whole
        request (`FieldError`, naming the field), as does one with nothing to use (`LabelConfigError`).
        """
        parsed = self.parsed_config
        asked = read_context(context)  # a malformed context is refused here, before any image is fetched
        if asked is None:
            return self._predict_automatic(tasks, parsed)
        if not parsed.active:
            message = ("interactive prompts on video are not supported: video tasks are tracked automatically "
                       "(Retrieve Predictions, or open the task with predictions on)")
            return self._response(tasks, {}, {}, dict.fromkeys(range(len(tasks)), message))
        asked.check_usable()
        return self._predict_interactive(tasks, parsed, asked)

    def fit(self, event: str, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """SAM3-LiteText is zero-shot: annotations do not train it. Says so, and what it would have used."""
        return {"trained": False, "event": event,
                "reason": "litetext segments from text prompts; edit the labels' prompts instead of training"}

    # Automatic -----------------------------------------------------------------------------------------

    def _predict_automatic(self, tasks: list[dict[str, Any]], parsed: ParsedConfig) -> dict[str, Any]:
        s = self.settings
        groups = _group_by_image(parsed.active)  # image key -> controls
        jobs: list[tuple[int, str, list[ControlSpec], list[str]]] = []
        for index in range(len(tasks)):
            for image_key, controls in groups.items():
                prompts = list(dict.fromkeys(p for c in controls for label in c.labels for p in label.prompts))
                jobs.append((index, image_key, controls, prompts))
        loaded, errors = self._fetch_all(tasks, [(j[0], j[1]) for j in jobs])
        runnable = [job for job in jobs if (job[0], job[1]) in loaded]
        threshold = min([s.threshold] + [c.score_threshold for c in parsed.active
                                                if c.score_threshold is not None])
        regions: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(tasks))}
        scores: dict[int, list[float]] = {i: [] for i in range(len(tasks))}
        items = self.state.engine.segment_batch(
            [(loaded[(job[0], job[1])], job[3]) for job in runnable], None, batch_size=s.batch_size,
            threshold=threshold, mask_threshold=s.mask_threshold, min_area=s.min_area,
        ) if runnable else []
        for item in items:
            index, image_key, controls, _ = runnable[item.index]
            if not item.ok:
                errors.setdefault(index, f"{_describe(tasks[index]['data'][image_key])}: {item.error}")
                continue
            for control in controls:
                found = control_regions(control, item.result, s)
                regions[index].extend(r for r, _ in found)
                scores[index].extend(score for _, score in found)
        for index in range(len(tasks)):
            for spec in parsed.active_videos if index not in errors else ():
                try:
                    found = self._video_task(tasks[index], spec)
                except litetext.LitetextError as error:
                    errors.setdefault(index, str(error))
                    break
                regions[index].extend(r for r, _ in found)
                scores[index].extend(score for _, score in found)
        return self._response(tasks, regions, scores, errors)

    # Video ---------------------------------------------------------------------------------------------

    def _video_task(self, task: dict[str, Any], spec: VideoSpec) -> list[Region]:
        """One region per object `engine.track` follows through the task's video, labelled by its prompt's label.

        The video is fetched like an image (capped at `max_video_bytes`) into a scratch folder removed afterwards;
        errors name the task's video, never the scratch file.
        """
        s = self.settings
        engine = self.state.engine
        if not _has_tracker(engine):
            raise NeedsTrackerError.for_engine(engine, "video tracking needs")
        data = task.get("data") if isinstance(task.get("data"), dict) else {}
        reference = data.get(spec.video_key)
        if not isinstance(reference, str):
            raise litetext.InvalidVideoError(f"task has no video under data[{spec.video_key!r}]")
        label_of = spec.label_of_prompts()
        framerate = spec.frames_per_second(data)
        fetcher = self.state.fetcher(self.project_id)
        with tempfile.TemporaryDirectory(prefix="litetext-video-") as scratch:
            path = fetcher.fetch_file(reference, scratch, max_bytes=s.max_video_bytes)
            try:
                source = litetext.open_video(path)
                frames = engine.track(source, list(label_of), max_frames=s.max_video_frames,
                                      threshold=spec.score_threshold if spec.score_threshold is not None
                                      else s.threshold, max_objects=spec.max_instances or s.max_instances)
                tracks, count = collect_tracks(frames, framerate=framerate, min_area=s.min_area)
            except litetext.LitetextError as error:
                if str(path) not in str(error):
                    raise
                raise litetext.InvalidVideoError(str(error).replace(str(path), _describe(reference))) from None
        if source.fps and abs(source.fps - framerate) > 0.01:
            logger.warning("%s plays at %g fps but the Video tag's framerate is %g: Label Studio numbers frames by "
                           "the framerate, so set framerate=\"%g\" on the Video tag", _describe(reference),
                           source.fps, framerate, source.fps)
        frames_count = max(source.frame_count or 0, count)
        duration = frames_count / (source.fps or framerate)
        return video_regions(spec, tracks, label_of, frames_count=frames_count, duration=duration)

    # Interactive ---------------------------------------------------------------------------------------

    def _predict_interactive(self, tasks, parsed: ParsedConfig, asked: InteractivePrompt) -> dict[str, Any]:
        regions: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(tasks))}
        scores: dict[int, list[float]] = {i: [] for i in range(len(tasks))}
        if asked.keypoints and not _has_tracker(self.state.engine):
            # Said once per task, before any image is fetched: no image would change the answer.
            message = str(NeedsTrackerError.for_engine(self.state.engine, "keypoint clicks need"))
            return self._response(tasks, regions, scores, dict.fromkeys(range(len(tasks)), message))
        image_keys = {c.image_key for c in parsed.active}
        loaded, errors = self._fetch_all(tasks, [(i, key) for i in range(len(tasks)) for key in image_keys])
        for index in range(len(tasks)):
            for image_key in image_keys:
                if (index, image_key) not in loaded:
                    continue
                controls = [c for c in parsed.active if c.image_key == image_key]
                try:
                    found = self._interactive_task(loaded[(index, image_key)], controls, asked)
                except litetext.LitetextError as error:
                    errors.setdefault(index, f"{_describe(tasks[index]['data'][image_key])}: {error}")
                    continue
                regions[index].extend(r for r, _ in found)
                scores[index].extend(score for _, score in found)
        return self._response(tasks, regions, scores, errors)

    def _interactive_task(self, image: bytes, controls: list[ControlSpec],
                          asked: InteractivePrompt) -> list[Region]:
        """Regions for what the annotator did: clicked points, typed a phrase, or drew a smart rectangle."""
        prepared = self.state.engine.prepare_image(image)
        width, height = prepared.size
        boxes = [(rectangle.box(width, height), rectangle.label) for rectangle in asked.rectangles]
        if asked.keypoints:
            return self._segment_clicks(prepared, controls, asked.keypoints, boxes[-1][0] if boxes else None,
                                        asked.label)
        if asked.texts:
            return self._segment_typed(prepared, controls, asked.texts, boxes)
        outputs = []
        for box, label in boxes:
            outputs.extend(self._select_object(prepared, controls, box, label))
        return outputs

    def _segment_clicks(self, prepared, controls: list[ControlSpec], keypoints: list[DrawnRegion],
                        box: list[float] | None, label: str | None) -> list[Region]:
        """The object under the annotator's clicks (positive and negative keypoints, and the last rectangle drawn
        as its box), with SAM3's tracker (`engine.segment_object`), named by the label of the last region drawn.

        The text-prompted model alone has no point prompts, so without a tracker the task gets an error saying
        what to load.
        """
        engine = self.state.engine
        if not _has_tracker(engine):
            raise NeedsTrackerError.for_engine(engine, "keypoint clicks need")
        width, height = prepared.size
        points = [point.point(width, height) for point in keypoints]
        result = engine.segment_object(prepared, points=points, point_labels=[int(p.positive) for p in keypoints],
                                       box=box, label=label or "object")
        return object_regions(controls, result, label, self.settings)

    def _segment_typed(self, prepared, controls: list[ControlSpec], texts: list[str],
                       boxes: list[tuple[list[float], str | None]]) -> list[Region]:
        """Every instance of the typed phrases; rectangles drawn as well are exemplars for them."""
        s = self.settings
        engine = self.state.engine
        outputs = []
        for control in controls:
            # A phrase naming a label (or one of its prompts) uses that label's prompts; any other phrase is the
            # prompt itself, labelled with the drawn rectangle's label if the control has it, else its first label.
            prompts, label_of = [], {}
            for text in texts:
                spec = control.label_for_text(text)
                for prompt in spec.prompts if spec else [" ".join(text.split())]:
                    label_of.setdefault(prompt, spec.value if spec else None)
                    prompts.append(prompt)
            drawn_spec = next((control.label(label) for _, label in boxes if label and control.label(label)), None)
            fallback = drawn_spec.value if drawn_spec else (control.labels[0].value if control.labels else None)
            result = engine.segment(prepared, prompts, boxes=[b for b, _ in boxes] or None,
                                    box_labels=[1] * len(boxes) if boxes else None,
                                    threshold=self._threshold([control]), mask_threshold=s.mask_threshold,
                                    min_area=s.min_area)
            mapping = {p: label_of.get(p) or fallback for p in result.prompts}
            outputs.extend(control_regions(control, result, s, mapping=mapping))
        return outputs

    def _select_object(self, prepared, controls: list[ControlSpec], box: list[float],
                       label: str | None) -> list[Region]:
        """The ONE object a smart rectangle selects. With a tracker, the box is its prompt, as in SAM's backends
        (`engine.segment_object(box=...)`). Without one, the box runs as an exemplar (with the drawn label's
        prompts when a control has that label, else alone), and the instance whose box overlaps it most wins."""
        s = self.settings
        engine = self.state.engine
        if _has_tracker(engine):
            return object_regions(controls, engine.segment_object(prepared, box=box, label=label or "object"),
                                  label, s)
        spec = next((c.label(label) for c in controls if label and c.label(label)), None)
        options = dict(boxes=[box], box_labels=[1], threshold=self._threshold(controls),
                       mask_threshold=s.mask_threshold, min_area=max(1, s.min_area))
        result = engine.segment(prepared, list(spec.prompts) if spec else None, **options)
        if not len(result) and spec:  # the label's words found nothing there: the box alone still may
            result = engine.segment(prepared, None, **options)
        best = best_box_match(result, box)
        if best is None:
            return []
        return object_regions(controls, result.select([best]), label, s)

    def _threshold(self, controls: list[ControlSpec]) -> float:
        """The lowest score threshold among `controls` (their own, else the backend's)."""
        return min(c.score_threshold if c.score_threshold is not None else self.settings.threshold
                   for c in controls) if controls else self.settings.threshold

    # Shared --------------------------------------------------------------------------------------------

    def _fetch_all(self, tasks, wanted: list[tuple[int, str]]) -> tuple[dict[tuple[int, str], bytes], dict[int, str]]:
        """Fetch each (task index, image key) once, in parallel; failures become per-task errors."""
        fetcher = self.state.fetcher(self.project_id)
        loaded: dict[tuple[int, str], bytes] = {}
        errors: dict[int, str] = {}
        references: dict[tuple[int, str], str] = {}
        for index, key in dict.fromkeys(wanted):
            data = tasks[index].get("data") if isinstance(tasks[index], dict) else None
            reference = data.get(key) if isinstance(data, dict) else None
            if not isinstance(reference, str):
                errors.setdefault(index, f"task has no image under data[{key!r}]")
            else:
                references[(index, key)] = reference
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, max(1, len(references)))) as pool:
            futures = {pool.submit(fetcher.fetch, ref): where for where, ref in references.items()}
            for future in concurrent.futures.as_completed(futures):
                where = futures[future]
                try:
                    loaded[where] = future.result()
                except litetext.LitetextError as error:
                    errors.setdefault(where[0], str(error))
        return loaded, errors

    def _response(self, tasks, regions, scores, errors) -> dict[str, Any]:
        """Label Studio's /predict answer: one entry per task, in order.

        A failed task's entry has an `error` and no `result`: Label Studio 1.2x then stores no prediction for it
        (and logs the entry), so the task is not marked predicted under this model version and the next
        Retrieve Predictions tries it again, instead of keeping an empty prediction that looks like "nothing here".
        """
        version = self.model_version
        results, reported = [], []
        for index, task in enumerate(tasks):
            if index in errors:
                task_id = task.get("id") if isinstance(task, dict) else None
                results.append({"model_version": version, "error": errors[index]})
                reported.append({"task": task_id, "index": index, "error": errors[index]})
                logger.warning("task %s: %s", task_id, errors[index])
                continue
            task_scores = scores[index]
            results.append({"result": regions[index], "score": float(np.mean(task_scores)) if task_scores else 0.0,
                            "model_version": version})
        return {"results": results, "errors": reported, "model_version": version}


def _checkpoint_name(name: str) -> str:
    """An alias or hub id as it is (`/` as `--`); a local checkpoint directory by its folder name."""
    if name.startswith(("/", ".", "~")) or name.count("/") > 1 or Path(name).is_dir():
        name = Path(name).name
    return name.replace("/", "--")


def _group_by_image(controls) -> dict[str, list[ControlSpec]]:
    groups: dict[str, list[ControlSpec]] = {}
    for control in controls:
        groups.setdefault(control.image_key, []).append(control)
    return groups


def best_box_match(result, box: Sequence[float]) -> int | None:
    """Index of the instance whose box has the highest IoU with `box` (pixel xyxy); ties go to the higher score."""
    if not len(result):
        return None
    boxes = np.asarray(result.boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = (float(v) for v in box)
    width = np.clip(np.minimum(boxes[:, 2], x2) - np.maximum(boxes[:, 0], x1), 0, None)
    height = np.clip(np.minimum(boxes[:, 3], y2) - np.maximum(boxes[:, 1], y1), 0, None)
    overlap = width * height
    union = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) + (x2 - x1) * (y2 - y1) - overlap
    iou = np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
    return int(np.lexsort((-np.asarray(result.scores), -iou))[0])


def _has_tracker(engine: Any) -> bool:
    return bool(getattr(engine, "has_tracker", False))


class NeedsTrackerError(litetext.InputError):
    """Keypoint clicks or a video came in, and the engine has no SAM3 tracker to answer them."""

    @classmethod
    def for_engine(cls, engine: Any, what_needs: str) -> NeedsTrackerError:
        """The error for `what_needs` ("keypoint clicks need", "video tracking needs"), saying what to load."""
        message = (f"{what_needs} SAM3's tracker, and this backend's model ({engine.info.model!r}) has none: "
                   "start the backend with --tracker sam3 (LITETEXT_TRACKER=sam3, i.e. litetext.load(model, "
                   'tracker="sam3")), or with a model that has one (sam3, or a checkpoint written by '
                   "`litetext models assemble`)")
        if what_needs.startswith("keypoint"):
            message += ". Meanwhile draw a smart rectangle around the object, or type a phrase"
        return cls(message)


def _describe(reference: str) -> str:
    """An image reference short enough for a message (data: URIs are long)."""
    return reference if len(reference) <= 120 else reference[:100] + "..."
