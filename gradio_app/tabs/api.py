"""The documented API endpoints `/segment`, `/segment_object` and `/track`, on hidden components of the page."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import gradio as gr

from .config import AppConfig, check_offered
from .errors import friendly, friendly_image
from .object_clicks import RunObjectModel, segment_clicks
from .parsing import parse_box, parse_boxes, parse_points, parse_prompts, read_image
from .rendering import session_dir
from .state import Clicks
from .text_prompts import RunModel, make_run, segment_image
from .video import RunTracking, track_upload, track_video


def api_segment(image: str | None, prompts: str, threshold: float, mask_threshold: float, model: str,
                boxes: str, config: AppConfig, run_model: RunModel = segment_image) -> dict[str, Any]:
    """Segment `image` with comma-separated `prompts`; returns `Result.to_dict()` (per-instance RLE) plus the
    model, its text-encoder size and the timings."""
    try:
        threshold, mask_threshold = float(threshold), float(mask_threshold)
    except (TypeError, ValueError):
        raise gr.Error("threshold and mask_threshold must be numbers between 0 and 1.") from None
    if not (0.0 <= threshold <= 1.0 and 0.0 <= mask_threshold <= 1.0):
        raise gr.Error("threshold and mask_threshold must be between 0 and 1.")
    parsed_prompts = parse_prompts(prompts)
    box_list, labels = parse_boxes(boxes)
    picture = read_image(image, config)
    run = make_run(model or config.model, picture, parsed_prompts, box_list, labels, mask_threshold, config,
                   run_model)
    result = run.result.filter(min_score=threshold)
    return {"model": run.model, "text_encoder_params_m": run.text_encoder_params_m,
            "timings": asdict(run.result.timings), **result.to_dict()}


def api_segment_object(image: str | None, points: str, box: str, model: str, multimask: bool, config: AppConfig,
                       run_object_model: RunObjectModel = segment_clicks) -> dict[str, Any]:
    """Segment one object in `image` from clicks and/or a box: `points` '+ x, y; - x, y' in pixels (- excludes),
    `box` 'x1, y1, x2, y2'. Returns `Result.to_dict()` (one mask, or three candidates with `multimask`, scored by
    the tracker's predicted IoU) plus the model and the timings."""
    point_list, labels = parse_points(points)
    object_box = parse_box(box)
    if not point_list and object_box is None:
        raise gr.Error("Give at least one point '+ x, y' or a box 'x1, y1, x2, y2'.")
    if not isinstance(multimask, (bool, type(None))):  # the checkbox hands over whatever JSON the caller sent
        raise gr.Error(f"multimask must be true or false, not {multimask!r}.")
    picture = read_image(image, config)
    model = model or config.object_model
    check_offered(model, config)
    result = run_object_model(model, picture, Clicks(point_list, labels, object_box), None, None, bool(multimask),
                              config)
    return {"model": model, "timings": asdict(result.timings), **result.to_dict()}


def api_track(video: str | None, prompts: str, model: str, out_dir: str | os.PathLike, config: AppConfig,
              run_tracking: RunTracking = track_upload) -> tuple[str, str, dict[str, Any]]:
    """Track every instance of the comma-separated `prompts` through `video`; returns the overlay MP4, the RLE
    JSON Lines (a line per frame: `Result.to_dict()` with object ids) and the summary (frames, objects)."""
    tracked = track_video(video, prompts, model, out_dir, config, run_tracking)
    return tracked.overlay_path, tracked.jsonl_path, {"model": tracked.model, **tracked.summary.to_dict()}


def build_endpoints(config: AppConfig, run_model: RunModel, run_object_model: RunObjectModel,
                    run_tracking: RunTracking) -> None:
    """Add the three endpoints' hidden components and events to the page; the `run_*` functions run the model."""
    with gr.Column(visible=False):
        api_image = friendly_image(type="filepath", label="image")
        api_prompts = gr.Textbox(label="prompts")
        api_threshold = gr.Number(0.5, label="threshold")
        api_mask_threshold = gr.Number(0.5, label="mask_threshold")
        api_model = gr.Textbox("", label="model")
        api_boxes = gr.Textbox("", label="boxes")
        api_points = gr.Textbox("", label="points")
        api_box = gr.Textbox("", label="box")
        api_multimask = gr.Checkbox(False, label="multimask")
        api_video = gr.File(label="video", type="filepath")
        api_out = gr.JSON(label="result")
        api_overlay = gr.File(label="overlay")
        api_jsonl = gr.File(label="tracks")
        api_summary = gr.JSON(label="summary")
        api_btn = gr.Button()
        api_object_btn = gr.Button()
        api_track_btn = gr.Button()

    @friendly
    def on_api(image, prompts, threshold, mask_threshold, model, boxes):
        return api_segment(image, prompts, threshold, mask_threshold, model, boxes, config, run_model)

    @friendly
    def on_api_object(image, points, box, model, multimask):
        return api_segment_object(image, points, box, model, multimask, config, run_object_model)

    @friendly
    def on_api_track(video, prompts, model, request: gr.Request,
                     progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - how Gradio asks for a progress bar
        return api_track(video, prompts, model, session_dir(config, request) / "api-video", config, run_tracking)

    on_api.__doc__ = api_segment.__doc__
    on_api_object.__doc__ = api_segment_object.__doc__
    on_api_track.__doc__ = api_track.__doc__

    api_btn.click(on_api, [api_image, api_prompts, api_threshold, api_mask_threshold, api_model, api_boxes],
                  api_out, api_name="segment", **config.model_events)
    api_object_btn.click(on_api_object, [api_image, api_points, api_box, api_model, api_multimask], api_out,
                         api_name="segment_object", **config.model_events)
    api_track_btn.click(on_api_track, [api_video, api_prompts, api_model], [api_overlay, api_jsonl, api_summary],
                        api_name="track", **config.model_events)
