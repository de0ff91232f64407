"""The page's look: its introduction, CSS, theme and footer links."""

from __future__ import annotations

import gradio as gr

DESCRIPTION = """# litetext · text-prompted segmentation
**Text prompts**: upload an image, type noun phrases separated by commas (each is a concept) and press
**Segment**; every instance shows in its prompt's colour, and the sliders re-filter instantly without the model.
**Object**: click on one object (include and exclude points, or a box) and each click refines its mask.
**Video**: track every instance of your prompts through a clip."""

CSS = "#timings, #object-status, #video-status {font-size: 0.9em}"
#: The page footer's links: "Use via API" (the /segment docs the README points to), "Built with Gradio", Settings.
FOOTER_LINKS = ["api", "gradio", "settings"]


def theme() -> gr.themes.Base:
    """A theme using system fonts, so the page needs no font download (works offline)."""
    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    return gr.themes.Soft(font=system, font_mono=["ui-monospace", "monospace"])
