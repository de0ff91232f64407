"""`litetext web`: the static site runs the tiny export in Debian's chromium (onnxruntime-web, WebAssembly) and
finds what the Python engines find."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.web.conftest import CHROMIUM

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]
pytest.importorskip("onnxruntime", reason='the export needs pip install "litetext[onnx]"')
pytest.importorskip("playwright", reason="the browser test needs playwright (the test extra)")

PROMPTS = ["cat", "coffee cup"]


@pytest.fixture(scope="module")
def export(onnx_export) -> Path:
    """The session's tiny ONNX export (tests/conftest.py)."""
    return onnx_export


@pytest.fixture(scope="module")
def served(export, photos, tmp_path_factory, serve_folder):
    """The site `litetext web` wrote, beside two damaged copies and some inputs, served by http.server: its
    base URL."""
    from litetext.cli import main

    root = tmp_path_factory.mktemp("web-root")
    site = root / "site"
    assert main(["web", str(export), "--out", str(site)]) == 0
    shutil.copy(photos[1], site / "photo.jpg")
    (site / "notes.jpg").write_text("this is not an image\n")
    Image.new("RGB", (10_000, 10), "gray").save(site / "strip.png")
    missing = Path(shutil.copytree(site, root / "missing"))
    (missing / "model" / "text_encoder.onnx").unlink()
    truncated = Path(shutil.copytree(site, root / "truncated"))
    data = truncated / "model" / "vision_encoder.onnx.data"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    return serve_folder(root, "site/site.json")


@pytest.fixture(scope="module")
def page(browser, served):
    page = browser.new_page()
    page.goto(f"{served}/site/index.html")
    assert page.evaluate("window.litetext.ready.then(r => r.backend)") == "wasm"
    yield page
    page.close()


def segment(page, image, prompts, **options):
    """window.litetext.segment's instances, or {"error": message} when it rejects."""
    return page.evaluate("([image, prompts, options]) => window.litetext.segment(image, prompts, options)"
                         ".catch(error => ({error: error.message}))", [image, prompts, options])


def python_instances(result) -> list[dict]:
    return [{"prompt": result.prompts[p], "score": float(s), "box": [float(v) for v in b], "area": int(m.sum())}
            for p, s, b, m in zip(result.prompt_indices, result.scores, result.boxes, result.masks)]


def assert_same_instances(browser_found: list[dict], python_found: list[dict]) -> None:
    """The same instances in the same order, scores and boxes within 1e-3, areas within 1 % (a pixel for tiny ones)."""
    assert [i["prompt"] for i in browser_found] == [i["prompt"] for i in python_found]
    for ours, theirs in zip(browser_found, python_found):
        assert ours["score"] == pytest.approx(theirs["score"], abs=1e-3)
        np.testing.assert_allclose(ours["box"], theirs["box"], atol=1e-3, rtol=0)
        assert abs(ours["area"] - theirs["area"]) <= max(0.01 * theirs["area"], 1)


def test_the_page_finds_what_the_onnx_and_torch_engines_find(page, export, checkpoints, photos):
    import litetext

    found = segment(page, "photo.jpg", PROMPTS)
    assert "error" not in found, found
    assert found, "random weights should keep some instances at 0.5"
    for engine in (litetext.load(str(export)), litetext.load(str(checkpoints["litetext"]), device="cpu", dtype="fp32")):
        assert_same_instances(found, python_instances(engine.segment(photos[1], PROMPTS)))
    assert page.locator("#results li").count() == len(found)


def test_a_student_models_page_finds_what_the_onnx_engine_finds(browser, site_for, onnx_student_export, photos):
    """EfficientSAM3's trunk (a tiny EfficientViT), the model docs/web.md recommends for a browser."""
    import litetext

    page = browser.new_page()
    try:
        page.goto(site_for(onnx_student_export, photos[1]))
        assert page.evaluate("window.litetext.ready.then(r => r.backend)") == "wasm"
        found = segment(page, "photo.jpg", PROMPTS)
        assert "error" not in found, found
        assert found, "random weights should keep some instances at 0.5"
        expected = litetext.load(str(onnx_student_export)).segment(photos[1], PROMPTS)
        assert_same_instances(found, python_instances(expected))
    finally:
        page.close()


def test_a_new_prompt_reuses_the_encoded_image_and_the_slider_refilters(page, export, photos):
    import litetext

    assert "error" not in segment(page, "photo.jpg", PROMPTS)
    found = segment(page, "photo.jpg", ["person", "cat"], threshold=0.4)
    assert "Image already encoded" in page.inner_text("#status")
    timings = page.evaluate("window.litetext.timings()")
    assert timings["imageCacheHit"] is True and timings["promptsMs"] > 0 and timings["backend"] == "wasm"
    expected = litetext.load(str(export)).segment(photos[1], ["person", "cat"], threshold=0.4)
    assert_same_instances(found, python_instances(expected))

    page.locator("#threshold").fill("0.55")
    assert "(no model run)" in page.inner_text("#status")
    kept = [i for i in found if i["score"] > 0.55]
    assert page.locator("#results li").count() == max(len(kept), 1)
    assert page.evaluate("window.litetext.refilter(0.55)") == kept


@pytest.mark.parametrize("image, prompts, message", [
    ("notes.jpg", ["cat"], "not an image the browser can decode"),
    ("missing.jpg", ["cat"], "HTTP 404"),
    ("photo.jpg", [""], "a prompt is empty or blank"),
    ("photo.jpg", [], "no prompt given"),
    ("strip.png", ["cat"], "10000x10 pixels"),
    (42, ["cat"], "takes an image URL"),
])
def test_a_bad_input_shows_a_message_and_the_page_keeps_working(page, image, prompts, message):
    assert message in segment(page, image, prompts)["error"]
    assert message in page.inner_text("#message")
    assert "error" not in segment(page, "photo.jpg", ["cat"])
    assert page.inner_text("#message") == ""


def clip_style_tokenizer():
    """A small byte-level BPE tokenizer built as CLIP's is (normalizers, regex split, "</w>", RobertaProcessing)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    start, end = "<|startoftext|>", "<|endoftext|>"
    tokenizer = Tokenizer(models.BPE(unk_token=end, end_of_word_suffix="</w>", continuing_subword_prefix=""))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                                 normalizers.Lowercase()])
    split = Regex(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+")
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(split, behavior="removed", invert=True),
                                                       byte_level])
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=[start, end],
                                  end_of_word_suffix="</w>", initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(["a yellow school bus near the red car", "the cat's coffee cup on a table",
                                   "astronaut with a rocket 1969", "Über café naïve façade"] * 20, trainer)
    tokenizer.post_processor = processors.RobertaProcessing((end, tokenizer.token_to_id(end)),
                                                            (start, tokenizer.token_to_id(start)))
    return tokenizer


def test_the_page_tokenizes_clip_style_bpe_as_hugging_face_tokenizers(page):
    from transformers import PreTrainedTokenizerFast

    tokenizer = clip_style_tokenizer()
    texts = ["yellow school bus", "  The   Cat's  COFFEE cup!!", "Über café 1969 rocket", "unseen zzz qq", "a " * 40,
             "dog<|endoftext|>cat", "emoji \U0001f680 rocket"]
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<|endoftext|>")
    expected = fast(texts, padding="max_length", max_length=32, truncation=True)["input_ids"]
    got = page.evaluate("""async ([json, texts]) => {
        const { Tokenizer } = await import("./tokenizer.js");
        const tokenizer = new Tokenizer(JSON.parse(json), { pad_token: "<|endoftext|>" });
        const { inputIds } = tokenizer.encodeBatch(texts, 32);
        return texts.map((_, row) => Array.from(inputIds.slice(row * 32, row * 32 + 32), Number));
    }""", [tokenizer.to_str(), texts])
    assert got == expected


def test_segment_object_on_an_export_without_a_tracker_says_so(page):
    error = page.evaluate("window.litetext.segmentObject('photo.jpg', {points: [[5, 5]]}).catch(e => e.message)")
    assert "this export has no tracker" in error and "litetext models assemble" in error
    assert "this export has no tracker" in page.inner_text("#message")
    assert page.evaluate("window.litetext.ready.then(r => r.tracker)") is False


@pytest.mark.parametrize("copy, message", [
    ("missing", "text_encoder.onnx is missing"),
    ("truncated", "half-downloaded or half-copied"),
])
def test_a_missing_or_half_downloaded_model_file_is_named_on_the_page(browser, served, copy, message):
    page = browser.new_page()
    try:
        page.goto(f"{served}/{copy}/index.html")
        error = page.evaluate("window.litetext.ready.then(() => 'loaded', e => e.message)")
        assert message in error
        assert message in page.inner_text("#message")
        assert message in segment(page, "photo.jpg", ["cat"])["error"]
    finally:
        page.close()


def test_the_site_is_a_static_space_and_refuses_to_overwrite_other_folders(served, export, tmp_path):
    import yaml

    from litetext.cli import main

    readme = urllib.request.urlopen(f"{served}/site/README.md").read().decode()
    front_matter = yaml.safe_load(readme.split("---")[1])
    assert front_matter["sdk"] == "static" and front_matter["app_file"] == "index.html"
    assert front_matter["custom_headers"]["cross-origin-embedder-policy"] == "require-corp"
    config = json.loads(urllib.request.urlopen(f"{served}/site/site.json").read())
    assert config["model"] == "model/"
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["web", str(export), "--out", str(other)]) == 2
    assert (other / "keep.txt").read_text() == "mine"
    remote = tmp_path / "remote"
    assert main(["web", str(export), "--out", str(remote), "--model-url", "https://example.org/export"]) == 0
    assert json.loads((remote / "site.json").read_text())["model"] == "https://example.org/export/"
    assert not (remote / "model").exists()
    assert main(["web", str(export), "--out", str(remote)]) == 2  # a site is there: --force replaces it
    assert main(["web", str(export), "--out", str(remote), "--force"]) == 0


def test_a_site_leaves_its_export_usable_for_quantizing(served, onnx_export, tmp_path):
    """The site copies the export's files: ONNX refuses external data with several hard links."""
    from litetext.onnx import quantize_export

    quantize_export(onnx_export, tmp_path / "int8")
    assert not list(onnx_export.glob("*-inferred.onnx"))
