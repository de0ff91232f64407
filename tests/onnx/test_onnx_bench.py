"""`litetext bench --backend onnx` runs the ONNX engine beside PyTorch's and the naive loop in one run."""

from __future__ import annotations

import json
import shutil

import pytest

from litetext.bench import ONNX_REPROMPT, ONNX_RUN, run_bench
from litetext.cli import main


@pytest.fixture(scope="module")
def cached_export(checkpoints, onnx_export):
    """The session's export placed where `load(backend="onnx")` and the bench look for this checkpoint's, so the
    bench finds it instead of exporting again (the cache lookup is what is tested here, not the export)."""
    from litetext.onnx.export import export_directory

    directory, precision = export_directory(str(checkpoints["litetext"]), "fp32")
    assert precision == "float32"
    if not directory.exists():
        shutil.copytree(onnx_export, directory)
    return directory


def test_bench_runs_onnx_beside_pytorch_and_checks_its_instances(checkpoints, cached_export):
    report = run_bench(model=str(checkpoints["litetext"]), device="cpu", dtype="fp32", images=2, size=(160, 120),
                       prompts=3, backend="onnx", log=lambda line: None)
    names = [m.name for m in report.measurements]
    assert names[-2:] == [ONNX_RUN, ONNX_REPROMPT] and "litetext" in names and "naive loop" in names
    onnx = report.onnx_agreement
    assert onnx.instances_reference > 0 and onnx.same_instances
    assert onnx.max_score_difference < 1e-4 and onnx.mean_mask_iou >= 0.999
    assert {"onnx vs litetext (torch)", "onnx re-prompt vs litetext re-prompt"} <= set(report.ratios())
    assert "ONNX Runtime (fp32) against the naive loop" in report.table()


def test_load_finds_a_models_export_in_the_cache(checkpoints, cached_export):
    import litetext

    engine = litetext.load(str(checkpoints["litetext"]), backend="onnx")
    assert engine.info.checkpoint == str(cached_export) and engine.info.dtype == "float32"


def test_bench_int8_is_measured_by_recall_and_iou_against_fp32(checkpoints, cached_export, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--model", str(checkpoints["litetext"]), "--device", "cpu", "--images", "1",
                 "--size", "160x120", "--prompts", "2", "--backend", "onnx", "--quantize", "int8",
                 "--reference-dtype", "fp32", "--json", str(out)])
    assert code == 0  # an inexact mode is measured, never failed
    assert "ONNX Runtime (int8) against the naive loop: found" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["settings"]["quantize"] == "int8" and 0.0 <= data["onnx_agreement"]["recall"] <= 1.0
    assert (cached_export.parent / "int8-vision" / "manifest.json").is_file()


def test_bench_refuses_quantize_without_the_onnx_backend(checkpoints):
    from litetext import InputError

    with pytest.raises(InputError, match="add --backend onnx"):
        run_bench(model=str(checkpoints["litetext"]), device="cpu", quantize="int8", log=lambda line: None)


@pytest.mark.parametrize("capability, says", [("AVX512", "recommended here"), ("AVX2", "as fast as PyTorch")])
def test_info_tells_what_the_onnx_backend_measured_on_this_kind_of_cpu_only_machine(capsys, monkeypatch, capability,
                                                                                     says):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert main(["info"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("onnx backend:"))
    assert says in line and "int8" in line and "litetext export MODEL --format onnx" in line
