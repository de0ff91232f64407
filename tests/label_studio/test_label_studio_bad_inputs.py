"""The shared bad-input corpus (tests/bad_inputs.py) through the Label Studio backend's /predict: every corpus image
in one request (served over HTTP on 127.0.0.1), malformed bodies, odd prompt text. Bad inputs are reported or get a
clear 4xx JSON error; the server keeps serving."""

from __future__ import annotations

import json

import pytest

import litetext
from tests.bad_inputs import LONG_PROMPT, write_bad_images
from tests.label_studio.label_studio_helpers import BRUSH_CONFIG, INTERACTIVE_CONFIG

pytest.importorskip("starlette")

#: A TextArea prompt that is not valid UTF-8, as JSON can carry it: unpaired surrogates.
SURROGATES_JSON = b'"\\udcff\\udcfe"'


@pytest.fixture(scope="module")
def corpus(image_root):
    return write_bad_images(image_root / "corpus")


def payload(tasks, config=BRUSH_CONFIG, context=None) -> dict:
    return {"tasks": tasks, "project": "9.1700000000", "label_config": config,
            "params": {"login": None, "password": None, "context": context}}


def post(client, body: bytes):
    return client.post("/predict", content=body, headers={"Content-Type": "application/json"})


def assert_serving(client, image_server) -> None:
    assert client.get("/health").json()["status"] == "UP"
    body = client.post("/predict", json=payload([{"id": 1, "data": {"image": f"{image_server}/cat.jpg"}}])).json()
    assert body["errors"] == [] and body["results"][0]["result"]


def text_context(text_json: bytes) -> bytes:
    """A /predict body whose interactive context carries a TextArea prompt given as raw JSON text."""
    template = json.dumps(payload([{"id": 1, "data": {"image": "IMAGE"}}], INTERACTIVE_CONFIG, {"result": [
        {"type": "textarea", "from_name": "prompt", "to_name": "image", "value": {"text": ["PROMPT"]}}]}))
    return template.replace('"PROMPT"', "\0").encode().replace(b"\0", text_json)


def test_one_request_with_every_corpus_image_predicts_the_good_ones_and_reports_the_bad_ones(
        client, image_server, corpus):
    tasks = [{"id": i, "data": {"image": f"{image_server}/corpus/{case.name}"}} for i, case in enumerate(corpus, 1)]
    response = client.post("/predict", json=payload(tasks))
    assert response.status_code == 200
    body = response.json()
    assert len(body["results"]) == len(corpus)
    errors = {e["task"]: e["error"] for e in body["errors"]}
    assert set(errors) == {i for i, case in enumerate(corpus, 1) if case.outcome == "error"}
    for i, (case, result) in enumerate(zip(corpus, body["results"]), 1):
        if case.outcome == "error":
            assert case.message in errors[i] and case.name in errors[i], errors[i]
            assert "result" not in result and result["error"]
        else:
            assert "error" not in result, case.name
            for region in result["result"]:
                width, height = litetext.load_image(case.path).size
                assert (region["original_width"], region["original_height"]) == (width, height), case.name
    assert sum(bool(r.get("result")) for r in body["results"]) >= len(corpus) - len(errors) - 1  # 1x1 may find none
    assert_serving(client, image_server)


@pytest.mark.parametrize("body, status, message", [
    (b"", 400, "JSON object"),
    (b"\xff\xfe not json", 400, "not valid JSON"),
    (b'"tasks"', 400, "JSON object"),
    (b'{"tasks": {"id": 1}, "label_config": "<View/>"}', 400, "'tasks' must be a list"),
    (b'{"tasks": [], "label_config": 7}', 400, "label_config"),
    (b'{"tasks": ["not a task", 5], "label_config": "<View/>"}', 400, "list of task objects"),
])
def test_malformed_bodies_get_clear_json_errors_and_the_server_keeps_serving(client, image_server, body, status,
                                                                            message):
    response = post(client, body)
    assert response.status_code == status, response.text
    assert response.json()["status"] == "error" and message in response.json()["error"]
    assert_serving(client, image_server)


def test_a_task_whose_image_is_not_text_is_reported_and_the_others_predicted(client, image_server):
    tasks = [{"id": 2, "data": {"image": 12}}, {"id": 3, "data": {"image": f"{image_server}/cat.jpg"}}]
    body = client.post("/predict", json=payload(tasks)).json()
    assert [e["task"] for e in body["errors"]] == [2] and body["results"][1]["result"]
    assert_serving(client, image_server)


def test_a_body_over_the_default_limit_is_refused_with_413(client, image_server):
    huge = json.dumps(payload([], "<View/>" + " " * (17 << 20))).encode()
    response = post(client, huge)
    assert response.status_code == 413 and "limit" in response.json()["error"]
    assert_serving(client, image_server)


def test_a_text_prompt_that_is_not_utf8_is_refused_clearly(client, image_server):
    raw = text_context(b'"\xff\xfe\xfa"').replace(b"IMAGE", f"{image_server}/cat.jpg".encode())
    response = post(client, raw)
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]

    escaped = text_context(SURROGATES_JSON).replace(b"IMAGE", f"{image_server}/cat.jpg".encode())
    response = post(client, escaped)
    assert 400 <= response.status_code < 500 or response.json()["errors"], response.text
    assert "UTF-8" in response.text
    assert_serving(client, image_server)


def test_a_10kb_text_prompt_is_truncated_and_segments(client, engine, image_server):
    engine.text_cache.clear()  # the warning comes with the text encoding, which an earlier test may have cached
    body = text_context(json.dumps(LONG_PROMPT).encode()).replace(b"IMAGE", f"{image_server}/coffee.jpg".encode())
    with pytest.warns(UserWarning, match="only the first 32"):
        response = post(client, body)
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["result"]
    assert_serving(client, image_server)
