"""A FiftyOne video `Model`: every instance of each text prompt found and tracked through a video.

`dataset.apply_model(LitetextVideoModel([...]), label_field="tracks")` on a video dataset writes
``frames.tracks`` `fo.Detections` with ``index`` = the object's id, stable across frames, as FiftyOne's own
SAM3 video model does; but all prompts are tracked in one pass through the video (`Engine.track`), where
FiftyOne's runs one pass per class.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import fiftyone.core.config as foc
import fiftyone.core.labels as fol
import fiftyone.core.models as fom
import litetext

from .convert import to_fiftyone_detections
from .model import PromptsFromConfig, keeps_prompt, parse_shared_options, read_prompt_value
from .segment import frame_range, require_tracker

logger = logging.getLogger(__name__)


class LitetextVideoModelConfig(foc.Config):
    """Settings of a `LitetextVideoModel` (a dict of these keys builds it).

    - ``model``, ``device``, ``dtype``: which checkpoint runs where; ``tracker``: the checkpoint whose tracker
      follows the objects (`litetext.load`'s ``tracker``: ``"sam3"`` composes SAM3's tracker with a LiteText
      detector; None, the default, uses the model's own, as ``sam3`` and ``tiny-random-tracker`` have);
    - ``classes`` (or ``prompts``): the text prompts, the same for every video;
    - ``prompt_field``: a sample-level field with each video's own prompts (a string, a list of strings, a
      Classification(s) or Detections: their labels); ``apply_model(..., prompt_field=)`` takes precedence;
    - ``confidence_thresh`` (or ``threshold``): the detection score that keeps a detection;
      ``new_object_threshold``: the score a detection needs to start a new track; ``max_objects``: a cap on
      tracked objects (all three default to the checkpoint's settings);
    - ``filter_classes`` (what `apply_model(classes=...)` sets) and ``label_map`` (prompt -> class).
    """

    KEYS = ("model", "device", "dtype", "tracker", "classes", "prompt_field", "confidence_thresh",
            "new_object_threshold", "max_objects", "filter_classes", "label_map")
    ALIASES = {"prompts": "classes", "threshold": "confidence_thresh"}

    def __init__(self, d: Mapping[str, Any]):
        d = parse_shared_options(self, d, "LitetextVideoModel")
        tracker = d.get("tracker")
        self.tracker = None if tracker in (None, "") else tracker if isinstance(tracker, bool) else str(tracker)
        if self.prompt_field and self.prompt_field.startswith("frames."):
            raise ValueError(_SAMPLE_LEVEL_PROMPTS)
        try:  # litetext checks the settings (3.0 objects is 3, 2.5 is refused); the message names our key
            settings = litetext.TrackOptions(threshold=d.get("confidence_thresh"),
                                             new_object_threshold=d.get("new_object_threshold"),
                                             max_objects=d.get("max_objects"))
        except litetext.InputError as error:
            message = str(error)
            raise ValueError("confidence_thresh" + message.removeprefix("threshold")
                             if message.startswith("threshold ") else message) from None
        self.confidence_thresh = settings.threshold
        self.new_object_threshold = settings.new_object_threshold
        self.max_objects = settings.max_objects

    def track_options(self, start_frame: int = 0, max_frames: int | None = None) -> litetext.TrackOptions:
        """`Engine.track`'s settings from this config, for the frames from `start_frame` on (at most
        `max_frames`; None: to the end)."""
        return litetext.TrackOptions(threshold=self.confidence_thresh, new_object_threshold=self.new_object_threshold,
                                     max_objects=self.max_objects, start_frame=start_frame, max_frames=max_frames)


_SAMPLE_LEVEL_PROMPTS = ("a video's prompts come from a sample-level field (text prompts for the whole video), "
                         "not a frame field")


class LitetextVideoModel(PromptsFromConfig, fom.SamplesMixin, fom.Model):
    """SAM3-LiteText as a FiftyOne video model: each prompt's instances found and tracked, as frame labels.

    The engine needs a tracker::

        model = LitetextVideoModel(["person", "dog"], model="s0-16", tracker="sam3")  # or model="sam3"
        dataset.apply_model(model, label_field="tracks")     # frames.tracks: Detections, index = object id

    `predict` returns ``{frame_number: fo.Detections}`` (1-based, every tracked frame, empty where nothing
    was found; None when nothing is tracked). The video is read from the sample's file (PyAV:
    ``pip install "litetext[video]"``); for a clips view only the clip's frames are tracked. A video that
    cannot be read raises `litetext.InvalidVideoError`, so `apply_model` logs it and goes on with the next
    (its ``skip_failures=False`` raises instead).
    """

    def __init__(self, config: LitetextVideoModelConfig | str | Sequence[str] | None = None, **options: Any):
        if not isinstance(config, LitetextVideoModelConfig):
            config = LitetextVideoModelConfig({**options, **({} if config is None else {"classes": config})})
        elif options:
            raise TypeError("pass either a LitetextVideoModelConfig or keyword options, not both")
        self.config = config
        self.engine = require_tracker(
            litetext.load(config.model, device=config.device, dtype=config.dtype, tracker=config.tracker),
            config.model)
        self._fields: dict[str, str] = {}

    @property
    def media_type(self) -> str:
        return "video"

    @property
    def needs_fields(self) -> dict[str, str]:
        """The sample fields `predict` reads: ``prompt_field`` (from `apply_model`, else the config's)."""
        if self.config.prompt_field and "prompt_field" not in self._fields:
            return {**self._fields, "prompt_field": self.config.prompt_field}
        return self._fields

    @needs_fields.setter
    def needs_fields(self, fields: Mapping[str, str]) -> None:
        fields = dict(fields or {})
        if str(fields.get("prompt_field") or "").startswith("frames."):
            raise ValueError(_SAMPLE_LEVEL_PROMPTS)
        self._fields = fields

    def predict(self, arg: Any, sample: Any = None) -> dict[int, fol.Detections] | None:
        """Frame labels for one video: ``arg`` is FiftyOne's video reader (with `sample`, whose file, clip
        range and prompt field are used) or a video path. None when the video has no prompt at all."""
        video = sample.filepath if sample is not None else getattr(arg, "inpath", arg)
        prompts = self._prompts_for(sample)
        if prompts is None:
            logger.info("litetext: video %s has no prompts; left without labels", video)
            return None
        wanted = [p for p in prompts if keeps_prompt(self.config, p)]
        if not wanted:
            return None
        options = self.config.track_options(*frame_range(_support(sample)))
        labels = {tracked.index + 1: to_fiftyone_detections(tracked.result, label_map=self.config.label_map)
                  for tracked in self.engine.track(video, wanted, **options.as_kwargs())}
        return labels or None  # FiftyOne cannot add an empty frames dict

    def _prompts_for(self, sample: Any) -> list[str] | None:
        prompts = list(self.config.classes or [])
        field_name = self.needs_fields.get("prompt_field")
        if field_name and sample is not None:
            own, _ = read_prompt_value(sample.get_field(field_name), exemplar_boxes=False)
            prompts.extend(own)
        elif not prompts:
            raise litetext.PromptError("LitetextVideoModel has no prompts: set model.classes = ['person', ...] or "
                                       "pass prompt_field='<field>' to apply_model")
        return list(dict.fromkeys(prompts)) or None


def _support(sample: Any) -> list[int] | None:
    """A clip's frame range ``[first, last]`` (a clips view's samples have one); None for a whole video."""
    if sample is None or not sample.has_field("support"):
        return None
    return sample.support
