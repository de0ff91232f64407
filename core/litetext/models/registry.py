"""The registry of known checkpoints and their short aliases."""

from __future__ import annotations

from dataclasses import dataclass

#: SAM3's ViT-H with its FPN neck, counted on transformers' Sam3VisionModel (446.2M trunk + 7.8M neck).
VIT_H_PARAMS_M = 454.0


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
    #: The image encoder: SAM3's ViT-H, or an EfficientSAM3 student trunk.
    image_encoder: str = "SAM3 ViT-H"
    #: Parameters of the image encoder (trunk, projection head and FPN neck), in millions; None for tiny ones.
    image_encoder_params_m: float | None = VIT_H_PARAMS_M
    #: For a model published only as an original `.pt`: its path in `repo_id`, converted on first use.
    original_file: str | None = None


_NO_HF = (
    "published only as an original .pt checkpoint (Simon7108528/EfficientSAM3); convert it with transformers' "
    "convert_sam3_lite_text_to_hf.py and pass the output directory"
)

_TINY = "built locally on first use; random weights, its masks are meaningless"

_TINY_VIT = {"image_encoder": "tiny ViT", "image_encoder_params_m": None}

_EFFICIENT = ("EfficientSAM3: a distilled student trunk in place of SAM3's ViT-H (pip install "
              "\"litetext[efficient]\"); its original .pt is downloaded and converted into litetext's cache on first "
              "use (file name unverified)")

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
                  _TINY, **_TINY_VIT),
        ModelSpec("tiny-random-sam3", None, "sam3", "tiny random CLIP (tests and offline demos)", 0.1, 32, True,
                  _TINY, **_TINY_VIT),
        ModelSpec("tiny-random-video", None, "sam3", "tiny random CLIP + tracker (offline stand-in for sam3)",
                  0.1, 32, True, _TINY + "; the sam3_video layout of facebook/sam3", has_tracker=True, **_TINY_VIT),
        ModelSpec("ev-m", "Simon7108528/EfficientSAM3", "litetext", "MobileCLIP-S0", 42.5, 16, False,
                  _EFFICIENT, image_encoder="EfficientViT-b1 (student)", image_encoder_params_m=22.15,
                  original_file="efficientsam3_ft/efficientsam3_efficientvit.pt"),
        ModelSpec("rv-m", "Simon7108528/EfficientSAM3", "litetext", "MobileCLIP-S0", 42.5, 16, False,
                  _EFFICIENT, image_encoder="RepViT-m1.1 (student)", image_encoder_params_m=25.54,
                  original_file="efficientsam3_ft/efficientsam3_repvit.pt"),
        ModelSpec("tv-m", "Simon7108528/EfficientSAM3", "litetext", "MobileCLIP-S0", 42.5, 16, False,
                  _EFFICIENT, image_encoder="TinyViT-11m (student)", image_encoder_params_m=28.25,
                  original_file="efficientsam3_ft/efficientsam3_tinyvit.pt"),
        ModelSpec("tiny-random-student", None, "litetext", "tiny random LiteText with a student trunk (offline)",
                  0.1, 16, True, _TINY + "; an EfficientViT-b0 student trunk in place of the ViT (needs timm)",
                  image_encoder="EfficientViT-b0 (student, tiny)", image_encoder_params_m=None),
        ModelSpec("tiny-random-tracker", None, "litetext", "tiny random LiteText + SAM3 tracker (offline)", 0.1,
                  16, True, _TINY + "; a LiteText detector composed with tiny-random-video's tracker",
                  has_tracker=True, **_TINY_VIT),
    )
}

DEFAULT_MODEL = "s0-16"
TINY_RANDOM_ALIASES = ("tiny-random", "tiny-random-sam3", "tiny-random-video", "tiny-random-tracker",
                       "tiny-random-student")


def list_models() -> list[ModelSpec]:
    """All registered checkpoints, in registry order."""
    return list(MODELS.values())
