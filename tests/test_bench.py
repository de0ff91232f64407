"""`litetext bench` runs all workloads and checks agreement before claiming a speed-up (not a timed test)."""

from __future__ import annotations

import json

import pytest

from litetext.bench import run_bench
from litetext.cli import main


def test_bench_reports_every_workload_and_same_instances(checkpoints):
    report = run_bench(model=str(checkpoints["litetext"]), device="cpu", dtype="fp32", images=2, size=(160, 120),
                       prompts=3, log=lambda line: None)
    names = [m.name for m in report.measurements]
    assert names == ["naive loop", "vision reuse", "re-prompt (naive, one call)", "litetext",
                     "re-prompt (litetext, cached)"]
    assert all(m.seconds > 0 and m.peak_host_mb > 0 for m in report.measurements)
    agreement = report.agreement
    assert agreement.same_instances and agreement.identical_masks
    assert agreement.instances_litetext == agreement.instances_reference > 0
    assert set(report.ratios()) == {"litetext vs naive", "litetext vs vision reuse", "re-prompt vs naive"}


def test_bench_command_writes_json_and_a_table(checkpoints, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--model", str(checkpoints["sam3"]), "--device", "cpu", "--images", "1",
                 "--size", "96x64", "--prompts", "2", "--json", str(out)])
    assert code == 0
    assert "| litetext |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["agreement"]["same_instances"] is True
    assert data["settings"]["prompts"] == 2 and data["machine"]["cpu_count"] >= 1


@pytest.mark.slow
def test_compiled_decoder_matches_the_reference_and_baselines_stay_uncompiled(tmp_path):
    from litetext.testing import build_tiny_checkpoint

    path = build_tiny_checkpoint(tmp_path / "fresh", architecture="litetext")  # its own engine: compiling is global
    report = run_bench(model=str(path), device="cpu", dtype="fp32", images=1, size=(160, 120), prompts=2,
                       compile_mode="default", log=lambda line: None)
    assert report.settings["compiled"] == "default"
    agreement = report.agreement
    assert agreement.same_instances and agreement.max_score_difference < 1e-4 and agreement.mean_mask_iou > 0.9999
