"""What an interactive request asks: the `context` Label Studio sends when an annotator types a phrase in a
`TextArea`, draws a smart rectangle or clicks smart keypoints (`context["result"]`: typed text, rectangles and
keypoints in percent of the image, `is_positive` for each click, the labels chosen).

Every field the backend reads is checked here, once: a malformed one is a `FieldError` that names it
(`context.result[0].value.x: must be a finite number, not NaN`), never a guess or a fall back to automatic
pre-annotation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import LabelConfigError
from .fields import MISSING, boolean, number, refuse, string

TEXT_TYPES = ("textarea",)
RECTANGLE_TYPES = ("rectanglelabels", "rectangle")
KEYPOINT_TYPES = ("keypointlabels", "keypoint")


@dataclass(frozen=True)
class DrawnRegion:
    """A region the annotator drew with a smart tool, in percent of the image as Label Studio sends it: `x`, `y` in
    0..100, and for a rectangle `width`, `height` in (0, 100]."""

    label: str | None
    x: float
    y: float
    width: float = 0.0
    height: float = 0.0
    positive: bool = True

    def box(self, width: int, height: int) -> list[float]:
        """The rectangle in pixel xyxy, converted as Label Studio's SAM backends do (percent of the image, then
        truncated to whole pixels: `[int(x), int(y), int(x + w), int(y + h)]`), and clipped to the image."""
        x, y = self.x * width / 100, self.y * height / 100
        w, h = self.width * width / 100, self.height * height / 100
        x1, y1, x2, y2 = int(x), int(y), int(x + w), int(y + h)
        return [float(max(0, x1)), float(max(0, y1)), float(min(width, x2)), float(min(height, y2))]

    def point(self, width: int, height: int) -> tuple[float, float]:
        """The keypoint in whole pixels, as Label Studio's SAM backends convert it: `(int(x), int(y))`."""
        return float(int(self.x * width / 100)), float(int(self.y * height / 100))


@dataclass(frozen=True)
class InteractivePrompt:
    """What an interactive request asks: typed phrases, smart rectangles, smart keypoints (Label Studio's context),
    `label`, the label of the last region drawn (SAM's backends name the object by it), and `found`, the types of
    every region the context held."""

    texts: list[str] = field(default_factory=list)
    rectangles: list[DrawnRegion] = field(default_factory=list)
    keypoints: list[DrawnRegion] = field(default_factory=list)
    label: str | None = None
    found: list[str] = field(default_factory=list)

    def check_usable(self) -> None:
        """Raises `LabelConfigError` if the context holds nothing the backend can use (no phrase, rectangle or
        keypoint)."""
        if not (self.texts or self.rectangles or self.keypoints):
            found = sorted(set(self.found)) or ["nothing"]
            raise LabelConfigError("interactive context has no text prompt (TextArea), smart rectangle or keypoint "
                                   f"to use (it has {', '.join(found)})")


def read_context(context: Any) -> InteractivePrompt | None:
    """What an interactive request asks, read from `params.context`; None for an automatic request (no context,
    or one without `result`, as Label Studio sends when it retrieves predictions).

    Raises `FieldError` naming the first malformed field: `result` must be a list of objects, each with a string
    `type`; a phrase, rectangle or keypoint must have a `value` object with finite numbers in range (percent of
    the image), labels that are strings, and a click's `is_positive` must be a JSON boolean. Regions of other
    types (the annotation so far) are not read.
    """
    if context is None:
        return None
    if not isinstance(context, dict):
        refuse("context", "a JSON object or null", context)
    items = context.get("result")
    if items is None:
        return None
    if not isinstance(items, list):
        refuse("context.result", "a list of regions", items)
    texts, rectangles, keypoints, last_label, found = [], [], [], None, []
    for index, item in enumerate(items):
        where = f"context.result[{index}]"
        if not isinstance(item, dict):
            refuse(where, "a region (a JSON object)", item)
        kind = string(item.get("type", MISSING), f"{where}.type")
        found.append(kind)
        if kind not in TEXT_TYPES + RECTANGLE_TYPES + KEYPOINT_TYPES:
            continue
        value = item.get("value", MISSING)
        if not isinstance(value, dict):
            refuse(f"{where}.value", "a JSON object", value)
        if kind in TEXT_TYPES:
            texts.extend(text for text in _texts(value.get("text", MISSING), f"{where}.value.text") if text.strip())
            continue
        label = _first_label(value.get(kind), f"{where}.value.{kind}")
        x = number(value.get("x", MISSING), f"{where}.value.x", 0, 100)
        y = number(value.get("y", MISSING), f"{where}.value.y", 0, 100)
        if kind in RECTANGLE_TYPES:
            width = number(value.get("width", MISSING), f"{where}.value.width", 0, 100, above_low=True)
            height = number(value.get("height", MISSING), f"{where}.value.height", 0, 100, above_low=True)
            if "rotation" in value:
                number(value["rotation"], f"{where}.value.rotation", -360, 360, unit="degrees")
            rectangles.append(DrawnRegion(label, x, y, width, height))
        else:
            if "width" in value:  # the size the point is drawn at: unused, but it must be a size
                number(value["width"], f"{where}.value.width", 0, 100)
            # SAM's convention: `is_positive` false (Alt held while clicking) marks a negative click.
            positive = boolean(item.get("is_positive", True), f"{where}.is_positive")
            keypoints.append(DrawnRegion(label, x, y, positive=positive))
        last_label = label or last_label
    return InteractivePrompt(texts, rectangles, keypoints, last_label, found)


def _texts(value: Any, where: str) -> list[str]:
    """A TextArea's `text`: one string or a list of them."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        refuse(where, "a string or a list of strings", value)
    return [string(text, f"{where}[{index}]") for index, text in enumerate(value)]


def _first_label(value: Any, where: str) -> str | None:
    """The first of a region's labels (`value.rectanglelabels`, ...); None if it has none."""
    if value is None:
        return None
    if not isinstance(value, list):
        refuse(where, "a list of label names", value)
    labels = [string(label, f"{where}[{index}]", "a label name (a string)") for index, label in enumerate(value)]
    return labels[0] if labels else None
