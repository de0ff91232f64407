"""litetext's Gradio app (a Hugging Face Space): `litetext app`, or `python app.py` from this folder.

    >>> from litetext_gradio import AppConfig, build_demo, launch
    >>> launch(build_demo(AppConfig(model="tiny-random", device="cpu")))

Gradio is imported on first use of these names, so `import litetext_gradio` stays light.
"""

from __future__ import annotations

from importlib import import_module

#: Each exported name and the module that holds it.
_HOMES = {"AppConfig": ".app", "build_demo": ".app", "launch": ".app", "api_segment": ".tabs.api",
          "api_segment_object": ".tabs.api", "api_track": ".tabs.api", "export_results": ".tabs.rendering",
          "segment": ".tabs.text_prompts"}
__all__ = list(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'litetext_gradio' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name], __name__), name)
    globals()[name] = value
    return value
