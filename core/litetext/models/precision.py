"""Where a model runs and in which precision: device and dtype names, resolved and applied."""

from __future__ import annotations

from typing import Any

from ..errors import ModelError


def resolve_device(device: str = "auto") -> str:
    """`auto` picks cuda, then mps, then cpu; anything else is passed through after a check."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} was asked for but CUDA is not available; use device='cpu' or 'auto'")
    return device


def resolve_dtype(dtype: Any = "auto", device: str = "cpu"):
    """`auto` is bf16 on CUDA GPUs that support it, else fp32. Accepts torch dtypes or names like 'fp16'."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if dtype not in names:
        raise ModelError(f"unknown dtype {dtype!r}; use one of auto, {', '.join(names)}, "
                         f"{', '.join(VISION_ONLY)}")
    return names[dtype]


#: Precisions that run only the vision encoder (most of the arithmetic) in half precision, the rest in fp32.
VISION_ONLY = ("bf16-vision", "fp16-vision")


def resolve_dtypes(dtype: Any = "auto", device: str = "cpu") -> tuple[Any, Any]:
    """(vision encoder dtype, dtype of everything else) for a precision name: `resolve_dtype`'s names, or
    `bf16-vision` / `fp16-vision` for a half-precision vision encoder in front of an fp32 text encoder and
    decoder."""
    import torch

    if isinstance(dtype, str) and dtype in VISION_ONLY:
        return resolve_dtype(dtype.removesuffix("-vision"), device), torch.float32
    resolved = resolve_dtype(dtype, device)
    return resolved, resolved


def precision_name(vision_dtype: Any, dtype: Any) -> str:
    """`float32`, `bfloat16`, ... or `bfloat16-vision` when only the vision encoder runs in that dtype."""
    name = str(vision_dtype).removeprefix("torch.")
    return name if vision_dtype == dtype else f"{name}-vision"


def set_precision(model: Any, vision_dtype: Any, dtype: Any) -> Any:
    """Cast `model` to `dtype` and its vision encoder to `vision_dtype`, in place; returns the model."""
    model.to(dtype)
    model.vision_encoder.to(vision_dtype)
    return model
