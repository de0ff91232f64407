"""The "Segment with text" operator, executed through FiftyOne's operator machinery on real photos."""

from __future__ import annotations

import fiftyone as fo
import fiftyone.operators as foo
import numpy as np
import pytest
from fiftyone.operators.delegated import DelegatedOperationService
from fiftyone.operators.executor import ExecutionContext

from litetext_fiftyone import OPERATOR_URI, detection_to_mask
from litetext_fiftyone.operators import DELEGATE_ABOVE, SegmentWithText

PROMPTS = ["cat", "coffee cup", "astronaut"]


def app_requests(execution) -> list[dict]:
    """What an immediate run sent to the App, in order: `{"operator_uri": ..., "params": ...}`."""
    return execution.executor.to_json()["requests"]


def shown_result(execution) -> dict:
    """The result an immediate run shows in the App (its last `show_output`)."""
    shown = [r["params"]["results"] for r in app_requests(execution) if r["operator_uri"] == "show_output"]
    assert shown, app_requests(execution)
    return shown[-1]


def run_operator(dataset, *, delegate=False, selected=None, **params):
    """Execute the operator immediately, or queue it and run the queue in-process; return its result."""
    params = {"model": "tiny-random", "device": "cpu", **params}
    execution = foo.execute_operator(OPERATOR_URI, dataset=dataset, selected=selected or [], params=params,
                                     request_delegation=delegate)
    if not delegate:
        return shown_result(execution), execution
    assert execution.delegated
    operation_id = execution.result["id"]
    service = DelegatedOperationService()
    assert service.get(operation_id).run_state == "queued"
    results = service.execute_queued_operations(dataset_name=dataset.name)
    assert len(results) == 1 and results[0].error is None, results[0].error
    return results[0].result, service.get(operation_id)


def assert_matches_engine(dataset, engine, field, prompts, threshold=0.5):
    """Every sample's detections reproduce the engine's own result for the same image and prompts."""
    for sample in dataset:
        expected = engine.segment(sample.filepath, prompts, threshold=threshold)
        detections = sample[field].detections
        assert len(detections) == len(expected)
        for detection, instance in zip(detections, expected):
            assert detection.label == instance.prompt
            assert detection.confidence == pytest.approx(instance.score, abs=1e-6)
            assert detection.confidence > threshold
            x, y, w, h = detection.bounding_box
            assert 0 <= x and 0 <= y and x + w <= 1 + 1e-9 and y + h <= 1 + 1e-9 and w > 0 and h > 0
            assert np.array_equal(detection_to_mask(detection, expected.image_size), instance.mask)


def test_plugin_registers_the_operator():
    assert "@litetext/sam3-litetext" in [p.name for p in fo.plugins.list_plugins()]
    operator = foo.get_operator(OPERATOR_URI)
    assert isinstance(operator, SegmentWithText)
    assert operator.config.allow_delegated_execution and operator.config.allow_immediate_execution


def test_immediate_run_writes_detections_matching_the_engine_and_streams_progress(photos, engine):
    result, execution = run_operator(photos, prompts=PROMPTS, label_field="masks", batch_size=2)
    assert result["segmented"] == len(photos) and result["failed"] == 0
    assert result["instances"] == photos.count("masks.detections")
    assert isinstance(photos.first().masks, fo.Detections)
    assert set(photos.distinct("masks.detections.label")) <= set(PROMPTS)
    assert_matches_engine(photos, engine, "masks", PROMPTS)
    sent = app_requests(execution)
    progress = [r["params"] for r in sent if r["operator_uri"] == "set_progress"]
    assert [p["progress"] for p in progress] == [0.5, 1.0]  # one update per batch of 2, as it happens
    assert progress[-1]["label"] == "segmented 4 of 4 samples"
    assert [r["operator_uri"] for r in sent[-2:]] == ["reload_dataset", "show_output"]
    assert photos.first().metadata.width > 0  # missing image metadata is filled in


@pytest.mark.slow
def test_delegated_run_is_queued_then_executed_with_progress(photos, engine):
    result, operation = run_operator(photos, delegate=True, prompts=["rocket", "astronaut"], threshold=0.55,
                                     label_field="delegated")
    assert operation.run_state == "completed"
    assert operation.status.progress == pytest.approx(1.0)
    assert result["segmented"] == len(photos)
    assert_matches_engine(photos, engine, "delegated", ["rocket", "astronaut"], threshold=0.55)


def test_selected_samples_target_only_touches_the_selection(photos):
    chosen = photos.skip(1).first().id
    result, _ = run_operator(photos, selected=[chosen], prompts=["cat"], label_field="picked",
                             view_target="SELECTED_SAMPLES")
    assert result["total"] == 1 and result["segmented"] == 1
    assert photos.exists("picked").values("id") == [chosen]


def test_existing_labels_are_skipped_unless_overwrite(photos):
    first = photos.first()
    first["masks"] = fo.Detections(detections=[fo.Detection(label="kept", bounding_box=[0.1, 0.1, 0.2, 0.2])])
    first.save()
    result, _ = run_operator(photos, prompts=["cat"], label_field="masks")
    assert result["skipped_existing"] == 1 and result["segmented"] == len(photos) - 1
    assert photos.first().masks.detections[0].label == "kept"
    result, _ = run_operator(photos, prompts=["cat"], label_field="masks", existing="overwrite")
    assert result["skipped_existing"] == 0 and result["segmented"] == len(photos)
    assert "kept" not in photos.distinct("masks.detections.label")


def test_prompts_can_come_from_the_classes_of_a_label_field(photos):
    for sample, label in zip(photos, ["cat", "coffee", "astronaut", "rocket"]):
        sample["ground_truth"] = fo.Classification(label=label)
        sample.save()
    result, _ = run_operator(photos, prompt_source="field", classes_field="ground_truth", label_field="masks",
                             threshold=0.0)
    assert result["prompts"] == ["astronaut", "cat", "coffee", "rocket"]
    assert set(photos.distinct("masks.detections.label")) == {"astronaut", "cat", "coffee", "rocket"}


def test_typed_prompts_can_map_to_class_names(photos):
    run_operator(photos, prompts=["coffee cup=cup", "cat"], label_field="masks", threshold=0.0)
    assert set(photos.distinct("masks.detections.label")) == {"cup", "cat"}
    assert "coffee cup" in photos.distinct("masks.detections.prompt")


@pytest.mark.slow
def test_missing_and_unreadable_images_are_reported_and_skipped(photos, broken_image, tmp_path):
    photos.add_samples([fo.Sample(filepath=str(broken_image)), fo.Sample(filepath=str(tmp_path / "gone.jpg"))])
    result, _ = run_operator(photos, delegate=True, prompts=["cat"], label_field="masks")
    assert result["failed"] == 2 and result["segmented"] == len(photos) - 2
    assert {f["filepath"] for f in result["failures"]} == {str(broken_image), str(tmp_path / "gone.jpg")}
    assert "2 failed" in result["message"]
    assert photos.exists("masks").count() == len(photos) - 2


def test_semantic_segmentation_field_matches_the_semantic_map(photos, engine):
    run_operator(photos, prompts=["cat", "table"], label_field="masks", semantic=True)
    assert photos.mask_targets["masks_semantic"] == {1: "cat", 2: "table"}
    sample = photos.first()
    expected = engine.segment(sample.filepath, ["cat", "table"])
    assert np.array_equal(sample.masks_semantic.mask, expected.semantic_map())


def test_large_targets_default_to_delegated_execution(photos):
    operator = SegmentWithText()
    small = ExecutionContext(request_params={"dataset_name": photos.name, "params": {}})
    assert operator.resolve_execution_options(small).default_choice_to_delegated is False
    photos.add_samples([fo.Sample(filepath=photos.first().filepath) for _ in range(DELEGATE_ABOVE)])
    large = ExecutionContext(request_params={"dataset_name": photos.name, "params": {}})
    options = operator.resolve_execution_options(large)
    assert options.default_choice_to_delegated is True and options.allow_immediate_execution


def test_bad_requests_fail_with_a_clear_message(photos):
    with pytest.raises(Exception, match="prompt"):
        run_operator(photos, prompts=["  "], label_field="masks")
    for sample in photos:
        sample["ground_truth"] = fo.Classification(label="cat")
        sample.save()
    with pytest.raises(Exception, match="already holds Classification"):
        run_operator(photos, prompts=["cat"], label_field="ground_truth")
