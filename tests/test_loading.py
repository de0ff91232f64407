"""Checkpoint loading: aliases, local directories, safetensors only, clear errors, a light import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import litetext
from litetext import ModelError, ModelNotFoundError, UnsafeCheckpointError
from litetext.models.checkpoints import cache_dir, resolve_checkpoint
from litetext.models.precision import resolve_device, resolve_dtype, resolve_dtypes


def test_tiny_random_alias_builds_once_in_the_cache_and_loads_like_a_hub_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("LITETEXT_CACHE", str(tmp_path))
    path = resolve_checkpoint("tiny-random")
    assert path.startswith(str(tmp_path)) and (tmp_path / "tiny-random-v1" / "model.safetensors").exists()
    stamp = (tmp_path / "tiny-random-v1" / "model.safetensors").stat().st_mtime_ns
    assert resolve_checkpoint("tiny-random") == path
    assert (tmp_path / "tiny-random-v1" / "model.safetensors").stat().st_mtime_ns == stamp
    engine = litetext.load("tiny-random", device="cpu")
    assert engine.info.family == "litetext" and engine.info.model == "tiny-random"


def test_sam3_checkpoint_loads_as_the_teacher_family(checkpoints):
    engine = litetext.load(str(checkpoints["sam3"]), device="cpu")
    assert engine.info.family == "sam3"
    assert type(engine.model).__name__ == "Sam3Model"


def test_known_alias_maps_to_its_hub_id():
    assert resolve_checkpoint("s0-16") == "Simon7108528/sam3-litetext-s0"
    assert resolve_checkpoint("sam3") == "facebook/sam3"


def test_unpublished_alias_says_how_to_get_it():
    with pytest.raises(ModelNotFoundError, match="convert"):
        resolve_checkpoint("s0-32")


def test_unknown_name_is_not_guessed():
    with pytest.raises(ModelNotFoundError, match="neither a known alias"):
        resolve_checkpoint("definitely-not-a-model")


def test_directory_with_only_pickle_weights_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(UnsafeCheckpointError, match="pickle"):
        litetext.load(str(tmp_path), device="cpu")


def test_missing_hub_checkpoint_offline_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        litetext.load("nobody-here/no-such-model", device="cpu")


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    from transformers import CLIPTextConfig, CLIPTextModel

    CLIPTextModel(CLIPTextConfig(hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                 num_attention_heads=2)).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="not SAM3"):
        litetext.load(str(tmp_path), device="cpu")


def test_auto_device_and_dtype_on_a_cpu_machine():
    import torch

    assert resolve_device("auto") == "cpu"
    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("bf16", "cpu") is torch.bfloat16
    with pytest.raises(ModelError, match="unknown dtype 'fp8'; use one of auto, fp32.*bf16-vision"):
        resolve_dtype("fp8", "cpu")
    with pytest.raises(ModelError, match="CUDA is not available"):
        resolve_device("cuda")


def test_vision_only_precision_names_a_half_vision_encoder_and_an_fp32_rest():
    import torch

    assert resolve_dtypes("bf16-vision", "cpu") == (torch.bfloat16, torch.float32)
    assert resolve_dtypes("fp16-vision", "cpu") == (torch.float16, torch.float32)
    assert resolve_dtypes("bf16", "cpu") == (torch.bfloat16, torch.bfloat16)
    assert resolve_dtypes("auto", "cpu") == (torch.float32, torch.float32)


def test_bf16_vision_engine_is_its_own_engine_and_finds_what_fp32_finds(checkpoints, photos):
    import torch

    from litetext.bench import _mask_ious

    path = str(checkpoints["litetext"])
    mixed = litetext.load(path, device="cpu", dtype="bf16-vision")
    exact = litetext.load(path, device="cpu", dtype="fp32")
    assert mixed is not exact and mixed is litetext.load(path, device="cpu", dtype="bf16-vision")
    assert (mixed.vision_dtype, mixed.dtype, mixed.info.dtype) == (torch.bfloat16, torch.float32, "bfloat16-vision")
    assert next(mixed.model.detr_decoder.parameters()).dtype == torch.float32
    features = mixed.encode_image(photos[0])
    assert all(level.dtype == torch.float32 for level in features.fpn_hidden_states)
    found, expected = mixed.segment(photos[0], ["cat", "dog"]), exact.segment(photos[0], ["cat", "dog"])
    assert len(expected) > 0 and abs(len(found) - len(expected)) <= max(1, len(expected) // 10)
    best = _mask_ious(expected.masks, found.masks).max(axis=1)
    assert np.mean(best) > 0.9


def test_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("LITETEXT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "litetext"


def test_import_litetext_stays_light():
    code = ("import sys, litetext; heavy = [m for m in ('torch', 'transformers', 'gradio', 'fiftyone', "
            "'label_studio_sdk', 'comfy', 'numpy') if m in sys.modules]; print(heavy)")
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert finished.stdout.strip() == "[]"


def test_core_never_imports_an_ecosystem_library():
    from pathlib import Path

    core = Path(litetext.__file__).parent
    for source in core.glob("*.py"):
        text = source.read_text()
        for library in ("gradio", "fiftyone", "label_studio", "comfy"):
            assert f"import {library}" not in text and f"from {library}" not in text, (source.name, library)
