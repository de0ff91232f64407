"""The Video tab: every instance of the prompts tracked through a clip into an overlay MP4 and RLE JSON Lines."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import gradio as gr

import litetext

from .config import AppConfig, check_offered, load_engine
from .errors import friendly
from .parsing import check_video, open_upload, parse_prompts
from .rendering import OBJECT_HEADERS, object_rows, session_dir, slug, video_status
from .state import TrackedVideo


def track_upload(model: str, video: str, prompts: list[str], out_dir: str, name: str,
                 config: AppConfig) -> litetext.TrackSummary:
    """Track `prompts` through the first `config.max_video_frames` frames of `video` into `TrackWriter` files
    named `name` in `out_dir`; the engine's tqdm bar is what `gr.Progress(track_tqdm=True)` shows."""
    return litetext.track_to_files(load_engine(model, config), open_upload(video), prompts, out_dir, name,
                                   options=litetext.TrackOptions(max_frames=config.max_video_frames), progress=True)


#: `track_upload`, or the app's ZeroGPU call of it (`app.run_tracking`).
RunTracking = Callable[..., litetext.TrackSummary]


def track_video(video: str | None, prompts_text: str, model: str, out_dir: str | os.PathLike, config: AppConfig,
                run_tracking: RunTracking = track_upload) -> TrackedVideo:
    """Track the uploaded video's prompts with `model` (the Object tab's default when empty) into `out_dir`."""
    prompts = parse_prompts(prompts_text)
    model = model or config.object_model
    check_offered(model, config)
    if not video:
        raise gr.Error("Upload a video first.")
    name = slug(Path(video).stem)
    try:
        frame_count = check_video(video, config)
        summary = run_tracking(model, video, prompts, str(out_dir), name, config)
    except litetext.LitetextError as error:  # files named by their names, not their server paths
        message = str(error).replace(str(video), Path(video).name).replace(str(Path(out_dir)) + os.sep, "")
        raise gr.Error(f"Cannot track the video: {message}") from None
    out = Path(out_dir)  # TrackWriter's file names
    return TrackedVideo(model, summary, str(out / f"{name}.overlay.mp4"), str(out / f"{name}.jsonl"),
                        str(out / f"{name}.summary.json"), frame_count,
                        frame_count is not None and frame_count > config.max_video_frames)


def build_tab(config: AppConfig, run_tracking: RunTracking) -> None:
    """Lay out the Video tab (inside `gr.Tabs`) and wire its events; `run_tracking` tracks the video."""
    with gr.Tab("Video", id="video"):
        with gr.Row():
            with gr.Column(scale=2):
                video_in = gr.Video(label="Video", sources=["upload"], elem_id="video-input", height=320)
                video_prompts = gr.Textbox(label="Prompts (comma-separated noun phrases)", value="person",
                                           elem_id="video-prompts", lines=1)
                video_model = gr.Dropdown(config.models, value=config.object_model, label="Model",
                                          info="needs SAM3's tracker", elem_id="video-model")
                track_btn = gr.Button("Track", variant="primary", elem_id="track-btn")
                gr.Markdown(f"At most {config.max_video_frames} frames of up to {config.max_video_pixels:,} pixels "
                            "are tracked per video.")
            with gr.Column(scale=3):
                video_out = gr.Video(label="Tracked objects", interactive=False, elem_id="video-overlay", height=400)
                video_status_out = gr.Markdown(elem_id="video-status")
                objects_out = gr.Dataframe(headers=OBJECT_HEADERS, label="Objects", interactive=False,
                                           elem_id="video-objects", max_height=320)
                video_files = gr.File(label="Downloads (overlay MP4, RLE JSON Lines, summary)", file_count="multiple",
                                      interactive=False, elem_id="video-files")

    @friendly
    def on_track(video, prompts, model, request: gr.Request,
                 progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - how Gradio asks for a progress bar
        tracked = track_video(video, prompts, model, session_dir(config, request) / "video", config, run_tracking)
        return (tracked.overlay_path, {"data": object_rows(tracked.summary), "headers": OBJECT_HEADERS},
                video_status(tracked), tracked.files())

    track_btn.click(on_track, [video_in, video_prompts, video_model],
                    [video_out, objects_out, video_status_out, video_files], api_visibility="private",
                    **config.model_events)
