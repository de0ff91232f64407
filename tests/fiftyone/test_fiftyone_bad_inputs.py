"""The shared bad-input corpus (tests/bad_inputs.py) through the FiftyOne operator: a dataset whose samples are the
corpus files; an immediate run labels the good and odd ones and reports and skips the bad ones, with a count."""

from __future__ import annotations

import fiftyone as fo
import fiftyone.operators as foo
import pytest

from litetext_fiftyone import OPERATOR_URI
from tests.bad_inputs import write_bad_images
from tests.fiftyone.test_fiftyone_operator import shown_result


@pytest.fixture
def corpus_dataset(tmp_path, engine):
    cases = write_bad_images(tmp_path / "corpus")
    dataset = fo.Dataset()
    dataset.add_samples([fo.Sample(filepath=str(case.path)) for case in cases])
    yield dataset, cases
    dataset.delete()


def test_the_operator_labels_good_and_odd_images_and_reports_and_skips_bad_ones(corpus_dataset, engine):
    dataset, cases = corpus_dataset
    result = shown_result(foo.execute_operator(OPERATOR_URI, dataset=dataset, params={
        "model": "tiny-random", "device": "cpu", "prompts": ["cat"], "label_field": "masks"}))
    bad = [case for case in cases if case.outcome == "error"]
    assert result["failed"] == len(bad) and result["segmented"] == len(cases) - len(bad)
    assert f"{len(bad)} failed" in result["message"]
    reported = {failure["filepath"]: failure["error"] for failure in result["failures"]}
    assert set(reported) == {str(case.path) for case in bad}
    for case in bad:
        assert case.message in reported[str(case.path)], reported[str(case.path)]
    for case in cases:
        sample = dataset[str(case.path)]
        if case.outcome == "error":
            assert sample["masks"] is None, case.name
        else:
            expected = engine.segment(case.path, ["cat"])
            assert isinstance(sample["masks"], fo.Detections), case.name
            assert len(sample["masks"].detections) == len(expected), case.name
    assert result["instances"] == dataset.count("masks.detections")


def test_a_second_run_skips_the_labelled_samples_and_retries_only_the_bad_ones(corpus_dataset):
    dataset, cases = corpus_dataset
    bad = [case for case in cases if case.outcome == "error"]
    params = {"model": "tiny-random", "device": "cpu", "prompts": ["cat"], "label_field": "again"}
    first = shown_result(foo.execute_operator(OPERATOR_URI, dataset=dataset, params=params))
    second = shown_result(foo.execute_operator(OPERATOR_URI, dataset=dataset, params=params))
    assert (first["segmented"], first["failed"]) == (len(cases) - len(bad), len(bad))
    assert (second["segmented"], second["skipped_existing"], second["failed"]) == (0, len(cases) - len(bad), len(bad))
