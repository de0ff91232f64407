"""The UI's inputs as litetext arguments: prompts text, exemplar boxes, clicks, the uploaded image or video."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

import litetext

from .config import AppConfig


def parse_prompts(text: str | None) -> list[str]:
    """Comma- or newline-separated noun phrases, each a concept; blanks dropped, duplicates removed."""
    if not (text or "").replace(",", "").strip():
        raise gr.Error("Type at least one noun phrase to segment, e.g. 'cat' or 'red car, person'.")
    return litetext.split_prompts(text)


#: A number as people type one: digits with an optional sign, point and exponent ("12", "-3.5", "1e3"); "nan" and
#: "inf" too, so that the engine names them. Not what else `float` takes ("1_000", other scripts' digits).
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


def parse_labelled(text: str | None, size: int, what: str, example: str,
                   signs: str = "+ (positive) or - (negative)") -> tuple[list[list[float]], list[int]]:
    """Lines (or ';'-separated items) of `size` pixel numbers, each optionally preceded by `+` (label 1, the
    default) or `-` (label 0); a friendly error naming the bad item otherwise."""
    items, labels = [], []
    for line in re.split(r"[;\n]", text or ""):
        line = line.strip()
        if not line:
            continue
        label = 1
        if line[0] in "+-":
            label, line = (1 if line[0] == "+" else 0), line[1:]
        numbers = [p for p in re.split(r"[,\s]+", line.strip().strip("()[]")) if p]
        item = [float(v) for v in numbers] if all(NUMBER.fullmatch(v) for v in numbers) else []
        if len(item) != size:
            count = {2: "two", 4: "four"}.get(size, str(size))
            raise gr.Error(f"{what} {line.strip()!r} must be {count} numbers '{example}', optionally preceded by "
                           f"{signs}.")
        items.append(item)
        labels.append(label)
    return items, labels


def parse_boxes(text: str | None) -> tuple[list[list[float]], list[int]]:
    """Exemplar boxes, one per line or separated by ';': `[+|-] x1, y1, x2, y2` in pixels.

    A leading `-` makes a negative exemplar (label 0); `+` or nothing a positive one (label 1).
    """
    return parse_labelled(text, 4, "Exemplar box", "x1, y1, x2, y2")


def parse_points(text: str | None) -> tuple[list[list[float]], list[int]]:
    """Clicks on one object, separated by ';' or newlines: `[+|-] x, y` in pixels, `-` for an exclude point."""
    return parse_labelled(text, 2, "Point", "x, y", "+ (include) or - (exclude)")


def parse_box(text: str | None) -> list[float] | None:
    """At most one box `x1, y1, x2, y2` in pixels around one object (None when `text` is blank)."""
    boxes, labels = parse_labelled(text, 4, "Box", "x1, y1, x2, y2")
    if len(boxes) > 1 or 0 in labels:
        raise gr.Error("Give one box 'x1, y1, x2, y2' around the object (no sign, no second box).")
    return boxes[0] if boxes else None


def format_box(box: Any, label: int) -> str:
    """One line of the exemplar-box text field."""
    return f"{'+' if label else '-'} " + ", ".join(f"{float(v):.0f}" for v in box)


def read_image(path: str | None, config: AppConfig) -> Image.Image:
    """The uploaded file as an RGB image, or a friendly error naming the problem."""
    if not path:
        raise gr.Error("Upload an image (or pick an example) first.")
    try:
        return litetext.load_image(path, max_pixels=config.max_pixels)
    except litetext.ImageTooLargeError:
        raise gr.Error(f"The image is too large for this app (more than {config.max_pixels:,} pixels). "
                       "Please downscale it and try again.") from None
    except litetext.InvalidImageError as error:
        raise gr.Error(f"Cannot read the image: {error}".replace(str(path), Path(path).name)) from None


def open_upload(path: str) -> Any:
    """`litetext.open_video` of an uploaded file, named by its file name (so errors and the progress bar show no
    server path)."""
    source = litetext.open_video(path)
    source.name = Path(path).name
    return source


def check_video(path: str, config: AppConfig) -> int | None:
    """Refuse an unreadable, empty or oversized video before any GPU time; returns its frame count."""
    source = open_upload(path)
    frames = source.frames()
    try:
        first = next(frames)
    finally:
        frames.close()
    width, height = first.image.size
    if width * height > config.max_video_pixels:
        raise gr.Error(f"{source.name} is {width}x{height}; this app tracks frames of at most "
                       f"{config.max_video_pixels:,} pixels (1080p). Please downscale it, e.g. with "
                       "ffmpeg -i in.mp4 -vf scale=-2:1080 out.mp4.")
    return source.frame_count
