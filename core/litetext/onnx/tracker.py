"""SAM3's tracker on ONNX Runtime: clicks and boxes on one object (`Engine.segment_object`) from an export's
tracker graphs.

`OnnxTracker` implements `litetext.runtime.TrackerRuntime` over an `OnnxSam3` whose export has them: the image
embeddings come out of the vision graph with the detector's features (so the image cache holds them, and a click
runs only the tracker's decoder graph), and each prompt runs `tracker_decoder` (one mask) or
`tracker_decoder_multimask` (three candidates). Video tracking needs the PyTorch backend.
"""

from __future__ import annotations

from typing import Any

from ..errors import NoTrackerError
from ..runtime.base import VisionOutput, per_image
from ..runtime.tracker import TrackerOutput, TrackerRuntime
from .manifest import TRACKER_DECODER, TRACKER_DECODER_MULTIMASK
from .runtime import OnnxSam3

#: Point labels of the tracker graphs' one point list (SAM's ONNX convention): the box corners and the padding.
BOX_CORNER_LABELS = (2, 3)
PADDING_LABEL = -1


def missing_tracker(directory: Any) -> NoTrackerError:
    """The error for clicks asked of an export without the tracker graphs."""
    return NoTrackerError(f"{directory} holds no tracker: it was exported from a checkpoint without SAM3's tracker; "
                          "export one that has it (litetext export sam3 --format onnx --out DIR, or a composition "
                          "written by litetext models assemble)")


class OnnxTracker(TrackerRuntime):
    """The tracker graphs of the export `runtime` runs (its sessions, lock and manifest)."""

    def __init__(self, runtime: OnnxSam3):
        import torch

        if not runtime.manifest.has_tracker:
            raise missing_tracker(runtime.directory)
        self.runtime = runtime
        self.model = self
        self.device, self.dtype = runtime.device, runtime.dtype
        mask_input = next(t for t in runtime.manifest.graphs[TRACKER_DECODER].inputs if t.name == "mask_input")
        self.mask_size = tuple(int(side) for side in mask_input.shape[-2:])
        self._torch = torch
        runtime.session(TRACKER_DECODER)  # load now, so a broken graph fails at load time

    def __repr__(self) -> str:
        return f"OnnxTracker({str(self.runtime.directory)!r})"

    def embed(self, vision: VisionOutput) -> list[tuple[Any, ...]]:
        return per_image(vision.tracker_embeddings)

    def decode(self, embeddings: tuple[Any, ...], *, input_points: Any = None, input_labels: Any = None,
               input_boxes: Any = None, input_masks: Any = None, multimask: bool = False) -> TrackerOutput:
        points, labels = self.point_list(input_points, input_labels, input_boxes)
        torch = self._torch
        feed = {f"image_embedding_{i}": level for i, level in enumerate(embeddings)}
        feed.update(input_points=points[None], input_labels=labels[None])
        if input_masks is None:
            feed.update(mask_input=torch.zeros(1, 1, *self.mask_size), has_mask_input=torch.zeros(1))
        else:
            feed.update(mask_input=input_masks.reshape(1, 1, *self.mask_size), has_mask_input=torch.ones(1))
        role = TRACKER_DECODER_MULTIMASK if multimask else TRACKER_DECODER
        iou_scores, pred_masks, _ = self.runtime.run_graph(role, feed)
        return TrackerOutput(iou_scores, pred_masks)

    def point_list(self, input_points: Any, input_labels: Any, input_boxes: Any) -> tuple[Any, Any]:
        """The processor's points, labels and box (one object) as the graphs' one point list: the clicks, the box's
        corners (labels 2, 3), then a padding point (label -1); no click and no box is one more padding point.
        Exactly the tokens `Sam3TrackerModel`'s prompt encoder makes of them."""
        torch = self._torch
        points = [] if input_points is None else [input_points.reshape(-1, 2).float()]
        labels = [] if input_labels is None else [input_labels.reshape(-1).long()]
        if input_boxes is not None:
            points.append(input_boxes.reshape(2, 2).float())
            labels.append(torch.tensor(BOX_CORNER_LABELS))
        if not points:
            points.append(torch.zeros(1, 2))
            labels.append(torch.tensor([PADDING_LABEL]))
        points.append(torch.zeros(1, 2))
        labels.append(torch.tensor([PADDING_LABEL]))
        return torch.cat(points), torch.cat(labels)

    def check_video(self) -> None:
        raise NoTrackerError("video tracking (track) needs the PyTorch backend: an ONNX export's tracker answers "
                             "clicks and boxes (segment_object) only; load the checkpoint with backend='torch'")
