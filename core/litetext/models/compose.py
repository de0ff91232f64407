"""Composed checkpoints: a SAM3-LiteText detector with SAM3's tracker, in the hub's `sam3_video` layout.

LiteText keeps SAM3's ViT-H intact, so a LiteText detector and SAM3's tracker can share one image encoding:
`assemble` writes them as one checkpoint (`detector_model.*` from the detector, `tracker_model.*` and
`tracker_neck.*` from the SAM3 checkpoint) that `litetext.load` — and transformers' `Sam3VideoModel`,
`Sam3TrackerModel`, `Sam3LiteTextModel` — load offline as one directory.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..version import __version__
from .configs import checkpoint_config, has_tracker

#: Where the ViT weights sit in a detector checkpoint (plain layout) and in a sam3_video checkpoint.
VIT_PREFIX = "vision_encoder.backbone."
DETECTOR_PREFIX = "detector_model."
TRACKER_PREFIXES = ("tracker_model.", "tracker_neck.")


@dataclass(frozen=True)
class Composition:
    """What `assemble` wrote: where, from which checkpoints, and how far apart the two ViTs were (0.0: same)."""

    path: Path
    detector: str
    tracker: str
    vit_max_difference: float
    tensors: int


class CheckpointWeights(Mapping):
    """The tensors of a local checkpoint directory (one or sharded safetensors files), read lazily by name."""

    def __init__(self, directory: str | os.PathLike):
        directory = Path(directory)
        index = directory / "model.safetensors.index.json"
        if index.is_file():
            weight_map = json.loads(index.read_text())["weight_map"]
            self._files = {name: directory / file for name, file in weight_map.items()}
        else:
            single = directory / "model.safetensors"
            if not single.is_file():
                raise ModelError(f"{directory} has no model.safetensors (nor a sharded index)")
            from safetensors import safe_open

            with safe_open(str(single), framework="pt") as handle:
                self._files = dict.fromkeys(handle.keys(), single)
        self._handles: dict[Path, Any] = {}

    def _handle(self, file: Path):
        from safetensors import safe_open

        if file not in self._handles:
            self._handles[file] = safe_open(str(file), framework="pt")
        return self._handles[file]

    def __getitem__(self, name: str):
        return self._handle(self._files[name]).get_tensor(name)

    def shape(self, name: str) -> tuple[int, ...]:
        """A tensor's shape, without reading it."""
        return tuple(self._handle(self._files[name]).get_slice(name).get_shape())

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


def vision_backbone_difference(first: Mapping[str, Any], second: Mapping[str, Any]) -> float:
    """The largest absolute difference between two ViT weight sets (0.0 when identical).

    Raises `ModelError` when they are not the same architecture (different names or shapes).
    """
    if set(first) != set(second):
        only = sorted(set(first) ^ set(second))[:3]
        raise ModelError(f"the two ViTs have different weights (e.g. {', '.join(only)}): not the same architecture")
    largest = 0.0
    for name in first:
        a, b = first[name], second[name]
        if tuple(a.shape) != tuple(b.shape):
            raise ModelError(f"ViT weight {name} is {tuple(a.shape)} in one and {tuple(b.shape)} in the other")
        largest = max(largest, float((a.float() - b.float()).abs().max()) if a.numel() else 0.0)
    return largest


def warn_if_different(difference: float, detector: str, tracker: str) -> None:
    """Say, with the largest difference, when the detector's ViT is not the tracker checkpoint's."""
    if difference > 0.0:
        warnings.warn(
            f"the ViT of {detector} differs from that of {tracker} (largest weight difference {difference:.3g}); "
            "clicks and tracking run on the detector's ViT, so the tracker sees features it was not trained on",
            stacklevel=3,
        )


class _Prefixed(Mapping):
    """A view of the tensors whose names start with `prefix`, with the prefix removed."""

    def __init__(self, weights: Mapping[str, Any], prefix: str):
        self._weights, self._prefix = weights, prefix
        self._names = [name[len(prefix):] for name in weights if name.startswith(prefix)]

    def __getitem__(self, name: str):
        return self._weights[self._prefix + name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def compose_directories(detector_dir: Path, tracker_dir: Path, out: str | os.PathLike, *,
                        detector: str | os.PathLike = "", tracker: str | os.PathLike = "",
                        overwrite: bool = False) -> Composition:
    """Write the detector checkpoint in `detector_dir` composed with the tracker of the `sam3_video` checkpoint in
    `tracker_dir` into the directory `out` (`detector` and `tracker` name them in messages and the record;
    `litetext.assemble` resolves names to directories first).

    Checks that the composed weights are exactly what `Sam3VideoModel` expects (no key missing, unexpected or of
    another shape) and compares the two ViTs, warning with the largest difference when they are not identical.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import Sam3Processor, Sam3VideoConfig, Sam3VideoProcessor

    detector, tracker = detector or detector_dir, tracker or tracker_dir
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ModelError(f"{out} exists and is not empty; choose another folder or pass overwrite=True (--force)")
    detector_config, tracker_config = checkpoint_config(detector_dir), checkpoint_config(tracker_dir)
    if not has_tracker(tracker_config):
        raise ModelError(f"{tracker} is a {tracker_config.model_type!r} checkpoint without a tracker; pass one in "
                         "the sam3_video layout, such as sam3 (facebook/sam3)")
    detector_weights, tracker_weights = CheckpointWeights(detector_dir), CheckpointWeights(tracker_dir)
    detector_prefix = DETECTOR_PREFIX if detector_config.model_type == "sam3_video" else ""
    if detector_prefix:
        detector_config = detector_config.detector_config
    composed: dict[str, tuple[Mapping[str, Any], str]] = {}  # composed name -> (source weights, source name)
    for name in detector_weights:
        if name.startswith(detector_prefix):
            composed[DETECTOR_PREFIX + name[len(detector_prefix):]] = (detector_weights, name)
    for name in tracker_weights:
        if name.startswith(TRACKER_PREFIXES):
            composed[name] = (tracker_weights, name)

    config = Sam3VideoConfig.from_dict({**tracker_config.to_dict(), "detector_config": detector_config.to_dict()})
    config.architectures = ["Sam3VideoModel"]
    _check_keys(config, {name: source.shape(key) for name, (source, key) in composed.items()})
    difference = vision_backbone_difference(_Prefixed(detector_weights, detector_prefix + VIT_PREFIX),
                                            _Prefixed(tracker_weights, DETECTOR_PREFIX + VIT_PREFIX))
    warn_if_different(difference, str(detector), str(tracker))

    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        tensors = {name: source[key].contiguous() for name, (source, key) in composed.items()}
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    config.save_pretrained(out)
    images_and_text = Sam3Processor.from_pretrained(detector_dir)
    video = Sam3VideoProcessor.from_pretrained(tracker_dir).video_processor
    Sam3VideoProcessor(image_processor=images_and_text.image_processor, video_processor=video,
                       tokenizer=images_and_text.tokenizer).save_pretrained(out)
    (out / "litetext_composition.json").write_text(json.dumps(
        {"detector": str(detector), "tracker": str(tracker), "vit_max_difference": difference,
         "litetext": __version__}, indent=2))
    return Composition(out, str(detector), str(tracker), difference, len(tensors))


def _check_keys(config, shapes: dict[str, tuple[int, ...]]) -> None:
    """The composed weights must be exactly the parameters and buffers `Sam3VideoModel(config)` has."""
    import torch
    from transformers import Sam3VideoModel

    with torch.device("meta"):
        expected = {name: tuple(t.shape) for name, t in Sam3VideoModel(config).state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    reshaped = sorted(n for n in set(expected) & set(shapes) if expected[n] != shapes[n])
    problems = [f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''} ({len(names)})"
                for label, names in (("missing", missing), ("unexpected", unexpected), ("other shape", reshaped))
                if names]
    if problems:
        raise ModelError("the composed checkpoint does not fit Sam3VideoModel: " + "; ".join(problems))
