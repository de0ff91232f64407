"""One exception hierarchy for everything litetext raises on purpose."""

from __future__ import annotations


class LitetextError(Exception):
    """Base class of every error litetext raises on purpose."""


class InputError(LitetextError, ValueError):
    """Something passed in by the caller is not usable."""


class InvalidImageError(InputError):
    """The image cannot be read: not an image, truncated, empty, or an unsupported layout."""


class ImageTooLargeError(InvalidImageError):
    """The image has more pixels than the configured limit (a decompression bomb guard)."""


class InvalidVideoError(InputError):
    """A video cannot be read: not a video, truncated, no frames, or frames that change size."""


class PromptError(InputError):
    """A text prompt is empty, blank or not text."""


class BoxError(InputError):
    """An exemplar box is malformed or lies outside the image."""


class ModelError(LitetextError):
    """A checkpoint cannot be found, is unsafe, or is not a SAM3 / SAM3-LiteText model."""


class ModelNotFoundError(ModelError):
    """No checkpoint exists at the given alias, hub id or local directory."""


class UnsafeCheckpointError(ModelError):
    """The checkpoint has no safetensors weights (pickle weights are never loaded)."""


class NoTrackerError(ModelError):
    """A click or box on one object was asked of an engine whose checkpoint has no tracker."""

    def __init__(self, message: str = ""):
        super().__init__(message or (
            "this model has no tracker for clicks and boxes on one object: load a checkpoint that has one "
            "(litetext.load('sam3')), or compose a LiteText model with SAM3's tracker: litetext.load('s0-16', "
            "tracker='sam3') or `litetext models assemble s0-16 --tracker sam3 --out DIR`"))


class OutputError(LitetextError, OSError):
    """Results cannot be written: the output folder is not writable, is a file, is gone, or the disk is full."""
