"""The FiftyOne operator "Segment with text" (`@litetext/sam3-litetext/segment_with_text`)."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types
import litetext

from .segment import (
    NO_TRACKER_FOR_VIDEO,
    SegmentOptions,
    classes_from_field,
    iter_segment_samples,
    label_fields,
    parse_prompt_specs,
)

#: Targets larger than this default to delegated (background) execution in the App.
DELEGATE_ABOVE = 50

CLASS_FIELD_KINDS = ("Detections", "Detection", "Classification", "Classifications", "Polylines", "Polyline",
                     "Keypoints", "Keypoint", "Segmentation")


class SegmentWithText(foo.Operator):
    """Segment every instance of each text prompt in the target samples with SAM3-LiteText; in a video
    dataset, track them through each video and write ``frames.<field>`` (the model needs a tracker).

    In the App an immediate run streams its progress (a generator `execute`, as FiftyOne's own operators
    do); a delegated run reports it with `ctx.set_progress` and returns its `RunSummary` as the result.
    """

    @property
    def config(self):
        return foo.OperatorConfig(
            name="segment_with_text",
            label="Segment with text",
            description="Text-prompted instance segmentation with SAM3-LiteText",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
            execute_as_generator=True,
        )

    def resolve_execution_options(self, ctx):
        from fiftyone.operators.executor import ExecutionOptions

        try:
            large = len(ctx.target_view()) > DELEGATE_ABOVE
        except Exception:  # no dataset yet: the form is still being filled in
            large = False
        return ExecutionOptions(allow_immediate_execution=True, allow_delegated_execution=True,
                                default_choice_to_delegated=large)

    def resolve_input(self, ctx):
        inputs = types.Object()
        media_type = _media_type(ctx)
        if media_type not in ("image", "video"):
            _refuse(inputs, "unsupported_media_type",
                    f"Segment with text works on images and videos; this dataset's media type is {media_type!r}. "
                    "Choose an image or video dataset (or, for a grouped dataset, an image or video slice).")
            return types.Property(inputs, view=types.View(label="Segment with text"))
        video = media_type == "video"
        inputs.view_target(ctx)
        sources = types.RadioGroup()
        sources.add_choice("typed", label="Type prompts")
        sources.add_choice("field", label="Classes of a label field")
        inputs.enum("prompt_source", sources.values(), default="typed", label="Prompts from", view=sources)
        if ctx.params.get("prompt_source", "typed") == "field":
            choices = types.Dropdown()
            for name in label_fields(ctx.dataset, CLASS_FIELD_KINDS) if ctx.dataset is not None else []:
                choices.add_choice(name, label=name)
            inputs.enum("classes_field", choices.values(), required=True, label="Label field",
                        description="every class of this field becomes a prompt", view=choices)
        else:
            inputs.list("prompts", types.String(), required=True, label="Prompts",
                        description="noun phrases, e.g. 'yellow school bus'; write 'prompt=class' to store "
                                    "another label")
        models = types.AutocompleteView()
        for spec in litetext.list_models():
            models.add_choice(spec.alias, label=f"{spec.alias} ({spec.text_encoder})")
        inputs.str("model", default=litetext.DEFAULT_MODEL, label="Model",
                   description="alias, hub id or local checkpoint directory", view=models)
        if video:
            model = ctx.params.get("model") or litetext.DEFAULT_MODEL
            trackers = types.AutocompleteView()
            for spec in litetext.list_models():
                if spec.has_tracker:
                    trackers.add_choice(spec.alias, label=f"{spec.alias} ({spec.text_encoder})")
            inputs.str("tracker", default=default_tracker(model), label="Tracker",
                       description="a checkpoint with SAM3's tracker, which follows the objects from frame to "
                                   "frame (alias, hub id or folder); empty: the model's own", view=trackers)
            if has_tracker(model, ctx.params.get("tracker", default_tracker(model))) is False:
                _refuse(inputs, "no_tracker", NO_TRACKER_FOR_VIDEO.format(model=model))
        inputs.str("device", default="auto", label="Device", description="auto, cpu, cuda or mps")
        inputs.float("threshold", default=0.5, min=0.0, max=1.0, label="Score threshold")
        if not video:
            inputs.float("mask_threshold", default=0.5, min=0.0, max=1.0, label="Mask threshold")
        inputs.str("label_field", default="litetext", required=True, label="Output field",
                   description="written to each frame (frames.<field>)" if video else None)
        if not video:
            inputs.bool("semantic", default=False, label="Also write a semantic segmentation",
                        description="a Segmentation per sample in '<output field>_semantic'")
            inputs.int("batch_size", default=4, min=1, label="Batch size",
                       description="images per encoder batch")
        existing = types.RadioGroup()
        existing.add_choice("skip", label="Skip samples that have the output field")
        existing.add_choice("overwrite", label="Overwrite")
        inputs.enum("existing", existing.values(), default="skip", label="Existing labels", view=existing)
        return types.Property(inputs, view=types.View(label="Segment with text"))

    def execute(self, ctx):
        options = build_options(ctx.params, ctx.dataset, video=_media_type(ctx) == "video")
        runs = iter_segment_samples(ctx.target_view(), options)
        if ctx.delegated:
            return self._run_delegated(ctx, options, runs)
        return self._run_in_app(ctx, options, runs)

    def _run_delegated(self, ctx, options, runs) -> dict:
        summary = None
        for summary in runs:
            if summary.todo:
                ctx.set_progress(progress=summary.progress, label=_progress_label(summary))
        return _result(summary, options)

    def _run_in_app(self, ctx, options, runs):
        """A generator: the App shows each `set_progress` as it comes, then the reloaded dataset and result."""
        summary = None
        for summary in runs:
            if summary.todo:
                yield ctx.trigger("set_progress", {"progress": summary.progress, "label": _progress_label(summary)})
        yield ctx.trigger("reload_dataset")
        yield ctx.trigger("show_output", {"outputs": self.resolve_output(ctx).to_json(),
                                          "results": _result(summary, options)})

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("message", label="Result")
        outputs.int("segmented", label="Samples segmented")
        outputs.int("skipped_existing", label="Skipped (already labelled)")
        outputs.int("failed", label="Failed (missing or unreadable media)")
        if _media_type(ctx) == "video":
            outputs.int("frames", label="Frames labelled")
            outputs.int("objects", label="Objects tracked")
        outputs.int("instances", label="Instances found")
        return types.Property(outputs, view=types.View(label="Segment with text"))


def _media_type(ctx) -> str:
    return ctx.view.media_type if ctx.dataset is not None else "image"


def _refuse(inputs, name: str, message: str) -> None:
    """Show `message` as an invalid form entry: refused when the form is resolved, the run can be neither
    started nor queued."""
    notice = inputs.view(name, types.Error(label=message))
    notice.invalid = True
    notice.error_message = message


def _progress_label(summary) -> str:
    if summary.media_type != "video":
        return f"segmented {summary.done} of {summary.todo} samples"
    if summary.video_frame:
        total = f" of {summary.video_frames}" if summary.video_frames else ""
        return f"video {summary.done + 1} of {summary.todo}: frame {summary.video_frame}{total}"
    return f"tracked {summary.done} of {summary.todo} videos"


def default_tracker(model: str) -> str:
    """The form's default tracker for `model`: empty (its own) when it has one, else SAM3's."""
    spec = litetext.MODELS.get(model)
    return "" if spec is not None and spec.has_tracker else "sam3"


def has_tracker(model: str, tracker: str | None) -> bool | None:
    """Whether `model` with `tracker` (empty: its own) can track, as far as the form can tell without loading
    it: a tracker named, or a registered model that has one, is True; a registered model without one is False;
    an unregistered checkpoint is None (it is checked when the run loads it)."""
    if tracker:
        return True
    spec = litetext.MODELS.get(model)
    return None if spec is None else spec.has_tracker


def _result(summary, options: SegmentOptions) -> dict:
    return {**summary.to_dict(), "label_field": options.label_field, "model": options.model,
            "prompts": options.prompts, "message": summary.message}


def build_options(params: dict, dataset, *, video: bool = False) -> SegmentOptions:
    """`SegmentOptions` from the operator's parameters; prompts come typed or from a field's classes. For a
    video dataset the tracker is set (the form's default when it was not given) and there is no semantic
    field."""
    if params.get("prompt_source", "typed") == "field":
        field_name = params.get("classes_field")
        if not field_name:
            raise ValueError("choose the label field whose classes to segment")
        prompts, label_map = classes_from_field(dataset, field_name), {}
        if not prompts:
            raise ValueError(f"field {field_name!r} has no classes to use as prompts")
    else:
        prompts, label_map = parse_prompt_specs(params.get("prompts") or [])
        if not prompts:
            raise ValueError("type at least one prompt, e.g. 'person'")
    label_field = (params.get("label_field") or "litetext").strip()
    model = params.get("model") or litetext.DEFAULT_MODEL
    tracker = None
    if video:
        tracker = (params.get("tracker", default_tracker(model)) or "").strip() or None
    return SegmentOptions(
        prompts=prompts,
        label_map=label_map or None,
        label_field=label_field,
        model=model,
        device=params.get("device") or "auto",
        threshold=params.get("threshold", 0.5),  # as given: the engine names a bad one
        mask_threshold=params.get("mask_threshold", 0.5),
        batch_size=int(params.get("batch_size") or 4),
        overwrite=params.get("existing", "skip") == "overwrite",
        semantic_field=f"{label_field}_semantic" if params.get("semantic") and not video else None,
        tracker=tracker,
    )


def register(plugin) -> None:
    """Register this plugin's operators."""
    plugin.register(SegmentWithText)
