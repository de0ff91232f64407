"""A FiftyOne `Model` for `dataset.apply_model(...)`, and the remote-zoo hooks `download_model`/`load_model`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import fiftyone.core.models as fom
import litetext

from .convert import to_fiftyone_detections, to_fiftyone_segmentation

#: Zoo model names (manifest `base_name`) -> litetext model aliases.
ZOO_MODELS = {
    "litetext/sam3-litetext-s0-16": "s0-16",
    "litetext/sam3-litetext-s1-16": "s1-16",
    "litetext/sam3-litetext-l-16": "l-16",
    "litetext/sam3": "sam3",
    "litetext/sam3-litetext-tiny-random": "tiny-random",
}


class LitetextModel(fom.Model):
    """SAM3-LiteText as a FiftyOne image model: `predict_all` segments a batch of images with `prompts`,
    encoding each image once and decoding all prompts together, and returns one `fo.Detections` per image
    (or a dict ``{"detections": ..., "segmentation": ...}`` with `semantic=True`, which `apply_model` stores
    in ``<label_field>_detections`` and ``<label_field>_segmentation``).

    Use it with ``dataset.apply_model(model, label_field="litetext", batch_size=8)``. Set `prompts` (or its
    alias `classes`) between runs to segment other things; the engine's caches are kept.
    """

    def __init__(
        self,
        prompts: str | Sequence[str],
        *,
        model: str | os.PathLike = litetext.DEFAULT_MODEL,
        device: str = "auto",
        dtype: str = "auto",
        threshold: float = 0.5,
        mask_threshold: float = 0.5,
        label_map: Mapping[str, str] | None = None,
        max_instances: int | None = None,
        min_area: int = 0,
        semantic: bool = False,
    ):
        self.prompts = prompts
        self.engine = litetext.load(model, device=device, dtype=dtype)
        self.threshold = threshold
        self.mask_threshold = mask_threshold
        self.label_map = dict(label_map or {})
        self.max_instances = max_instances
        self.min_area = min_area
        self.semantic = semantic
        self._preprocess = True

    @property
    def prompts(self) -> list[str]:
        return self._prompts

    @prompts.setter
    def prompts(self, value: str | Sequence[str]) -> None:
        self._prompts = litetext.normalize_prompts(value)

    classes = prompts

    @property
    def media_type(self) -> str:
        return "image"

    @property
    def ragged_batches(self) -> bool:
        return False  # predict_all takes a list of differently-sized images as it is

    @property
    def transforms(self) -> None:
        return None

    @property
    def preprocess(self) -> bool:
        return self._preprocess

    @preprocess.setter
    def preprocess(self, value: bool) -> None:
        self._preprocess = value

    def predict(self, arg: Any) -> Any:
        """Labels for one image (an HWC uint8 array, PIL image or path)."""
        return self.predict_all([arg])[0]

    def predict_all(self, args: Sequence[Any]) -> list[Any]:
        """Labels for a batch of images; the batch goes through the vision encoder at once.

        Raises `litetext.InvalidImageError` naming the first image that cannot be read.
        """
        images = list(args)
        labels: list[Any] = [None] * len(images)
        items = self.engine.segment_batch(
            images, self.prompts, batch_size=max(1, len(images)), threshold=self.threshold,
            mask_threshold=self.mask_threshold, max_instances=self.max_instances, min_area=self.min_area,
        )
        for item in items:
            if not item.ok:
                raise item.error
            detections = to_fiftyone_detections(item.result, label_map=self.label_map)
            if self.semantic:
                labels[item.index] = {"detections": detections,
                                      "segmentation": to_fiftyone_segmentation(item.result)}
            else:
                labels[item.index] = detections
        return labels


# Remote model zoo hooks -------------------------------------------------------------------------------


def download_model(model_name: str, model_path: str) -> None:
    """Fetch the checkpoint of zoo model `model_name` into the directory `model_path`."""
    alias = _zoo_alias(model_name)
    path = Path(model_path)
    spec = litetext.MODELS[alias]
    if alias.startswith("tiny-random"):
        from litetext.testing import build_tiny_checkpoint

        build_tiny_checkpoint(path, architecture=spec.family)
    else:
        from huggingface_hub import snapshot_download

        snapshot_download(spec.repo_id, local_dir=path)
    (path / "litetext.json").write_text(json.dumps({"zoo_model": model_name, "alias": alias}))


def load_model(model_name: str, model_path: str, classes: Sequence[str] | None = None,
               prompts: Sequence[str] | None = None, **kwargs: Any) -> LitetextModel:
    """A `LitetextModel` on the checkpoint in `model_path`; pass `classes` (or `prompts`) and any
    `LitetextModel` option (device, threshold, mask_threshold, label_map, semantic, ...)."""
    _zoo_alias(model_name)
    wanted = prompts if prompts is not None else classes
    if not wanted:
        raise ValueError(f"{model_name} needs text prompts: load_zoo_model(..., classes=['person', 'car'])")
    return LitetextModel(wanted, model=model_path, **kwargs)


def _zoo_alias(model_name: str) -> str:
    base = model_name.split(":")[0]  # drop a version tag
    if base not in ZOO_MODELS:
        raise ValueError(f"unknown litetext zoo model {model_name!r}; known: {', '.join(ZOO_MODELS)}")
    return ZOO_MODELS[base]
