"""`litetext bench` runs all workloads and checks agreement before claiming a speed-up (not a timed test)."""

from __future__ import annotations

import json

import pytest

import litetext
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


def test_bench_times_a_click_against_the_naive_tracker_and_checks_the_mask(tracker_checkpoints):
    report = run_bench(model=str(tracker_checkpoints["composed"]), device="cpu", dtype="fp32", images=1,
                       size=(160, 120), prompts=2, log=lambda line: None)
    names = [m.name for m in report.measurements]
    assert names[-2:] == ["click (litetext, cached)", "click (naive tracker, one call)"]
    assert report.clicks_agree is True and "click vs naive" in report.ratios()
    assert "Click against the naive tracker: identical mask" in report.table()


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
@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_decoder_matches_the_reference_and_baselines_stay_uncompiled(checkpoints, mode):
    engine = litetext.load(str(checkpoints["litetext"]), device="cpu", dtype="fp32")
    report = run_bench(model=str(checkpoints["litetext"]), device="cpu", dtype="fp32", images=2, size=(160, 120),
                       prompts=2, batch_size=2, compile_mode=mode, log=lambda line: None)
    assert report.settings["compiled"] == mode
    agreement = report.agreement
    assert agreement.same_instances and agreement.max_score_difference < 1e-4 and agreement.mean_mask_iou > 0.9999
    assert not engine.compiled, "the bench compiles a private copy, never the process-wide engine"


def test_inexact_mode_is_measured_against_the_reference_dtype_not_failed(checkpoints, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--model", str(checkpoints["litetext"]), "--device", "cpu", "--images", "1",
                 "--size", "160x120", "--prompts", "2", "--dtype", "bf16", "--reference-dtype", "fp32",
                 "--json", str(out)])
    assert code == 0
    assert "Inexact mode, bfloat16 against the float32 reference" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["settings"]["dtype"] == "bfloat16" and data["settings"]["reference_dtype"] == "float32"
    agreement = data["agreement"]
    assert agreement["instances_reference"] > 0
    assert 0 < agreement["matched_instances"] <= min(agreement["instances_reference"], agreement["instances_litetext"])
    assert 0.5 <= agreement["mean_mask_iou"] <= 1.0


def test_vision_only_precision_is_measured_against_fp32(checkpoints):
    report = run_bench(model=str(checkpoints["sam3"]), device="cpu", dtype="bf16-vision", images=1, size=(96, 64),
                       prompts=2, log=lambda line: None)
    assert (report.settings["dtype"], report.settings["reference_dtype"]) == ("bfloat16-vision", "float32")
    assert report.inexact and report.agreement.matched_instances > 0


def test_agreement_pairs_instances_by_mask_not_by_order():
    import numpy as np

    from litetext.bench import _agreement
    from litetext.result import Result

    masks = np.zeros((3, 8, 8), dtype=bool)
    masks[0, :4], masks[1, 4:], masks[2, :, :2] = True, True, True
    reference = [[{"scores": np.array([0.9, 0.8, 0.7]), "boxes": np.zeros((3, 4)), "masks": masks}]]
    reordered = Result(masks=masks[[1, 0]], scores=np.array([0.8, 0.9]), boxes=np.zeros((2, 4)),
                       prompt_indices=np.zeros(2, dtype=int), prompts=["x"], image_size=(8, 8))
    agreement = _agreement(reference, [reordered])
    assert agreement.matched_instances == 2 and agreement.instances_reference == 3
    assert agreement.mean_mask_iou == 1.0 and agreement.max_score_difference == 0.0
    assert not agreement.same_instances and agreement.recall == 2 / 3


def test_a_mixed_reference_dtype_is_refused_clearly(checkpoints):
    with pytest.raises(litetext.InputError, match="mixes dtypes; the plain transformers loops need one"):
        run_bench(model=str(checkpoints["sam3"]), device="cpu", reference_dtype="bf16-vision", images=1,
                  size=(96, 64), prompts=1, log=lambda line: None)


def test_video_bench_samples_memory_and_tracker_state_as_it_goes(capsys):
    assert main(["bench", "--model", "tiny-random-tracker", "--device", "cpu", "--video", "6", "--size", "96x72",
                 "--prompts", "1"]) == 0
    out = capsys.readouterr().out
    assert "ms per frame" in out and "| frame | host MB | tracker state MB | objects |" in out
    assert out.count("\n| ") >= 7  # header + one row per sampled frame (0, and every tenth of six frames)
