"""Label Studio ML backend for litetext: text-prompted pre-annotation with SAM3-LiteText.

Each label of a BrushLabels, PolygonLabels or RectangleLabels control is a text prompt (and each label of the
Labels on a Video is tracked through it, as VideoRectangle sequences); the backend answers Label Studio's ML
backend protocol (/health, /setup, /predict, /webhook, /metrics). Start it with
`litetext label-studio --port 9090`, or build the ASGI app yourself:

    >>> from litetext_label_studio import create_app, BackendSettings
    >>> app = create_app(BackendSettings.from_env(model="s0-16"))
"""

from __future__ import annotations

from .config import ControlSpec, LabelConfigError, LabelSpec, ParsedConfig, VideoSpec, parse_label_config
from .settings import BackendSettings

__all__ = ["BackendSettings", "ControlSpec", "LabelConfigError", "LabelSpec", "LitetextModel", "ParsedConfig",
           "VideoSpec", "create_app", "parse_label_config", "serve"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "LitetextModel":
        from .model import LitetextModel

        return LitetextModel
    if name == "serve":
        from .server import serve

        return serve
    raise AttributeError(f"module 'litetext_label_studio' has no attribute {name!r}")
