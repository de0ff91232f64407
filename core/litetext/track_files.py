"""A tracked video's files: per-frame instances with object ids (JSON Lines), an overlay MP4, a summary.

`TrackWriter` writes them as frames arrive, so a run that is killed keeps every frame it finished, and
`resume=True` continues a video whose summary was never written. `read_tracks` reads the JSON Lines back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .errors import LitetextError
from .options import TrackOptions
from .pipelines.video import TrackedFrame
from .result import Result
from .videos import VideoSource, VideoWriter, open_video


@dataclass
class TrackedObject:
    """One object of a tracked video: its id, the prompt that found it, where it was seen and its best score."""

    object_id: int
    prompt: str
    first_frame: int
    last_frame: int
    frames: int = 0
    best_score: float = 0.0


@dataclass
class TrackSummary:
    """What a tracked video holds: frames done, its objects, and how it ended (`status` "done" or the error)."""

    video: str
    prompts: list[str]
    frames: int = 0
    status: str = "running"
    objects: list[TrackedObject] = field(default_factory=list)

    @property
    def objects_per_prompt(self) -> dict[str, int]:
        counts = dict.fromkeys(self.prompts, 0)
        for obj in self.objects:
            counts[obj.prompt] = counts.get(obj.prompt, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "objects_per_prompt": self.objects_per_prompt}

    def add(self, frame: TrackedFrame) -> None:
        """Count one frame's instances in the objects they belong to."""
        self.frames += 1
        known = {obj.object_id: obj for obj in self.objects}
        for instance in frame.result:
            obj = known.get(instance.object_id)
            if obj is None:
                obj = known[instance.object_id] = TrackedObject(instance.object_id, instance.prompt, frame.index,
                                                                frame.index)
                self.objects.append(obj)
            obj.last_frame = frame.index
            obj.frames += 1
            obj.best_score = max(obj.best_score, round(instance.score, 6))


class TrackWriter:
    """Writes one tracked video into `out_dir`: `<name>.jsonl` (a line per frame: its index and the result's
    `to_dict`, with object ids and RLE masks), `<name>.overlay.mp4` (ids and prompt colours), and
    `<name>.summary.json` last, which marks the video done.

    With `resume`, frames already in the JSON Lines file are kept and not written again (the overlay, which an
    MP4 cannot be appended to, is written anew). `done` says whether the video was finished before.
    """

    def __init__(self, out_dir: str | os.PathLike, name: str, prompts: list[str], *, fps: float | None = None,
                 overlay: bool = True, resume: bool = False):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.out_dir / f"{name}.jsonl"
        self.overlay_path = self.out_dir / f"{name}.overlay.mp4"
        self.summary_path = self.out_dir / f"{name}.summary.json"
        self.summary = TrackSummary(name, list(prompts))
        self.done = resume and self.summary_path.is_file()
        self._written = -1
        if resume and not self.done and self.jsonl_path.is_file():
            kept = []
            for index, result in read_tracks(self.jsonl_path):
                self.summary.add(TrackedFrame(index, result))
                kept.append(index)
            self._written = max(kept, default=-1)
            _truncate_to_complete_lines(self.jsonl_path)
        elif not self.done:
            self.jsonl_path.write_text("")
        self._lines = None if self.done else self.jsonl_path.open("a")
        self._overlay = None
        if overlay and not self.done:
            self._overlay = VideoWriter(self.overlay_path, fps=fps or 25.0)

    def write(self, frame: TrackedFrame, image: Image.Image) -> None:
        """Add one frame (its overlay drawn on `image`, the frame's pixels)."""
        if self._overlay is not None:
            self._overlay.write(frame.result.overlay(image))
        if frame.index <= self._written:
            return
        self._lines.write(json.dumps({"frame": frame.index, **frame.result.to_dict()}) + "\n")
        self._lines.flush()
        self._written = frame.index
        self.summary.add(frame)

    def close(self, status: str = "done") -> TrackSummary:
        """Finish the files; a `status` other than "done" (an error message) is recorded and leaves the video
        unfinished, so `resume` takes it up again."""
        self.summary.status = status
        if self._overlay is not None:
            self._overlay.close()
        if self._lines is not None:
            self._lines.close()
            (self.summary_path if status == "done" else self.summary_path.with_suffix(".partial.json")).write_text(
                json.dumps(self.summary.to_dict(), indent=2))
        return self.summary


def track_to_files(engine: Any, video: Any, prompts: list[str], out_dir: str | os.PathLike, name: str, *,
                   options: TrackOptions | None = None, overlay: bool = True, resume: bool = False,
                   progress: bool = False) -> TrackSummary:
    """Track `prompts` through `video` with `engine` (its `track` settings in `options`) into `TrackWriter` files.

    Returns the summary (`status` "done", or "skipped" when `resume` finds the video finished). A video that fails
    part-way raises its `LitetextError` after its files are closed with the error as status (frames already
    tracked are kept).
    """
    settings = (options or TrackOptions()).as_kwargs()
    source = open_video(video)
    writer = TrackWriter(out_dir, name, prompts, fps=source.fps, overlay=overlay, resume=resume)
    if writer.done:
        writer.summary.status = "skipped"
        return writer.summary
    images: dict[int, Image.Image] = {}

    def remembered():  # each frame's pixels wait here until its tracked frame is written
        for frame in source.frames():
            images[frame.index] = frame.image
            yield frame.image

    try:
        for tracked in engine.track(VideoSource(source.name, remembered(), source.frame_count, source.fps), prompts,
                                    progress=progress, **settings):
            writer.write(tracked, images.pop(tracked.index))
            for index in [i for i in images if i < tracked.index]:
                del images[index]
    except LitetextError as error:
        writer.close(status=f"failed: {error}")
        raise
    return writer.close()


def output_names(videos: list[Path]) -> list[str]:
    """The name each video's files get: its stem, with its parent folder's name where two stems clash."""
    stems = [Path(v).stem for v in videos]
    return [f"{Path(v).parent.name}-{Path(v).stem}" if stems.count(Path(v).stem) > 1 else Path(v).stem
            for v in videos]


def read_tracks(path: str | os.PathLike) -> Iterator[tuple[int, Result]]:
    """(frame index, `Result` with object ids) for each complete line of a `TrackWriter` JSON Lines file."""
    with open(path) as lines:
        for line in lines:
            if not line.endswith("\n"):
                return  # a line cut short by a killed run
            data = json.loads(line)
            yield data["frame"], Result.from_dict(data)


def _truncate_to_complete_lines(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: data.rfind(b"\n") + 1])
