"""The Text prompts tab: every instance of each noun phrase, re-filtered without the model, beside the teacher's."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import gradio as gr
from PIL import Image

import litetext

from .config import AppConfig, check_offered, load_engine
from .errors import friendly, friendly_image
from .parsing import format_box, parse_boxes, parse_prompts, read_image
from .rendering import TABLE_HEADERS, export_results, render, session_dir
from .state import Run, Session

#: Example photos shipped with scikit-image (`skimage.data`), with prompts that suit them.
EXAMPLES = (
    ("chelsea", "cat.jpg", "cat"),
    ("coffee", "coffee.jpg", "coffee cup, spoon"),
    ("astronaut", "astronaut.jpg", "person, flag"),
    ("rocket", "rocket.jpg", "rocket, smoke"),
)


def segment_image(model: str, image: Image.Image, prompts: list[str], boxes: list[list[float]],
                  box_labels: list[int], mask_threshold: float,
                  config: AppConfig) -> tuple[litetext.Result, float, str]:
    """Segment at the config's low run threshold; returns the result, text-encoder size (M) and device."""
    engine = load_engine(model, config)
    result = engine.segment(image, prompts, boxes=boxes or None, box_labels=box_labels or None,
                            threshold=config.run_threshold, mask_threshold=mask_threshold,
                            max_instances=config.max_instances, keep_mask_logits=True)
    return result, engine.info.text_encoder_params_m, engine.info.device


#: `segment_image`, or the app's ZeroGPU call of it (`app.run_model`).
RunModel = Callable[..., tuple[litetext.Result, float, str]]


def make_run(model: str, image: Image.Image, prompts: list[str], boxes, box_labels, mask_threshold: float,
             config: AppConfig, run_model: RunModel = segment_image) -> Run:
    """Run one model and keep its full (low-threshold) result."""
    check_offered(model, config)
    result, params, device = run_model(model, image, prompts, boxes, box_labels, mask_threshold, config)
    return Run(model, prompts, boxes, box_labels, mask_threshold, result, params, device)


def segment(session: Session | None, image_path: str | None, prompts_text: str, boxes_text: str, model: str,
            compare: bool, score_threshold: float, mask_threshold: float, config: AppConfig,
            run_model: RunModel = segment_image) -> Session:
    """Run the chosen model (and, in side-by-side mode, the teacher) and return the new session state."""
    prompts = parse_prompts(prompts_text)
    boxes, labels = parse_boxes(boxes_text)
    image = read_image(image_path, config)
    session = Session(image=image, image_name=Path(image_path).name, score_threshold=score_threshold)
    session.student = make_run(model or config.model, image, prompts, boxes, labels, mask_threshold, config,
                               run_model)
    if compare:
        session.teacher = teacher_run(session, config, run_model)
    return session


def teacher_run(session: Session, config: AppConfig, run_model: RunModel = segment_image) -> Run | None:
    """The teacher on the student's inputs; a teacher that cannot load is reported, not raised."""
    student = session.student
    if student is None or config.teacher is None:
        return None
    try:
        return make_run(config.teacher, session.image, student.prompts, student.boxes, student.box_labels,
                        student.mask_threshold, config, run_model)
    except (litetext.ModelError, gr.Error) as error:
        empty = litetext.Result.empty(student.prompts, student.result.image_size)
        return Run(config.teacher, student.prompts, student.boxes, student.box_labels, student.mask_threshold,
                   empty, 0.0, "-", error=str(error))


def rethreshold_masks(session: Session | None, mask_threshold: float, config: AppConfig) -> Session | None:
    """Re-binarise the kept instances' masks at a new threshold, from their kept logits: no model runs."""
    if session is None or session.student is None:
        return session
    runs = {}
    for name in ("student", "teacher"):
        run: Run | None = getattr(session, name)
        if run is not None and not run.error and run.mask_threshold != mask_threshold:
            runs[name] = replace(run, result=run.result.with_mask_threshold(mask_threshold),
                                 mask_threshold=mask_threshold)
    return replace(session, **runs)


def example_images(folder: str | os.PathLike) -> list[list[str]]:
    """`[path, prompts]` rows for gr.Examples: scikit-image's bundled photos, written once into `folder`."""
    folder = Path(folder)
    rows = []
    try:
        import skimage.data
    except ImportError:  # fall back to the repository's downscaled copies of the same photos
        repo_examples = Path(__file__).resolve().parents[2] / "examples" / "images"
        return [[str(repo_examples / name), prompts] for _, name, prompts in EXAMPLES
                if (repo_examples / name).is_file()]
    folder.mkdir(parents=True, exist_ok=True)
    for function, name, prompts in EXAMPLES:
        path = folder / name
        if not path.is_file():
            Image.fromarray(getattr(skimage.data, function)()).convert("RGB").save(path, quality=92)
        rows.append([str(path), prompts])
    return rows


@dataclass
class TextTab:
    """The Text tab's components the Object tab wires to: its session state and its refine button."""

    state: gr.State
    refine_button: gr.Button


def build_tab(config: AppConfig, run_model: RunModel) -> TextTab:
    """Lay out the Text prompts tab (inside `gr.Tabs`) and wire its events; `run_model` runs the model."""
    with gr.Tab("Text prompts", id="text"):
        state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=2):
                image_in = friendly_image(label="Image", type="filepath", sources=["upload", "clipboard"],
                                          elem_id="input-image", height=360)
                prompts_in = gr.Textbox(label="Prompts (comma-separated noun phrases)", value="cat",
                                        placeholder="e.g. cat, coffee cup, person", elem_id="prompts", lines=1)
                with gr.Row():
                    model_in = gr.Dropdown(config.models, value=config.model, label="Model", scale=2)
                    compare_in = gr.Checkbox(label=f"Side by side with {config.teacher}", value=False, scale=1,
                                             visible=config.teacher is not None)
                segment_btn = gr.Button("Segment", variant="primary", elem_id="segment-btn")
                score_in = gr.Slider(0.05, 0.95, value=0.5, step=0.01, label="Score threshold (instant, no model)",
                                     elem_id="score-threshold")
                mask_in = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="Mask threshold (instant, no model)")
                with gr.Accordion("Exemplar boxes (optional)", open=False):
                    boxes_in = gr.Textbox(label="Boxes, one per line: [+|-] x1, y1, x2, y2 (pixels)", lines=3,
                                          placeholder="+ 40, 30, 200, 260\n- 300, 10, 420, 120", elem_id="boxes")
                    with gr.Row():
                        add_pos = gr.Button("Add selected instance as +", size="sm")
                        add_neg = gr.Button("Add selected instance as −", size="sm")
                gr.Examples(example_images(Path(config.work_dir) / "examples"), inputs=[image_in, prompts_in],
                            label="Example photos (scikit-image)")
            with gr.Column(scale=3):
                overlay_out = gr.AnnotatedImage(label="Instances", elem_id="overlay", height=480)
                timings_out = gr.Markdown(elem_id="timings")
                table_out = gr.Dataframe(headers=TABLE_HEADERS, label="Instances (select a row to highlight it)",
                                         interactive=False, elem_id="instances", max_height=320)
                refine_btn = gr.Button("Refine the selected instance with clicks (Object tab)", size="sm",
                                       elem_id="refine-btn")
                with gr.Column(visible=False) as compare_col:
                    teacher_out = gr.AnnotatedImage(label=f"Teacher: {config.teacher}", elem_id="teacher-overlay",
                                                    height=480)
                    comparison_out = gr.Markdown(elem_id="comparison")
                with gr.Accordion("Download results", open=False):
                    export_btn = gr.Button("Prepare downloads (COCO JSON, mask PNGs, union mask, overlay)", size="sm")
                    files_out = gr.File(label="Files", file_count="multiple", interactive=False, elem_id="downloads")

    view = [overlay_out, table_out, timings_out, teacher_out, comparison_out, compare_col]

    @friendly
    def on_segment(session, image, prompts, boxes, model, compare, score, mask):
        new = segment(session, image, prompts, boxes, model, compare, score, mask, config, run_model)
        return new, *render(new)

    @friendly
    def on_score(session, score):
        if session is None:
            return gr.skip(), *(gr.skip() for _ in view)
        session = replace(session, score_threshold=score, selected=None)
        return session, *render(session)

    @friendly
    def on_mask(session, mask):
        if session is None:
            return gr.skip(), *(gr.skip() for _ in view)
        session = rethreshold_masks(session, mask, config)
        return session, *render(session)

    @friendly
    def on_select(session, evt: gr.SelectData):
        if session is None or session.student is None:
            return gr.skip(), *(gr.skip() for _ in view)
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        session = replace(session, selected=int(row))
        return session, *render(session)

    def add_selected(label):
        def handler(session, text):
            shown = session.shown() if session is not None else None
            if shown is None or session.selected is None or session.selected >= len(shown):
                raise gr.Error("Select an instance in the table first.")
            line = format_box(shown[session.selected].box, label)
            return (text.rstrip() + "\n" + line).strip()
        return handler

    @friendly
    def on_export(session, request: gr.Request):
        return export_results(session, session_dir(config, request))

    segment_inputs = [state, image_in, prompts_in, boxes_in, model_in, compare_in, score_in, mask_in]
    gr.on([segment_btn.click, prompts_in.submit], on_segment, segment_inputs, [state, *view],
          api_visibility="private", **config.model_events)
    score_in.change(on_score, [state, score_in], [state, *view], api_visibility="private",
                    show_progress="hidden", trigger_mode="always_last")
    mask_in.release(on_mask, [state, mask_in], [state, *view], api_visibility="private", **config.model_events)
    table_out.select(on_select, [state], [state, *view], api_visibility="private", show_progress="hidden")
    add_pos.click(add_selected(1), [state, boxes_in], boxes_in, api_visibility="private")
    add_neg.click(add_selected(0), [state, boxes_in], boxes_in, api_visibility="private")
    export_btn.click(on_export, [state], files_out, api_visibility="private")
    return TextTab(state, refine_btn)
