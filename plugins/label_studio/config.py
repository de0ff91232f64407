"""Read a Label Studio labelling config: which controls to predict and which noun phrase each label means.

Every label of a `BrushLabels`, `PolygonLabels` or `RectangleLabels` control on an `Image` is a concept.
Attributes (all optional):

- on a `<Label>`: `prompt="yellow school bus"` (the phrase to segment), or `predicted_values="bus,coach"`
  (several phrases, each mapped back to this label). Without either the label's `value` is the prompt.
- on a control: `model_score_threshold="0.4"` (instances scoring at or below are dropped), `model_skip="true"`
  (the backend leaves the control alone), `model_max_instances="10"`.

A `TextArea` on the image is the interactive text prompt box. A `RectangleLabels smart="true"` next to a
`BrushLabels` or `PolygonLabels` on the same image is an interactive tool, as in Label Studio's SAM examples: the
annotator draws with it to select an object, and automatic pre-annotation leaves it alone, so no instance comes
back twice. `model_skip="false"` on it asks for boxes as well.

Video: a `VideoRectangle` on a `Video` draws the tracks, and every label of the `Labels` controls on that video is
a concept to track (the same `prompt`/`predicted_values` attributes; `model_score_threshold`,
`model_max_instances` and `model_skip` on the `VideoRectangle` or the `Labels`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from xml.etree import ElementTree

from litetext import InputError

#: Control tags the backend predicts, and the region type each produces.
SUPPORTED_CONTROLS = {"BrushLabels": "brushlabels", "PolygonLabels": "polygonlabels",
                      "RectangleLabels": "rectanglelabels"}
#: Label Studio's frame rate for a `Video` without a `framerate` attribute (its frames are numbered by it).
DEFAULT_FRAMERATE = 24.0
_TRUE = {"true", "1", "yes", "on"}


class LabelConfigError(InputError):
    """The labelling config cannot be used: unparsable, or no control the backend can predict."""


@dataclass(frozen=True)
class LabelSpec:
    """One label of a control and the noun phrases that find it."""

    value: str
    prompts: tuple[str, ...]


@dataclass(frozen=True)
class ControlSpec:
    """One control to predict: its name, tag, the image it labels and its labels."""

    name: str
    tag: str
    to_name: str
    image_key: str
    labels: tuple[LabelSpec, ...]
    score_threshold: float | None = None
    max_instances: int | None = None
    skip: bool = False
    smart: bool = False

    @property
    def region_type(self) -> str:
        return SUPPORTED_CONTROLS[self.tag]

    def label(self, value: str) -> LabelSpec | None:
        """The label named `value` (exact, then case-insensitive), if the control has it."""
        for spec in self.labels:
            if spec.value == value:
                return spec
        folded = value.strip().casefold()
        return next((spec for spec in self.labels if spec.value.casefold() == folded), None)

    def label_for_text(self, text: str) -> LabelSpec | None:
        """The label a typed phrase names: by label value, else by one of its prompts (case-insensitive)."""
        found = self.label(text)
        if found is None:
            folded = " ".join(text.split()).casefold()
            found = next((s for s in self.labels if folded in (p.casefold() for p in s.prompts)), None)
        return found


@dataclass(frozen=True)
class VideoSpec:
    """One video to track: the `VideoRectangle` that draws the tracks, the `Video` it is on, and the labels of the
    `Labels` controls on that video. `framerate` is the Video tag's own (a number, or `$key` of the task data)."""

    name: str
    to_name: str
    video_key: str
    labels: tuple[LabelSpec, ...]
    framerate: str | None = None
    score_threshold: float | None = None
    max_instances: int | None = None
    skip: bool = False

    def label_of_prompts(self) -> dict[str, str]:
        """Each prompt and the label it finds (the first label wins a prompt two labels share)."""
        mapping: dict[str, str] = {}
        for spec in self.labels:
            for prompt in spec.prompts:
                mapping.setdefault(prompt, spec.value)
        return mapping

    def frames_per_second(self, data: dict | None) -> float:
        """The frame rate Label Studio numbers this video's frames by: the tag's `framerate` (read from the task
        data for `$key`), else Label Studio's default, 24."""
        value = self.framerate
        if value and value.startswith("$"):
            value = (data or {}).get(value[1:])
        try:
            number = float(value) if value not in (None, "") else DEFAULT_FRAMERATE
        except (TypeError, ValueError):
            number = DEFAULT_FRAMERATE
        if not math.isfinite(number) or number <= 0:
            return DEFAULT_FRAMERATE
        return 1 / number if number < 1 else number  # as Label Studio reads it: below 1 is seconds per frame


@dataclass(frozen=True)
class ParsedConfig:
    """What the backend needs from a labelling config."""

    controls: tuple[ControlSpec, ...]
    text_areas: tuple[str, ...] = ()
    images: dict[str, str] = field(default_factory=dict)  # Image tag name -> task data key
    skipped: tuple[str, ...] = ()
    videos: tuple[VideoSpec, ...] = ()

    @property
    def active(self) -> tuple[ControlSpec, ...]:
        """Image controls to predict (not skipped)."""
        return tuple(c for c in self.controls if not c.skip)

    @property
    def active_videos(self) -> tuple[VideoSpec, ...]:
        """Videos to track (not skipped)."""
        return tuple(v for v in self.videos if not v.skip)

    def control(self, name: str) -> ControlSpec | None:
        return next((c for c in self.controls if c.name == name), None)


def parse_label_config(config: str) -> ParsedConfig:
    """Parse a labelling config; raises `LabelConfigError` if it is not XML or has nothing to predict."""
    if not isinstance(config, str) or not config.strip():
        raise LabelConfigError("the labelling config is empty")
    if "<!DOCTYPE" in config.upper() or "<!ENTITY" in config.upper():
        raise LabelConfigError("the labelling config must not declare a DOCTYPE or entities")
    try:
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError as error:
        raise LabelConfigError(f"the labelling config is not valid XML ({error})") from None
    images = {el.get("name", ""): el.get("value", "").lstrip("$") for el in root.iter("Image") if el.get("name")}
    elements = [element for element in root.iter() if element.tag in SUPPORTED_CONTROLS]
    controls = [_control(element, images) for element in elements]
    controls = _tools_apart(controls, skip_given={el.get("name") for el in elements if el.get("model_skip")})
    text_areas = tuple(el.get("name", "") for el in root.iter("TextArea") if el.get("toName") in images)
    videos = _videos(root)
    skipped = [c.name for c in controls if c.skip] + [v.name for v in videos if v.skip]
    parsed = ParsedConfig(tuple(controls), text_areas, images, tuple(skipped), videos)
    if not parsed.active and not parsed.active_videos:
        found = ", ".join(sorted({el.tag for el in root.iter() if el.get("toName")})) or "none"
        reason = "every one has model_skip" if controls or videos else f"controls found: {found}"
        raise LabelConfigError(
            "the labelling config has no control litetext can predict: add a BrushLabels, PolygonLabels or "
            f"RectangleLabels control on an Image, or a VideoRectangle and Labels on a Video ({reason})"
        )
    return parsed


def _videos(root: ElementTree.Element) -> tuple[VideoSpec, ...]:
    """A `VideoSpec` per `VideoRectangle` on a `Video`, with the labels of every `Labels` control on that video."""
    videos = {el.get("name", ""): el for el in root.iter("Video") if el.get("name")}
    specs = []
    for element in root.iter("VideoRectangle"):
        name = element.get("name") or ""
        to_name = (element.get("toName") or "").split(",")[0]
        if not name or to_name not in videos:
            raise LabelConfigError(f"<VideoRectangle name={name!r}> must have a name and a toName naming a <Video>")
        controls = [el for el in root.iter("Labels") if to_name in (el.get("toName") or "").split(",")]
        labels: dict[str, LabelSpec] = {}  # the first label of each value
        for label in (label for control in [element, *controls] for label in control.iter("Label")):
            value = label.get("value")
            if value:
                labels.setdefault(value, LabelSpec(value, _prompts(label, value)))
        attribute = _first_attribute([element, *controls])
        skip = (attribute("model_skip") or "").strip().lower() in _TRUE
        if not labels and not skip:
            raise LabelConfigError(
                f"<VideoRectangle name={name!r}> on video {to_name!r} has no labels to track: add "
                f'<Labels name="videoLabels" toName="{to_name}"> with a <Label> per thing to find')
        threshold, max_instances = attribute("model_score_threshold"), attribute("model_max_instances")
        video = videos[to_name]
        specs.append(VideoSpec(
            name=name, to_name=to_name, video_key=(video.get("value") or "").lstrip("$"),
            labels=tuple(labels.values()),
            framerate=video.get("framerate") or video.get("frameRate"),
            score_threshold=_threshold(threshold, name) if threshold not in (None, "") else None,
            max_instances=_positive_int(max_instances, name) if max_instances not in (None, "") else None,
            skip=skip,
        ))
    return tuple(specs)


def _first_attribute(elements: list[ElementTree.Element]):
    """attribute(name) -> the value of `name` on the first of `elements` that sets it, else None."""
    return lambda name: next((el.get(name) for el in elements if el.get(name) not in (None, "")), None)


def _tools_apart(controls: list[ControlSpec], skip_given: set[str]) -> list[ControlSpec]:
    """Skip each smart RectangleLabels that shares its image with a mask control and sets no `model_skip`: it is
    the annotator's selection tool (Label Studio's SAM configs), not a second output for the same objects."""
    masked = {c.image_key for c in controls if c.tag != "RectangleLabels" and not c.skip}
    return [replace(c, skip=True) if c.tag == "RectangleLabels" and c.smart and c.name not in skip_given
            and c.image_key in masked else c for c in controls]


def _control(element: ElementTree.Element, images: dict[str, str]) -> ControlSpec:
    name = element.get("name") or ""
    to_name = (element.get("toName") or "").split(",")[0]
    if not name or to_name not in images:
        raise LabelConfigError(f"<{element.tag} name={name!r}> must have a name and a toName naming an <Image>")
    labels = []
    for label in element.iter("Label"):
        value = label.get("value")
        if not value:
            continue
        labels.append(LabelSpec(value, _prompts(label, value)))
    skip = element.get("model_skip", "").strip().lower()
    if not labels and skip not in _TRUE:
        raise LabelConfigError(f"<{element.tag} name={name!r}> has no <Label> children")
    threshold = element.get("model_score_threshold")
    max_instances = element.get("model_max_instances")
    return ControlSpec(
        name=name, tag=element.tag, to_name=to_name, image_key=images[to_name], labels=tuple(labels),
        score_threshold=_threshold(threshold, name) if threshold not in (None, "") else None,
        max_instances=_positive_int(max_instances, name) if max_instances not in (None, "") else None,
        skip=skip in _TRUE,
        smart=element.get("smart", "").strip().lower() in _TRUE,
    )


def _prompts(label: ElementTree.Element, value: str) -> tuple[str, ...]:
    if label.get("prompt", "").strip():
        return (" ".join(label.get("prompt").split()),)
    predicted = [" ".join(p.split()) for p in label.get("predicted_values", "").split(",") if p.strip()]
    return tuple(predicted) or (" ".join(value.split()),)


def _threshold(value: str, control: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0.0 <= number <= 1.0:
        raise LabelConfigError(f"control {control!r}: model_score_threshold must be between 0 and 1, not {value!r}")
    return number


def _positive_int(value: str, control: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise LabelConfigError(f"control {control!r}: model_max_instances must be a positive integer, not {value!r}")
    return number
