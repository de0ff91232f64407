"""The shared caches: re-prompting skips the vision encoder, budgets hold, threads are safe."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import litetext
from litetext.cache import LRUCache


class CallCounter:
    """Counts forward calls of a module through a forward hook (the real module still runs)."""

    def __init__(self, module):
        self.calls = 0
        self._handle = module.register_forward_hook(self._count)

    def _count(self, *_):
        self.calls += 1

    def remove(self):
        self._handle.remove()


@pytest.fixture
def engine(engine_for):
    engine = engine_for("litetext")
    engine.image_cache.clear()
    engine.text_cache.clear()
    return engine


def test_cached_reprompt_skips_vision_encoder(engine, photos):
    counter = CallCounter(engine.model.vision_encoder)
    try:
        engine.segment(photos[0], "cat")
        engine.segment(photos[0], "person")
        engine.segment(str(photos[0]), ["dog", "red car"])
    finally:
        counter.remove()
    assert counter.calls == 1
    assert engine.image_cache.stats().hits == 2


def test_same_pixels_from_different_sources_share_one_cache_entry(engine, photos):
    from PIL import Image

    image = Image.open(photos[1]).convert("RGB")
    engine.segment(photos[1], "cat")
    again = engine.segment(np.asarray(image), "cat")
    assert again.timings.image_cache_hit
    assert len(engine.image_cache) == 1


def test_text_embedding_computed_once_per_prompt(engine, photos):
    counter = CallCounter(engine.model.text_encoder)
    try:
        engine.segment(photos[0], ["cat", "person"])
        engine.segment(photos[1], ["cat", "person"])
        engine.segment(photos[2], ["person"])
    finally:
        counter.remove()
    assert counter.calls == 2  # one per prompt (unbatched on CPU), never again
    assert engine.text_cache.stats().hits == 3


def test_image_cache_holds_only_decoder_inputs(engine, photos):
    features = engine.encode_image(photos[0])
    assert len(features.fpn_hidden_states) == 3, "the unused coarsest FPN level is not kept"
    assert all(level.shape[0] == 1 for level in features.fpn_hidden_states)
    assert engine.image_cache.stats().bytes == features.nbytes


def test_disabled_image_cache_reencodes_every_time(engine, photos):
    engine.image_cache.resize(0)
    counter = CallCounter(engine.model.vision_encoder)
    try:
        first = engine.segment(photos[0], "cat")
        second = engine.segment(photos[0], "cat")
    finally:
        counter.remove()
        engine.image_cache.resize(1 << 30)
    assert counter.calls == 2
    assert np.array_equal(first.masks, second.masks)


def test_lru_evicts_least_recently_used_within_byte_budget():
    cache = LRUCache(max_bytes=100, sizeof=len)
    cache.put("a", b"x" * 40)
    cache.put("b", b"x" * 40)
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", b"x" * 40)
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.stats().bytes == 80
    cache.put("huge", b"x" * 101)
    assert "huge" not in cache


def test_cache_clear_resets_entries_and_counters():
    cache = LRUCache(max_bytes=100, sizeof=len)
    cache.put("a", b"1")
    cache.get("a")
    cache.get("missing")
    cache.clear()
    assert cache.stats() == litetext.CacheStats(0, 0, 0, 0, 100)


def test_cache_stays_within_budget_under_concurrent_random_use():
    cache = LRUCache(max_bytes=1000, sizeof=len)
    rng = np.random.default_rng(0)
    operations = [(int(k), int(n)) for k, n in zip(rng.integers(0, 50, 4000), rng.integers(1, 120, 4000))]

    def work(chunk):
        for key, size in chunk:
            cache.put(key, b"x" * size)
            cache.get(key - 1)
            assert cache.stats().bytes <= 1000

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, [operations[i::8] for i in range(8)]))
    stats = cache.stats()
    assert stats.bytes <= 1000 and stats.hits + stats.misses == 4000


def test_load_returns_one_engine_per_model_device_dtype(checkpoints):
    first = litetext.load(str(checkpoints["litetext"]), device="cpu", dtype="fp32")
    again = litetext.load(str(checkpoints["litetext"]), device="cpu", dtype="float32")
    assert first is again
    assert first in litetext.loaded_engines()


def test_concurrent_segment_calls_equal_serial_results(engine, photos):
    jobs = [(photos[i % len(photos)], ["cat", "person", "coffee cup"][i % 3]) for i in range(12)]
    serial = [engine.segment(path, prompt) for path, prompt in jobs]
    engine.image_cache.clear()
    engine.text_cache.clear()
    barrier = threading.Barrier(6)

    def run(job):
        barrier.wait() if job[0] < 6 else None
        return engine.segment(*job[1])

    with ThreadPoolExecutor(6) as pool:
        concurrent = list(pool.map(run, list(enumerate(jobs))))
    for expected, got in zip(serial, concurrent):
        assert expected.prompts == got.prompts
        np.testing.assert_array_equal(expected.scores, got.scores)
        assert np.array_equal(expected.masks, got.masks)


def test_image_embedding_is_pooled_cached_features(engine_for, photos):
    engine = engine_for("litetext")
    engine.image_cache.clear()
    embedding = engine.embed_image(photos[0])
    features = engine.encode_image(photos[0])
    assert engine.image_cache.stats().hits >= 1  # the embedding's encoding is reused, not recomputed
    assert embedding.dtype == np.float32 and embedding.shape == (features.fpn_hidden_states[-1].shape[1],)
    np.testing.assert_allclose(embedding, features.fpn_hidden_states[-1][0].mean(dim=(1, 2)).numpy(), rtol=1e-6)
    assert not np.allclose(embedding, engine.embed_image(photos[1]))
