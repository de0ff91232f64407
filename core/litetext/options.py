"""`SegmentOptions`: the model and segmentation settings every adapter exposes, defined once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .models import DEFAULT_MODEL

if TYPE_CHECKING:
    from .engine import Engine


@dataclass(frozen=True)
class SegmentOptions:
    """Which model runs where (`model`, `device`, `dtype`), which instances are kept (`threshold` on the score,
    `max_instances`, `min_area` in pixels), how masks are binarised (`mask_threshold`) and how many images go
    through the vision encoder at once (`batch_size`). Adapters subclass it with their own fields."""

    model: str = DEFAULT_MODEL
    device: str = "auto"
    dtype: str = "auto"
    threshold: float = 0.5
    mask_threshold: float = 0.5
    max_instances: int | None = None
    min_area: int = 0
    batch_size: int = 4

    def engine(self) -> Engine:
        """The process-wide engine for this model, device and dtype (`litetext.load`)."""
        from .engine import load

        return load(self.model, device=self.device, dtype=self.dtype)

    def filters(self) -> dict[str, Any]:
        """The keyword arguments that `Engine.segment` and `Engine.segment_batch` take from these options."""
        return {"threshold": self.threshold, "mask_threshold": self.mask_threshold,
                "max_instances": self.max_instances, "min_area": self.min_area}
