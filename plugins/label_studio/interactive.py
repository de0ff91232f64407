"""What an interactive request asks: the `context` Label Studio sends when an annotator types a phrase in a
`TextArea`, draws a smart rectangle or clicks smart keypoints (`context["result"]`: typed text, rectangles and
keypoints in percent of the image, `is_positive` for each click, the labels chosen)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import litetext

from .config import LabelConfigError


def context_items(context: Any) -> list[dict[str, Any]]:
    """The regions of an interactive request's `context["result"]`; empty for an automatic request."""
    if not isinstance(context, dict):
        return []
    items = context.get("result")
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


@dataclass(frozen=True)
class DrawnRegion:
    """A region the annotator drew with a smart tool, in percent of the image as Label Studio sends it."""

    label: str | None
    value: dict[str, Any]
    positive: bool = True

    def _number(self, key: str) -> float:
        try:
            return float(self.value[key])
        except (KeyError, TypeError, ValueError):
            raise litetext.BoxError(f"the drawn region has no usable {key!r}: {self.value!r}") from None

    def box(self, width: int, height: int) -> list[float]:
        """The rectangle in pixel xyxy, converted as Label Studio's SAM backends do (percent of the image, then
        truncated to whole pixels: `[int(x), int(y), int(x + w), int(y + h)]`), and clipped to the image."""
        x, y = self._number("x") * width / 100, self._number("y") * height / 100
        w, h = self._number("width") * width / 100, self._number("height") * height / 100
        x1, y1, x2, y2 = int(x), int(y), int(x + w), int(y + h)
        return [float(max(0, x1)), float(max(0, y1)), float(min(width, x2)), float(min(height, y2))]

    def point(self, width: int, height: int) -> tuple[float, float]:
        """The keypoint in whole pixels, as Label Studio's SAM backends convert it: `(int(x), int(y))`."""
        return float(int(self._number("x") * width / 100)), float(int(self._number("y") * height / 100))


@dataclass(frozen=True)
class InteractivePrompt:
    """What an interactive request asks: typed phrases, smart rectangles, smart keypoints (Label Studio's context),
    and `label`, the label of the last region drawn (SAM's backends name the object by it)."""

    texts: list[str] = field(default_factory=list)
    rectangles: list[DrawnRegion] = field(default_factory=list)
    keypoints: list[DrawnRegion] = field(default_factory=list)
    label: str | None = None

    @classmethod
    def from_context(cls, items: list[dict[str, Any]]) -> InteractivePrompt:
        """Read `context["result"]` (`context_items`); raises `LabelConfigError` if it holds nothing the backend
        can use."""
        texts, rectangles, keypoints, last_label = [], [], [], None
        for item in items:
            kind = item.get("type")
            value = item.get("value") if isinstance(item.get("value"), dict) else {}
            labels = value.get(kind) if isinstance(value.get(kind), list) else []
            label = labels[0] if labels and isinstance(labels[0], str) else None
            if kind == "textarea":
                text = value.get("text")
                texts.extend(t for t in ([text] if isinstance(text, str) else text if isinstance(text, list) else [])
                             if isinstance(t, str) and t.strip())
            elif kind in ("rectanglelabels", "rectangle"):
                rectangles.append(DrawnRegion(label, value))
                last_label = label or last_label
            elif kind in ("keypointlabels", "keypoint"):
                # SAM's convention: `is_positive` false (Alt held while clicking) marks a negative click.
                keypoints.append(DrawnRegion(label, value, positive=bool(item.get("is_positive", True))))
                last_label = label or last_label
        if not (texts or rectangles or keypoints):
            found = sorted({str(item.get("type")) for item in items}) or ["nothing"]
            raise LabelConfigError("interactive context has no text prompt (TextArea), smart rectangle or keypoint "
                                   f"to use (it has {', '.join(found)})")
        return cls(texts, rectangles, keypoints, last_label)
