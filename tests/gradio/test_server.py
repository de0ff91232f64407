"""The launched app (`litetext app --model tiny-random` in a subprocess on 127.0.0.1), driven through the
/segment endpoint with gradio_client and through the page with headless Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import litetext
from tests.gradio.gradio_helpers import start_app, stop

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "gradio_app.png"


def shown_count(timings: str) -> int:
    """N of the '... N instances shown of M found' status line."""
    return int(timings.split(" instances shown")[0].split()[-1])


@pytest.fixture(scope="module")
def server(litetext_cache, tmp_path_factory):
    """The app served by the CLI command in a subprocess; yields its URL and stops it afterwards."""
    url, process = start_app(tmp_path_factory.mktemp("server"), litetext_cache)
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


def test_the_segment_endpoint_is_named_and_documented(client):
    info = client.view_api(print_info=False, return_format="dict")
    endpoint = info["named_endpoints"]["/segment"]
    assert [p["label"] for p in endpoint["parameters"]] == [
        "image", "prompts", "threshold", "mask_threshold", "model", "boxes"]
    assert len(info["named_endpoints"]) == 1 and not info["unnamed_endpoints"]


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
