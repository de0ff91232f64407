"""litetext results as Label Studio regions: brush RLE, rectangles or polygons for an image control, one
`videorectangle` per tracked object; every region gets a fresh id.

Each function returns (region, score) pairs: the region as Label Studio's /predict answer holds it, and the score
that goes into the task's mean score.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .config import ControlSpec, VideoSpec
from .rle import mask_to_brush_rle

if TYPE_CHECKING:
    from litetext import Result

    from .settings import BackendSettings
    from .video import Track

#: A Label Studio region and its instance's score.
Region = tuple[dict[str, Any], float]


def new_region_id() -> str:
    """A fresh region id: Label Studio keys regions by id within an annotation, so ids of two predictions (two
    clicks on one task, or a prediction merged into an annotation) must never collide."""
    return uuid.uuid4().hex[:10]


def prompt_labels(control: ControlSpec) -> dict[str, str]:
    """Each prompt of `control`'s labels and the label it finds (the first label that has the prompt)."""
    mapping: dict[str, str] = {}
    for spec in control.labels:
        for prompt in spec.prompts:
            mapping.setdefault(prompt, spec.value)
    return mapping


def control_regions(control: ControlSpec, result: Result, settings: BackendSettings, *,
                    mapping: Mapping[str, str | None] | None = None) -> list[Region]:
    """`result`'s instances as `control`'s regions, kept by the control's score threshold and `max_instances`
    (else the backend's) and `min_area`; empty masks are dropped. `mapping` names the label of each prompt
    (default: `prompt_labels(control)`); instances of a prompt it has no label for are left out."""
    if mapping is None:
        mapping = prompt_labels(control)
    wanted = [p for p in result.prompts if mapping.get(p)]
    threshold = control.score_threshold if control.score_threshold is not None else settings.threshold
    result = result.filter(min_score=threshold, prompts=wanted, min_area=max(1, settings.min_area),
                           max_instances=control.max_instances or settings.max_instances)
    return image_regions(control, result, [mapping[instance.prompt] for instance in result],
                         polygon_tolerance=settings.polygon_tolerance)


def object_regions(controls: Sequence[ControlSpec], result: Result, label: str | None,
                   settings: BackendSettings) -> list[Region]:
    """`result`'s instances (one selected object) in every output control, under the annotator's label if the
    control has it, else under the control's first label. Empty masks are dropped."""
    result = result.filter(min_area=max(1, settings.min_area))
    outputs = []
    for control in controls:
        spec = control.label(label) if label else None
        value = spec.value if spec else (control.labels[0].value if control.labels else None)
        if value is not None:
            outputs.extend(image_regions(control, result, [value] * len(result),
                                         polygon_tolerance=settings.polygon_tolerance))
    return outputs


def image_regions(control: ControlSpec, result: Result, labels: Sequence[str], *,
                  polygon_tolerance: float = 1.0) -> list[Region]:
    """Every instance of `result` as `control`'s region type, labelled `labels[i]`: a brush RLE, a rectangle, or a
    polygon per outer contour (simplified by `polygon_tolerance` pixels). Coordinates are percent of the image."""
    width, height = result.image_size
    polygons = result.to_polygons(tolerance=polygon_tolerance) if control.tag == "PolygonLabels" else None
    out = []
    for i, (instance, label) in enumerate(zip(result, labels)):
        base = {"from_name": control.name, "to_name": control.to_name, "type": control.region_type,
                "original_width": width, "original_height": height, "image_rotation": 0,
                "score": round(instance.score, 6), "readonly": False}
        if control.tag == "BrushLabels":
            values = [{"format": "rle", "rle": mask_to_brush_rle(instance.mask), "brushlabels": [label]}]
        elif control.tag == "RectangleLabels":
            x1, y1, x2, y2 = instance.box
            values = [{"x": 100 * x1 / width, "y": 100 * y1 / height, "width": 100 * (x2 - x1) / width,
                       "height": 100 * (y2 - y1) / height, "rotation": 0, "rectanglelabels": [label]}]
        else:
            values = [{"points": [[100 * p[k] / width, 100 * p[k + 1] / height] for k in range(0, len(p), 2)],
                       "closed": True, "polygonlabels": [label]} for p in polygons[i]]
        for value in values:
            out.append(({**base, "id": new_region_id(), "value": value}, instance.score))
    return out


def video_regions(spec: VideoSpec, tracks: Iterable[Track], label_of: Mapping[str, str], *, frames_count: int,
                  duration: float) -> list[Region]:
    """One `videorectangle` region per track, its keyframes as `value.sequence`, labelled by its prompt's label.
    `frames_count` and `duration` (seconds) describe the whole video, as Label Studio's own regions do."""
    out = []
    for track in tracks:
        value = {"framesCount": frames_count, "duration": duration, "sequence": track.keyframes,
                 "labels": [label_of[track.prompt]]}
        region = {"id": new_region_id(), "from_name": spec.name, "to_name": spec.to_name,
                  "type": "videorectangle", "score": round(track.score, 6), "readonly": False, "value": value}
        out.append((region, track.score))
    return out
