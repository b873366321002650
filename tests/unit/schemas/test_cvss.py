"""CVSS v3.1 base score, severity and the severity distribution derived from the metric heads."""

from __future__ import annotations

import gzip
import itertools
from importlib import resources

import numpy as np
import orjson
import pytest

from secdistill.schemas import cvss

# Section 8 ("Examples") of the CVSS v3.1 examples document, plus common vectors with well-known
# scores (NVD, the FIRST calculator). The expected values are the published scores, not ours.
SPEC_EXAMPLES = [
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),  # CVE-2014-6271 Shellshock
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),  # CVE-2013-1937 phpMyAdmin XSS
    ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),  # CVE-2013-0375 MySQL
    ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1),  # CVE-2014-3566 POODLE
    ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9),  # CVE-2012-1516 VMware
    ("CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:L/I:L/A:L", 4.2),  # CVE-2009-0783 Tomcat
    ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8),  # CVE-2012-0384 Cisco IOS
    ("CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 7.8),  # CVE-2015-1098 Apple iWork
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),  # CVE-2014-0160 Heartbleed
    ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:N/I:H/A:N", 6.8),  # CVE-2008-1447 DNS cache poisoning
    ("CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 6.8),  # CVE-2014-2005 Sophos
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:L/I:N/A:N", 5.8),  # CVE-2010-0467 Joomla
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:L/A:N", 5.8),  # CVE-2012-1342 Cisco ACL bypass
    ("CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N", 5.4),  # CVE-2014-9253 Default Content XSS
    ("CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.8),  # CVE-2011-1265 Bluetooth
    ("CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N", 4.6),  # CVE-2014-2019 Apple iOS
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8),  # CVE-2015-0970 SearchBlox CSRF
    ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N", 7.4),  # CVE-2014-0224 OpenSSL CCS
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H", 9.6),  # CVE-2012-5376 Chrome IPC
    ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:N", 6.8),  # CVE-2016-0128 Badlock
    ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),  # local privilege escalation
    ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),  # network DoS
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:N/I:L/A:N", 4.3),  # reflected-only integrity
    ("CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),  # no impact
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:N/A:N", 0.0),  # no impact, scope changed
]


@pytest.mark.parametrize(("vector", "score"), SPEC_EXAMPLES)
def test_base_score_of_specification_examples(vector: str, score: float) -> None:
    assert cvss.base_score(cvss.parse_vector(vector)) == score


def _bundled_records() -> list[dict]:
    raw = resources.files("secdistill").joinpath("data/advisories.jsonl.gz").read_bytes()
    return [orjson.loads(line) for line in gzip.decompress(raw).splitlines() if line.strip()]


def test_every_bundled_record_with_a_vector_matches_its_score_and_severity() -> None:
    rows = [r for r in _bundled_records() if r.get("cvss_vector")]
    assert len(rows) > 10_000  # the file is there and carries vectors
    assert {r["cvss_vector"][:8] for r in rows} == {"CVSS:3.0", "CVSS:3.1"}
    memo: dict[str, float] = {}
    mismatches = []
    for r in rows:
        vec = r["cvss_vector"]
        if vec not in memo:
            memo[vec] = cvss.base_score(cvss.parse_vector(vec))
        score = memo[vec]
        if score != r["cvss_score"] or cvss.severity_of(score) != r["severity"]:
            mismatches.append((r["record_id"], vec, r["cvss_score"], r["severity"], score))
    assert not mismatches, mismatches[:5]
    assert len(memo) > 300  # many distinct vectors, not one repeated
    assert {cvss.severity_of(s) for s in memo.values()} == {"LOW", "MEDIUM", "HIGH", "CRITICAL"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (4.02, 4.1),  # Appendix A's example
        (4.00, 4.0),  # Appendix A's example
        (4.000000000000001, 4.0),  # float noise is rounded away first (the point of v3.1's Roundup)
        (4.000001, 4.0),  # below the 5th decimal: Roundup sees 4.00000
        (4.00001, 4.1),  # at the 5th decimal: a real excess
        (0.0, 0.0),
        (0.01, 0.1),
        (9.95, 10.0),
        (10.0, 10.0),
        (2.9999999999999996, 3.0),
    ],
)
def test_roundup_appendix_a(value: float, expected: float) -> None:
    assert cvss.roundup(value) == expected


@pytest.mark.parametrize(
    ("score", "band"),
    [(0.0, "NONE"), (0.1, "LOW"), (3.9, "LOW"), (4.0, "MEDIUM"), (6.9, "MEDIUM"), (7.0, "HIGH"),
     (8.9, "HIGH"), (9.0, "CRITICAL"), (10.0, "CRITICAL")],
)
def test_severity_bands(score: float, band: str) -> None:
    assert cvss.severity_of(score) == band


def test_parse_and_format_vector() -> None:
    m = cvss.parse_vector("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    assert m == {"AV": "N", "AC": "L", "PR": "N", "UI": "N", "S": "U", "C": "H", "I": "H", "A": "H"}
    assert cvss.format_vector(m) == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    # Metric order in the string does not matter; temporal metrics are ignored.
    shuffled = "CVSS:3.1/A:L/I:N/C:N/S:U/UI:R/PR:L/AC:H/AV:L/E:P/RL:O"
    assert cvss.parse_vector(shuffled) == {"AV": "L", "AC": "H", "PR": "L", "UI": "R", "S": "U",
                                          "C": "N", "I": "N", "A": "L"}


@pytest.mark.parametrize(
    "vector",
    [
        "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # no prefix
        "CVSS:2.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",  # A missing
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # bad value
        "",
    ],
)
def test_parse_vector_rejects(vector: str) -> None:
    with pytest.raises(ValueError):
        cvss.parse_vector(vector)


def _one_hot(vectors: list[dict[str, str]]) -> dict[str, np.ndarray]:
    out = {}
    for k, classes in cvss.METRICS.items():
        arr = np.zeros((len(vectors), len(classes)))
        for row, v in enumerate(vectors):
            arr[row, classes.index(v[k])] = 1.0
        out[k] = arr
    return out


def test_severity_distribution_is_one_hot_for_one_hot_heads_on_every_base_vector() -> None:
    keys = list(cvss.METRICS)
    vectors = [dict(zip(keys, c)) for c in itertools.product(*cvss.METRICS.values())]
    assert len(vectors) == 2592
    rng = np.random.default_rng(0)
    sample = [vectors[i] for i in rng.choice(len(vectors), 400, replace=False)]
    sample += [cvss.parse_vector(v) for v, _ in SPEC_EXAMPLES]
    dist = cvss.severity_distribution(_one_hot(sample))
    expected = np.zeros_like(dist)
    for row, v in enumerate(sample):
        expected[row, cvss.SEVERITIES.index(cvss.severity_of(cvss.base_score(v)))] = 1.0
    np.testing.assert_array_equal(dist, expected)
    np.testing.assert_allclose(cvss.expected_score(_one_hot(sample)),
                               [cvss.base_score(v) for v in sample], atol=1e-12)


def test_severity_distribution_rows_sum_to_one_for_random_heads() -> None:
    rng = np.random.default_rng(1)
    n = 64
    probs = {k: rng.dirichlet(np.full(len(c), 0.5), size=n) for k, c in cvss.METRICS.items()}
    dist = cvss.severity_distribution(probs)
    assert dist.shape == (n, len(cvss.SEVERITIES))
    assert (dist >= 0).all()
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, atol=1e-9)
    exp = cvss.expected_score(probs)
    assert exp.shape == (n,) and ((exp >= 0) & (exp <= 10)).all()


def test_severity_distribution_mixes_two_vectors() -> None:
    # All mass on a 9.8 vector except AV, split 50/50 between N (9.8, CRITICAL) and P (6.8, MEDIUM).
    base = cvss.parse_vector("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    probs = _one_hot([base])
    probs["AV"] = np.array([[0.5, 0.0, 0.0, 0.5]])
    dist = dict(zip(cvss.SEVERITIES, cvss.severity_distribution(probs)[0]))
    assert dist["CRITICAL"] == pytest.approx(0.5) and dist["MEDIUM"] == pytest.approx(0.5)
    assert cvss.expected_score(probs)[0] == pytest.approx((9.8 + 6.8) / 2)
    # Any impact at all vs none: C/I/A all N has score 0 (NONE).
    probs = _one_hot([base])
    for k in ("C", "I", "A"):
        probs[k] = np.array([[1.0, 0.0, 0.0]])
    assert dict(zip(cvss.SEVERITIES, cvss.severity_distribution(probs)[0]))["NONE"] == 1.0
