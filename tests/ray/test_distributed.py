"""The Ray Data job: every image exactly once, equal to the single-process engine, resumable, crash-safe."""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pyarrow")

import litetext  # noqa: E402
from litetext.distributed import (  # noqa: E402
    MAX_ATTEMPTS,
    JobOptions,
    ShardSegmenter,
    ShardStore,
    list_inputs,
    make_shards,
    read_results,
    run_segment_job,
)

PROMPTS = ["cat", "person"]
MODEL = "tiny-random"
COUNT = 200


def _write_corpus(folder: Path, photos: list[Path], count: int, *, seed: int, prefix: str = "img") -> list[Path]:
    """Small random crops of the real photos, 40-96 pixels a side, as JPEG and PNG."""
    rng = random.Random(seed)
    sources = [Image.open(p).convert("RGB") for p in photos]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(count):
        image = sources[i % len(sources)]
        side = rng.randint(min(image.size) // 3, min(image.size))
        x, y = rng.randint(0, image.width - side), rng.randint(0, image.height - side)
        crop = image.crop((x, y, x + side, y + side)).resize((rng.randint(40, 96), rng.randint(40, 96)))
        path = folder / f"{prefix}{i:04d}.{'png' if i % 5 == 0 else 'jpg'}"
        crop.save(path)
        written.append(path)
    return written


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, photos) -> dict[str, object]:
    """200 good images and one truncated JPEG in a folder, and 10 more images named in a list file."""
    root = tmp_path_factory.mktemp("corpus")
    images = _write_corpus(root / "images", photos, COUNT, seed=0)
    broken = root / "images" / "broken.jpg"
    broken.write_bytes(images[1].read_bytes()[:200])
    more = _write_corpus(root / "more", photos, 10, seed=1, prefix="more")
    listing = root / "more.txt"
    listing.write_text("# ten more images\n" + "".join(f"more/{p.name}\n" for p in more))
    return {"folder": root / "images", "images": images, "broken": broken, "more": more, "listing": listing}


class _Reference(dict):
    """path -> single-process result (`litetext.load(...).segment(path)`) as `to_dict()`, computed on first use."""

    def __missing__(self, path: str) -> dict:
        self[path] = litetext.load(MODEL, device="cpu").segment(path, PROMPTS).to_dict()
        return self[path]


@pytest.fixture(scope="module")
def reference() -> dict[str, dict]:
    litetext.load(MODEL, device="cpu")  # also builds the tiny checkpoint before any worker needs it
    return _Reference()


def _assert_rows_match(rows: list[dict], reference: dict[str, dict]) -> None:
    for row in rows:
        expected = reference[row["path"]]
        assert row["error"] is None
        assert row["image_size"] == expected["image_size"] and row["prompts"] == expected["prompts"]
        got, want = row["instances"], expected["instances"]
        assert [i["prompt_index"] for i in got] == [i["prompt_index"] for i in want], row["path"]
        np.testing.assert_allclose([i["score"] for i in got], [i["score"] for i in want], atol=1e-5, rtol=0)
        np.testing.assert_allclose([i["box"] for i in got], [i["box"] for i in want], atol=1e-3, rtol=0)
        assert [i["rle"] for i in got] == [i["rle"] for i in want], row["path"]
        assert [i["area"] for i in got] == [i["area"] for i in want]


def _raw_paths(output: Path) -> list[str]:
    """Every row's path in every committed file, duplicates kept (readers would drop them)."""
    files = sorted(output.glob("part-*.jsonl"))
    return [json.loads(line)["path"] for f in files for line in f.read_text().splitlines()]


# Fast: the pieces, in this process --------------------------------------------------------------------------


def test_inputs_expand_folders_list_files_and_file_uris_sorted_once(corpus):
    folder, listing = corpus["folder"], corpus["listing"]
    found = list_inputs([folder, listing, f"file://{corpus['images'][0]}", corpus["images"][0]])
    assert len(found) == COUNT + 1 + 10
    assert found == sorted(found) and len(set(found)) == len(found)
    assert str(corpus["more"][3].resolve()) in found
    assert make_shards(found, 32) == make_shards(list(found), 32)  # shard ids depend on the paths alone
    assert len({s.id for s in make_shards(found, 32)}) == 7


def test_parquet_shards_hold_rle_equal_to_the_engine_and_record_bad_images(tmp_path, corpus, reference):
    good = [str(p.resolve()) for p in corpus["images"][:6]]
    options = JobOptions(prompts=tuple(PROMPTS), model=MODEL, device="cpu")
    segmenter = ShardSegmenter(options, str(tmp_path / "out"), "parquet")
    shards = make_shards([*good, str(corpus["broken"].resolve()), str(tmp_path / "missing.jpg")], 4)
    out = segmenter({"shard": [s.id for s in shards], "paths": [json.dumps(s.paths) for s in shards]})
    assert out["segmented"] == [4, 2] and out["failed"] == [0, 2]

    rows = ShardStore(tmp_path / "out", "parquet").rows()
    by_path = {row["path"]: row for row in rows}
    assert len(by_path) == 8 and len(list((tmp_path / "out").glob("part-*.parquet"))) == 2
    _assert_rows_match([by_path[p] for p in good], reference)
    assert "truncated" in by_path[str(corpus["broken"].resolve())]["error"].lower()
    assert "no such file" in by_path[str(tmp_path / "missing.jpg")]["error"]
    rebuilt = litetext.Result.from_dict(by_path[good[0]])
    expected = litetext.load(MODEL, device="cpu").segment(good[0], PROMPTS)
    assert np.array_equal(rebuilt.masks, expected.masks) if len(expected) else len(rebuilt) == 0


def test_a_shard_that_killed_its_worker_too_often_is_recorded_as_failed(tmp_path, corpus):
    paths = [str(p.resolve()) for p in corpus["images"][:3]]
    store = ShardStore(tmp_path, "jsonl")
    shard = make_shards(paths, 3)[0]
    for _ in range(MAX_ATTEMPTS):
        store.start_attempt(shard.id)
    segmenter = ShardSegmenter(JobOptions(prompts=tuple(PROMPTS), model=MODEL, device="cpu"), str(tmp_path), "jsonl")
    out = segmenter({"shard": [shard.id], "paths": [json.dumps(shard.paths)]})
    assert out["failed"] == [3]
    rows = list(store.rows())
    assert all("died 3 times" in row["error"] for row in rows) and len(rows) == 3
    assert not list((tmp_path / "_attempts").iterdir())


def test_readers_keep_one_row_per_image_preferring_a_segmented_one(tmp_path):
    store = ShardStore(tmp_path, "jsonl")
    ok = {"path": "/a.jpg", "error": None, "image_size": {"width": 1, "height": 1}, "prompts": ["x"],
          "instances": []}
    failed = {**ok, "error": "boom", "image_size": None}
    store.commit("0-old", [failed, {**ok, "path": "/b.jpg"}])
    store.commit("1-new", [ok, {**ok, "path": "/b.jpg"}])
    store.commit("1-new", [ok, {**ok, "path": "/b.jpg"}])  # a retried commit replaces, never appends
    assert sorted(r["path"] for r in store.rows()) == ["/a.jpg", "/b.jpg"]
    assert all(r["error"] is None for r in store.rows())
    assert store.completed(include_failed=False) == {"/a.jpg", "/b.jpg"}


def test_an_output_made_with_other_settings_is_refused(tmp_path):
    store = ShardStore(tmp_path, "jsonl")
    store.check_settings(JobOptions(prompts=("cat",), model=MODEL))
    store.check_settings(JobOptions(prompts=("cat",), model=MODEL, device="cpu"))  # device does not change results
    with pytest.raises(litetext.InputError, match="prompts"):
        store.check_settings(JobOptions(prompts=("dog",), model=MODEL))


# Slow: real Ray jobs on a local 2-CPU instance ---------------------------------------------------------------


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, corpus, reference):
    """The corpus through 2 workers; one worker is killed before committing a shard, one right after."""
    pytest.importorskip("ray")
    root = tmp_path_factory.mktemp("ray-job")
    markers = root / "markers"
    markers.mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LITETEXT_TEST_CRASH_BEFORE_COMMIT", "img0042.jpg")
        env.setenv("LITETEXT_TEST_CRASH_AFTER_COMMIT", "img0151.jpg")
        env.setenv("LITETEXT_TEST_CRASH_MARKERS", str(markers))
        summary = run_segment_job([corpus["folder"]], PROMPTS, root / "out", model=MODEL, device="cpu",
                                  workers=2, shard_size=20, log=lambda message: None)
    return summary, root / "out", markers


@pytest.mark.slow
def test_ray_job_writes_every_image_exactly_once_despite_killed_workers(first_run, corpus):
    summary, output, markers = first_run
    assert sorted(p.name for p in markers.iterdir()) == [
        "LITETEXT_TEST_CRASH_AFTER_COMMIT-img0151.jpg", "LITETEXT_TEST_CRASH_BEFORE_COMMIT-img0042.jpg"]
    assert (summary.total, summary.skipped, summary.segmented, summary.failed) == (COUNT + 1, 0, COUNT, 1)
    raw = _raw_paths(output)
    expected = sorted(str(p.resolve()) for p in [*corpus["images"], corpus["broken"]])
    assert sorted(raw) == expected  # not one duplicate, even before readers de-duplicate
    assert len(list(output.glob("part-*.jsonl"))) == summary.shards == 11
    assert not list(output.glob(".*.tmp")) and not (output / "_attempts").exists()


@pytest.mark.slow
def test_ray_results_equal_the_single_process_engine(first_run, reference):
    rows = read_results(first_run[1])
    good = [row for row in rows if not row["path"].endswith("broken.jpg")]
    assert len(good) == COUNT and sum(len(row["instances"]) for row in good) > COUNT
    _assert_rows_match(good, reference)


@pytest.mark.slow
def test_ray_job_records_a_corrupted_image_as_failed(first_run, corpus):
    summary, output, _ = first_run
    broken = str(corpus["broken"].resolve())
    assert summary.failures == [{"path": broken, "error": summary.failures[0]["error"]}]
    assert "truncated" in summary.failures[0]["error"].lower()
    row = next(r for r in read_results(output) if r["path"] == broken)
    assert row["instances"] == [] and row["image_size"] is None and "truncated" in row["error"].lower()


@pytest.mark.slow
def test_cli_rerun_segments_only_new_images(tmp_path, first_run, corpus, reference, capsys):
    from litetext.cli import build_parser
    from litetext.cli.ray import add_engine_arguments

    output = tmp_path / "out"
    shutil.copytree(first_run[1], output)
    before = {p.name: p.read_bytes() for p in output.glob("part-*.jsonl")}
    parser = build_parser()
    segment = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["segment"]
    if "--engine" not in segment._option_string_actions:  # until the core CLI adds the Ray options itself
        add_engine_arguments(segment)
    args = parser.parse_args(["segment", str(corpus["folder"]), str(corpus["listing"]), "-p", "cat", "-p", "person",
                              "-m", MODEL, "--device", "cpu", "-o", str(output), "--engine", "ray", "--workers", "1"])
    from litetext.cli.ray import run_segment_args

    assert run_segment_args(args) == 0
    assert "10 segmented, 0 failed, 201 already done, of 211 images" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in output.glob("part-*.jsonl") if p.name in before} == before
    raw = _raw_paths(output)
    assert len(raw) == len(set(raw)) == COUNT + 1 + 10
    new = [row for row in read_results(output) if Path(row["path"]).name.startswith("more")]
    assert len(new) == 10
    _assert_rows_match(new, reference)
