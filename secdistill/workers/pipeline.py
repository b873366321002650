"""process_batch: raw events in, routed outputs and dead letters out. Faust-free and synchronous, so
it runs whole in an executor thread and is unit-tested without a broker.

Count in = out + dead letters: every event ends as exactly one of labelled, deferred (teacher
request) or dead letter.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from secdistill.schemas import codec
from secdistill.schemas.envelopes import Stage
from secdistill.schemas.records import DecidedBy, Finding, LabelledFinding, Prediction, TeacherRequest
from secdistill.schemas.topics import TopicMap
from secdistill.workers.deadletter import to_dead_letter
from secdistill.workers.errors import InferenceError
from secdistill.workers.labeller import Labeller
from secdistill.workers.routing import route


@dataclass(frozen=True)
class RawEvent:
    """One consumed record, as bytes, with where it came from."""

    value: bytes
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


@dataclass(frozen=True)
class Output:
    """One record to produce."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass
class BatchOutcome:
    """What a batch produced, and the counts the agent logs and exports."""

    outputs: list[Output] = field(default_factory=list)
    labelled: int = 0
    deferred: int = 0
    shadow: int = 0
    cache_hits: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    deferred_heads: Counter[str] = field(default_factory=Counter)
    inference_s: float = 0.0
    model_version: str = ""


def process_batch(events: list[RawEvent], labeller: Labeller, topics: TopicMap, *, max_record_bytes: int,
                  app: str = "secdistill-worker") -> BatchOutcome:
    """Decode, label (bisecting around a poison record), route and encode one batch."""
    out = BatchOutcome(model_version=labeller.version)
    good: list[tuple[RawEvent, Finding]] = []
    for ev in events:
        try:
            good.append((ev, codec.decode(Finding, ev.value, max_record_bytes)))
        except Exception as exc:  # noqa: BLE001 - classified by the one reason map
            _dead(out, topics, ev, exc, Stage.DECODE, app=app)
    start = time.perf_counter()
    scored = _label_isolating(good, labeller, out, topics, app)
    out.inference_s = time.perf_counter() - start
    for ev, finding, pred in scored:
        try:
            _emit(out, topics, labeller, finding, pred)
        except Exception as exc:  # noqa: BLE001 - a bug must cost one record, not the batch
            _dead(out, topics, ev, exc, Stage.ROUTING, finding_id=finding.finding_id, app=app)
    return out


def _label_isolating(
    items: list[tuple[RawEvent, Finding]], labeller: Labeller, out: BatchOutcome, topics: TopicMap, app: str
) -> list[tuple[RawEvent, Finding, Prediction]]:
    """Label a batch; on InferenceError, split it in halves until the poison record stands alone."""
    if not items:
        return []
    try:
        preds = labeller.label([f for _, f in items])
    except InferenceError as exc:
        if len(items) == 1:
            ev, finding = items[0]
            _dead(out, topics, ev, exc, Stage.INFERENCE, finding_id=finding.finding_id, app=app)
            return []
        mid = len(items) // 2
        return (_label_isolating(items[:mid], labeller, out, topics, app)
                + _label_isolating(items[mid:], labeller, out, topics, app))
    return [(ev, f, p) for (ev, f), p in zip(items, preds)]


def _emit(out: BatchOutcome, topics: TopicMap, labeller: Labeller, finding: Finding, pred: Prediction) -> None:
    key = finding.finding_id.encode("utf-8", "surrogatepass")
    staged: list[Output] = []
    if pred.deferred or pred.shadow:
        req = TeacherRequest(finding_id=finding.finding_id, finding=finding, student=pred,
                             shadow=pred.shadow, reasons=pred.deferral_reasons)
        staged.append(Output(topics.teacher, key, codec.encode(req)))
    if not pred.deferred:
        routes = route(pred, finding, labeller.task.routing)
        labelled = LabelledFinding(finding_id=finding.finding_id, finding=finding, prediction=pred,
                                   routes=routes, model_version=pred.model_version,
                                   decided_by=DecidedBy.STUDENT)
        value = codec.encode(labelled)
        staged.append(Output(topics.labelled, key, value))
        staged += [Output(topics.routes[r], key, value) for r in routes]
    # Only count once everything for this record encoded: a failure above dead-letters it whole.
    out.outputs += staged
    out.cache_hits += int(pred.cached)
    if pred.deferred:
        out.deferred += 1
        out.deferred_heads.update(r.split(":", 1)[1] for r in pred.deferral_reasons)
    else:
        out.labelled += 1
        out.shadow += int(pred.shadow)


def _dead(out: BatchOutcome, topics: TopicMap, ev: RawEvent, exc: BaseException, stage: Stage, *,
          finding_id: str | None = None, app: str) -> None:
    dl = to_dead_letter(ev.value, exc, stage, topic=ev.topic, partition=ev.partition, offset=ev.offset,
                        finding_id=finding_id, app=app)
    key = finding_id.encode("utf-8", "surrogatepass") if finding_id else None
    out.outputs.append(Output(topics.deadletter, key, codec.encode(dl)))
    out.dead_letters[dl.reason.value] += 1
