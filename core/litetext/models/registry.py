"""The registry of known checkpoints and their short aliases."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """A known checkpoint: its alias, hub id and what its text encoder is.

    `repo_id` is None where no transformers-format checkpoint has been published; `verified` says whether the
    id was confirmed (a model card with transformers usage, or transformers' own docs); others come from
    third-party sources. `has_tracker` says whether the checkpoint also holds SAM3's tracker (the `sam3_video`
    layout), which answers clicks and boxes on one object and tracks through video.
    """

    alias: str
    repo_id: str | None
    family: str
    text_encoder: str
    text_encoder_params_m: float
    context_length: int
    verified: bool
    note: str = ""
    has_tracker: bool = False


_NO_HF = (
    "published only as an original .pt checkpoint (Simon7108528/EfficientSAM3); convert it with transformers' "
    "convert_sam3_lite_text_to_hf.py and pass the output directory"
)

_TINY = "built locally on first use; random weights, its masks are meaningless"

MODELS: dict[str, ModelSpec] = {
    spec.alias: spec
    for spec in (
        ModelSpec("s0-16", "Simon7108528/sam3-litetext-s0", "litetext", "MobileCLIP-S0", 42.5, 16, True,
                  "the authors' model card (AutoModel/AutoProcessor usage)"),
        ModelSpec("s1-16", "yonigozlan/sam3-litetext-s1", "litetext", "MobileCLIP-S1", 63.5, 16, False,
                  "id seen only in third-party sources"),
        ModelSpec("l-16", "yonigozlan/sam3-litetext-l", "litetext", "MobileCLIP2-L", 123.8, 16, False,
                  "id seen only in third-party sources"),
        ModelSpec("s0-32", None, "litetext", "MobileCLIP-S0", 42.5, 32, False, _NO_HF),
        ModelSpec("s1-32", None, "litetext", "MobileCLIP-S1", 63.5, 32, False, _NO_HF),
        ModelSpec("l-32", None, "litetext", "MobileCLIP2-L", 123.8, 32, False, _NO_HF),
        ModelSpec("sam3", "facebook/sam3", "sam3", "CLIP ViT-L text (SAM3 teacher)", 354.0, 32, True,
                  "gated: accept the licence on the hub and log in (hf auth login); a sam3_video checkpoint, "
                  "so it brings SAM3's tracker too", has_tracker=True),
        ModelSpec("tiny-random", None, "litetext", "tiny random (tests and offline demos)", 0.1, 16, True,
                  _TINY),
        ModelSpec("tiny-random-sam3", None, "sam3", "tiny random CLIP (tests and offline demos)", 0.1, 32, True,
                  _TINY),
        ModelSpec("tiny-random-video", None, "sam3", "tiny random CLIP + tracker (offline stand-in for sam3)",
                  0.1, 32, True, _TINY + "; the sam3_video layout of facebook/sam3", has_tracker=True),
        ModelSpec("tiny-random-tracker", None, "litetext", "tiny random LiteText + SAM3 tracker (offline)", 0.1,
                  16, True, _TINY + "; a LiteText detector composed with tiny-random-video's tracker",
                  has_tracker=True),
    )
}

DEFAULT_MODEL = "s0-16"
TINY_RANDOM_ALIASES = ("tiny-random", "tiny-random-sam3", "tiny-random-video", "tiny-random-tracker")


def list_models() -> list[ModelSpec]:
    """All registered checkpoints, in registry order."""
    return list(MODELS.values())
