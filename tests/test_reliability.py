"""Reliability of the engine: out-of-memory back-off, steady memory over long runs."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
import torch


class DeviceMemoryLimit:
    """Makes a real module raise the allocator's OutOfMemoryError for batches above `max_batch`.

    CI has no GPU to exhaust; the hook raises exactly what the CUDA allocator raises, from inside the
    model call, so the engine's recovery path runs for real.
    """

    def __init__(self, module, max_batch: int, batch_of):
        self.max_batch, self.batch_of, self.refused = max_batch, batch_of, []
        self._handle = module.register_forward_pre_hook(self._check, with_kwargs=True)

    def _check(self, _module, args, kwargs):
        size = self.batch_of(args, kwargs)
        if size > self.max_batch:
            self.refused.append(size)
            raise torch.OutOfMemoryError(f"CUDA out of memory (simulated limit of {self.max_batch})")

    def remove(self):
        self._handle.remove()


def test_batches_that_run_out_of_memory_are_split_and_still_match(batched_engine_for, engine_for, photos):
    engine = batched_engine_for("litetext")
    engine.image_cache.clear()
    prompts = ["cat", "person", "dog", "red car", "tree"]
    vision = DeviceMemoryLimit(engine.model.vision_encoder, 1, lambda a, k: (a[0] if a else k["pixel_values"]).shape[0])
    decoder = DeviceMemoryLimit(engine.model.mask_decoder, 2, lambda a, k: k["decoder_queries"].shape[0])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            items = list(engine.segment_batch([str(p) for p in photos], prompts, batch_size=4))
    finally:
        vision.remove()
        decoder.remove()
    assert vision.refused[:2] == [4, 2] and decoder.refused[:3] == [20, 10, 5]  # 4 images x 5 prompts in one call
    assert any("out of device memory" in str(w.message) for w in caught)
    engine.batched = False
    engine.image_cache.clear()
    for item, path in zip(items, photos):
        expected = engine.segment(path, prompts)
        assert item.ok and item.result.prompts == expected.prompts
        np.testing.assert_allclose(item.result.scores, expected.scores, atol=1e-4)


def test_a_single_item_that_does_not_fit_still_raises(engine_for, photos):
    engine = engine_for("litetext")
    engine.image_cache.clear()
    limit = DeviceMemoryLimit(engine.model.vision_encoder, 0, lambda a, k: 1)
    try:
        with pytest.raises(torch.OutOfMemoryError):
            engine.segment(photos[0], "cat")
    finally:
        limit.remove()


def _rss_mb() -> float:
    from litetext.bench import _rss_mb

    return _rss_mb()


@pytest.mark.slow
def test_a_long_batch_run_holds_steady_memory(engine_for):
    engine = engine_for("litetext")
    engine.image_cache.resize(64 << 20)
    rng = np.random.default_rng(0)
    images = (rng.integers(0, 255, (60 + i % 7, 80 + i % 5, 3), dtype=np.uint8) for i in range(2000))
    samples = []
    for count, item in enumerate(engine.segment_batch(images, ["cat", "dog"], batch_size=8), start=1):
        assert item.ok
        if count % 250 == 0:
            gc.collect()
            samples.append(_rss_mb())
    engine.image_cache.resize(1 << 30)
    assert count == 2000
    growth = samples[-1] - samples[1]
    assert growth < 100, f"resident memory grew {growth:.0f} MB over 1,750 images: {samples}"
    assert engine.image_cache.stats().bytes <= 64 << 20
