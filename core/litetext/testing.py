"""Miniature random-weight checkpoints that load through the same path as hub checkpoints.

They let tests, the CLI and the apps run fully offline. Their weights are random: masks and scores are
meaningless, only the shapes and the code paths are real.
"""

from __future__ import annotations

import os
from pathlib import Path

_WORDS = (
    "a an the of and with on in near red blue green yellow white black small big person people man woman "
    "child dog cat bird horse car bus truck bicycle motorcycle train boat plane tree sky road building "
    "window door wheel cup coffee table chair bottle plate food fruit apple banana flower grass water "
    "rocket astronaut face hair hand shirt school sign light street wall floor"
).split()

TINY_IMAGE_SIZE = 112


def build_tiny_checkpoint(path: str | os.PathLike, *, architecture: str = "litetext", seed: int = 0) -> Path:
    """Build and save a tiny random checkpoint (model, processor, tokenizer) into `path`.

    `architecture` is "litetext" (`Sam3LiteTextModel`, MobileCLIP-style text encoder with RepMixer blocks)
    or "sam3" (`Sam3Model`, CLIP text encoder). Returns the directory.
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

    tokenizer = _word_level_tokenizer()
    vocab_size = len(tokenizer)
    vision = {
        "backbone_config": {
            "model_type": "sam3_vit_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "image_size": TINY_IMAGE_SIZE, "patch_size": 14, "window_size": 4,
            "global_attn_indexes": [1], "pretrain_image_size": 56,
        },
        "fpn_hidden_size": 32,
        "backbone_feature_sizes": [[32, 32], [16, 16], [8, 8]],
    }
    heads = {"hidden_size": 32, "num_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    common = {
        "vision_config": vision,
        "geometry_encoder_config": heads,
        "detr_encoder_config": heads,
        "detr_decoder_config": {**heads, "num_queries": 20},
        "mask_decoder_config": {"hidden_size": 32, "num_upsampling_stages": 3, "num_attention_heads": 2},
    }
    text = {"vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2}
    torch.manual_seed(seed)
    if architecture == "litetext":
        config = Sam3LiteTextConfig(
            text_config={**text, "projection_dim": 32, "max_position_embeddings": 16}, **common
        )
        model = Sam3LiteTextModel(config)
    elif architecture == "sam3":
        config = Sam3Config(
            text_config={**text, "projection_dim": 32, "max_position_embeddings": 32,
                         "eos_token_id": vocab_size - 1, "bos_token_id": 2, "pad_token_id": 0},
            **common,
        )
        model = Sam3Model(config)
    else:
        raise ValueError(f"architecture must be 'litetext' or 'sam3', not {architecture!r}")
    _spread_scores(model)
    processor = Sam3Processor(
        image_processor=Sam3ImageProcessor(
            size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}, mask_size={"height": 32, "width": 32}
        ),
        tokenizer=tokenizer,
    )
    from transformers.utils import logging as transformers_logging

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    transformers_logging.disable_progress_bar()  # a tiny save needs no progress bar
    try:
        model.save_pretrained(path)
        processor.save_pretrained(path)
    finally:
        transformers_logging.enable_progress_bar()
    return path


#: Text-encoder shapes of the published students (from their hub configs); vision and heads are SAM3's.
FULL_SIZE_TEXT_CONFIGS = {
    "s0": {"hidden_size": 512, "num_hidden_layers": 6, "num_attention_heads": 8, "intermediate_size": 2048,
           "use_repmixer_blocks": True},
    "s1": {"hidden_size": 512, "num_hidden_layers": 12, "num_attention_heads": 8, "intermediate_size": 2048,
           "use_repmixer_blocks": False},
    "l": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
          "use_repmixer_blocks": False},
}


def build_full_size_random_model(variant: str = "s0", *, dtype=None, device: str = "cpu", seed: int = 0):
    """A full-size SAM3-LiteText (`s0`, `s1`, `l`) or SAM3 (`sam3`) model with random weights, in memory.

    Cost does not depend on trained weights, so this measures real speed and memory without a download.
    Returns `(model, processor)`; the processor is `Sam3Processor` at 1008 px with the offline tokenizer.
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
    with torch.device(device):
        model = model_class(config)
    _spread_scores(model)
    model = model.to(dtype=dtype or torch.float32).eval()
    processor = Sam3Processor(image_processor=Sam3ImageProcessor(), tokenizer=_word_level_tokenizer())
    return model, processor


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
