"""Settings that cross module boundaries, defined once: `SegmentOptions` (the model and segmentation settings
every adapter exposes) and `TrackOptions` (`Engine.track`'s settings)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .models.registry import DEFAULT_MODEL
from .prompts import check_track_settings

if TYPE_CHECKING:
    from .engine import Engine


@dataclass(frozen=True)
class SegmentOptions:
    """Which model runs where (`model`, `device`, `dtype`; `tracker`: where SAM3's tracker comes from for clicks
    and video, as `litetext.load` takes it, None for the model's own; `image_size`: the resolution lever, None for the
    checkpoint's), which instances are kept (`threshold` on
    the score, `max_instances`, `min_area` in pixels), how masks are binarised (`mask_threshold`) and how many
    images go through the vision encoder at once (`batch_size`). Adapters subclass it with their own fields."""

    model: str = DEFAULT_MODEL
    device: str = "auto"
    dtype: str = "auto"
    threshold: float = 0.5
    mask_threshold: float = 0.5
    max_instances: int | None = None
    min_area: int = 0
    batch_size: int = 4
    tracker: str | None = None
    image_size: int | None = None

    def engine(self) -> Engine:
        """The process-wide engine for this model, device, dtype and tracker (`litetext.load`)."""
        from .loader import load

        return load(self.model, device=self.device, dtype=self.dtype, tracker=self.tracker or None,
                    image_size=self.image_size)

    def filters(self) -> dict[str, Any]:
        """The keyword arguments that `Engine.segment` and `Engine.segment_batch` take from these options."""
        return {"threshold": self.threshold, "mask_threshold": self.mask_threshold,
                "max_instances": self.max_instances, "min_area": self.min_area}


@dataclass(frozen=True)
class TrackOptions:
    """`Engine.track`'s settings: detection `threshold`, `new_object_threshold` to start a track, `max_objects`
    (None: the checkpoint's), the frames to track (`start_frame`, at most `max_frames`) and the `mode`
    ("auto", "stream" or "video"). Checked when made: a bad setting raises `InputError` naming it."""

    threshold: float | None = None
    new_object_threshold: float | None = None
    max_objects: int | None = None
    start_frame: int = 0
    max_frames: int | None = None
    mode: str = "auto"

    def __post_init__(self) -> None:
        # A bad setting is refused where it is made, naming it; whole numbers are kept as ints (3.0 is 3).
        for name, value in check_track_settings(**asdict(self)).items():
            object.__setattr__(self, name, value)

    def as_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `Engine.track`."""
        return asdict(self)
