"""Segment the samples of a FiftyOne collection with text prompts: the work behind the operator.

All prompts of a sample are decoded together against one encoding of its image (`Engine.segment_batch`), and
the shared engine's caches make a re-run with new prompts skip the vision encoder for images it has seen.
A video is tracked in one pass for all its prompts (`Engine.track`), and its frames get `frames.<field>`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import litetext

from .convert import semantic_targets, to_fiftyone_detections, to_fiftyone_segmentation

logger = logging.getLogger(__name__)

#: Failures listed in a run summary (the count is always complete).
MAX_REPORTED_FAILURES = 20


@dataclass(frozen=True, kw_only=True)
class SegmentOptions(litetext.SegmentOptions):
    """What to segment with (`litetext.SegmentOptions`'s model and settings) and where to write it.

    `label_map` maps a prompt to the class name written as the detections' label (default: the prompt).
    `semantic_field`, when set, also gets a `fo.Segmentation` per sample (images only). With
    `overwrite=False` samples whose `label_field` is already set (for a video: on any frame) are skipped.
    `tracker` (`litetext.SegmentOptions`'s) is the checkpoint whose tracker follows objects through videos
    (`litetext.load`'s `tracker`; None: the model's own, as `sam3` and `tiny-random-tracker` have).
    """

    prompts: list[str]
    label_field: str = "litetext"
    overwrite: bool = False
    semantic_field: str | None = None
    label_map: dict[str, str] | None = None


@dataclass
class RunSummary:
    """What a run did: counts, the first failures (sample id, file, error) and the wall time.

    `todo` is how many samples the run set out to segment (`total` less those skipped as already labelled);
    `done` how many of them it has finished, either way. For videos, `frames` counts the frames labelled,
    `objects` the objects tracked (per video), `instances` their detections over all frames, and
    `video_frame` / `video_frames` say how far the video in progress is (its frame count may be unknown).
    """

    total: int = 0
    todo: int = 0
    segmented: int = 0
    skipped_existing: int = 0
    failed: int = 0
    instances: int = 0
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    media_type: str = "image"
    frames: int = 0
    objects: int = 0
    video_frame: int = 0
    video_frames: int | None = None

    @property
    def done(self) -> int:
        return self.segmented + self.failed

    @property
    def progress(self) -> float:
        """The fraction of the run done, counting the frames of the video in progress."""
        if not self.todo:
            return 1.0
        partial = min(1.0, self.video_frame / self.video_frames) if self.video_frames else 0.0
        return min(1.0, (self.done + partial) / self.todo)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def message(self) -> str:
        if self.media_type == "video":
            text = (f"tracked {self.segmented} of {self.total} videos ({self.frames} frames, {self.objects} "
                    f"objects, {self.instances} instances)")
        else:
            text = f"segmented {self.segmented} of {self.total} samples ({self.instances} instances)"
        if self.skipped_existing:
            text += f", skipped {self.skipped_existing} already labelled"
        if self.failed:
            text += f", {self.failed} failed (missing or unreadable {self.media_type})"
        return text


def parse_prompt_specs(items: str | Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """Split ``"prompt"`` or ``"prompt=class name"`` items into prompts and a prompt -> class map.

    A single string may hold several items separated by commas or newlines.
    """
    if isinstance(items, str):
        items = items.replace("\n", ",").split(",")
    prompts: list[str] = []
    label_map: dict[str, str] = {}
    for item in items:
        prompt, _, label = str(item).partition("=")
        prompt, label = " ".join(prompt.split()), " ".join(label.split())
        if not prompt:
            continue
        if prompt not in prompts:
            prompts.append(prompt)
        if label:
            label_map[prompt] = label
    return prompts, label_map


def classes_from_field(collection: Any, field_name: str) -> list[str]:
    """The class names of an existing label field: its declared classes, else the labels it holds."""
    import fiftyone as fo

    declared = collection.classes.get(field_name) if hasattr(collection, "classes") else None
    if declared:
        return list(declared)
    schema_field = collection.get_field(field_name)
    if schema_field is None:
        raise ValueError(f"the dataset has no field {field_name!r} to take classes from")
    document_type = getattr(schema_field, "document_type", None)
    if document_type is None or not issubclass(document_type, fo.Label):
        raise ValueError(f"field {field_name!r} is not a label field")
    if issubclass(document_type, fo.Segmentation):
        targets = collection.mask_targets.get(field_name) or collection.default_mask_targets or {}
        return [str(v) for k, v in sorted(targets.items()) if str(k) not in ("0", "#000000")]
    list_field = getattr(document_type, "_LABEL_LIST_FIELD", None)
    path = f"{field_name}.{list_field}.label" if list_field else f"{field_name}.label"
    return sorted(str(v) for v in collection.distinct(path) if v)


def segment_samples(
    collection: Any,
    options: SegmentOptions,
    *,
    progress: Callable[[int, int], None] | None = None,
    engine: Any = None,
) -> RunSummary:
    """Segment every image sample of `collection` with `options.prompts`, writing `fo.Detections` to
    `options.label_field` batch by batch (and the image metadata of samples that lack it); or track every
    video sample, writing `frames.<label_field>` video by video (`iter_track_samples`). A missing or
    unreadable image or video is logged and counted, the run goes on. `progress(done, todo)` is called after
    each batch. Returns a `RunSummary`."""
    summary = RunSummary()
    for summary in iter_segment_samples(collection, options, engine=engine):
        if progress is not None and summary.todo:
            progress(summary.done, summary.todo)
    return summary


def iter_segment_samples(collection: Any, options: SegmentOptions, *, engine: Any = None) -> Iterator[RunSummary]:
    """`segment_samples` as a generator: yields the run's `RunSummary` after each written batch (the last
    one is the final summary; it is yielded once even when there is nothing to do)."""
    import fiftyone as fo

    if collection.media_type == "video":
        yield from iter_track_samples(collection, options, engine=engine)
        return
    started = time.perf_counter()
    if collection.media_type != "image":
        raise ValueError(f"litetext segments images and videos; this collection's media type is "
                         f"{collection.media_type!r}")
    prompts = litetext.normalize_prompts(options.prompts)
    label_map = {" ".join(k.split()): v for k, v in (options.label_map or {}).items()}
    _check_field(collection, options.label_field, "Detections")
    if options.semantic_field:
        _check_field(collection, options.semantic_field, "Segmentation")
    summary = RunSummary(total=len(collection))
    todo = collection
    if not options.overwrite and collection.has_field(options.label_field):
        todo = collection.exists(options.label_field, False)
    sample_ids, filepaths, metadata = todo.values(["id", "filepath", "metadata"])
    summary.todo = len(sample_ids)
    summary.skipped_existing = summary.total - summary.todo
    if not sample_ids:
        summary.seconds = time.perf_counter() - started
        yield summary
        return
    if engine is None:
        engine = options.engine()
    pending: dict[str, dict[str, Any]] = {}
    items = engine.segment_batch(filepaths, prompts, batch_size=options.batch_size, **options.filters())
    for item in items:
        sample_id = sample_ids[item.index]
        if item.ok:
            labels = {options.label_field: to_fiftyone_detections(item.result, label_map=label_map)}
            if options.semantic_field:
                labels[options.semantic_field] = to_fiftyone_segmentation(item.result)
            if metadata[item.index] is None:  # the App and FiftyOne's utilities read image sizes from it
                try:
                    labels["metadata"] = fo.ImageMetadata.build_for(filepaths[item.index])
                except Exception as error:  # FiftyOne's reader may refuse what litetext decoded: labels matter more
                    logger.warning("litetext: no metadata for sample %s: %s", sample_id, error)
            pending[sample_id] = labels
            summary.segmented += 1
            summary.instances += len(item.result)
        else:
            summary.failed += 1
            logger.warning("litetext: skipped sample %s (%s): %s", sample_id, item.source, item.error)
            if len(summary.failures) < MAX_REPORTED_FAILURES:
                summary.failures.append({"id": sample_id, "filepath": str(item.source), "error": str(item.error)})
        if summary.done % options.batch_size == 0 or summary.done == summary.todo:
            _write(todo, pending)
            pending = {}
            if summary.done == summary.todo:
                _set_semantic_targets(collection, options, prompts, label_map)
            summary.seconds = time.perf_counter() - started
            yield summary


def iter_track_samples(collection: Any, options: SegmentOptions, *, engine: Any = None) -> Iterator[RunSummary]:
    """Track `options.prompts` through every video sample of `collection`, all prompts in one pass per video
    (`Engine.track`), and write each tracked frame's `fo.Detections` (``index`` = object id; empty where nothing
    was found) to ``frames.<label_field>``, one video at a time. Yields the `RunSummary` as frames are
    tracked (about ten times per video) and after each video. A video that cannot be read is logged, counted
    and left without labels; the run goes on. The engine must have a tracker (`options.tracker`)."""
    import fiftyone as fo

    started = time.perf_counter()
    if options.semantic_field:
        raise ValueError("a semantic segmentation is written for images only; a video's frame detections carry "
                         "their instance masks")
    prompts = litetext.normalize_prompts(options.prompts)
    label_map = {" ".join(k.split()): v for k, v in (options.label_map or {}).items()}
    frame_field = f"frames.{options.label_field}"
    _check_field(collection, options.label_field, "Detections", frames=True)
    summary = RunSummary(total=len(collection), media_type="video")
    todo = collection
    if not options.overwrite and collection.has_field(frame_field):
        todo = collection.exists(frame_field, False)
    clips = collection.has_field("support")  # a clips view: each sample is a frame range of its video
    sample_ids, filepaths, metadata = todo.values(["id", "filepath", "metadata"])
    supports = todo.values("support") if clips else [None] * len(sample_ids)
    summary.todo = len(sample_ids)
    summary.skipped_existing = summary.total - summary.todo
    if not sample_ids:
        summary.seconds = time.perf_counter() - started
        yield summary
        return
    engine = require_tracker(engine if engine is not None else options.engine(), options.model)
    for sample_id, filepath, sample_metadata, support in zip(sample_ids, filepaths, metadata, supports):
        labels: dict[int, Any] = {}
        objects: set[int] = set()
        try:
            source = litetext.open_video(filepath)
            start_frame, max_frames = frame_range(support)
            summary.video_frames = _frames_to_track(source.frame_count, start_frame, max_frames)
            step = max(1, (summary.video_frames or 100) // 10)
            for tracked in engine.track(source, prompts, threshold=options.threshold, start_frame=start_frame,
                                        max_frames=max_frames):
                labels[tracked.index + 1] = to_fiftyone_detections(tracked.result, label_map=label_map)
                objects.update(int(i) for i in tracked.result.object_ids)
                summary.video_frame += 1
                if summary.video_frame % step == 0 and summary.video_frame != summary.video_frames:
                    summary.seconds = time.perf_counter() - started
                    yield summary
        except litetext.LitetextError as error:
            summary.failed += 1
            logger.warning("litetext: skipped video %s (%s): %s", sample_id, filepath, error)
            if len(summary.failures) < MAX_REPORTED_FAILURES:
                summary.failures.append({"id": sample_id, "filepath": str(filepath), "error": str(error)})
        else:
            sample = todo[sample_id]
            if labels:  # FiftyOne refuses an empty frames dict
                sample.add_labels(labels, label_field=options.label_field)
            if sample_metadata is None and not clips:  # the App reads a video's frame rate and size from it
                try:
                    sample.metadata = fo.VideoMetadata.build_for(filepath)
                except Exception as error:  # it needs ffprobe; the labels matter more
                    logger.warning("litetext: no metadata for video %s: %s", sample_id, error)
            sample.save()
            summary.segmented += 1
            summary.frames += len(labels)
            summary.objects += len(objects)
            summary.instances += sum(len(d.detections) for d in labels.values())
        summary.video_frame, summary.video_frames = 0, None
        summary.seconds = time.perf_counter() - started
        yield summary


#: What to do when a video is asked of a model without a tracker.
NO_TRACKER_FOR_VIDEO = ("{model} has no tracker to follow objects through a video: compose it with SAM3's "
                        "tracker (tracker 'sam3'), or choose a model that has one ('sam3'; offline, "
                        "'tiny-random-tracker')")


def require_tracker(engine: litetext.Engine, model: str) -> litetext.Engine:
    """`engine`, if it has a tracker; else `litetext.NoTrackerError` naming both ways to get one."""
    if not engine.has_tracker:
        raise litetext.NoTrackerError(NO_TRACKER_FOR_VIDEO.format(model=model))
    return engine


def frame_range(support: Sequence[int] | None) -> tuple[int, int | None]:
    """`Engine.track`'s ``start_frame`` (0-based) and ``max_frames`` for a clip's 1-based, inclusive frame
    ``support`` ``[first, last]``; the whole video for None."""
    if not support:
        return 0, None
    first, last = int(support[0]), int(support[1])
    return first - 1, last - first + 1


def _frames_to_track(frame_count: int | None, start_frame: int, max_frames: int | None) -> int | None:
    if frame_count is None:
        return max_frames
    remaining = max(0, frame_count - start_frame)
    return remaining if max_frames is None else min(remaining, max_frames)


def _set_semantic_targets(collection: Any, options: SegmentOptions, prompts: list[str],
                          label_map: Mapping[str, str]) -> None:
    if options.semantic_field:
        dataset = collection._dataset
        dataset.mask_targets = {**dataset.mask_targets,
                                options.semantic_field: semantic_targets(prompts, label_map)}
        dataset.save()


def _write(collection: Any, labels_by_id: Mapping[str, Mapping[str, Any]]) -> None:
    """Write each sample's fields (samples may differ in which fields they have) with one call per field."""
    by_field: dict[str, dict[str, Any]] = {}
    for sample_id, labels in labels_by_id.items():
        for field_name, value in labels.items():
            by_field.setdefault(field_name, {})[sample_id] = value
    for field_name, values in by_field.items():
        collection.select(list(values)).set_values(field_name, values, key_field="id")


def _check_field(collection: Any, field_name: str, kind: str, *, frames: bool = False) -> None:
    """Refuse a field name FiftyOne would reject, or an existing field (a frame field, with `frames`) holding
    another label type."""
    if not field_name or field_name.startswith("_") or "." in field_name:
        raise ValueError(f"{field_name!r} is not a usable field name: use letters, digits and underscores")
    path = f"frames.{field_name}" if frames else field_name
    existing = collection.get_field(path) if collection.has_field(path) else None
    if existing is None:
        return
    document_type = getattr(existing, "document_type", None)
    if document_type is None or document_type.__name__ != kind:
        found = document_type.__name__ if document_type is not None else type(existing).__name__
        raise ValueError(f"field {path!r} already holds {found}, not {kind}: choose another output field")


def label_fields(collection: Any, kinds: Sequence[str] | None = None) -> list[str]:
    """Names of the collection's label fields (optionally only those of the given label class names); for a
    video collection also its frame label fields, as ``frames.<name>``."""
    import fiftyone as fo

    schemas = [("", collection.get_field_schema(embedded_doc_type=fo.Label))]
    if collection.media_type == "video":
        schemas.append(("frames.", collection.get_frame_field_schema(embedded_doc_type=fo.Label)))
    names = []
    for prefix, schema in schemas:
        for name, schema_field in schema.items():
            if kinds is None or schema_field.document_type.__name__ in kinds:
                names.append(prefix + name)
    return sorted(names)
