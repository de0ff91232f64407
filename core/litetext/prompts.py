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
    for box in _items(boxes, "boxes", BoxError):
        x1, y1, x2, y2 = _numbers(box, 4, "box", "four numbers x1, y1, x2, y2 in pixels", BoxError)
        if x2 <= x1 or y2 <= y1:
            raise BoxError(f"box {box!r} is empty or inverted: need x1 < x2 and y1 < y2")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise BoxError(f"box {box!r} lies outside the {width}x{height} image")
        checked.append([x1, y1, x2, y2])
    labels = _labels(box_labels, len(checked), "box labels", "1 (positive) or 0 (negative)", "boxes", BoxError)
    return checked, labels


def check_thresholds(threshold: float, mask_threshold: float) -> None:
    """Thresholds must be finite numbers in [0, 1]."""
    for name, value in (("threshold", threshold), ("mask_threshold", mask_threshold)):
        if not _is_real(value) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise InputError(f"{name} must be a number between 0 and 1, not {value!r}")


#: Tracking modes: "stream" is transformers' streaming flow (frame by frame, no look-ahead); "video" is its
#: whole-video flow (outputs held back `hotstart_delay` frames so that tracks which never match a detection, or
#: duplicate another, are removed before they are shown); "auto" is "video" when the frame count is known.
TRACK_MODES = ("auto", "stream", "video")


def check_track_settings(*, threshold: float | None = None, new_object_threshold: float | None = None,
                         max_objects: int | None = None, start_frame: int = 0, max_frames: int | None = None,
                         mode: str = "auto") -> dict[str, Any]:
    """`Engine.track`'s settings: thresholds in [0, 1] or None, `max_objects` and `max_frames` positive whole
    numbers or None, `start_frame` a whole number >= 0, `mode` one of `TRACK_MODES`. Returns them with the whole
    numbers as ints (3.0 is 3) and the thresholds as floats."""
    check_thresholds(0.5 if threshold is None else threshold, 0.5)
    if new_object_threshold is not None and not (_is_real(new_object_threshold)
                                                 and 0.0 <= new_object_threshold <= 1.0):
        raise InputError(f"new_object_threshold must be a number between 0 and 1, not {new_object_threshold!r}")
    for name, value, least in (("max_objects", max_objects, 1), ("start_frame", start_frame, 0),
                               ("max_frames", max_frames, 1)):
        if value is None and name != "start_frame":
            continue
        if not _is_whole(value) or value < least:
            raise InputError(f"{name} must be a whole number >= {least}, not {value!r}")
    if mode not in TRACK_MODES:
        raise InputError(f"mode must be one of {', '.join(TRACK_MODES)}, not {mode!r}")
    whole = (lambda value: None if value is None else int(float(value)))  # noqa: E731
    fraction = (lambda value: None if value is None else float(value))  # noqa: E731
    return {"threshold": fraction(threshold), "new_object_threshold": fraction(new_object_threshold),
            "max_objects": whole(max_objects), "start_frame": whole(start_frame), "max_frames": whole(max_frames),
            "mode": mode}


@dataclass(frozen=True)
class ObjectPrompt:
    """A validated prompt for one object: pixel (x, y) points with 1/0 labels, a pixel xyxy box, and low-resolution
    mask logits from an earlier call; any of them may be absent, not all."""

    points: list[list[float]]
    point_labels: list[int]
    box: list[float] | None
    mask_input: Any  # np.ndarray or None: (h, w) float32 logits at the tracker's mask-input size


#: Largest magnitude accepted in `mask_input`: mask logits of real results lie within a few hundred, and the
#: tracker's arithmetic overflows (NaN scores) on values near float32's limit.
MAX_MASK_LOGIT = 1e4


def object_prompt(points, point_labels, box, mask_input, original_size: tuple[int, int],
                  mask_size: tuple[int, int], instance: Any = None) -> ObjectPrompt:
    """Check an object prompt against the image (`original_size` is (height, width)); raise `PromptError` or
    `BoxError` naming what is wrong. `instance` (an `Instance`) seeds the box and the mask logits not given."""
    import numpy as np

    from .result import Instance

    if instance is not None:
        if not isinstance(instance, Instance):
            raise PromptError(f"instance must be an Instance of a litetext Result (result[i]), not "
                              f"{type(instance).__name__}")
        box = instance.box if box is None else box
        if mask_input is None and instance.mask_logits is not None:
            mask_input = instance.mask_logits
    height, width = original_size
    checked_points: list[list[float]] = []
    for point in _items(points, "points", PromptError):
        x, y = _numbers(point, 2, "point", "two numbers x, y in pixels", PromptError)
        if not (0 <= x <= width and 0 <= y <= height):
            raise PromptError(f"point ({x:g}, {y:g}) lies outside the {width}x{height} image")
        checked_points.append([x, y])
    labels = _labels(point_labels, len(checked_points), "point labels", "1 (include) or 0 (exclude)", "points",
                     PromptError)
    checked_box = None
    if box is not None:
        checked_box = validate_boxes([box], None, original_size)[0][0]
    mask = None
    if mask_input is not None:
        if isinstance(mask_input, (str, bytes)):
            raise PromptError(f"mask_input must be an array of numbers, not {type(mask_input).__name__}")
        try:
            mask = np.asarray(mask_input, dtype=np.float32)
        except (TypeError, ValueError, OverflowError):
            raise PromptError(f"mask_input must be an array of numbers of shape {tuple(mask_size)} (a Result's "
                              "mask_logits[i]); it is ragged or holds something else") from None
        while mask.ndim > 2 and mask.shape[0] == 1:
            mask = mask[0]
        if mask.shape != tuple(mask_size):
            raise PromptError(f"mask_input must be low-resolution mask logits of shape {tuple(mask_size)} (a "
                              f"Result's mask_logits[i]), not {mask.shape}")
        if not np.isfinite(mask).all():
            raise PromptError("mask_input has NaN or infinite values")
        if np.abs(mask).max(initial=0.0) > MAX_MASK_LOGIT:
            raise PromptError(f"mask_input holds logits beyond ±{MAX_MASK_LOGIT:g} (largest "
                              f"{float(np.abs(mask).max()):.3g}); pass a Result's mask_logits[i]")
    if not checked_points and checked_box is None and mask is None:
        raise PromptError("no object prompt given: pass points (with point_labels), a box, or mask_input")
    return ObjectPrompt(checked_points, labels, checked_box, mask)


def _is_real(value: Any) -> bool:
    """A real number: not a bool, not text (numpy and torch scalars count)."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        return False
    try:
        float(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _is_whole(value: Any) -> bool:
    """A whole number (an int, or a real number with no fraction): not a bool, not text."""
    return _is_real(value) and math.isfinite(float(value)) and float(value) == int(float(value))


def _items(values: Any, name: str, error: type[InputError]) -> list[Any]:
    """The items of a list argument (None for none); text and mappings are refused, not iterated."""
    if values is None:
        return []
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise error(f"{name} must be a list, not {type(values).__name__} {_shown(values)}")
    return list(values)


def _numbers(item: Any, count: int, name: str, shape: str, error: type[InputError]) -> list[float]:
    """`count` finite real numbers from one point or box, or `error` naming it."""
    values = _items(item, name, error) if not isinstance(item, (str, bytes)) else None
    if values is None or len(values) != count or not all(_is_real(v) for v in values):
        raise error(f"{name} {_shown(item)} must be {shape}")
    numbers = [float(v) for v in values]
    if not all(math.isfinite(v) for v in numbers):
        raise error(f"{name} {_shown(item)} has a NaN or infinite coordinate")
    return numbers


def _labels(labels: Any, count: int, name: str, meaning: str, of: str, error: type[InputError]) -> list[int]:
    """One 0/1 label per item (all 1 when `labels` is None)."""
    if labels is None:
        return [1] * count
    values = _items(labels, name, error)
    if not all(_is_whole(v) and float(v) in (0.0, 1.0) for v in values):
        raise error(f"{name} must be {meaning}, got {_shown(values)}")
    if len(values) != count:
        raise error(f"{count} {of} but {len(values)} {name}")
    return [int(float(v)) for v in values]


def _shown(value: Any, limit: int = 80) -> str:
    """`repr(value)`, cut to `limit` characters: messages name the value without drowning what they explain."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
