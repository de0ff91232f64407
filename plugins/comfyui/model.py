"""The LITETEXT_MODEL value: a shared litetext engine plus the ComfyUI hooks that let ComfyUI manage its memory.

Everything ComfyUI-specific is optional here: without `comfy` / `folder_paths` importable (plain Python, the
CLI) the functions fall back to litetext's own choices.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import litetext

#: The folder under ComfyUI's `models/` holding local checkpoints (Hugging Face save_pretrained directories).
MODEL_FOLDER = "sam3_litetext"
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "bf16-vision")
DEVICES = ("auto", "cpu")


def _optional(module: str):
    try:
        from importlib import import_module

        return import_module(module)
    except Exception:  # not running inside ComfyUI (or a broken install): behave like plain litetext
        return None


def register_model_folder() -> None:
    """Register `models/sam3_litetext` with ComfyUI's folder_paths (extra_model_paths.yaml can add more)."""
    folder_paths = _optional("folder_paths")
    if folder_paths is None or not hasattr(folder_paths, "models_dir"):
        return
    path = os.path.join(folder_paths.models_dir, MODEL_FOLDER)
    try:
        folder_paths.add_model_folder_path(MODEL_FOLDER, path)
    except Exception:  # older folder_paths without add_model_folder_path
        folder_paths.folder_names_and_paths[MODEL_FOLDER] = ([path], set())


def local_model_dirs() -> dict[str, Path]:
    """Checkpoint directories (those with a config.json) under every registered sam3_litetext folder."""
    folder_paths = _optional("folder_paths")
    if folder_paths is None:
        return {}
    try:
        roots = folder_paths.get_folder_paths(MODEL_FOLDER)
    except Exception:
        return {}
    found: dict[str, Path] = {}
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            if child.is_dir() and (child / "config.json").is_file():
                found.setdefault(child.name, child)
    return found


def model_choices() -> list[str]:
    """What the loader's model list offers: local folders first, then the registry aliases that can load."""
    aliases = [spec.alias for spec in litetext.list_models() if spec.repo_id is not None or
               spec.alias.startswith("tiny-random")]
    aliases.sort(key=lambda alias: alias != litetext.DEFAULT_MODEL)
    local = list(local_model_dirs())
    return local + [alias for alias in aliases if alias not in local]


def resolve_model(choice: str, hub_id: str = "") -> str:
    """The `litetext.load` argument: `hub_id` when given, else a local folder of that name, else the alias."""
    if hub_id and hub_id.strip():
        return hub_id.strip()
    local = local_model_dirs()
    return str(local[choice]) if choice in local else choice


def tracker_choices() -> list[str]:
    """What the loader's tracker list offers: `auto` (the checkpoint's own, if it has one), `none`, then checkpoints
    that hold SAM3's tracker (sam3_video folders in models/sam3_litetext, then the registry's) to compose with."""
    local = [name for name, path in local_model_dirs().items() if _is_video_checkpoint(path)]
    aliases = [spec.alias for spec in litetext.list_models() if spec.has_tracker and spec.family == "sam3"]
    return ["auto", "none", *local, *[alias for alias in aliases if alias not in local]]


def resolve_tracker(choice: str) -> str | bool | None:
    """The `litetext.load(..., tracker=)` argument: None for `auto`, False for `none`, else a folder or alias."""
    if choice in (None, "", "auto"):
        return None
    if choice == "none":
        return False
    local = local_model_dirs()
    return str(local[choice]) if choice in local else choice


def _is_video_checkpoint(path: Path) -> bool:
    """Whether a save_pretrained folder is in facebook/sam3's sam3_video layout (detector plus tracker)."""
    import json

    try:
        return json.loads((path / "config.json").read_text()).get("model_type") == "sam3_video"
    except (OSError, ValueError, AttributeError):
        return False


def resolve_device(choice: str) -> str:
    """`auto` is ComfyUI's compute device (respects --cpu, --cuda-device ...), or litetext's auto outside it."""
    if choice != "auto":
        return choice
    mm = _optional("comfy.model_management")
    if mm is None:
        return "auto"
    return str(mm.get_torch_device())


def resolve_precision(choice: str, device: str) -> str:
    """`auto` is fp32 on CPU, bf16 where ComfyUI says the device supports it, else fp32."""
    if choice != "auto":
        return choice
    if device == "cpu":
        return "fp32"
    mm = _optional("comfy.model_management")
    if mm is None or device == "auto":
        return "auto"
    import torch

    try:
        return "bf16" if mm.should_use_bf16(torch.device(device)) else "fp32"
    except Exception:
        return "auto"


@dataclass
class LiteTextModel:
    """What flows through a LITETEXT_MODEL socket: the process-wide engine and ComfyUI's handle on it."""

    engine: Any
    patcher: Any = None  # comfy.model_patcher.ModelPatcher, when running inside ComfyUI

    def ready(self) -> Any:
        """Ask ComfyUI to (re)load the weights onto the compute device, then return the engine.

        ComfyUI may have offloaded them to make room for other models since the last run.
        """
        if self.patcher is not None:
            mm = _optional("comfy.model_management")
            if mm is not None:
                mm.load_models_gpu([self.patcher], force_full_load=True)
        return self.engine

    def __repr__(self) -> str:
        return f"LiteTextModel({self.engine!r})"


_PATCHERS: dict[int, Any] = {}
_PATCHERS_LOCK = threading.Lock()


def load_model(choice: str, hub_id: str = "", device: str = "auto", precision: str = "auto",
               tracker: str = "auto") -> LiteTextModel:
    """Load (or reuse) the shared engine and wrap it so ComfyUI's model management can offload it."""
    model = resolve_model(choice, hub_id)
    resolved_device = resolve_device(device)
    engine = litetext.load(model, device=resolved_device, dtype=resolve_precision(precision, resolved_device),
                           tracker=resolve_tracker(tracker))
    return LiteTextModel(engine, _patcher_for(engine))


def _patcher_for(engine: Any) -> Any:
    """One ModelPatcher per engine (ComfyUI tracks loaded models by patcher identity). None outside ComfyUI, and
    for an ONNX Runtime engine: it runs on the CPU and holds its own memory, with no torch weights to offload."""
    mm = _optional("comfy.model_management")
    model_patcher = _optional("comfy.model_patcher")
    if mm is None or model_patcher is None or not hasattr(model_patcher, "ModelPatcher"):
        return None
    if engine.info.backend != "torch":
        return None
    with _PATCHERS_LOCK:
        patcher = _PATCHERS.get(id(engine))
        if patcher is None:
            import torch

            load_device = torch.device(engine.device)
            offload_device = torch.device("cpu") if load_device.type == "cpu" else mm.unet_offload_device()
            patcher = model_patcher.ModelPatcher(_Offloadable(engine.model), load_device=load_device,
                                                 offload_device=offload_device)
            _PATCHERS[id(engine)] = patcher
        return patcher


@functools.cache
def _offloadable_class():
    import torch

    class Offloadable(torch.nn.Module):
        """Holds the transformers model under a module whose `device` attribute ModelPatcher may set
        (transformers models expose `device` as a read-only property)."""

        def __init__(self, model):
            super().__init__()
            self.inner = model
            self.device = next(model.parameters()).device

    return Offloadable


def _Offloadable(model):  # noqa: N802 - reads like the class it builds
    return _offloadable_class()(model)
