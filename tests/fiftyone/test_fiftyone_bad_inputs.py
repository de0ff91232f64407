"""The shared bad-input corpus (tests/bad_inputs.py) through FiftyOne: the operator on a dataset whose samples are
the corpus files (an immediate run labels the good and odd ones and reports and skips the bad ones, with a count),
the operator's threshold, and exemplar boxes of a Detections prompt field through `LitetextModel` (each bad one
fails its own sample, naming the problem). Video settings are in test_fiftyone_video.py."""

from __future__ import annotations

import logging
import math

import fiftyone as fo
import fiftyone.operators as foo
import pytest

import litetext
from litetext_fiftyone import OPERATOR_URI, LitetextModel
from tests.bad_inputs import BAD_EXEMPLAR_BOXES, BAD_THRESHOLDS, write_bad_images
from tests.fiftyone.conftest import PHOTOS
from tests.fiftyone.test_fiftyone_operator import shown_result

BOX = [0.1, 0.1, 0.3, 0.3]
#: Exemplars a Detections prompt field can hold that `LitetextModel` must refuse, each failing its own sample: the
#: detection's attributes and the words of its error. BAD_EXEMPLAR_BOXES's boxes as text cannot be stored (FiftyOne
#: keeps a bounding_box as floats); its labels are the detection's `sam3_label`.
BAD_PROMPT_DETECTIONS = {
    "no box": ({"bounding_box": []}, "has bounding_box []"),
    "three numbers": ({"bounding_box": [0.1, 0.1, 0.3]}, "four relative numbers"),
    "NaN box": ({"bounding_box": [math.nan, 0.1, 0.3, 0.3]}, "NaN or infinite"),
    "infinite width": ({"bounding_box": [0.1, 0.1, math.inf, 0.3]}, "NaN or infinite"),  # not clipped to the edge
    "inverted box": ({"bounding_box": [0.5, 0.5, -0.2, 0.3]}, "empty or inverted"),
    "box outside": ({"bounding_box": [2.0, 2.0, 0.3, 0.3]}, "empty or inverted"),  # clipped to the edge: empty
    "box label as text": ({"bounding_box": BOX, "sam3_label": "1"}, "sam3_label '1'"),
    "infinite box label": ({"bounding_box": BOX, "sam_label": math.inf}, "sam_label inf"),
    "box label as a number": ({"bounding_box": BOX, "sam3_label": 0}, "sam3_label 0"),  # not read as positive
}


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


@pytest.mark.parametrize("threshold", [*BAD_THRESHOLDS, None, "0.5"])
def test_the_operator_refuses_a_threshold_that_is_not_a_number_between_0_and_1(photos, threshold):
    # The form refuses text and finite values outside 0..1 ("Validation error. Path: threshold"); the engine the rest.
    with pytest.raises(Exception, match="Path: threshold|threshold must be a number between 0 and 1"):
        foo.execute_operator(OPERATOR_URI, dataset=photos, params={
            "model": "tiny-random", "device": "cpu", "prompts": ["cat"], "threshold": threshold, "label_field": "t"})
    assert not photos.has_field("t")


@pytest.fixture
def prompt_detections():
    """One sample per bad exemplar of `BAD_PROMPT_DETECTIONS` (field `case`), and a good one, on the same photo."""
    cases = {name: attributes for name, (attributes, _) in BAD_PROMPT_DETECTIONS.items()}
    cases["good"] = {"bounding_box": BOX}
    dataset = fo.Dataset()
    dataset.add_samples([fo.Sample(filepath=str(PHOTOS[0]), case=name,
                                   what=fo.Detections(detections=[fo.Detection(label="cat", **attributes)]))
                         for name, attributes in cases.items()])
    yield dataset
    dataset.delete()


def test_each_bad_exemplar_in_a_prompt_field_fails_only_its_sample_naming_the_problem(prompt_detections, engine,
                                                                                      caplog):
    assert {"box label as text", "infinite box label"} <= set(BAD_EXEMPLAR_BOXES)
    with caplog.at_level(logging.WARNING):
        prompt_detections.apply_model(LitetextModel(model="tiny-random", device="cpu"), label_field="found",
                                      prompt_field="what", num_workers=0)
    for name, (_, words) in BAD_PROMPT_DETECTIONS.items():
        sample = prompt_detections.match(fo.ViewField("case") == name).first()
        assert sample.found is None, name
        assert any(sample.id in record.getMessage() and words in record.getMessage() for record in caplog.records), \
            (name, [record.getMessage() for record in caplog.records])
    good = prompt_detections.match(fo.ViewField("case") == "good").first()
    width, height = litetext.load_image(PHOTOS[0]).size
    expected = engine.segment(PHOTOS[0], ["cat"], boxes=[[0.1 * width, 0.1 * height, 0.4 * width, 0.4 * height]])
    assert len(good.found.detections) == len(expected)


def test_a_bad_exemplar_raises_its_box_error_when_failures_are_not_skipped(prompt_detections):
    strict = LitetextModel(model="tiny-random", device="cpu", skip_failures=False)
    with pytest.raises(litetext.BoxError, match="NaN or infinite"):
        prompt_detections.match(fo.ViewField("case") == "infinite width").apply_model(
            strict, label_field="strict", prompt_field="what", num_workers=0, skip_failures=False)
