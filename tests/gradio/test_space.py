"""What the app does as a Hugging Face Space: its card, the ZeroGPU reservation, the models it loads at start-up,
and what survives between calls when ZeroGPU runs the model in a forked worker process."""

from __future__ import annotations

import importlib.util
import multiprocessing
import sys
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
import yaml
from PIL import Image

import litetext
from litetext_gradio import app

SPACE_README = Path(app.__file__).with_name("README.md")


def space_card() -> dict:
    """The YAML front matter of the Space's README.md."""
    _, front_matter, _ = SPACE_README.read_text(encoding="utf-8").split("---\n", 2)
    return yaml.safe_load(front_matter)


def test_the_space_card_lists_exactly_the_checkpoints_the_space_offers(tmp_path):
    offered = app.AppConfig(model=litetext.DEFAULT_MODEL, work_dir=str(tmp_path)).models
    checkpoints = [part for name in offered for part in name.split("+")]  # s0-16+sam3: both checkpoints
    students = [alias for alias in checkpoints if litetext.MODELS[alias].image_encoder != "SAM3 ViT-H"]
    assert students == ["ev-m", "rv-m", "tv-m"]  # EfficientSAM3's, converted from upstream's .pt on first use
    assert all(litetext.MODELS[alias].verified for alias in checkpoints if alias not in students)
    assert space_card()["models"] == list(dict.fromkeys(litetext.MODELS[alias].repo_id for alias in checkpoints))
    assert "s1-16" not in offered and "l-16" not in offered  # their hub ids are unconfirmed
    requirements = (SPACE_README.parent / "requirements.txt").read_text()
    assert "litetext[video,efficient]" in requirements  # timm, which the students' trunks need
    card = space_card()
    assert (card["sdk"], card["app_file"]) == ("gradio", "app.py")


def test_on_zerogpu_the_model_call_reserves_a_short_gpu_duration(monkeypatch):
    reservations = []

    def gpu_decorator(task=None, *, duration=None, size=None):  # the signature of spaces.GPU
        reservations.append(duration)
        return lambda fn: SimpleNamespace(wrapped=fn, duration=duration)

    monkeypatch.setitem(sys.modules, "spaces", SimpleNamespace(GPU=gpu_decorator))
    spec = importlib.util.spec_from_file_location("space_app_on_zerogpu", app.__file__)
    space_app = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, space_app)  # its dataclasses look their module up there
    spec.loader.exec_module(space_app)
    assert 0 < space_app.GPU_DURATION_S < 60 and space_app.GPU_DURATION_S < space_app.GPU_TRACK_DURATION_S
    assert sorted(reservations) == [space_app.GPU_DURATION_S] * 2 + [space_app.GPU_TRACK_DURATION_S]
    for name, duration in (("run_model", space_app.GPU_DURATION_S), ("run_object_model", space_app.GPU_DURATION_S),
                           ("run_tracking", space_app.GPU_TRACK_DURATION_S)):
        wrapped = getattr(space_app, name)
        assert (wrapped.wrapped.__name__, wrapped.duration) == (name, duration)


def test_on_zerogpu_every_offered_model_loads_at_start_and_one_that_cannot_is_not_offered(tmp_path, monkeypatch):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    config = app.AppConfig(model="tiny-random", device="cpu", models=["tiny-random", "tiny-random-sam3", "s0-32"],
                           teacher="l-32", work_dir=str(tmp_path))
    app.preload(config)
    assert config.models == ["tiny-random", "tiny-random-sam3"] and config.teacher is None
    assert {"tiny-random", "tiny-random-sam3"} <= {engine.info.model for engine in litetext.loaded_engines()}
    demo = app.build_demo(config)
    side_by_side = [c for c in demo.blocks.values() if isinstance(c, gr.Checkbox) and c.label.startswith("Side")]
    assert [c.visible for c in side_by_side] == [False]
    assert next(c for c in demo.blocks.values() if isinstance(c, gr.Dropdown)).choices == [
        ("tiny-random", "tiny-random"), ("tiny-random-sam3", "tiny-random-sam3")]


def test_off_zerogpu_only_the_default_model_loads_at_start(tmp_path, monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    config = app.AppConfig(model="tiny-random", device="cpu", models=["tiny-random", "s0-32"], work_dir=str(tmp_path))
    app.preload(config)  # s0-32 cannot load, but it is not tried: it loads (or fails) on its first request
    assert config.models == ["tiny-random", "s0-32"] and config.teacher == "tiny-random-sam3"


def test_a_default_model_that_cannot_load_stops_the_space(tmp_path):
    config = app.AppConfig(model="s0-32", device="cpu", work_dir=str(tmp_path))
    with pytest.raises(litetext.ModelError):
        app.preload(config, every_model=True)


def zerogpu_style_worker(tasks, results, config) -> None:
    """What a ZeroGPU worker does with `run_model`: pickled arguments in from a queue, the pickled result out."""
    import torch

    # OpenMP's thread pool does not survive a fork: this test process has run the model before (a Space's main
    # process never does), so the worker computes on one thread, as PyTorch's own DataLoader workers do.
    torch.set_num_threads(1)
    while (arguments := tasks.get()) is not None:
        result, _, _ = app.run_model(*arguments, config)
        results.put((result.timings.image_cache_hit, id(litetext.load(config.model, device=config.device))))


def test_in_a_forked_worker_the_preloaded_weights_are_there_and_cache_fills_stay_in_that_worker(config):
    """ZeroGPU (spaces 0.51) forks a worker from the app's process and reuses it while its GPU stays idle."""
    app.preload(config)
    engine = litetext.load(config.model, device=config.device)
    rng = np.random.default_rng(20_260_514)
    image = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))  # in no cache yet
    fork = multiprocessing.get_context("fork")

    def start_worker():
        tasks, results = fork.Queue(), fork.Queue()
        process = fork.Process(target=zerogpu_style_worker, args=(tasks, results, config), daemon=True)
        process.start()
        return process, tasks, results

    def call(worker, prompt):
        worker[1].put((config.model, image, [prompt], [], [], 0.5))
        return worker[2].get(timeout=120)

    first = start_worker()
    try:
        assert call(first, "cat") == (False, id(engine))  # the parent's engine, no new load; image encoded
        assert call(first, "dog") == (True, id(engine))  # the same worker again: its cache has the image
    finally:
        first[1].put(None)
        first[0].join(60)
    fresh = start_worker()
    try:
        assert call(fresh, "dog") == (False, id(engine))  # a new worker starts from the parent's empty cache
    finally:
        fresh[1].put(None)
        fresh[0].join(60)
    result, _, _ = app.run_model(config.model, image, ["cat"], [], [], 0.5, config)
    assert result.timings.image_cache_hit is False  # nothing the workers cached came back to this process
