"""The shared bad-input corpus (tests/bad_inputs.py) through the Gradio app: its functions called directly, and the
/segment endpoint of a launched app through gradio_client. Bad inputs give friendly errors naming the problem,
odd images segment, and the server keeps serving."""

from __future__ import annotations

import math

import gradio as gr
import pytest
from gradio.data_classes import ImageData

import litetext
from litetext_gradio.tabs.api import api_segment
from litetext_gradio.tabs.errors import friendly, friendly_image
from litetext_gradio.tabs.text_prompts import segment
from tests.bad_inputs import BAD_THRESHOLDS, LONG_PROMPT, write_bad_images
from tests.gradio.gradio_helpers import start_app, stop

#: Text prompts a user can type that must be refused (the Textbox always hands the app a str).
BAD_TEXT_PROMPTS = {"empty": "", "blank": "   ", "only separators": " , ,\n"}
#: A str that is not valid UTF-8 (unpaired surrogates, what JSON "\udcff" decodes to).
SURROGATES = "\udcff\udcfe"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_bad_images(tmp_path_factory.mktemp("bad"))


def call_api(config, image, prompts="cat", threshold=0.5, mask_threshold=0.5):
    """The /segment handler as the app wraps it: litetext errors and surprises become gr.Error."""
    return friendly(api_segment)(str(image), prompts, threshold, mask_threshold, "", "", config)


def assert_friendly(error: BaseException, *words: str) -> None:
    text = str(error)
    assert all(word in text for word in words), text
    assert "Traceback" not in text and "Something went wrong" not in text, text


# Direct calls ---------------------------------------------------------------------------------------------


def test_each_bad_image_gives_a_friendly_error_naming_the_problem_and_each_odd_one_segments(config, corpus):
    for case in corpus:
        if case.outcome == "error":
            with pytest.raises(gr.Error) as caught:
                call_api(config, case.path)
            assert_friendly(caught.value, case.message)
            assert str(case.path.parent) not in str(caught.value)  # no server paths
            with pytest.raises(gr.Error) as caught:  # the page's Segment button
                segment(None, str(case.path), "cat", "", config.model, False, 0.5, 0.5, config)
            assert_friendly(caught.value, case.message)
        else:
            data = call_api(config, case.path)
            width, height = litetext.load_image(case.path).size
            assert data["image_size"] == {"width": width, "height": height}, case.name
            assert data["prompts"] == ["cat"]


def test_the_image_input_refuses_each_bad_upload_naming_the_problem(corpus):
    component = friendly_image(type="filepath", render=False)
    for case in corpus:
        payload = ImageData(path=str(case.path), orig_name=case.name)
        if case.outcome == "error":
            try:
                path = component.preprocess(payload)
            except gr.Error as error:
                assert_friendly(error, "Cannot read the uploaded file", case.message)
                assert str(case.path.parent) not in str(error)
            else:  # Gradio opened it lazily (truncated data): the app's own read refuses it
                with pytest.raises(litetext.InvalidImageError, match=case.message):
                    litetext.load_image(path)
        else:
            assert litetext.load_image(component.preprocess(payload)).size[0] >= 1, case.name


@pytest.mark.parametrize("name", list(BAD_TEXT_PROMPTS))
def test_bad_prompts_give_a_friendly_error(config, corpus, name):
    with pytest.raises(gr.Error) as caught:
        call_api(config, corpus[5].path, BAD_TEXT_PROMPTS[name])
    assert_friendly(caught.value, "noun phrase")


def test_a_prompt_that_is_not_utf8_gives_a_friendly_error(config, corpus):
    with pytest.raises(gr.Error) as caught:
        call_api(config, corpus[5].path, SURROGATES)
    assert_friendly(caught.value, "UTF-8")


def test_a_10kb_prompt_is_truncated_and_segments(config, corpus):
    litetext.load(config.model, device=config.device).text_cache.clear()  # the warning comes with the encoding
    with pytest.warns(UserWarning, match="only the first 32"):
        data = call_api(config, corpus[5].path, LONG_PROMPT)
    assert data["prompts"] == [" ".join(LONG_PROMPT.split())]


@pytest.mark.parametrize("threshold", [*BAD_THRESHOLDS, "abc", None])
@pytest.mark.parametrize("which", ["threshold", "mask_threshold"])
def test_bad_thresholds_give_a_friendly_error(config, corpus, threshold, which):
    with pytest.raises(gr.Error) as caught:
        call_api(config, corpus[5].path, **{which: threshold})
    assert_friendly(caught.value, "between 0 and 1")


# The launched app -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(litetext_cache, tmp_path_factory):
    from gradio_client import Client

    url, process = start_app(tmp_path_factory.mktemp("server"), litetext_cache)
    try:
        yield Client(url, verbose=False)
    finally:
        stop(process)


def remote(client, image, prompts="cat", threshold=0.5, mask_threshold=0.5):
    from gradio_client import handle_file

    return client.predict(handle_file(str(image)), prompts, threshold, mask_threshold, "", "", api_name="/segment")


@pytest.mark.slow
def test_the_segment_endpoint_refuses_each_bad_image_and_segments_each_odd_one(client, corpus):
    from gradio_client.exceptions import AppError

    for case in corpus:
        if case.outcome == "error":
            with pytest.raises(AppError) as caught:
                remote(client, case.path)
            assert_friendly(caught.value, case.message)
            assert str(case.path.parent) not in str(caught.value) and "/gradio" not in str(caught.value)
        else:
            data = remote(client, case.path)
            assert data["prompts"] == ["cat"] and data["image_size"]["width"] >= 1, case.name
    assert remote(client, corpus[5].path)["prompts"] == ["cat"]  # still serving


@pytest.mark.slow
def test_the_segment_endpoint_refuses_bad_prompts_and_thresholds_and_keeps_serving(client, corpus):
    from gradio_client.exceptions import AppError

    image = corpus[5].path
    for text in BAD_TEXT_PROMPTS.values():
        with pytest.raises(AppError, match="noun phrase"):
            remote(client, image, text)
    for threshold in BAD_THRESHOLDS:
        if math.isfinite(threshold):  # NaN and inf do not survive JSON; gr.Number sends them as null
            with pytest.raises(AppError, match="between 0 and 1"):
                remote(client, image, threshold=threshold)
            with pytest.raises(AppError, match="between 0 and 1"):
                remote(client, image, mask_threshold=threshold)
    assert remote(client, image, LONG_PROMPT)["prompts"] == [" ".join(LONG_PROMPT.split())]
    data = remote(client, image, "cat, dog")
    assert data["prompts"] == ["cat", "dog"]  # still serving
