"""FingerprintCache: bounded LRU with hit/miss counters."""

from __future__ import annotations

from secdistill.workers.cache import FingerprintCache


def test_hit_and_miss_counts() -> None:
    cache: FingerprintCache[str] = FingerprintCache(10)
    assert cache.get("a") is None
    cache.put("a", "A")
    assert cache.get("a") == "A"
    assert cache.get("a") == "A"
    assert cache.get("b") is None
    assert (cache.hits, cache.misses) == (2, 2)
    assert cache.hit_rate == 0.5


def test_hit_rate_without_lookups_is_zero() -> None:
    assert FingerprintCache(1).hit_rate == 0.0


def test_lru_eviction_keeps_recently_used() -> None:
    cache: FingerprintCache[int] = FingerprintCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now most recent
    cache.put("c", 3)  # evicts b
    assert len(cache) == 2
    assert cache.get("b") is None
    assert cache.get("a") == 1 and cache.get("c") == 3


def test_put_existing_key_updates_value_and_recency() -> None:
    cache: FingerprintCache[int] = FingerprintCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)  # refresh a
    cache.put("c", 3)  # evicts b, not a
    assert cache.get("a") == 10 and cache.get("b") is None and len(cache) == 2


def test_bound_holds_under_many_inserts() -> None:
    cache: FingerprintCache[int] = FingerprintCache(100)
    for i in range(1000):
        cache.put(str(i), i)
    assert len(cache) == 100
    assert cache.get("899") is None and cache.get("900") == 900 and cache.get("999") == 999


def test_zero_size_cache_stores_nothing() -> None:
    cache: FingerprintCache[int] = FingerprintCache(0)
    cache.put("a", 1)
    assert len(cache) == 0 and cache.get("a") is None


def test_clear_drops_entries_but_keeps_lifetime_counters() -> None:
    cache: FingerprintCache[int] = FingerprintCache(5)
    cache.put("a", 1)
    cache.get("a")
    cache.get("z")
    cache.clear()
    assert len(cache) == 0
    assert cache.get("a") is None
    assert (cache.hits, cache.misses) == (1, 2)
