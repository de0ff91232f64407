"""Serve the backend with uvicorn: one process, or WORKERS processes each loading the model once."""

from __future__ import annotations

import logging
import os

from .settings import BackendSettings


def app_from_env():
    """ASGI app factory for uvicorn worker processes (`--factory`): settings come from the environment."""
    from .app import create_app

    return create_app(BackendSettings.from_env())


def serve(settings: BackendSettings, *, host: str = "0.0.0.0", port: int = 9090) -> None:
    """Run the backend until interrupted. THREADS bounds the predictions running at once per process."""
    import uvicorn

    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))  # one line per image
    os.environ.update(settings.to_env())  # worker processes rebuild the same settings from the environment
    config = dict(host=host, port=port, log_level=settings.log_level.lower(), timeout_keep_alive=75,
                  limit_concurrency=max(64, settings.threads * 8))
    if settings.workers > 1:
        uvicorn.run("litetext_label_studio.server:app_from_env", factory=True, workers=settings.workers, **config)
        return
    from .app import create_app

    uvicorn.run(create_app(settings), **config)
