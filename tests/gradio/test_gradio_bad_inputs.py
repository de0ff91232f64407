"""The shared bad-input corpus (tests/bad_inputs.py) through the Gradio app: its functions called directly, and the
/segment and /segment_object endpoints of a launched app through gradio_client. Bad inputs (images, prompts,
thresholds, exemplar boxes, clicks and boxes on one object, the video frame limit) give friendly errors naming the
problem, odd images segment, and the server keeps serving."""

from __future__ import annotations

import math

import gradio as gr
import pytest
from gradio.data_classes import ImageData

import litetext
from litetext_gradio import app, cli
from litetext_gradio.tabs.api import api_segment, api_segment_object
from litetext_gradio.tabs.errors import friendly, friendly_image
from litetext_gradio.tabs.object_clicks import click_object
from litetext_gradio.tabs.state import ObjectSession
from litetext_gradio.tabs.text_prompts import segment
from tests.bad_inputs import BAD_EXEMPLAR_BOXES, BAD_OBJECT_PROMPTS, BAD_THRESHOLDS, LONG_PROMPT, write_bad_images
from tests.gradio.gradio_helpers import start_app, stop

#: Text prompts a user can type that must be refused (the Textbox always hands the app a str).
BAD_TEXT_PROMPTS = {"empty": "", "blank": "   ", "only separators": " , ,\n"}
#: A str that is not valid UTF-8 (unpaired surrogates, what JSON "\udcff" decodes to).
SURROGATES = "\udcff\udcfe"
#: The corpus's object prompts as /segment_object takes them (points and a box typed as text, a label as a + or -
#: sign), with the words the error must contain: None for the corpus's own (the engine's, or the app's parser's
#: where they agree), else the parser's. Labels other than a sign, a mask and an instance cannot be typed.
TYPED_OBJECT_PROMPTS = {
    "point outside the image": ("+ 10000, 5", "", None),
    "NaN point": ("nan, 3", "", None),
    "inverted box": ("", "50, 50, 10, 10", None),
    "box outside": ("", "0, 0, 10000, 10", None),
    "box as text": ("", "1234", None),
    "malformed point": ("10", "", None),
    "points as text": ("12", "", "two numbers"),
    "a point as text": ("twelve", "", "two numbers"),
    "coordinates as text": ("x, y", "", "two numbers"),
    "label other than 0/1": ("2 10, 5", "", "two numbers"),  # what is not a sign is a third number
    "box of text": ("", "1_0, 2, 30, 40", "four numbers"),  # float() would read 1_0 as 10
    "empty prompt": ("", "", "at least one point"),
    "no points at all": (" ; ", "", "at least one point"),
}
#: The corpus's exemplar boxes as the Text tab's box field and /segment take them (a label as a + or - sign), and
#: boxes the engine refuses, with the words the error must contain.
TYPED_EXEMPLAR_BOXES = {
    "boxes as text": ("1234", "four numbers"),
    "box label as text": ("yes 1, 1, 20, 20", "four numbers"),
    "infinite box label": ("inf 1, 1, 20, 20", "four numbers"),  # a label is a sign: a fifth number is refused
    "NaN box": ("nan, 1, 20, 20", "NaN"),
    "inverted box": ("- 50, 50, 10, 10", "inverted"),
    "box outside": ("1, 1, 20000, 20", "outside"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_bad_images(tmp_path_factory.mktemp("bad"))


def call_api(config, image, prompts="cat", threshold=0.5, mask_threshold=0.5, boxes=""):
    """The /segment handler as the app wraps it: litetext errors and surprises become gr.Error."""
    return friendly(api_segment)(str(image), prompts, threshold, mask_threshold, "", boxes, config)


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


def test_each_typed_prompt_or_box_covers_a_corpus_case():
    assert set(TYPED_OBJECT_PROMPTS) <= set(BAD_OBJECT_PROMPTS)
    assert set(BAD_EXEMPLAR_BOXES) - {"a box as text"} <= set(TYPED_EXEMPLAR_BOXES)  # as text, every box is text


@pytest.mark.parametrize("name", list(TYPED_OBJECT_PROMPTS))
def test_each_bad_object_prompt_gives_a_friendly_error_naming_the_problem(config, cat_photo, name):
    points, box, words = TYPED_OBJECT_PROMPTS[name]
    with pytest.raises(gr.Error) as caught:
        friendly(api_segment_object)(cat_photo, points, box, "", False, config)
    assert_friendly(caught.value, words or BAD_OBJECT_PROMPTS[name][2])


@pytest.mark.parametrize("multimask", ["false", 0, [True]])
def test_a_multimask_that_is_not_true_or_false_is_refused_not_read_as_true(config, cat_photo, multimask):
    with pytest.raises(gr.Error) as caught:
        friendly(api_segment_object)(cat_photo, "+ 10, 5", "", "", multimask, config)
    assert_friendly(caught.value, "multimask must be true or false")
    assert len(api_segment_object(cat_photo, "+ 10, 5", "", "", None, config)["instances"]) == 1


@pytest.mark.parametrize(("x", "y", "mode", "words"), [
    (10_000, 5, "include", "outside"),
    (math.nan, 5, "exclude", "NaN"),
    (10, 5, "lasso", "Unknown click mode"),
])
def test_a_bad_click_on_the_object_tab_gives_a_friendly_error_and_keeps_the_session(config, cat_photo, x, y, mode,
                                                                                    words):
    session = ObjectSession(litetext.load_image(cat_photo), "cat.jpg")
    with pytest.raises(gr.Error) as caught:
        friendly(click_object)(session, x, y, mode, config.object_model, config)
    assert_friendly(caught.value, words)
    assert session.steps == []  # the click is not kept: the next one starts afresh


def test_a_box_corner_outside_the_image_gives_a_friendly_error(config, cat_photo):
    half = click_object(ObjectSession(litetext.load_image(cat_photo), "cat.jpg"), 10, 10, "box",
                        config.object_model, config)
    with pytest.raises(gr.Error) as caught:
        friendly(click_object)(half, 10_000, 50, "box", config.object_model, config)
    assert_friendly(caught.value, "outside")


@pytest.mark.parametrize("name", list(TYPED_EXEMPLAR_BOXES))
def test_bad_exemplar_boxes_give_a_friendly_error_on_the_text_tab_and_the_api(config, cat_photo, name):
    boxes, words = TYPED_EXEMPLAR_BOXES[name]
    with pytest.raises(gr.Error) as caught:
        call_api(config, cat_photo, boxes=boxes)
    assert_friendly(caught.value, words)
    with pytest.raises(gr.Error) as caught:
        friendly(segment)(None, cat_photo, "cat", boxes, config.model, False, 0.5, 0.5, config)
    assert_friendly(caught.value, words)


@pytest.mark.parametrize("frames", [0, -1, 2.5, True, "3"])
def test_a_video_frame_limit_that_is_not_a_positive_whole_number_is_refused_at_start_up(tmp_path, capsys, frames):
    with pytest.raises(litetext.InputError, match=f"max_video_frames must be a whole number >= 1, not {frames!r}"):
        app.AppConfig(model="tiny-random", device="cpu", max_video_frames=frames, work_dir=str(tmp_path))
    if isinstance(frames, int) and not isinstance(frames, bool):  # what --max-video-frames can be given
        assert cli.main(["--model", "tiny-random", "--device", "cpu", "--no-preload",
                         "--max-video-frames", str(frames)]) == 2
        assert "litetext: error: max_video_frames must be a whole number >= 1" in capsys.readouterr().err


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


@pytest.mark.slow
def test_the_segment_object_endpoint_refuses_bad_clicks_and_boxes_and_keeps_serving(client, cat_photo):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    def remote_object(points, box="", multimask=False):
        return client.predict(handle_file(cat_photo), points, box, "", multimask, api_name="/segment_object")

    for name in ("point outside the image", "points as text", "box of text", "inverted box"):
        points, box, words = TYPED_OBJECT_PROMPTS[name]
        with pytest.raises(AppError, match=words or BAD_OBJECT_PROMPTS[name][2]):
            remote_object(points, box)
    with pytest.raises(AppError, match="multimask must be true or false"):
        remote_object("+ 10, 5", multimask="false")
    assert len(remote_object("+ 10, 5")["instances"]) == 1  # still serving
