"""The page on WebGPU: Debian's chromium with its software WebGPU adapter (SwiftShader) runs the tiny export's text
prompts and clicks through onnxruntime-web's WebGPU kernels, and finds what the Python engines find. A kernel the
browser cannot compile is an error naming WebGPU, never a silent wrong result."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.web.test_web import PROMPTS, assert_same_instances, python_instances, segment
from tests.web.test_web_clicks import BOX, CLICK, assert_same_object, python_objects, segment_object

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]
pytest.importorskip("onnxruntime", reason='the export needs pip install "litetext[onnx]"')
pytest.importorskip("playwright", reason="the browser test needs playwright (the test extra)")

#: WebGPU on, with whatever adapter chromium has: here SwiftShader's, on the CPU.
WEBGPU_ARGS = [arg for arg in CHROMIUM_ARGS if arg != "--disable-gpu"] + ["--enable-unsafe-webgpu"]


@pytest.fixture(scope="module")
def webgpu_browser(playwright, site_for, tracker_export, cat):
    """Chromium with WebGPU on; skips where it offers no adapter."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=WEBGPU_ARGS)
    try:
        page = browser.new_page()
        page.goto(site_for(tracker_export, cat))  # a secure context (localhost), where navigator.gpu exists
        if not page.evaluate("navigator.gpu ? navigator.gpu.requestAdapter().then(a => a !== null) : false"):
            pytest.skip("this chromium offers no WebGPU adapter")
        page.close()
        yield browser
    finally:
        browser.close()


def open_on_webgpu(browser, url: str, tracker: bool):
    page = browser.new_page()
    page.goto(f"{url}?backend=webgpu")
    assert page.evaluate("window.litetext.ready.then(r => [r.backend, r.tracker])") == ["webgpu", tracker]
    return page


@pytest.fixture(scope="module")
def page(webgpu_browser, site_for, tracker_export, cat):
    page = open_on_webgpu(webgpu_browser, site_for(tracker_export, cat), tracker=True)
    yield page
    page.close()


@pytest.fixture(scope="module")
def tracker_export(onnx_tracker_export) -> Path:
    return onnx_tracker_export


@pytest.fixture(scope="module")
def cat(photos) -> Path:
    return next(p for p in photos if p.stem == "cat")


@pytest.fixture(scope="module")
def engine(tracker_export):
    import litetext

    return litetext.load(str(tracker_export))


def test_text_prompts_on_webgpu_find_what_the_onnx_engine_finds(page, engine, cat):
    found = segment(page, "photo.jpg", PROMPTS)
    assert "error" not in found, found
    assert found, "random weights should keep some instances at 0.5"
    assert_same_instances(found, python_instances(engine.segment(cat, PROMPTS)))


@pytest.mark.parametrize("prompt", [CLICK, {"box": BOX, "multimask": True}], ids=["one click", "box, three candidates"])
def test_clicks_on_webgpu_find_what_the_onnx_engine_finds(page, engine, cat, prompt):
    found = segment_object(page, prompt)  # one click: the single-mask graph, whose mask choice gathers rank-4 tensors
    assert not (isinstance(found, dict) and "error" in found), found
    expected = python_objects(engine.segment_object(cat, **prompt))
    for ours, theirs in zip(found if prompt.get("multimask") else [found], expected, strict=True):
        # The tiny tracker's mask logits all lie within 0.01 of the threshold (92 % within 0.001), so its mask areas
        # count pixels that float rounding decides, and WebGPU's arithmetic differs from the CPU's more than
        # WebAssembly's does (measured: 1.3 % of the one-click mask, 3.0 % of a box candidate). Scores (the
        # predicted IoU) and boxes keep WebAssembly's bounds; areas get 5 %.
        assert_same_object({**ours, "area": theirs["area"]}, theirs)
        assert abs(ours["area"] - theirs["area"]) <= 0.05 * theirs["area"]


def test_a_webgpu_error_during_a_run_is_an_error_naming_webgpu_and_the_page_keeps_working(page):
    # A shader the browser refuses, compiled during a run (the first graph the call runs): what a kernel
    # onnxruntime-web cannot build does.
    message = page.evaluate("""async () => {
        const api = await import('./litetext.js');
        const run = api.ort.InferenceSession.prototype.run;
        api.ort.InferenceSession.prototype.run = async function (...args) {
            api.ort.env.webgpu.device.createShaderModule({code: 'not wgsl'});
            return run.apply(this, args);
        };
        try {
            return await window.litetext.segment('photo.jpg', ['a new prompt']).then(() => null, e => e.message);
        } finally {
            api.ort.InferenceSession.prototype.run = run;
        }
    }""")
    assert re.search(r"WebGPU failed running the \w+ graph in this browser \(.+\)", message or ""), message
    assert "reload the page with ?backend=wasm" in message
    assert "error" not in segment(page, "photo.jpg", ["cat"])


def test_a_student_model_on_webgpu_finds_what_the_onnx_engine_finds(webgpu_browser, site_for, onnx_student_export,
                                                                    cat):
    """EfficientSAM3's trunk (a tiny EfficientViT) is what docs/web.md recommends for a browser."""
    import litetext

    page = open_on_webgpu(webgpu_browser, site_for(onnx_student_export, cat), tracker=False)
    try:
        found = segment(page, "photo.jpg", PROMPTS)
        assert "error" not in found, found
        assert found, "random weights should keep some instances at 0.5"
        assert_same_instances(found, python_instances(litetext.load(str(onnx_student_export)).segment(cat, PROMPTS)))
    finally:
        page.close()
