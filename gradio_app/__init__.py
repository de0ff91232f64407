"""litetext's Gradio app (a Hugging Face Space): `litetext app`, or `python app.py` from this folder.

    >>> from litetext_gradio import AppConfig, build_demo, launch
    >>> launch(build_demo(AppConfig(model="tiny-random", device="cpu")))

Gradio is imported on first use of these names, so `import litetext_gradio` stays light.
"""

from __future__ import annotations

from importlib import import_module

__all__ = ["AppConfig", "build_demo", "launch", "api_segment", "api_segment_object", "api_track", "export_results",
           "segment"]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module 'litetext_gradio' has no attribute {name!r}")
    value = getattr(import_module(".app", __name__), name)
    globals()[name] = value
    return value
