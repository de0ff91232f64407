"""The launched app (`litetext app --model tiny-random` in a subprocess on 127.0.0.1), driven through the
/segment, /segment_object and /track endpoints with gradio_client and through the page with headless Chromium."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import litetext
from tests.gradio.gradio_helpers import start_app, stop

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "gradio_app.png"
CLICK_SCREENSHOT = SCREENSHOT.with_name("gradio_click.png")
VIDEO_SCREENSHOT = SCREENSHOT.with_name("gradio_video.png")
#: The server tracks at most this many frames of a video (`--max-video-frames`), to keep the tests short.
VIDEO_FRAMES = 4


def shown_count(timings: str) -> int:
    """N of the '... N instances shown of M found' status line."""
    return int(timings.split(" instances shown")[0].split()[-1])


@pytest.fixture(scope="module")
def server(litetext_cache, tmp_path_factory):
    """The app served by the CLI command in a subprocess; yields its URL and stops it afterwards."""
    url, process = start_app(tmp_path_factory.mktemp("server"), litetext_cache, "--max-video-frames",
                             str(VIDEO_FRAMES))
    try:
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


def segment(client, image, prompts, threshold=0.5, mask_threshold=0.5, model="", boxes=""):
    from gradio_client import handle_file

    return client.predict(handle_file(image), prompts, threshold, mask_threshold, model, boxes,
                          api_name="/segment")


def test_the_segment_segment_object_and_track_endpoints_are_named_and_documented(client):
    info = client.view_api(print_info=False, return_format="dict")
    endpoints = {name: [p["label"] for p in endpoint["parameters"]]
                 for name, endpoint in info["named_endpoints"].items()}
    assert endpoints == {"/segment": ["image", "prompts", "threshold", "mask_threshold", "model", "boxes"],
                         "/segment_object": ["image", "points", "box", "model", "multimask"],
                         "/track": ["video", "prompts", "model"]}
    assert not info["unnamed_endpoints"]


def test_gradio_client_gets_masks_back_as_rle(client, cat_photo):
    data = segment(client, cat_photo, "cat, dog", threshold=0.5)
    assert data["prompts"] == ["cat", "dog"] and data["model"] == "tiny-random"
    result = litetext.Result.from_dict(data)
    assert len(result) > 0 and result.masks.shape[1:] == (300, 451)
    assert (result.scores > 0.5).all()
    assert result.areas.tolist() == [inst["area"] for inst in data["instances"]]


def test_a_second_prompt_reuses_the_encoded_image(client, coffee_photo):
    segment(client, coffee_photo, "coffee cup")
    data = segment(client, coffee_photo, "spoon", boxes="+ 100, 100, 300, 300")
    assert data["timings"]["image_cache_hit"] is True
    assert data["prompts"] == ["spoon"]


def test_the_teacher_model_is_callable_by_name(client, cat_photo):
    data = segment(client, cat_photo, "cat", model="tiny-random-sam3")
    assert data["model"] == "tiny-random-sam3"


def test_bad_input_gives_friendly_errors_and_the_server_keeps_serving(client, cat_photo, tmp_path):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="noun phrase"):
        segment(client, cat_photo, " , ")
    garbage = tmp_path / "broken.jpg"
    garbage.write_bytes(b"definitely not a jpeg")
    with pytest.raises(AppError, match="Cannot read"):
        segment(client, str(garbage), "cat")
    with pytest.raises(AppError, match="not offered"):
        segment(client, cat_photo, "cat", model="facebook/sam3-private")
    assert segment(client, cat_photo, "cat")["instances"]  # still serving


def test_the_segment_object_endpoint_answers_clicks_and_boxes_with_rle(client, cat_photo):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    data = client.predict(handle_file(cat_photo), "+ 200, 150; - 60, 40", "", "", False, api_name="/segment_object")
    assert data["model"] == "tiny-random-tracker" and len(data["instances"]) == 1
    engine = litetext.load("tiny-random-tracker", device="cpu")
    expected = engine.segment_object(cat_photo, points=[[200, 150], [60, 40]], point_labels=[1, 0])
    assert (litetext.Result.from_dict(data).masks == expected.masks).all()
    three = client.predict(handle_file(cat_photo), "", "100, 60, 300, 240", "", True, api_name="/segment_object")
    assert len(three["instances"]) == 3
    with pytest.raises(AppError, match="no tracker"):
        client.predict(handle_file(cat_photo), "+ 10, 10", "", "tiny-random", False, api_name="/segment_object")


def test_the_track_endpoint_returns_the_overlay_mp4_the_json_lines_and_the_summary(client, clip, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    from litetext.track_files import read_tracks

    overlay, jsonl, summary = client.predict(handle_file(clip), "square", "", api_name="/track")
    assert summary["model"] == "tiny-random-tracker" and summary["frames"] == VIDEO_FRAMES
    assert [index for index, _ in read_tracks(jsonl)] == list(range(VIDEO_FRAMES))
    assert len(list(litetext.open_video(overlay).frames())) == VIDEO_FRAMES
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"not a video")
    with pytest.raises(AppError, match="broken.mp4: not a readable video"):
        client.predict(handle_file(str(garbage)), "square", "", api_name="/track")
    assert client.predict(handle_file(clip), "square", "", api_name="/track")[2]["frames"] == VIDEO_FRAMES


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_the_page_segments_an_uploaded_photo_in_a_real_browser(server, cat_photo, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server)
            page.wait_for_selector("#segment-btn", timeout=60_000)
            page.locator("#input-image input[type=file]").set_input_files(cat_photo)
            page.wait_for_selector("#input-image img", timeout=30_000)
            page.locator("#prompts textarea").fill("cat, dog")
            page.locator("#segment-btn").click()
            page.wait_for_function(
                "document.querySelector('#timings')?.innerText.includes('instances shown')", timeout=60_000)
            timings = page.locator("#timings").inner_text()
            assert "tiny-random" in timings and "text encoder" in timings
            overlay = page.locator("#overlay img")
            assert overlay.count() >= 2  # the photo and at least one prompt's mask layer
            legend = page.locator("#overlay").inner_text()
            assert "cat (" in legend
            table = page.locator("#instances").inner_text()
            assert "prompt" in table and "score" in table and "cat" in table

            # Raising the score threshold re-filters at once, without a model run.
            slider = page.locator("#score-threshold input[type=number]")
            slider.fill("0.6")
            slider.press("Enter")
            page.wait_for_function(
                "n => +(document.querySelector('#timings').innerText.match(/(\\d+) instances shown/) || [0, n])[1] < n",
                arg=shown_count(timings), timeout=30_000)

            # Selecting a row highlights that instance.
            page.locator("#instances [role=gridcell]").filter(has_text="cat").first.click()
            page.wait_for_function("document.querySelector('#overlay').innerText.includes('selected: #')",
                                   timeout=30_000)
            if os.environ.get("LITETEXT_SCREENSHOTS") == "1":
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)

            # The downloads appear as files.
            page.get_by_text("Download results").click()
            page.get_by_role("button", name="Prepare downloads").click()
            page.wait_for_function("document.querySelector('#downloads')?.innerText.includes('cat_coco')",
                                   timeout=30_000)
            files = page.locator("#downloads").inner_text().replace("\n", "")
            assert all(name in files for name in ("cat_coco.json", "cat_masks.zip", "cat_union_mask.png",
                                                  "cat_overlay.png"))
        finally:
            browser.close()



@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_the_use_via_api_link_in_the_footer_opens_the_segment_endpoint_docs(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server)
            link = page.locator("footer").get_by_text("Use via API")
            link.wait_for(state="visible", timeout=60_000)
            link.click()
            page.get_by_text("/segment").first.wait_for(state="visible", timeout=30_000)
            docs = page.locator(".api-docs").inner_text()
            assert "/segment" in docs and "prompts" in docs
        finally:
            browser.close()


def status_of(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_clicks_on_the_image_segment_and_refine_one_object_in_a_real_browser(server, cat_photo):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(server)
            page.get_by_role("tab", name="Object (clicks)").click()
            page.locator("#object-image input[type=file]").set_input_files(cat_photo)
            page.wait_for_function("document.querySelector('#object-status')?.innerText.includes('Click on the')",
                                   timeout=60_000)
            image = page.locator("#object-image img").first

            def click_at(x: float, y: float, expected: str, redraws: bool = True) -> str:
                """Click at pixel (x, y) of the photo; wait until the status line shows `expected` and, if it
                `redraws`, until the new picture has loaded; return its src. (Gradio draws the image with
                `object-fit: scale-down`: centred, shrunk to fit, never enlarged.)"""
                before = image.get_attribute("src")
                # The status line can change before the browser has decoded the picture it announces.
                page.wait_for_function(
                    "() => { const i = document.querySelector('#object-image img'); "
                    "return i && i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0; }",
                    timeout=30_000)
                box = image.bounding_box()
                width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
                scale = min(box["width"] / width, box["height"] / height, 1)
                image.click(position={"x": (box["width"] - width * scale) / 2 + x * scale,
                                      "y": (box["height"] - height * scale) / 2 + y * scale})
                page.wait_for_function("t => document.querySelector('#object-status').innerText.includes(t)",
                                       arg=expected, timeout=60_000)
                if redraws:
                    page.wait_for_function(
                        "s => { const i = document.querySelector('#object-image img'); "
                        "return i.src !== s && i.complete && i.naturalWidth > 0; }", arg=before, timeout=30_000)
                return image.get_attribute("src")

            def mask_area() -> str:
                return re.search(r"([\d,]+) px", status_of(page, "object-status")).group(1)

            first = click_at(200, 150, "1 include, 0 exclude points")
            assert "predicted IoU" in status_of(page, "object-status")
            first_area = mask_area()
            page.locator("#click-mode").get_by_text("Exclude point").click()
            second = click_at(60, 40, "1 include, 1 exclude points")
            assert second != first and mask_area() != first_area  # the exclude point changed the mask
            page.locator("#click-mode").get_by_text("Box: click two corners").click()
            click_at(100, 60, "click the opposite corner")
            click_at(330, 260, "box 100, 60, 330, 260")
            if os.environ.get("LITETEXT_SCREENSHOTS") == "1":
                page.screenshot(path=str(CLICK_SCREENSHOT), full_page=True)

            page.locator("#undo-btn").click()
            page.wait_for_function("document.querySelector('#object-status').innerText.includes('opposite corner')",
                                   timeout=30_000)

            # A model without a tracker says so in one line, on choosing it and on a click.
            page.locator("#object-model input").click()
            page.get_by_role("option", name="tiny-random", exact=True).click()
            page.wait_for_function("document.querySelector('#object-hint').innerText.includes('no tracker')",
                                   timeout=30_000)
            page.locator("#click-mode").get_by_text("Include point").click()
            click_at(250, 100, "no tracker", redraws=False)
        finally:
            browser.close()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_the_video_tab_tracks_an_upload_and_plays_the_overlay_in_a_real_browser(server, clip):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(server)
            page.get_by_role("tab", name="Video").click()
            page.locator("#video-input input[type=file]").set_input_files(clip)
            page.wait_for_selector("#video-input video", timeout=30_000)
            page.locator("#video-prompts textarea").fill("square")
            page.locator("#track-btn").click()
            page.wait_for_function("document.querySelector('#video-status')?.innerText.includes('frames tracked')",
                                   timeout=120_000)
            assert f"**{VIDEO_FRAMES}**" not in status_of(page, "video-status")  # rendered as bold, not asterisks
            assert f"{VIDEO_FRAMES} frames tracked" in status_of(page, "video-status")
            # The overlay plays: the <video> element's source loads and has the clip's duration.
            duration = page.wait_for_function(
                """() => { const v = document.querySelector('#video-overlay video');
                           return v && v.src && v.readyState >= 1 && v.duration > 0 ? v.duration : null; }""",
                timeout=30_000).json_value()
            assert abs(duration - VIDEO_FRAMES / 8) < 0.2
            assert "square" in status_of(page, "video-objects")
            files = status_of(page, "video-files").replace("\n", "")
            assert all(name in files for name in ("square.overlay.mp4", "square.jsonl", "square.summary.json"))
            if os.environ.get("LITETEXT_SCREENSHOTS") == "1":
                page.screenshot(path=str(VIDEO_SCREENSHOT), full_page=True)
        finally:
            browser.close()
