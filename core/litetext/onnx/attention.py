"""Attention that exports as ONNX Runtime's fused `com.microsoft.MultiHeadAttention`.

Exported as plain MatMul/Softmax, attention materialises its whole score matrix: 72×72 = 5,184 image tokens make
about 860 MB per prompt and layer in the DETR encoder, more in the ViT's global layers. ONNX Runtime's fused
MultiHeadAttention runs a flash-attention kernel on CPU when there is no mask, so memory stays bounded. It also
sidesteps a dynamo-exporter failure on the decoder's SDPA reshape with a dynamic prompt count.

During export, every attention module of the model calls `litetext::attention`, a custom op whose eager
implementation is PyTorch's SDPA (so tracing sees the same numbers) and whose ONNX translation is the fused op.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

ATTENTION_NAME = "litetext_onnx"
_registered = False


def _register() -> None:
    """Register the custom op, its transformers attention function and the ONNX schema, once per process."""
    global _registered
    if _registered:
        return
    import onnx
    import torch
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    @torch.library.custom_op("litetext::attention", mutates_args=(),
                             schema="(Tensor query, Tensor key, Tensor value, Tensor? mask, float scale) -> Tensor")
    def attention(query, key, value, mask, scale):
        out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale)
        return out.transpose(1, 2).contiguous()

    @attention.register_fake
    def _(query, key, value, mask, scale):
        return query.new_empty((query.shape[0], query.shape[2], query.shape[1], value.shape[3]))

    def attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None,
                          **kwargs) -> tuple[Any, None]:
        if is_causal or kwargs.get("position_bias") is not None:
            raise NotImplementedError("litetext's ONNX export supports non-causal attention only")
        # ONNX Runtime's op does not broadcast the batch dimension as SDPA does: make it explicit.
        batch = max(query.shape[0], key.shape[0], value.shape[0])
        query, key, value = (t.expand(batch, -1, -1, -1) for t in (query, key, value))
        scale = query.shape[-1] ** -0.5 if scaling is None else scaling
        return torch.ops.litetext.attention(query, key, value, attention_mask, float(scale)), None

    AttentionInterface.register(ATTENTION_NAME, attention_forward)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)  # the masks SDPA gets, built the same way
    exists = any(s.name == "MultiHeadAttention" and s.domain == "com.microsoft"
                 for s in onnx.defs.get_all_schemas_with_history())
    if not exists:  # onnx itself does not know ONNX Runtime's contrib ops; describe the inputs litetext uses
        parameter, optional = onnx.defs.OpSchema.FormalParameter, onnx.defs.OpSchema.FormalParameterOption.Optional
        inputs = [parameter("query", "T"), parameter("key", "T"), parameter("value", "T")] + [
            parameter(name, kind, param_option=optional)
            for name, kind in (("bias", "T"), ("key_padding_mask", "M"), ("attention_bias", "T"))
        ]
        onnx.defs.register_schema(onnx.defs.OpSchema(
            "MultiHeadAttention", "com.microsoft", 1, inputs=inputs, outputs=[parameter("output", "T")],
            type_constraints=[("T", ["tensor(float)", "tensor(float16)"], ""), ("M", ["tensor(int32)"], "")],
            attributes=[onnx.defs.OpSchema.Attribute("num_heads", onnx.defs.OpSchema.AttrType.INT, ""),
                        onnx.defs.OpSchema.Attribute("scale", onnx.defs.OpSchema.AttrType.FLOAT, "")],
        ))
    _registered = True


def translation_table() -> dict[Any, Any]:
    """`torch.onnx.export(custom_translation_table=...)`: `litetext::attention` as fused MultiHeadAttention."""
    import onnxscript
    import torch
    from onnxscript import ir
    from onnxscript import opset18 as op

    _register()
    microsoft = onnxscript.values.Opset("com.microsoft", 1)

    def to_tokens(x):  # (batch, heads, tokens, head_dim) -> (batch, tokens, heads * head_dim)
        return op.Reshape(op.Transpose(x, perm=[0, 2, 1, 3]), op.Constant(value_ints=[0, 0, -1]))

    def multi_head_attention(query, key, value, mask=None, scale: float = 1.0):
        heads, head_dim = int(query.shape[1]), int(value.shape[3])
        bias = None
        if mask is not None:
            if mask.dtype == ir.DataType.BOOL:
                bias = op.Where(mask, op.CastLike(0.0, query), op.CastLike(float("-inf"), query))
            else:
                bias = op.CastLike(mask, query)
            for _ in range(4 - len(mask.shape)):
                bias = op.Unsqueeze(bias, op.Constant(value_ints=[0]))
            # (batch, heads, queries, keys) in full: onnxruntime-web's WebGPU kernel broadcasts no dimension
            shape = op.Concat(op.Shape(query, start=0, end=1), op.Constant(value_ints=[heads]),
                              op.Shape(query, start=2, end=3), op.Shape(key, start=2, end=3), axis=0)
            bias = op.Expand(bias, shape)
        out = microsoft.MultiHeadAttention(to_tokens(query), to_tokens(key), to_tokens(value), None, None, bias,
                                           num_heads=heads, scale=float(scale))
        return op.Reshape(out, op.Concat(op.Shape(out, start=0, end=2),
                                         op.Constant(value_ints=[heads, head_dim]), axis=0))

    return {torch.ops.litetext.attention.default: multi_head_attention}


@contextlib.contextmanager
def exportable_attention(model: Any) -> Iterator[None]:
    """Within the block, every attention module of `model` calls `litetext::attention` (restored after)."""
    _register()
    configs = {id(m.config): m.config for m in model.modules() if hasattr(getattr(m, "config", None),
                                                                           "_attn_implementation")}
    configs[id(model.config)] = model.config
    for sub in ("vision_config", "text_config", "backbone_config"):
        for config in list(configs.values()):
            child = getattr(config, sub, None)
            if child is not None and hasattr(child, "_attn_implementation"):
                configs[id(child)] = child
    saved = {key: config._attn_implementation for key, config in configs.items()}
    try:
        for config in configs.values():
            config._attn_implementation = ATTENTION_NAME
        yield
    finally:
        for key, config in configs.items():
            config._attn_implementation = saved[key]
