"""Model building and checkpoints: the registry of aliases, resolving and loading checkpoints, composing a
detector with SAM3's tracker, the random-weight builders and the atomic directory writer. Nothing here runs
a model: the runtimes and pipelines above do.

`litetext.models` keeps the registry's names (`MODELS`, `DEFAULT_MODEL`, `ModelSpec`, `list_models`); the
modules beside it are imported by name.
"""

from __future__ import annotations

from .registry import DEFAULT_MODEL, MODELS, TINY_RANDOM_ALIASES, ModelSpec, list_models

__all__ = ["DEFAULT_MODEL", "MODELS", "TINY_RANDOM_ALIASES", "ModelSpec", "list_models"]
