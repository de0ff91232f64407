"""The litetext Gradio app: text-prompted segmentation with SAM3-LiteText, ready to run as a Hugging Face Space.

Upload an image (or pick an example photo), type noun phrases separated by commas and press Segment. Every
instance appears as a coloured overlay and in a table; the score and mask thresholds re-filter without running
the whole model again; a second prompt on the same image reuses its cached vision features. A side-by-side mode
runs the SAM3 teacher on the same prompts. The Object tab segments one object from include/exclude clicks or a
box, each click refining the last mask (SAM3's tracker on the cached encoding); the Video tab tracks every
instance of the prompts through a clip into an overlay MP4 and RLE JSON Lines. `/segment`, `/segment_object`
and `/track` are documented API endpoints for `gradio_client`.

This file is the Space's entry: it holds the model calls ZeroGPU runs (`spaces.GPU` must wrap them here) and
assembles the page from the `tabs` package next to it. It imports only that package, `litetext`, `gradio` and the
standard library, so it runs both as `python app.py` from its own folder (a Space) and as the installed module
`litetext_gradio.app` (`litetext app`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

import litetext

if __package__:  # the installed module litetext_gradio.app
    from .tabs import api, object_clicks, page, rendering, text_prompts
    from .tabs import video as video_tab  # not `video`: run_tracking's argument
    from .tabs.config import AppConfig, preload
    from .tabs.state import Clicks
else:  # a file run on its own (a Space's `python app.py`): the tabs package beside it, without litetext_gradio
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tabs import api, object_clicks, page, rendering, text_prompts
    from tabs import video as video_tab
    from tabs.config import AppConfig, preload
    from tabs.state import Clicks

__all__ = ["AppConfig", "build_demo", "launch", "preload", "run_model", "run_object_model", "run_tracking"]

#: Seconds of GPU time a ZeroGPU Space reserves for one model call (`spaces.GPU(duration=...)`; its default is
#: 60). One image and its prompts, or one click, take well under a second on its GPUs; the margin covers a freshly
#: forked worker moving the preloaded weights to the GPU. A shorter reservation gets a GPU sooner.
GPU_DURATION_S = 30
#: The reservation of one tracked video: up to `AppConfig.max_video_frames` frames, each a ViT pass plus the
#: tracker (tens of milliseconds per frame on a ZeroGPU GPU), and the overlay MP4 encoded alongside.
GPU_TRACK_DURATION_S = 120

try:  # ZeroGPU Spaces: GPU work must run inside functions wrapped with spaces.GPU; elsewhere a no-op.
    # (`spaces` must come before CUDA is initialised: it is, as litetext imports torch only on first use.)
    import spaces  # type: ignore[import-not-found]

    def gpu(duration: int):
        """`spaces.GPU` reserving `duration` seconds for each call of the function it wraps."""
        return spaces.GPU(duration=duration)
except ImportError:  # pragma: no cover - depends on the environment
    def gpu(duration: int):
        """No-op stand-in for `spaces.GPU` outside Hugging Face Spaces."""
        return lambda fn: fn


# The model calls (the only GPU work) --------------------------------------------------------------------------


@gpu(GPU_DURATION_S)
def run_model(model: str, image: Image.Image, prompts: list[str], boxes: list[list[float]], box_labels: list[int],
              mask_threshold: float, config: AppConfig) -> tuple[litetext.Result, float, str]:
    """The Text tab's model call (`tabs.text_prompts.segment_image`), on a ZeroGPU GPU."""
    return text_prompts.segment_image(model, image, prompts, boxes, box_labels, mask_threshold, config)


@gpu(GPU_DURATION_S)
def run_object_model(model: str, image: Image.Image, clicks: Clicks, mask_input: np.ndarray | None,
                     seed: litetext.Instance | None, multimask: bool, config: AppConfig) -> litetext.Result:
    """The Object tab's model call (`tabs.object_clicks.segment_clicks`), on a ZeroGPU GPU."""
    return object_clicks.segment_clicks(model, image, clicks, mask_input, seed, multimask, config)


@gpu(GPU_TRACK_DURATION_S)
def run_tracking(model: str, video: str, prompts: list[str], out_dir: str, name: str,
                 config: AppConfig) -> litetext.TrackSummary:
    """The Video tab's model call (`tabs.video.track_upload`, which reads the frames and writes the files), on a
    ZeroGPU GPU."""
    return video_tab.track_upload(model, video, prompts, out_dir, name, config)


# The page -----------------------------------------------------------------------------------------------------


def build_demo(config: AppConfig | None = None) -> gr.Blocks:
    """Build the Blocks app for `config` (no model is loaded until the first request)."""
    config = config or AppConfig.from_env()

    with gr.Blocks(title="litetext segmentation", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(page.DESCRIPTION)
        with gr.Tabs() as tabs:
            text = text_prompts.build_tab(config, run_model)
            object_clicks.build_tab(config, tabs, text.state, text.refine_button, run_object_model)
            video_tab.build_tab(config, run_tracking)
        api.build_endpoints(config, run_model, run_object_model, run_tracking)

        def on_unload(request: gr.Request):
            rendering.cleanup_session(config, request)

        demo.unload(on_unload)

    demo.queue(default_concurrency_limit=4, max_size=64)
    demo.litetext_config = config  # type: ignore[attr-defined]
    return demo


def launch(demo: gr.Blocks, **kwargs: Any):
    """`demo.launch` with the app's theme, CSS, footer links and upload limit (keyword arguments override them)."""
    options: dict[str, Any] = {"theme": page.theme(), "css": page.CSS, "max_file_size": "50mb",
                               "footer_links": page.FOOTER_LINKS}
    options.update(kwargs)
    return demo.launch(**options)


def __getattr__(name: str) -> Any:
    """`app.demo`, built from the environment on first use: what `gradio app.py` and a Space look for. Lazy, so
    `litetext app`, which builds its own demo from its arguments, does not build a second one."""
    if name == "demo":
        globals()["demo"] = build_demo()
        return globals()["demo"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # a Space runs this: it offers only the models that loaded at start-up
    space_config = AppConfig.from_env()
    preload(space_config, every_model=True)
    demo = build_demo(space_config)
    launch(demo)
