"""process_batch on a real tiny ONNX student: every event ends as labelled, deferred or dead letter."""

from __future__ import annotations

import base64
import dataclasses
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from secdistill.schemas import codec
from secdistill.schemas.config import TopicSettings
from secdistill.schemas.envelopes import DeadLetter, Stage
from secdistill.schemas.records import DecidedBy, LabelledFinding, TeacherRequest
from secdistill.schemas.registry import Registry
from secdistill.schemas.task import load_task
from secdistill.schemas.topics import TopicMap, topic_map
from secdistill.workers.config import ModelSettings
from secdistill.workers.inference import OnnxScorer
from secdistill.workers.labeller import Labeller
from secdistill.workers.pipeline import BatchOutcome, Output, RawEvent, process_batch
from secdistill.workers.routing import route

POISON = "POISON-PILL-7f3a"
MAX_BYTES = 64 * 1024
TOPICS = topic_map(TopicSettings(namespace="unit-pipeline."), load_task())
# threshold_scale tiny: every head clears its threshold, so nothing is deferred (the tiny model is
# not confident); huge: thresholds cap at 1.0, so everything is.
NEVER_DEFER = dict(threshold_scale=1e-6, shadow_rate=0.0)
ALWAYS_DEFER = dict(threshold_scale=100.0, shadow_rate=0.0)


@pytest.fixture(scope="module")
def model_folder(tiny_registry: str) -> Path:
    return Registry(tiny_registry).resolve("advisory-triage")


@pytest.fixture(scope="module")
def scorers(model_folder: Path) -> Callable[[str | None], OnnxScorer]:
    """One loaded scorer per chaos marker (the only scorer-level setting these tests vary)."""
    loaded: dict[str | None, OnnxScorer] = {}

    def get(chaos: str | None) -> OnnxScorer:
        if chaos not in loaded:
            loaded[chaos] = OnnxScorer(model_folder, ModelSettings(threads=1, chaos_marker=chaos))
        return loaded[chaos]

    return get


@pytest.fixture
def make_labeller(scorers: Callable[[str | None], OnnxScorer]) -> Callable[..., Labeller]:
    """A fresh labeller (empty cache, its own deferral policy) over a shared loaded model."""

    def make(**settings: object) -> Labeller:
        ms = ModelSettings(threads=1, **settings)
        return Labeller(scorers(ms.chaos_marker), ms)

    return make


def _finding(fid: str, text: str, **extra: object) -> bytes:
    return orjson.dumps({"finding_id": fid, "description": text, "ecosystem": "npm", "package": "pkg",
                         **extra})


def _events(values: list[bytes]) -> list[RawEvent]:
    return [RawEvent(v, topic="unit-pipeline.in", partition=1, offset=i) for i, v in enumerate(values)]


def _on(outcome: BatchOutcome, topic: str) -> list[Output]:
    return [o for o in outcome.outputs if o.topic == topic]


def _dead_letters(outcome: BatchOutcome) -> list[DeadLetter]:
    return [codec.decode(DeadLetter, o.value) for o in _on(outcome, TOPICS.deadletter)]


def _labelled(outcome: BatchOutcome) -> list[LabelledFinding]:
    return [codec.decode(LabelledFinding, o.value, 1 << 20) for o in _on(outcome, TOPICS.labelled)]


def _teacher(outcome: BatchOutcome) -> list[TeacherRequest]:
    return [codec.decode(TeacherRequest, o.value, 1 << 20) for o in _on(outcome, TOPICS.teacher)]


def _count_in_equals_out(outcome: BatchOutcome, n: int) -> None:
    assert outcome.labelled + outcome.deferred + sum(outcome.dead_letters.values()) == n
    assert len(_labelled(outcome)) == outcome.labelled
    assert len(_dead_letters(outcome)) == sum(outcome.dead_letters.values())
    assert len(_teacher(outcome)) == outcome.deferred + outcome.shadow


def _mixed() -> tuple[list[bytes], dict[int, str]]:
    """Raw values and, by offset, the dead-letter reason each bad one must get."""
    values = [
        _finding("ok-1", "Cross-site scripting in the comment form of the blog engine."),
        b'{"finding_id": "x", "description": ',
        _finding("ok-2", "SQL injection in the login endpoint allows reading the users table."),
        b'{"finding_id": "enc", "description": "caf\xe9 \xff"}',
        b'{"finding_id": 12, "description": "wrong type"}',
        _finding("huge", "x" * (MAX_BYTES + 10)),
        _finding("long", "y" * 33_000),
        _finding("poison", f"Heap overflow {POISON} in the PNG decoder."),
        _finding("ok-3", "Regular expression denial of service in the semver parser."),
        b"[1, 2, 3]",
        b'{"description": "no id"}',
    ]
    bad = {1: "bad_json", 3: "bad_encoding", 4: "schema_violation", 5: "too_large", 6: "too_large",
           7: "inference_failed", 9: "schema_violation", 10: "schema_violation"}
    return values, bad


def test_mixed_batch_count_in_equals_labelled_plus_deferred_plus_dead_letters(make_labeller: Callable[..., Labeller]) -> None:
    values, bad = _mixed()
    labeller = make_labeller(chaos_marker=POISON, **NEVER_DEFER)
    outcome = process_batch(_events(values), labeller, TOPICS, max_record_bytes=MAX_BYTES)
    _count_in_equals_out(outcome, len(values))
    assert outcome.labelled == 3 and outcome.deferred == 0
    assert outcome.dead_letters == Counter(bad.values())
    assert {lf.finding_id for lf in _labelled(outcome)} == {"ok-1", "ok-2", "ok-3"}
    assert outcome.model_version == labeller.version


def test_dead_letters_carry_reason_origin_and_original_bytes(make_labeller: Callable[..., Labeller]) -> None:
    values, bad = _mixed()
    outcome = process_batch(_events(values), make_labeller(chaos_marker=POISON, **NEVER_DEFER),
                            TOPICS, max_record_bytes=MAX_BYTES, app="unit-app")
    letters = {dl.offset: dl for dl in _dead_letters(outcome)}
    assert {o: dl.reason.value for o, dl in letters.items()} == bad
    for offset, dl in letters.items():
        assert base64.b64decode(dl.payload_b64) == values[offset]
        assert dl.payload_bytes == len(values[offset])
        assert (dl.topic, dl.partition, dl.app) == ("unit-pipeline.in", 1, "unit-app")
    poison = letters[7]
    assert poison.stage is Stage.INFERENCE and poison.finding_id == "poison"
    assert POISON in base64.b64decode(poison.payload_b64).decode()
    assert all(letters[o].stage is Stage.DECODE for o in bad if o != 7)
    keys = {codec.decode(DeadLetter, o.value).offset: o.key for o in _on(outcome, TOPICS.deadletter)}
    assert keys[7] == b"poison"
    assert all(keys[o] is None for o in bad if o != 7)  # no trustworthy id before decoding


def test_poison_record_is_isolated_and_the_rest_is_labelled(make_labeller: Callable[..., Labeller]) -> None:
    values = [_finding(f"ok-{i}", f"Advisory number {i}: path traversal in archive extraction.")
              for i in range(21)]
    values[5] = _finding("poison-a", f"{POISON} first")
    values[16] = _finding("poison-b", f"second {POISON}")
    labeller = make_labeller(chaos_marker=POISON, **NEVER_DEFER)
    outcome = process_batch(_events(values), labeller, TOPICS, max_record_bytes=MAX_BYTES)
    _count_in_equals_out(outcome, len(values))
    assert outcome.dead_letters == Counter({"inference_failed": 2})
    assert {dl.finding_id for dl in _dead_letters(outcome)} == {"poison-a", "poison-b"}
    assert {lf.finding_id for lf in _labelled(outcome)} == {f"ok-{i}" for i in range(21)} - {"ok-5", "ok-16"}


def test_batch_without_the_chaos_marker_configured_labels_everything(make_labeller: Callable[..., Labeller]) -> None:
    values = [_finding("a", f"text with {POISON}"), _finding("b", "another text")]
    outcome = process_batch(_events(values), make_labeller(**NEVER_DEFER), TOPICS,
                            max_record_bytes=MAX_BYTES)
    assert outcome.labelled == 2 and not outcome.dead_letters


def test_duplicate_texts_in_one_batch_are_inferred_once(
    make_labeller: Callable[..., Labeller], monkeypatch: pytest.MonkeyPatch
) -> None:
    labeller = make_labeller(**NEVER_DEFER)
    scored: list[str] = []
    real_logits = labeller.scorer.logits

    def spy(texts: list[str]):
        scored.extend(texts)
        return real_logits(texts)

    monkeypatch.setattr(labeller.scorer, "logits", spy)  # the scorer is shared: undone after the test
    same = "Prototype pollution in the deep-merge helper."
    values = [_finding(f"dup-{i}", same, asset=f"host-{i}") for i in range(5)]
    values += [_finding("u-1", "Open redirect in the login page."), _finding("u-2", "XXE in the SOAP parser.")]
    outcome = process_batch(_events(values), labeller, TOPICS, max_record_bytes=MAX_BYTES)
    assert len(scored) == 3  # one inference per distinct text
    assert outcome.cache_hits == 4 and outcome.labelled == 7
    by_id = {lf.finding_id: lf for lf in _labelled(outcome)}
    assert set(by_id) == {f"dup-{i}" for i in range(5)} | {"u-1", "u-2"}
    first = by_id["dup-0"].prediction
    assert not first.cached
    for i in range(1, 5):
        p = by_id[f"dup-{i}"].prediction
        assert p.cached and p.finding_id == f"dup-{i}"
        assert (p.labels, p.probs, p.score) == (first.labels, first.probs, first.score)
        assert by_id[f"dup-{i}"].finding.asset == f"host-{i}"
    # A later batch with a known text is not inferred at all.
    scored.clear()
    again = process_batch(_events([_finding("later", same)]), labeller, TOPICS, max_record_bytes=MAX_BYTES)
    assert scored == [] and again.cache_hits == 1 and again.labelled == 1


def test_outputs_are_keyed_by_finding_id_and_stamped(make_labeller: Callable[..., Labeller]) -> None:
    values = [_finding(f"id-{i}", f"Finding text {i} about command injection.") for i in range(6)]
    labeller = make_labeller(shadow_rate=0.5, threshold_scale=1e-6)
    outcome = process_batch(_events(values), labeller, TOPICS, max_record_bytes=MAX_BYTES)
    assert outcome.outputs
    for out in outcome.outputs:
        doc = orjson.loads(out.value)
        assert out.key == doc["finding_id"].encode()
    for lf in _labelled(outcome):
        assert lf.model_version == labeller.version == lf.prediction.model_version
        assert lf.decided_by is DecidedBy.STUDENT


def test_labelled_outputs_also_go_to_their_route_topics(make_labeller: Callable[..., Labeller]) -> None:
    task = load_task()
    texts = ["Cross-site scripting in the markdown renderer.", "Use-after-free in the image decoder.",
             "Hard-coded credentials in the admin panel.", "Timing attack on token comparison.",
             "Unbounded recursion leads to stack exhaustion.", "Arbitrary file write via zip slip."]
    values = [_finding(f"r-{i}", t) for i, t in enumerate(texts)]
    outcome = process_batch(_events(values), make_labeller(**NEVER_DEFER), TOPICS,
                            max_record_bytes=MAX_BYTES)
    labelled = {o.key: o.value for o in _on(outcome, TOPICS.labelled)}
    assert len(labelled) == len(values)
    route_topics = set(TOPICS.routes.values())
    routed = [o for o in outcome.outputs if o.topic in route_topics]
    for key, value in labelled.items():
        lf = codec.decode(LabelledFinding, value, 1 << 20)
        assert lf.routes and lf.routes == route(lf.prediction, lf.finding, task.routing)
        mine = sorted(o.topic for o in routed if o.key == key)
        assert mine == sorted(TOPICS.routes[r] for r in lf.routes)
        assert all(o.value == value for o in routed if o.key == key)
    assert len(routed) == sum(len(codec.decode(LabelledFinding, v, 1 << 20).routes) for v in labelled.values())


def test_shadow_items_go_to_labelled_and_teacher(make_labeller: Callable[..., Labeller]) -> None:
    values = [_finding(f"s-{i}", f"Shadow sample {i}: insecure deserialization.") for i in range(5)]
    outcome = process_batch(_events(values), make_labeller(threshold_scale=1e-6, shadow_rate=1.0),
                            TOPICS, max_record_bytes=MAX_BYTES)
    _count_in_equals_out(outcome, 5)
    assert outcome.labelled == 5 and outcome.shadow == 5 and outcome.deferred == 0
    requests = _teacher(outcome)
    assert {r.finding_id for r in requests} == {lf.finding_id for lf in _labelled(outcome)} == {
        f"s-{i}" for i in range(5)}
    for r in requests:
        assert r.shadow and r.reasons == ["shadow"] and r.student.shadow and not r.student.deferred


def test_deferred_items_go_only_to_teacher(make_labeller: Callable[..., Labeller]) -> None:
    values = [_finding(f"d-{i}", f"Unsure sample {i}: something happened.") for i in range(4)]
    outcome = process_batch(_events(values), make_labeller(**ALWAYS_DEFER), TOPICS,
                            max_record_bytes=MAX_BYTES)
    _count_in_equals_out(outcome, 4)
    assert outcome.deferred == 4 and outcome.labelled == 0
    assert {o.topic for o in outcome.outputs} == {TOPICS.teacher}
    for r in _teacher(outcome):
        assert not r.shadow and r.student.deferred
        assert r.reasons and all(x.startswith("low_confidence:") for x in r.reasons)
        assert r.finding.finding_id == r.finding_id
    assert sum(outcome.deferred_heads.values()) == sum(len(r.reasons) for r in _teacher(outcome))


def test_default_policy_keeps_the_count_invariant(make_labeller: Callable[..., Labeller]) -> None:
    values, bad = _mixed()
    values += [_finding(f"extra-{i}", f"Extra finding {i} on an exposed admin API.") for i in range(10)]
    outcome = process_batch(_events(values), make_labeller(chaos_marker=POISON, shadow_rate=0.3),
                            TOPICS, max_record_bytes=MAX_BYTES)
    _count_in_equals_out(outcome, len(values))
    assert sum(outcome.dead_letters.values()) == len(bad)


def test_a_routing_bug_costs_one_record_not_the_batch(make_labeller: Callable[..., Labeller]) -> None:
    broken: TopicMap = dataclasses.replace(TOPICS, routes={})  # every route lookup fails
    values = [_finding("a", "Text a about XSS."), _finding("b", "Text b about SQL injection.")]
    labeller = make_labeller(**NEVER_DEFER)
    outcome = process_batch(_events(values), labeller, broken, max_record_bytes=MAX_BYTES)
    _count_in_equals_out(outcome, 2)
    assert outcome.dead_letters == Counter({"internal_error": 2})
    assert {o.topic for o in outcome.outputs} == {TOPICS.deadletter}  # nothing half-emitted
    assert {dl.stage for dl in _dead_letters(outcome)} == {Stage.ROUTING}
    # Deferred records are not routed, so the same bug does not touch them.
    deferred = process_batch(_events(values), make_labeller(**ALWAYS_DEFER), broken,
                             max_record_bytes=MAX_BYTES)
    assert deferred.deferred == 2 and not deferred.dead_letters


def test_empty_batch(make_labeller: Callable[..., Labeller]) -> None:
    outcome = process_batch([], make_labeller(), TOPICS, max_record_bytes=MAX_BYTES)
    assert outcome.outputs == [] and outcome.labelled == outcome.deferred == 0
