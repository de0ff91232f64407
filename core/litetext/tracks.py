"""Moved to `litetext.track_files` (tracked frames as files); this path still imports for one release."""

from __future__ import annotations

from .track_files import TrackedObject, TrackSummary, TrackWriter, output_names, read_tracks, track_to_files

__all__ = ["TrackedObject", "TrackSummary", "TrackWriter", "output_names", "read_tracks", "track_to_files"]
