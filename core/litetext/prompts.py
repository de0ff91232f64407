"""Prompts and their validation, below everything that uses them: text prompts, exemplar boxes, thresholds and
the object prompt of clicks. Each check raises a `PromptError`, `BoxError` or `InputError` naming the argument
and the value."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import BoxError, InputError, PromptError

#: Tokens per prompt: Sam3Processor always pads text to this length, so litetext does too.
TEXT_LENGTH = 32
#: Prompt used for box-only (visual) queries, as Sam3Processor does.
VISUAL_PROMPT = "visual"


def normalize_prompts(prompts: str | Sequence[str] | None) -> list[str]:
    """Validate prompts: one noun phrase or a list; strips whitespace, drops duplicates, keeps order."""
    if isinstance(prompts, (str, bytes)):
        prompts = [prompts]
    if prompts is None or len(prompts) == 0:
        raise PromptError("no prompt given: pass at least one noun phrase, e.g. 'red car'")
    cleaned: list[str] = []
    for prompt in prompts:
        if isinstance(prompt, bytes):
            try:
                prompt = prompt.decode("utf-8")
            except UnicodeDecodeError:
                raise PromptError(f"prompt {prompt[:40]!r} is not valid UTF-8 text") from None
        if not isinstance(prompt, str):
            raise PromptError(f"prompts must be text, got {type(prompt).__name__}")
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates, e.g. from JSON "\udcff"
            raise PromptError(f"prompt {prompt[:40]!r} is not valid UTF-8 text") from None
        prompt = " ".join(prompt.split())
        if not prompt:
            raise PromptError("a prompt is empty or blank: every prompt must name something, e.g. 'person'")
        if prompt not in cleaned:
            cleaned.append(prompt)
    return cleaned


def split_prompts(text: str | None, separators: str = ",\n") -> list[str]:
    """Prompts typed in one text box: split on `separators` (commas and newlines by default), then
    validated like `normalize_prompts` (blanks dropped, duplicates removed; none at all is a `PromptError`)."""
    pattern = "[" + re.escape(separators) + "]"
    return normalize_prompts([part for part in re.split(pattern, text or "") if part.strip()])


def resolve_prompts(prompts: str | Sequence[str] | None, boxes: Sequence[Any] | None) -> list[str]:
    """The prompts to decode: the given ones, or the processor's visual prompt for box-only queries."""
    if (prompts is None or (not isinstance(prompts, (str, bytes)) and len(prompts) == 0)) and boxes:
        return [VISUAL_PROMPT]
    return normalize_prompts(prompts)


def validate_boxes(
    boxes: Sequence[Sequence[float]], box_labels: Sequence[int] | None, original_size: tuple[int, int]
) -> tuple[list[list[float]], list[int]]:
    """Check exemplar boxes are finite pixel xyxy inside the image and labels are 0/1; return them as lists."""
    height, width = original_size
    checked = []
    for box in boxes:
        try:
            x1, y1, x2, y2 = (float(v) for v in box)
        except (TypeError, ValueError):
            raise BoxError(f"box {box!r} must be four numbers x1, y1, x2, y2 in pixels") from None
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            raise BoxError(f"box {box!r} has a NaN or infinite coordinate")
        if x2 <= x1 or y2 <= y1:
            raise BoxError(f"box {box!r} is empty or inverted: need x1 < x2 and y1 < y2")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise BoxError(f"box {box!r} lies outside the {width}x{height} image")
        checked.append([x1, y1, x2, y2])
    labels = [1] * len(checked) if box_labels is None else [int(v) for v in box_labels]
    if len(labels) != len(checked):
        raise BoxError(f"{len(checked)} boxes but {len(labels)} box labels")
    if any(v not in (0, 1) for v in labels):
        raise BoxError(f"box labels must be 1 (positive) or 0 (negative), got {labels}")
    return checked, labels


def check_thresholds(threshold: float, mask_threshold: float) -> None:
    """Thresholds must be finite numbers in [0, 1]."""
    for name, value in (("threshold", threshold), ("mask_threshold", mask_threshold)):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise InputError(f"{name} must be a number between 0 and 1, not {value!r}")


@dataclass(frozen=True)
class ObjectPrompt:
    """A validated prompt for one object: pixel (x, y) points with 1/0 labels, a pixel xyxy box, and low-resolution
    mask logits from an earlier call; any of them may be absent, not all."""

    points: list[list[float]]
    point_labels: list[int]
    box: list[float] | None
    mask_input: Any  # np.ndarray or None: (h, w) float32 logits at the tracker's mask-input size


def object_prompt(points, point_labels, box, mask_input, original_size: tuple[int, int],
                  mask_size: tuple[int, int]) -> ObjectPrompt:
    """Check an object prompt against the image (`original_size` is (height, width)); raise `PromptError` or
    `BoxError` naming what is wrong."""
    import numpy as np

    height, width = original_size
    checked_points: list[list[float]] = []
    for point in [] if points is None else points:
        try:
            x, y = (float(v) for v in point)
        except (TypeError, ValueError):
            raise PromptError(f"point {point!r} must be two numbers x, y in pixels") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise PromptError(f"point {point!r} has a NaN or infinite coordinate")
        if not (0 <= x <= width and 0 <= y <= height):
            raise PromptError(f"point ({x:g}, {y:g}) lies outside the {width}x{height} image")
        checked_points.append([x, y])
    if point_labels is None:
        labels = [1] * len(checked_points)
    else:
        try:
            labels = [int(v) for v in point_labels]
        except (TypeError, ValueError):
            raise PromptError(f"point labels must be 1 (include) or 0 (exclude), got {point_labels!r}") from None
        if any(float(a) != b for a, b in zip(point_labels, labels)) or any(v not in (0, 1) for v in labels):
            raise PromptError(f"point labels must be 1 (include) or 0 (exclude), got {list(point_labels)!r}")
    if len(labels) != len(checked_points):
        raise PromptError(f"{len(checked_points)} points but {len(labels)} point labels")
    checked_box = None
    if box is not None:
        checked_box = validate_boxes([box], None, original_size)[0][0]
    mask = None
    if mask_input is not None:
        mask = np.asarray(mask_input, dtype=np.float32)
        while mask.ndim > 2 and mask.shape[0] == 1:
            mask = mask[0]
        if mask.shape != tuple(mask_size):
            raise PromptError(f"mask_input must be low-resolution mask logits of shape {tuple(mask_size)} (a "
                              f"Result's mask_logits[i]), not {np.asarray(mask_input).shape}")
        if not np.isfinite(mask).all():
            raise PromptError("mask_input has NaN or infinite values")
    if not checked_points and checked_box is None and mask is None:
        raise PromptError("no object prompt given: pass points (with point_labels), a box, or mask_input")
    return ObjectPrompt(checked_points, labels, checked_box, mask)
