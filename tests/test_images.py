"""Image input: every accepted form gives the same RGB pixels; every bad one gives a clear, typed error."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import litetext
from litetext import ImageTooLargeError, InvalidImageError, load_image


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)


def test_path_bytes_pil_and_array_give_the_same_pixels(tmp_path, rgb):
    path = tmp_path / "image.png"
    Image.fromarray(rgb).save(path)
    for source in (path, str(path), path.read_bytes(), Image.fromarray(rgb), rgb):
        assert np.array_equal(np.asarray(load_image(source)), rgb)


def test_grayscale_rgba_palette_cmyk_and_16bit_become_rgb(tmp_path, rgb):
    gray = rgb[..., 0]
    assert np.array_equal(np.asarray(load_image(gray)), np.stack([gray] * 3, axis=-1))
    rgba = np.concatenate([rgb, np.full((40, 60, 1), 128, np.uint8)], axis=-1)
    assert np.array_equal(np.asarray(load_image(rgba)), rgb)
    assert load_image(Image.fromarray(rgb).convert("P")).mode == "RGB"
    assert load_image(Image.fromarray(rgb).convert("CMYK")).mode == "RGB"
    sixteen = (gray.astype(np.uint16) * 257)
    assert np.array_equal(np.asarray(load_image(sixteen))[..., 0], gray)
    path = tmp_path / "sixteen.png"
    Image.fromarray(sixteen).save(path)
    assert np.array_equal(np.asarray(load_image(path))[..., 0], gray)
    assert np.array_equal(np.asarray(load_image(rgb / 255.0)), rgb)


def test_exif_orientation_is_applied(tmp_path, rgb):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.fromarray(rgb).save(path, exif=exif, quality=95)
    assert load_image(path).size == (40, 60)


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (20, 10), color) for color in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert load_image(path).getpixel((5, 5))[0] > 200


def test_one_pixel_image_segments(engine_for):
    result = engine_for("litetext").segment(np.zeros((1, 1, 3), np.uint8), "cat")
    assert result.masks.shape[1:] == (1, 1)


def test_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("hello")
    with pytest.raises(InvalidImageError, match="not a readable image"):
        load_image(path)


def test_zero_byte_file_and_empty_bytes_are_refused(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="empty"):
        load_image(path)
    with pytest.raises(InvalidImageError, match="empty"):
        load_image(b"")


def test_truncated_jpeg_is_refused(tmp_path, rgb):
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG")
    with pytest.raises(InvalidImageError, match="truncated"):
        load_image(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def test_png_with_a_wrong_header_is_refused(rgb):
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[1:4] = b"XXX"
    with pytest.raises(InvalidImageError):
        load_image(bytes(data))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InvalidImageError, match="no such file"):
        load_image(tmp_path / "absent.jpg")


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(ImageTooLargeError, match="too large.*900000000 pixels"):
        load_image(_png_header_only(30000, 30000))
    with pytest.raises(ImageTooLargeError, match="too large"):
        load_image(_png_header_only(3000, 3000), max_pixels=1_000_000)


def test_zero_size_array_and_odd_layouts_are_refused():
    with pytest.raises(InvalidImageError, match="zero size"):
        load_image(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(InvalidImageError, match="HxW"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(InvalidImageError, match="NaN"):
        load_image(np.full((4, 4, 3), np.nan))
    with pytest.raises(InvalidImageError, match="unsupported image type"):
        load_image(12345)


def test_image_errors_are_litetext_errors_and_value_errors():
    assert issubclass(InvalidImageError, litetext.LitetextError)
    assert issubclass(InvalidImageError, ValueError)


def test_engine_names_the_bad_file(engine_for, tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG not really")
    with pytest.raises(InvalidImageError, match="broken.png"):
        engine_for("litetext").segment(path, "cat")
