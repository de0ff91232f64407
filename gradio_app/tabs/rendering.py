"""What the page shows: overlays, tables and status lines of each tab, and the files written for download."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

import litetext

from .config import AppConfig, model_has_tracker
from .state import ObjectSession, Run, Session, TrackedVideo

TABLE_HEADERS = ["#", "prompt", "score", "area (px)", "box (x1, y1, x2, y2)"]
OBJECT_HEADERS = ["object id", "prompt", "first frame", "last frame", "frames", "best score"]
SELECTED_COLOR = "#ffffff"
MASK_OPACITY = 0.6
INCLUDE_COLOR, EXCLUDE_COLOR, BOX_COLOR = (34, 197, 94), (239, 68, 68), (255, 255, 255)


# The Text tab -------------------------------------------------------------------------------------------------


def hex_color(index: int) -> str:
    """The prompt's overlay colour as '#rrggbb' (the same colours as `Result.overlay`)."""
    return "#{:02x}{:02x}{:02x}".format(*litetext.prompt_color(index))


def annotated(image: Image.Image, result: litetext.Result, selected: int | None = None):
    """A `gr.AnnotatedImage` value: one layer per prompt (its instances' masks, in its colour), every instance's
    box outlined on the image, and the selected instance highlighted in white."""
    base = result.overlay(image, alpha=0.0, draw_boxes=True)
    color_map, annotations = {}, []
    for k, prompt in enumerate(result.prompts):
        count = int((result.prompt_indices == k).sum())
        label = f"{prompt} ({count})"
        color_map[label] = hex_color(k)
        if count:
            annotations.append((result.union_mask(prompt) * MASK_OPACITY, label))
    if selected is not None and 0 <= selected < len(result):
        instance = result[selected]
        label = f"selected: #{selected} {instance.prompt} ({instance.score:.2f})"
        color_map[label] = SELECTED_COLOR
        annotations.append((instance.mask * 0.8, label))
        ImageDraw.Draw(base).rectangle(list(instance.box), outline=SELECTED_COLOR,
                                       width=max(2, round(min(image.size) / 150)))
    return gr.AnnotatedImage(value=(base, annotations), color_map=color_map)


def instance_rows(result: litetext.Result | None) -> list[list[Any]]:
    """One table row per instance: index, prompt, score, area, box."""
    if result is None:
        return []
    return [[i, inst.prompt, round(inst.score, 3), inst.area, ", ".join(f"{v:.0f}" for v in inst.box)]
            for i, inst in enumerate(result)]


def timing_text(run: Run, shown: litetext.Result) -> str:
    """A Markdown line: model, text-encoder size, where the time went, cache hit, instance count."""
    if run.error:
        return f"**{run.model}** is not available: {run.error}"
    t = run.result.timings
    image_part = ("image features **from cache** " if t.image_cache_hit else "image encoded ") + \
        f"{t.encode_image_ms:.0f} ms"
    return (f"**{run.model}** on {run.device} · text encoder {run.text_encoder_params_m:g} M params · "
            f"{image_part} · text {t.encode_text_ms:.0f} ms · decode {t.decode_ms:.0f} ms · "
            f"post-process {t.postprocess_ms:.0f} ms · total {t.total_ms:.0f} ms · "
            f"**{len(shown)}** instances shown of {len(run.result)} found")


def comparison_table(session: Session) -> str:
    """Markdown table comparing the student and teacher runs."""
    rows = ["| model | text encoder (M params) | image encode (ms) | text encode (ms) | decode (ms) | instances |",
            "|---|---:|---:|---:|---:|---:|"]
    for run in (session.student, session.teacher):
        if run is None:
            continue
        if run.error:
            rows.append(f"| {run.model} | - | - | - | - | not available |")
            continue
        t = run.result.timings
        shown = session.shown(run)
        rows.append(f"| {run.model} | {run.text_encoder_params_m:g} | {t.encode_image_ms:.0f}"
                    f"{' (cached)' if t.image_cache_hit else ''} | {t.encode_text_ms:.0f} | {t.decode_ms:.0f} "
                    f"| {len(shown)} |")
    return "\n".join(rows)


def render(session: Session | None) -> tuple:
    """Every view output for a session: overlay, table, timings, teacher overlay, comparison, its visibility."""
    if session is None or session.student is None:
        return None, [], "", None, "", gr.update(visible=False)
    shown = session.shown()
    overlay = annotated(session.image, shown, session.selected)
    teacher_overlay, comparison, compare_visible = None, "", session.teacher is not None
    if session.teacher is not None:
        teacher_shown = session.shown(session.teacher)
        teacher_overlay = annotated(session.image, teacher_shown)
        comparison = comparison_table(session) + "\n\n" + timing_text(session.teacher, teacher_shown)
    table = {"data": instance_rows(shown), "headers": TABLE_HEADERS}
    return (overlay, table, timing_text(session.student, shown), teacher_overlay, comparison,
            gr.update(visible=compare_visible))


# The Object tab -----------------------------------------------------------------------------------------------


def object_picture(session: ObjectSession) -> Image.Image:
    """The Object tab's image: the latest mask over the photo, with the points (green include, red exclude), the
    box and a box's first corner drawn on it."""
    last = session.last
    picture = last.result.overlay(session.image) if last is not None else session.image.copy()
    draw = ImageDraw.Draw(picture)
    radius = max(5, round(min(picture.size) / 50))
    clicks = session.clicks
    box = clicks.box or (list(session.seed.box) if session.seed is not None else None)
    if box is not None:
        draw.rectangle(box, outline=BOX_COLOR, width=max(2, radius // 2))
    for (x, y), label in zip(clicks.points, clicks.point_labels):
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=INCLUDE_COLOR if label else EXCLUDE_COLOR,
                     outline=(255, 255, 255), width=max(1, radius // 3))
    if clicks.corner is not None:
        x, y = clicks.corner
        for dx, dy in ((radius * 2, 0), (0, radius * 2)):
            draw.line([x - dx, y - dy, x + dx, y + dy], fill=BOX_COLOR, width=max(2, radius // 2))
    return picture


def object_status(session: ObjectSession | None) -> str:
    """A Markdown line: what was clicked, the model, the mask's predicted IoU and area, where the time went."""
    if session is None:
        return "Upload an image, then click on an object."
    clicks = session.clicks
    if not session.steps:
        return "Click on the object: each click refines its mask." if session.seed is None else ""
    included = sum(clicks.point_labels)
    parts = [f"{included} include, {len(clicks.points) - included} exclude points"]
    if clicks.box is not None:
        parts.append("box " + ", ".join(f"{v:.0f}" for v in clicks.box))
    if session.seed is not None:
        parts.append(f"refining **{session.seed.prompt}** ({session.seed.score:.2f}) from the Text tab")
    if clicks.corner is not None:
        parts.append("box: first corner at ({:.0f}, {:.0f}), click the opposite corner".format(*clicks.corner))
    last = session.last
    if last is not None and len(last.result):
        t = last.result.timings
        cache = "image features **from cache**" if t.image_cache_hit else f"image encoded {t.encode_image_ms:.0f} ms"
        parts += [f"predicted IoU **{last.result.scores[0]:.2f}**", f"{last.result[0].area:,} px",
                  f"{cache} · mask {t.decode_ms:.0f} ms"]
    return f"**{session.steps[-1].model}** · " + " · ".join(parts)


def object_view(session: ObjectSession | None) -> tuple:
    """The Object tab's outputs: its image (None without a session) and the status line."""
    return (None if session is None else object_picture(session)), object_status(session)


def no_tracker_hint(model: str, config: AppConfig, error: Exception | None = None) -> str:
    """One line saying `model` cannot answer clicks or track (NoTrackerError's message) and which models can."""
    message = str(error or litetext.NoTrackerError())
    others = [m for m in config.tracker_models if m != model]
    return f"**{model}**: {message}" + (f". Here, choose **{', '.join(others)}**." if others else "")


def model_hint(model: str, config: AppConfig) -> str:
    """The line under the Object tab's model: empty for a model with a tracker, else `no_tracker_hint`."""
    return "" if model_has_tracker(model) else no_tracker_hint(model, config)


# The Video tab ------------------------------------------------------------------------------------------------


def object_rows(summary: litetext.TrackSummary) -> list[list[Any]]:
    """One table row per tracked object: id, prompt, first and last frame, frames seen, best score."""
    return [[o.object_id, o.prompt, o.first_frame, o.last_frame, o.frames, round(o.best_score, 3)]
            for o in summary.objects]


def video_status(tracked: TrackedVideo) -> str:
    """A Markdown line: model, frames tracked (and the limit when it applied), objects per prompt."""
    summary = tracked.summary
    frames = f"**{summary.frames}** frames tracked"
    if tracked.limited:
        frames += f" (the first {summary.frames} of {tracked.frame_count}: this app's limit)"
    objects = ", ".join(f"{count} {prompt}" for prompt, count in summary.objects_per_prompt.items())
    return f"**{tracked.model}** · {frames} · objects: {objects}"


# Downloads ----------------------------------------------------------------------------------------------------


def slug(text: str) -> str:
    """A file-name-safe form of a prompt."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "prompt"


def export_results(session: Session | None, out_dir: str | os.PathLike) -> list[str]:
    """Write the shown result as COCO JSON (RLE), a ZIP of per-instance PNG masks, the union mask and the overlay.

    Returns the four file paths, in that order.
    """
    if session is None or session.student is None:
        raise gr.Error("Nothing to download yet: press Segment first.")
    result = session.shown()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = slug(Path(session.image_name).stem) or "image"
    coco = litetext.CocoBuilder(result.prompts)
    coco.add(session.image_name, result)
    coco_path = out / f"{stem}_coco.json"
    coco_path.write_text(json.dumps(coco.to_dict()))
    zip_path = out / f"{stem}_masks.zip"
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i, instance in enumerate(result):
            buffer = io.BytesIO()
            Image.fromarray(instance.mask.astype(np.uint8) * 255).save(buffer, format="PNG")
            archive.writestr(f"{i:03d}_{slug(instance.prompt)}_{instance.score:.2f}.png", buffer.getvalue())
    union_path = out / f"{stem}_union_mask.png"
    Image.fromarray(result.union_mask().astype(np.uint8) * 255).save(union_path)
    overlay_path = out / f"{stem}_overlay.png"
    result.overlay(session.image).save(overlay_path)
    return [str(coco_path), str(zip_path), str(union_path), str(overlay_path)]


def session_dir(config: AppConfig, request: gr.Request | None) -> Path:
    """This browser session's own temporary folder (removed when the session ends)."""
    name = getattr(request, "session_hash", None) or "shared"
    return Path(config.work_dir) / slug(name)


def cleanup_session(config: AppConfig, request: gr.Request | None) -> None:
    """Remove a session's temporary folder (run when its browser tab closes)."""
    shutil.rmtree(session_dir(config, request), ignore_errors=True)
