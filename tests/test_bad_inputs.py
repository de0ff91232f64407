"""The shared bad-input corpus through the engine and the CLI: clear errors, the rest still processed."""

from __future__ import annotations

import json
import warnings

import pytest

import litetext
from litetext.cli import main
from tests.bad_inputs import BAD_PROMPTS, BAD_THRESHOLDS, LONG_PROMPT, write_bad_images


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_bad_images(tmp_path_factory.mktemp("bad"))


def test_engine_refuses_each_bad_image_by_name_and_segments_each_odd_one(engine_for, corpus):
    engine = engine_for("litetext")
    for case in corpus:
        if case.outcome == "error":
            with pytest.raises(litetext.InvalidImageError) as caught:
                engine.segment(case.path, "cat")
            assert case.message in str(caught.value) and case.name in str(caught.value), case.name
        else:
            result = engine.segment(case.path, "cat")
            image = litetext.load_image(case.path)
            assert result.image_size == image.size and result.masks.shape[1:] == image.size[::-1], case.name


def test_a_batch_skips_and_reports_bad_images_and_processes_the_rest(engine_for, corpus):
    items = list(engine_for("litetext").segment_batch([str(c.path) for c in corpus], ["cat"], batch_size=3))
    assert [item.index for item in items] == list(range(len(corpus)))
    for case, item in zip(corpus, items):
        assert item.ok == (case.outcome == "ok"), case.name
        if not item.ok:
            assert case.message in str(item.error)


def test_cli_writes_every_good_image_and_lists_every_bad_one(corpus, checkpoints, tmp_path):
    out = tmp_path / "out"
    code = main(["segment", str(corpus[0].path.parent), "-p", "cat", "--model", str(checkpoints["litetext"]),
                 "--device", "cpu", "--out", str(out)])
    assert code == 1
    written = {image["file_name"] for image in json.loads((out / "coco.json").read_text())["images"]}
    failed = {entry["file"].split("/")[-1] for entry in json.loads((out / "failures.json").read_text())}
    # .txt-like names with image suffixes are all picked up by the folder scan
    assert written == {c.name for c in corpus if c.outcome == "ok"}
    assert failed == {c.name for c in corpus if c.outcome == "error"}


@pytest.mark.parametrize("name", list(BAD_PROMPTS))
def test_engine_refuses_bad_prompts_clearly(engine_for, corpus, name):
    prompts, message = BAD_PROMPTS[name]
    with pytest.raises(litetext.PromptError, match=message):
        engine_for("litetext").segment(corpus[5].path, prompts)


def test_a_10kb_prompt_is_truncated_with_a_warning(engine_for, corpus):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = engine_for("litetext").segment(corpus[5].path, LONG_PROMPT)
    assert result.prompts == [" ".join(LONG_PROMPT.split())]
    assert any("only the first 32" in str(w.message) for w in caught)


@pytest.mark.parametrize("threshold", BAD_THRESHOLDS)
def test_nan_and_out_of_range_thresholds_are_refused_in_batches_too(engine_for, corpus, threshold):
    with pytest.raises(litetext.InputError, match="between 0 and 1"):
        next(engine_for("litetext").segment_batch([corpus[5].path], ["cat"], threshold=threshold))


def test_an_unforeseen_read_failure_loses_only_that_item(engine_for, corpus):
    from PIL import Image

    class Broken(Image.Image):
        def convert(self, *args, **kwargs):
            raise RuntimeError("decoder exploded")

    broken = Broken()
    broken._size, broken._mode = (8, 8), "P"
    items = list(engine_for("litetext").segment_batch([corpus[5].path, broken, corpus[6].path], ["cat"]))
    assert [item.ok for item in items] == [True, False, True]
    assert "decoder exploded" in str(items[1].error)
