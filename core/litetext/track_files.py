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

from .errors import InputError, LitetextError, OutputError
from .options import TrackOptions
from .output import append_line, check_output_dir, write_json, write_lines
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
    settings: dict[str, Any] = field(default_factory=dict)  # the run's tracking settings, model and tracker
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
    `<name>.summary.json` last, which marks the video done. Until then `<name>.summary.partial.json` records the
    run's prompts and `settings` and, after a failure, why it stopped.

    With `resume`, frames already in the JSON Lines file are kept and not written again (the overlay, which an
    MP4 cannot be appended to, is written anew); a run with other prompts or settings than the recorded one is
    refused. `done` says whether the video was finished before. Every line is written whole and flushed; a
    write that fails (a full disk, a lost folder) raises `OutputError` naming the file, and the lines before it
    stay valid.
    """

    def __init__(self, out_dir: str | os.PathLike, name: str, prompts: list[str], *, fps: float | None = None,
                 overlay: bool = True, resume: bool = False, settings: dict[str, Any] | None = None):
        self.out_dir = check_output_dir(out_dir)
        self.jsonl_path = self.out_dir / f"{name}.jsonl"
        self.overlay_path = self.out_dir / f"{name}.overlay.mp4"
        self.summary_path = self.out_dir / f"{name}.summary.json"
        self.partial_path = self.out_dir / f"{name}.summary.partial.json"
        self.summary = TrackSummary(name, list(prompts), settings=dict(settings or {}))
        self.done = resume and self.summary_path.is_file()
        self._written = -1
        if resume:
            self._check_same_run()
        if resume and not self.done and self.jsonl_path.is_file():
            kept = []
            for index, result in read_tracks(self.jsonl_path):
                self.summary.add(TrackedFrame(index, result))
                kept.append(index)
            self._written = max(kept, default=-1)
            _truncate_to_complete_lines(self.jsonl_path)
        elif not self.done:
            write_lines(self.jsonl_path, b"")
        self._lines = None
        self._overlay = None
        if self.done:
            return
        write_json(self.partial_path, self.summary.to_dict())
        self._lines = open(self.jsonl_path, "ab", buffering=0)  # noqa: SIM115 (closed by close())
        if overlay:
            self._overlay = VideoWriter(self.overlay_path, fps=fps or 25.0)

    def write(self, frame: TrackedFrame, image: Image.Image) -> None:
        """Add one frame (its overlay drawn on `image`, the frame's pixels)."""
        if self._overlay is not None:
            self._overlay.write(frame.result.overlay(image))
        if frame.index <= self._written:
            return
        append_line(self._lines, self.jsonl_path, json.dumps({"frame": frame.index, **frame.result.to_dict()}))
        self._written = frame.index
        self.summary.add(frame)

    def close(self, status: str = "done") -> TrackSummary:
        """Finish the files; a `status` other than "done" (an error message) is recorded in the partial summary
        and leaves the video unfinished, so `resume` takes it up again."""
        self.summary.status = status
        if self._overlay is not None:
            self._overlay.close()
            self._overlay = None
        if self._lines is not None:
            self._lines.close()
            self._lines = None
            if status == "done":
                write_json(self.summary_path, self.summary.to_dict())
                self.partial_path.unlink(missing_ok=True)
            else:
                write_json(self.partial_path, self.summary.to_dict())
        return self.summary

    def _check_same_run(self) -> None:
        """Refuse to resume with other prompts or settings than the run recorded in `out_dir`."""
        recorded = None
        for path in (self.summary_path, self.partial_path):
            if path.is_file():
                try:
                    recorded = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                break
        if recorded is None and self.jsonl_path.is_file():
            first = next(read_tracks(self.jsonl_path), None)
            recorded = None if first is None else {"prompts": first[1].prompts}
        if recorded is None:
            return
        mine = {"prompts": self.summary.prompts, "settings": self.summary.settings}
        theirs = {"prompts": recorded.get("prompts"), "settings": recorded.get("settings", mine["settings"])}
        if mine != theirs:
            raise InputError(f"--resume: {self.out_dir / self.summary.video} was tracked with prompts "
                             f"{theirs['prompts']} and settings {theirs['settings']}, not prompts {mine['prompts']} "
                             f"and settings {mine['settings']}; resume with the same, or write to another folder")


def track_to_files(engine: Any, video: Any, prompts: list[str], out_dir: str | os.PathLike, name: str, *,
                   options: TrackOptions | None = None, overlay: bool = True, resume: bool = False,
                   progress: bool = False) -> TrackSummary:
    """Track `prompts` through `video` with `engine` (its `track` settings in `options`) into `TrackWriter` files.

    Returns the summary (`status` "done", or "skipped" when `resume` finds the video finished). A video that fails
    part-way raises its `LitetextError` after every frame tracked before the failure is written and the files are
    closed with the error as status; an `OutputError` (a full disk) stops the run with the lines written so far
    intact.
    """
    options = options or TrackOptions()
    source = open_video(video)
    settings = {**options.as_kwargs(), "model": engine.info.model, "tracker": engine.tracker_checkpoint}
    writer = TrackWriter(out_dir, name, prompts, fps=source.fps, overlay=overlay, resume=resume, settings=settings)
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
                                    progress=progress, **options.as_kwargs()):
            writer.write(tracked, images.pop(tracked.index))
            for index in [i for i in images if i < tracked.index]:
                del images[index]
    except OutputError:
        writer.close(status="failed: could not write the results")
        raise
    except LitetextError as error:
        writer.close(status=f"failed: {error}")
        raise type(error)(f"{error} ({writer.summary.frames} frames tracked before it are kept in "
                          f"{writer.jsonl_path})") from error
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
    write_lines(path, data[: data.rfind(b"\n") + 1])
