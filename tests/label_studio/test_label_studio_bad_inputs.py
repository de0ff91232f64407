"""The shared bad-input corpus (tests/bad_inputs.py) through the Label Studio backend's /predict: every corpus image
in one request (served over HTTP on 127.0.0.1), odd prompt text; and the backend's own corpus of malformed requests
(`MALFORMED`: bodies, nesting, non-finite numbers, strings for booleans, malformed interactive contexts), in process
and against a real server. Bad inputs are reported per task or get a clear 4xx JSON error naming the field, never a
500 or a silent fall back to automatic pre-annotation; the server keeps serving."""

from __future__ import annotations

import json

import pytest

import litetext
from tests.bad_inputs import LONG_PROMPT, write_bad_images
from tests.label_studio.label_studio_helpers import BRUSH_CONFIG, INTERACTIVE_CONFIG, SAM_CONFIG, start_backend, stop

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


# The malformed-request corpus -----------------------------------------------------------------------------

#: Smart regions as Label Studio's labelling UI sends them in an interactive context (SAM's config: keypoints
#: "tag2", rectangles "tag3"), in percent of the image.
CLICK = {"id": "k1", "type": "keypointlabels", "from_name": "tag2", "to_name": "image", "original_width": 451,
         "original_height": 300, "image_rotation": 0, "origin": "manual", "is_positive": True,
         "value": {"x": 49.4, "y": 59.9, "width": 0.32, "keypointlabels": ["Foreground"]}}
BOX = {"id": "r1", "type": "rectanglelabels", "from_name": "tag3", "to_name": "image", "original_width": 451,
       "original_height": 300, "image_rotation": 0, "origin": "manual",
       "value": {"x": 20.0, "y": 10.0, "width": 50.0, "height": 60.0, "rotation": 0, "rectanglelabels": ["Foreground"]}}
TYPED = {"id": "t1", "type": "textarea", "from_name": "prompt", "to_name": "image", "value": {"text": ["cat"]}}
RAW = "@RAW@"  # where `request(raw=...)` puts JSON text that json.dumps cannot write (NaN, 1e999, deep nesting)


def request(context=None, *, raw: bytes = b"", tasks=None, **fields) -> bytes:
    """A /predict body for SAM's config: one task on IMAGE (the test puts the image URL there), `context`, other
    top-level `fields`; the string RAW anywhere in it is replaced by `raw`, verbatim."""
    body = {"tasks": [{"id": 1, "data": {"image": "IMAGE"}}] if tasks is None else tasks, "project": "9.1700000000",
            "label_config": SAM_CONFIG, "params": {"login": None, "password": None, "context": context}, **fields}
    return json.dumps(body).encode().replace(json.dumps(RAW).encode(), raw)


def region(base: dict, *, item=None, **value) -> dict:
    """`base` with `value` fields (and `item` fields) changed: a field set to RAW is replaced by raw JSON text."""
    return {**base, **(item or {}), "value": {**base["value"], **value}}


def without(base: dict, field: str) -> dict:
    return {**base, "value": {k: v for k, v in base["value"].items() if k != field}}


def clicked(**value) -> dict:
    return {"result": [region(CLICK, **value)]}


def boxed(**value) -> dict:
    return {"result": [region(BOX, **value)]}


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


#: (name, route, body, status, what the error says: the field it names and what it must be). Bodies hold IMAGE
#: where a good image URL goes. Every probe gets a 4xx JSON error; none may get a 500 or an automatic prediction.
MALFORMED = [
    # Bodies
    ("empty-body", "/predict", b"", 400, "request body: must be a JSON object, not null"),
    ("not-json", "/predict", b"\xff\xfe not json", 400, "not valid JSON"),
    ("json-string", "/predict", b'"tasks"', 400, "request body: must be a JSON object"),
    ("json-nan", "/predict", b"NaN", 400, "request body: must be a JSON object, not NaN"),
    ("tasks-an-object", "/predict", b'{"tasks": {"id": 1}, "label_config": "<View/>"}', 400,
     "tasks: must be a list of task objects, not an object"),
    ("label-config-a-number", "/predict", b'{"tasks": [], "label_config": 7}', 400, "label_config: must be"),
    ("tasks-hold-non-objects", "/predict", b'{"tasks": ["not a task", 5], "label_config": "<View/>"}', 400,
     'tasks[0]: must be a task object, not "not a task" (a string)'),
    ("task-id-nan", "/predict", request(tasks=[{"id": RAW, "data": {"image": "IMAGE"}}], raw=b"NaN"), 400,
     "tasks[0].id: must be an integer or a string, not NaN"),
    ("params-a-list", "/predict", request(params=["context"]), 400,
     "params: must be a JSON object or null, not a list"),
    ("params-a-string", "/predict", request(params="context"), 400, "params: must be a JSON object or null"),
    ("integer-of-5000-digits", "/predict", request(boxed(x=RAW), raw=b"1" * 5000), 400, "number too long"),
    ("nested-65-deep", "/predict", request(tasks=[{"id": 1, "data": {"image": "IMAGE", "deep": RAW}}],
                                           raw=nested(61)), 400, "nests arrays and objects 65 deep; the limit is 64"),
    ("nested-100000-deep", "/predict", request(raw=nested(100_000), params={"context": RAW}), 400,
     "the limit is 64"),
    ("nested-1mb-of-brackets-in-context", "/predict", request(boxed(x=RAW), raw=nested(1 << 19)), 400,
     "the limit is 64"),
    ("setup-hostname-a-number", "/setup", b'{"project": "9.1", "schema": "<View/>", "hostname": 5}', 400,
     "hostname: must be a string or null, not 5"),
    ("setup-access-token-an-object", "/setup", b'{"project": "9.1", "schema": "<View/>", "access_token": {}}', 400,
     "access_token: must be a string or null, not an object"),
    ("webhook-action-nan", "/webhook", b'{"action": NaN, "project": {"id": 9}}', 400,
     "action: must be the webhook event's name (a string), not NaN"),
    # Non-finite and out-of-range numbers in an interactive context
    ("click-x-nan", "/predict", request(clicked(x=RAW), raw=b"NaN"), 400,
     "context.result[0].value.x: must be a finite number, not NaN"),
    ("click-y-infinity", "/predict", request(clicked(y=RAW), raw=b"Infinity"), 400,
     "context.result[0].value.y: must be a finite number, not Infinity"),
    ("click-x-minus-infinity", "/predict", request(clicked(x=RAW), raw=b"-Infinity"), 400,
     "context.result[0].value.x: must be a finite number, not -Infinity"),
    ("click-x-1e999", "/predict", request(clicked(x=RAW), raw=b"1e999"), 400,
     "context.result[0].value.x: must be a finite number, not Infinity"),
    ("box-x-1e999", "/predict", request(boxed(x=RAW), raw=b"1e999"), 400,
     "context.result[0].value.x: must be a finite number, not Infinity"),
    ("box-height-nan", "/predict", request(boxed(height=RAW), raw=b"NaN"), 400,
     "context.result[0].value.height: must be a finite number, not NaN"),
    ("box-width-minus-1e999", "/predict", request(boxed(width=RAW), raw=b"-1e999"), 400,
     "context.result[0].value.width: must be a finite number, not -Infinity"),
    ("box-rotation-nan", "/predict", request(boxed(rotation=RAW), raw=b"NaN"), 400,
     "context.result[0].value.rotation: must be a finite number, not NaN"),
    ("click-x-150-percent", "/predict", request(clicked(x=150.0)), 400,
     "context.result[0].value.x: must be from 0 to 100 (percent of the image), not 150"),
    ("click-y-negative", "/predict", request(clicked(y=-0.5)), 400,
     "context.result[0].value.y: must be from 0 to 100 (percent of the image), not -0.5"),
    ("click-x-10-to-the-400", "/predict", request(clicked(x=RAW), raw=b"1" + b"0" * 400), 400,
     "context.result[0].value.x: must be from 0 to 100"),
    ("click-width-negative", "/predict", request(clicked(width=-1)), 400, "context.result[0].value.width: must be"),
    ("box-width-zero", "/predict", request(boxed(width=0)), 400,
     "context.result[0].value.width: must be above 0 and at most 100 (percent of the image), not 0"),
    ("box-height-negative", "/predict", request(boxed(height=-10.0)), 400,
     "context.result[0].value.height: must be above 0"),
    ("box-x-over-100", "/predict", request(boxed(x=100.5)), 400, "context.result[0].value.x: must be from 0 to 100"),
    ("box-rotation-720", "/predict", request(boxed(rotation=720)), 400,
     "context.result[0].value.rotation: must be from -360 to 360 (degrees)"),
    ("click-x-a-string", "/predict", request(clicked(x="49.4")), 400,
     'context.result[0].value.x: must be a number, not "49.4" (a string)'),
    ("click-x-a-boolean", "/predict", request(clicked(x=True)), 400,
     "context.result[0].value.x: must be a number, not true (a boolean)"),
    ("click-x-null", "/predict", request(clicked(x=None)), 400,
     "context.result[0].value.x: must be a number, not null"),
    ("box-width-missing", "/predict", request({"result": [without(BOX, "width")]}), 400,
     "context.result[0].value.width: must be a number, not missing"),
    ("second-region-bad", "/predict", request({"result": [BOX, region(CLICK, x=RAW)]}, raw=b"NaN"), 400,
     "context.result[1].value.x: must be a finite number, not NaN"),
    # Booleans are JSON booleans
    ("is-positive-string-false", "/predict", request({"result": [region(CLICK, item={"is_positive": "false"})]}), 400,
     'context.result[0].is_positive: must be true or false (a JSON boolean), not "false" (a string)'),
    ("is-positive-string-true", "/predict", request({"result": [region(CLICK, item={"is_positive": "true"})]}), 400,
     "context.result[0].is_positive: must be true or false"),
    ("is-positive-zero", "/predict", request({"result": [region(CLICK, item={"is_positive": 0})]}), 400,
     "context.result[0].is_positive: must be true or false (a JSON boolean), not 0"),
    ("is-positive-one", "/predict", request({"result": [region(CLICK, item={"is_positive": 1})]}), 400,
     "context.result[0].is_positive: must be true or false (a JSON boolean), not 1"),
    ("is-positive-null", "/predict", request({"result": [region(CLICK, item={"is_positive": None})]}), 400,
     "context.result[0].is_positive: must be true or false (a JSON boolean), not null"),
    # Malformed contexts: refused, never answered with automatic pre-annotation
    ("context-a-list", "/predict", request([BOX]), 400, "context: must be a JSON object or null, not a list"),
    ("context-a-string", "/predict", request("cat"), 400, 'context: must be a JSON object or null, not "cat"'),
    ("result-an-object", "/predict", request({"result": BOX}), 400,
     "context.result: must be a list of regions, not an object"),
    ("result-a-string", "/predict", request({"result": "cat"}), 400,
     'context.result: must be a list of regions, not "cat" (a string)'),
    ("result-a-number", "/predict", request({"result": 3}), 400, "context.result: must be a list of regions, not 3"),
    ("result-empty", "/predict", request({"result": []}), 422,
     "no text prompt (TextArea), smart rectangle or keypoint"),
    ("region-a-string", "/predict", request({"result": ["rectanglelabels"]}), 400,
     "context.result[0]: must be a region (a JSON object)"),
    ("region-type-missing", "/predict", request({"result": [{"value": BOX["value"]}]}), 400,
     "context.result[0].type: must be a string, not missing"),
    ("region-type-a-number", "/predict", request({"result": [{**BOX, "type": 7}]}), 400,
     "context.result[0].type: must be a string, not 7"),
    ("region-value-a-list", "/predict", request({"result": [{**BOX, "value": [20, 10, 50, 60]}]}), 400,
     "context.result[0].value: must be a JSON object, not a list"),
    ("region-value-missing", "/predict", request({"result": [{k: v for k, v in CLICK.items() if k != "value"}]}), 400,
     "context.result[0].value: must be a JSON object, not missing"),
    ("labels-a-string", "/predict", request(boxed(rectanglelabels="Foreground")), 400,
     'context.result[0].value.rectanglelabels: must be a list of label names, not "Foreground" (a string)'),
    ("labels-hold-a-number", "/predict", request(clicked(keypointlabels=[1])), 400,
     "context.result[0].value.keypointlabels[0]: must be a label name (a string), not 1"),
    ("text-a-number", "/predict", request({"result": [region(TYPED, text=5)]}), 400,
     "context.result[0].value.text: must be a string or a list of strings, not 5"),
    ("text-holds-null", "/predict", request({"result": [region(TYPED, text=["cat", None])]}), 400,
     "context.result[0].value.text[1]: must be a string, not null"),
]


def probe_body(body: bytes, image_url: str) -> bytes:
    return body.replace(b"IMAGE", image_url.encode())


@pytest.mark.parametrize("name, route, body, status, message", MALFORMED, ids=[probe[0] for probe in MALFORMED])
def test_malformed_requests_get_a_4xx_naming_the_field_and_the_server_keeps_serving(client, image_server, name, route,
                                                                                   body, status, message):
    response = client.post(route, content=probe_body(body, f"{image_server}/cat.jpg"),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["status"] == "error" and message in response.json()["error"], response.json()["error"]
    assert client.get("/health").json()["status"] == "UP"


def test_after_every_malformed_request_a_good_one_still_predicts(client, image_server):
    image_server.seen.clear()
    for name, route, body, status, _ in MALFORMED:
        response = client.post(route, content=probe_body(body, f"{image_server}/cat.jpg"),
                               headers={"Content-Type": "application/json"})
        assert response.status_code == status, (name, response.text)
    assert not [path for _, path, _ in image_server.seen if path == "/cat.jpg"]  # refused before fetching anything
    metrics = client.get("/metrics").json()
    assert metrics["errors"]["/predict"] >= sum(route == "/predict" for _, route, *_ in MALFORMED)
    good = client.post("/predict", content=probe_body(request({"result": [BOX]}), f"{image_server}/cat.jpg"),
                       headers={"Content-Type": "application/json"})
    assert good.status_code == 200 and good.json()["errors"] == []
    [region] = good.json()["results"][0]["result"]  # the one object in the box: interactive, not automatic
    assert region["value"]["brushlabels"] == ["Foreground"]
    assert_serving(client, image_server)


def test_a_context_without_result_is_an_automatic_request(client, image_server):
    """Label Studio sends `context: null` when it retrieves predictions; an object without `result` is the same."""
    image = f"{image_server}/cat.jpg"
    answers = [client.post("/predict", content=probe_body(request(context), image),
                           headers={"Content-Type": "application/json"}) for context in (None, {}, {"result": None})]
    assert all(a.status_code == 200 and a.json()["errors"] == [] for a in answers)
    shapes = [[(r["type"], r["value"]["brushlabels"], r["score"]) for r in a.json()["results"][0]["result"]]
              for a in answers]
    assert shapes[0] and shapes[0] == shapes[1] == shapes[2]


def test_brackets_inside_strings_do_not_count_towards_the_nesting_limit(client, image_server):
    head, _, tail = SAM_CONFIG.rpartition("</View>")
    config = head + '<TextArea name="prompt" toName="image"/></View>' + tail
    body = request({"result": [region(TYPED, text=["[" * 1000 + "{" * 1000, "cat"])]}, label_config=config)
    response = client.post("/predict", content=probe_body(body, f"{image_server}/cat.jpg"),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["errors"] == [], response.text


def test_a_body_nested_exactly_to_the_limit_is_read(client, image_server):
    body = request(tasks=[{"id": 1, "data": {"image": "IMAGE", "deep": RAW}}], raw=nested(60))  # 4 + 60 = 64
    response = client.post("/predict", content=probe_body(body, f"{image_server}/cat.jpg"),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["errors"] == [], response.text


def test_in_an_interactive_request_only_the_tasks_with_bad_data_fail(client, image_server):
    tasks = [{"id": 1, "data": {"image": "IMAGE"}}, {"id": 2, "data": {"image": RAW}}, {"id": 3, "data": []},
             {"id": "four", "data": {"image": ["IMAGE"]}}]
    body = probe_body(request({"result": [BOX]}, tasks=tasks, raw=b"NaN"), f"{image_server}/cat.jpg")
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    errors = {e["task"]: e["error"] for e in response.json()["errors"]}
    assert set(errors) == {2, 3, "four"} and all("data['image']" in error for error in errors.values())
    results = response.json()["results"]
    assert results[0]["result"] and all("result" not in r for r in results[1:])


def test_a_setup_with_a_bad_hostname_leaves_later_predictions_working(client, image_server):
    setup = client.post("/setup", json={"project": "9.1700000000", "schema": SAM_CONFIG, "hostname": ["x"]})
    assert setup.status_code == 400 and "hostname" in setup.json()["error"]
    assert_serving(client, image_server)


@pytest.mark.slow
def test_a_real_server_refuses_every_malformed_request_with_a_4xx_and_keeps_serving(tmp_path, image_server,
                                                                                    litetext_cache):
    httpx = pytest.importorskip("httpx")
    url, process = start_backend(tmp_path, env_extra={"LITETEXT_CACHE": str(litetext_cache)})
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            for name, route, body, status, message in MALFORMED:
                response = http.post(route, content=probe_body(body, f"{image_server}/cat.jpg"),
                                     headers={"Content-Type": "application/json"})
                assert response.status_code == status, (name, response.text)
                assert message in response.json()["error"], (name, response.json()["error"])
            good = http.post("/predict", content=probe_body(request({"result": [BOX]}), f"{image_server}/cat.jpg"),
                             headers={"Content-Type": "application/json"})
            assert good.status_code == 200 and good.json()["errors"] == [] and good.json()["results"][0]["result"]
            refused = sum(route == "/predict" for _, route, *_ in MALFORMED)
            assert http.get("/metrics").json()["errors"]["/predict"] == refused
    finally:
        stop(process)


# Tasks and prompts ------------------------------------------------------------------------------------------


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
