"""Converting an original-format checkpoint (SAM3-LiteText, EfficientSAM3, SAM3.1-LiteText, EfficientSAM3.1 `.pt`)
into a folder that `litetext.load` and `transformers.Sam3LiteTextModel.from_pretrained` read.

The original checkpoint is `torch.save({"model": state_dict, "meta": ...})`: the detector under `detector.` with
SAM3's own module names, SAM3's tracker under `tracker.`. Every key is renamed by a rule below (learned from
transformers' `convert_sam3_to_hf.py` and `convert_sam3_lite_text_to_hf.py`, and checked against the original
modules of facebookresearch/sam3 and SimonZeng7108/efficientsam3), dropped by a named rule, or the conversion fails
naming it. The shapes of the model (widths, depths, text context) are read from the tensors.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .atomic_dir import check_target, move_into_place, staging_dir
from .manifests import digest_directory, export_format

FORMAT = "litetext-converted"
TRACKER_FILE = "original_tracker.safetensors"
DEFAULT_TOKENIZER = "openai/clip-vit-base-patch32"

_VISION = "backbone.vision_backbone."
_TRUNK = _VISION + "trunk."
_STUDENT = _TRUNK + "model."
_TEXT = "backbone.language_backbone."
_MOBILECLIP = _TEXT + "encoder."

#: (original, transformers) key prefixes, without the leading `detector.`; `{i}` stands for a number.
#: The longest original prefix that matches wins.
_RULES: tuple[tuple[str, str], ...] = (
    # SAM3's ViT (SAM3-LiteText); the trunk of a student is mapped by `student_backbones`.
    (_TRUNK + "pos_embed", "vision_encoder.backbone.embeddings.position_embeddings"),
    (_TRUNK + "patch_embed.proj.", "vision_encoder.backbone.embeddings.patch_embeddings.projection."),
    (_TRUNK + "ln_pre.", "vision_encoder.backbone.layer_norm."),
    (_TRUNK + "blocks.{i}.norm1.", "vision_encoder.backbone.layers.{i}.layer_norm1."),
    (_TRUNK + "blocks.{i}.norm2.", "vision_encoder.backbone.layers.{i}.layer_norm2."),
    (_TRUNK + "blocks.{i}.attn.qkv.", "vision_encoder.backbone.layers.{i}.attention.qkv."),
    (_TRUNK + "blocks.{i}.attn.proj.", "vision_encoder.backbone.layers.{i}.attention.o_proj."),
    (_TRUNK + "blocks.{i}.mlp.fc1.", "vision_encoder.backbone.layers.{i}.mlp.fc1."),
    (_TRUNK + "blocks.{i}.mlp.fc2.", "vision_encoder.backbone.layers.{i}.mlp.fc2."),
    # The FPN neck (SAM3.1 keeps the detector's under the same name).
    (_VISION + "convs.{i}.dconv_2x2_0.", "vision_encoder.neck.fpn_layers.{i}.scale_layers.0."),
    (_VISION + "convs.{i}.dconv_2x2_1.", "vision_encoder.neck.fpn_layers.{i}.scale_layers.2."),
    (_VISION + "convs.{i}.dconv_2x2.", "vision_encoder.neck.fpn_layers.{i}.scale_layers.0."),
    (_VISION + "convs.{i}.conv_1x1.", "vision_encoder.neck.fpn_layers.{i}.proj1."),
    (_VISION + "convs.{i}.conv_3x3.", "vision_encoder.neck.fpn_layers.{i}.proj2."),
    # MobileCLIP text encoder.
    (_MOBILECLIP + "embedding_layer.", "text_encoder.embeddings.token_embedding."),
    (_MOBILECLIP + "positional_embedding.pos_embed.pos_embed",
     "text_encoder.embeddings.position_embedding.position_embedding"),
    (_MOBILECLIP + "final_layer_norm.", "text_encoder.final_layer_norm."),
    (_MOBILECLIP + "projection_layer", "text_encoder.projection.weight"),
    (_MOBILECLIP + "transformer.{i}.layer_scale", "text_encoder.layers.{i}.layer_scale"),
    (_MOBILECLIP + "transformer.{i}.token_mixer.layer_scale", "text_encoder.layers.{i}.token_mixer.layer_scale"),
    (_MOBILECLIP + "transformer.{i}.token_mixer.norm.rbr_skip.",
     "text_encoder.layers.{i}.token_mixer.reference_batchnorm."),
    (_MOBILECLIP + "transformer.{i}.token_mixer.mixer.rbr_skip.",
     "text_encoder.layers.{i}.token_mixer.mixer.batchnorm_skip."),
    (_MOBILECLIP + "transformer.{i}.token_mixer.mixer.rbr_conv.0.conv.",
     "text_encoder.layers.{i}.token_mixer.mixer.conv."),
    (_MOBILECLIP + "transformer.{i}.token_mixer.mixer.rbr_conv.0.bn.",
     "text_encoder.layers.{i}.token_mixer.mixer.batchnorm_conv."),
    (_MOBILECLIP + "transformer.{i}.convffn.conv.conv.", "text_encoder.layers.{i}.conv_feed_forward.depthwise_conv."),
    (_MOBILECLIP + "transformer.{i}.convffn.conv.bn.",
     "text_encoder.layers.{i}.conv_feed_forward.depthwise_batchnorm."),
    (_MOBILECLIP + "transformer.{i}.convffn.fc1.", "text_encoder.layers.{i}.conv_feed_forward.mlp.fc1."),
    (_MOBILECLIP + "transformer.{i}.convffn.fc2.", "text_encoder.layers.{i}.conv_feed_forward.mlp.fc2."),
    (_MOBILECLIP + "transformer.{i}.pre_norm_mha.0.", "text_encoder.layers.{i}.layer_norm1."),
    (_MOBILECLIP + "transformer.{i}.pre_norm_mha.1.qkv_proj.", "text_encoder.layers.{i}.self_attn.qkv."),
    (_MOBILECLIP + "transformer.{i}.pre_norm_mha.1.out_proj.", "text_encoder.layers.{i}.self_attn.out_proj."),
    (_MOBILECLIP + "transformer.{i}.pre_norm_ffn.0.", "text_encoder.layers.{i}.layer_norm2."),
    (_MOBILECLIP + "transformer.{i}.pre_norm_ffn.1.", "text_encoder.layers.{i}.mlp.fc1."),
    (_MOBILECLIP + "transformer.{i}.pre_norm_ffn.4.", "text_encoder.layers.{i}.mlp.fc2."),
    (_TEXT + "projector.", "text_projection."),
    # Geometry encoder (boxes; SAM3's point-prompt weights have no place in transformers).
    ("geometry_encoder.label_embed.", "geometry_encoder.label_embed."),
    ("geometry_encoder.cls_embed.", "geometry_encoder.cls_embed."),
    ("geometry_encoder.boxes_direct_project.", "geometry_encoder.boxes_direct_project."),
    ("geometry_encoder.boxes_pool_project.", "geometry_encoder.boxes_pool_project."),
    ("geometry_encoder.boxes_pos_enc_project.", "geometry_encoder.boxes_pos_enc_project."),
    ("geometry_encoder.final_proj.", "geometry_encoder.final_proj."),
    ("geometry_encoder.img_pre_norm.", "geometry_encoder.vision_layer_norm."),
    ("geometry_encoder.norm.", "geometry_encoder.prompt_layer_norm."),
    ("geometry_encoder.encode_norm.", "geometry_encoder.output_layer_norm."),
    ("geometry_encoder.encode.{i}.cross_attn_image.out_proj.", "geometry_encoder.layers.{i}.cross_attn.o_proj."),
    ("geometry_encoder.encode.{i}.cross_attn_image.", "geometry_encoder.layers.{i}.cross_attn."),
    ("geometry_encoder.encode.{i}.self_attn.out_proj.", "geometry_encoder.layers.{i}.self_attn.o_proj."),
    ("geometry_encoder.encode.{i}.self_attn.", "geometry_encoder.layers.{i}.self_attn."),
    ("geometry_encoder.encode.{i}.linear1.", "geometry_encoder.layers.{i}.mlp.fc1."),
    ("geometry_encoder.encode.{i}.linear2.", "geometry_encoder.layers.{i}.mlp.fc2."),
    ("geometry_encoder.encode.{i}.norm1.", "geometry_encoder.layers.{i}.layer_norm1."),
    ("geometry_encoder.encode.{i}.norm2.", "geometry_encoder.layers.{i}.layer_norm2."),
    ("geometry_encoder.encode.{i}.norm3.", "geometry_encoder.layers.{i}.layer_norm3."),
    # DETR encoder.
    ("transformer.encoder.layers.{i}.cross_attn_image.out_proj.", "detr_encoder.layers.{i}.cross_attn.o_proj."),
    ("transformer.encoder.layers.{i}.cross_attn_image.", "detr_encoder.layers.{i}.cross_attn."),
    ("transformer.encoder.layers.{i}.self_attn.out_proj.", "detr_encoder.layers.{i}.self_attn.o_proj."),
    ("transformer.encoder.layers.{i}.self_attn.", "detr_encoder.layers.{i}.self_attn."),
    ("transformer.encoder.layers.{i}.linear1.", "detr_encoder.layers.{i}.mlp.fc1."),
    ("transformer.encoder.layers.{i}.linear2.", "detr_encoder.layers.{i}.mlp.fc2."),
    ("transformer.encoder.layers.{i}.norm1.", "detr_encoder.layers.{i}.layer_norm1."),
    ("transformer.encoder.layers.{i}.norm2.", "detr_encoder.layers.{i}.layer_norm2."),
    ("transformer.encoder.layers.{i}.norm3.", "detr_encoder.layers.{i}.layer_norm3."),
    # DETR decoder.
    ("transformer.decoder.query_embed.", "detr_decoder.query_embed."),
    ("transformer.decoder.reference_points.", "detr_decoder.reference_points."),
    ("transformer.decoder.presence_token.", "detr_decoder.presence_token."),
    ("transformer.decoder.presence_token_head.layers.0.", "detr_decoder.presence_head.layer1."),
    ("transformer.decoder.presence_token_head.layers.1.", "detr_decoder.presence_head.layer2."),
    ("transformer.decoder.presence_token_head.layers.2.", "detr_decoder.presence_head.layer3."),
    ("transformer.decoder.presence_token_out_norm.", "detr_decoder.presence_layer_norm."),
    ("transformer.decoder.norm.", "detr_decoder.output_layer_norm."),
    ("transformer.decoder.bbox_embed.layers.0.", "detr_decoder.box_head.layer1."),
    ("transformer.decoder.bbox_embed.layers.1.", "detr_decoder.box_head.layer2."),
    ("transformer.decoder.bbox_embed.layers.2.", "detr_decoder.box_head.layer3."),
    ("transformer.decoder.ref_point_head.layers.0.", "detr_decoder.ref_point_head.layer1."),
    ("transformer.decoder.ref_point_head.layers.1.", "detr_decoder.ref_point_head.layer2."),
    ("transformer.decoder.boxRPB_embed_x.layers.0.", "detr_decoder.box_rpb_embed_x.layer1."),
    ("transformer.decoder.boxRPB_embed_x.layers.1.", "detr_decoder.box_rpb_embed_x.layer2."),
    ("transformer.decoder.boxRPB_embed_y.layers.0.", "detr_decoder.box_rpb_embed_y.layer1."),
    ("transformer.decoder.boxRPB_embed_y.layers.1.", "detr_decoder.box_rpb_embed_y.layer2."),
    ("transformer.decoder.layers.{i}.self_attn.out_proj.", "detr_decoder.layers.{i}.self_attn.o_proj."),
    ("transformer.decoder.layers.{i}.self_attn.", "detr_decoder.layers.{i}.self_attn."),
    ("transformer.decoder.layers.{i}.ca_text.out_proj.", "detr_decoder.layers.{i}.text_cross_attn.o_proj."),
    ("transformer.decoder.layers.{i}.ca_text.", "detr_decoder.layers.{i}.text_cross_attn."),
    ("transformer.decoder.layers.{i}.cross_attn.out_proj.", "detr_decoder.layers.{i}.vision_cross_attn.o_proj."),
    ("transformer.decoder.layers.{i}.cross_attn.", "detr_decoder.layers.{i}.vision_cross_attn."),
    ("transformer.decoder.layers.{i}.linear1.", "detr_decoder.layers.{i}.mlp.fc1."),
    ("transformer.decoder.layers.{i}.linear2.", "detr_decoder.layers.{i}.mlp.fc2."),
    ("transformer.decoder.layers.{i}.norm1.", "detr_decoder.layers.{i}.vision_cross_attn_layer_norm."),
    ("transformer.decoder.layers.{i}.catext_norm.", "detr_decoder.layers.{i}.text_cross_attn_layer_norm."),
    ("transformer.decoder.layers.{i}.norm2.", "detr_decoder.layers.{i}.self_attn_layer_norm."),
    ("transformer.decoder.layers.{i}.norm3.", "detr_decoder.layers.{i}.mlp_layer_norm."),
    # Scoring and mask decoder.
    ("dot_prod_scoring.prompt_mlp.layers.0.", "dot_product_scoring.text_mlp.layer1."),
    ("dot_prod_scoring.prompt_mlp.layers.1.", "dot_product_scoring.text_mlp.layer2."),
    ("dot_prod_scoring.prompt_mlp.out_norm.", "dot_product_scoring.text_mlp_out_norm."),
    ("dot_prod_scoring.prompt_proj.", "dot_product_scoring.text_proj."),
    ("dot_prod_scoring.hs_proj.", "dot_product_scoring.query_proj."),
    ("segmentation_head.pixel_decoder.conv_layers.{i}.", "mask_decoder.pixel_decoder.conv_layers.{i}."),
    ("segmentation_head.pixel_decoder.norms.{i}.", "mask_decoder.pixel_decoder.norms.{i}."),
    ("segmentation_head.mask_predictor.mask_embed.layers.{i}.", "mask_decoder.mask_embedder.layers.{i}."),
    ("segmentation_head.instance_seg_head.", "mask_decoder.instance_projection."),
    ("segmentation_head.semantic_seg_head.", "mask_decoder.semantic_projection."),
    ("segmentation_head.cross_attend_prompt.out_proj.", "mask_decoder.prompt_cross_attn.o_proj."),
    ("segmentation_head.cross_attend_prompt.", "mask_decoder.prompt_cross_attn."),
    ("segmentation_head.cross_attn_norm.", "mask_decoder.prompt_cross_attn_norm."),
)

#: Keys dropped on purpose: (name in the report, test on the key without `detector.`).
_DROP_RULES: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("tracker (kept aside in " + TRACKER_FILE + ")", lambda key: key.startswith("tracker.")),
    ("SAM2 neck of the tracker (vision_backbone.sam2_convs)", lambda key: key.startswith(_VISION + "sam2_convs.")),
    ("SAM3.1 interactive and propagation necks",
     lambda key: key.startswith((_VISION + "interactive_convs.", _VISION + "propagation_convs."))),
    ("geometry encoder point-prompt weights (no point prompts in transformers)",
     lambda key: key.startswith("geometry_encoder.points_")),
    ("ViT RoPE tables (transformers computes them)", lambda key: key.startswith(_TRUNK + "blocks.")
     and key.endswith(".attn.freqs_cis")),
    ("TinyViT attention_bias_idxs (rebuilt by timm)", lambda key: key.endswith("attention_bias_idxs")),
    ("BatchNorm num_batches_tracked", lambda key: key.endswith("num_batches_tracked")),
)


@dataclass
class ConversionReport:
    """What `convert_checkpoint` read and wrote."""

    source: str
    out: str
    variant: str  # "sam3-litetext", "efficientsam3", "sam3.1-litetext" or "efficientsam3.1"
    image_trunk: str  # "vit" (SAM3's ViT) or the student trunk's timm name
    neck: str  # "sam3" or "sam3.1"
    text_encoder: str
    context_length: int
    image_size: int
    tensors: int  # tensors written to model.safetensors
    dropped: dict[str, int] = field(default_factory=dict)  # drop rule -> keys dropped by it
    filled: dict[str, int] = field(default_factory=dict)  # what the original lacks -> tensors filled with zeros
    tracker_file: str | None = None

    def summary(self) -> str:
        """One line for the CLI."""
        dropped = sum(self.dropped.values())
        return (f"wrote {self.out}: {self.variant} ({self.image_trunk} image trunk, {self.neck} neck, "
                f"{self.text_encoder}), {self.tensors} tensors, {dropped} keys dropped by rule"
                + (f", tracker kept in {self.tracker_file}" if self.tracker_file else ""))


@dataclass
class _Detected:
    student: str | None  # timm name of a student trunk, None for SAM3's ViT
    sam31: bool
    text: dict[str, Any]
    vision: dict[str, Any]
    heads: dict[str, Any]
    image_size: int


def convert_checkpoint(ckpt: str | os.PathLike, out: str | os.PathLike, *, tokenizer: str | os.PathLike | None = None,
                       log: Callable[[str], None] | None = None, overwrite: bool = False) -> ConversionReport:
    """Convert the original checkpoint `ckpt` (.pt) into the transformers folder `out`.

    `tokenizer` is a folder `AutoTokenizer.from_pretrained` reads (default: CLIP's tokenizer from the hub).
    `out` must be new, empty or an earlier conversion unless `overwrite`. Raises `ModelError` when a key is neither
    mapped nor dropped by a named rule, or a weight the model needs is missing.
    """
    import torch

    log = log or (lambda message: None)
    source, out = Path(ckpt), Path(out)
    if not overwrite:
        check_target(out, lambda path: _is_conversion(path), "litetext conversion")
    try:
        loaded = torch.load(source, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{source} does not exist") from None
    except Exception as error:  # noqa: BLE001 - pickle and zip errors have no common type
        raise ModelError(f"{source} is not a loadable PyTorch checkpoint ({error})") from error
    state_dict = loaded.get("model", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state_dict, dict) or not state_dict:
        raise ModelError(f"{source} holds no state dict (expected torch.save({{'model': state_dict, ...}}))")
    log(f"read {len(state_dict)} tensors from {source}")
    processor_tokenizer = _load_tokenizer(tokenizer)

    detector, tracker, dropped = _split(state_dict)
    # What the dropped keys tell: which ViT blocks attend globally (RoPE tables), and a SAM3.1 neck.
    rope = re.compile(r"^(?:detector\.)?" + re.escape(_TRUNK) + r"blocks\.(\d+)\.attn\.freqs_cis$")
    rope_rows = {int(match.group(1)): tensor.shape[0]
                 for key, tensor in state_dict.items() if (match := rope.match(key))}
    sam31 = any(".interactive_convs." in key or ".propagation_convs." in key for key in state_dict)
    detected = _detect(detector, rope_rows, sam31)
    config = build_config(detected, vocab_size=len(processor_tokenizer))
    weights, filled = _map_weights(detector, detected, config)
    generation = "sam3.1" if detected.sam31 else "sam3"
    variant = f"efficient{generation}" if detected.student else f"{generation}-litetext"
    text = detected.text
    report = ConversionReport(
        source=str(source), out=str(out), variant=variant, image_trunk=detected.student or "vit",
        neck="sam3.1" if detected.sam31 else "sam3",
        text_encoder=(f"MobileCLIP {'mct' if text['use_repmixer_blocks'] else 'base'} "
                      f"{text['hidden_size']}x{text['num_hidden_layers']} ctx{text['max_position_embeddings']}"),
        context_length=text["max_position_embeddings"], image_size=detected.image_size, tensors=len(weights),
        dropped=dict(dropped), filled=filled, tracker_file=TRACKER_FILE if tracker else None,
    )
    log(report.summary())
    _write(out, config, weights, tracker, processor_tokenizer, detected, report, meta=loaded.get("meta"))
    return report


def _is_conversion(path: Path) -> bool:
    return export_format(path) == FORMAT


def _load_tokenizer(tokenizer: str | os.PathLike | None):
    from transformers import AutoTokenizer

    if tokenizer is not None:
        try:
            return AutoTokenizer.from_pretrained(os.fspath(tokenizer))
        except Exception as error:  # noqa: BLE001 - transformers raises OSError, ValueError and others here
            raise ModelError(f"cannot read a tokenizer from {tokenizer} ({error}); pass a folder holding "
                             "vocab.json, merges.txt, tokenizer.json and tokenizer_config.json") from error
    try:
        return AutoTokenizer.from_pretrained(DEFAULT_TOKENIZER, model_max_length=32)
    except Exception as error:  # noqa: BLE001
        raise ModelError(f"cannot fetch the CLIP tokenizer ({DEFAULT_TOKENIZER}) from the hub ({error}); offline, "
                         "pass --tokenizer DIR, a folder with CLIP's vocab.json, merges.txt, tokenizer.json and "
                         "tokenizer_config.json") from error


def _split(state_dict: dict) -> tuple[dict, dict, Counter]:
    """The detector's tensors (without `detector.`), the tracker's, and how many keys each drop rule took."""
    detector, tracker, dropped = {}, {}, Counter()
    for key, tensor in state_dict.items():
        name = key[len("detector."):] if key.startswith("detector.") else key
        name = name.replace("student_trunk.", "")  # an upstream wrapper its own loader strips too
        for rule, matches in _DROP_RULES:
            if matches(name):
                dropped[rule] += 1
                if name.startswith("tracker."):
                    tracker[name] = tensor
                break
        else:
            detector[name] = tensor
    return detector, tracker, dropped


def _count(keys, pattern: str) -> int:
    found = {int(match.group(1)) for key in keys if (match := re.match(pattern, key))}
    return max(found) + 1 if found else 0


def _detect(sd: dict, rope_rows: dict[int, int], sam31: bool) -> _Detected:
    """Read the trunk, neck, text encoder and head sizes from the tensors."""
    keys = list(sd)
    if not any(key.startswith(_MOBILECLIP + "embedding_layer.") for key in keys):
        if any(key.startswith(_TEXT) for key in keys):
            raise ModelError("this checkpoint's text encoder is not MobileCLIP (SAM3's CLIP text encoder?); "
                             "convert SAM3 itself with transformers' convert_sam3_to_hf.py")
        raise ModelError("this checkpoint has no text encoder (backbone.language_backbone.*); is it a SAM3-LiteText "
                         "or EfficientSAM3 detector?")
    text = _detect_text(sd, keys)
    width = sd[_VISION + "convs.0.conv_1x1.weight"].shape[0] if _VISION + "convs.0.conv_1x1.weight" in sd else None
    if width is None:
        raise ModelError("this checkpoint has no FPN neck (backbone.vision_backbone.convs.*)")
    heads = {
        "width": width,
        "geometry_layers": _count(keys, r"geometry_encoder\.encode\.(\d+)\."),
        "geometry_ffn": sd["geometry_encoder.encode.0.linear1.weight"].shape[0],
        "encoder_layers": _count(keys, r"transformer\.encoder\.layers\.(\d+)\."),
        "encoder_ffn": sd["transformer.encoder.layers.0.linear1.weight"].shape[0],
        "decoder_layers": _count(keys, r"transformer\.decoder\.layers\.(\d+)\."),
        "decoder_ffn": sd["transformer.decoder.layers.0.linear1.weight"].shape[0],
        "num_queries": sd["transformer.decoder.query_embed.weight"].shape[0],
        "upsampling_stages": _count(keys, r"segmentation_head\.pixel_decoder\.conv_layers\.(\d+)\."),
    }
    if any(key.startswith(_STUDENT + "backbone.") for key in keys):
        student, image_size = _detect_student(sd, keys)
        heads["student_width"] = sd[_STUDENT + "head.0.weight"].shape[0]
        return _Detected(student, sam31, text, {}, heads, image_size)
    if _TRUNK + "patch_embed.proj.weight" not in sd:
        raise ModelError("cannot tell the image trunk: neither SAM3's ViT (trunk.patch_embed.*) nor a student "
                         "(trunk.model.backbone.*)")
    vision = _detect_vit(sd, keys, rope_rows)
    return _Detected(None, sam31, text, vision, heads, vision["image_size"])


def _detect_text(sd: dict, keys: list[str]) -> dict[str, Any]:
    embedding = sd[_MOBILECLIP + "embedding_layer.weight"]
    positions = sd[_MOBILECLIP + "positional_embedding.pos_embed.pos_embed"]
    hidden = embedding.shape[1]
    layers = _count(keys, re.escape(_MOBILECLIP) + r"transformer\.(\d+)\.")
    repmixer = [i for i in range(layers) if f"{_MOBILECLIP}transformer.{i}.token_mixer.layer_scale" in sd]
    if repmixer not in ([], [0, layers - 1]):
        raise ModelError(f"RepMixer text blocks at layers {repmixer}: transformers supports them at the first and "
                         "last layer only")
    attention = next((i for i in range(layers) if i not in repmixer), None)
    if attention is None:
        raise ModelError("the text encoder has no attention layer")
    intermediate = sd[f"{_MOBILECLIP}transformer.{attention}.pre_norm_ffn.1.weight"].shape[0]
    text = {
        "vocab_size": embedding.shape[0], "hidden_size": hidden, "intermediate_size": intermediate,
        "num_hidden_layers": layers, "num_attention_heads": max(1, hidden // 64),  # MobileCLIP's heads are 64 wide
        "max_position_embeddings": positions.shape[2], "use_repmixer_blocks": bool(repmixer),
        "projection_dim": (sd[_MOBILECLIP + "projection_layer"].shape[1] if _MOBILECLIP + "projection_layer" in sd
                           else hidden),
    }
    if repmixer:
        kernel = sd[f"{_MOBILECLIP}transformer.0.token_mixer.mixer.rbr_conv.0.conv.weight"]
        text["repmixer_kernel_size"] = kernel.shape[-1]
    return text


def _detect_vit(sd: dict, keys: list[str], rows: dict[int, int]) -> dict[str, Any]:
    patch = sd[_TRUNK + "patch_embed.proj.weight"]
    hidden, patch_size = patch.shape[0], patch.shape[-1]
    layers = _count(keys, re.escape(_TRUNK) + r"blocks\.(\d+)\.")
    positions = sd[_TRUNK + "pos_embed"].shape[1] - 1  # the original keeps a cls-token row
    pretrain = round(positions ** 0.5) * patch_size
    vision = {"hidden_size": hidden, "patch_size": patch_size, "num_hidden_layers": layers,
              "intermediate_size": sd[_TRUNK + "blocks.0.mlp.fc1.weight"].shape[0],
              "num_attention_heads": max(1, hidden // 64), "pretrain_image_size": pretrain}
    # The RoPE tables say which blocks attend globally (image grid) and the window size; without them, SAM3's.
    if len(rows) == layers and layers:
        grid, window = round(max(rows.values()) ** 0.5), round(min(rows.values()) ** 0.5)
        vision.update(image_size=grid * patch_size, window_size=window,
                      global_attn_indexes=[i for i, count in rows.items() if count == grid * grid])
    else:
        vision.update(image_size=1008, window_size=24,
                      global_attn_indexes=[layers * k // 4 - 1 for k in range(1, 5)])
    return vision


def _detect_student(sd: dict, keys: list[str]) -> tuple[str, int]:
    """The student trunk's name: its family from its module names, its size from the projection head's input."""
    try:
        from .student_backbones import STUDENT_TRUNKS
    except ImportError as error:
        raise ModelError("this checkpoint has a student image trunk (EfficientSAM3); converting it needs "
                         "litetext.models.student_backbones and timm: pip install 'litetext[efficient]'") from error
    trunk = _STUDENT + "backbone.model."
    family = ("repvit" if any(key.startswith(trunk + "features.") for key in keys) else
              "efficientvit" if any(key.startswith(trunk + "input_stem.") for key in keys) else
              "tinyvit" if any(key.startswith(trunk + "patch_embed.seq.") for key in keys) else None)
    channels = sd[_STUDENT + "head.0.weight"].shape[1] if _STUDENT + "head.0.weight" in sd else None
    names = [name for name, spec in STUDENT_TRUNKS.items() if spec.family == family and spec.channels == channels]
    if not names:
        raise ModelError(f"unknown student image trunk (family {family}, {channels} channels into the projection "
                         f"head); known: {', '.join(STUDENT_TRUNKS)}")
    return names[0], 1008  # upstream builds every student at 1008 px (72 x 72 features)


def build_config(detected: _Detected, *, vocab_size: int | None = None):
    """The `Sam3LiteTextConfig` of what `_detect` read."""
    from transformers import Sam3LiteTextConfig

    heads = detected.heads
    width, grid = heads["width"], None
    if detected.student:
        from .student_backbones import register_student_backbones, student_backbone_config

        register_student_backbones()
        backbone = student_backbone_config(detected.student, image_size=detected.image_size,
                                           hidden_size=heads["student_width"]).to_dict()
        grid = detected.image_size // 14
    else:
        backbone = {"model_type": "sam3_vit_model", **detected.vision}
        grid = detected.image_size // detected.vision["patch_size"]
    vision = {"backbone_config": backbone, "fpn_hidden_size": width,
              "backbone_feature_sizes": [[grid * 4] * 2, [grid * 2] * 2, [grid] * 2]}

    def block(layers: int, ffn: int) -> dict:
        return {"hidden_size": width, "num_layers": layers, "num_attention_heads": max(1, width // 32),
                "intermediate_size": ffn}

    text = dict(detected.text)
    if vocab_size is not None and vocab_size > text["vocab_size"]:
        raise ModelError(f"the tokenizer has {vocab_size} tokens and the text encoder's embedding "
                         f"{text['vocab_size']} rows; pass the tokenizer the checkpoint was trained with")
    config = Sam3LiteTextConfig(
        vision_config=vision, text_config=text,
        geometry_encoder_config=block(heads["geometry_layers"], heads["geometry_ffn"]),
        detr_encoder_config=block(heads["encoder_layers"], heads["encoder_ffn"]),
        detr_decoder_config={**block(heads["decoder_layers"], heads["decoder_ffn"]),
                             "num_queries": heads["num_queries"]},
        mask_decoder_config={"hidden_size": width, "num_upsampling_stages": heads["upsampling_stages"],
                             "num_attention_heads": max(1, width // 32)},
    )
    config.architectures = ["Sam3LiteTextModel"]
    return config


@functools.lru_cache(maxsize=1)
def _compiled_rules() -> list[tuple[re.Pattern, str, str, bool]]:
    compiled = []
    for original, converted in _RULES:
        pattern = re.compile("^" + re.escape(original).replace(re.escape("{i}"), r"(\d+)"))
        compiled.append((pattern, original, converted, "{i}" in original))
    compiled.sort(key=lambda rule: -len(rule[1]))
    return compiled


def rename(key: str, student: str | None = None) -> str | None:
    """The transformers name of an original detector key (without `detector.`), None when no rule maps it.
    `student` names the student trunk (a `STUDENT_TRUNKS` key) whose weights the key may be."""
    if key.startswith(_STUDENT):
        return _rename_student(key, student) if student else None
    for pattern, _original, converted, numbered in _compiled_rules():
        match = pattern.match(key)
        if match:
            return (converted.replace("{i}", match.group(1)) if numbered else converted) + key[match.end():]
    return None


def _rename_student(key: str, student: str) -> str | None:
    from .student_backbones import trunk_key_to_timm

    rest = key[len(_STUDENT):]
    if rest.startswith("head."):
        return "vision_encoder.backbone." + rest
    if rest.startswith("backbone.model."):
        try:
            return "vision_encoder.backbone.trunk." + trunk_key_to_timm(student, rest[len("backbone.model."):])
        except ModelError:
            return None
    return None


def _map_weights(sd: dict, detected: _Detected, config) -> tuple[dict, dict[str, int]]:
    """Rename, split and reshape every tensor; fail naming every key without a rule or a missing weight."""
    import torch

    weights, unmapped = {}, []
    for key, tensor in sd.items():
        name = rename(key, detected.student)
        if name is None:
            unmapped.append(key)
            continue
        if not name.startswith("vision_encoder.backbone.trunk.") and name.endswith(
                ("attention.qkv.weight", "attention.qkv.bias", "self_attn.qkv.weight", "self_attn.qkv.bias",
                 "in_proj_weight", "in_proj_bias")):
            for projection, part in zip("qkv", torch.chunk(tensor, 3, dim=0)):
                weights[_split_name(name, projection)] = part.contiguous()
        elif name == "vision_encoder.backbone.embeddings.position_embeddings":
            weights[name] = tensor[:, 1:, :].contiguous()  # the cls-token row transformers does not keep
        elif name == "text_encoder.projection.weight":
            weights[name] = tensor.t().contiguous()  # used as `x @ projection_layer`, a Linear's weight transposed
        else:
            weights[name] = tensor
    expected = _expected_shapes(config)
    for key in expected:  # BatchNorm counters: dropped from the original, written as 0 (unused in inference)
        if key.endswith("num_batches_tracked"):
            weights[key] = torch.zeros((), dtype=torch.long)
    filled: dict[str, int] = {}
    missing = sorted(set(expected) - set(weights))
    if detected.sam31:  # SAM3.1's neck has no 0.5 scale; transformers computes it and never uses it
        last = len(config.vision_config.scale_factors) - 1
        level = [key for key in missing if key.startswith(f"vision_encoder.neck.fpn_layers.{last}.")]
        for key in level:
            weights[key] = torch.zeros(expected[key])
        if level:
            filled["FPN level at scale 0.5 (SAM3.1 has none; transformers computes it, never uses it)"] = len(level)
        missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = sorted(f"{key} {tuple(weights[key].shape)} != {expected[key]}" for key in set(weights) & set(expected)
                   if tuple(weights[key].shape) != expected[key])
    problems = []
    if unmapped:
        problems.append(f"{len(unmapped)} keys no rule maps: {', '.join(unmapped)}")
    if unexpected:
        problems.append(f"{len(unexpected)} mapped keys the model does not have: {', '.join(unexpected)}")
    if missing:
        problems.append(f"{len(missing)} weights missing from the checkpoint: {', '.join(missing)}")
    if wrong:
        problems.append(f"{len(wrong)} weights of another shape: {', '.join(wrong)}")
    if problems:
        raise ModelError("cannot convert this checkpoint: " + "; ".join(problems))
    return weights, filled


def _split_name(name: str, projection: str) -> str:
    if ".qkv." in name:
        return name.replace(".qkv.", f".{projection}_proj.")
    return name.replace("in_proj_", f"{projection}_proj.")


def _expected_shapes(config) -> dict[str, tuple[int, ...]]:
    """Every tensor `Sam3LiteTextModel(config)` saves, with its shape (built on the meta device: no memory)."""
    import torch
    from transformers import Sam3LiteTextModel

    with torch.device("meta"):
        model = Sam3LiteTextModel(config)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _write(out: Path, config, weights: dict, tracker: dict, tokenizer, detected: _Detected,
           report: ConversionReport, meta: Any) -> None:
    from safetensors.torch import save_file
    from transformers import Sam3ImageProcessor, Sam3Processor

    staging = staging_dir(out, "converting")
    try:
        save_file({key: value.contiguous() for key, value in weights.items()}, str(staging / "model.safetensors"),
                  metadata={"format": "pt"})
        config.save_pretrained(staging)
        size = detected.image_size
        patch = 14 if detected.student else detected.vision["patch_size"]
        image_processor = Sam3ImageProcessor(size={"height": size, "width": size},
                                             mask_size={"height": 4 * size // patch, "width": 4 * size // patch})
        Sam3Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(staging)
        if tracker:
            save_file({key: value.contiguous() for key, value in tracker.items()}, str(staging / TRACKER_FILE),
                      metadata={"format": "pt", "note": "SAM3 tracker weights in the original layout"})
        manifest = {"format": FORMAT, **asdict(report), "meta": _plain(meta), "digests": digest_directory(staging)}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        move_into_place(staging, out)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise


def _plain(value: Any) -> Any:
    """`meta` as JSON can hold it (tensors and other objects become their repr)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)[:200]


def original_state_dict(model, *, sam31: bool = False, student: str | None = None) -> dict:
    """The original-format detector state dict (keys with `detector.`) of a `Sam3LiteTextModel`: the mapping run
    backwards, for building test checkpoints. ViT RoPE tables are placeholders of the right shape."""
    import torch

    state = {key: value for key, value in model.state_dict().items() if not key.endswith("num_batches_tracked")}
    if sam31:
        state = {key: value for key, value in state.items() if not key.startswith("vision_encoder.neck.fpn_layers.3.")}
    result: dict[str, Any] = {}
    fused: dict[str, dict[str, Any]] = {}
    for key, tensor in state.items():
        if student and key.startswith("vision_encoder.backbone."):
            result[_original_student_name(key, student)] = tensor
            continue
        qkv = re.match(r"^(.*)\.([qkv])_proj\.(weight|bias)$", key)
        if qkv:
            fused_name = (f"{qkv.group(1)}.qkv.{qkv.group(3)}" if key.startswith(("text_encoder.", "vision_encoder."))
                          else f"{qkv.group(1)}.in_proj_{qkv.group(3)}")
            fused.setdefault(fused_name, {})[qkv.group(2)] = tensor
        elif key == "vision_encoder.backbone.embeddings.position_embeddings":
            result[_TRUNK + "pos_embed"] = torch.cat([torch.zeros_like(tensor[:, :1]), tensor], dim=1)
        elif key == "text_encoder.projection.weight":
            result[_MOBILECLIP + "projection_layer"] = tensor.t().contiguous()
        else:
            result[_original_name(key, state)] = tensor
    for name, parts in fused.items():
        result[_original_name(name, state)] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    if not student:
        config = model.config.vision_config.backbone_config
        grid, head_dim = config.image_size // config.patch_size, config.hidden_size // config.num_attention_heads
        for i in range(config.num_hidden_layers):
            side = grid if i in config.global_attn_indexes else config.window_size
            result[f"{_TRUNK}blocks.{i}.attn.freqs_cis"] = torch.ones(side * side, head_dim // 2, dtype=torch.complex64)
    return {"detector." + key: value for key, value in result.items()}


def _original_student_name(key: str, student: str) -> str:
    from .student_backbones import timm_key_to_trunk

    rest = key[len("vision_encoder.backbone."):]
    if rest.startswith("head."):
        return _STUDENT + rest
    return _STUDENT + "backbone.model." + timm_key_to_trunk(student, rest[len("trunk."):])


@functools.lru_cache(maxsize=1)
def _inverse_rules() -> list[tuple[re.Pattern, str]]:
    inverse = sorted(((converted, original) for original, converted in _RULES), key=lambda rule: -len(rule[0]))
    return [(re.compile("^" + re.escape(converted).replace(re.escape("{i}"), r"(\d+)")), original)
            for converted, original in inverse]


def _original_name(key: str, state: dict) -> str:
    fpn = re.match(r"^vision_encoder\.neck\.fpn_layers\.(\d+)\.scale_layers\.0\.(.*)$", key)
    if fpn:
        level = fpn.group(1)
        four_times = any(name.startswith(f"vision_encoder.neck.fpn_layers.{level}.scale_layers.2.") for name in state)
        return f"{_VISION}convs.{level}.{'dconv_2x2_0' if four_times else 'dconv_2x2'}.{fpn.group(2)}"
    for pattern, original in _inverse_rules():
        match = pattern.match(key)
        if match:
            return (original.replace("{i}", match.group(1)) if match.groups() else original) + key[match.end():]
    raise KeyError(f"no rule maps {key} back")
