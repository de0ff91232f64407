"""The hooks of litetext's FiftyOne remote model zoo source (``zoo/__init__.py`` re-exports them).

FiftyOne calls `download_model` and `load_model` for ``foz.load_zoo_model(...)``, and `resolve_input` /
`parse_parameters` when the ``@voxel51/zoo`` "Apply zoo model" operator builds its form (its
``remote_params``) and turns the answers into `load_model` keywords.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import litetext

from .model import LitetextModel
from .segment import parse_prompt_specs

#: Zoo model names (manifest `base_name`) -> litetext model aliases.
ZOO_MODELS = {
    "litetext/sam3-litetext-s0-16": "s0-16",
    "litetext/sam3-litetext-s1-16": "s1-16",
    "litetext/sam3-litetext-l-16": "l-16",
    "litetext/sam3": "sam3",
    "litetext/sam3-litetext-tiny-random": "tiny-random",
    "litetext/efficientsam3-ev-m": "ev-m",
    "litetext/efficientsam3-rv-m": "rv-m",
    "litetext/efficientsam3-tv-m": "tv-m",
}

#: Label types whose labels can be each sample's prompts (`LitetextModelConfig.prompt_field`).
PROMPT_FIELD_KINDS = ("Detections", "Detection", "Classification", "Classifications")


def download_model(model_name: str, model_path: str) -> None:
    """Fetch the checkpoint of zoo model `model_name` into the directory `model_path`.

    The tiny random model has nothing to fetch: litetext builds it in its own cache on first use. A model published
    as an original `.pt` (EfficientSAM3) is downloaded and converted into `model_path`.
    """
    alias = zoo_alias(model_name)
    path = Path(model_path)
    spec = litetext.MODELS[alias]
    if spec.original_file is not None:
        from huggingface_hub import hf_hub_download

        litetext.convert_checkpoint(hf_hub_download(spec.repo_id, spec.original_file), path, overwrite=True)
    path.mkdir(parents=True, exist_ok=True)
    if spec.repo_id is not None and spec.original_file is None:
        from huggingface_hub import snapshot_download

        snapshot_download(spec.repo_id, local_dir=path)
    (path / "litetext.json").write_text(json.dumps({"zoo_model": model_name, "alias": alias}))


def load_model(model_name: str, model_path: str, classes: Sequence[str] | None = None,
               prompts: Sequence[str] | None = None, **options: Any) -> LitetextModel:
    """A `LitetextModel` on the checkpoint in `model_path`: pass `classes` (or `prompts`) and any
    `LitetextModelConfig` option (``prompt_field``, ``device``, ``confidence_thresh``, ``label_map``...).
    Without prompts the model still embeds images (`compute_embeddings`)."""
    alias = zoo_alias(model_name)
    checkpoint = alias if litetext.MODELS[alias].repo_id is None else model_path
    wanted = prompts if prompts is not None else classes
    return LitetextModel(wanted, model=checkpoint, **options)


def resolve_input(model_name: str, ctx: Any) -> Any:
    """The litetext part of the "Apply zoo model" form: prompts, a per-sample prompt field, the device."""
    import fiftyone.operators.types as types

    zoo_alias(model_name)
    params = ctx.params.get("remote_params") or {}
    inputs = types.Object()
    fields = prompt_fields(ctx.dataset) if ctx.dataset is not None else []
    inputs.list("prompts", types.String(), required=not params.get("prompt_field"), label="Prompts",
                description="noun phrases, e.g. 'yellow school bus'; 'prompt=class' stores another label")
    if fields:
        choices = types.Dropdown()
        for name in fields:
            choices.add_choice(name, label=name)
        inputs.enum("prompt_field", choices.values(), required=False, label="Prompts from each sample's field",
                    description="its labels become that sample's prompts; Detections also give exemplar boxes",
                    view=choices)
    inputs.str("device", default="auto", label="Device", description="auto, cpu, cuda or mps")
    return types.Property(inputs, view=types.View(label="SAM3-LiteText"))


def prompt_fields(collection: Any) -> list[str]:
    """The fields that can hold each sample's prompts: string and string-list fields, and labels."""
    import fiftyone as fo

    from .segment import label_fields

    names = label_fields(collection, PROMPT_FIELD_KINDS)
    for name, schema_field in collection.get_field_schema().items():
        if name != "filepath" and (isinstance(schema_field, fo.StringField) or (
                isinstance(schema_field, fo.ListField) and isinstance(schema_field.field, fo.StringField))):
            names.append(name)
    return sorted(names)


def parse_parameters(model_name: str, ctx: Any, params: dict[str, Any]) -> None:
    """Turn the form's answers (`params`, changed in place) into `load_model` keywords."""
    zoo_alias(model_name)
    prompts, label_map = parse_prompt_specs(params.pop("prompts", None) or [])
    if prompts:
        params["classes"] = prompts
    if label_map:
        params["label_map"] = label_map
    for key in ("prompt_field", "device"):
        if not params.get(key):
            params.pop(key, None)


def zoo_alias(model_name: str) -> str:
    """The litetext alias of a zoo model name (a ``:version`` tag is ignored)."""
    base = model_name.split(":")[0]
    if base not in ZOO_MODELS:
        raise ValueError(f"unknown litetext zoo model {model_name!r}; known: {', '.join(ZOO_MODELS)}")
    return ZOO_MODELS[base]
