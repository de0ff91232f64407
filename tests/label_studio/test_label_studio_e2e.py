"""End to end against a real Label Studio server: project, backend connection, uploads, predictions."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from tests.label_studio.label_studio_helpers import (
    BRUSH_CONFIG,
    EXAMPLES,
    SAM_CONFIG,
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


class LabelStudioServer(str):
    """The server's base URL; `.log` is the file its output goes to."""

    log: object


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
        server = LabelStudioServer(url)
        server.log = log
        yield server
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


def brush_mask(region: dict, width: int, height: int) -> np.ndarray:
    return decode_rle(region["value"]["rle"]).reshape(height, width, 4)[:, :, 3] > 0


def box_iou(a, b) -> float:
    overlap = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return overlap / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap)


def test_label_studio_sam_config_brush_only_one_object_per_smart_rectangle_and_failed_tasks_unstored(
        label_studio, backend, engine, image_server):
    """Label Studio's own SAM labelling config, end to end: automatic predictions are brush masks only; a smart
    rectangle selects one object, with fresh region ids each time; a keypoint click is answered with a message
    naming the tracker; a task whose image is broken gets no prediction stored (and Label Studio logs why)."""
    client = sdk.LabelStudio(base_url=label_studio, api_key=TOKEN)
    headers = {"Authorization": f"Token {TOKEN}"}
    project = client.projects.create(title="litetext SAM config", label_config=SAM_CONFIG)
    upload = httpx.post(f"{label_studio}/api/projects/{project.id}/import", headers=headers, timeout=60,
                        files=[("file", ("cat.jpg", (EXAMPLES / "cat.jpg").read_bytes(), "image/jpeg"))])
    assert upload.status_code == 201, upload.text
    broken = httpx.post(f"{label_studio}/api/projects/{project.id}/import", headers=headers, timeout=60,
                        json=[{"image": f"{image_server}/broken.jpg"}])
    assert broken.status_code == 201, broken.text
    tasks = {t.id: t for t in client.tasks.list(project=project.id)}
    cat = next(t for t, task in tasks.items() if task.data["image"].startswith("/data/upload/"))
    broken_task = next(t for t in tasks if t != cat)

    ml = client.ml.create(project=project.id, url=backend, title="litetext", is_interactive=True)
    assert ml.state == "CO", ml.error_message
    client.actions.create(id="retrieve_tasks_predictions", project=project.id, selected_items={"all": True})
    [prediction] = client.predictions.list(project=project.id)  # none stored for the broken task
    assert prediction.task == cat
    expected = engine.segment(EXAMPLES / "cat.jpg", ["Foreground", "Background"]).filter(min_area=1)
    assert len(prediction.result) == len(expected) > 0
    assert {(r["from_name"], r["type"]) for r in prediction.result} == {("tag", "brushlabels")}
    assert "broken.jpg" in label_studio.log.read_text(errors="replace")  # Label Studio logged the task's error
    assert client.tasks.get(broken_task).total_predictions == 0

    # A smart rectangle drawn with "tag3": one brush mask, the instance best matching the box.
    width, height = expected.image_size
    value = {"x": 20.0, "y": 10.0, "width": 50.0, "height": 60.0, "rotation": 0, "rectanglelabels": ["Foreground"]}
    context = {"result": [{"id": "r1", "type": "rectanglelabels", "from_name": "tag3", "to_name": "image",
                           "original_width": width, "original_height": height, "image_rotation": 0,
                           "origin": "manual", "value": value}]}
    answers = [client.ml.with_raw_response.predict_interactive(ml.id, task=cat, context=context).response.json()
               for _ in range(2)]
    [region] = answers[0]["data"]["result"]
    box = [0.2 * width, 0.1 * height, 0.7 * width, 0.7 * height]
    candidates = engine.segment(EXAMPLES / "cat.jpg", ["Foreground"], boxes=[box], box_labels=[1]).filter(min_area=1)
    best = max(candidates, key=lambda instance: (box_iou(instance.box, box), instance.score))
    assert (region["from_name"], region["type"], region["value"]["brushlabels"]) == ("tag", "brushlabels",
                                                                                      ["Foreground"])
    assert np.array_equal(brush_mask(region, width, height), best.mask)
    assert answers[1]["data"]["result"][0]["id"] != region["id"]  # a second call never reuses the id

    # A smart keypoint drawn with "tag2": Label Studio relays the backend's message.
    click = {"result": [{"id": "k1", "type": "keypointlabels", "from_name": "tag2", "to_name": "image",
                         "original_width": width, "original_height": height, "is_positive": True,
                         "origin": "manual", "value": {"x": 50.0, "y": 50.0, "width": 0.3,
                                                       "keypointlabels": ["Foreground"]}}]}
    answer = client.ml.with_raw_response.predict_interactive(ml.id, task=cat, context=click).response.json()
    assert "result" not in answer["data"] and "keypoint clicks need a tracker" in answer["data"]["error"]
