"""The Object (clicks) tab: one object from include and exclude clicks or a box, each click refining its mask."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

import litetext

from .config import AppConfig, check_offered, load_engine
from .errors import friendly, friendly_image
from .parsing import read_image
from .rendering import model_hint, no_tracker_hint, object_status, object_view
from .state import Clicks, ObjectSession, ObjectStep, Session

#: What a click on the Object tab's image adds: an include point, an exclude point, or a corner of a box.
CLICK_MODES = [("Include point (+)", "include"), ("Exclude point (−)", "exclude"), ("Box: click two corners", "box")]


def segment_clicks(model: str, image: Image.Image, clicks: Clicks, mask_input: np.ndarray | None,
                   seed: litetext.Instance | None, multimask: bool, config: AppConfig) -> litetext.Result:
    """One object's mask from clicks, a box, earlier mask logits and/or a seed instance (`segment_object`)."""
    return load_engine(model, config).segment_object(
        image, points=clicks.points or None, point_labels=clicks.point_labels or None, box=clicks.box,
        mask_input=mask_input, instance=seed, multimask=multimask, label=seed.prompt if seed else "object")


#: `segment_clicks`, or the app's ZeroGPU call of it (`app.run_object_model`).
RunObjectModel = Callable[..., litetext.Result]


def answer_clicks(session: ObjectSession, clicks: Clicks, model: str, config: AppConfig,
                  run_object_model: RunObjectModel = segment_clicks) -> ObjectSession:
    """The session with one more step: `clicks` answered by `model`, refining its latest mask (whose low-resolution
    logits are the mask input) or the session's text-found instance. Half a box runs no model."""
    check_offered(model, config)
    if clicks.corner is not None:  # the model waits for the box's second corner
        return replace(session, steps=[*session.steps, ObjectStep(clicks, model, None)])
    last = session.last
    mask_input = None
    if last is not None and last.model == model and last.result.mask_logits is not None:
        mask_input = last.result.mask_logits[0]
    result = run_object_model(model, session.image, clicks, mask_input, session.seed, False, config)
    return replace(session, steps=[*session.steps, ObjectStep(clicks, model, result)])


def click_object(session: ObjectSession | None, x: float, y: float, mode: str, model: str, config: AppConfig,
                 run_object_model: RunObjectModel = segment_clicks) -> ObjectSession:
    """Add one click at pixel (x, y) in `mode` ("include", "exclude", "box") and answer it."""
    if session is None:
        raise gr.Error("Upload an image (or send an instance from the Text tab) first.")
    return answer_clicks(session, session.clicks.add(float(x), float(y), mode), model, config, run_object_model)


def undo_click(session: ObjectSession | None) -> ObjectSession | None:
    """The session without its last click."""
    return session if session is None else replace(session, steps=session.steps[:-1])


def refine_instance(text_session: Session | None, model: str, config: AppConfig,
                    run_object_model: RunObjectModel = segment_clicks) -> ObjectSession:
    """An Object-tab session refining the instance selected in the Text tab: its box and mask logits seed the
    first answer (`segment_object(instance=...)`); clicks then refine it."""
    shown = text_session.shown() if text_session is not None else None
    if shown is None or text_session.selected is None or text_session.selected >= len(shown):
        raise gr.Error("Select an instance in the table first.")
    session = ObjectSession(text_session.image, text_session.image_name, seed=shown[text_session.selected])
    return answer_clicks(session, Clicks(), model, config, run_object_model)


def build_tab(config: AppConfig, tabs: gr.Tabs, text_state: gr.State, refine_button: gr.Button,
              run_object_model: RunObjectModel) -> None:
    """Lay out the Object tab (inside `tabs`) and wire its events, with the Text tab's refine button (its session in
    `text_state`) sending the selected instance here; `run_object_model` runs the model."""
    with gr.Tab("Object (clicks)", id="object"):
        object_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                object_image = friendly_image(label="Click on the object", type="filepath", format="png",
                                              sources=["upload", "clipboard"], elem_id="object-image", height=480)
                object_status_out = gr.Markdown(object_status(None), elem_id="object-status")
            with gr.Column(scale=2):
                click_mode = gr.Radio(CLICK_MODES, value="include", label="A click adds", elem_id="click-mode")
                object_model = gr.Dropdown(config.models, value=config.object_model, label="Model",
                                           info="needs SAM3's tracker", elem_id="object-model")
                object_hint = gr.Markdown(model_hint(config.object_model, config), elem_id="object-hint")
                with gr.Row():
                    undo_btn = gr.Button("Undo last click", size="sm", elem_id="undo-btn")
                    clear_btn = gr.Button("Clear clicks", size="sm", elem_id="clear-btn")

    object_outputs = [object_state, object_image, object_status_out]

    @friendly
    def on_object_upload(image):
        if not image:
            return None, *object_view(None)
        session = ObjectSession(read_image(image, config), Path(image).name)
        return session, *object_view(session)

    @friendly
    def on_object_click(session, mode, model, evt: gr.SelectData):
        if session is None or evt.index is None:
            return gr.skip(), gr.skip(), gr.skip()
        x, y = evt.index[:2]
        try:
            session = click_object(session, x, y, mode, model, config, run_object_model)
        except litetext.NoTrackerError as error:  # one line under the image, not an error popup
            return gr.skip(), gr.skip(), no_tracker_hint(model, config, error)
        return session, *object_view(session)

    @friendly
    def on_undo(session):
        return undo_click(session), *object_view(undo_click(session))

    @friendly
    def on_clear(session):
        cleared = None if session is None else ObjectSession(session.image, session.image_name)
        return cleared, *object_view(cleared)

    @friendly
    def on_object_model(model):
        return model_hint(model, config)

    @friendly
    def on_refine(session, model):
        try:
            refined = refine_instance(session, model, config, run_object_model)
        except litetext.NoTrackerError as error:
            return gr.skip(), gr.skip(), no_tracker_hint(model, config, error), gr.Tabs(selected="object")
        return refined, *object_view(refined), gr.Tabs(selected="object")

    refine_button.click(on_refine, [text_state, object_model], [*object_outputs, tabs], api_visibility="private",
                        **config.model_events)
    object_image.upload(on_object_upload, [object_image], object_outputs, api_visibility="private")
    object_image.clear(on_object_upload, [object_image], object_outputs, api_visibility="private")
    object_image.select(on_object_click, [object_state, click_mode, object_model], object_outputs,
                        api_visibility="private", show_progress="minimal", trigger_mode="always_last",
                        **config.model_events)
    undo_btn.click(on_undo, [object_state], object_outputs, api_visibility="private")
    clear_btn.click(on_clear, [object_state], object_outputs, api_visibility="private")
    object_model.change(on_object_model, [object_model], object_hint, api_visibility="private")
