"""What the user sees when something fails: a short `gr.Error` message, never a traceback or a server path."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import gradio as gr

import litetext

log = logging.getLogger("litetext.gradio")


def friendly(fn):
    """Turn litetext errors into `gr.Error` messages and hide unexpected tracebacks from the user."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except litetext.LitetextError as error:
            raise gr.Error(str(error)) from None
        except Exception as error:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Something went wrong ({type(error).__name__}: {error}). Please try again.") from None

    return wrapper


def friendly_image(**kwargs: Any) -> gr.Image:
    """A `gr.Image` whose unreadable uploads raise a `gr.Error` instead of a server traceback.

    (The preprocess step is wrapped on the instance: a `gr.Image` subclass would make Gradio write a
    `.pyi` stub next to this file at import time, which fails on a read-only Space.)
    """
    component = gr.Image(**kwargs)
    preprocess = component.preprocess

    @functools.wraps(preprocess)
    def checked_preprocess(payload):
        try:
            return preprocess(payload)
        except gr.Error:
            raise
        except Exception as error:
            raise gr.Error(f"Cannot read the uploaded file as an image ({upload_problem(payload, error)}).") from None

    component.preprocess = checked_preprocess
    return component


def upload_problem(payload: Any, error: Exception) -> str:
    """What is wrong with an upload Gradio could not open, in litetext's words ('the file is empty', 'truncated',
    'too large'...), naming the uploaded file rather than its server path; the error's type if litetext reads it."""
    path = getattr(payload, "path", None)
    if path:
        name = getattr(payload, "orig_name", None) or Path(path).name
        try:
            litetext.load_image(path)
        except litetext.LitetextError as problem:
            return str(problem).replace(str(path), name)
        except Exception:  # noqa: BLE001 - only used to describe the upload
            pass
    return type(error).__name__
