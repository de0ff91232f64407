"""The registry of known checkpoints and their short aliases."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """A known checkpoint: its alias, hub id and what its text encoder is.

    `repo_id` is None where no transformers-format checkpoint has been published; `verified` says whether the
    id was confirmed in transformers' own code or docs (others come from third-party sources).
    """

    alias: str
    repo_id: str | None
    family: str
    text_encoder: str
    text_encoder_params_m: float
    context_length: int
    verified: bool
    note: str = ""


_NO_HF = (
    "published only as an original .pt checkpoint (Simon7108528/EfficientSAM3); convert it with transformers' "
    "convert_sam3_lite_text_to_hf.py and pass the output directory"
)

MODELS: dict[str, ModelSpec] = {
    spec.alias: spec
    for spec in (
        ModelSpec("s0-16", "yonigozlan/sam3-litetext-s0", "litetext", "MobileCLIP-S0", 42.5, 16, True,
                  "named in transformers' sam3_lite_text docs and tests"),
        ModelSpec("s1-16", "yonigozlan/sam3-litetext-s1", "litetext", "MobileCLIP-S1", 63.5, 16, False,
                  "id seen only in third-party sources"),
        ModelSpec("l-16", "yonigozlan/sam3-litetext-l", "litetext", "MobileCLIP2-L", 123.8, 16, False,
                  "id seen only in third-party sources"),
        ModelSpec("s0-32", None, "litetext", "MobileCLIP-S0", 42.5, 32, False, _NO_HF),
        ModelSpec("s1-32", None, "litetext", "MobileCLIP-S1", 63.5, 32, False, _NO_HF),
        ModelSpec("l-32", None, "litetext", "MobileCLIP2-L", 123.8, 32, False, _NO_HF),
        ModelSpec("sam3", "facebook/sam3", "sam3", "CLIP ViT-L text (SAM3 teacher)", 354.0, 32, True,
                  "gated: accept the licence on the hub and log in (hf auth login)"),
        ModelSpec("tiny-random", None, "litetext", "tiny random (tests and offline demos)", 0.1, 16, True,
                  "built locally on first use; random weights, its masks are meaningless"),
        ModelSpec("tiny-random-sam3", None, "sam3", "tiny random CLIP (tests and offline demos)", 0.1, 32, True,
                  "built locally on first use; random weights, its masks are meaningless"),
    )
}

DEFAULT_MODEL = "s0-16"
TINY_RANDOM_ALIASES = ("tiny-random", "tiny-random-sam3")


def list_models() -> list[ModelSpec]:
    """All registered checkpoints, in registry order."""
    return list(MODELS.values())
