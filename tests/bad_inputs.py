"""A shared corpus of bad and odd inputs, written to a folder, for every entry point's tests.

Each image case says what a correct entry point does with it: refuse it with a clear error naming the
problem ("error", with words the message must contain), or segment it normally ("ok").
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from litetext import BoxError, PromptError


@dataclass(frozen=True)
class BadImage:
    name: str
    path: Path
    outcome: str  # "error" or "ok"
    message: str = ""  # words an error message must contain


def _photo(width: int = 64, height: int = 48) -> Image.Image:
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def write_bad_images(folder: Path) -> list[BadImage]:
    """Write every bad and odd image case into `folder` and describe them."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[BadImage] = []

    def add(name: str, data: bytes, outcome: str, message: str = "") -> None:
        path = folder / name
        path.write_bytes(data)
        cases.append(BadImage(name, path, outcome, message))

    def encoded(image: Image.Image, fmt: str, **options) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        return buffer.getvalue()

    jpeg = encoded(_photo(), "JPEG")
    add("truncated.jpg", jpeg[: len(jpeg) // 2], "error", "truncated")
    png = bytearray(encoded(_photo(), "PNG"))
    png[1:4] = b"XXX"
    add("wrong_header.png", bytes(png), "error", "not a readable image")
    add("zero_bytes.jpg", b"", "error", "empty")
    add("text_file.png", b"a text file, not an image\n", "error", "not a readable image")
    add("bomb_30000x30000.png", _png_header_only(30000, 30000), "error", "too large")
    add("one_pixel.png", encoded(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), "ok")
    sixteen = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    add("sixteen_bit.png", encoded(Image.fromarray(sixteen), "PNG"), "ok")
    add("cmyk.jpg", encoded(_photo().convert("CMYK"), "JPEG"), "ok")
    add("palette.png", encoded(_photo().convert("P"), "PNG"), "ok")
    exif = Image.Exif()
    exif[0x0112] = 6
    add("exif_rotated.jpg", encoded(_photo(), "JPEG", exif=exif), "ok")
    frames = [Image.new("RGB", (32, 24), c) for c in ((255, 0, 0), (0, 255, 0))]
    add("animated.gif", encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]), "ok")
    add("grayscale.png", encoded(_photo().convert("L"), "PNG"), "ok")
    add("rgba.png", encoded(_photo().convert("RGBA"), "PNG"), "ok")
    return cases


#: Prompts every entry point must refuse, with words the message must contain.
BAD_PROMPTS = {
    "empty list": ([], "no prompt"),
    "blank": (["   "], "empty or blank"),
    "non-utf8 bytes": ([b"\xff\xfe\xfa"], "UTF-8"),
}
#: Accepted with a documented result: truncated to the model's 32 tokens, with a warning.
LONG_PROMPT = "red car " * 1250  # 10 kB
BAD_THRESHOLDS = [math.nan, -0.5, 2.0, math.inf]

#: Object prompts (`Engine.segment_object`'s keywords) every entry point must refuse: (keywords, error, words the
#: message must contain). The tiny tracker's mask input is 32x32 logits.
BAD_OBJECT_PROMPTS = {
    "point outside the image": ({"points": [[10_000, 5]]}, PromptError, "outside"),
    "label other than 0/1": ({"points": [[10, 5]], "point_labels": [2]}, PromptError, "labels"),
    "fractional label": ({"points": [[10, 5]], "point_labels": [0.5]}, PromptError, "labels"),
    "infinite label": ({"points": [[10, 5]], "point_labels": [math.inf]}, PromptError, "labels"),
    "label as text": ({"points": [[10, 5]], "point_labels": ["1"]}, PromptError, "labels"),
    "more labels than points": ({"points": [[10, 5]], "point_labels": [1, 0]}, PromptError, "labels"),
    "malformed point": ({"points": [[10]]}, PromptError, "two numbers"),
    "NaN point": ({"points": [[math.nan, 3]]}, PromptError, "NaN"),
    "points as text": ({"points": "12"}, PromptError, "points must be a list"),
    "a point as text": ({"points": ["12"]}, PromptError, "two numbers"),
    "coordinates as text": ({"points": [["1", "2"]]}, PromptError, "two numbers"),
    "empty prompt": ({}, PromptError, "no object prompt"),
    "no points at all": ({"points": []}, PromptError, "no object prompt"),
    "inverted box": ({"box": [50, 50, 10, 10]}, BoxError, "inverted"),
    "box outside": ({"box": [0, 0, 10_000, 10]}, BoxError, "outside"),
    "box as text": ({"box": "1234"}, BoxError, "four numbers"),
    "box of text": ({"box": ["1", "2", "30", "40"]}, BoxError, "four numbers"),
    "mask of the wrong shape": ({"mask_input": np.zeros((7, 7))}, PromptError, "shape"),
    "mask as text": ({"mask_input": "abc"}, PromptError, "array of numbers"),
    "ragged mask": ({"mask_input": [[1.0, 2.0], [3.0]]}, PromptError, "ragged"),
    "mask of text": ({"mask_input": [["a"] * 32] * 32}, PromptError, "array of numbers"),
    "mask with NaN": ({"mask_input": np.full((32, 32), np.nan)}, PromptError, "NaN"),
    "mask of huge logits": ({"mask_input": np.full((32, 32), 1e30, dtype=np.float32)}, PromptError, "beyond"),
    "instance of another kind": ({"instance": 5}, PromptError, "instance must be an Instance"),
}

#: Exemplar boxes (`Engine.segment`'s `boxes`/`box_labels`) every entry point must refuse.
BAD_EXEMPLAR_BOXES = {
    "boxes as text": ({"boxes": "1234"}, BoxError, "boxes must be a list"),
    "a box as text": ({"boxes": ["1234"]}, BoxError, "four numbers"),
    "infinite box label": ({"boxes": [[1, 1, 20, 20]], "box_labels": [math.inf]}, BoxError, "box labels"),
    "box label as text": ({"boxes": [[1, 1, 20, 20]], "box_labels": ["1"]}, BoxError, "box labels"),
}
