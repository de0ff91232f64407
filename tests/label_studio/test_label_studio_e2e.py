"""End to end against a real Label Studio server: project, backend connection, uploads, predictions."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from tests.label_studio.label_studio_helpers import (
    BRUSH_CONFIG,
    EXAMPLES,
    free_port,
    label_studio_venv,
    start_backend,
    stop,
    wait_for,
)

pytestmark = pytest.mark.slow

sdk = pytest.importorskip("label_studio_sdk")
decode_rle = pytest.importorskip("label_studio_sdk.converter.brush").decode_rle
httpx = pytest.importorskip("httpx")

TOKEN = "0123456789abcdef0123456789abcdef01234567"
PHOTOS = ["cat.jpg", "coffee.jpg", "astronaut.jpg"]
PROMPTS = {"Cat": "Cat", "coffee cup": "Mug", "astronaut": "Person", "person": "Person"}


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    """A Label Studio server on 127.0.0.1 with a fresh sqlite data dir; yields its URL."""
    venv = label_studio_venv()
    data = tmp_path_factory.mktemp("label-studio-data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data), "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
           "ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false", "LABEL_STUDIO_HOST": url,
           "DJANGO_DB": "sqlite", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "false", "SENTRY_DSN": "",
           "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false"}
    log = data / "label-studio.log"
    process = subprocess.Popen(
        [str(venv / "bin" / "label-studio"), "start", "--no-browser", "--internal-host", "127.0.0.1",
         "--port", str(port), "--host", url, "--data-dir", str(data), "--username", "admin@example.com",
         "--password", "litetext-e2e", "--user-token", TOKEN],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for(f"{url}/health", process, timeout=600, log=log)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def backend(tmp_path_factory, litetext_cache):
    url, process = start_backend(tmp_path_factory.mktemp("backend"),
                                 env_extra={"LITETEXT_CACHE": str(litetext_cache)})
    yield url
    stop(process)


def test_label_studio_gets_brush_predictions_equal_to_the_engines_masks(label_studio, backend, engine):
    client = sdk.LabelStudio(base_url=label_studio, api_key=TOKEN)
    project = client.projects.create(title="litetext end to end", label_config=BRUSH_CONFIG)
    files = [("file" + str(i), (name, (EXAMPLES / name).read_bytes(), "image/jpeg")) for i, name in enumerate(PHOTOS)]
    upload = httpx.post(f"{label_studio}/api/projects/{project.id}/import", files=files,
                        headers={"Authorization": f"Token {TOKEN}"}, timeout=60)
    assert upload.status_code == 201, upload.text
    tasks = {t.id: t for t in client.tasks.list(project=project.id)}
    assert len(tasks) == len(PHOTOS)
    assert all(t.data["image"].startswith("/data/upload/") for t in tasks.values())

    ml = client.ml.create(project=project.id, url=backend, title="litetext", is_interactive=True)
    assert ml.state == "CO", ml.error_message  # connected: /health and /setup answered
    client.actions.create(id="retrieve_tasks_predictions", project=project.id, selected_items={"all": True})
    predictions = client.predictions.list(project=project.id)
    assert sorted(p.task for p in predictions) == sorted(tasks)

    for prediction in predictions:
        name = next(n for n in PHOTOS if tasks[prediction.task].data["image"].endswith(n))
        expected = engine.segment(EXAMPLES / name, list(PROMPTS)).filter(min_area=1)
        width, height = expected.image_size
        assert prediction.model_version == "litetext-tiny-random-score0.5-mask0.5"
        assert len(prediction.result) == len(expected) > 0
        for region, instance in zip(prediction.result, expected):
            assert region["type"] == "brushlabels" and region["value"]["brushlabels"] == [PROMPTS[instance.prompt]]
            assert (region["original_width"], region["original_height"]) == (width, height)
            mask = decode_rle(region["value"]["rle"]).reshape(height, width, 4)[:, :, 3] > 0
            assert np.array_equal(mask, instance.mask), f"{name}: {instance.prompt} mask differs"

    # Interactive: the annotator types a phrase; Label Studio relays it as context.
    task_id = next(t for t, task in tasks.items() if task.data["image"].endswith("coffee.jpg"))
    context = {"result": [{"type": "textarea", "from_name": "prompt", "to_name": "image", "origin": "manual",
                           "value": {"text": ["coffee cup"]}}]}
    raw = client.ml.with_raw_response.predict_interactive(ml.id, task=task_id, context=context)
    regions = raw.response.json()["data"]["result"]
    expected = engine.segment(EXAMPLES / "coffee.jpg", ["coffee cup"]).filter(min_area=1)
    assert len(regions) == len(expected) > 0
    width, height = expected.image_size
    for region, instance in zip(regions, expected):
        assert region["value"]["brushlabels"] == ["Mug"]  # "coffee cup" is the Mug label's prompt
        mask = decode_rle(region["value"]["rle"]).reshape(height, width, 4)[:, :, 3] > 0
        assert np.array_equal(mask, instance.mask)
