"""`Result`: the one type every stage produces and every adapter converts from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

#: Distinct colours, one per prompt (cycled past the end), as RGB.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
)


def prompt_color(index: int) -> tuple[int, int, int]:
    """The overlay colour of the prompt at `index`."""
    return PALETTE[index % len(PALETTE)]


@dataclass(frozen=True)
class Timings:
    """Where the time of one `segment` call went, in milliseconds."""

    encode_image_ms: float = 0.0
    encode_text_ms: float = 0.0
    decode_ms: float = 0.0
    postprocess_ms: float = 0.0
    image_cache_hit: bool = False

    @property
    def total_ms(self) -> float:
        return self.encode_image_ms + self.encode_text_ms + self.decode_ms + self.postprocess_ms


@dataclass(frozen=True)
class Instance:
    """One segmented instance: which prompt it answers, its score, pixel xyxy box and boolean mask, and its
    low-resolution mask logits when the result kept them (they seed `Engine.segment_object`)."""

    prompt: str
    prompt_index: int
    score: float
    box: tuple[float, float, float, float]
    mask: np.ndarray
    mask_logits: np.ndarray | None = None
    object_id: int | None = None  # in a tracked video frame: the object's id, stable across frames

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass
class Result:
    """Every instance found in one image, for the prompts asked.

    Arrays are aligned by instance: `prompt_indices[i]` indexes `prompts`, `scores[i]` is in 0..1,
    `boxes[i]` is pixel (x1, y1, x2, y2), `masks[i]` is a boolean (height, width) mask at the image's
    original size. Instances are grouped by prompt, in the model's query order within a prompt.
    """

    prompts: list[str]
    prompt_indices: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray
    image_size: tuple[int, int]
    timings: Timings = field(default_factory=Timings)
    #: Low-resolution mask logits (N, h, w) of the kept instances, when asked for with
    #: `segment(..., keep_mask_logits=True)` (always kept by `segment_object`); they let `with_mask_threshold`
    #: re-binarise without the model, and seed the tracker (`segment_object(..., mask_input=...)`).
    mask_logits: np.ndarray | None = None
    #: How those logits become masks: "detector" (sigmoid, upsample, threshold, as Sam3Processor does) or
    #: "tracker" (upsample the logits, threshold, as Sam3TrackerProcessor.post_process_masks does).
    mask_logits_kind: str = "detector"
    #: In a tracked video frame (`Engine.track`): each instance's object id, stable across the video's frames.
    object_ids: np.ndarray | None = None

    @classmethod
    def empty(cls, prompts: Sequence[str], image_size: tuple[int, int]) -> Result:
        """A result with no instances for an image of `image_size` (width, height)."""
        width, height = image_size
        return cls(
            prompts=list(prompts),
            prompt_indices=np.zeros(0, dtype=np.int64),
            scores=np.zeros(0, dtype=np.float32),
            boxes=np.zeros((0, 4), dtype=np.float32),
            masks=np.zeros((0, height, width), dtype=bool),
            image_size=(width, height),
        )

    @property
    def width(self) -> int:
        return self.image_size[0]

    @property
    def height(self) -> int:
        return self.image_size[1]

    @property
    def labels(self) -> list[str]:
        """The prompt of each instance."""
        return [self.prompts[i] for i in self.prompt_indices]

    @property
    def areas(self) -> np.ndarray:
        """Mask area of each instance, in pixels."""
        return self.masks.sum(axis=(1, 2))

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def __getitem__(self, index: int) -> Instance:
        prompt_index = int(self.prompt_indices[index])
        x1, y1, x2, y2 = (float(v) for v in self.boxes[index])
        logits = None if self.mask_logits is None else self.mask_logits[index]
        object_id = None if self.object_ids is None else int(self.object_ids[index])
        return Instance(self.prompts[prompt_index], prompt_index, float(self.scores[index]), (x1, y1, x2, y2),
                        self.masks[index], logits, object_id)

    def __iter__(self) -> Iterator[Instance]:
        return (self[i] for i in range(len(self)))

    # Filtering ---------------------------------------------------------------------------------------

    def select(self, keep: np.ndarray | Sequence[int]) -> Result:
        """A result with only the instances selected by a boolean mask or index list (order kept; when all are
        kept, it shares their arrays)."""
        keep = np.asarray(keep)
        if keep.dtype != bool:
            index = np.zeros(len(self), dtype=bool)
            index[keep.astype(np.int64)] = True
            keep = index
        if keep.all():  # nothing dropped: share the arrays (copying the masks took 1 s for 519 at 1280x960)
            return replace(self)
        return replace(self, prompt_indices=self.prompt_indices[keep], scores=self.scores[keep],
                       boxes=self.boxes[keep], masks=self.masks[keep],
                       mask_logits=None if self.mask_logits is None else self.mask_logits[keep],
                       object_ids=None if self.object_ids is None else self.object_ids[keep])

    def with_mask_threshold(self, mask_threshold: float) -> Result:
        """The same instances with masks re-binarised at `mask_threshold`, without running the model.

        Needs `mask_logits` (`segment(..., keep_mask_logits=True)`); gives exactly the masks a fresh
        `segment(..., mask_threshold=mask_threshold)` would. For a tracker result the threshold is a
        probability too: its logits are upsampled and compared with the threshold's logit, as the tracker's
        processor does (0.5 gives exactly the masks `segment_object` returned).
        """
        import torch

        if self.mask_logits is None:
            raise ValueError("this result has no mask_logits; segment with keep_mask_logits=True")
        logits = torch.from_numpy(self.mask_logits)
        upsample = upsample_logit_masks if self.mask_logits_kind == "tracker" else upsample_masks
        masks = upsample(logits, (self.height, self.width), mask_threshold)
        return replace(self, masks=masks.numpy())

    def filter(
        self,
        *,
        min_score: float | None = None,
        min_area: int = 0,
        prompts: Sequence[str] | None = None,
        max_instances: int | None = None,
    ) -> Result:
        """Keep instances scoring above `min_score` with at least `min_area` pixels, answering one of
        `prompts`; then the `max_instances` best-scoring of them. No model is run."""
        keep = np.ones(len(self), dtype=bool)
        if min_score is not None:
            keep &= self.scores > min_score
        if min_area > 0:
            keep &= self.areas >= min_area
        if prompts is not None:
            wanted = [i for i, p in enumerate(self.prompts) if p in set(prompts)]
            keep &= np.isin(self.prompt_indices, wanted)
        if max_instances is not None and keep.sum() > max_instances:
            candidates = np.flatnonzero(keep)
            best = candidates[np.argsort(-self.scores[candidates], kind="stable")[: max(0, max_instances)]]
            keep = np.zeros(len(self), dtype=bool)
            keep[best] = True
        return self.select(keep)

    # Conversions -------------------------------------------------------------------------------------

    def union_mask(self, prompt: str | None = None) -> np.ndarray:
        """Boolean (height, width) union of every instance's mask, or of one prompt's instances."""
        masks = self.masks if prompt is None else self.masks[np.asarray(self.labels, dtype=object) == prompt]
        if len(masks) == 0:
            return np.zeros((self.height, self.width), dtype=bool)
        return masks.any(axis=0)

    def semantic_map(self) -> np.ndarray:
        """uint16 (height, width) map: 0 for background, `prompt_index + 1` where an instance lies.

        Where instances overlap, the higher-scoring one wins.
        """
        semantic = np.zeros((self.height, self.width), dtype=np.uint16)
        for i in np.argsort(self.scores, kind="stable"):
            semantic[self.masks[i]] = self.prompt_indices[i] + 1
        return semantic

    def to_rle(self) -> list[dict[str, Any]]:
        """COCO RLE of each mask (`{"size": [h, w], "counts": str}`), as pycocotools encodes it."""
        from pycocotools import mask as mask_utils

        if len(self) == 0:
            return []
        encoded = mask_utils.encode(np.asfortranarray(self.masks.transpose(1, 2, 0).astype(np.uint8)))
        return [{"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}
                for r in encoded]

    def to_polygons(self, *, tolerance: float = 1.0) -> list[list[list[float]]]:
        """Outer contours of each mask as flat `[x0, y0, x1, y1, ...]` pixel polygons (COCO style).

        `tolerance` is the Douglas-Peucker simplification in pixels (0 keeps every contour point).
        """
        import cv2

        polygons = []
        for mask in self.masks:
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            shapes = []
            for contour in contours:
                if tolerance > 0:
                    contour = cv2.approxPolyDP(contour, tolerance, True)
                if len(contour) >= 3:
                    shapes.append(contour.reshape(-1).astype(float).tolist())
            polygons.append(shapes)
        return polygons

    def to_coco_annotations(
        self, image_id: int, category_ids: Sequence[int] | None = None, *, first_id: int = 1
    ) -> list[dict[str, Any]]:
        """COCO instance annotations with RLE segmentation; `category_ids[k]` is prompt k's category."""
        category_ids = list(category_ids) if category_ids is not None else list(range(1, len(self.prompts) + 1))
        annotations = []
        for i, (rle, area) in enumerate(zip(self.to_rle(), self.areas)):
            x1, y1, x2, y2 = (float(v) for v in self.boxes[i])
            annotations.append({
                "id": first_id + i,
                "image_id": image_id,
                "category_id": category_ids[int(self.prompt_indices[i])],
                "segmentation": rle,
                "area": int(area),
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": float(self.scores[i]),
                "iscrowd": 0,
            })
        return annotations

    def overlay(self, image: Image.Image, *, alpha: float = 0.5, draw_boxes: bool = True) -> Image.Image:
        """`image` with each instance's mask tinted in its prompt's colour (and its box outlined); in a tracked
        video frame each box is labelled with its object id and prompt."""
        from PIL import ImageDraw

        base = np.asarray(image.convert("RGB"), dtype=np.float32).copy()
        if base.shape[:2] != (self.height, self.width):
            raise ValueError(f"overlay image is {base.shape[1]}x{base.shape[0]}, result is {self.width}x{self.height}")
        for i in np.argsort(self.scores, kind="stable"):
            color = np.array(prompt_color(int(self.prompt_indices[i])), dtype=np.float32)
            mask = self.masks[i]
            base[mask] = base[mask] * (1.0 - alpha) + color * alpha
        out = Image.fromarray(base.round().astype(np.uint8))
        if draw_boxes and len(self):
            from PIL import ImageFont

            draw = ImageDraw.Draw(out)
            width = max(1, round(min(self.width, self.height) / 300))
            font = ImageFont.load_default(size=max(10, min(self.width, self.height) // 30))
            for i in range(len(self)):
                color = prompt_color(int(self.prompt_indices[i]))
                draw.rectangle([float(v) for v in self.boxes[i]], outline=color, width=width)
                if self.object_ids is not None:
                    caption = f"{int(self.object_ids[i])} {self.prompts[int(self.prompt_indices[i])]}"
                    x, y = float(self.boxes[i][0]), float(self.boxes[i][1])
                    left, top, right, bottom = draw.textbbox((x + 2, y + 1), caption, font=font)
                    draw.rectangle([left - 1, top - 1, right + 1, bottom + 1], fill=color)
                    draw.text((x + 2, y + 1), caption, fill=(0, 0, 0), font=font)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form: image size, prompts, and per instance prompt, score, box, area, RLE (and the
        object id, in a tracked video frame)."""
        instances = [
            {"prompt": self.prompts[int(k)], "prompt_index": int(k), "score": float(s),
             "box": [float(v) for v in b], "area": int(a), "rle": rle}
            for k, s, b, a, rle in zip(self.prompt_indices, self.scores, self.boxes, self.areas, self.to_rle())
        ]
        if self.object_ids is not None:
            for instance, object_id in zip(instances, self.object_ids):
                instance["object_id"] = int(object_id)
        return {"image_size": {"width": self.width, "height": self.height}, "prompts": list(self.prompts),
                "instances": instances}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        """Rebuild a result written by `to_dict` (timings are not kept)."""
        width, height = data["image_size"]["width"], data["image_size"]["height"]
        instances = data["instances"]
        if not instances:
            return cls.empty(data["prompts"], (width, height))
        masks = masks_from_rle([inst["rle"] for inst in instances])
        return cls(
            prompts=list(data["prompts"]),
            prompt_indices=np.array([inst["prompt_index"] for inst in instances], dtype=np.int64),
            scores=np.array([inst["score"] for inst in instances], dtype=np.float32),
            boxes=np.array([inst["box"] for inst in instances], dtype=np.float32).reshape(-1, 4),
            masks=masks,
            image_size=(width, height),
            object_ids=(np.array([inst["object_id"] for inst in instances], dtype=np.int64)
                        if "object_id" in instances[0] else None),
        )


#: Bytes of float32 full-resolution mask probabilities upsampled at once (bounds post-processing memory).
#: On a CPU a chunk that stays in the last-level cache between upsampling and thresholding, and reuses the
#: allocator's memory, is twice as fast as a large one (measured: 0.26 s against 0.55 s for 130 masks at
#: 1280x960); a GPU wants fewer, larger launches.
_UPSAMPLE_CHUNK_BYTES = {"cpu": 16 << 20, "other": 256 << 20}


def upsample_masks(logits, size: tuple[int, int], mask_threshold: float):
    """Binarise low-resolution mask logits (torch, N x h x w) at full `size` (height, width).

    The arithmetic of `Sam3Processor.post_process_instance_segmentation` (sigmoid, bilinear upsampling,
    threshold), done in chunks of instances so that large images stay within bounded memory. Returns a
    CPU bool tensor.
    """
    import torch

    height, width = size
    masks = torch.empty((len(logits), height, width), dtype=torch.bool)
    on_cpu = logits.device.type == "cpu"
    budget = _UPSAMPLE_CHUNK_BYTES["cpu" if on_cpu else "other"]
    chunk = max(1, budget // (4 * height * width))
    for start in range(0, len(logits), chunk):
        probabilities = torch.nn.functional.interpolate(
            logits[start : start + chunk].float().sigmoid().unsqueeze(0),
            size=(height, width), mode="bilinear", align_corners=False,
        ).squeeze(0)
        if on_cpu:
            torch.gt(probabilities, mask_threshold, out=masks[start : start + chunk])
        else:
            masks[start : start + chunk] = (probabilities > mask_threshold).cpu()
    return masks


def upsample_logit_masks(logits, size: tuple[int, int], mask_threshold: float = 0.5):
    """Binarise the tracker's low-resolution mask logits (torch, N x h x w) at full `size` (height, width).

    The arithmetic of `Sam3TrackerProcessor.post_process_masks` (bilinear upsampling of the logits, then a
    comparison with the threshold's logit: 0.5 is logit 0, the processor's default), one mask at a time so
    that a large image holds one full-size float mask. Returns a CPU bool tensor.
    """
    import math

    import torch

    height, width = size
    if mask_threshold <= 0.0 or mask_threshold >= 1.0:
        cut = -math.inf if mask_threshold <= 0.0 else math.inf
    else:
        cut = math.log(mask_threshold / (1.0 - mask_threshold))
    masks = torch.zeros((len(logits), height, width), dtype=torch.bool)
    for i in range(len(logits)):
        upsampled = torch.nn.functional.interpolate(logits[None, i : i + 1].float(), (height, width),
                                                    mode="bilinear", align_corners=False)
        masks[i] = (upsampled[0, 0] > cut).cpu()
    return masks


def masks_from_rle(rles: Sequence[dict[str, Any]]) -> np.ndarray:
    """Decode COCO RLE dicts (counts as str or bytes) into a boolean (N, height, width) array."""
    from pycocotools import mask as mask_utils

    decoded = [
        mask_utils.decode({"size": r["size"], "counts": r["counts"].encode("ascii") if isinstance(r["counts"], str)
                           else r["counts"]})
        for r in rles
    ]
    return np.stack(decoded).astype(bool) if decoded else np.zeros((0, 0, 0), dtype=bool)


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Pixel xyxy boxes around each mask's pixels (x2, y2 one past the last pixel); zeros for an empty mask."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows):
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes
