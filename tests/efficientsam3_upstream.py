"""Upstream EfficientSAM3 (github.com/SimonZeng7108/efficientsam3) with random weights, for the comparison in
`tests/test_convert.py`.

Run in a process of its own (upstream's RepViT and TinyViT modules re-register timm's model names when imported):

    python -m tests.efficientsam3_upstream SOURCE TRUNK OUT

builds `build_efficientsam3_image_model` for the student `TRUNK` (our timm name) with MobileCLIP-S0 text at
context 16, as the released models, and writes `OUT/original.pt` (its weights in the original checkpoint format)
and `OUT/upstream.pt` (the inputs it was given and what it computed).
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

#: Our trunk name -> upstream's (backbone_type, model_name).
UPSTREAM_TRUNKS = {"efficientvit_b1": ("efficientvit", "b1"), "repvit_m1_1": ("repvit", "m1.1"),
                   "tiny_vit_11m": ("tinyvit", "11m")}
CONTEXT = 16
#: Longer than the context: upstream's tokenizer truncates it to 16 tokens ending in EOT, so no token is padding.
FULL_PROMPT = "a small orange cat sleeping on a wooden table next to a white cup of hot coffee in the sun"
SHORT_PROMPT = "cat"
BOX = (0.45, 0.5, 0.5, 0.6)  # normalised cx, cy, w, h, as both models take it
PHOTOS = sorted((Path(__file__).resolve().parents[1] / "examples" / "images").glob("*.jpg"))
IMAGE = next(path for path in PHOTOS if path.stem == "cat")
#: Captions that set the text encoder's BatchNorm statistics.
CAPTIONS = ["cat", "a cup of coffee", "an astronaut in a white suit", "a rocket on the launch pad"]


def stand_in_packages(source: str | Path) -> None:
    """Empty packages in place of upstream's package `__init__` files (they import its whole model zoo: omegaconf,
    segment_anything), so its modules import one by one."""
    root = Path(source) / "sam3" / "sam3"
    efficientvit = root / "backbones" / "efficientvit" / "efficientvit"
    for name, folder in (("sam3", root), ("sam3.backbones", root / "backbones"),
                         ("sam3.backbones.efficientvit.efficientvit", efficientvit)):
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package


def import_upstream(source: str | Path):
    """Upstream's `sam3.model_builder`, imported without its package `__init__` files (`stand_in_packages`) and
    with iopath's file opener stood in by `open` when iopath is absent."""
    stand_in_packages(source)
    try:
        importlib.import_module("iopath.common.file_io")
    except ImportError:
        file_io = types.ModuleType("iopath.common.file_io")
        file_io.g_pathmgr = types.SimpleNamespace(open=open)
        for name in ("iopath", "iopath.common"):
            sys.modules[name] = types.ModuleType(name)
        sys.modules["iopath.common.file_io"] = file_io
    return importlib.import_module("sam3.model_builder")


def run_upstream(source: str | Path, trunk: str, out: str | Path) -> None:
    """Build upstream's model for `trunk` with random weights, save it as an original checkpoint and run it."""
    import torch
    from PIL import Image

    builder = import_upstream(source)
    from sam3.model.sam3_image_processor import Sam3Processor
    from torchvision.transforms import v2

    backbone_type, model_name = UPSTREAM_TRUNKS[trunk]
    torch.manual_seed(0)
    model = builder.build_efficientsam3_image_model(
        device="cpu", eval_mode=True, load_from_HF=False, backbone_type=backbone_type, model_name=model_name,
        text_encoder_type="MobileCLIP-S0", text_encoder_context_length=CONTEXT)
    processor = Sam3Processor(model, device="cpu")
    pixels = [processor.transform(v2.functional.to_image(Image.open(path).convert("RGB"))) for path in PHOTOS]
    _randomise(model, torch.stack(pixels))

    image = processor.transform(v2.functional.to_image(Image.open(IMAGE).convert("RGB"))).unsqueeze(0)
    tokenizer = model.backbone.language_backbone.tokenizer
    with torch.no_grad():
        backbone_out = model.backbone.forward_image(image)
        fpn = [level.clone() for level in backbone_out["backbone_fpn"]]
        full = model.backbone.forward_text([FULL_PROMPT], device="cpu")
        short = model.backbone.forward_text([SHORT_PROMPT], device="cpu")
        prompt = model._get_dummy_prompt()
        prompt.append_boxes(torch.tensor(BOX).view(1, 1, 4), torch.tensor([True]).view(1, 1))
        found = model.forward_grounding(backbone_out={**backbone_out, **full}, find_input=processor.find_stage,
                                        geometric_prompt=prompt, find_target=None)
    state = {f"detector.{key}": value for key, value in model.state_dict().items()}
    torch.save({"model": state, "meta": {"note": f"random upstream EfficientSAM3 {trunk}"}}, Path(out) / "original.pt")
    torch.save({
        "pixels": image, "fpn": fpn,
        "full_tokens": tokenizer([FULL_PROMPT], context_length=CONTEXT),
        "full_text": full["language_features"][:, 0], "full_text_padding": full["language_mask"][0],
        "short_tokens": tokenizer([SHORT_PROMPT], context_length=CONTEXT),
        "short_text": short["language_features"][:, 0],
        "logits": found["pred_logits"][0, :, 0], "presence": found["presence_logit_dec"][0],
        "boxes_cxcywh": found["pred_boxes"][0], "masks": found["pred_masks"][0],
    }, Path(out) / "upstream.pt")


def _randomise(model, photos) -> None:
    """Shift every weight that starts constant, and set the BatchNorm statistics from real photos and captions.

    Constant weights would hide a swapped mapping or a whole path: biases and norms start at 0 and 1, MobileCLIP's
    layer scales at 1e-5 (its RepMixer blocks would be identities), TinyViT's attention biases at 0, and the last
    layer of the box head at 0 (boxes would not depend on the image or the prompt). With N(0, 1) statistics a
    random student's activations grow until its output no longer depends on the image."""
    import torch

    norms = [module for module in model.modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 1 or (parameter == parameter.flatten()[0]).all():
                parameter.add_(torch.randn_like(parameter) * 0.1)
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average: one pass sets the batch's statistics
        model.train()
        model.backbone.vision_backbone.trunk(photos)
        model.backbone.language_backbone(CAPTIONS, device="cpu")
        model.eval()  # TinyViT caches its attention biases here


if __name__ == "__main__":
    run_upstream(*sys.argv[1:4])
