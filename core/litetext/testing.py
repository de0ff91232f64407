"""The random-weight checkpoint builders, for tests and offline demos (they live in `litetext.models.random_weights`,
which the loader uses for the tiny-random aliases): miniature checkpoints saved through the same path as hub ones,
and full-size random models for timing."""

from __future__ import annotations

from .models.random_weights import (
    TINY_IMAGE_SIZE,
    TINY_STUDENT_TRUNK,
    TRACKER_WIDTH,
    build_full_size_random_model,
    build_full_size_random_student_model,
    build_full_size_random_tracker,
    build_full_size_random_video_tracker,
    build_tiny_checkpoint,
    build_tiny_composed_checkpoint,
    build_tiny_video_checkpoint,
)

__all__ = ["TINY_IMAGE_SIZE", "TINY_STUDENT_TRUNK", "TRACKER_WIDTH", "build_full_size_random_model",
           "build_full_size_random_student_model", "build_full_size_random_tracker",
           "build_full_size_random_video_tracker", "build_tiny_checkpoint", "build_tiny_composed_checkpoint",
           "build_tiny_video_checkpoint"]
