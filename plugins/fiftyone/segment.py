"""Segment the samples of a FiftyOne collection with text prompts: the work behind the operator.

All prompts of a sample are decoded together against one encoding of its image (`Engine.segment_batch`), and
the shared engine's caches make a re-run with new prompts skip the vision encoder for images it has seen.
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
    `semantic_field`, when set, also gets a `fo.Segmentation` per sample. With `overwrite=False` samples
    whose `label_field` is already set are skipped.
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
    `done` how many of them it has finished, either way.
    """

    total: int = 0
    todo: int = 0
    segmented: int = 0
    skipped_existing: int = 0
    failed: int = 0
    instances: int = 0
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.segmented + self.failed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def message(self) -> str:
        text = f"segmented {self.segmented} of {self.total} samples ({self.instances} instances)"
        if self.skipped_existing:
            text += f", skipped {self.skipped_existing} already labelled"
        if self.failed:
            text += f", {self.failed} failed (missing or unreadable image)"
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
    `options.label_field` batch by batch (and the image metadata of samples that lack it). A missing or
    unreadable image is logged and counted, the run goes on. `progress(done, todo)` is called after each
    batch. Returns a `RunSummary`."""
    summary = RunSummary()
    for summary in iter_segment_samples(collection, options, engine=engine):
        if progress is not None and summary.todo:
            progress(summary.done, summary.todo)
    return summary


def iter_segment_samples(collection: Any, options: SegmentOptions, *, engine: Any = None) -> Iterator[RunSummary]:
    """`segment_samples` as a generator: yields the run's `RunSummary` after each written batch (the last
    one is the final summary; it is yielded once even when there is nothing to do)."""
    import fiftyone as fo

    started = time.perf_counter()
    if collection.media_type != "image":
        raise ValueError(f"litetext segments images; this collection's media type is {collection.media_type!r}")
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


def _check_field(collection: Any, field_name: str, kind: str) -> None:
    """Refuse a field name FiftyOne would reject, or an existing field holding another label type."""
    if not field_name or field_name.startswith("_") or "." in field_name:
        raise ValueError(f"{field_name!r} is not a usable field name: use letters, digits and underscores")
    existing = collection.get_field(field_name) if collection.has_field(field_name) else None
    if existing is None:
        return
    document_type = getattr(existing, "document_type", None)
    if document_type is None or document_type.__name__ != kind:
        found = document_type.__name__ if document_type is not None else type(existing).__name__
        raise ValueError(f"field {field_name!r} already holds {found}, not {kind}: choose another output field")


def label_fields(collection: Any, kinds: Sequence[str] | None = None) -> list[str]:
    """Names of the collection's label fields (optionally only those of the given label class names)."""
    import fiftyone as fo

    names = []
    for name, schema_field in collection.get_field_schema(embedded_doc_type=fo.Label).items():
        document_type = schema_field.document_type
        if kinds is None or document_type.__name__ in kinds:
            names.append(name)
    return sorted(names)
