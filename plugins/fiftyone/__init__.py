"""litetext for FiftyOne: the "Segment with text" operator, FiftyOne image and video `Model`s, conversions.

This directory is both the Python package `litetext_fiftyone` and a FiftyOne plugin (`fiftyone.yml`):
FiftyOne calls `register(plugin)` below. Importing the package stays light; fiftyone loads on first use.

    >>> from litetext_fiftyone import LitetextModel, LitetextVideoModel
    >>> dataset.apply_model(LitetextModel(["person", "dog"]), label_field="litetext", batch_size=8)
    >>> dataset.apply_model(LitetextModel(), label_field="per_sample", prompt_field="ground_truth")
    >>> videos.apply_model(LitetextVideoModel(["person"], tracker="sam3"), label_field="tracks")  # frames.tracks
"""

from __future__ import annotations

from importlib import import_module

_LAZY = {
    "to_fiftyone_detections": "convert",
    "to_fiftyone_segmentation": "convert",
    "semantic_targets": "convert",
    "detection_to_mask": "convert",
    "SegmentOptions": "segment",
    "RunSummary": "segment",
    "segment_samples": "segment",
    "iter_segment_samples": "segment",
    "classes_from_field": "segment",
    "parse_prompt_specs": "segment",
    "LitetextModel": "model",
    "LitetextModelConfig": "model",
    "LitetextVideoModel": "video",
    "LitetextVideoModelConfig": "video",
    "download_model": "remote_zoo",
    "load_model": "remote_zoo",
    "SegmentWithText": "operators",
}

__all__ = ["register", *_LAZY]

PLUGIN_NAME = "@litetext/sam3-litetext"
OPERATOR_URI = f"{PLUGIN_NAME}/segment_with_text"


def register(plugin) -> None:
    """FiftyOne plugin entry point: register the operators.

    The operators come from the installed `litetext_fiftyone` package, so the plugin and the Python API
    share one copy of the code; a plugin copied without the package falls back to its own files.
    """
    try:
        from litetext_fiftyone.operators import register as register_operators
    except ImportError:
        try:
            from .operators import register as register_operators
        except ImportError as error:
            raise ImportError(
                "the @litetext/sam3-litetext plugin needs the litetext package in FiftyOne's environment: "
                'pip install "litetext[fiftyone] @ git+https://github.com/litetext/litetext" (or run '
                "`fiftyone plugins requirements @litetext/sam3-litetext --install`)"
            ) from error
    register_operators(plugin)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
