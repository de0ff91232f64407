"""A FiftyOne `Model` for `dataset.apply_model(...)` and `dataset.compute_embeddings(...)`.

It follows FiftyOne's conventions for models: a `LitetextModelConfig` (``config.classes``,
``config.confidence_thresh``, ``config.filter_classes``, which `apply_model` sets for the duration of a run),
and a `GetItem` that FiftyOne's data loader uses to read each sample, so ``prompt_field=...`` works as it does
for FiftyOne's own SAM models and one unreadable image skips only its sample.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import fiftyone.core.config as foc
import fiftyone.core.labels as fol
import fiftyone.core.models as fom
import fiftyone.utils.torch as fout
import litetext

from .convert import to_fiftyone_detections, to_fiftyone_segmentation

logger = logging.getLogger(__name__)

#: FiftyOne's SAM3 convention: a detection attribute that marks an exemplar box negative when False.
NEGATIVE_EXEMPLAR_ATTRIBUTES = ("sam3_label", "sam_label")


class LitetextModelConfig(foc.Config):
    """Settings of a `LitetextModel`, in FiftyOne's model-config form (a dict of these keys builds it).

    - ``classes``: the text prompts, the same for every sample (FiftyOne's SAM3 uses the same name);
    - ``prompt_field``: a sample field holding each sample's own prompts (a string, a list of strings, a
      Classification(s), or Detections whose labels become prompts and whose boxes their exemplars); a
      ``prompt_field=`` passed to `apply_model` takes precedence;
    - ``exemplar_boxes``: use a Detections prompt field's boxes as exemplars (default), or only its labels;
    - ``confidence_thresh``: the instance score threshold (default 0.5); ``threshold`` is accepted too;
    - ``filter_classes``: keep only these output labels (what `apply_model(classes=...)` sets);
    - ``mask_threshold``, ``max_instances``, ``min_area``, ``label_map`` (prompt -> class), ``semantic``
      (also a `fo.Segmentation` per sample), ``model``, ``device``, ``dtype``: as everywhere in litetext;
    - ``skip_failures``: an unreadable image, or a bad prompt in the prompt field, is logged and its sample
      left without labels (default); False raises instead. FiftyOne does not pass `apply_model`'s own
      ``skip_failures`` to a model, so this is the model's own switch.
    """

    KEYS = ("model", "device", "dtype", "classes", "prompt_field", "exemplar_boxes", "confidence_thresh",
            "filter_classes", "mask_threshold", "max_instances", "min_area", "label_map", "semantic",
            "skip_failures")
    ALIASES = {"prompts": "classes", "threshold": "confidence_thresh"}

    def __init__(self, d: Mapping[str, Any]):
        d = parse_shared_options(self, d, "LitetextModel")
        self.exemplar_boxes = self.parse_bool(d, "exemplar_boxes", default=True)
        self.confidence_thresh = _fraction(d, "confidence_thresh")
        self.mask_threshold = _fraction(d, "mask_threshold")
        max_instances = self.parse_number(d, "max_instances", default=None)
        self.max_instances = None if max_instances is None else int(max_instances)
        self.min_area = int(self.parse_number(d, "min_area", default=0) or 0)
        self.semantic = self.parse_bool(d, "semantic", default=False)
        self.skip_failures = self.parse_bool(d, "skip_failures", default=True)
        if self.semantic and self.prompt_field:
            raise ValueError(_SEMANTIC_NEEDS_FIXED_PROMPTS)

    def segment_options(self) -> litetext.SegmentOptions:
        """The engine settings of this config (`options.engine()`, `options.filters()`)."""
        return litetext.SegmentOptions(
            model=self.model, device=self.device, dtype=self.dtype,
            threshold=self.confidence_thresh, mask_threshold=self.mask_threshold, max_instances=self.max_instances,
            min_area=self.min_area,
        )


_SEMANTIC_NEEDS_FIXED_PROMPTS = ("semantic=True needs the same prompts for every sample (its mask targets are "
                                 "{k+1: class}); it cannot be combined with a prompt_field")


def parse_shared_options(config: foc.Config, d: Mapping[str, Any], model_name: str) -> dict[str, Any]:
    """Set the options the image and the video model share on `config` (``model``, ``device``, ``dtype``,
    ``classes``, ``prompt_field``, ``filter_classes``, ``label_map``) and return `d` with aliases resolved;
    an option not in ``config.KEYS`` is refused, naming the known ones."""
    d = {config.ALIASES.get(k, k): v for k, v in d.items()}
    unknown = sorted(set(d) - set(config.KEYS))
    if unknown:
        raise ValueError(f"unknown {model_name} option(s) {', '.join(unknown)}; known: {', '.join(config.KEYS)}")
    model = d.get("model", litetext.DEFAULT_MODEL)
    config.model = os.fspath(model) if model is not None else litetext.DEFAULT_MODEL
    config.device = config.parse_string(d, "device", default="auto") or "auto"
    config.dtype = config.parse_string(d, "dtype", default="auto") or "auto"
    classes = d.get("classes")
    config.classes = litetext.normalize_prompts(classes) if classes else None
    config.prompt_field = config.parse_string(d, "prompt_field", default=None)
    config.filter_classes = config.parse_array(d, "filter_classes", default=None)
    config.label_map = dict(config.parse_dict(d, "label_map", default=None) or {})
    return d


def keeps_prompt(config: foc.Config, prompt: str | None) -> bool:
    """Whether ``config.filter_classes`` (apply_model's `classes`) keeps the instances of `prompt` (its label
    after ``config.label_map``)."""
    if config.filter_classes is None:
        return True
    return config.label_map.get(prompt, prompt) in set(config.filter_classes)


def _fraction(d: Mapping[str, Any], key: str) -> float:
    value = d.get(key)
    if value is None:
        return 0.5
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise ValueError(f"{key} must be a number between 0 and 1, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class Exemplars:
    """Exemplar boxes for one prompt, from a Detections prompt field: relative ``[x, y, w, h]`` boxes and
    their labels (1 positive, 0 negative). `prompt` is None for boxes without a label (a visual-only query)."""

    prompt: str | None
    boxes: list[list[float]]
    box_labels: list[int]

    def pixel_boxes(self, image_size: tuple[int, int]) -> list[list[float]]:
        """The boxes as pixel ``[x1, y1, x2, y2]``, clipped to the image (FiftyOne boxes may overshoot by a hair);
        a NaN or infinite coordinate is kept, for the engine to refuse rather than clip to the edge."""
        width, height = image_size

        def clip(value: float, limit: int) -> float:
            return min(max(value, 0.0), limit) if math.isfinite(value) else value

        return [[clip(x * width, width), clip(y * height, height), clip((x + w) * width, width),
                 clip((y + h) * height, height)] for x, y, w, h in self.boxes]


@dataclass
class SampleInput:
    """What `LitetextGetItem` reads for one sample: its decoded RGB image (or why it could not be read), and
    the prompts of its prompt field (None when no prompt field is used)."""

    sample_id: str | None
    filepath: str | None
    image: Any = None
    error: litetext.LitetextError | None = None
    prompts: list[str] | None = None
    exemplars: list[Exemplars] = field(default_factory=list)


class LitetextGetItem(fout.GetItem):
    """Reads a sample for `LitetextModel` inside FiftyOne's data loader: the image, decoded and validated by
    `litetext.load_image`, and the prompts of the ``prompt_field`` key when it is mapped. A failure is
    returned in `SampleInput.error` rather than raised, so that it loses only this sample, never its batch."""

    def __init__(self, field_mapping: Mapping[str, str] | None = None, exemplar_boxes: bool = True):
        self._uses_prompt_field = bool(field_mapping and field_mapping.get("prompt_field"))
        self.exemplar_boxes = exemplar_boxes
        super().__init__(field_mapping=dict(field_mapping or {}))

    @property
    def required_keys(self) -> list[str]:
        return ["id", "filepath", *(["prompt_field"] if self._uses_prompt_field else [])]

    def __call__(self, d: Mapping[str, Any]) -> SampleInput:
        item = SampleInput(sample_id=d.get("id"), filepath=d.get("filepath"))
        try:
            item.image = litetext.load_image(item.filepath)
            if self._uses_prompt_field:
                item.prompts, item.exemplars = read_prompt_value(d.get("prompt_field"),
                                                                 exemplar_boxes=self.exemplar_boxes)
        except litetext.LitetextError as error:  # one bad sample must not fail its batch: predict_all reports it
            item.error = error
        except Exception as error:  # an unforeseen decoder failure, likewise
            item.error = litetext.InvalidImageError(f"{item.filepath}: cannot read ({type(error).__name__}: {error})")
        return item


def read_prompt_value(value: Any, *, exemplar_boxes: bool = True) -> tuple[list[str], list[Exemplars]]:
    """The text prompts and exemplar boxes in one sample's prompt-field value.

    A string holds prompts separated by commas; a list holds prompts; a Classification or Classifications
    gives its labels; Detections give their labels, and (with `exemplar_boxes`) each label's boxes as its
    exemplars, positive unless the detection's ``sam3_label`` (or ``sam_label``) is False. A detection without a
    box, or with a label attribute other than True or False, is `litetext.BoxError`.
    """
    if value is None:
        return [], []
    if isinstance(value, str):
        return ([] if not value.strip() else litetext.split_prompts(value)), []
    if isinstance(value, (list, tuple)):
        return (litetext.normalize_prompts(list(value)) if value else []), []
    if isinstance(value, fol.Classification):
        return ([] if not value.label else litetext.normalize_prompts(value.label)), []
    if isinstance(value, fol.Classifications):
        labels = [c.label for c in value.classifications if c.label]
        return (litetext.normalize_prompts(labels) if labels else []), []
    if isinstance(value, (fol.Detection, fol.Detections)):
        detections = [value] if isinstance(value, fol.Detection) else value.detections
        if not exemplar_boxes:
            labels = [d.label for d in detections if d.label]
            return (litetext.normalize_prompts(labels) if labels else []), []
        groups: dict[str | None, Exemplars] = {}
        for detection in detections:
            prompt = " ".join(detection.label.split()) if detection.label and detection.label.strip() else None
            group = groups.setdefault(prompt, Exemplars(prompt, [], []))
            group.boxes.append(_exemplar_box(detection))
            group.box_labels.append(_exemplar_label(detection))
        return [], list(groups.values())
    raise litetext.PromptError(
        f"the prompt field holds a {type(value).__name__}: use a string, a list of strings, a Classification(s) "
        "or Detections")


def _exemplar_box(detection: fol.Detection) -> list[float]:
    """A prompt detection's relative ``[x, y, w, h]`` box, or `litetext.BoxError` when it has none."""
    box = detection.bounding_box
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        raise litetext.BoxError(f"the prompt field's {detection.label!r} detection has bounding_box {box!r}: an "
                                "exemplar box is four relative numbers [x, y, width, height]")
    return list(box)


def _exemplar_label(detection: fol.Detection) -> int:
    """1 for a positive exemplar, 0 for a negative one (``sam3_label`` or ``sam_label`` False); a value of those
    attributes other than True or False is `litetext.BoxError` rather than a guess."""
    for name in NEGATIVE_EXEMPLAR_ATTRIBUTES:
        value = detection.get_field(name) if detection.has_field(name) else None
        if value is None:
            continue
        if not isinstance(value, bool):
            raise litetext.BoxError(f"the prompt field's {detection.label!r} detection has {name} {value!r}: it "
                                    "must be True (a positive exemplar) or False (a negative one)")
        return int(value)
    return 1


class PromptsFromConfig:
    """`prompts` (alias `classes`, as FiftyOne's models name it): the config's `classes`, normalised when set."""

    @property
    def prompts(self) -> list[str] | None:
        """The text prompts used for every sample or video (`config.classes`)."""
        return self.config.classes

    @prompts.setter
    def prompts(self, value: str | Sequence[str] | None) -> None:
        self.config.classes = litetext.normalize_prompts(value) if value else None

    classes = prompts


class LitetextModel(PromptsFromConfig, fom.Model, fom.EmbeddingsMixin, fom.TorchModelMixin, fom.SupportsGetItem):
    """SAM3-LiteText as a FiftyOne image model: text-prompted instance masks as `fo.Detections`.

    Build it from a `LitetextModelConfig`, or with keywords::

        model = LitetextModel(["person", "dog"], model="s0-16", confidence_thresh=0.4)
        dataset.apply_model(model, label_field="litetext", batch_size=8)
        dataset.apply_model(model, label_field="per_sample", prompt_field="ground_truth")

    Each image is encoded once and all its prompts decoded against that encoding; a batch goes through the
    vision encoder at once. Set `classes` (or `prompts`) between runs to segment other things: the engine's
    caches are kept. `embed` / `embed_all` give a pooled image embedding for similarity search
    (`Engine.embed_image`).
    """

    def __init__(self, config: LitetextModelConfig | str | Sequence[str] | None = None, **options: Any):
        if not isinstance(config, LitetextModelConfig):
            config = LitetextModelConfig({**options, **({} if config is None else {"classes": config})})
        elif options:
            raise TypeError("pass either a LitetextModelConfig or keyword options, not both")
        self.config = config
        self.engine = config.segment_options().engine()
        self._preprocess = True

    @property
    def media_type(self) -> str:
        return "image"

    @property
    def ragged_batches(self) -> bool:
        return False  # batches are lists of `SampleInput`s (collate_fn), never stacked tensors

    @property
    def transforms(self) -> None:
        return None

    @property
    def preprocess(self) -> bool:
        return self._preprocess

    @preprocess.setter
    def preprocess(self, value: bool) -> None:
        self._preprocess = value

    @property
    def has_collate_fn(self) -> bool:
        return True

    @staticmethod
    def collate_fn(batch: list[Any]) -> list[Any]:
        return list(batch)

    @property
    def has_embeddings(self) -> bool:
        return True

    @property
    def _using_gpu(self) -> bool:  # read by apply_model(pin_memory=True)
        return self.engine.device.type == "cuda"

    def build_get_item(self, field_mapping: Mapping[str, str] | None = None) -> LitetextGetItem:
        """The `GetItem` FiftyOne's data loader reads samples with; ``prompt_field`` may be mapped."""
        mapping = dict(field_mapping or {})
        if not mapping.get("prompt_field") and self.config.prompt_field:
            mapping["prompt_field"] = self.config.prompt_field
        if mapping.get("prompt_field") and self.config.semantic:
            raise ValueError(_SEMANTIC_NEEDS_FIXED_PROMPTS)
        return LitetextGetItem(field_mapping=mapping, exemplar_boxes=self.config.exemplar_boxes)

    def predict(self, arg: Any) -> Any:
        """Labels for one image (an HWC uint8 array, PIL image, path, or a `SampleInput`)."""
        return self.predict_all([arg])[0]

    def predict_all(self, args: Iterable[Any]) -> list[Any]:
        """Labels for a batch: `fo.Detections` per image (a dict with ``"detections"`` and ``"segmentation"``
        when `semantic`), or None for a sample that failed (logged) or had no prompt at all."""
        items = [_as_input(arg) for arg in args]
        if not self.config.classes and any(i.error is None and i.prompts is None and not i.exemplars for i in items):
            raise litetext.PromptError("LitetextModel has no prompts: set model.classes = ['person', ...] or pass "
                                       "prompt_field='<field>' to apply_model")
        filters = self.config.segment_options().filters()
        outcomes: list[list[litetext.Result] | Exception | None] = []
        text_jobs = []
        for item in items:
            prompts = None if item.error is not None else self._prompts_for(item)
            outcomes.append(item.error if item.error is not None else None if prompts is None else [])
            if prompts:
                text_jobs.append((len(outcomes) - 1, prompts))
        pairs = [(items[index].image, prompts) for index, prompts in text_jobs]
        for (index, _), batch_item in zip(text_jobs, self.engine.segment_batch(
                pairs, None, batch_size=max(1, len(pairs)), **filters)):
            outcomes[index] = [self._keep_wanted(batch_item.result)] if batch_item.ok else batch_item.error
        for index, item in enumerate(items):
            if isinstance(outcomes[index], list):
                try:
                    outcomes[index].extend(self._segment_exemplars(item, filters))
                except litetext.LitetextError as error:
                    outcomes[index] = error
        return [self._labels(item, outcome) for item, outcome in zip(items, outcomes)]

    def embed(self, arg: Any) -> np.ndarray:
        """The pooled image embedding of one image (`Engine.embed_image`)."""
        return self.embed_all([arg])[0]

    def embed_all(self, args: Iterable[Any]) -> np.ndarray:
        """Pooled image embeddings, stacked; raises `litetext.InvalidImageError` naming an unreadable image
        (FiftyOne then skips the batch, as it does for any model)."""
        embeddings = []
        for item in map(_as_input, args):
            if item.error is not None:
                raise item.error
            embeddings.append(np.asarray(self.engine.embed_image(item.image), dtype=np.float32))
        return np.stack(embeddings)

    def _prompts_for(self, item: SampleInput) -> list[str] | None:
        """The prompts decoded without exemplars for this sample, or None when it has no prompt at all.

        Prompts that also have exemplar boxes are decoded with them only. Without `semantic`, prompts that
        `filter_classes` would drop are not decoded at all; with it, every prompt is decoded (the pixel
        values must index `classes`) and the unwanted instances are dropped afterwards.
        """
        with_exemplars = {group.prompt for group in item.exemplars}
        prompts = [p for p in dict.fromkeys([*(self.config.classes or []), *(item.prompts or [])])
                   if p not in with_exemplars]
        if not prompts and not item.exemplars:
            logger.info("litetext: sample %s has no prompts; left without labels", item.sample_id)
            return None
        return prompts if self.config.semantic else [p for p in prompts if keeps_prompt(self.config, p)]

    def _keep_wanted(self, result: litetext.Result) -> litetext.Result:
        if self.config.filter_classes is None:
            return result
        return result.filter(prompts=[p for p in result.prompts if keeps_prompt(self.config, p)])

    def _segment_exemplars(self, item: SampleInput, filters: Mapping[str, Any]) -> list[litetext.Result]:
        """One query per exemplar group: its text (if any) with its boxes, as SAM3 takes exemplars."""
        return [
            self._keep_wanted(self.engine.segment(
                item.image, None if group.prompt is None else [group.prompt],
                boxes=group.pixel_boxes(item.image.size), box_labels=group.box_labels, **filters))
            for group in item.exemplars if group.prompt is None or keeps_prompt(self.config, group.prompt)
        ]

    def _labels(self, item: SampleInput, outcome: list[litetext.Result] | Exception | None) -> Any:
        if outcome is None:
            return None
        if isinstance(outcome, Exception):
            if not self.config.skip_failures:
                raise outcome
            logger.warning("litetext: skipped sample %s (%s): %s", item.sample_id, item.filepath, outcome)
            return None
        detections = [d for result in outcome
                      for d in to_fiftyone_detections(result, label_map=self.config.label_map).detections]
        labels = fol.Detections(detections=detections)
        if not self.config.semantic:
            return labels
        return {"detections": labels, "segmentation": to_fiftyone_segmentation(outcome[0]) if outcome else
                fol.Segmentation(mask=np.zeros(item.image.size[::-1], dtype=np.uint16))}


def _as_input(arg: Any) -> SampleInput:
    """A `SampleInput` from what FiftyOne passes: ours (data loader), or a bare image (direct calls)."""
    if isinstance(arg, SampleInput):
        return arg
    return SampleInput(sample_id=None, filepath=arg if isinstance(arg, (str, os.PathLike)) else None,
                       image=litetext.load_image(arg))
