"""Image input: turn paths, bytes, PIL images and arrays into validated RGB PIL images."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageTooLargeError, InvalidImageError

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray

#: Largest image accepted, in pixels (about 16k x 16k). Larger inputs are refused as decompression bombs.
DEFAULT_MAX_PIXELS = 256_000_000

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def describe_source(source: Any) -> str:
    """A short human name for an image input, for messages and reports."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, bytes):
        return f"<{len(source)} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.width}x{source.height} {source.mode}>"
    if isinstance(source, np.ndarray):
        return f"<array {tuple(source.shape)} {source.dtype}>"
    return f"<{type(source).__name__}>"


def load_image(source: ImageInput, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Return `source` as an RGB PIL image with EXIF orientation applied.

    Accepts a file path, encoded bytes, a PIL image or a numpy array (HW or HWC; uint8, uint16, bool, or
    float in 0..1; 1, 3 or 4 channels). Animated images give their first frame. Raises `InvalidImageError`
    naming the problem, or `ImageTooLargeError` above `max_pixels`.
    """
    name = describe_source(source)
    if isinstance(source, np.ndarray):
        image = _from_array(source, name)
    elif isinstance(source, Image.Image):
        image = source
    elif isinstance(source, (str, os.PathLike, bytes)):
        image = _open(source, name, max_pixels)
    else:
        raise InvalidImageError(
            f"{name}: unsupported image type; pass a path, bytes, a PIL image or a numpy array"
        )
    _check_size(image.width, image.height, name, max_pixels)
    return _to_rgb(image, name)


def image_digest(image: Image.Image) -> str:
    """A content hash of an RGB image's pixels: equal pixels give equal digests, whatever the source."""
    pixels = np.asarray(image)
    digest = hashlib.blake2b(pixels.tobytes(), digest_size=16)
    digest.update(repr(pixels.shape).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class PreparedImage:
    """A validated RGB image with its content digest (the image-cache key).

    `pixel_values` holds the processor's resized, normalised tensor when it was computed ahead of time
    (`segment_batch` does this on its reader thread, overlapping it with model work).
    """

    image: Image.Image
    digest: str
    pixel_values: Any = None

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def prepare_image(source: ImageInput | PreparedImage, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> PreparedImage:
    """`load_image` and the content digest; a `PreparedImage` is returned as it is."""
    if isinstance(source, PreparedImage):
        return source
    rgb = load_image(source, max_pixels=max_pixels)
    return PreparedImage(rgb, image_digest(rgb))


def list_images(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand directories to the image files they contain (sorted); files are kept as given."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            found.append(path)
    return found


def _open(source: str | os.PathLike | bytes, name: str, max_pixels: int) -> Image.Image:
    if isinstance(source, bytes):
        if not source:
            raise InvalidImageError(f"{name}: empty data, not an image")
        stream: Any = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise InvalidImageError(f"{name}: no such file")
        if path.stat().st_size == 0:
            raise InvalidImageError(f"{name}: the file is empty (0 bytes), not an image")
        stream = path
    previous_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = max_pixels
            image = Image.open(stream)
            _check_size(image.width, image.height, name, max_pixels)
            image.seek(0)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageTooLargeError(
            f"{name}: image is too large, a possible decompression bomb ({error}); downscale it or raise max_pixels"
        ) from None
    except UnidentifiedImageError:
        raise InvalidImageError(f"{name}: not a readable image file (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError) as error:
        if "truncated" in str(error):
            raise InvalidImageError(f"{name}: the image file is truncated ({error})") from None
        raise InvalidImageError(f"{name}: cannot decode the image ({error})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not lose an otherwise good image
        return image


def _check_size(width: int, height: int, name: str, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"{name}: the image has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width}x{height} is {width * height:,} pixels, more than the limit of {max_pixels:,}; "
            "downscale it or raise max_pixels"
        )


def _from_array(array: np.ndarray, name: str) -> Image.Image:
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise InvalidImageError(f"{name}: expected an HxW or HxWxC array with C in (1, 3, 4)")
    if 0 in array.shape:
        raise InvalidImageError(f"{name}: the image has zero size")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        array = (array // 257).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InvalidImageError(f"{name}: the array contains NaN or infinite values")
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InvalidImageError(f"{name}: unsupported array dtype {array.dtype}; use uint8, uint16 or float")
    return Image.fromarray(np.ascontiguousarray(array))


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: scale the full range to 8 bits rather than clipping at 255.
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(array.max()), 1.0)
        array = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(array).convert("RGB")
    try:
        return image.convert("RGB")
    except (OSError, ValueError) as error:
        raise InvalidImageError(f"{name}: cannot convert mode {image.mode} to RGB ({error})") from None
