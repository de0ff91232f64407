"""`LitetextModel`: the Label Studio ML backend model, shaped like `LabelStudioMLBase` (setup, predict, fit).

Automatic pre-annotation: every label of every predicted control is a prompt; all prompts of a task run as one
batched decode over one image encoding, and the tasks of a request go through `engine.segment_batch`.
Interactive pre-annotation: a phrase typed in a `TextArea`, or a rectangle the annotator draws (an exemplar
box), returns regions for that prompt only.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

import litetext

from .config import ControlSpec, LabelConfigError, ParsedConfig, parse_label_config
from .fetch import ImageFetcher
from .rle import mask_to_brush_rle
from .settings import BackendSettings

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
        if self.label_config:
            cached_config(self.label_config)
        _ = self.state.engine  # load now, not on the first prediction

    @property
    def parsed_config(self) -> ParsedConfig:
        if not self.label_config:
            raise LabelConfigError("no labelling config was sent (label_config is empty)")
        return cached_config(self.label_config)

    @property
    def model_version(self) -> str:
        """Names the checkpoint and the thresholds, e.g. `litetext-s0-16-score0.5-mask0.5`."""
        name = self.state.engine.info.model
        if name.startswith(("/", ".", "~")) or name.count("/") > 1 or Path(name).is_dir():
            name = Path(name).name  # a local checkpoint directory: its folder name
        name = name.replace("/", "--")
        s = self.settings
        version = f"litetext-{name}-score{s.threshold:g}-mask{s.mask_threshold:g}"
        if s.max_instances is not None:
            version += f"-max{s.max_instances}"
        if s.min_area:
            version += f"-area{s.min_area}"
        return version

    def predict(self, tasks: list[dict[str, Any]], context: dict[str, Any] | None = None,
                **kwargs: Any) -> dict[str, Any]:
        """Predictions for `tasks`, in order: `{"results": [...], "errors": [...]}`.

        Each result is `{"result": regions, "score": mean score, "model_version": ...}`; a task whose image
        could not be read gets an empty result with an `error` and is listed in `errors`; the others go on.
        """
        parsed = self.parsed_config
        interactive = _interactive_items(context)
        if interactive:
            return self._predict_interactive(tasks, parsed, interactive)
        return self._predict_automatic(tasks, parsed)

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
        )
        for item in items:
            index, image_key, controls, _ = runnable[item.index]
            if not item.ok:
                errors.setdefault(index, f"{_describe(tasks[index]['data'][image_key])}: {item.error}")
                continue
            for control in controls:
                found = self._regions(tasks[index], control, item.result)
                regions[index].extend(r for r, _ in found)
                scores[index].extend(score for _, score in found)
        return self._response(tasks, regions, scores, errors)

    # Interactive ---------------------------------------------------------------------------------------

    def _predict_interactive(self, tasks, parsed: ParsedConfig, context_items) -> dict[str, Any]:
        regions: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(tasks))}
        scores: dict[int, list[float]] = {i: [] for i in range(len(tasks))}
        texts = [t for item in context_items if item.get("type") == "textarea"
                 for t in (item.get("value") or {}).get("text") or [] if isinstance(t, str) and t.strip()]
        drawn = [item for item in context_items if item.get("type") in ("rectanglelabels", "rectangle")]
        if not texts and not drawn:
            raise LabelConfigError("interactive context has no text prompt (TextArea) and no rectangle to use")
        image_keys = {c.image_key for c in parsed.active}
        loaded, errors = self._fetch_all(tasks, [(i, key) for i in range(len(tasks)) for key in image_keys])
        for index in range(len(tasks)):
            for image_key in image_keys:
                if (index, image_key) not in loaded:
                    continue
                controls = [c for c in parsed.active if c.image_key == image_key]
                try:
                    found = self._interactive_task(tasks[index], loaded[(index, image_key)], controls, texts, drawn)
                except litetext.LitetextError as error:
                    errors.setdefault(index, f"{_describe(tasks[index]['data'][image_key])}: {error}")
                    continue
                regions[index].extend(r for r, _ in found)
                scores[index].extend(score for _, score in found)
        return self._response(tasks, regions, scores, errors)

    def _interactive_task(self, task, image: bytes, controls: list[ControlSpec], texts: list[str],
                          drawn: list[dict[str, Any]]) -> list[tuple[dict[str, Any], float]]:
        s = self.settings
        engine = self.state.engine
        prepared = engine.prepare_image(image)
        width, height = prepared.size
        boxes, drawn_labels = [], []
        for item in drawn:
            value = item.get("value") or {}
            try:
                x, y = float(value["x"]) * width / 100, float(value["y"]) * height / 100
                w, h = float(value["width"]) * width / 100, float(value["height"]) * height / 100
            except (KeyError, TypeError, ValueError):
                raise litetext.BoxError(f"drawn rectangle has no usable x/y/width/height: {value!r}") from None
            boxes.append([max(0.0, x), max(0.0, y), min(float(width), x + w), min(float(height), y + h)])
            drawn_labels.extend(value.get("rectanglelabels") or [])
        # Which label the regions get: a typed phrase naming a label uses that label's prompts; otherwise the
        # phrase itself is the prompt and the label is the drawn rectangle's, else each control's first label.
        outputs = []
        for control in controls:
            prompts, label_of = [], {}
            for text in texts:
                spec = control.label_for_text(text)
                for prompt in spec.prompts if spec else [" ".join(text.split())]:
                    label_of.setdefault(prompt, spec.value if spec else None)
                    prompts.append(prompt)
            drawn_spec = next((control.label(v) for v in drawn_labels if control.label(v)), None)
            fallback = drawn_spec.value if drawn_spec else (control.labels[0].value if control.labels else None)
            if not prompts and drawn_spec:  # a box alone: the drawn label's prompts
                prompts = list(drawn_spec.prompts)
                label_of = {p: drawn_spec.value for p in prompts}
            # (a box whose label this control lacks is a visual-only query, labelled with the first label)
            result = engine.segment(prepared, prompts or None, boxes=boxes or None,
                                    box_labels=[1] * len(boxes) if boxes else None,
                                    threshold=control.score_threshold if control.score_threshold is not None
                                    else s.threshold, mask_threshold=s.mask_threshold, min_area=s.min_area)
            mapping = {p: label_of.get(p) or fallback for p in result.prompts}
            outputs.extend(self._regions(task, control, result, mapping=mapping))
        return outputs

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

    def _regions(self, task, control: ControlSpec, result, *, mapping: dict[str, str | None] | None = None):
        """Label Studio regions for `control` from `result`: (region, score) pairs, empty masks dropped."""
        s = self.settings
        if mapping is None:
            mapping = {}
            for spec in control.labels:
                for prompt in spec.prompts:
                    mapping.setdefault(prompt, spec.value)
        wanted = [p for p in result.prompts if mapping.get(p)]
        threshold = control.score_threshold if control.score_threshold is not None else s.threshold
        result = result.filter(min_score=threshold, prompts=wanted, min_area=max(1, s.min_area),
                               max_instances=control.max_instances or s.max_instances)
        width, height = result.image_size
        polygons = result.to_polygons(tolerance=s.polygon_tolerance) if control.tag == "PolygonLabels" else None
        out = []
        for i, instance in enumerate(result):
            label = mapping[instance.prompt]
            base = {"from_name": control.name, "to_name": control.to_name, "type": control.region_type,
                    "original_width": width, "original_height": height, "image_rotation": 0,
                    "score": round(instance.score, 6)}
            if control.tag == "BrushLabels":
                values = [{"format": "rle", "rle": brush_rle(instance.mask), "brushlabels": [label]}]
            elif control.tag == "RectangleLabels":
                x1, y1, x2, y2 = instance.box
                values = [{"x": 100 * x1 / width, "y": 100 * y1 / height, "width": 100 * (x2 - x1) / width,
                           "height": 100 * (y2 - y1) / height, "rotation": 0, "rectanglelabels": [label]}]
            else:
                values = [{"points": [[100 * p[k] / width, 100 * p[k + 1] / height] for k in range(0, len(p), 2)],
                           "closed": True, "polygonlabels": [label]} for p in polygons[i]]
            for part, value in enumerate(values):
                region = {**base, "id": _region_id(task, control.name, i, part), "value": value}
                out.append((region, instance.score))
        return out

    def _response(self, tasks, regions, scores, errors) -> dict[str, Any]:
        version = self.model_version
        results, reported = [], []
        for index, task in enumerate(tasks):
            task_scores = scores[index]
            prediction = {"result": regions[index],
                          "score": float(np.mean(task_scores)) if task_scores else 0.0,
                          "model_version": version}
            if index in errors:
                task_id = task.get("id") if isinstance(task, dict) else None
                prediction["error"] = errors[index]
                reported.append({"task": task_id, "index": index, "error": errors[index]})
                logger.warning("task %s: %s", task_id, errors[index])
            results.append(prediction)
        return {"results": results, "errors": reported, "model_version": version}


def brush_rle(mask: np.ndarray) -> list[int]:
    """Label Studio's brush RLE of a boolean (height, width) mask (same output as the SDK's `mask2rle`)."""
    return mask_to_brush_rle(mask)


def _group_by_image(controls) -> dict[str, list[ControlSpec]]:
    groups: dict[str, list[ControlSpec]] = {}
    for control in controls:
        groups.setdefault(control.image_key, []).append(control)
    return groups


def _interactive_items(context: Any) -> list[dict[str, Any]]:
    if not isinstance(context, dict):
        return []
    items = context.get("result")
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _region_id(task: Any, control: str, index: int, part: int) -> str:
    task_id = task.get("id") if isinstance(task, dict) else None
    return hashlib.blake2b(f"{task_id}/{control}/{index}/{part}".encode(), digest_size=5).hexdigest()


def _describe(reference: str) -> str:
    """An image reference short enough for a message (data: URIs are long)."""
    return reference if len(reference) <= 120 else reference[:100] + "..."
