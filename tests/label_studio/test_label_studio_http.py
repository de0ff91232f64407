"""HTTP tests of the Label Studio ML backend: every endpoint, with the payloads Label Studio 1.2x sends."""

from __future__ import annotations

import argparse
import base64
import logging
from pathlib import Path

import numpy as np
import pytest

import litetext
from tests.label_studio.label_studio_helpers import (
    BRUSH_CONFIG,
    EXAMPLES,
    INTERACTIVE_CONFIG,
    MIXED_CONFIG,
    SAM_CONFIG,
    TOKEN,
    sam_pixels,
)

pytest.importorskip("starlette")
decode_rle = pytest.importorskip("label_studio_sdk.converter.brush").decode_rle


def decode_brush(value: dict, width: int, height: int) -> np.ndarray:
    """A Label Studio brush RLE back to a boolean mask."""
    return decode_rle(value["rle"]).reshape(height, width, 4)[:, :, 3] > 0


def predict(client, tasks, config=BRUSH_CONFIG, context=None, project="7.1700000000"):
    payload = {"tasks": tasks, "project": project, "label_config": config,
               "params": {"login": None, "password": None, "context": context}}
    return client.post("/predict", json=payload)


def task(task_id: int, image: str) -> dict:
    return {"id": task_id, "data": {"image": image}, "meta": {}, "created_at": "2026-01-01T00:00:00Z",
            "annotations": [], "predictions": [], "project": 7}


def by_label(result: list[dict], kind: str) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for region in result:
        grouped.setdefault(region["value"][kind][0], []).append(region)
    return grouped


# /health, /, /setup -----------------------------------------------------------------------------------


def test_health_and_root_report_up_with_a_model_version_naming_checkpoint_and_thresholds(client):
    for path in ("/health", "/"):
        response = client.get(path)
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "UP"
        assert body["model_class"] == "LitetextModel"
        assert body["model_version"] == "litetext-tiny-random-score0.5-mask0.5"


def test_setup_answers_the_model_version_and_never_logs_the_access_token(client, caplog):
    caplog.set_level(logging.DEBUG)
    response = client.post("/setup", json={"project": "3.1700000000", "schema": BRUSH_CONFIG,
                                           "hostname": "http://127.0.0.1:1", "access_token": "super-secret-key",
                                           "extra_params": None})
    assert response.status_code == 200
    assert response.json() == {"model_version": "litetext-tiny-random-score0.5-mask0.5"}
    assert "super-secret-key" not in caplog.text


def test_setup_refuses_a_config_with_no_supported_control(client):
    config = '<View><Image name="image" value="$image"/><Choices name="c" toName="image"><Choice value="a"/>' \
             "</Choices></View>"
    response = client.post("/setup", json={"project": "3.1", "schema": config})
    assert response.status_code == 422
    assert "no control litetext can predict" in response.json()["error"]
    assert "Choices" in response.json()["error"]


def test_model_version_names_custom_thresholds(make_client):
    client = make_client(threshold=0.3, mask_threshold=0.6, max_instances=5)
    assert client.get("/health").json()["model_version"] == "litetext-tiny-random-score0.3-mask0.6-max5"


# /predict: automatic pre-annotation --------------------------------------------------------------------


def test_brush_predictions_decode_to_the_engines_masks_for_the_mapped_prompts(client, engine, image_server):
    response = predict(client, [task(1, f"{image_server}/cat.jpg")])
    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == []
    [prediction] = body["results"]
    assert prediction["model_version"] == "litetext-tiny-random-score0.5-mask0.5"
    # Labels map to prompts: Cat -> "Cat", Mug -> "coffee cup", Person -> "astronaut" and "person".
    expected = engine.segment(EXAMPLES / "cat.jpg", ["Cat", "coffee cup", "astronaut", "person"]).filter(min_area=1)
    label_of = {"Cat": "Cat", "coffee cup": "Mug", "astronaut": "Person", "person": "Person"}
    regions = prediction["result"]
    assert len(regions) == len(expected) > 0
    for region, instance in zip(regions, expected):
        assert region["type"] == "brushlabels"
        assert (region["from_name"], region["to_name"]) == ("tag", "image")
        assert (region["original_width"], region["original_height"]) == expected.image_size
        assert region["value"]["brushlabels"] == [label_of[instance.prompt]]
        assert region["score"] == pytest.approx(instance.score, abs=1e-5)
        mask = decode_brush(region["value"], *expected.image_size)
        assert np.array_equal(mask, instance.mask)
    assert prediction["score"] == pytest.approx(float(np.mean(expected.scores)), abs=1e-5)


def test_polygon_and_rectangle_controls_get_percent_geometry_and_skipped_controls_get_nothing(
        client, engine, image_server):
    response = predict(client, [task(1, f"{image_server}/coffee.jpg")], config=MIXED_CONFIG)
    assert response.status_code == 200
    regions = response.json()["results"][0]["result"]
    assert {r["from_name"] for r in regions} <= {"poly", "box"}  # Choices, KeyPointLabels, skipped: untouched
    result = engine.segment(EXAMPLES / "coffee.jpg", ["cat", "Cat", "coffee cup"]).filter(min_area=1)
    width, height = result.image_size

    polygons = [r for r in regions if r["from_name"] == "poly"]
    cat = result.filter(prompts=["cat"], min_score=0.55)  # the control's own model_score_threshold
    assert {r["value"]["polygonlabels"][0] for r in polygons} <= {"Cat"}
    assert all(r["score"] > 0.55 for r in polygons)
    expected_polygons = [shape for shapes in cat.to_polygons() for shape in shapes]
    assert len(polygons) == len(expected_polygons)
    for region, shape in zip(polygons, expected_polygons):
        points = np.array(region["value"]["points"])
        assert region["type"] == "polygonlabels" and region["value"]["closed"] is True
        assert np.allclose(points, np.array(shape).reshape(-1, 2) / [width, height] * 100)
        assert ((points >= 0) & (points <= 100)).all()

    boxes = [r for r in regions if r["from_name"] == "box"]
    expected_boxes = result.filter(prompts=["Cat", "coffee cup"], min_score=0.5)
    assert len(boxes) == len(expected_boxes) > 0
    for region, instance in zip(boxes, expected_boxes):
        value = region["value"]
        assert region["type"] == "rectanglelabels"
        assert value["rectanglelabels"] == [{"Cat": "Cat", "coffee cup": "Cup"}[instance.prompt]]
        x1, y1, x2, y2 = instance.box
        assert value["x"] == pytest.approx(100 * x1 / width) and value["y"] == pytest.approx(100 * y1 / height)
        assert value["width"] == pytest.approx(100 * (x2 - x1) / width)
        assert value["height"] == pytest.approx(100 * (y2 - y1) / height)


def test_a_higher_control_threshold_keeps_only_higher_scoring_regions(client, image_server):
    config = BRUSH_CONFIG.replace('toName="image">', 'toName="image" model_score_threshold="0.6">', 1)
    low = predict(client, [task(1, f"{image_server}/cat.jpg")]).json()["results"][0]["result"]
    high = predict(client, [task(1, f"{image_server}/cat.jpg")], config=config).json()["results"][0]["result"]
    assert len(high) < len(low)
    assert all(r["score"] > 0.6 for r in high)
    assert sorted(r["score"] for r in high) == sorted(r["score"] for r in low if r["score"] > 0.6)


def test_tasks_in_one_request_are_batched_and_match_one_request_per_task(client, image_server):
    tasks = [task(i, f"{image_server}/{name}.jpg") for i, name in enumerate(["cat", "coffee", "rocket"], 1)]
    batched = predict(client, tasks).json()["results"]
    single = [predict(client, [t]).json()["results"][0] for t in tasks]
    assert len(batched) == 3
    for one, many in zip(single, batched):
        assert [r["value"]["brushlabels"] for r in one["result"]] == [r["value"]["brushlabels"] for r in many["result"]]
        assert [r["score"] for r in one["result"]] == pytest.approx([r["score"] for r in many["result"]], abs=1e-4)


def test_a_broken_image_is_reported_and_the_other_tasks_still_get_predictions(client, image_server):
    tasks = [task(1, f"{image_server}/broken.jpg"), task(2, f"{image_server}/cat.jpg"),
             task(3, f"{image_server}/missing.jpg"), task(4, f"{image_server}/notes.txt"), {"id": 5, "data": {}}]
    response = predict(client, tasks)
    assert response.status_code == 200
    body = response.json()
    assert len(body["results"]) == 5
    assert body["results"][1]["result"] and "error" not in body["results"][1]
    errors = {e["task"]: e["error"] for e in body["errors"]}
    assert set(errors) == {1, 3, 4, 5}
    assert "broken.jpg" in errors[1] and "HTTP 404" in errors[3] and "notes.txt" in errors[4]
    assert "data['image']" in errors[5]
    for index in (0, 2, 3, 4):  # no "result": Label Studio stores no (empty) prediction for a failed task
        assert "result" not in body["results"][index] and body["results"][index]["error"]
        assert body["results"][index]["model_version"] == "litetext-tiny-random-score0.5-mask0.5"
    assert client.get("/health").json()["status"] == "UP"


def test_label_studio_uploads_are_fetched_with_the_token_sent_to_setup(client, image_server):
    upload = [task(1, "/data/upload/1/cat.jpg")]
    without = predict(client, upload, project="8.1").json()
    assert "LABEL_STUDIO_URL" in without["errors"][0]["error"]
    client.post("/setup", json={"project": "8.1", "schema": BRUSH_CONFIG, "hostname": image_server,
                                "access_token": "wrong-token"})
    refused = predict(client, upload, project="8.1").json()
    assert "HTTP 401" in refused["errors"][0]["error"] and "wrong-token" not in refused["errors"][0]["error"]
    client.post("/setup", json={"project": "8.1", "schema": BRUSH_CONFIG, "hostname": image_server,
                                "access_token": TOKEN})
    body = predict(client, upload, project="8.1").json()
    assert body["errors"] == [] and body["results"][0]["result"]


def test_the_api_key_goes_only_to_label_studio_not_to_other_hosts(make_client, image_server):
    other_origin = image_server.replace("127.0.0.1", "localhost")  # same server, another origin
    client = make_client(label_studio_url=image_server, label_studio_api_key=TOKEN)
    image_server.seen.clear()
    body = predict(client, [task(1, "/data/upload/1/cat.jpg"), task(2, f"{other_origin}/coffee.jpg")]).json()
    assert body["errors"] == [] and all(r["result"] for r in body["results"])
    auth = {path: authorization for _, path, authorization in image_server.seen}
    assert auth == {"/data/upload/1/cat.jpg": f"Token {TOKEN}", "/coffee.jpg": None}


def test_local_files_are_read_under_the_allowed_roots_and_refused_outside(make_client, image_root):
    client = make_client(allowed_roots=(str(image_root),))
    tasks = [task(1, "/data/local-files/?d=cat.jpg"), task(2, "/data/local-files/?d=../../../etc/passwd"),
             task(3, str(image_root / "coffee.jpg")), task(4, "/etc/hostname"), task(5, "s3://bucket/cat.jpg")]
    body = predict(client, tasks).json()
    errors = {e["task"]: e["error"] for e in body["errors"]}
    assert set(errors) == {2, 4, 5}
    assert "outside the allowed roots" in errors[2] and "outside the allowed roots" in errors[4]
    assert "unsupported URL scheme 's3'" in errors[5]
    assert body["results"][0]["result"] and body["results"][2]["result"]


def test_data_uri_images_are_decoded(client):
    encoded = base64.b64encode((EXAMPLES / "rocket.jpg").read_bytes()).decode()
    body = predict(client, [task(1, f"data:image/jpeg;base64,{encoded}")]).json()
    assert body["errors"] == [] and body["results"][0]["result"]


# /predict: interactive --------------------------------------------------------------------------------


def test_interactive_text_prompt_returns_regions_for_that_prompt_only(client, engine, image_server):
    def ask(text):
        context = {"result": [{"id": "a1", "type": "textarea", "from_name": "prompt", "to_name": "image",
                               "origin": "manual", "value": {"text": [text]}}]}
        response = predict(client, [task(1, f"{image_server}/coffee.jpg")], config=INTERACTIVE_CONFIG,
                           context=context)
        assert response.status_code == 200
        return response.json()["results"][0]["result"]

    for text, prompt, label in [("white plate", "white plate", "Cat"),  # free text: the control's first label
                                ("coffee cup", "coffee cup", "Mug"),  # a label's prompt: that label
                                ("mug", "coffee cup", "Mug")]:  # a label's name: its prompts
        regions = ask(text)
        expected = engine.segment(EXAMPLES / "coffee.jpg", [prompt]).filter(min_area=1)
        assert len(regions) == len(expected) > 0
        assert {r["from_name"] for r in regions} == {"tag"}  # the skipped exemplar control gets nothing
        assert {r["value"]["brushlabels"][0] for r in regions} == {label}
        for region, instance in zip(regions, expected):
            assert np.array_equal(decode_brush(region["value"], *expected.image_size), instance.mask)


def rectangle_context(image: Path, x: float, y: float, w: float, h: float, label: str, from_name="exemplar") -> dict:
    """The context Label Studio sends when a smart rectangle is drawn (percent of the image)."""
    width, height = litetext.load_image(image).size
    return {"result": [{"id": "r1", "type": "rectanglelabels", "from_name": from_name, "to_name": "image",
                        "original_width": width, "original_height": height, "image_rotation": 0, "origin": "manual",
                        "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0,
                                  "rectanglelabels": [label]}}]}


def best_match(result, box) -> int:
    """Index of `result`'s instance whose box has the highest IoU with `box` (computed here, independently)."""
    def iou(a, b):
        overlap = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        return overlap / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap)

    return max(range(len(result)), key=lambda i: (iou(result[i].box, box), result[i].score))


def test_a_smart_rectangle_selects_the_one_instance_that_best_matches_the_drawn_box(client, engine, image_server):
    width, height = litetext.load_image(EXAMPLES / "cat.jpg").size
    context = rectangle_context(EXAMPLES / "cat.jpg", 20.0, 10.0, 50.0, 60.0, "Cat")
    body = predict(client, [task(1, f"{image_server}/cat.jpg")], config=INTERACTIVE_CONFIG, context=context).json()
    [region] = body["results"][0]["result"]
    _, box = sam_pixels(context["result"][0]["value"], width, height)
    candidates = engine.segment(EXAMPLES / "cat.jpg", ["Cat"], boxes=[box], box_labels=[1]).filter(min_area=1)
    assert len(candidates) > 1  # several instances answer the exemplar query; only one comes back
    chosen = candidates[best_match(candidates, box)]
    assert region["from_name"] == "tag" and region["value"]["brushlabels"] == ["Cat"]
    assert region["score"] == pytest.approx(chosen.score, abs=1e-5)
    assert np.array_equal(decode_brush(region["value"], width, height), chosen.mask)


def test_a_box_whose_label_no_control_has_selects_one_object_by_the_box_alone(client, engine, image_server):
    width, height = litetext.load_image(EXAMPLES / "rocket.jpg").size
    context = rectangle_context(EXAMPLES / "rocket.jpg", 10.0, 10.0, 30.0, 40.0, "Zebra", from_name="not-in-config")
    response = predict(client, [task(1, f"{image_server}/rocket.jpg")], config=INTERACTIVE_CONFIG, context=context)
    assert response.status_code == 200
    [region] = response.json()["results"][0]["result"]
    _, box = sam_pixels(context["result"][0]["value"], width, height)
    candidates = engine.segment(EXAMPLES / "rocket.jpg", None, boxes=[box], box_labels=[1]).filter(min_area=1)
    assert candidates.prompts == ["visual"] and len(candidates) > 1
    assert region["value"]["brushlabels"] == ["Cat"]  # the control's first label
    assert np.array_equal(decode_brush(region["value"], width, height), candidates[best_match(candidates, box)].mask)


def test_sam_config_automatic_predictions_are_brush_only(client, engine, image_server):
    """Label Studio's SAM config: the smart rectangle and keypoint tools are inputs, so no object comes back twice."""
    body = predict(client, [task(1, f"{image_server}/cat.jpg")], config=SAM_CONFIG).json()
    regions = body["results"][0]["result"]
    expected = engine.segment(EXAMPLES / "cat.jpg", ["Foreground", "Background"]).filter(min_area=1)
    assert len(regions) == len(expected) > 0
    assert {(r["from_name"], r["to_name"], r["type"]) for r in regions} == {("tag", "image", "brushlabels")}


def test_sam_config_smart_rectangle_returns_one_brush_mask_shaped_like_sams(client, engine, image_server):
    width, height = litetext.load_image(EXAMPLES / "cat.jpg").size
    context = rectangle_context(EXAMPLES / "cat.jpg", 20.0, 10.0, 50.0, 60.0, "Foreground", from_name="tag3")
    body = predict(client, [task(1, f"{image_server}/cat.jpg")], config=SAM_CONFIG, context=context).json()
    [region] = body["results"][0]["result"]
    _, box = sam_pixels(context["result"][0]["value"], width, height)
    candidates = engine.segment(EXAMPLES / "cat.jpg", ["Foreground"], boxes=[box], box_labels=[1]).filter(min_area=1)
    assert set(region) == {"id", "from_name", "to_name", "type", "value", "score", "original_width",
                           "original_height", "image_rotation", "readonly"}  # the keys SAM's backends send
    assert (region["from_name"], region["to_name"], region["type"]) == ("tag", "image", "brushlabels")
    assert (region["original_width"], region["original_height"], region["readonly"]) == (width, height, False)
    assert set(region["value"]) == {"format", "rle", "brushlabels"} and region["value"]["format"] == "rle"
    assert region["value"]["brushlabels"] == ["Foreground"]
    assert np.array_equal(decode_brush(region["value"], width, height), candidates[best_match(candidates, box)].mask)


def test_a_config_asking_for_masks_and_boxes_gets_both(client, image_server):
    config = SAM_CONFIG.replace('<RectangleLabels name="tag3" toName="image" smart="true">',
                                '<RectangleLabels name="tag3" toName="image" smart="true" model_skip="false">')
    regions = predict(client, [task(1, f"{image_server}/cat.jpg")], config=config).json()["results"][0]["result"]
    brushes = [r for r in regions if r["type"] == "brushlabels"]
    boxes = [r for r in regions if r["type"] == "rectanglelabels"]
    assert len(brushes) == len(boxes) > 0 and {r["from_name"] for r in boxes} == {"tag3"}


def test_a_smart_rectangle_returns_its_object_as_a_mask_and_a_polygon_where_the_config_has_both(
        client, engine, image_server):
    config = INTERACTIVE_CONFIG.replace("</View>", '<PolygonLabels name="outline" toName="image">'
                                        '<Label value="Cat"/></PolygonLabels></View>')
    width, height = litetext.load_image(EXAMPLES / "cat.jpg").size
    context = rectangle_context(EXAMPLES / "cat.jpg", 20.0, 10.0, 50.0, 60.0, "Cat")
    regions = predict(client, [task(1, f"{image_server}/cat.jpg")], config=config, context=context).json()[
        "results"][0]["result"]
    _, box = sam_pixels(context["result"][0]["value"], width, height)
    candidates = engine.segment(EXAMPLES / "cat.jpg", ["Cat"], boxes=[box], box_labels=[1]).filter(min_area=1)
    chosen = candidates.select([best_match(candidates, box)])
    [brush] = [r for r in regions if r["type"] == "brushlabels"]
    polygons = [r for r in regions if r["type"] == "polygonlabels"]
    assert np.array_equal(decode_brush(brush["value"], width, height), chosen.masks[0])
    assert len(polygons) == len(chosen.to_polygons()[0]) > 0
    assert all(r["value"]["polygonlabels"] == ["Cat"] and r["score"] == brush["score"] for r in polygons)


def test_two_interactive_calls_on_one_task_never_reuse_a_region_id(client, image_server):
    context = rectangle_context(EXAMPLES / "cat.jpg", 20.0, 10.0, 50.0, 60.0, "Cat")
    calls = [predict(client, [task(1, f"{image_server}/cat.jpg")], config=INTERACTIVE_CONFIG, context=context)
             for _ in range(2)] + [predict(client, [task(1, f"{image_server}/cat.jpg")]) for _ in range(2)]
    ids = [r["id"] for call in calls for r in call.json()["results"][0]["result"]]
    assert len(ids) > 4 and len(set(ids)) == len(ids)


def keypoint(x: float, y: float, label: str = "Foreground", positive: bool = True) -> dict:
    """A smart keypoint click as Label Studio sends it (the SAM example's own test payload, at our coordinates)."""
    return {"original_width": 451, "original_height": 300, "image_rotation": 0,
            "value": {"x": x, "y": y, "width": 0.32, "labels": [label], "keypointlabels": [label]},
            "is_positive": positive, "id": f"k{x:g}-{y:g}", "from_name": "tag2", "to_name": "image",
            "type": "keypointlabels", "origin": "manual"}


def keypoint_context(positive: bool = True) -> dict:
    return {"result": [keypoint(49.4, 59.9, positive=positive)]}


def test_a_keypoint_click_without_a_tracker_fails_the_task_with_a_message_naming_the_tracker(client, image_server):
    image_server.seen.clear()
    response = predict(client, [task(1, f"{image_server}/cat.jpg")], config=SAM_CONFIG, context=keypoint_context())
    assert response.status_code == 200  # Label Studio relays a 200's per-task error; a 4xx would lose the text
    [result] = response.json()["results"]
    assert "result" not in result
    assert "keypoint clicks need SAM3's tracker" in result["error"] and "--tracker sam3" in result["error"]
    assert response.json()["errors"][0]["error"] == result["error"]
    assert image_server.seen == []  # nothing fetched for a request that cannot be answered


# With SAM3's tracker (tiny-random-tracker): clicks and boxes go to engine.segment_object, as in SAM's backends.

CAT = EXAMPLES / "cat.jpg"


def with_controls(config: str, controls: str) -> str:
    """`config` with `controls` added at the end of its outer <View>."""
    head, _, tail = config.rpartition("</View>")
    return head + controls + "</View>" + tail


def brush_regions(client, image_server, context: dict, config: str = SAM_CONFIG) -> list[dict]:
    response = predict(client, [task(1, f"{image_server}/cat.jpg")], config=config, context=context)
    assert response.status_code == 200 and response.json()["errors"] == [], response.text
    return response.json()["results"][0]["result"]


def test_positive_and_negative_clicks_return_the_mask_segment_object_gives_for_the_same_pixels(
        tracker_client, tracker_engine, image_server):
    width, height = litetext.load_image(CAT).size
    clicks = [keypoint(25.0, 50.0), keypoint(70.3, 40.7, "Background", positive=False)]
    [region] = brush_regions(tracker_client, image_server, {"result": clicks})
    points = [sam_pixels(click["value"], width, height)[0] for click in clicks]
    expected = tracker_engine.segment_object(CAT, points=points, point_labels=[1, 0])
    assert (region["from_name"], region["to_name"], region["type"]) == ("tag", "image", "brushlabels")
    assert region["value"]["brushlabels"] == ["Background"]  # the label of the last click names the object
    assert region["score"] == pytest.approx(float(expected.scores[0]), abs=1e-5)
    assert np.array_equal(decode_brush(region["value"], width, height), expected.masks[0])


def test_clicks_and_a_smart_rectangle_together_are_points_and_a_box(tracker_client, tracker_engine, image_server):
    width, height = litetext.load_image(CAT).size
    rectangle = rectangle_context(CAT, 12.5, 20.25, 55.0, 61.3, "Foreground", from_name="tag3")["result"][0]
    click = keypoint(40.0, 45.5)
    [region] = brush_regions(tracker_client, image_server, {"result": [rectangle, click]})
    expected = tracker_engine.segment_object(CAT, points=[sam_pixels(click["value"], width, height)[0]],
                                             point_labels=[1], box=sam_pixels(rectangle["value"], width, height)[1])
    assert region["value"]["brushlabels"] == ["Foreground"]
    assert np.array_equal(decode_brush(region["value"], width, height), expected.masks[0])


def test_a_smart_rectangle_with_a_tracker_is_its_box_prompt_as_brush_and_polygon_where_the_config_asks(
        tracker_client, tracker_engine, image_server):
    config = with_controls(SAM_CONFIG, '<PolygonLabels name="outline" toName="image"><Label value="Foreground"/>'
                                       '<Label value="Background"/></PolygonLabels>')
    width, height = litetext.load_image(CAT).size
    context = rectangle_context(CAT, 20.0, 10.0, 50.0, 60.0, "Background", from_name="tag3")
    regions = brush_regions(tracker_client, image_server, context, config)
    expected = tracker_engine.segment_object(CAT, box=sam_pixels(context["result"][0]["value"], width, height)[1])
    [brush] = [r for r in regions if r["type"] == "brushlabels"]
    polygons = [r for r in regions if r["type"] == "polygonlabels"]
    assert brush["value"]["brushlabels"] == ["Background"]
    assert np.array_equal(decode_brush(brush["value"], width, height), expected.masks[0])
    assert len(polygons) == len(expected.to_polygons()[0]) > 0
    assert all(r["from_name"] == "outline" and r["value"]["polygonlabels"] == ["Background"] for r in polygons)


def test_a_typed_phrase_in_the_sam_config_still_finds_every_instance(tracker_client, tracker_engine, image_server):
    config = with_controls(SAM_CONFIG, '<TextArea name="prompt" toName="image" editable="true" rows="1"/>')
    context = {"result": [{"id": "t1", "type": "textarea", "from_name": "prompt", "to_name": "image",
                           "origin": "manual", "value": {"text": ["cat"]}}]}
    regions = brush_regions(tracker_client, image_server, context, config)
    expected = tracker_engine.segment(CAT, ["cat"]).filter(min_area=1)
    assert len(regions) == len(expected) > 1
    assert {r["value"]["brushlabels"][0] for r in regions} == {"Foreground"}  # free text: the first label
    for region, instance in zip(regions, expected):
        assert np.array_equal(decode_brush(region["value"], *expected.image_size), instance.mask)


def test_a_click_outside_the_image_is_refused_naming_the_field(tracker_client, image_server):
    response = predict(tracker_client, [task(1, f"{image_server}/cat.jpg")], config=SAM_CONFIG,
                       context={"result": [keypoint(150.0, 50.0)]})
    assert response.status_code == 400
    assert response.json()["error"] == ("context.result[0].value.x: must be from 0 to 100 (percent of the image), "
                                        "not 150.0")
    assert tracker_client.get("/health").json()["status"] == "UP"


def test_a_box_on_the_images_edge_that_truncates_to_no_pixels_fails_its_task_with_the_reason(client, image_server):
    context = rectangle_context(CAT, 100.0, 10.0, 5.0, 60.0, "Cat")  # x at 100%: no pixel wide once truncated
    response = predict(client, [task(1, f"{image_server}/cat.jpg"), task(2, f"{image_server}/coffee.jpg")],
                       config=INTERACTIVE_CONFIG, context=context)
    assert response.status_code == 200
    results = response.json()["results"]
    assert all("result" not in r and "empty" in r["error"] for r in results)
    assert "cat.jpg" in results[0]["error"] and "coffee.jpg" in results[1]["error"]


def test_interactive_context_with_nothing_usable_is_a_clear_error(client, image_server):
    context = {"result": [{"type": "choices", "value": {"choices": ["good"]}}]}
    response = predict(client, [task(1, f"{image_server}/cat.jpg")], config=INTERACTIVE_CONFIG, context=context)
    assert response.status_code == 422
    assert "no text prompt" in response.json()["error"] and "choices" in response.json()["error"]


# Malformed input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"tasks": "nope", "label_config": "<View/>"}', 400, "tasks: must be a list"),
    (b'{"tasks": []}', 400, "label_config"),
    (b'{"tasks": [{"data": {}}], "label_config": "<View"}', 422, "not valid XML"),
    (b'{"tasks": [{"data": {}}], "label_config": "<View><Image name=\\"i\\" value=\\"$i\\"/></View>"}', 422,
     "no control litetext can predict"),
    (b'{"tasks": [{"data": {}}], "label_config": "<View><Image name=\\"i\\" value=\\"$i\\"/>'
     b'<BrushLabels name=\\"b\\" toName=\\"nowhere\\"><Label value=\\"x\\"/></BrushLabels></View>"}', 422,
     "toName naming an <Image>"),
])
def test_malformed_requests_get_clear_json_errors_and_the_server_keeps_serving(client, body, status, message):
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json()["status"] == "error" and message in response.json()["error"]
    assert client.get("/health").status_code == 200


def test_oversized_requests_are_refused_with_413(make_client):
    client = make_client(max_request_bytes=1000)
    response = client.post("/predict", json={"tasks": [], "label_config": "x" * 5000})
    assert response.status_code == 413 and "limit" in response.json()["error"]


def test_unknown_routes_and_methods_answer_json(client):
    assert client.get("/nope").status_code == 404 and client.get("/nope").json()["status"] == "error"
    assert client.get("/predict").status_code == 405
    assert client.post("/setup", content=b"x=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
                       ).status_code == 415


# /webhook, /metrics, auth, CLI ------------------------------------------------------------------------


def test_webhook_answers_training_events_and_ignores_others(client):
    payload = {"action": "ANNOTATION_CREATED", "project": {"id": 7, "label_config": BRUSH_CONFIG},
               "annotation": {"id": 1, "result": []}, "task": {"id": 1}}
    response = client.post("/webhook", json=payload)
    assert response.status_code == 201
    assert response.json()["status"] == "ok" and response.json()["result"]["trained"] is False
    other = client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 7}})
    assert other.status_code == 200 and other.json()["status"] == "Unknown event"


def test_metrics_count_requests_tasks_and_failures(client, image_server):
    predict(client, [task(1, f"{image_server}/cat.jpg"), task(2, f"{image_server}/broken.jpg")])
    client.post("/predict", content=b"{")
    metrics = client.get("/metrics").json()
    assert metrics["requests"]["/predict"] == 2 and metrics["errors"]["/predict"] == 1
    assert metrics["tasks_predicted"] == 2 and metrics["tasks_failed"] == 1
    assert metrics["predict_latency_ms"]["count"] == 1 and metrics["engine"]["model"] == "tiny-random"
    assert metrics["engine"]["image_cache"]["entries"] >= 1


def test_basic_auth_is_required_when_configured(make_client):
    client = make_client(basic_auth_user="ls", basic_auth_pass="pa:ss")
    assert client.get("/health").status_code == 401
    assert client.get("/health", auth=("ls", "wrong")).status_code == 401
    assert client.get("/health", auth=("ls", "pa:ss")).json()["status"] == "UP"


def test_cli_registers_the_label_studio_command():
    from litetext_label_studio.cli import register, run

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["label-studio", "--port", "9191", "-m", "tiny-random", "--threshold", "0.4"])
    assert (args.port, args.model, args.threshold, args.run) == (9191, "tiny-random", 0.4, run)


def test_settings_come_from_label_studio_environment_variables():
    from litetext_label_studio import BackendSettings

    settings = BackendSettings.from_env({
        "LABEL_STUDIO_URL": "http://ls:8080", "LABEL_STUDIO_API_KEY": "k", "BASIC_AUTH_USER": "u",
        "BASIC_AUTH_PASS": "p", "MODEL_DIR": "/models", "WORKERS": "2", "THREADS": "3", "LOG_LEVEL": "debug",
        "LITETEXT_MODEL": "s1-16", "LITETEXT_SCORE_THRESHOLD": "0.4", "LOCAL_FILES_DOCUMENT_ROOT": "/files",
    })
    assert (settings.label_studio_url, settings.workers, settings.threads, settings.log_level) == \
        ("http://ls:8080", 2, 3, "DEBUG")
    assert (settings.model, settings.threshold, settings.allowed_roots) == ("s1-16", 0.4, ("/files",))
    assert "'k'" not in repr(settings) and "'p'" not in repr(settings)  # secrets stay out of logs
    with pytest.raises(litetext.InputError, match="BASIC_AUTH"):
        BackendSettings.from_env({"BASIC_AUTH_USER": "u"})


def test_a_tracker_setting_composes_sams_tracker_with_the_model_and_names_both(engine):
    from litetext_label_studio import BackendSettings
    from litetext_label_studio.cli import register
    from litetext_label_studio.model import BackendState, LitetextModel

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["label-studio", "--tracker", "tiny-random-video", "--max-video-frames", "50"])
    assert (args.tracker, args.max_video_frames) == ("tiny-random-video", 50)
    settings = BackendSettings.from_env({"LITETEXT_TRACKER": "tiny-random-video", "LITETEXT_MAX_VIDEO_FRAMES": "50"},
                                        model="tiny-random", device="cpu")
    assert (settings.tracker, settings.max_video_frames) == ("tiny-random-video", 50)
    assert BackendSettings.from_env(settings.to_env()) == settings  # worker processes rebuild the same settings
    composed = settings.engine()
    assert composed.has_tracker and not engine.has_tracker and composed is settings.engine()
    version = LitetextModel(BackendState(settings, composed)).model_version
    assert version == "litetext-tiny-random+tiny-random-video-score0.5-mask0.5"
