"""`secdistill produce` helpers: --repeat parsing and the Zipf replay of scanner traffic."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from secdistill.workers.producer_tool import parse_repeat, zipf_replay


def test_parse_repeat_accepts_zipf() -> None:
    assert parse_repeat(None) is None
    assert parse_repeat("") is None
    assert parse_repeat("zipf:1.2") == 1.2
    assert parse_repeat("zipf:3") == 3.0


@pytest.mark.parametrize("spec", ["zipf:1", "zipf:0.5", "zipf:", "zipf", "uniform:2", "zipf:abc", ":1.2"])
def test_parse_repeat_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_repeat(spec)


def _lines(n: int = 50) -> list[bytes]:
    return [orjson.dumps({"finding_id": f"adv-{i}", "description": f"text number {i}", "package": "p"})
            for i in range(n)]


def test_zipf_replay_fresh_ids_and_assets_same_texts() -> None:
    lines = _lines()
    originals = {orjson.loads(ln)["description"]: orjson.loads(ln) for ln in lines}
    out = [orjson.loads(v) for v in zipf_replay(lines, 3000, 1.2, assets=1000, seed=1)]
    assert len(out) == 3000
    assert len({o["finding_id"] for o in out}) == 3000  # every replay is a new finding
    for o in out:
        src = originals[o["description"]]  # the text is one of the input texts, unchanged
        assert o["package"] == src["package"]
        assert o["finding_id"].startswith(src["finding_id"] + "@")
        assert o["asset"].startswith("asset-") and o["asset"] in o["finding_id"]
    assert len({o["asset"] for o in out}) > 500  # spread over many assets


def test_zipf_replay_repeats_popular_lines_far_more_than_rare_ones() -> None:
    lines = _lines()
    counts = Counter(orjson.loads(v)["description"] for v in zipf_replay(lines, 5000, 1.2, assets=100))
    ranked = [c for _, c in counts.most_common()] + [0] * (len(lines) - len(counts))
    top, median, tail = ranked[0], ranked[len(ranked) // 2], sum(ranked[-10:]) / 10
    assert top > 10 * median
    assert top > 30 * max(tail, 1)
    assert top / 5000 > 0.15  # rank 1 of Zipf(1.2) over 50 items carries ~25% of the mass


def test_zipf_replay_is_deterministic_per_seed() -> None:
    lines = _lines(20)
    a = list(zipf_replay(lines, 200, 1.5, assets=50, seed=3))
    assert a == list(zipf_replay(lines, 200, 1.5, assets=50, seed=3))
    assert a != list(zipf_replay(lines, 200, 1.5, assets=50, seed=4))


def test_zipf_replay_passes_bad_lines_unchanged() -> None:
    bad = [b"{not json", b"[1, 2, 3]", b'{"finding_id": "x", "description": "caf\xe9"}']
    out = list(zipf_replay(bad, 300, 1.1, assets=10))
    assert len(out) == 300
    assert set(out) <= set(bad)
    assert set(out) == set(bad)  # all three show up in 300 draws


def test_zipf_replay_mixed_good_and_bad() -> None:
    lines = _lines(5) + [b"garbage"]
    out = list(zipf_replay(lines, 1000, 1.1, assets=10, seed=2))
    garbage = [v for v in out if v == b"garbage"]
    good = [orjson.loads(v) for v in out if v != b"garbage"]
    assert garbage and len(garbage) + len(good) == 1000
    assert all("asset" in g for g in good)
