"""`LitetextModel` with `apply_model`, and loading it through FiftyOne's remote model zoo."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading

import fiftyone as fo
import fiftyone.zoo as foz
import numpy as np
import pytest

from litetext_fiftyone import LitetextModel, detection_to_mask
from litetext_fiftyone.cli import package_dir


@pytest.fixture(scope="module")
def model():
    return LitetextModel(["cat", "coffee cup"], model="tiny-random", device="cpu")


def test_apply_model_in_batches_matches_the_engine(photos, model, engine):
    photos.apply_model(model, label_field="masks", batch_size=3)
    for sample in photos:
        expected = engine.segment(sample.filepath, model.prompts)
        detections = sample.masks.detections
        assert [d.label for d in detections] == expected.labels
        for detection, mask in zip(detections, expected.masks):
            assert np.array_equal(detection_to_mask(detection, expected.image_size), mask)


def test_prompts_can_change_between_runs_and_reuse_cached_image_features(photos, engine):
    model = LitetextModel("cat", model="tiny-random", device="cpu")
    photos.apply_model(model, label_field="first", batch_size=2)
    hits_before = engine.image_cache.stats().hits
    model.classes = ["rocket", "astronaut"]
    photos.apply_model(model, label_field="second", batch_size=2)
    assert engine.image_cache.stats().hits >= hits_before + len(photos)
    assert set(photos.distinct("second.detections.label")) <= {"rocket", "astronaut"}


def test_apply_model_skips_a_broken_image_and_keeps_the_others(photos, model, broken_image):
    photos.add_sample(fo.Sample(filepath=str(broken_image)))
    photos.apply_model(model, label_field="masks", batch_size=1)
    assert photos.exists("masks").count() == len(photos) - 1
    assert photos.exists("masks", False).values("filepath") == [str(broken_image)]
    with pytest.raises(Exception):  # noqa: B017 - FiftyOne's own image reader raises its own error type
        photos.apply_model(model, label_field="strict", batch_size=1, skip_failures=False)


def test_predict_all_names_the_bad_image(model, broken_image):
    import litetext

    with pytest.raises(litetext.InvalidImageError, match="broken.jpg"):
        model.predict_all([str(broken_image)])


def test_semantic_option_writes_detections_and_segmentation(photos, engine):
    model = LitetextModel(["cat"], model="tiny-random", device="cpu", semantic=True)
    photos.limit(1).apply_model(model, label_field="lt")
    sample = photos.first()
    assert isinstance(sample.lt_detections, fo.Detections)
    assert np.array_equal(sample.lt_segmentation.mask, engine.segment(sample.filepath, ["cat"]).semantic_map())


@pytest.fixture
def zoo_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(fo.config, "model_zoo_dir", str(tmp_path / "model-zoo"))
    return tmp_path / "model-zoo"


@pytest.fixture
def zoo_archive_url(tmp_path):
    """The zoo source zipped and served over HTTP on localhost, as a published source would be."""
    served = tmp_path / "served"
    shutil.make_archive(str(served / "litetext-zoo"), "zip", package_dir() / "zoo")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/litetext-zoo.zip"
    server.shutdown()


@pytest.mark.slow
def test_zoo_source_registers_and_loads_the_model(zoo_dir, zoo_archive_url, photos, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    foz.register_zoo_model_source(zoo_archive_url)
    assert zoo_archive_url in foz.list_zoo_model_sources()
    assert "litetext/sam3-litetext-tiny-random" in foz.list_zoo_models()
    model = foz.load_zoo_model("litetext/sam3-litetext-tiny-random", classes=["cat"], device="cpu")
    assert isinstance(model, LitetextModel)
    photos.apply_model(model, label_field="zoo", batch_size=2)
    assert photos.count("zoo") == len(photos)
    with pytest.raises(ValueError, match="needs text prompts"):
        foz.load_zoo_model("litetext/sam3-litetext-tiny-random")
