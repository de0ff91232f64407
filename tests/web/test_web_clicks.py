"""Clicks in the browser page: the site of an export with SAM3's tracker segments one object from clicks and a box in
Debian's chromium (onnxruntime-web, WebAssembly) as the ONNX Runtime and PyTorch engines do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.web.conftest import CHROMIUM

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]
pytest.importorskip("onnxruntime", reason='the export needs pip install "litetext[onnx]"')
pytest.importorskip("playwright", reason="the browser test needs playwright (the test extra)")

CLICK = {"points": [[100, 120]], "point_labels": [1]}
BOX = [40, 30, 300, 280]
CASES = {
    "one click": CLICK,
    "clicks with a negative": {"points": [[100, 120], [300, 200], [50, 60]], "point_labels": [1, 0, 1]},
    "box": {"box": BOX},
    "box and a click": {"box": BOX, **CLICK},
    "three candidates": {**CLICK, "multimask": True},
    "box, three candidates": {"box": BOX, "multimask": True},
}


@pytest.fixture(scope="module")
def cat(photos) -> Path:
    return next(p for p in photos if p.stem == "cat")  # 451x300: x and y scale differently


@pytest.fixture(scope="module")
def tracker_export(onnx_tracker_export) -> Path:
    """The session's tiny ONNX export with tracker graphs (tests/conftest.py)."""
    return onnx_tracker_export


@pytest.fixture(scope="module")
def page(browser, tracker_export, cat, site_for):
    page = browser.new_page()
    page.goto(site_for(tracker_export, cat))
    assert page.evaluate("window.litetext.ready.then(r => [r.backend, r.tracker])") == ["wasm", True]
    yield page
    page.close()


@pytest.fixture(scope="module")
def engines(tracker_export, tracker_checkpoints):
    """The Python engines on the same checkpoint: ONNX Runtime on the export, and PyTorch."""
    import litetext

    return {"onnx": litetext.load(str(tracker_export)),
            "torch": litetext.load(str(tracker_checkpoints["composed"]), device="cpu", dtype="fp32")}


def segment_object(page, prompt: dict):
    """window.litetext.segmentObject's answer for a Python-style prompt, or {"error": message} when it rejects."""
    options = {"pointLabels" if key == "point_labels" else key: value for key, value in prompt.items()}
    return page.evaluate("options => window.litetext.segmentObject('photo.jpg', options)"
                         ".catch(error => ({error: error.message}))", options)


def python_objects(result) -> list[dict]:
    return [{"score": float(s), "box": [float(v) for v in b], "area": int(m.sum())}
            for s, b, m in zip(result.scores, result.boxes, result.masks)]


def assert_same_object(ours: dict, theirs: dict) -> None:
    """Score within 1e-3, box within a pixel, area within 1 % (a pixel for tiny masks)."""
    assert ours["score"] == pytest.approx(theirs["score"], abs=1e-3)
    np.testing.assert_allclose(ours["box"], theirs["box"], atol=1, rtol=0)
    assert abs(ours["area"] - theirs["area"]) <= max(0.01 * theirs["area"], 1)


@pytest.mark.parametrize("case", list(CASES))
def test_segment_object_finds_what_the_onnx_and_torch_engines_find(case, page, engines, cat):
    prompt = CASES[case]
    found = segment_object(page, prompt)
    assert not (isinstance(found, dict) and "error" in found), found
    for engine in engines.values():
        expected = python_objects(engine.segment_object(cat, **prompt))
        if prompt.get("multimask"):
            assert isinstance(found, list) and len(found) == len(expected) == 3
            for ours, theirs in zip(found, expected):
                assert_same_object(ours, theirs)
        else:
            assert_same_object(found, expected[0])
    assert page.inner_text("#results li").startswith("object: ")


def test_refine_feeds_the_last_objects_mask_back_as_mask_input_does_in_python(page, engines, cat):
    second = {"points": [[100, 120], [300, 200]], "point_labels": [1, 0]}
    assert "error" not in segment_object(page, CLICK)
    refined = segment_object(page, {**second, "refine": True})
    assert "error" not in refined, refined
    for engine in engines.values():
        first = engine.segment_object(cat, **CLICK)
        expected = python_objects(engine.segment_object(cat, **second, mask_input=first.mask_logits[0]))[0]
        assert_same_object(refined, expected)
        # The tiny model's logits are small, so the mask fed back moves the mask by only 0.3 % (152 pixels here),
        # inside the tolerance above: the page must still be nearer the refined answer than the unrefined one.
        unrefined = python_objects(engine.segment_object(cat, **second))[0]
        assert abs(refined["area"] - expected["area"]) < abs(refined["area"] - unrefined["area"])


def test_refine_without_an_earlier_object_on_that_image_says_so(page):
    error = page.evaluate("""async () => {
        const canvas = new OffscreenCanvas(64, 48);
        canvas.getContext('2d').fillRect(0, 0, 20, 20);
        return window.litetext.segmentObject(canvas.transferToImageBitmap(), {points: [[10, 10]], refine: true})
            .then(() => null, e => e.message);
    }""")
    assert error and "there is none: call segmentObject on this image without refine first" in error
    assert "score" in segment_object(page, CLICK)


def test_clicks_reuse_the_image_encoded_for_text_prompts(page):
    found = page.evaluate("window.litetext.segment('photo.jpg', ['cat'])")
    assert isinstance(found, list)
    assert "error" not in segment_object(page, CLICK)
    assert "Image already encoded" in page.inner_text("#status")


@pytest.mark.parametrize("options, message", [
    ("{points: [[10000, 5]]}", "outside the 451x300 image"),
    ("{points: [[NaN, 3]]}", "NaN"),
    ("{points: [[10]]}", "two numbers"),
    ("{points: '12'}", "points must be a list"),
    ("{points: [[10, 5]], pointLabels: [2]}", "pointLabels must be 1 (include) or 0 (exclude)"),
    ("{points: [[10, 5]], pointLabels: [1, 0]}", "1 points but 2 pointLabels"),
    ("{box: [50, 50, 10, 10]}", "inverted"),
    ("{box: [0, 0, 10000, 10]}", "outside"),
    ("{box: ['1', '2', '30', '40']}", "four numbers"),
    ("{}", "no object prompt given"),
    ("{points: [[10, 5]], labels: [1]}", "not labels"),
    ("{points: [[10, 5]], refine: 'yes'}", "refine must be true or false"),
])
def test_a_bad_object_prompt_shows_a_message_and_the_page_keeps_working(page, options, message):
    error = page.evaluate(f"window.litetext.segmentObject('photo.jpg', {options}).then(() => null, e => e.message)")
    assert error is not None and message in error
    assert message in page.inner_text("#message")
    assert "score" in segment_object(page, CLICK)
    assert page.inner_text("#message") == ""


def test_clicks_and_a_drag_on_the_page_segment_the_object(page, engines, cat):
    page.evaluate("window.litetext.segment('photo.jpg', ['cat'])")  # shows the image, clears earlier clicks
    page.evaluate("window.seen = []; window.addEventListener('litetext:click', e => window.seen.push(e.detail.label))")
    view = page.locator("#view").bounding_box()
    scale = view["width"] / 451

    def at(x, y):  # the screen position of image pixel (x, y)
        return view["x"] + x * scale, view["y"] + y * scale

    shown_before = []  # the engine's result for the page's previous clicks: each later click refines its mask

    def assert_shows_what_the_engine_finds() -> dict:
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('Object score')")
        page.evaluate("document.querySelector('#status').textContent = ''")
        clicks = page.evaluate("window.litetext.clicks()")
        shown = float(page.inner_text("#results li").split(":")[1].split(",")[0])
        result = engines["onnx"].segment_object(
            cat, points=clicks["points"] or None, point_labels=clicks["pointLabels"] or None, box=clicks["box"],
            mask_input=shown_before[-1].mask_logits[0] if shown_before else None)
        assert shown == pytest.approx(float(result.scores[0]), abs=1e-3)
        shown_before.append(result)
        return clicks

    page.mouse.click(*at(100, 120))
    clicks = assert_shows_what_the_engine_finds()
    assert clicks["pointLabels"] == [1] and clicks["box"] is None
    np.testing.assert_allclose(clicks["points"], [[100, 120]], atol=1)

    page.keyboard.down("Shift")
    page.mouse.click(*at(300, 200))
    page.keyboard.up("Shift")
    clicks = assert_shows_what_the_engine_finds()
    assert clicks["pointLabels"] == [1, 0]

    page.mouse.move(*at(40, 30))
    page.mouse.down()
    page.mouse.move(*at(170, 150), steps=4)
    page.mouse.move(*at(300, 280), steps=4)
    page.mouse.up()
    clicks = assert_shows_what_the_engine_finds()
    assert clicks["pointLabels"] == [1, 0]  # a drag is a box, not a click
    np.testing.assert_allclose(clicks["box"], BOX, atol=1)
    assert page.evaluate("window.seen") == [1, 0]

    page.click("#clear-clicks")
    assert page.inner_text("#status") == "Clicks cleared."
    assert page.locator("#results li").count() == 0
    assert page.locator("#clear-clicks").is_disabled()
    assert page.evaluate("window.litetext.clicks()") == {"points": [], "pointLabels": [], "box": None}


def test_the_box_around_a_mask_is_litetexts_mask_boxes(page):
    from litetext.result import mask_boxes

    rng = np.random.default_rng(0)
    masks = np.zeros((4, 30, 45), dtype=bool)
    masks[0, 3:9, 7:20] = rng.random((6, 13)) > 0.5
    masks[1, 29, 44] = True
    masks[3] = rng.random((30, 45)) > 0.99
    got = page.evaluate("""async masks => {
        const { maskBox } = await import("./clicks.js");
        return masks.map(mask => maskBox(Uint8Array.from(mask.flat()), mask[0].length, mask.length));
    }""", masks.astype(int).tolist())
    np.testing.assert_array_equal(got, mask_boxes(masks))
