"""Load generator: disjoint corpus slices, Zipf streams with malformed records, pacing, stamping."""

from __future__ import annotations

import pytest

from secdistill.bench.loadgen import CorpusPool, Traffic, build_stream, bursty_offsets, key_of, stamp
from secdistill.schemas import codec
from secdistill.schemas.errors import ContractError
from secdistill.schemas.records import Finding


@pytest.fixture(scope="module")
def pool() -> CorpusPool:
    return CorpusPool(seed=3)


def test_pool_slices_are_disjoint_texts(pool: CorpusPool) -> None:
    a, b = pool.take(50, "a"), pool.take(50, "b")
    assert {f.fingerprint() for f in a}.isdisjoint({f.fingerprint() for f in b})
    assert len({f.fingerprint() for f in a}) == 50
    assert [f.finding_id for f in a[:2]] == ["a-0", "a-1"]
    with pytest.raises(ValueError):
        pool.take(len(pool) + 1, "c")


def test_zipf_stream_repeats_texts_and_mixes_in_malformed(pool: CorpusPool) -> None:
    values = build_stream(pool, Traffic(count=2000, zipf_s=1.1, malformed_share=0.05, seed=1), 100, "z")
    good, bad = [], 0
    for v in values:
        try:
            good.append(codec.decode(Finding, v))
        except ContractError:
            bad += 1
    assert len(good) == 2000
    assert 50 <= bad <= 160  # about 5 %
    texts = {f.fingerprint() for f in good}
    assert len(texts) <= 100  # drawn from the pool only
    assert len({f.finding_id for f in good}) == 2000
    assert len({f.asset for f in good}) > 500  # spread over many assets


def test_unique_stream_has_every_text_once(pool: CorpusPool) -> None:
    values = build_stream(pool, Traffic(count=30, zipf_s=None, malformed_share=0.0), 30, "u")
    assert len({codec.decode(Finding, v).fingerprint() for v in values}) == 30


def test_bursty_offsets_keep_the_mean_rate() -> None:
    steady = bursty_offsets(100, 50.0)
    assert steady[1] == pytest.approx(0.02) and steady[-1] == pytest.approx(99 / 50)
    bursty = bursty_offsets(1000, 100.0, burst_factor=4.0, burst_s=1.0, period_s=5.0)
    assert bursty == sorted(bursty)
    assert bursty[-1] == pytest.approx(10.0, rel=0.05)
    in_burst = sum(1 for t in bursty if t % 5.0 < 1.0)
    assert in_burst > 2 * sum(1 for t in bursty if 1.0 <= t % 5.0 < 2.0)


def test_stamp_adds_produced_at_and_leaves_bad_bytes_alone() -> None:
    raw = codec.encode(Finding(finding_id="f1", description="d", attributes={"k": "v"}))
    f = codec.decode(Finding, stamp(raw, 1234.5))
    assert f.attributes == {"k": "v", "produced_at": 1234.5}
    assert stamp(b'{"broken', 1.0) == b'{"broken'
    assert key_of(raw) == b"f1" and key_of(b"nope") is None and key_of(b'{"finding_id": 5}') is None
