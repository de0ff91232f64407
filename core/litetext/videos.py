"""Video input and output: frames from a video file, a folder of images or any iterable; MP4 writing.

Frames are decoded one at a time and never held together, so a long video costs the memory of one frame.
Video files are read and written with PyAV (`pip install "litetext[video]"`): its wheels carry FFmpeg's
libraries (with libx264, so the MP4s it writes play in browsers), it decodes in-process frame by frame and
reports corrupt data as exceptions, and it needs no ffmpeg binary on the system.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import InvalidImageError, InvalidVideoError
from .images import IMAGE_SUFFIXES, describe_source, load_image

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".gif",
                  ".ts", ".3gp")


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its position in the video and its RGB pixels."""

    index: int
    image: Image.Image


class VideoSource:
    """Frames to track, read lazily: `frames()` yields each `Frame` once; `frame_count` and `fps` are known for
    files and folders (None for a live stream)."""

    def __init__(self, name: str, frames: Iterable[Any], frame_count: int | None = None, fps: float | None = None,
                 *, decode=None):
        self.name = name
        self.frame_count = frame_count
        self.fps = fps
        self._frames = frames
        self._decode = decode or (lambda item, index: load_image(item))

    def frames(self) -> Iterator[Frame]:
        """Each frame in order, as RGB; a frame that cannot be read raises `InvalidVideoError` naming it (frames
        already yielded stay valid), and frames whose size changes mid-video are refused."""
        size = None
        count = 0
        for index, item in enumerate(self._frames):
            try:
                image = self._decode(item, index)
            except InvalidImageError as error:
                raise InvalidVideoError(f"{self.name}: frame {index} cannot be read ({error})") from None
            if size is None:
                size = image.size
            elif image.size != size:
                raise InvalidVideoError(
                    f"{self.name}: frame {index} is {image.width}x{image.height} but the video started at "
                    f"{size[0]}x{size[1]}; every frame of a video must have the same size")
            count += 1
            yield Frame(index, image)
        if count == 0:
            raise InvalidVideoError(f"{self.name}: the video has no frames")


def open_video(source: Any) -> VideoSource:
    """A `VideoSource` for a video file (decoded with PyAV), a folder of frames (image files in name order), a
    (T, H, W, C) array, or any iterable of images, arrays or paths (a live stream)."""
    if isinstance(source, VideoSource):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            return VideoSource(str(path), files, len(files))
        if not path.is_file():
            raise InvalidVideoError(f"{path}: no such file or folder")
        return _open_file(path)
    if isinstance(source, np.ndarray):
        if source.ndim != 4:
            raise InvalidVideoError(f"{describe_source(source)}: a video array must be (frames, height, width, "
                                    "channels)")
        return VideoSource(describe_source(source), source, len(source))
    if isinstance(source, Image.Image) or not isinstance(source, Iterable):
        raise InvalidVideoError(f"{describe_source(source)}: not a video; pass a video file, a folder of frames "
                                "or an iterable of images")
    count = len(source) if hasattr(source, "__len__") else None
    return VideoSource(f"<{type(source).__name__} of frames>", source, count)


def video_inputs(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand command-line paths into videos: a folder holding video files gives each of them (sorted, recursively);
    a folder of images is one video of frames; files are kept as given."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            videos = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
            found.extend(videos or [path])
        else:
            found.append(path)
    return found


def _open_file(path: Path) -> VideoSource:
    av = _require_av()
    if path.stat().st_size == 0:
        raise InvalidVideoError(f"{path}: the file is empty (0 bytes), not a video")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InvalidVideoError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            count = stream.frames or None
            fps = float(stream.average_rate) if stream.average_rate else None
    except InvalidVideoError:
        raise
    except Exception as error:  # PyAV raises FFmpeg's errors (InvalidDataError, ...) for unreadable files
        raise InvalidVideoError(f"{path}: not a readable video ({type(error).__name__}: {error})") from None
    return VideoSource(str(path), _decode_file(path), count, fps, decode=lambda image, index: image)


def _decode_file(path: Path) -> Iterator[Image.Image]:
    av = _require_av()
    index = 0
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                yield frame.to_image().convert("RGB")
                index += 1
    except Exception as error:
        raise InvalidVideoError(f"{path}: decoding failed at frame {index} ({type(error).__name__}: {error}); "
                                f"the {index} frames before it were read") from None


def _require_av():
    try:
        import av
    except ImportError:
        raise InvalidVideoError('reading and writing video files needs PyAV: pip install "litetext[video]"') from None
    return av


class VideoWriter:
    """Write RGB frames to an H.264 MP4 file (yuv420p, so browsers play it), one frame at a time."""

    def __init__(self, path: str | os.PathLike, fps: float = 25.0):
        self.path = Path(path)
        self.fps = fps
        self._container = None
        self._stream = None

    def write(self, image: Image.Image) -> None:
        """Append one frame (all frames must have the size of the first; odd sizes are padded by one pixel)."""
        av = _require_av()
        from fractions import Fraction

        if self._container is None:
            self._container = av.open(str(self.path), "w")
            self._stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
            self._stream.width, self._stream.height = image.width + image.width % 2, image.height + image.height % 2
            self._stream.pix_fmt = "yuv420p"
        pixels = np.asarray(image.convert("RGB"))
        if pixels.shape[:2] != (self._stream.height, self._stream.width):
            padded = np.zeros((self._stream.height, self._stream.width, 3), dtype=np.uint8)
            padded[: pixels.shape[0], : pixels.shape[1]] = pixels
            pixels = padded
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        if self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
