"""Conversions between ComfyUI tensors and litetext results. No ComfyUI import: usable and testable anywhere.

ComfyUI conventions: IMAGE is float `[B, H, W, C]` in 0..1, MASK is float `[B, H, W]` in 0..1, and a
BOUNDING_BOX value (as core's SAM3 Detect emits it) is one list per image of `{x, y, width, height, ...}`
dicts in pixels.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

import litetext


def parse_prompts(text: str) -> list[str]:
    """Split a prompt box into concepts: one per line or comma-separated; blanks and duplicates dropped."""
    return litetext.split_prompts(text, separators=",\n;")


def parse_indices(text: str, name: str = "indices") -> list[int] | None:
    """Parse '0, 2, -1' (or a JSON list '[0, 2]') into integers; an empty string means 'all' (None)."""
    parts = [part for part in re.split(r"[,\s\[\]]+", text or "") if part]
    if not parts:
        return None
    # Plain ASCII digits only: Python's int() also reads '1_0' as 10 and other scripts' digits.
    if not all(re.fullmatch(r"[+-]?[0-9]+", part) for part in parts):
        raise litetext.InputError(f"{name} must be whole numbers separated by commas, e.g. '0, 2', not {text!r}")
    return [int(part) for part in parts]


def exemplar_boxes(boxes, batch_size: int) -> list[list[list[float]] | None]:
    """Per image of a batch, the exemplar boxes of a BOUNDING_BOX value as pixel xyxy (None: no boxes).

    Read as ComfyUI core's SAM3 Detect reads its `bboxes` input: one `{x, y, width, height}` dict or a list of
    them applies to every image; a list of lists gives each image its own, and a shorter one repeats its last
    entry. Raises `litetext.BoxError` for anything else, or more lists than images.
    """
    if boxes is None or (isinstance(boxes, (list, tuple)) and len(boxes) == 0):
        return [None] * batch_size
    if isinstance(boxes, dict):
        per_image = [[boxes]] * batch_size
    elif isinstance(boxes, (list, tuple)) and all(isinstance(box, dict) for box in boxes):
        per_image = [list(boxes)] * batch_size
    elif isinstance(boxes, (list, tuple)) and all(isinstance(entry, (list, tuple)) for entry in boxes):
        if len(boxes) > batch_size:
            raise litetext.BoxError(f"{len(boxes)} lists of boxes for a batch of {batch_size} images: give one "
                                    "list per image, or one list for all")
        per_image = [*boxes, *[boxes[-1]] * (batch_size - len(boxes))]
    else:
        raise litetext.BoxError(f"boxes must be a BOUNDING_BOX value: an {{x, y, width, height}} dict, a list of "
                                f"them, or one such list per image; got {_preview(boxes)}")
    return [[_xyxy(box) for box in entry] or None for entry in per_image]


def object_boxes(boxes, batch_size: int) -> list[list[float] | None]:
    """Per image of a batch, the one box (pixel xyxy) of a BOUNDING_BOX value that prompts LiteText Segment Object,
    or None. Read as `exemplar_boxes` reads it; an image given more than one box raises `litetext.BoxError`
    (Segment Object segments one object per image)."""
    per_image = exemplar_boxes(boxes, batch_size)
    for index, entry in enumerate(per_image):
        if entry is not None and len(entry) > 1:
            raise litetext.BoxError(f"{len(entry)} boxes for image {index}: Segment Object takes one box per image "
                                    "(one object); keep one first, e.g. LiteText Pick Instances with "
                                    "max_instances 1")
    return [None if entry is None else entry[0] for entry in per_image]


def parse_points(positive: str, negative: str = "") -> tuple[list[list[float]], list[int]]:
    """Click points from the JSON strings ComfyUI core's SAM3 Detect reads (`positive_coords`, `negative_coords`,
    as the KJNodes Points Editor writes them): `[{"x": 120, "y": 80}, ...]` in pixels; `[[x, y], ...]` pairs
    too. Blank means no points. Returns (points, labels): positives labelled 1, then negatives labelled 0.
    Raises `litetext.PromptError` naming the input for anything but pairs of JSON numbers; the numbers are
    passed on as they are, for `Engine.segment_object` to check (outside the image, NaN, too large)."""
    positives = _points(positive, "positive_coords")
    negatives = _points(negative, "negative_coords")
    return positives + negatives, [1] * len(positives) + [0] * len(negatives)


def _points(text: str, name: str) -> list[list[float]]:
    if text is None or not str(text).strip():
        return []
    try:  # every JSON number a float, as JavaScript reads it: an integer too large for one is infinite
        value = json.loads(text, parse_int=float)
    except (TypeError, ValueError) as error:
        raise litetext.PromptError(f"{name} is not JSON ({error}): write points as "
                                   '[{"x": 120, "y": 80}, ...] in pixels') from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise litetext.PromptError(f'{name} must be a JSON list of points like [{{"x": 120, "y": 80}}], not '
                                   f"{_preview(value)}")
    points = []
    for point in value:
        if isinstance(point, dict):
            point = [point.get("x"), point.get("y")]
        valid = (isinstance(point, (list, tuple)) and len(point) == 2
                 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point))
        if not valid:
            raise litetext.PromptError(f'{name}: a point must be {{"x": number, "y": number}} (or [x, y]) in '
                                       f"pixels, not {_preview(point)}")
        points.append(list(point))
    return points


def _xyxy(box) -> list[float]:
    """A BOUNDING_BOX entry `{x, y, width, height}` (pixels) as `[x1, y1, x2, y2]`; text and booleans are not
    numbers here (`float` would read "12" and True)."""
    values = [box.get(key) for key in ("x", "y", "width", "height")] if isinstance(box, Mapping) else []
    try:  # text and booleans are left out, so that four numbers are not found
        x, y, width, height = (float(value) for value in values if not isinstance(value, (str, bytes, bool)))
    except (TypeError, ValueError, OverflowError):
        raise litetext.BoxError(f"a box must be a dict of numbers x, y, width, height in pixels, not "
                                f"{_preview(box)}") from None
    return [x, y, x + width, y + height]


def _preview(value) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class ImageFrames(Sequence):
    """A ComfyUI IMAGE tensor `[B, H, W, C]` (float 0..1) as a sequence of RGB PIL images, each converted when it
    is read, so a long batch of video frames is never held twice. Frames are validated by `litetext.load_image`
    (extra channels dropped, values outside 0..1 clamped; zero size or NaN/infinite values raise
    `InvalidImageError`); a tensor that is not an image batch, or an empty one, raises it at once."""

    def __init__(self, images):
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.ndim != 4 or images.shape[0] == 0:
            raise litetext.InvalidImageError(f"expected an IMAGE tensor [B, H, W, C] with B > 0, got shape "
                                             f"{tuple(images.shape)}: the batch is empty or not an image")
        self.images = images

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> Image.Image:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return litetext.load_image(self.images[index].detach().float().cpu().numpy())

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of every frame."""
        return int(self.images.shape[2]), int(self.images.shape[1])


def images_to_pil(images) -> list[Image.Image]:
    """A ComfyUI IMAGE tensor `[B, H, W, C]` (float 0..1) as a list of RGB PIL images (see `ImageFrames`)."""
    return list(ImageFrames(images))


def image_tensor(image: Image.Image):
    """One RGB PIL image as a ComfyUI IMAGE frame `[H, W, 3]` float 0..1 (on the CPU)."""
    import torch

    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)


def pil_to_image_tensor(images: Sequence[Image.Image], device="cpu"):
    """RGB PIL images of one size as a ComfyUI IMAGE tensor `[B, H, W, 3]` float 0..1."""
    import torch

    return torch.stack([image_tensor(image) for image in images]).to(device)


@dataclass
class Segments:
    """The value of a LITETEXT_SEGMENTS socket: one litetext `Result` per image of a batch.

    Instance masks of the batch are concatenated image after image, so `counts[i]` instances belong to
    image i; `offsets()` gives where each image's instances start.
    """

    results: list[litetext.Result]
    image_size: tuple[int, int]  # (width, height), the same for every image of a ComfyUI batch
    prompts: list[str] = field(default_factory=list)

    @property
    def counts(self) -> list[int]:
        """Instances per image."""
        return [len(result) for result in self.results]

    def offsets(self) -> list[int]:
        """Index of each image's first instance in the concatenated instance batch."""
        return [int(v) for v in np.cumsum([0, *self.counts])[:-1]]

    def union_masks(self, device="cpu"):
        """MASK `[B, H, W]`: per image, the union of its instances (zeros where there are none)."""
        import torch

        width, height = self.image_size
        if not self.results:
            return torch.zeros((0, height, width), dtype=torch.float32, device=device)
        union = np.stack([result.union_mask() for result in self.results]).astype(np.float32)
        return torch.from_numpy(union).to(device)

    def instance_masks(self, device="cpu"):
        """MASK `[N, H, W]`: every instance of every image, in image order (N = sum of counts, may be 0)."""
        import torch

        width, height = self.image_size
        masks = [result.masks for result in self.results if len(result)]
        if not masks:
            return torch.zeros((0, height, width), dtype=torch.float32, device=device)
        return torch.from_numpy(np.concatenate(masks).astype(np.float32)).to(device)

    def bounding_boxes(self) -> list[list[dict]]:
        """Boxes in ComfyUI core's BOUNDING_BOX shape: per image a list of pixel `{x, y, width, height}` dicts,
        with the instance's `score` and `label` (prompt) added, as core's SAM3 Detect adds `score`."""
        boxes = []
        for result in self.results:
            boxes.append([
                {"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1, "score": inst.score, "label": inst.prompt}
                for inst in result
                for x1, y1, x2, y2 in [inst.box]
            ])
        return boxes

    def scores(self) -> list[list[float]]:
        """Per image, each instance's score (aligned with the boxes and the instance masks)."""
        return [[round(float(s), 4) for s in result.scores] for result in self.results]

    def scores_json(self) -> str:
        return json.dumps(self.scores())

    def summary(self) -> list[dict]:
        """Per image: count and per instance prompt, score, pixel xyxy box and area."""
        return [
            {"image": i, "count": len(result),
             "instances": [{"prompt": inst.prompt, "score": round(inst.score, 4),
                            "box": [round(v, 1) for v in inst.box], "area": inst.area} for inst in result]}
            for i, result in enumerate(self.results)
        ]

    def pick(
        self,
        *,
        prompts: Sequence[str] | None = None,
        indices: Sequence[int] | None = None,
        min_score: float = 0.0,
        max_instances: int = 0,
    ) -> Segments:
        """Per image, keep instances answering `prompts`, scoring above `min_score`, then those at `indices`
        in best-score-first order (negative counts from the end), then the `max_instances` best (0 = all)."""
        picked = []
        for result in self.results:
            kept = result.filter(min_score=min_score if min_score > 0 else None,
                                 prompts=list(prompts) if prompts else None)
            order = np.argsort(-kept.scores, kind="stable")
            if indices is not None:
                order = np.array([order[i] for i in indices if -len(order) <= i < len(order)], dtype=np.int64)
            if max_instances > 0:
                order = order[:max_instances]
            picked.append(kept.select(np.sort(order).astype(np.int64)))
        return Segments(picked, self.image_size, list(self.prompts))
