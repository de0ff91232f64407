"""`LitetextModel` through FiftyOne's own `apply_model` and `compute_embeddings`, against the engine's results."""

from __future__ import annotations

import fiftyone as fo
import fiftyone.core.models as fom
import numpy as np
import pytest

import litetext
from litetext_fiftyone import LitetextModel, LitetextModelConfig, detection_to_mask


@pytest.fixture(scope="module")
def model():
    return LitetextModel(["cat", "coffee cup"], model="tiny-random", device="cpu")


def assert_detections_equal(detections, results, label_map=None):
    """`detections` are exactly the instances of `results` (in order), masks pixel for pixel."""
    expected = [(result, instance) for result in results for instance in result]
    assert len(detections) == len(expected)
    for detection, (result, instance) in zip(detections, expected):
        assert detection.label == (label_map or {}).get(instance.prompt, instance.prompt)
        assert detection.confidence == pytest.approx(instance.score, abs=1e-6)
        assert np.array_equal(detection_to_mask(detection, result.image_size), instance.mask)


def test_apply_model_in_batches_matches_the_engine(photos, model, engine):
    photos.apply_model(model, label_field="masks", batch_size=3)  # FiftyOne's default data loader workers
    for sample in photos:
        assert_detections_equal(sample.masks.detections, [engine.segment(sample.filepath, model.prompts)])


def test_confidence_thresh_and_classes_of_apply_model_are_deferred_to_the_model(photos, model, engine):
    photos.apply_model(model, label_field="cats", confidence_thresh=0.6, classes=["cat"], batch_size=2,
                       num_workers=0)
    assert model.config.confidence_thresh == 0.5 and model.config.filter_classes is None  # restored after the run
    for sample in photos:
        # Only "cat" was decoded, at the score threshold asked for: the engine's own result for that.
        assert_detections_equal(sample.cats.detections, [engine.segment(sample.filepath, ["cat"], threshold=0.6)])


def test_config_builds_through_fiftyone_and_refuses_unknown_options():
    built = fom.load_model({"type": "litetext_fiftyone.model.LitetextModel",
                            "config": {"classes": ["cat"], "model": "tiny-random", "device": "cpu",
                                       "confidence_thresh": 0.3}})
    assert isinstance(built, LitetextModel) and isinstance(built.config, LitetextModelConfig)
    assert built.classes == ["cat"] and built.config.confidence_thresh == 0.3
    with pytest.raises(ValueError, match="unknown LitetextModel option.*colour"):
        LitetextModel(["cat"], model="tiny-random", device="cpu", colour="red")
    with pytest.raises(ValueError, match="confidence_thresh must be a number between 0 and 1"):
        LitetextModel(["cat"], model="tiny-random", device="cpu", threshold=1.5)


@pytest.mark.parametrize("kind", ["string", "list", "classification", "classifications"])
def test_prompt_field_gives_each_sample_its_own_prompts(photos, engine, kind):
    two = photos.limit(2)
    prompts = [["cat"], ["coffee cup", "table"]]
    for sample, wanted in zip(two, prompts):
        sample["what"] = {
            "string": ", ".join(wanted),
            "list": wanted,
            "classification": fo.Classification(label=wanted[-1]),
            "classifications": fo.Classifications(classifications=[fo.Classification(label=p) for p in wanted]),
        }[kind]
        sample.save()
    if kind == "classification":
        prompts = [wanted[-1:] for wanted in prompts]
    model = LitetextModel(model="tiny-random", device="cpu", threshold=0.3)
    two.apply_model(model, label_field="own", prompt_field="what", batch_size=2, num_workers=0)
    for sample, wanted in zip(two, prompts):
        assert_detections_equal(sample.own.detections, [engine.segment(sample.filepath, wanted, threshold=0.3)])


def test_detections_prompt_field_gives_exemplar_boxes_per_label(photos, engine):
    sample = photos.first()
    width, height = litetext.load_image(sample.filepath).size
    sample["ground_truth"] = fo.Detections(detections=[
        fo.Detection(label="cat", bounding_box=[0.1, 0.2, 0.3, 0.4]),
        fo.Detection(label="cat", bounding_box=[0.5, 0.5, 0.25, 0.25], sam3_label=False),
        fo.Detection(label="pillow", bounding_box=[0.0, 0.0, 0.5, 0.5]),
    ])
    sample.save()
    view = photos.limit(1)
    view.apply_model(LitetextModel(["sofa"], model="tiny-random", device="cpu", threshold=0.2), label_field="ex",
                     prompt_field="ground_truth", num_workers=0)

    def pixels(x, y, w, h):
        return [x * width, y * height, (x + w) * width, (y + h) * height]

    expected = [
        engine.segment(sample.filepath, ["sofa"], threshold=0.2),
        engine.segment(sample.filepath, ["cat"], boxes=[pixels(0.1, 0.2, 0.3, 0.4), pixels(0.5, 0.5, 0.25, 0.25)],
                       box_labels=[1, 0], threshold=0.2),
        engine.segment(sample.filepath, ["pillow"], boxes=[pixels(0.0, 0.0, 0.5, 0.5)], threshold=0.2),
    ]
    assert_detections_equal(view.first().ex.detections, expected)

    labels_only = LitetextModel(model="tiny-random", device="cpu", threshold=0.2, exemplar_boxes=False)
    view.apply_model(labels_only, label_field="named", prompt_field="ground_truth", num_workers=0)
    assert_detections_equal(view.first().named.detections,
                            [engine.segment(sample.filepath, ["cat", "pillow"], threshold=0.2)])


def test_an_unreadable_image_skips_only_its_sample(photos, model, broken_image):
    photos.add_sample(fo.Sample(filepath=str(broken_image)))
    photos.apply_model(model, label_field="masks", batch_size=len(photos))  # one batch, read in a loader worker
    assert photos.exists("masks").count() == len(photos) - 1
    assert photos.exists("masks", False).values("filepath") == [str(broken_image)]
    strict = LitetextModel(["cat"], model="tiny-random", device="cpu", skip_failures=False)
    with pytest.raises(litetext.InvalidImageError, match="broken.jpg"):
        photos.apply_model(strict, label_field="strict", batch_size=len(photos), num_workers=0,
                           skip_failures=False)


def test_a_model_without_prompts_says_how_to_give_them(photos):
    with pytest.raises(litetext.PromptError, match="prompt_field"):
        photos.apply_model(LitetextModel(model="tiny-random", device="cpu"), label_field="none", num_workers=0,
                           skip_failures=False)


def test_predict_all_names_the_bad_image(model, broken_image):
    with pytest.raises(litetext.InvalidImageError, match="broken.jpg"):
        model.predict_all([str(broken_image)])


def test_semantic_option_writes_detections_and_segmentation(photos, engine):
    model = LitetextModel(["cat"], model="tiny-random", device="cpu", semantic=True)
    photos.limit(1).apply_model(model, label_field="lt", num_workers=0)
    sample = photos.first()
    assert isinstance(sample.lt_detections, fo.Detections)
    assert np.array_equal(sample.lt_segmentation.mask, engine.segment(sample.filepath, ["cat"]).semantic_map())
    with pytest.raises(ValueError, match="semantic=True needs the same prompts"):
        photos.apply_model(model, label_field="lt2", prompt_field="lt_detections", num_workers=0)


def test_compute_embeddings_stores_the_engines_pooled_image_embedding(photos, model, engine):
    photos.compute_embeddings(model, embeddings_field="embedding", batch_size=2, num_workers=0)
    for sample in photos:
        expected = np.asarray(engine.embed_image(sample.filepath), dtype=np.float32)
        assert np.allclose(sample.embedding, expected, atol=1e-6)
    assert model.has_embeddings and model.embed(photos.first().filepath).shape == expected.shape

    import fiftyone.brain as fob  # the similarity search the embeddings are for

    fob.compute_similarity(photos, embeddings="embedding", brain_key="litetext_similarity")
    query = photos.last().id
    assert photos.sort_by_similarity(query, brain_key="litetext_similarity").first().id == query
