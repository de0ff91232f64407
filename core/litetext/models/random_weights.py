"""Miniature random-weight checkpoints that load through the same path as hub checkpoints.

They let tests, the CLI and the apps run fully offline. Their weights are random: masks and scores are
meaningless, only the shapes and the code paths are real.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_WORDS = (
    "a an the of and with on in near red blue green yellow white black small big person people man woman "
    "child dog cat bird horse car bus truck bicycle motorcycle train boat plane tree sky road building "
    "window door wheel cup coffee table chair bottle plate food fruit apple banana flower grass water "
    "rocket astronaut face hair hand shirt school sign light street wall floor"
).split()

TINY_IMAGE_SIZE = 112
#: The smallest EfficientSAM3 student trunk (0.7M weights), for tiny student checkpoints.
TINY_STUDENT_TRUNK = "efficientvit_b0"


def build_tiny_checkpoint(
    path: str | os.PathLike, *, architecture: str = "litetext", seed: int = 0, width: int = 32,
    vision_from: str | os.PathLike | None = None, student: str | None = None,
) -> Path:
    """Build and save a tiny random checkpoint (model, processor, tokenizer) into `path`.

    `architecture` is "litetext" (`Sam3LiteTextModel`, MobileCLIP-style text encoder with RepMixer blocks)
    or "sam3" (`Sam3Model`, CLIP text encoder). `width` is the FPN and heads' hidden size (the tracker needs a
    multiple of 64 above 64, so checkpoints meant to meet a tracker use 128). `vision_from` copies the ViT
    weights of another tiny checkpoint (any layout), as LiteText keeps SAM3's ViT. `student` replaces the ViT with
    an EfficientSAM3 student trunk (a `STUDENT_TRUNKS` name, e.g. `TINY_STUDENT_TRUNK`; needs timm) with a
    32-wide projection head. Returns the directory.
    """
    import torch
    from transformers import Sam3LiteTextModel, Sam3Model

    tokenizer = _word_level_tokenizer()
    torch.manual_seed(seed)
    config = _tiny_detector_config(architecture, len(tokenizer), width)
    if student is not None:
        config.vision_config.backbone_config = _student_backbone_config(student, TINY_IMAGE_SIZE, hidden_size=32)
    model = (Sam3LiteTextModel if architecture == "litetext" else Sam3Model)(config)
    _spread_scores(model)
    if vision_from is not None:
        _copy_vision_backbone(model, Path(vision_from))
    path = Path(path)
    with _quiet_saves():
        path.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(path)
        _tiny_processor(tokenizer).save_pretrained(path)
    return path


def build_tiny_video_checkpoint(path: str | os.PathLike, *, seed: int = 0) -> Path:
    """A tiny random SAM3 checkpoint in the hub layout of `facebook/sam3`: a `sam3_video` config, the detector
    under `detector_model.*`, the tracker under `tracker_model.*` and `tracker_neck.*`, a `Sam3VideoProcessor`.

    The weights are written with safetensors directly: `Sam3VideoModel.save_pretrained` (transformers 5.24)
    doubles the `tracker_model.` prefix, which the hub checkpoint does not. Returns the directory.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import Sam3ImageProcessor, Sam3VideoConfig, Sam3VideoModel, Sam3VideoProcessor
    from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

    tokenizer = _word_level_tokenizer()
    width = TRACKER_WIDTH
    detector = _tiny_detector_config("sam3", len(tokenizer), width)
    vision = detector.vision_config.to_dict()
    tracker = {
        "vision_config": vision,
        "prompt_encoder_config": {"hidden_size": width, "image_size": TINY_IMAGE_SIZE, "patch_size": 14},
        "mask_decoder_config": {"hidden_size": width, "mlp_dim": 64, "num_attention_heads": 2,
                                "iou_head_hidden_dim": 32},
        "memory_attention_hidden_size": width, "memory_attention_num_layers": 1,
        "memory_attention_feed_forward_hidden_size": 64, "memory_encoder_hidden_size": width,
        "memory_encoder_output_channels": 64, "mask_downsampler_embed_dim": width,
        "memory_fuser_embed_dim": width, "memory_fuser_intermediate_dim": 64,
        "memory_attention_rope_feat_sizes": [TINY_IMAGE_SIZE // 14] * 2, "image_size": TINY_IMAGE_SIZE,
    }
    config = Sam3VideoConfig(detector_config=detector.to_dict(), tracker_config=tracker,
                             low_res_mask_size=4 * TINY_IMAGE_SIZE // 14)
    config.architectures = ["Sam3VideoModel"]
    torch.manual_seed(seed)
    model = Sam3VideoModel(config)
    _spread_scores(model.detector_model)
    path = Path(path)
    with _quiet_saves():
        path.mkdir(parents=True, exist_ok=True)
        weights = {key: value.detach().contiguous().clone() for key, value in model.state_dict().items()}
        save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
        config.save_pretrained(path)
        size = {"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
        Sam3VideoProcessor(
            image_processor=Sam3ImageProcessor(size=size, mask_size={"height": 32, "width": 32}),
            video_processor=Sam2VideoVideoProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3),
            tokenizer=tokenizer,
        ).save_pretrained(path)
    return path


def build_tiny_composed_checkpoint(path: str | os.PathLike, tracker_source: str | os.PathLike, *,
                                   seed: int = 1) -> Path:
    """A tiny LiteText detector (sharing `tracker_source`'s ViT, as the real students share SAM3's) composed with
    the tracker of `tracker_source` (a `build_tiny_video_checkpoint` directory) as `litetext.assemble` does."""
    import tempfile

    from .compose import compose_directories

    with tempfile.TemporaryDirectory(prefix="litetext-tiny-detector-") as scratch:
        detector = build_tiny_checkpoint(Path(scratch) / "detector", width=TRACKER_WIDTH, seed=seed,
                                         vision_from=tracker_source)
        compose_directories(detector, Path(tracker_source), path)
    return Path(path)


#: FPN width of the tiny checkpoints that carry or meet a tracker (its memory attention needs > 64).
TRACKER_WIDTH = 128


def _tiny_detector_config(architecture: str, vocab_size: int, width: int):
    from transformers import Sam3Config, Sam3LiteTextConfig

    vision = {
        "backbone_config": {
            "model_type": "sam3_vit_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "image_size": TINY_IMAGE_SIZE, "patch_size": 14, "window_size": 4,
            "global_attn_indexes": [1], "pretrain_image_size": 56,
        },
        "fpn_hidden_size": width,
        "backbone_feature_sizes": [[32, 32], [16, 16], [8, 8]],
    }
    heads = {"hidden_size": width, "num_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    common = {
        "vision_config": vision,
        "geometry_encoder_config": heads,
        "detr_encoder_config": heads,
        "detr_decoder_config": {**heads, "num_queries": 20},
        "mask_decoder_config": {"hidden_size": width, "num_upsampling_stages": 3, "num_attention_heads": 2},
    }
    text = {"vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "projection_dim": width}
    if architecture == "litetext":
        return Sam3LiteTextConfig(text_config={**text, "max_position_embeddings": 16}, **common)
    if architecture == "sam3":
        return Sam3Config(text_config={**text, "max_position_embeddings": 32, "eos_token_id": vocab_size - 1,
                                       "bos_token_id": 2, "pad_token_id": 0}, **common)
    raise ValueError(f"architecture must be 'litetext' or 'sam3', not {architecture!r}")


def _tiny_processor(tokenizer):
    from transformers import Sam3ImageProcessor, Sam3Processor

    return Sam3Processor(
        image_processor=Sam3ImageProcessor(
            size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}, mask_size={"height": 32, "width": 32}
        ),
        tokenizer=tokenizer,
    )


def _copy_vision_backbone(model, source: Path) -> None:
    """Give `model` the ViT weights saved in `source` (a plain or `sam3_video` checkpoint)."""
    import torch
    from safetensors import safe_open

    with safe_open(str(source / "model.safetensors"), framework="pt") as weights:
        for prefix in ("vision_encoder.backbone.", "detector_model.vision_encoder.backbone."):
            found = {key[len(prefix):]: weights.get_tensor(key) for key in weights.keys() if key.startswith(prefix)}
            if found:
                with torch.no_grad():
                    model.vision_encoder.backbone.load_state_dict(found, strict=True)
                return
    raise ValueError(f"{source} has no ViT weights to copy")


@contextlib.contextmanager
def _quiet_saves():
    """Tiny saves need no transformers progress bar."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.enable_progress_bar()


#: Text-encoder shapes of the published students (from their hub configs); vision and heads are SAM3's.
FULL_SIZE_TEXT_CONFIGS = {
    "s0": {"hidden_size": 512, "num_hidden_layers": 6, "num_attention_heads": 8, "intermediate_size": 2048,
           "use_repmixer_blocks": True},
    "s1": {"hidden_size": 512, "num_hidden_layers": 12, "num_attention_heads": 8, "intermediate_size": 2048,
           "use_repmixer_blocks": False},
    "l": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
          "use_repmixer_blocks": False},
}


def build_full_size_random_model(variant: str = "s0", *, dtype=None, device: str = "cpu", seed: int = 0,
                                 student: str | None = None):
    """A full-size SAM3-LiteText (`s0`, `s1`, `l`) or SAM3 (`sam3`) model with random weights, in memory.

    Cost does not depend on trained weights, so this measures real speed and memory without a download.
    `student` replaces SAM3's ViT with an EfficientSAM3 student trunk (a `STUDENT_TRUNKS` name or `EV-M`, `RV-M`,
    `TV-M`). Returns `(model, processor)`; the processor is `Sam3Processor` at 1008 px with the offline tokenizer.
    """
    import torch
    from transformers import (
        Sam3Config,
        Sam3ImageProcessor,
        Sam3LiteTextConfig,
        Sam3LiteTextModel,
        Sam3Model,
        Sam3Processor,
    )

    torch.manual_seed(seed)
    if variant == "sam3":
        config = Sam3Config()
        model_class = Sam3Model
    elif variant in FULL_SIZE_TEXT_CONFIGS:
        config = Sam3LiteTextConfig(text_config={**FULL_SIZE_TEXT_CONFIGS[variant], "max_position_embeddings": 77})
        model_class = Sam3LiteTextModel
    else:
        raise ValueError(f"variant must be one of s0, s1, l, sam3; not {variant!r}")
    if student is not None:
        config.vision_config.backbone_config = _student_backbone_config(student, config.vision_config.image_size)
    with torch.device(device):
        model = model_class(config)
    _spread_scores(model)
    model = model.to(dtype=dtype or torch.float32).eval()
    processor = Sam3Processor(image_processor=Sam3ImageProcessor(), tokenizer=_word_level_tokenizer())
    return model, processor


def build_full_size_random_student_model(trunk: str, *, dtype=None, device: str = "cpu", seed: int = 0):
    """EfficientSAM3 at full size with random weights: the student image encoder `trunk` (a `STUDENT_TRUNKS` name or
    `EV-M`, `RV-M`, `TV-M`), SAM3's neck and heads and MobileCLIP-S0 text, as the released models pair them.
    Returns `(model, processor)` as `build_full_size_random_model`."""
    return build_full_size_random_model("s0", dtype=dtype, device=device, seed=seed, student=trunk)


def _student_backbone_config(trunk: str, image_size: int, **fields):
    from .student_backbones import register_student_backbones, student_backbone_config

    register_student_backbones()
    return student_backbone_config(trunk, image_size, **fields)


def build_full_size_random_tracker(detector, *, dtype=None, device: str = "cpu", seed: int = 0):
    """SAM3's full-size tracker (`Sam3TrackerModel`, default config) with random weights, sharing `detector`'s
    ViT as litetext's engine does. For timing clicks without a download."""
    import torch
    from transformers import Sam3TrackerConfig, Sam3TrackerModel

    torch.manual_seed(seed)
    config = Sam3TrackerConfig()
    # Its own ViT is replaced by the detector's: build it one layer deep (same width, so the neck fits).
    config.vision_config.backbone_config.num_hidden_layers = 1
    config.vision_config.backbone_config.global_attn_indexes = [0]
    with torch.device(device):
        tracker = Sam3TrackerModel(config)
    tracker.vision_encoder.backbone = detector.vision_encoder.backbone
    return tracker.to(dtype=dtype or torch.float32).eval()


def build_full_size_random_video_tracker(detector, *, dtype=None, device: str = "cpu", seed: int = 0,
                                        image_size: int | None = None):
    """SAM3's full-size image tracker and video tracker with random weights around `detector` (sharing its ViT):
    `(Sam3TrackerModel, Sam3VideoConfig, Sam3TrackerVideoModel without vision encoder)`, what
    `litetext.tracking.VideoTracker` takes. For timing tracking without a download. `image_size`: the video
    tracker built for that input size (the image tracker stays full-size: `building.resize_tracker` resizes it)."""
    import torch
    from transformers import Sam3TrackerVideoConfig, Sam3TrackerVideoModel, Sam3VideoConfig

    from .configs import with_image_size

    image_tracker = build_full_size_random_tracker(detector, dtype=dtype, device=device, seed=seed)
    config = Sam3VideoConfig(detector_config=detector.config.to_dict(), tracker_config=Sam3TrackerVideoConfig())
    if image_size is not None:
        config = with_image_size(config, image_size)
    torch.manual_seed(seed)
    with torch.device(device):
        video_tracker = Sam3TrackerVideoModel(config.tracker_config, remove_vision_encoder=True)
    return image_tracker, config, video_tracker.to(dtype=dtype or torch.float32).eval()


def _spread_scores(model) -> None:
    """Give the random model confident-looking outputs, as trained ones have.

    With plain random init every score sits near sigmoid(0) * sigmoid(0) = 0.25, so nothing would be kept,
    and every mask logit sits near 0, so every pixel would hover at probability 0.5 where float rounding
    noise (1e-9) decides the mask. Pushing presence up, widening the query logits and scaling the mask
    logits avoids both, like a trained model's outputs.
    """
    import torch

    with torch.no_grad():
        model.detr_decoder.presence_head.layer3.bias.fill_(4.0)
        model.dot_product_scoring.query_proj.weight.mul_(25.0)
        last = model.mask_decoder.mask_embedder.layers[-1]
        last.weight.mul_(10000.0)
        last.bias.mul_(10000.0)


def _word_level_tokenizer():
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, "<start_of_text>": 2}
    for word in _WORDS:
        vocab.setdefault(word, len(vocab))
    # The text encoders pool at input_ids.argmax(-1): end-of-text must carry the largest id.
    end_id = vocab["<end_of_text>"] = len(vocab)
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<start_of_text> $A <end_of_text>",
        special_tokens=[("<start_of_text>", 2), ("<end_of_text>", end_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", bos_token="<start_of_text>",
        eos_token="<end_of_text>", model_max_length=32,
    )
