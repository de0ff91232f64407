#!/usr/bin/env bash
# EfficientSAM3's students against LiteText-S0, full-size random weights, on this machine, one run:
# writes docs/bench/<cpu>-students-*.json and prints the comparison table (docs/edge.md, "Small image encoders").
#   bash scripts/bench_students.sh [cpu-name]
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:-cpu}"
out="docs/bench"
bench() { .venv/bin/litetext bench --device cpu --images 1 --size 1280x960 --no-baselines "$@"; }
bench -m random-s0 --prompts 4 --json "$out/$name-students-s0-4p.json"
bench -m random-s0 --prompts 1 --json "$out/$name-students-s0-1p.json"
bench -m random-ev-m --prompts 4 --backend onnx --json "$out/$name-students-evm-4p.json"
bench -m random-rv-m --prompts 4 --json "$out/$name-students-rvm-4p.json"
bench -m random-tv-m --prompts 4 --json "$out/$name-students-tvm-4p.json"
bench -m random-ev-m --prompts 1 --backend onnx --image-size 504 --json "$out/$name-students-evm-504-1p.json"
.venv/bin/litetext bench -m random-ev-m --device cpu --video 6 --size 640x480 --prompts 1 --max-objects 4 \
    --json "$out/$name-students-evm-video.json"
.venv/bin/python scripts/students_table.py "$out" "$name"
