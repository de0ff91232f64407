"""Batching without a model: groups with out-of-memory back-off, chunks, and reading ahead on a thread.

Everything here takes plain callables, so it is tested with stand-ins for the model.
"""

from __future__ import annotations

import concurrent.futures
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from ..errors import LitetextError

T = TypeVar("T")


def run_grouped(items: Sequence[Any], run: Callable[[Sequence[Any]], T], *, size: int,
                out_of_memory: type[BaseException] = MemoryError,
                release: Callable[[], None] = lambda: None) -> list[T]:
    """`run(group)` over `items` in groups of up to `size`, returning each group's output in order.

    A group that raises `out_of_memory` is split in halves and retried (after `release()`, which frees cached
    device memory), so a batch too large for the device slows down instead of failing; a single item that does
    not fit still raises.
    """
    if not len(items):
        return []
    pending: list[Sequence[Any]] = [items[i : i + size] for i in range(0, len(items), size)]
    outputs = []
    while pending:
        group = pending.pop(0)
        try:
            outputs.append(run(group))
        except out_of_memory:
            if len(group) == 1:
                raise
            release()
            half = len(group) // 2
            pending[:0] = [group[:half], group[half:]]
            warnings.warn(f"out of device memory with a batch of {len(group)}; retrying as {half} + "
                          f"{len(group) - half}", stacklevel=3)
    return outputs


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter)."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def read_ahead(groups: Iterable[Any], read: Callable[[Any], T]) -> Iterator[T]:
    """`read(group)` for each group, in order, with the next group read on a background thread while the caller
    works on the current one (one group ahead, so memory stays bounded)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="litetext-read") as reader:
        pending = None
        for group in groups:
            upcoming = reader.submit(read, group)
            if pending is not None:
                yield pending.result()
            pending = upcoming
        if pending is not None:
            yield pending.result()


def attempt(run: Callable[..., T], *args: Any, **kwargs: Any) -> T | LitetextError:
    """`run(*args, **kwargs)`, or the `LitetextError` it raised (one bad item must not stop a batch)."""
    try:
        return run(*args, **kwargs)
    except LitetextError as error:
        return error


def progress_bar(total: int | None, *, enabled: bool, unit: str = "image", desc: str = "segmenting"):
    """A tqdm bar (a silent one when not `enabled`)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, desc=desc, disable=not enabled)
