"""The comparison table of `bench_students.sh`: each model's dataset run, re-prompt, peak memory and stages, and
the ratios against LiteText-S0 (PyTorch fp32 at 1008) from the same run."""

import json
import sys
from pathlib import Path

folder, name = Path(sys.argv[1]), sys.argv[2]


def load(tag: str) -> dict:
    return json.loads((folder / f"{name}-students-{tag}.json").read_text())


def ms(report: dict, workload: str) -> float | None:
    found = [m for m in report["measurements"] if m["name"] == workload]
    return found[0]["ms_per_image"] if found else None


def peak(report: dict, workload: str) -> float | None:
    found = [m for m in report["measurements"] if m["name"] == workload]
    return found[0]["peak_host_mb"] if found else None


s0_4, s0_1 = load("s0-4p"), load("s0-1p")
base_4, base_1 = ms(s0_4, "litetext"), ms(s0_1, "litetext")
print(f"machine: {s0_4['machine']}\n")
print("| model | runtime | input | prompts | ms / image | vs S0 (PyTorch, 1008) | re-prompt ms | peak host MB | "
      "stages (trunk / neck / text / heads, ms) |")
print("|---|---|---|---|---|---|---|---|---|")
rows = [("S0", "s0-4p", 4, base_4), ("S0", "s0-1p", 1, base_1), ("EV-M", "evm-4p", 4, base_4),
        ("RV-M", "rvm-4p", 4, base_4), ("TV-M", "tvm-4p", 4, base_4), ("EV-M", "evm-504-1p", 1, base_1)]
for model, tag, prompts, base in rows:
    report = load(tag)
    size = report["settings"].get("image_size") or 1008
    stages = report.get("stages_ms") or {}
    split = " / ".join(f"{stages[k]:,.0f}" for k in ("trunk", "neck", "text", "heads") if k in stages)
    for runtime, run, reprompt in (("PyTorch fp32", "litetext", "re-prompt (litetext, cached)"),
                                   ("ONNX fp32", "litetext (onnx)", "re-prompt (onnx, cached)")):
        value = ms(report, run)
        if value is None:
            continue
        stage_cell = split if runtime.startswith("Py") else "-"
        print(f"| {model} | {runtime} | {size} | {prompts} | {value:,.0f} | {base / value:.1f}x | "
              f"{ms(report, reprompt) or 0:,.0f} | {peak(report, run):,.0f} | {stage_cell} |")
video = load("evm-video")
print(f"\nEV-M video (640x480, 1 prompt, stream): {video['ms_per_frame']:,.0f} ms per frame")
evm = load("evm-4p")
click = ms(evm, "click (litetext, cached)")
if click is not None:
    print(f"EV-M click on a cached image: {click:,.0f} ms")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # the table is the result; the plot is a picture of it
    sys.exit(0)
labels, values = [], []
for model, tag, prompts, _ in rows:
    report = load(tag)
    size = report["settings"].get("image_size") or 1008
    for runtime, run in (("PyTorch", "litetext"), ("ONNX", "litetext (onnx)")):
        value = ms(report, run)
        if value is not None:
            labels.append(f"{model} {runtime}, {size} px, {prompts} prompt{'s' if prompts > 1 else ''}")
            values.append(value / 1e3)
figure, axis = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.4))
bars = axis.barh(labels, values, color=["#888888" if label.startswith("S0") else "#e6194b" for label in labels])
axis.bar_label(bars, labels=[f"{v:,.1f} s" for v in values], padding=3)
axis.invert_yaxis()
axis.set_xlabel("seconds per 1280x960 image (lower is better)")
axis.set_xlim(0, max(values) * 1.15)
axis.set_title(f"EfficientSAM3 against LiteText-S0\nfull-size random weights, fp32, {name}, 2 cores")
figure.tight_layout()
figure.savefig(folder.parent / "images" / f"{name}-students.png", dpi=110)
