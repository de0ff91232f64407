"""EfficientSAM3's student image encoders as a transformers backbone: a timm trunk (EfficientViT, RepViT or TinyViT)
and upstream's projection head in place of SAM3's ViT-H, feeding SAM3's unchanged FPN neck and heads.

`Sam3LiteTextModel` (or `Sam3Model`) whose `vision_config.backbone_config` has `model_type`
"efficientsam3_student" builds `StudentBackboneModel` through `AutoModel.from_config`, once
`register_student_backbones()` ran; `import litetext` arranges that lazily (see `litetext/__init__.py`).
Upstream (github.com/SimonZeng7108/efficientsam3, `model_builder._create_student_vision_backbone`): trunk ->
Conv 1x1 (C -> 1024, no bias) -> BatchNorm -> GELU -> Conv 3x3 -> bilinear resize to H/14 x W/14.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
from torch import nn
from torch.nn import functional
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from ..errors import ModelError

MODEL_TYPE = "efficientsam3_student"
#: EfficientViT's linear attention computes in float32 (in timm as upstream), so upstream's tiny epsilon is safe.
UPSTREAM_ATTENTION_EPS = 1e-15


@dataclass(frozen=True)
class StudentTrunk:
    """One student trunk: its family, upstream's size name, timm's model name and its last feature map's channels."""

    family: str
    size: str
    timm_name: str
    channels: int


#: The nine trunks of EfficientSAM3 (sizes S / M / L per family), named as timm names them.
STUDENT_TRUNKS = {
    trunk.timm_name.removesuffix("_224"): trunk for trunk in (
        StudentTrunk("efficientvit", "b0", "efficientvit_b0", 128),
        StudentTrunk("efficientvit", "b1", "efficientvit_b1", 256),
        StudentTrunk("efficientvit", "b2", "efficientvit_b2", 384),
        StudentTrunk("repvit", "m0.9", "repvit_m0_9", 384),
        StudentTrunk("repvit", "m1.1", "repvit_m1_1", 512),
        StudentTrunk("repvit", "m2.3", "repvit_m2_3", 640),
        StudentTrunk("tinyvit", "5m", "tiny_vit_5m_224", 320),
        StudentTrunk("tinyvit", "11m", "tiny_vit_11m_224", 448),
        StudentTrunk("tinyvit", "21m", "tiny_vit_21m_224", 576),
    )
}
#: The released fine-tuned EfficientSAM3 models (upstream v0.4.0) and their trunks.
RELEASED_STUDENTS = {"EV-M": "efficientvit_b1", "RV-M": "repvit_m1_1", "TV-M": "tiny_vit_11m"}
FAMILIES = ("efficientvit", "repvit", "tinyvit")


def student_trunk(name: str) -> StudentTrunk:
    """The trunk named `name`: a `STUDENT_TRUNKS` key or a released model (`EV-M`, `RV-M`, `TV-M`)."""
    name = RELEASED_STUDENTS.get(name.upper(), name)
    if name not in STUDENT_TRUNKS:
        raise ModelError(f"unknown student trunk {name!r}; choose one of {', '.join(STUDENT_TRUNKS)} "
                         f"or {', '.join(RELEASED_STUDENTS)}")
    return STUDENT_TRUNKS[name]


class StudentBackboneConfig(PreTrainedConfig):
    """A student trunk plus projection head, standing in for SAM3's ViT (`Sam3VisionConfig.backbone_config`).

    `hidden_size` is the projection's width (the neck's input, 1024 in SAM3); `patch_size` the stride of the
    feature map the neck receives (14, as SAM3's ViT: features come out at H/14 x W/14).
    """

    model_type = MODEL_TYPE
    base_config_key = "backbone_config"

    trunk: str = "repvit_m1_1"
    timm_name: str = "repvit_m1_1"
    trunk_channels: int = 512
    hidden_size: int = 1024
    patch_size: int = 14
    image_size: int = 1008
    num_channels: int = 3
    initializer_range: float = 0.02


def student_backbone_config(trunk_name: str, image_size: int = 1008, **kwargs) -> StudentBackboneConfig:
    """The backbone config of trunk `trunk_name` (see `student_trunk`); `kwargs` override fields (`hidden_size`)."""
    trunk = student_trunk(trunk_name)
    name = next(key for key, value in STUDENT_TRUNKS.items() if value is trunk)
    return StudentBackboneConfig(trunk=name, timm_name=trunk.timm_name, trunk_channels=trunk.channels,
                                 image_size=image_size, **kwargs)


class StudentBackboneModel(PreTrainedModel):
    """timm trunk (`trunk`, its last feature map) and projection head (`head.0`, `head.1`, `head.3`, as upstream);
    `last_hidden_state` is [batch, (H/14) * (W/14), hidden_size], the layout of SAM3's ViT output."""

    config: StudentBackboneConfig
    config_class = StudentBackboneConfig
    base_model_prefix = "student"
    main_input_name = "pixel_values"

    def __init__(self, config: StudentBackboneConfig):
        super().__init__(config)
        self.trunk = timm_trunk(config.timm_name)
        width = config.hidden_size
        self.head = nn.Sequential(
            nn.Conv2d(config.trunk_channels, width, kernel_size=1, bias=False),
            nn.BatchNorm2d(width),
            nn.GELU(),
            nn.Conv2d(width, width, kernel_size=3, padding=1),
        )
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutput:
        features = self.head(self.trunk.forward_features(pixel_values))
        size = (pixel_values.shape[-2] // self.config.patch_size, pixel_values.shape[-1] // self.config.patch_size)
        if tuple(features.shape[-2:]) != size:
            features = functional.interpolate(features, size=size, mode="bilinear", align_corners=False)
        return BaseModelOutput(last_hidden_state=features.flatten(2).transpose(1, 2))

    def _init_weights(self, module):
        super()._init_weights(module)
        # TinyViT's attention-bias index tables are non-persistent buffers: after from_pretrained's meta-device
        # initialisation they hold garbage until recomputed.
        if hasattr(module, "init_non_persistent_buffers"):
            module.init_non_persistent_buffers()


def timm_trunk(timm_name: str) -> nn.Module:
    """timm's model `timm_name` with random weights and no classifier head; `forward_features` gives NCHW."""
    try:
        import timm
    except ImportError as error:
        raise ModelError("EfficientSAM3 student image encoders need timm: pip install 'litetext[efficient]'") \
            from error
    trunk = timm.create_model(timm_name, pretrained=False, num_classes=0)
    trunk.head = nn.Identity()  # TinyViT's and EfficientViT's heads hold weights upstream's trunks do not have
    for module in trunk.modules():
        if type(module).__name__ == "LiteMLA":  # EfficientViT's attention: upstream divides with 1e-15, timm 1e-5
            module.eps = UPSTREAM_ATTENTION_EPS
    return trunk


_registered = False


def register_student_backbones() -> None:
    """Register `StudentBackboneConfig` and `StudentBackboneModel` with AutoConfig and AutoModel (idempotent)."""
    global _registered
    if not _registered:
        AutoConfig.register(MODEL_TYPE, StudentBackboneConfig, exist_ok=True)
        AutoModel.register(StudentBackboneConfig, StudentBackboneModel, exist_ok=True)
        _registered = True


register_student_backbones()  # importing this module is enough; `import litetext` imports it lazily


# Key names. Upstream's trunks (`...trunk.model.backbone.model.<key>`) and timm's hold the same tensors under other
# module paths; each trunk's pairs of module prefixes are derived from timm's stage depths.


def trunk_key_to_timm(trunk: str, key: str) -> str:
    """timm's name for upstream's trunk weight `key` (the part after `trunk.model.backbone.model.`).

    `trunk` is a `STUDENT_TRUNKS` name; for EfficientViT and TinyViT, whose rules do not depend on the size, the
    family name works too.
    """
    return _rename(_prefix_pairs(_trunk_for_rules(trunk)), key, "c", "conv", _family(trunk))


def timm_key_to_trunk(trunk: str, key: str) -> str:
    """Upstream's trunk name for timm's weight `key`: the inverse of `trunk_key_to_timm`."""
    pairs = {timm: upstream for upstream, timm in _prefix_pairs(_trunk_for_rules(trunk)).items()}
    return _rename(pairs, key, "conv", "c", _family(trunk))


def _family(trunk: str) -> str:
    return trunk if trunk in FAMILIES else student_trunk(trunk).family


def _trunk_for_rules(trunk: str) -> str:
    if trunk == "repvit":
        raise ModelError("RepViT's key rules depend on its depths: pass the trunk name (e.g. 'repvit_m1_1')")
    return {"efficientvit": "efficientvit_b0", "tinyvit": "tiny_vit_5m"}.get(trunk, trunk)


def _rename(pairs: dict[str, str], key: str, old_leaf: str, new_leaf: str, family: str) -> str:
    parts = key.split(".")
    for end in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in pairs:
            rest = parts[end:]
            if family == "tinyvit":  # TinyViT's Conv2d_BN: `c` upstream, `conv` in timm
                rest = [new_leaf if part == old_leaf else part for part in rest]
            return ".".join([pairs[prefix], *rest])
    raise ModelError(f"no {family} rule renames trunk weight {key!r}")


@cache
def _prefix_pairs(trunk: str) -> dict[str, str]:
    """{upstream module prefix: timm module prefix} for every block of `trunk`."""
    spec = student_trunk(trunk)
    with torch.device("meta"):
        model = timm_trunk(spec.timm_name)
    return {"efficientvit": _efficientvit_pairs, "repvit": _repvit_pairs, "tinyvit": _tinyvit_pairs}[spec.family](
        model)


def _efficientvit_pairs(model) -> dict[str, str]:
    pairs = {"input_stem.op_list.0": "stem.in_conv"}
    residuals = len(list(model.stem.children())) - 1
    pairs.update({f"input_stem.op_list.{i + 1}": f"stem.res{i}" for i in range(residuals)})
    pairs.update({f"stages.{s}.op_list": f"stages.{s}.blocks" for s in range(len(model.stages))})
    return pairs


def _repvit_pairs(model) -> dict[str, str]:
    def block(upstream: str, timm: str) -> dict[str, str]:
        return {f"{upstream}.token_mixer.0": f"{timm}.token_mixer", f"{upstream}.token_mixer.1": f"{timm}.se",
                f"{upstream}.channel_mixer.m.0": f"{timm}.channel_mixer.conv1",
                f"{upstream}.channel_mixer.m.2": f"{timm}.channel_mixer.conv2"}

    pairs = {"features.0.0": "stem.conv1", "features.0.2": "stem.conv2"}
    index = 1  # upstream's `features` is flat: the stem, then per stage its downsample (two entries) and blocks
    for s, stage in enumerate(model.stages):
        if not isinstance(stage.downsample, nn.Identity):
            down = f"stages.{s}.downsample"
            pairs.update(block(f"features.{index}", f"{down}.pre_block"))
            pairs.update({f"features.{index + 1}.token_mixer.0": f"{down}.spatial_downsample",
                          f"features.{index + 1}.token_mixer.2": f"{down}.channel_downsample",
                          f"features.{index + 1}.channel_mixer.m.0": f"{down}.ffn.conv1",
                          f"features.{index + 1}.channel_mixer.m.2": f"{down}.ffn.conv2"})
            index += 2
        for b in range(len(stage.blocks)):
            pairs.update(block(f"features.{index}", f"stages.{s}.blocks.{b}"))
            index += 1
    return pairs


def _tinyvit_pairs(model) -> dict[str, str]:
    pairs = {"patch_embed.seq.0": "patch_embed.conv1", "patch_embed.seq.2": "patch_embed.conv2"}
    for s in range(len(model.stages)):
        pairs[f"layers.{s}.blocks"] = f"stages.{s}.blocks"
        pairs[f"layers.{s}.downsample"] = f"stages.{s + 1}.downsample"  # timm opens each stage with the downsample
    return pairs
