"""One tiny ONNX export per session, written by `litetext export` (export takes a minute or more; run it once)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason='the ONNX backend needs pip install "litetext[onnx]"')


@pytest.fixture(scope="session")
def onnx_int8_export(onnx_export, tmp_path_factory) -> Path:
    """The same export with an int8 vision encoder."""
    from litetext.onnx import quantize_export

    out = tmp_path_factory.mktemp("onnx-int8") / "tiny-litetext-int8"
    quantize_export(onnx_export, out)
    return out


@pytest.fixture
def export_copy(onnx_export, tmp_path) -> Path:
    """A copy of the export this test may damage."""
    return Path(shutil.copytree(onnx_export, tmp_path / "copy"))


@pytest.fixture(scope="session")
def onnx_engine(onnx_export):
    import litetext

    return litetext.load(str(onnx_export))


def assert_close_instances(result, prompt_index: int, reference: dict, *, min_iou: float = 0.999) -> None:
    """fp32 ONNX against the transformers pipeline: the same instances, scores and boxes within 1e-4 and each
    mask's IoU with its reference mask at least `min_iou` (ONNX Runtime's kernels round differently)."""
    chosen = result.prompt_indices == prompt_index
    assert chosen.sum() == len(reference["scores"]), "different number of instances"
    np.testing.assert_allclose(result.scores[chosen], reference["scores"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(result.boxes[chosen], reference["boxes"], atol=1e-4, rtol=0)
    for ours, theirs in zip(result.masks[chosen], reference["masks"]):
        union = np.logical_or(ours, theirs).sum()
        iou = np.logical_and(ours, theirs).sum() / union if union else 1.0
        assert iou >= min_iou, f"mask IoU {iou:.5f} < {min_iou}"
