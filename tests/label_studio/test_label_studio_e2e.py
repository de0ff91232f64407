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
    VIDEO_CONFIG,
    VIDEO_LABELS,
    assert_regions_match,
    expected_tracks,
    free_port,
    label_studio_venv,
    sam_pixels,
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
           "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false",
           "ML_TIMEOUT_PREDICT": "600"}  # tracking a video on a busy CI CPU can pass Label Studio's 100 s default
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


@pytest.fixture(scope="module")
def tracker_backend(tmp_path_factory, litetext_cache):
    """The backend on tiny-random-tracker (LiteText + SAM3's tracker): clicks, boxes and video."""
    url, process = start_backend(tmp_path_factory.mktemp("tracker-backend"), model="tiny-random-tracker",
                                 env_extra={"LITETEXT_CACHE": str(litetext_cache)})
    yield url
    stop(process)


def drawn(kind: str, label: str, width: int, height: int, value: dict, *, positive: bool = True) -> dict:
    """A smart keypoint ("tag2") or rectangle ("tag3") as the labelling UI sends it in an interactive context."""
    from_name = {"keypointlabels": "tag2", "rectanglelabels": "tag3"}[kind]
    item = {"id": f"{from_name}-{value['x']}-{value['y']}", "type": kind, "from_name": from_name, "to_name": "image",
            "original_width": width, "original_height": height, "image_rotation": 0, "origin": "manual",
            "value": {**value, kind: [label]}}
    if kind == "keypointlabels":
        item["is_positive"] = positive
    return item


def test_label_studio_sam_config_with_the_tracker_clicks_boxes_text_and_failed_tasks_unstored(
        label_studio, tracker_backend, tracker_engine, image_server):
    """Label Studio's own SAM labelling config (and a TextArea), backend on tiny-random-tracker, end to end:
    automatic predictions are brush masks only; positive and negative keypoints, a smart rectangle, and keypoints
    with a rectangle each bring back one brush mask equal to `engine.segment_object` for the same pixels, named by
    the drawn label, with fresh ids each time; a malformed click is refused and the next one answered; a typed
    phrase still finds every instance; a task whose image is broken gets no prediction stored (and Label Studio
    logs why)."""
    client = sdk.LabelStudio(base_url=label_studio, api_key=TOKEN)
    headers = {"Authorization": f"Token {TOKEN}"}
    head, _, tail = SAM_CONFIG.rpartition("</View>")
    config = head + '<TextArea name="prompt" toName="image" editable="true" rows="1"/></View>' + tail
    project = client.projects.create(title="litetext SAM config", label_config=config)
    upload = httpx.post(f"{label_studio}/api/projects/{project.id}/import", headers=headers, timeout=60,
                        files=[("file", ("cat.jpg", (EXAMPLES / "cat.jpg").read_bytes(), "image/jpeg"))])
    assert upload.status_code == 201, upload.text
    broken = httpx.post(f"{label_studio}/api/projects/{project.id}/import", headers=headers, timeout=60,
                        json=[{"image": f"{image_server}/broken.jpg"}])
    assert broken.status_code == 201, broken.text
    tasks = {t.id: t for t in client.tasks.list(project=project.id)}
    cat = next(t for t, task in tasks.items() if task.data["image"].startswith("/data/upload/"))
    broken_task = next(t for t in tasks if t != cat)

    ml = client.ml.create(project=project.id, url=tracker_backend, title="litetext", is_interactive=True)
    assert ml.state == "CO", ml.error_message
    client.actions.create(id="retrieve_tasks_predictions", project=project.id, selected_items={"all": True})
    [prediction] = client.predictions.list(project=project.id)  # none stored for the broken task
    assert prediction.task == cat
    assert prediction.model_version == "litetext-tiny-random-tracker-score0.5-mask0.5"
    expected = tracker_engine.segment(EXAMPLES / "cat.jpg", ["Foreground", "Background"]).filter(min_area=1)
    assert len(prediction.result) == len(expected) > 0
    assert {(r["from_name"], r["type"]) for r in prediction.result} == {("tag", "brushlabels")}
    assert "broken.jpg" in label_studio.log.read_text(errors="replace")  # Label Studio logged the task's error
    assert client.tasks.get(broken_task).total_predictions == 0

    width, height = expected.image_size

    def ask(*items) -> list[dict]:
        answer = client.ml.with_raw_response.predict_interactive(ml.id, task=cat, context={"result": list(items)})
        return answer.response.json()["data"]["result"]

    positive = drawn("keypointlabels", "Foreground", width, height, {"x": 30.0, "y": 55.5, "width": 0.3})
    negative = drawn("keypointlabels", "Background", width, height, {"x": 72.2, "y": 20.0, "width": 0.3},
                     positive=False)
    rectangle = drawn("rectanglelabels", "Foreground", width, height,
                      {"x": 20.0, "y": 10.0, "width": 50.0, "height": 60.0, "rotation": 0})
    point_of = {id(item): sam_pixels(item["value"], width, height)[0] for item in (positive, negative)}
    box = sam_pixels(rectangle["value"], width, height)[1]
    cases = [
        ((positive, negative), "Background",
         dict(points=[point_of[id(positive)], point_of[id(negative)]], point_labels=[1, 0])),
        ((rectangle,), "Foreground", dict(box=box)),
        ((positive, rectangle), "Foreground", dict(points=[point_of[id(positive)]], point_labels=[1], box=box)),
    ]
    for items, label, prompt in cases:
        answers = [ask(*items) for _ in range(2)]
        [region] = answers[0]
        want = tracker_engine.segment_object(EXAMPLES / "cat.jpg", **prompt)
        assert (region["from_name"], region["type"], region["value"]["brushlabels"]) == ("tag", "brushlabels",
                                                                                          [label])
        assert np.array_equal(brush_mask(region, width, height), want.masks[0]), f"{prompt}: mask differs"
        assert answers[1][0]["id"] != region["id"]  # a second call never reuses the id

    # A malformed click ("is_positive" as a string): the backend answers 400, Label Studio relays it as an error
    # (its 1.23 connector keeps only "400 Client Error"; the backend's log has the field), and the next click works.
    refused = client.ml.with_raw_response.predict_interactive(ml.id, task=cat, context={"result": [
        {**positive, "is_positive": "false"}]}).response.json()
    assert "result" not in refused.get("data", {}) and "400" in refused["errors"][0], refused
    [region] = ask(positive)
    assert region["type"] == "brushlabels"

    typed = ask({"id": "t1", "type": "textarea", "from_name": "prompt", "to_name": "image", "origin": "manual",
                 "value": {"text": ["cat"]}})
    instances = tracker_engine.segment(EXAMPLES / "cat.jpg", ["cat"]).filter(min_area=1)
    assert len(typed) == len(instances) > 1  # a phrase finds every instance, not one object
    for region, instance in zip(typed, instances):
        assert np.array_equal(brush_mask(region, width, height), instance.mask)


def test_label_studio_video_project_stores_videorectangle_tracks_equal_to_the_engines(
        label_studio, tracker_backend, image_root, image_server, clip_frames):
    """Label Studio's video object tracking config end to end: an uploaded MP4 gets one stored `videorectangle`
    region per tracked object, keyframes equal to `engine.track`'s; an unreadable video gets no prediction stored,
    and both servers keep serving."""
    client = sdk.LabelStudio(base_url=label_studio, api_key=TOKEN)
    headers = {"Authorization": f"Token {TOKEN}"}
    project = client.projects.create(title="litetext video", label_config=VIDEO_CONFIG)
    upload = httpx.post(f"{label_studio}/api/projects/{project.id}/import", headers=headers, timeout=60,
                        files=[("file", ("clip.mp4", (image_root / "clip.mp4").read_bytes(), "video/mp4"))])
    assert upload.status_code == 201, upload.text
    broken = httpx.post(f"{label_studio}/api/projects/{project.id}/import", headers=headers, timeout=60,
                        json=[{"video": f"{image_server}/broken.mp4"}])
    assert broken.status_code == 201, broken.text
    tasks = {t.id: t for t in client.tasks.list(project=project.id)}
    clip = next(t for t, task in tasks.items() if task.data["video"].startswith("/data/upload/"))
    broken_task = next(t for t in tasks if t != clip)

    ml = client.ml.create(project=project.id, url=tracker_backend, title="litetext video")
    assert ml.state == "CO", ml.error_message
    client.actions.create(id="retrieve_tasks_predictions", project=project.id, selected_items={"all": True})
    [prediction] = client.predictions.list(project=project.id)
    assert prediction.task == clip
    assert_regions_match(prediction.result, expected_tracks(clip_frames, VIDEO_LABELS))
    assert client.tasks.get(broken_task).total_predictions == 0
    assert "broken.mp4" in label_studio.log.read_text(errors="replace")
    assert httpx.get(f"{label_studio}/health", timeout=10).status_code == 200
    assert httpx.get(f"{tracker_backend}/health", timeout=10).json()["status"] == "UP"
