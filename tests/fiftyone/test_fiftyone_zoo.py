"""The model zoo source registered from the repository URL, and run from the ``@voxel51/zoo`` "Apply zoo model"
operator, with this working tree served as GitHub serves the repository (tests/fiftyone/fake_github.py)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.zoo as foz
import numpy as np
import pytest

import litetext
from litetext_fiftyone import LitetextModel, detection_to_mask
from litetext_fiftyone.cli import package_dir
from litetext_fiftyone.remote_zoo import ZOO_MODELS
from tests.fiftyone.conftest import PLUGIN_DIR, REPO_URL

TINY = "litetext/sam3-litetext-tiny-random"


def assert_matches_engine(collection, field, engine, prompts):
    for sample in collection:
        expected = engine.segment(sample.filepath, prompts)
        detections = sample[field].detections
        assert [d.label for d in detections] == expected.labels
        for detection, mask in zip(detections, expected.masks):
            assert np.array_equal(detection_to_mask(detection, expected.image_size), mask)


def test_manifest_names_every_model_with_its_checkpoint_licence_and_date():
    manifest = json.loads((package_dir() / "zoo" / "manifest.json").read_text())
    assert manifest["url"] == REPO_URL and {m["base_name"] for m in manifest["models"]} == set(ZOO_MODELS)
    for entry in manifest["models"]:
        spec = litetext.MODELS[ZOO_MODELS[entry["base_name"]]]
        if spec.repo_id is not None:  # the zoo entry points at the checkpoint litetext loads for that alias
            assert entry["source"] == f"https://huggingface.co/{spec.repo_id}"
            assert entry["license"] == "SAM License"  # SAM3's image encoder weights, in every checkpoint
        assert "see the" not in entry["license"].lower()
        assert datetime.strptime(entry["date_added"], "%Y-%m-%d %H:%M:%S") >= datetime(2026, 1, 1)
        assert {"segmentation", "embeddings"} <= set(entry["tags"])


@pytest.mark.slow
def test_zoo_source_registered_from_the_repository_url_loads_the_model(github, zoo_dir, photos, engine):
    foz.register_zoo_model_source(REPO_URL)
    assert REPO_URL in foz.list_zoo_model_sources()
    assert any(path.startswith("/api.github.com/repos/litetext/litetext/zipball") for path in github.requests)
    assert (zoo_dir / "litetext" / "sam3-litetext" / "manifest.json").is_file()
    assert {TINY, "litetext/sam3-litetext-s0-16"} <= set(foz.list_zoo_models(source=REPO_URL))

    model = foz.load_zoo_model(TINY, classes=["cat"], device="cpu")
    assert isinstance(model, LitetextModel) and model.engine is engine  # the shared tiny engine
    photos.apply_model(model, label_field="zoo", batch_size=2, num_workers=0)
    assert_matches_engine(photos, "zoo", engine, ["cat"])

    unprompted = foz.load_zoo_model(TINY, device="cpu")  # fine for embeddings, and says what segmenting needs
    with pytest.raises(litetext.PromptError, match="no prompts"):
        unprompted.predict(photos.first().filepath)


@pytest.fixture
def app_plugins(tmp_path, monkeypatch, voxel51_zoo_plugin):
    """A plugins directory with ``@voxel51/zoo`` and ours, as a user who downloaded both has."""
    plugins = tmp_path / "plugins"
    shutil.copytree(voxel51_zoo_plugin, plugins / "voxel51-zoo")
    (plugins / "litetext").symlink_to(PLUGIN_DIR, target_is_directory=True)
    monkeypatch.setattr(fo.config, "plugins_dir", str(plugins))
    return plugins


@pytest.mark.slow
def test_apply_zoo_model_operator_resolves_our_form_and_runs_the_model(app_plugins, github, zoo_dir, photos, engine):
    from fiftyone.operators.executor import ExecutionContext

    foz.register_zoo_model_source(REPO_URL)
    operator = foo.get_operator("@voxel51/zoo/apply_zoo_model")
    params = {"tab": "REMOTE", "source": REPO_URL, "model": TINY, "label_field": "zoo", "batch_size": 2,
              "remote_params": {"prompts": ["cat"], "device": "cpu"}}
    ctx = ExecutionContext(request_params={"dataset_name": photos.name, "params": params})
    form = operator.resolve_input(ctx).type.properties
    assert {"prompts", "device"} <= set(form["remote_params"].type.properties)  # our resolve_input, in its form

    execution = foo.execute_operator("@voxel51/zoo/apply_zoo_model", dataset=photos, params=params)
    execution.raise_exceptions()
    assert_matches_engine(photos, "zoo", engine, ["cat"])

    embedding = {"tab": "REMOTE", "source": REPO_URL, "model": TINY, "task": "EMBEDDINGS",
                 "embeddings_field": "embedding", "batch_size": 2, "remote_params": {"device": "cpu"}}
    foo.execute_operator("@voxel51/zoo/apply_zoo_model", dataset=photos, params=embedding).raise_exceptions()
    sample = photos.first()
    assert np.allclose(sample.embedding, engine.embed_image(sample.filepath), atol=1e-6)
