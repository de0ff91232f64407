"""Byte-bounded, thread-safe LRU caches shared by every adapter in a process."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

#: Default budgets. Vision features of the full ViT-H model are ~111 MB per image in fp32, ~56 MB in bf16.
DEFAULT_IMAGE_CACHE_BYTES_CPU = 1 << 30
DEFAULT_IMAGE_CACHE_BYTES_GPU = 2 << 30
DEFAULT_TEXT_CACHE_BYTES = 64 << 20


@dataclass(frozen=True)
class CacheStats:
    """Counters of one cache at one moment."""

    hits: int
    misses: int
    entries: int
    bytes: int
    max_bytes: int


class LRUCache:
    """A least-recently-used map bounded by the summed size of its values, in bytes.

    `sizeof(value)` gives a value's size. A value larger than the whole budget is not stored. `max_bytes=0`
    disables the cache: every lookup misses and nothing is kept.
    """

    def __init__(self, max_bytes: int, sizeof: Callable[[Any], int]):
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._sizeof = sizeof
        self._max_bytes = max(0, int(max_bytes))
        self._bytes = 0
        self._hits = 0
        self._misses = 0

    def get(self, key: Hashable) -> Any | None:
        """The value for `key`, or None; counts a hit or a miss."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry[0]

    def put(self, key: Hashable, value: Any) -> None:
        """Store `value`, evicting least recently used entries to stay within the budget."""
        size = int(self._sizeof(value))
        with self._lock:
            if key in self._entries:
                self._bytes -= self._entries.pop(key)[1]
            if size > self._max_bytes:
                return
            self._entries[key] = (value, size)
            self._bytes += size
            self._evict()

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        with self._lock:
            self._entries.clear()
            self._bytes = self._hits = self._misses = 0

    def resize(self, max_bytes: int) -> None:
        """Change the byte budget (0 disables), evicting as needed."""
        with self._lock:
            self._max_bytes = max(0, int(max_bytes))
            self._evict()

    def stats(self) -> CacheStats:
        """Hit and miss counters, entry count and bytes in use."""
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._entries), self._bytes, self._max_bytes)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _evict(self) -> None:
        while self._bytes > self._max_bytes and self._entries:
            _, (_, size) = self._entries.popitem(last=False)
            self._bytes -= size
