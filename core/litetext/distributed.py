"""Corpus-scale segmentation on Ray Data: one engine per worker, exactly-once shard files, resumable runs.

    >>> from litetext.distributed import run_segment_job
    >>> summary = run_segment_job(["images/"], ["person", "car"], "out/", model="s0-16", workers=4)

How it works (see docs/scale.md):

* The driver lists the inputs (image files, directories, list files of paths or URIs), drops those already in
  the output (resume), and cuts the rest into *shards* of a few dozen images. A shard's id is a hash of its
  image paths, so the same images always give the same id.
* A Ray Data dataset has one row per shard; `map_batches` sends the rows to a fixed pool of `ShardSegmenter`
  actors. Each actor loads the model once (`litetext.load`; Ray assigns its GPU), segments the shard with
  `engine.segment_batch`, and commits the shard's rows as one file `part-<shard id>.<jsonl|parquet>`,
  written to a temporary name and renamed into place. A failed image becomes a row with its `error`.
* A killed worker's actor is restarted and its shard retried (`max_restarts`/`max_task_retries`). A retry
  writes the same file name with the same rows, and a half-written temporary file is never read, so no row
  is ever duplicated or half there. Readers also drop duplicate paths, so even two runs racing on one
  output cannot show an image twice.

`ray` is imported inside functions only: `import litetext.distributed` stays light.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, LitetextError
from .models.registry import DEFAULT_MODEL
from .options import SegmentOptions, TrackOptions
from .prompts import normalize_prompts

#: Output formats: COCO-RLE JSON lines, or Parquet with the same fields as nested columns.
FORMATS = ("jsonl", "parquet")
#: Input files with these suffixes are lists of image paths or URIs, one a line (`#` starts a comment).
LIST_SUFFIXES = (".txt", ".lst", ".list")
#: Environment variables forwarded to every worker (plus every `LITETEXT_*` one).
FORWARDED_ENV = ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "TRANSFORMERS_OFFLINE")
SETTINGS_FILE = "_job.json"
ATTEMPTS_DIR = "_attempts"
#: A shard whose worker died this many times is given up: its images get failed rows (a poison image must
#: not make the job retry forever). `retry_failed` tries them again in a later run.
MAX_ATTEMPTS = 3
SHARD_PREFIX = "part-"
DEFAULT_SHARD_SIZE = 32

# Test hooks: the worker that is about to process (or has just committed) a shard holding the image named
# here exits at once, once per marker directory, as a killed worker would.
_CRASH_BEFORE_COMMIT = "LITETEXT_TEST_CRASH_BEFORE_COMMIT"
_CRASH_AFTER_COMMIT = "LITETEXT_TEST_CRASH_AFTER_COMMIT"
_CRASH_MARKERS = "LITETEXT_TEST_CRASH_MARKERS"


@dataclass(frozen=True, kw_only=True)
class JobOptions(SegmentOptions):
    """What every worker runs: the prompts, the model and the `segment_batch` settings."""

    prompts: tuple[str, ...]

    def identity(self) -> dict[str, Any]:
        """The settings that decide the results; a rerun into the same output must use the same ones."""
        return {"model": self.model, "prompts": list(self.prompts), **self.filters()}


@dataclass
class JobSummary:
    """What a job did: images in the input, skipped as already done, segmented, failed; shards and time."""

    output: str
    format: str
    total: int
    skipped: int
    segmented: int = 0
    failed: int = 0
    shards: int = 0
    workers: int = 0
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return (self.segmented + self.failed) / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Shard:
    """A unit of work and of output: its images, and an id derived from them alone."""

    id: str
    paths: tuple[str, ...]

    @classmethod
    def of(cls, paths: Sequence[str]) -> Shard:
        digest = hashlib.blake2b("\n".join(paths).encode("utf-8"), digest_size=10).hexdigest()
        return cls(digest, tuple(paths))


# Inputs -------------------------------------------------------------------------------------------------


def is_uri(source: str) -> bool:
    """True for `scheme://...` sources (s3://, gs://, https://, file://), False for plain paths."""
    head, sep, _ = source.partition("://")
    return bool(sep) and head.isalpha() and len(head) > 1


def list_inputs(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """Expand inputs into a sorted, duplicate-free list of image paths (absolute) and URIs.

    An input is an image file or URI, a directory (searched recursively, local or a pyarrow-supported URI),
    or a list file (`.txt`, `.lst`, `.list`) with one path or URI a line; relative paths in a list file are
    taken relative to the list file's folder.
    """
    from .images import IMAGE_SUFFIXES, list_images

    found: list[str] = []
    for raw in inputs:
        source = os.fspath(raw)
        if is_uri(source) and not source.startswith("file://"):
            found.extend(_list_uri(source, IMAGE_SUFFIXES))
            continue
        path = Path(source.removeprefix("file://")).expanduser()
        if path.is_dir():
            found.extend(str(p.resolve()) for p in list_images([path]))
        elif path.suffix.lower() in LIST_SUFFIXES and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.split("#", 1)[0].strip() if not is_uri(line.strip()) else line.strip()
                if line:
                    found.append(line if is_uri(line) else str((path.parent / line).resolve()))
        else:
            found.append(str(path.resolve()))  # a missing file becomes a failed row, not a crashed job
    return sorted(set(found))


def _list_uri(uri: str, suffixes: Sequence[str]) -> list[str]:
    """A remote directory's image URIs, or the URI itself when it is not a directory (http(s) never is)."""
    if uri.startswith(("http://", "https://")):
        return [uri]
    from pyarrow import fs as pafs

    filesystem, root = pafs.FileSystem.from_uri(uri)
    info = filesystem.get_file_info(root)
    if info.type != pafs.FileType.Directory:
        return [uri]
    scheme = uri.split("://", 1)[0]
    entries = filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
    return [f"{scheme}://{e.path}" for e in entries
            if e.type == pafs.FileType.File and e.path.lower().endswith(tuple(suffixes))]


def read_source(source: str) -> str | bytes:
    """What the engine reads for one input: a local path as is, a URI's bytes (http(s) or pyarrow filesystems)."""
    if not is_uri(source):
        return source
    if source.startswith("file://"):
        return source.removeprefix("file://")
    if source.startswith(("http://", "https://")):
        from urllib.request import urlopen

        with urlopen(source, timeout=60) as response:  # noqa: S310 - the user's own input list
            return response.read()
    from pyarrow import fs as pafs

    filesystem, path = pafs.FileSystem.from_uri(source)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def make_shards(paths: Sequence[str], shard_size: int) -> list[Shard]:
    """Consecutive runs of `shard_size` paths (in the given order) as shards."""
    if shard_size < 1:
        raise InputError(f"shard_size must be at least 1, not {shard_size}")
    return [Shard.of(paths[i : i + shard_size]) for i in range(0, len(paths), shard_size)]


def auto_shard_size(count: int, workers: int) -> int:
    """Small enough for about 4 shards per worker (load balance, cheap retries), at most DEFAULT_SHARD_SIZE."""
    return max(1, min(DEFAULT_SHARD_SIZE, math.ceil(count / max(1, 4 * workers))))


# Output -------------------------------------------------------------------------------------------------


def _parquet_schema():
    import pyarrow as pa

    instance = pa.struct([
        ("prompt", pa.string()), ("prompt_index", pa.int32()), ("score", pa.float64()),
        ("box", pa.list_(pa.float64())), ("area", pa.int64()),
        ("rle", pa.struct([("size", pa.list_(pa.int32())), ("counts", pa.string())])),
    ])
    return pa.schema([
        ("path", pa.string()), ("error", pa.string()),
        ("image_size", pa.struct([("width", pa.int32()), ("height", pa.int32())])),
        ("prompts", pa.list_(pa.string())), ("instances", pa.list_(instance)),
    ])


class ShardStore:
    """An output location (local folder or pyarrow filesystem URI) holding one committed file per shard.

    Rows are dicts `{"path", "error", "image_size", "prompts", "instances"}`; for a segmented image the last
    three are `Result.to_dict()` (so `litetext.Result.from_dict(row)` rebuilds it), for a failed one `error`
    is the message, `image_size` is None and `instances` empty.
    """

    def __init__(self, location: str | os.PathLike, output_format: str = "jsonl"):
        if output_format not in FORMATS:
            raise InputError(f"output format must be one of {', '.join(FORMATS)}, not {output_format!r}")
        self.location = os.fspath(location)
        self.format = output_format
        self.suffix = f".{output_format}"
        from pyarrow import fs as pafs

        if is_uri(self.location) and not self.location.startswith("file://"):
            self.filesystem, self.root = pafs.FileSystem.from_uri(self.location)
            self.local = False
        else:
            self.root = str(Path(self.location.removeprefix("file://")).expanduser().resolve())
            self.filesystem = pafs.LocalFileSystem()
            self.local = True
        self.filesystem.create_dir(self.root, recursive=True)

    def shard_file(self, shard_id: str) -> str:
        return f"{self.root}/{SHARD_PREFIX}{shard_id}{self.suffix}"

    # Writing ------------------------------------------------------------------------------------------

    def commit(self, shard_id: str, rows: Sequence[dict[str, Any]]) -> str:
        """Write a shard's rows as one file, all or nothing; a second commit of a shard replaces the first."""
        data = self._encode(rows)
        final = self.shard_file(shard_id)
        if not self.local:  # object stores make an object visible only once it is completely written
            with self.filesystem.open_output_stream(final) as stream:
                stream.write(data)
            return final
        temporary = f"{self.root}/.{SHARD_PREFIX}{shard_id}.{uuid.uuid4().hex}.tmp"
        with open(temporary, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, final)  # atomic on POSIX: readers see the old file or the new, never a mix
        return final

    def _encode(self, rows: Sequence[dict[str, Any]]) -> bytes:
        if self.format == "jsonl":
            return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows).encode("utf-8")
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(list(rows), schema=_parquet_schema()), sink)
        return sink.getvalue().to_pybytes()

    def start_attempt(self, shard_id: str) -> int:
        """Record one more attempt at a shard; returns how many were started, this one included."""
        from pyarrow import fs as pafs

        folder = f"{self.root}/{ATTEMPTS_DIR}"
        self.filesystem.create_dir(folder, recursive=True)
        with self.filesystem.open_output_stream(f"{folder}/{shard_id}.{uuid.uuid4().hex}"):
            pass
        entries = self.filesystem.get_file_info(pafs.FileSelector(folder))
        return sum(1 for e in entries if e.base_name.startswith(f"{shard_id}."))

    def end_attempts(self, shard_id: str | None = None) -> None:
        """Forget the attempts at one committed shard, or at every shard (at the end of a run)."""
        from pyarrow import fs as pafs

        folder = f"{self.root}/{ATTEMPTS_DIR}"
        if self.filesystem.get_file_info(folder).type != pafs.FileType.Directory:
            return
        if shard_id is None:
            self.filesystem.delete_dir(folder)
            return
        for entry in self.filesystem.get_file_info(pafs.FileSelector(folder)):
            if entry.base_name.startswith(f"{shard_id}."):
                self.filesystem.delete_file(entry.path)

    def remove_temporaries(self) -> int:
        """Delete temporary files left by killed workers; returns how many."""
        if not self.local:
            return 0
        stale = list(Path(self.root).glob(f".{SHARD_PREFIX}*.tmp"))
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    def check_settings(self, options: JobOptions) -> None:
        """Record the job's settings; refuse an output that holds results made with other settings."""
        from pyarrow import fs as pafs

        path = f"{self.root}/{SETTINGS_FILE}"
        wanted = {**options.identity(), "format": self.format}
        if self.filesystem.get_file_info(path).type == pafs.FileType.File:
            with self.filesystem.open_input_stream(path) as stream:
                recorded = json.loads(stream.read())
            if recorded != wanted:
                changed = ", ".join(k for k in sorted(set(wanted) | set(recorded)) if wanted.get(k) != recorded.get(k))
                raise InputError(f"{self.location} holds results made with other settings ({changed} differ); "
                                 "use a new output location, or the same settings to resume")
            return
        with self.filesystem.open_output_stream(path) as stream:
            stream.write(json.dumps(wanted, indent=2).encode("utf-8"))

    # Reading ------------------------------------------------------------------------------------------

    def files(self) -> list[str]:
        """The committed shard files, sorted by name."""
        from pyarrow import fs as pafs

        entries = self.filesystem.get_file_info(pafs.FileSelector(self.root, recursive=False))
        return sorted(e.path for e in entries if e.type == pafs.FileType.File
                      and e.base_name.startswith(SHARD_PREFIX) and e.base_name.endswith(self.suffix))

    def _read_file(self, path: str, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        if self.format == "jsonl":
            with self.filesystem.open_input_stream(path) as stream:
                text = stream.read().decode("utf-8")
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        import pyarrow.parquet as pq

        return pq.read_table(path, columns=list(columns) if columns else None, filesystem=self.filesystem).to_pylist()

    def rows(self, *, columns: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every row of every committed file, one row per image: where a path appears more than once, a
        segmented row wins over a failed one, then the first file by name."""
        chosen: dict[str, dict[str, Any]] = {}
        for path in self.files():
            for row in self._read_file(path, columns):
                previous = chosen.get(row["path"])
                if previous is None or (previous.get("error") and not row.get("error")):
                    chosen[row["path"]] = row
        yield from chosen.values()

    def completed(self, *, include_failed: bool = True) -> set[str]:
        """Paths that already have a row (only segmented ones when `include_failed` is False)."""
        return {row["path"] for row in self.rows(columns=("path", "error"))
                if include_failed or not row.get("error")}


def read_results(location: str | os.PathLike, output_format: str | None = None) -> list[dict[str, Any]]:
    """All rows of a job's output, one per image (duplicates from racing runs dropped), sorted by path.

    `output_format` defaults to the one recorded in the output's `_job.json`.
    """
    if output_format is None:
        output_format = _recorded_format(location)
    return sorted(ShardStore(location, output_format).rows(), key=lambda row: row["path"])


def _recorded_format(location: str | os.PathLike) -> str:
    store = ShardStore(location, "jsonl")
    try:
        with store.filesystem.open_input_stream(f"{store.root}/{SETTINGS_FILE}") as stream:
            return json.loads(stream.read())["format"]
    except (FileNotFoundError, OSError, KeyError):
        raise InputError(f"{location} has no {SETTINGS_FILE}; is it the output of a litetext Ray job?") from None


# Workers ------------------------------------------------------------------------------------------------


class ShardSegmenter:
    """The Ray Data callable: one engine per actor, one committed output file per shard.

    Rows in: `{"shard": id, "paths": JSON list}`. Rows out: `{"shard", "segmented", "failed", "failures"}`
    (counts and a JSON list of `{"path", "error"}`), for the driver's summary; the results themselves go to
    the store, never through the object store.
    """

    def __init__(self, options: JobOptions, location: str, output_format: str):
        self.options = options
        self.engine = options.engine()
        self.store = ShardStore(location, output_format)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"shard": [], "segmented": [], "failed": [], "failures": []}
        for shard_id, paths_json in zip(batch["shard"], batch["paths"]):
            shard_id, paths = str(shard_id), [str(p) for p in json.loads(str(paths_json))]
            if self.store.start_attempt(shard_id) > MAX_ATTEMPTS:
                message = (f"a worker process died {MAX_ATTEMPTS} times while segmenting the shard holding this "
                           "image (out of memory, or a crash in native code?); rerun with retry_failed to try again")
                rows = [_failed_row(path, self.options, message) for path in paths]
            else:
                _maybe_crash(_CRASH_BEFORE_COMMIT, paths)
                rows = self.segment(paths)
            self.store.commit(shard_id, rows)
            _maybe_crash(_CRASH_AFTER_COMMIT, paths)
            self.store.end_attempts(shard_id)
            failures = [{"path": r["path"], "error": r["error"]} for r in rows if r["error"]]
            out["shard"].append(str(shard_id))
            out["segmented"].append(len(rows) - len(failures))
            out["failed"].append(len(failures))
            out["failures"].append(json.dumps(failures))
        return out

    def segment(self, paths: Sequence[str]) -> list[dict[str, Any]]:
        """One row per path, in order; a bad image (or any error on one image) gives a row with its error."""
        options = self.options
        rows: dict[int, dict[str, Any]] = {}
        sources: dict[int, str | bytes] = {}
        for index, path in enumerate(paths):
            try:
                sources[index] = read_source(path)
            except Exception as error:  # network and storage errors come in many types
                rows[index] = _failed_row(path, options, f"cannot read {path}: {type(error).__name__}: {error}")
        order = sorted(sources)
        try:
            for item in self.engine.segment_batch([sources[i] for i in order], list(options.prompts),
                                                  batch_size=options.batch_size, **options.filters()):
                index = order[item.index]
                rows[index] = (_row(paths[index], item.result) if item.ok
                               else _failed_row(paths[index], options, str(item.error)))
        except Exception:  # an unexpected error inside a batch: go on image by image so only the culprit fails
            for index in order:
                if index in rows:
                    continue
                try:
                    rows[index] = _row(paths[index], self.engine.segment(sources[index], list(options.prompts),
                                                                         **options.filters()))
                except Exception as error:
                    message = str(error) if isinstance(error, LitetextError) else f"{type(error).__name__}: {error}"
                    rows[index] = _failed_row(paths[index], options, message)
        return [rows[i] for i in range(len(paths))]


def _row(path: str, result: Any) -> dict[str, Any]:
    return {"path": path, "error": None, **result.to_dict()}


def _failed_row(path: str, options: JobOptions, message: str) -> dict[str, Any]:
    return {"path": path, "error": message or "failed", "image_size": None, "prompts": list(options.prompts),
            "instances": []}


def _maybe_crash(variable: str, paths: Sequence[str]) -> None:
    """Test hook: exit this worker process, once, when its shard holds the image named in `variable`."""
    name = os.environ.get(variable)
    markers = os.environ.get(_CRASH_MARKERS)
    if not name or not markers or not any(Path(p).name == name for p in paths):
        return
    try:
        fd = os.open(Path(markers) / f"{variable}-{name}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(1)


# The job ------------------------------------------------------------------------------------------------


def worker_env() -> dict[str, str]:
    """Environment variables every worker gets: `LITETEXT_*` and the Hugging Face cache/offline settings."""
    return {k: v for k, v in os.environ.items() if k.startswith("LITETEXT_") or k in FORWARDED_ENV}


def run_segment_job(
    inputs: Sequence[str | os.PathLike],
    prompts: str | Sequence[str],
    output: str | os.PathLike,
    *,
    model: str = DEFAULT_MODEL,
    device: str = "auto",
    dtype: str = "auto",
    threshold: float = 0.5,
    mask_threshold: float = 0.5,
    max_instances: int | None = None,
    min_area: int = 0,
    batch_size: int = 4,
    output_format: str = "jsonl",
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    shard_size: int | None = None,
    retry_failed: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> JobSummary:
    """Segment every image of `inputs` with `prompts` on a Ray cluster; write one row per image to `output`.

    Without `address` a local Ray instance is started (loopback only, no dashboard) and stopped afterwards;
    with one (`auto`, `ray://host:10001`, `host:6379`) the job joins that cluster. An already connected Ray
    session is used as it is. `workers` actors (default: as many as the cluster's CPUs, or GPUs when
    `gpus_per_worker` > 0, allow) each load the model once. Images already in `output` are skipped (failed
    ones too, unless `retry_failed`). Returns a `JobSummary`.
    """
    say = log or (lambda message: print(f"litetext: {message}", file=sys.stderr))
    options = JobOptions(prompts=tuple(normalize_prompts(prompts)), model=os.fspath(model), device=device,
                         dtype=dtype, threshold=threshold, mask_threshold=mask_threshold,
                         max_instances=max_instances, min_area=min_area, batch_size=batch_size)
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, not {batch_size}")
    _check_resources(workers, cpus_per_worker, gpus_per_worker)
    paths = list_inputs(inputs)
    if not paths:
        raise InputError(f"no images found in {', '.join(map(os.fspath, inputs))}")
    store = ShardStore(output, output_format)
    store.check_settings(options)
    store.remove_temporaries()
    done = store.completed(include_failed=not retry_failed)
    todo = [p for p in paths if p not in done]
    summary = JobSummary(output=store.location, format=output_format, total=len(paths), skipped=len(paths) - len(todo))
    if not todo:
        say(f"all {len(paths)} images are already in {store.location}; nothing to do")
        return summary

    import ray

    started_here = _connect(ray, address, workers, cpus_per_worker, gpus_per_worker)
    started = time.perf_counter()
    try:
        summary.workers = workers or _default_workers(ray, cpus_per_worker, gpus_per_worker)
        shards = make_shards(todo, shard_size or auto_shard_size(len(todo), summary.workers))
        summary.shards = len(shards)
        say(f"{len(todo)} images to segment ({summary.skipped} already done) in {len(shards)} shards "
            f"on {summary.workers} workers")
        for row in _run_shards(ray, shards, options, store, summary.workers, cpus_per_worker, gpus_per_worker,
                               progress):
            summary.segmented += int(row["segmented"])
            summary.failed += int(row["failed"])
            summary.failures.extend(json.loads(str(row["failures"])))
    finally:
        summary.seconds = time.perf_counter() - started
        if started_here:
            ray.shutdown()
    store.remove_temporaries()
    store.end_attempts()
    return summary


def _run_shards(ray, shards, options, store, workers, cpus_per_worker, gpus_per_worker, progress):
    """Run the shards through the actor pool; yields one summary row per shard as it finishes."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = progress
    items = [{"shard": s.id, "paths": json.dumps(list(s.paths))} for s in shards]
    dataset = ray.data.from_items(items, override_num_blocks=len(items))
    # Ray Data's actor pools restart a dead actor and retry its tasks without limit (max_restarts=-1,
    # max_task_retries=-1 are its defaults); commits are idempotent, and ShardSegmenter gives up on a shard
    # that has killed its worker MAX_ATTEMPTS times, so retries can neither duplicate rows nor loop forever.
    results = dataset.map_batches(
        ShardSegmenter,
        fn_constructor_kwargs={"options": options, "location": store.location, "output_format": store.format},
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus_per_worker,
        num_gpus=gpus_per_worker or None,
        runtime_env={"env_vars": worker_env()},
    )
    yield from results.iter_rows()


def _check_resources(workers: int | None, cpus_per_worker: float, gpus_per_worker: float) -> None:
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, not {workers}")
    if cpus_per_worker <= 0 or gpus_per_worker < 0:
        raise InputError("cpus_per_worker must be positive and gpus_per_worker not negative")


def _connect(ray, address: str | None, workers: int | None, cpus_per_worker: float, gpus_per_worker: float) -> bool:
    """Connect to Ray; returns True when this call started a local instance (which the job then stops)."""
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "logging_level": "WARNING", "configure_logging": True}
    if address:
        ray.init(address=address, runtime_env={"env_vars": worker_env()}, logging_level="WARNING")
        return True
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a local instance talks to nothing beyond loopback
    cpus = os.cpu_count() or 1
    if workers:
        cpus = max(cpus, math.ceil(workers * cpus_per_worker))
    ray.init(num_cpus=cpus, runtime_env={"env_vars": worker_env()}, _node_ip_address="127.0.0.1", **quiet)
    return True


def _default_workers(ray, cpus_per_worker: float, gpus_per_worker: float) -> int:
    resources = ray.cluster_resources()
    if gpus_per_worker:
        count = int(resources.get("GPU", 0) // gpus_per_worker)
        if count < 1:
            raise LitetextError(f"the Ray cluster has {resources.get('GPU', 0):g} GPUs, fewer than "
                                f"--gpus-per-worker {gpus_per_worker:g}")
        return count
    return max(1, int(resources.get("CPU", 1) // cpus_per_worker))


def summary_dict(summary: JobSummary) -> dict[str, Any]:
    """A JSON-serialisable form of a `JobSummary` (with the throughput)."""
    return {**asdict(summary), "images_per_second": round(summary.images_per_second, 3)}


# Videos: one task per video ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TrackJobOptions:
    """What every tracking worker runs: the prompts, the model and its tracker, and `Engine.track`'s settings."""

    prompts: tuple[str, ...]
    model: str = DEFAULT_MODEL
    tracker: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    overlay: bool = True
    track: TrackOptions = TrackOptions()


@dataclass
class TrackJobSummary:
    """What a tracking job did: videos in the input, skipped as already done, tracked, failed; frames and time."""

    output: str
    total: int
    skipped: int
    tracked: int = 0
    failed: int = 0
    frames: int = 0
    workers: int = 0
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)


class VideoTrackWorker:
    """The Ray Data callable for videos: one engine per actor; each video's files are written in a private folder
    and moved into the output when it ends (its summary last), so a retried or racing attempt never leaves a
    video half written or twice."""

    def __init__(self, options: TrackJobOptions, output: str):
        from .loader import load

        self.options = options
        self.output = Path(output)
        self.engine = load(options.model, device=options.device, dtype=options.dtype, tracker=options.tracker)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from .track_files import track_to_files

        out: dict[str, list[Any]] = {"video": [], "frames": [], "error": []}
        for video, name in zip(batch["video"], batch["name"]):
            video, name = str(video), str(name)
            _maybe_crash(_CRASH_BEFORE_COMMIT, [video])
            private = self.output / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
            error, frames = "", 0
            try:
                summary = track_to_files(self.engine, video, list(self.options.prompts), private, name,
                                         options=self.options.track, overlay=self.options.overlay)
                frames = summary.frames
            except LitetextError as failure:
                error = str(failure)
            except Exception as failure:  # a crash inside one video fails that video, not the job
                error = f"{type(failure).__name__}: {failure}"
            if private.is_dir():
                files = sorted(private.iterdir(), key=lambda f: f.name.endswith(".summary.json"))
                for file in files:  # the summary, which marks the video done, comes last
                    os.replace(file, self.output / file.name)
                private.rmdir()
            out["video"].append(video)
            out["frames"].append(frames)
            out["error"].append(error)
        return out


def run_track_job(
    inputs: Sequence[str | os.PathLike],
    prompts: str | Sequence[str],
    output: str | os.PathLike,
    *,
    model: str = DEFAULT_MODEL,
    tracker: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    overlay: bool = True,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    retry_failed: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    track: TrackOptions | None = None,
) -> TrackJobSummary:
    """Track `prompts` through every video of `inputs` on a Ray cluster, one task per video, each writing the files
    of `litetext track` into `output` (a folder all workers can write: local, or a shared file system).

    Videos whose summary is already in `output` are skipped (failed ones too, unless `retry_failed`). Other
    arguments are those of `run_segment_job`; `track` holds `Engine.track`'s settings. Returns a `TrackJobSummary`.
    """
    from .track_files import output_names
    from .videos import video_inputs

    say = log or (lambda message: print(f"litetext: {message}", file=sys.stderr))
    _check_resources(workers, cpus_per_worker, gpus_per_worker)
    options = TrackJobOptions(prompts=tuple(normalize_prompts(prompts)), model=os.fspath(model),
                              tracker=None if tracker is None else os.fspath(tracker), device=device, dtype=dtype,
                              overlay=overlay, track=track or TrackOptions())
    videos = [str(v.resolve()) for v in video_inputs(inputs)]
    if not videos:
        raise InputError(f"no videos found in {', '.join(map(os.fspath, inputs))}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    names = output_names([Path(v) for v in videos])

    def finished(name: str) -> bool:
        return (out / f"{name}.summary.json").is_file() or (
            not retry_failed and (out / f"{name}.summary.partial.json").is_file())

    todo = [(v, n) for v, n in zip(videos, names) if not finished(n)]
    summary = TrackJobSummary(output=str(out), total=len(videos), skipped=len(videos) - len(todo))
    if not todo:
        say(f"all {len(videos)} videos are already in {out}; nothing to do")
        return summary

    import ray
    from ray.data import DataContext

    started_here = _connect(ray, address, workers, cpus_per_worker, gpus_per_worker)
    started = time.perf_counter()
    try:
        summary.workers = min(len(todo), workers or _default_workers(ray, cpus_per_worker, gpus_per_worker))
        say(f"{len(todo)} videos to track ({summary.skipped} already done) on {summary.workers} workers")
        DataContext.get_current().enable_progress_bars = progress
        dataset = ray.data.from_items([{"video": v, "name": n} for v, n in todo], override_num_blocks=len(todo))
        rows = dataset.map_batches(
            VideoTrackWorker, fn_constructor_kwargs={"options": options, "output": str(out)}, batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=summary.workers), num_cpus=cpus_per_worker,
            num_gpus=gpus_per_worker or None, runtime_env={"env_vars": worker_env()},
        )
        for row in rows.iter_rows():
            summary.frames += int(row["frames"])
            if row["error"]:
                summary.failed += 1
                summary.failures.append({"path": str(row["video"]), "error": str(row["error"])})
            else:
                summary.tracked += 1
    finally:
        summary.seconds = time.perf_counter() - started
        if started_here:
            ray.shutdown()
    return summary
