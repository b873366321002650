"""``secdistill report shadow`` and ``report cost``: numbers from topic dumps or Kafka topics.

Shadow agreement comes from TeacherLabel records flagged shadow (each carries the student's labels).
The cost ledger compares three ways to label a million findings: the student alone, the teacher
alone, and the mix actually observed (the student on everything, paid teacher calls on the deferred
and shadow items that missed the cache).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings
from secdistill.schemas.errors import ContractError
from secdistill.schemas.records import LabelledFinding, TeacherLabel
from secdistill.workers.config import PriceSettings
from secdistill.workers.teachers.shadow import from_labels

M = TypeVar("M", bound=BaseModel)
MILLION = 1_000_000
# MiniLM-L6 int8, batch 32, 128 tokens, one process with 2 threads (DESIGN.md section 6).
STUDENT_SEQ_PER_S = 132.7
STUDENT_CPUS = 2


def read_jsonl(path: Path, cls: type[M]) -> Iterator[M]:
    """Records of one type from a JSONL dump; other lines are skipped."""
    with path.open("rb") as fh:
        for line in fh:
            try:
                yield codec.decode(cls, line, max_bytes=1 << 20)
            except ContractError:
                continue


def read_topic(kafka: KafkaSettings, topic: str, cls: type[M], timeout_s: float = 30.0) -> Iterator[M]:
    """Records of one type from a topic, from the beginning until it goes quiet."""
    from secdistill.workers.kafka_tools import consume

    for rec in consume(kafka, [topic], timeout_s=timeout_s, idle_s=3.0):
        if rec.value is None:
            continue
        try:
            yield codec.decode(cls, rec.value, max_bytes=1 << 20)
        except ContractError:
            continue


def shadow_report(labels: Iterable[TeacherLabel]) -> dict[str, Any]:
    """Agreement per head and per slice over the shadow samples among ``labels``."""
    return from_labels(labels).snapshot()


def format_shadow(snap: dict[str, Any]) -> str:
    """A plain-text table of a shadow snapshot."""
    lines = [f"shadow samples: {snap['n']}", "", f"{'head':<12} {'agreement':>9} {'n':>7}"]
    for head, cell in snap["heads"].items():
        lines.append(f"{head:<12} {cell['rate']:>9.1%} {cell['n']:>7}")
    for kind, values in snap["slices"].items():
        heads = [h for h in snap["heads"]]
        lines += ["", f"by {kind}: mean agreement over heads"]
        for value, cell in sorted(values.items(), key=lambda kv: -kv[1]["n"]):
            rates = [cell[h] for h in heads if h in cell]
            mean = sum(rates) / len(rates) if rates else float("nan")
            lines.append(f"  {value:<22} {mean:>7.1%}  n={cell['n']}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Traffic:
    """Observed traffic: findings labelled, paid teacher calls, and what those calls cost."""

    findings: int
    teacher_calls: int  # non-cached teacher answers (deferred + shadow)
    teacher_cost_usd: float
    cache_hits: int = 0
    decided_by_teacher: int = 0


def traffic_from(labelled: Iterable[LabelledFinding], labels: Iterable[TeacherLabel]) -> Traffic:
    """Count findings (unique ids) and paid teacher calls from topic records."""
    ids, by_teacher = set(), set()
    for rec in labelled:
        ids.add(rec.finding_id)
        if rec.decided_by == "teacher":
            by_teacher.add(rec.finding_id)
    calls = hits = 0
    cost = 0.0
    seen = set()
    for lab in labels:
        if lab.finding_id in seen:
            continue  # at-least-once delivery: count each finding's label once
        seen.add(lab.finding_id)
        if lab.cached:
            hits += 1
        else:
            calls += 1
            cost += lab.cost_usd
    return Traffic(len(ids), calls, cost, hits, len(by_teacher))


def cost_table(traffic: Traffic, prices: PriceSettings, *, student_seq_per_s: float = STUDENT_SEQ_PER_S,
               student_cpus: int = STUDENT_CPUS) -> dict[str, Any]:
    """Dollars per million findings: student only, teacher only, the observed mix, and savings."""
    student = student_cpus * prices.cpu_hour_usd / (3600.0 * student_seq_per_s)
    measured = traffic.teacher_cost_usd / traffic.teacher_calls if traffic.teacher_calls else 0.0
    # A free local teacher records $0: price calls as the configured production teacher instead.
    per_call = measured if measured > 0 else prices.teacher_per_call_usd
    call_rate = traffic.teacher_calls / traffic.findings if traffic.findings else 0.0
    rows = {
        "student_only": MILLION * student,
        "teacher_only": MILLION * per_call,
        "actual_mix": MILLION * (student + call_rate * per_call),
    }
    return {
        "per_million_usd": {k: round(v, 4) for k, v in rows.items()},
        "savings_vs_teacher_only_usd": round(rows["teacher_only"] - rows["actual_mix"], 4),
        "savings_pct": round(100.0 * (1 - rows["actual_mix"] / rows["teacher_only"]), 2)
        if rows["teacher_only"] else 0.0,
        "inputs": {"findings": traffic.findings, "teacher_calls": traffic.teacher_calls,
                   "teacher_call_rate": round(call_rate, 6), "cache_hits": traffic.cache_hits,
                   "decided_by_teacher": traffic.decided_by_teacher,
                   "teacher_usd_per_call": per_call,
                   "teacher_price_source": "measured" if measured > 0 else "configured",
                   "student_usd_per_finding": student, "student_seq_per_s": student_seq_per_s,
                   "student_cpus": student_cpus},
    }


def format_cost(table: dict[str, Any]) -> str:
    """A plain-text cost-per-million table."""
    inp = table["inputs"]
    lines = [f"{'mode':<14} {'USD per 1M findings':>20}"]
    for mode, usd in table["per_million_usd"].items():
        lines.append(f"{mode:<14} {usd:>20,.2f}")
    lines += ["", f"savings vs teacher-only: ${table['savings_vs_teacher_only_usd']:,.2f} per 1M "
              f"({table['savings_pct']:.1f} %)",
              f"findings {inp['findings']}, paid teacher calls {inp['teacher_calls']} "
              f"({inp['teacher_call_rate']:.2%}), cache hits {inp['cache_hits']}, "
              f"teacher ${inp['teacher_usd_per_call']:.5f}/call ({inp['teacher_price_source']})"]
    return "\n".join(lines)
