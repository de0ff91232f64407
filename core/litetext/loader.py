"""The loader: `litetext.load`, the one place that picks a runtime, builds the engine around it (attaching a
tracker) and keeps one engine per model, device and dtype for the whole process."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

from .engine import Engine
from .errors import ModelError
from .models.configs import check_image_size
from .models.registry import DEFAULT_MODEL

_ENGINES: dict[tuple, Engine] = {}
_ENGINES_LOCK = threading.Lock()
BACKENDS = ("auto", "torch", "onnx")


def load(
    model: str | os.PathLike = DEFAULT_MODEL,
    device: str = "auto",
    dtype: Any = "auto",
    *,
    tracker: str | os.PathLike | bool | None = None,
    image_cache_bytes: int | None = None,
    text_cache_bytes: int | None = None,
    backend: str = "auto",
    image_size: int | None = None,
) -> Engine:
    """The process-wide engine for `model` (an alias, hub id or local directory), `device` and `dtype`.

    `tracker` gives clicks and boxes on one object (`Engine.segment_object`): by default a checkpoint that
    holds SAM3's tracker (the `sam3_video` layout, as `facebook/sam3`) loads it too; `False` leaves it out; an
    alias, hub id or directory of such a checkpoint composes its tracker with `model`'s detector, sharing the
    detector's ViT (`litetext models assemble` writes that composition as one checkpoint).

    Calling it again with the same arguments returns the same engine: weights are loaded once and every
    adapter shares the caches. Cache budgets, when given, resize the shared caches (0 disables one).

    `backend="onnx"` runs the same engine on ONNX Runtime (CPU; `pip install "litetext[onnx]"`): `model` is an
    export directory (`litetext export`), or a model exported into litetext's cache on first use. The default,
    `auto`, is ONNX for an export directory and PyTorch for everything else. An export of a checkpoint with a
    tracker answers clicks too (`tracker` None or True; False leaves it out); video needs PyTorch.

    `image_size` (opt-in, inexact) runs the vision encoder at that input size (a multiple of 14, e.g. 672, 504, 336)
    instead of the checkpoint's 1008: the neck and heads scale with the feature map, so a smaller size is much
    faster, at a cost in quality that `litetext bench --reference-size 1008` measures on your weights. A tracker
    is built for that size too (PyTorch only), so clicks and video run on the same smaller features.
    """
    from .onnx.manifest import is_export

    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}: use 'torch', 'onnx' or 'auto'")
    caches = {"image_cache_bytes": image_cache_bytes, "text_cache_bytes": text_cache_bytes}
    if image_size is not None:
        check_image_size(image_size)
    if backend == "onnx" or (backend == "auto" and is_export(model)):
        if image_size is not None and tracker not in (None, False):
            raise ModelError("the ONNX backend exports no tracker at another image_size: clicks there need the "
                             "checkpoint's own size (or backend='torch', which resizes the tracker too)")
        return _load_onnx(os.fspath(model), device, dtype, tracker, caches, image_size)
    return _load_torch(os.fspath(model), device, dtype, tracker, caches, image_size)


def _load_torch(name: str, device: str, dtype: Any, tracker: Any, caches: dict[str, int | None],
                image_size: int | None) -> Engine:
    from .models.building import load_model_and_processor, tracker_for
    from .models.checkpoints import resolve_checkpoint
    from .models.precision import precision_name, resolve_device, resolve_dtypes

    resolved_device = resolve_device(device)
    vision_dtype, resolved_dtype = resolve_dtypes(dtype, resolved_device)
    tracker_name = tracker if isinstance(tracker, bool) or tracker is None else os.fspath(tracker)
    key = (name, resolved_device, precision_name(vision_dtype, resolved_dtype), tracker_name, image_size)

    def build() -> Engine:
        checkpoint = resolve_checkpoint(name)
        model, processor = load_model_and_processor(checkpoint, resolved_device, resolved_dtype, vision_dtype,
                                                    image_size)
        tracker_model, tracker_source = tracker_for(model, checkpoint, tracker_name, resolved_device,
                                                    resolved_dtype, vision_dtype, image_size)
        return Engine(model, processor, name=name, checkpoint=checkpoint, tracker=tracker_model,
                      tracker_checkpoint=tracker_source, **caches)

    return shared_engine(key, build, **caches)


def _load_onnx(name: str, device: str, dtype: Any, tracker: Any, caches: dict[str, int | None],
               image_size: int | None) -> Engine:
    """The ONNX Runtime engine for an export directory, or for a model exported into the cache on first use."""
    from .onnx.export import cached_export, export_directory

    if device not in ("auto", "cpu"):
        raise ModelError(f"the ONNX backend runs on the CPU (ONNX Runtime), not {device!r}; use device='cpu', or "
                         "backend='torch' for GPUs")
    if tracker not in (None, True, False):
        raise ModelError("the ONNX backend runs the tracker an export holds; to compose one, write the composition "
                         "first (litetext models assemble MODEL --tracker sam3 --out DIR), then export or load DIR")
    directory, precision = export_directory(name, dtype, image_size=image_size)

    def build() -> Engine:
        from transformers import AutoProcessor

        from .onnx.manifest import is_export
        from .onnx.runtime import OnnxSam3
        from .onnx.tracker import OnnxTracker

        if not is_export(directory):
            warnings.warn(f"exporting {name} to ONNX into {directory} (once; minutes for a full-size model)",
                          stacklevel=4)
        exported = cached_export(name, dtype, image_size=image_size)
        runtime = OnnxSam3(exported)
        # by default an export's tracker graphs answer clicks; tracker=True requires them, False leaves them out
        attach = tracker is True or (tracker is None and runtime.manifest.has_tracker)
        return Engine(runtime, AutoProcessor.from_pretrained(exported), name=name, checkpoint=str(exported),
                      tracker=OnnxTracker(runtime) if attach else None, **caches)

    engine = shared_engine((name, "cpu", precision, "onnx", image_size, tracker is False), build, **caches)
    if tracker is True and not engine.has_tracker:
        from .onnx.tracker import missing_tracker

        raise missing_tracker(directory)
    return engine


def shared_engine(key: tuple, build: Callable[[], Engine], *, image_cache_bytes: int | None = None,
                  text_cache_bytes: int | None = None) -> Engine:
    """The process-wide engine under `key` (built once by `build`); a later call's cache sizes resize it."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = build()
            return engine
    if image_cache_bytes is not None:
        engine.image_cache.resize(image_cache_bytes)
    if text_cache_bytes is not None:
        engine.text_cache.resize(text_cache_bytes)
    return engine


def loaded_engines() -> list[Engine]:
    """Every engine loaded in this process so far."""
    with _ENGINES_LOCK:
        return list(_ENGINES.values())
