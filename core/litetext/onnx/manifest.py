"""The manifest of an ONNX export: what was exported, from what, with which versions; and its checks.

`manifest.json` sits beside the graphs. Reading an export checks it before any graph loads, so a directory
that is not an export, one written by another litetext or transformers version, one missing a graph or its
external data, or one whose files changed after export (the manifest holds every file's SHA-256) fails with a
message that names the file and how to re-export. `LITETEXT_TRUST_EXPORTS=1` skips the content check.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..models.manifests import (
    MANIFEST_NAME,
    TRUST_VARIABLE,
    InvalidExportError,
    check_digests,
    digest_directory,
    export_format,
    trusted,
)
from ..output import replace_file

FORMAT = "litetext-onnx"
FORMAT_VERSION = 2  # 2: every file's SHA-256 (format 1 recorded sizes only)
#: Format 1 exports hold no hashes: they load only when the deployment trusts its exports.
UNHASHED_FORMAT_VERSION = 1

#: The graphs of an export, by role.
VISION_ENCODER = "vision_encoder"
TEXT_ENCODER = "text_encoder"
DECODER = "decoder"
DECODER_WITH_BOXES = "decoder_with_boxes"
GRAPHS = (VISION_ENCODER, TEXT_ENCODER, DECODER, DECODER_WITH_BOXES)
#: The tracker's graphs (clicks and boxes on one object), in an export of a checkpoint with SAM3's tracker: the
#: prompt encoder and mask decoder giving one mask, or three candidates. Their vision encoder also outputs
#: `TRACKER_EMBEDDINGS`, the inputs `image_embedding_0..2` of both.
TRACKER_DECODER = "tracker_decoder"
TRACKER_DECODER_MULTIMASK = "tracker_decoder_multimask"
TRACKER_GRAPHS = (TRACKER_DECODER, TRACKER_DECODER_MULTIMASK)
TRACKER_EMBEDDINGS = tuple(f"tracker_embedding_{i}" for i in range(3))


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: its name, shape (an int, or a name for a dynamic axis) and element type."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph of an export, with the files it needs and their sizes (to catch a truncated copy)."""

    file: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    files: dict[str, int] = field(default_factory=dict)  # every file of the graph (itself, external data): bytes
    precision: str = "float32"  # or "int8" (weights of the MatMuls quantised dynamically)


@dataclass(frozen=True)
class Manifest:
    """What an export holds and what wrote it."""

    model: str  # the name it was exported from (alias, hub id or directory)
    checkpoint: str
    model_type: str  # transformers' model type: sam3_lite_text or sam3
    litetext_version: str
    transformers_version: str
    torch_version: str
    onnx_version: str
    opset: int
    precision: str  # "float32", or "int8-vision" when the vision encoder is quantised
    image_size: int
    text_length: int
    text_encoder_params: int
    graphs: dict[str, GraphSpec]  # by role: GRAPHS, and TRACKER_GRAPHS when the export has a tracker
    digests: dict[str, str] = field(default_factory=dict)  # every file but manifest.json: "sha256:<hex>"
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def has_tracker(self) -> bool:
        """Whether the export holds SAM3's tracker graphs (clicks and boxes on one object)."""
        return TRACKER_DECODER in self.graphs

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Manifest:
        graphs = {
            role: GraphSpec(
                file=g["file"],
                inputs=tuple(TensorSpec(t["name"], tuple(t["shape"]), t["dtype"]) for t in g["inputs"]),
                outputs=tuple(TensorSpec(t["name"], tuple(t["shape"]), t["dtype"]) for t in g["outputs"]),
                files=dict(g.get("files", {})),
                precision=g.get("precision", "float32"),
            )
            for role, g in data["graphs"].items()
        }
        return Manifest(**{**data, "graphs": graphs, "digests": dict(data.get("digests", {}))})

    def write(self, directory: str | os.PathLike) -> Path:
        """Write `manifest.json` into `directory` as a new file (never through a hard link to another export's)."""
        return replace_file(Path(directory) / MANIFEST_NAME, (self.to_json() + "\n").encode())


def seal(manifest: Manifest, directory: str | os.PathLike) -> Manifest:
    """Record the digest of every file in `directory` in `manifest`, write it there, and return it."""
    directory = Path(os.fspath(directory))
    manifest = replace(manifest, digests=digest_directory(directory))
    manifest.write(directory)
    return manifest


def is_export(directory: str | os.PathLike) -> bool:
    """True when `directory` holds a litetext ONNX manifest (it may still fail `read_manifest`'s checks)."""
    return export_format(directory) == FORMAT


def reexport_hint(model: str, directory: str | os.PathLike, precision: str = "float32") -> str:
    """The command that writes the export of `model` at `precision` into `directory` again."""
    quantize = " --quantize int8" if "int8" in precision else ""
    return f"re-export it: litetext export {model} --format onnx{quantize} --out {directory}"


def read_manifest(directory: str | os.PathLike, *, check_versions: bool = True,
                  check_contents: bool = True) -> Manifest:
    """Read and check the manifest of the export in `directory`: the format, the versions it was written with
    (litetext exactly, transformers up to the patch level), that every graph file is there, whole, and (with
    `check_contents`, unless `LITETEXT_TRUST_EXPORTS=1`) that every file's SHA-256 is the one recorded."""
    from ..version import __version__

    directory = Path(os.fspath(directory)).expanduser()
    path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise InvalidExportError(f"{directory} is not a directory; export a model first: "
                                 f"litetext export MODEL --format onnx --out {directory}")
    if not path.is_file():
        raise InvalidExportError(f"{directory} is not a litetext ONNX export: it has no {MANIFEST_NAME}. Export a "
                                 f"model into it: litetext export MODEL --format onnx --out {directory}")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, not {FORMAT!r}")
        manifest = Manifest.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidExportError(f"{path} is not a litetext ONNX manifest ({error}); "
                                 f"{reexport_hint('MODEL', directory)}") from None
    hint = reexport_hint(manifest.model, directory, manifest.precision)
    trust = trusted()
    if manifest.format_version == UNHASHED_FORMAT_VERSION and not trust:
        raise InvalidExportError(f"{path} has export format {UNHASHED_FORMAT_VERSION}, which records no file hashes, "
                                 f"so its files cannot be checked: {hint} (or set {TRUST_VARIABLE}=1 to load it "
                                 "unchecked)")
    if manifest.format_version not in (FORMAT_VERSION, UNHASHED_FORMAT_VERSION):
        raise InvalidExportError(f"{path} has export format {manifest.format_version}; this litetext reads format "
                                 f"{FORMAT_VERSION}: {hint}")
    if check_versions:
        import transformers

        if manifest.litetext_version != __version__:
            raise InvalidExportError(f"{path} was written by litetext {manifest.litetext_version}, this is litetext "
                                     f"{__version__}: {hint}")
        if _minor(manifest.transformers_version) != _minor(transformers.__version__):
            raise InvalidExportError(f"{path} was written with transformers {manifest.transformers_version}, this is "
                                     f"transformers {transformers.__version__}: {hint}")
    tracker = [role for role in TRACKER_GRAPHS if role in manifest.graphs]
    missing = [role for role in GRAPHS + (TRACKER_GRAPHS if tracker else ()) if role not in manifest.graphs]
    if missing:
        raise InvalidExportError(f"{path} lists no {', '.join(missing)} graph: {hint}")
    for graph in manifest.graphs.values():
        for name, size in {graph.file: None, **graph.files}.items():
            file = directory / name
            if not file.is_file():
                kind = "external-data file" if name != graph.file else "graph"
                raise InvalidExportError(f"{file} is missing (the {kind} of {graph.file}): copy the whole export "
                                         f"directory, or {hint}")
            if size is not None and file.stat().st_size != size:
                raise InvalidExportError(f"{file} is {file.stat().st_size:,} bytes, the manifest says {size:,}: "
                                         f"it is damaged or half-copied; {hint}")
            if manifest.format_version == FORMAT_VERSION and name not in manifest.digests:
                raise InvalidExportError(f"{path} records no hash of {name}: {hint}")
    if check_contents and not trust:
        check_digests(directory, manifest.digests, hint)
    return manifest


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])
