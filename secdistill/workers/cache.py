"""A bounded LRU of predictions keyed by text fingerprint: a repeated text is inferred once."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class FingerprintCache(Generic[V]):
    """LRU cache with hit/miss counters. Cleared when the model version changes."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> V | None:
        """The cached value, refreshed as most recent, or None (counted as a miss)."""
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: str, value: V) -> None:
        """Insert, evicting the least recently used entry beyond the bound."""
        if self.max_entries <= 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry (counters are kept: they are lifetime metrics)."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def hit_rate(self) -> float:
        """Hits over lookups since start."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
