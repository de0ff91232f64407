"""Video tasks: the objects `engine.track` follows, as the keyframes of Label Studio `videorectangle` regions.

Each object id becomes one region (built in `regions.py`) whose `value.sequence` has a keyframe per frame the object
is seen on: {frame (1-based), x, y, width, height (percent of the frame), enabled, rotation, time}, the shape Label
Studio's labelling UI saves and its SAM2 video backend returns. Label Studio interpolates a box from one keyframe
to the next while the first is enabled, and shows a disabled keyframe on its own frame only; so the last keyframe
of every stretch an object is seen in is disabled, and its box stops there instead of sliding across the frames
where the object is gone. An object still there on the last frame keeps its last keyframe enabled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Track:
    """One object through a video: the prompt that found it, a keyframe per frame it was seen on, its scores."""

    object_id: int
    prompt: str
    keyframes: list[dict[str, Any]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    @property
    def score(self) -> float:
        """The mean score of the object's detections."""
        return float(np.mean(self.scores)) if self.scores else 0.0


def collect_tracks(frames: Iterable[Any], *, framerate: float, min_area: int = 1) -> tuple[list[Track], int]:
    """The tracks of `frames` (`litetext.TrackedFrame`s, in order), ordered by object id, and how many frames were
    read. `framerate` numbers time as Label Studio does (`time = frame / framerate`); instances whose mask has
    fewer than `min_area` pixels count as not seen."""
    tracks: dict[int, Track] = {}
    count = 0
    for tracked in frames:
        count += 1
        result = tracked.result.filter(min_area=max(1, min_area))
        width, height = result.image_size
        frame = tracked.index + 1
        seen = set()
        for instance in result:
            object_id = int(instance.object_id)
            x1, y1, x2, y2 = (float(v) for v in instance.box)
            track = tracks.setdefault(object_id, Track(object_id, instance.prompt))
            track.keyframes.append({"frame": frame, "x": 100 * x1 / width, "y": 100 * y1 / height,
                                    "width": 100 * (x2 - x1) / width, "height": 100 * (y2 - y1) / height,
                                    "enabled": True, "rotation": 0, "time": frame / framerate})
            track.scores.append(float(instance.score))
            seen.add(object_id)
        for object_id, track in tracks.items():
            if object_id not in seen:  # gone: end its stretch on the frame it was last seen
                track.keyframes[-1]["enabled"] = False
    return [tracks[key] for key in sorted(tracks)], count
