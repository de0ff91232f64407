"""CoreML export of the text encoder, the part SAM3-LiteText changed (`pip install "litetext[coreml]"`).

    >>> from litetext.coreml import export_coreml
    >>> export_coreml("s0-16", "s0-coreml")       # or: litetext export s0-16 --format coreml --out s0-coreml

The directory holds `text_encoder.mlpackage` (an ML Program: token ids and attention mask, 1 to 64 prompts of
32 tokens, to the projected per-token text features SAM3's decoder reads), the processor's tokenizer files
and `manifest.json`, which records every file's SHA-256 (`check_coreml_export` verifies them). It is for apps
that pair LiteText's text encoder with their own SAM3 runtime on Apple devices. coremltools converts on any OS;
**running the package needs Apple hardware** (macOS 14 / iOS 17 or newer). litetext's machines are not Apple's,
so what is checked here is the program CoreML converts from (`torch.export`'s, against the model) and the
package's interface, not CoreML's own arithmetic.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError
from .models.atomic_dir import check_target, move_into_place, staging_dir
from .models.manifests import export_format
from .prompts import TEXT_LENGTH  # tokens per prompt, as Sam3Processor pads them

FORMAT = "litetext-coreml"
PACKAGE_NAME = "text_encoder.mlpackage"
MANIFEST_NAME = "manifest.json"
MAX_PROMPTS = 64
PRECISIONS = ("fp32", "fp16")
MINIMUM_DEPLOYMENT = "macOS14"  # ML Programs with flexible shapes; iOS 17 is the same generation
#: How far the program CoreML converts may differ from the model before the export is refused.
TOLERANCE = 1e-4


@dataclass(frozen=True)
class CoremlExport:
    """What a CoreML export holds and what wrote it (`manifest.json`)."""

    model: str
    checkpoint: str
    model_type: str
    litetext_version: str
    transformers_version: str
    torch_version: str
    coremltools_version: str
    precision: str  # "fp32" or "fp16" (CoreML's compute precision)
    minimum_deployment_target: str
    text_length: int
    max_prompts: int
    text_encoder_params: int
    package: str
    inputs: dict[str, list]  # name: [shape, dtype]; "prompts" is the flexible axis
    outputs: dict[str, list]
    exported_program_max_difference: float  # the converted program against the model, on example prompts
    digests: dict[str, str]  # every file but manifest.json (the package's too): "sha256:<hex>"
    format: str = FORMAT

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST_NAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path


def is_coreml_export(directory: str | os.PathLike) -> bool:
    """True when `directory` holds a litetext CoreML export's manifest."""
    return export_format(directory) == FORMAT


def check_coreml_export(directory: str | os.PathLike) -> CoremlExport:
    """Read the manifest of the CoreML export in `directory` and check that every file it lists is there with the
    SHA-256 it records (before shipping the package to an app); raises `InvalidExportError` naming the file."""
    from .models.manifests import InvalidExportError, check_digests

    directory = Path(os.fspath(directory)).expanduser()
    path = directory / MANIFEST_NAME
    if not is_coreml_export(directory):
        raise InvalidExportError(f"{directory} is not a litetext CoreML export ({path} missing or of another "
                                 "format); export one: litetext export MODEL --format coreml --out DIR")
    try:
        manifest = CoremlExport(**json.loads(path.read_text()))
    except TypeError as error:
        raise InvalidExportError(f"{path} is not a manifest of this litetext's CoreML exports ({error}); re-export "
                                 f"it: litetext export MODEL --format coreml --out {directory}") from None
    flag = " --precision fp16" if manifest.precision == "fp16" else ""
    check_digests(directory, manifest.digests,
                  f"re-export it: litetext export {manifest.model} --format coreml{flag} --out {directory}")
    return manifest


def export_coreml(
    model: str | os.PathLike,
    out: str | os.PathLike,
    *,
    precision: str = "fp32",
    log: Callable[[str], None] | None = None,
) -> CoremlExport:
    """Export the text encoder of `model` (an alias, hub id or local checkpoint directory) into `out`."""
    import torch

    from .models.building import load_model_and_processor
    from .models.checkpoints import resolve_checkpoint

    _check_precision(precision)
    _check_target(Path(os.fspath(out)).expanduser())  # before loading the whole model
    checkpoint = resolve_checkpoint(os.fspath(model))
    network, processor = load_model_and_processor(checkpoint, "cpu", torch.float32)
    return export_text_encoder_coreml(network, processor, out, name=os.fspath(model), checkpoint=checkpoint,
                                      precision=precision, log=log)


def export_text_encoder_coreml(
    model: Any,
    processor: Any,
    out: str | os.PathLike,
    *,
    name: str = "custom",
    checkpoint: str = "",
    precision: str = "fp32",
    log: Callable[[str], None] | None = None,
) -> CoremlExport:
    """Convert an already-loaded fp32 CPU model's text encoder (see `export_coreml`)."""
    import torch
    import transformers

    from .models.manifests import digest_directory
    from .version import __version__

    say = log or (lambda line: None)
    _check_precision(precision)
    if any(p.dtype != torch.float32 or p.device.type != "cpu" for p in model.text_encoder.parameters()):
        raise ModelError("CoreML export needs the model in float32 on the CPU (device='cpu', dtype='fp32')")
    ct = _coremltools()
    out = Path(os.fspath(out)).expanduser()
    _check_target(out)
    staging = staging_dir(out)
    try:
        say("exporting the text encoder with torch.export ...")
        program, difference = _exported_text_encoder(model)
        say(f"converting to a CoreML ML Program ({precision}) ...")
        package = _convert(ct, program, precision)
        package.short_description = f"SAM3-LiteText text encoder of {name}: token ids to projected text features"
        package.user_defined_metadata.update({"litetext.model": name, "litetext.version": __version__,
                                              "litetext.text_length": str(TEXT_LENGTH)})
        package.save(str(staging / PACKAGE_NAME))
        processor.save_pretrained(staging)  # the tokenizer an app needs to make the token ids
        prompts = f"prompts (1..{MAX_PROMPTS})"
        manifest = CoremlExport(
            model=name, checkpoint=checkpoint, model_type=model.config.model_type, litetext_version=__version__,
            transformers_version=transformers.__version__, torch_version=torch.__version__,
            coremltools_version=ct.__version__, precision=precision, minimum_deployment_target=MINIMUM_DEPLOYMENT,
            text_length=TEXT_LENGTH, max_prompts=MAX_PROMPTS,
            text_encoder_params=sum(p.numel() for p in model.text_encoder.parameters()), package=PACKAGE_NAME,
            inputs={tensor: [[prompts, TEXT_LENGTH], "int32"] for tensor in ("input_ids", "attention_mask")},
            outputs={"text_features": [[prompts, TEXT_LENGTH, model.config.detr_encoder_config.hidden_size],
                                       "float32" if precision == "fp32" else "float16 compute, float32 out"]},
            exported_program_max_difference=difference, digests=digest_directory(staging),
        )
        manifest.write(staging)
        move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _exported_text_encoder(model: Any) -> tuple[Any, float]:
    """The text encoder as a `torch.export` program with a flexible prompt count, checked against the model."""
    import torch

    from .models.stages import TextEncoderStage

    module = TextEncoderStage(model).eval()
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(3, 40, (2, TEXT_LENGTH), generator=generator)  # two prompts: 1 would be specialised
    mask = torch.ones(2, TEXT_LENGTH, dtype=torch.long)
    mask[0, 6:] = 0
    prompts = torch.export.Dim("prompts", min=1, max=MAX_PROMPTS)
    with torch.no_grad():
        program = torch.export.export(module, (tokens, mask), dynamic_shapes={
            "input_ids": {0: prompts}, "attention_mask": {0: prompts}}).run_decompositions()  # core ATen ops:
        # coremltools converts those, not every op a model's own code calls (MobileCLIP's `new_ones`)
        difference = float((program.module()(tokens, mask) - module(tokens, mask)).abs().max())
    if not difference <= TOLERANCE:
        raise ModelError(f"torch.export changed the text encoder's output by {difference:.3g} (more than "
                         f"{TOLERANCE}); use the torch and transformers versions in pyproject.toml")
    return program, difference


def _convert(ct: Any, program: Any, precision: str) -> Any:
    import numpy as np

    shape = (ct.RangeDim(1, MAX_PROMPTS, default=1), TEXT_LENGTH)
    # coremltools reports every pass with a progress bar and warns that int64 ids become int32 (ids are small).
    with _quiet(), contextlib.redirect_stderr(io.StringIO()):
        return ct.convert(
            program,
            inputs=[ct.TensorType(name="input_ids", shape=shape, dtype=np.int32),
                    ct.TensorType(name="attention_mask", shape=shape, dtype=np.int32)],
            outputs=[ct.TensorType(name="text_features")],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
            minimum_deployment_target=getattr(ct.target, MINIMUM_DEPLOYMENT),
        )


def _coremltools() -> Any:
    try:
        with _quiet():  # on import it warns about untested torch and scikit-learn versions and missing Apple libs
            import coremltools
    except ImportError:
        raise ModelError('CoreML export needs coremltools: pip install "litetext[coreml]"') from None
    return coremltools


@contextlib.contextmanager
def _quiet():
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ModelError(f"unknown CoreML precision {precision!r}; use one of {', '.join(PRECISIONS)}")


def _check_target(out: Path) -> None:
    check_target(out, is_coreml_export, "litetext CoreML export")
