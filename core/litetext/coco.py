"""COCO instance-segmentation files from results: one category per prompt, RLE masks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .result import Result


class CocoBuilder:
    """Collects results image by image into one COCO dataset dict (pycocotools loads it)."""

    def __init__(self, prompts: Sequence[str]):
        self.categories = {prompt: i + 1 for i, prompt in enumerate(prompts)}
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []

    @property
    def annotation_count(self) -> int:
        return len(self.annotations)

    def add(self, file_name: str, result: Result) -> int:
        """Add one image's result; returns its image id. Prompts not seen before get new categories."""
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": file_name, "width": result.width, "height": result.height})
        for prompt in result.prompts:
            self.categories.setdefault(prompt, len(self.categories) + 1)
        category_ids = [self.categories[p] for p in result.prompts]
        self.annotations.extend(
            result.to_coco_annotations(image_id, category_ids, first_id=len(self.annotations) + 1)
        )
        return image_id

    def to_dict(self) -> dict[str, Any]:
        """The COCO dataset: info, images, annotations (RLE segmentation) and one category per prompt."""
        return {
            "info": {"description": "litetext text-prompted segmentation"},
            "images": self.images,
            "annotations": self.annotations,
            "categories": [{"id": i, "name": name, "supercategory": "prompt"} for name, i in self.categories.items()],
        }
