"""The value of a LITETEXT_TRACKS socket: an IMAGE batch tracked frame by frame, kept compact, and the selection
of objects from it as MASK batches. No ComfyUI import: usable and testable anywhere.

Masks are kept as COCO RLE (`Result.to_dict`), a few hundred bytes per object and frame where a boolean mask
would take one byte per pixel: a long batch of frames with many objects stays small until a selection decodes
only the objects it asks for.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

import litetext
from litetext import TrackSummary

from .convert import parse_indices


@dataclass
class Tracks:
    """Every frame of a tracked IMAGE batch: per frame its instances' object ids, prompts, scores, pixel boxes and
    RLE masks (`Result.to_dict()`), and the summary of its objects (`litetext.TrackSummary`)."""

    prompts: list[str]
    image_size: tuple[int, int]  # (width, height), the same for every frame of a ComfyUI batch
    frames: list[dict] = field(default_factory=list)
    summary: TrackSummary | None = None

    def __post_init__(self) -> None:
        if self.summary is None:
            self.summary = TrackSummary("IMAGE batch", list(self.prompts))

    def add(self, frame: litetext.TrackedFrame) -> None:
        """Append the next tracked frame (frames arrive in order)."""
        self.frames.append(frame.result.to_dict())
        self.summary.add(frame)

    @property
    def frame_count(self) -> int:
        return len(self.frames)

    @property
    def object_ids(self) -> list[int]:
        """Every object's id, in increasing order."""
        return sorted(obj.object_id for obj in self.summary.objects)

    def result(self, index: int) -> litetext.Result:
        """Frame `index` as a litetext `Result` (masks decoded), its instances carrying their object ids."""
        return litetext.Result.from_dict(self.frames[index])

    def scores(self) -> list[dict[str, float]]:
        """Per frame, each object's score there, by object id (JSON keys are strings)."""
        return [{str(inst["object_id"]): round(inst["score"], 4) for inst in frame["instances"]}
                for frame in self.frames]

    def choose(self, object_ids: Sequence[int] | None = None, prompts: Sequence[str] | None = None) -> list[int]:
        """The ids of the objects with these ids (None: all) that answer these prompts (None: all), in the order
        asked (ids) or increasing. Raises `litetext.InputError` for an id or prompt these tracks lack."""
        known = {obj.object_id: obj.prompt for obj in sorted(self.summary.objects, key=lambda obj: obj.object_id)}
        if prompts:
            missing = [prompt for prompt in prompts if prompt not in self.prompts]
            if missing:
                raise litetext.InputError(f"prompt {missing[0]!r} was not tracked here; the tracked prompts are: "
                                          f"{', '.join(self.prompts)}")
        if object_ids is None:
            chosen = list(known)
        else:
            unknown = [i for i in object_ids if i not in known]
            if unknown:
                have = ", ".join(map(str, known)) or "none, nothing was found"
                raise litetext.InputError(f"no object {unknown[0]} in these tracks (object ids: {have})")
            chosen = list(dict.fromkeys(object_ids))
        return [i for i in chosen if not prompts or known[i] in prompts]

    def masks(self, object_ids: Sequence[int], *, union: bool, device="cpu"):
        """MASK tensors of the chosen objects: with `union`, `[frames, H, W]` (per frame, the union of those objects;
        zeros where none is visible), else `[objects × frames, H, W]`, object after object (object k's frames at
        `k * frames ...`). Only those objects' masks are decoded, one frame at a time."""
        import torch

        width, height = self.image_size
        frames = self.frame_count
        out = torch.zeros(((1 if union else len(object_ids)) * frames, height, width), dtype=torch.float32)
        slot = {object_id: k for k, object_id in enumerate(object_ids)}
        for index, frame in enumerate(self.frames):
            wanted = [inst for inst in frame["instances"] if inst["object_id"] in slot]
            if not wanted:
                continue
            decoded = litetext.masks_from_rle([inst["rle"] for inst in wanted])
            if union:
                out[index] = torch.from_numpy(decoded.any(axis=0).astype(np.float32))
                continue
            for inst, mask in zip(wanted, decoded):
                out[slot[inst["object_id"]] * frames + index] = torch.from_numpy(mask.astype(np.float32))
        return out.to(device)

    def summary_json(self) -> str:
        """The summary as JSON: frames, objects [object_id, prompt, first_frame, last_frame, frames, best_score],
        objects_per_prompt."""
        return json.dumps(self.summary.to_dict())


def parse_object_ids(text: str) -> list[int] | None:
    """Parse '0, 3' (or the JSON list '[0, 3]' the track node writes) into object ids; empty means all (None)."""
    ids = parse_indices(text, "object_ids")
    if ids is not None and any(i < 0 for i in ids):
        raise litetext.InputError(f"object ids are 0 or more, not {text!r}")
    return ids


__all__ = ["Tracks", "parse_object_ids"]
