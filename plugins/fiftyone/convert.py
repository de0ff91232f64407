"""Conversions from `litetext.Result` to FiftyOne labels, and back to full-image masks.

FiftyOne stores an instance mask cropped to its detection's bounding box, with the box relative
``[x, y, width, height]`` in 0..1. Here the box is the model's box snapped outwards to whole pixels and
widened, where the mask spills over it, to contain every mask pixel: pasting the crop back at its box gives
exactly the engine's mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import fiftyone as fo
    import litetext


def pixel_box(box: Sequence[float], mask: np.ndarray | None, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Whole-pixel (x0, y0, x1, y1), x1/y1 exclusive, holding the pixel xyxy `box` and every pixel of `mask`."""
    width, height = image_size
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    x1, y1 = int(np.ceil(box[2])), int(np.ceil(box[3]))
    if mask is not None and mask.any():
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        x0, x1 = min(x0, int(cols[0])), max(x1, int(cols[-1]) + 1)
        y0, y1 = min(y0, int(rows[0])), max(y1, int(rows[-1]) + 1)
    x0, y0 = min(max(x0, 0), width - 1), min(max(y0, 0), height - 1)
    x1, y1 = min(max(x1, x0 + 1), width), min(max(y1, y0 + 1), height)
    return x0, y0, x1, y1


def relative_box(x0: int, y0: int, x1: int, y1: int, image_size: tuple[int, int]) -> list[float]:
    """FiftyOne's relative ``[x, y, w, h]`` for a whole-pixel box, chosen so that FiftyOne's own conversion
    back to pixels (``int(size * value)``) recovers exactly x0, y0, x1, y1."""
    width, height = image_size
    x, w = _exact_fraction(x0, x1, width)
    y, h = _exact_fraction(y0, y1, height)
    return [x, y, w, h]


def _exact_fraction(start: int, stop: int, size: int) -> tuple[float, float]:
    offset = start / size
    while int(size * offset) < start:
        offset = float(np.nextafter(offset, np.inf))
    extent = stop / size - offset
    while int(size * (offset + extent)) < stop:
        extent = float(np.nextafter(extent, np.inf))
    return offset, extent


def to_fiftyone_detections(
    result: litetext.Result,
    *,
    label_map: Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> fo.Detections:
    """One `fo.Detection` per instance: label (the prompt, or `label_map[prompt]`), relative box, confidence,
    and the instance mask cropped to the box; in a tracked video frame also ``index``, the object's id, which
    FiftyOne's App and its SAM video models use to link one object's detections across frames. `attributes`
    are set on every detection."""
    import fiftyone as fo

    detections = []
    for instance in result:
        x0, y0, x1, y1 = pixel_box(instance.box, instance.mask, result.image_size)
        label = (label_map or {}).get(instance.prompt, instance.prompt)
        detection = fo.Detection(
            label=label,
            bounding_box=relative_box(x0, y0, x1, y1, result.image_size),
            confidence=float(instance.score),
            mask=np.ascontiguousarray(instance.mask[y0:y1, x0:x1]),
            index=instance.object_id,
            **dict(attributes or {}),
        )
        if label != instance.prompt:
            detection["prompt"] = instance.prompt
        detections.append(detection)
    return fo.Detections(detections=detections)


def semantic_targets(result_prompts: Sequence[str], label_map: Mapping[str, str] | None = None) -> dict[int, str]:
    """The ``mask_targets`` of `to_fiftyone_segmentation`: pixel value -> class name (0 is background)."""
    return {i + 1: (label_map or {}).get(p, p) for i, p in enumerate(result_prompts)}


def to_fiftyone_segmentation(result: litetext.Result) -> fo.Segmentation:
    """A semantic `fo.Segmentation` of the whole image: 0 background, k+1 where prompt k's instances lie
    (`Result.semantic_map()`); pair it with `semantic_targets(result.prompts)` as the field's mask targets."""
    import fiftyone as fo

    return fo.Segmentation(mask=result.semantic_map())


def detection_to_mask(detection: fo.Detection, image_size: tuple[int, int]) -> np.ndarray:
    """Paste a detection's cropped mask back into a boolean (height, width) image mask at its box."""
    width, height = image_size
    x, y, w, h = detection.bounding_box
    x0, y0 = int(width * x), int(height * y)
    x1, y1 = int(width * (x + w)), int(height * (y + h))
    full = np.zeros((height, width), dtype=bool)
    crop = np.asarray(detection.mask, dtype=bool)
    if crop.shape != (y1 - y0, x1 - x0):
        raise ValueError(f"detection mask is {crop.shape[1]}x{crop.shape[0]} but its box is {x1 - x0}x{y1 - y0} "
                         "pixels: it was not written by to_fiftyone_detections")
    full[y0:y1, x0:x1] = crop
    return full
