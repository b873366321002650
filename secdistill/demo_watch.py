"""Counting what the fleet produced during the demo, and the summary table."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.table import Table

from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings
from secdistill.schemas.errors import ContractError
from secdistill.schemas.topics import TopicMap
from secdistill.workers.kafka_tools import make_consumer


@dataclass
class Tally:
    """Distinct finding ids seen per outcome; done when every input is accounted for."""

    expected: int
    teacher_running: bool
    started: float = 0.0
    finished: float = 0.0
    labelled: dict[str, str] = field(default_factory=dict)  # finding_id -> decided_by
    routes: Counter[str] = field(default_factory=Counter)
    deferred: set[str] = field(default_factory=set)
    shadow: set[str] = field(default_factory=set)
    dead: Counter[str] = field(default_factory=Counter)
    teacher_labels: int = 0
    teacher_calls: int = 0  # teacher labels not served from the teacher's cache
    teacher_price_usd: float = 0.002  # per call (PriceSettings)
    cpu_hour_usd: float = 0.04
    cores: int = 2
    shadow_agree: Counter[str] = field(default_factory=Counter)
    cache_hit_rate: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def accounted(self) -> int:
        """Inputs with a final outcome (labelled, dead letter, or waiting on an absent teacher)."""
        waiting = 0 if self.teacher_running else len(self.deferred - set(self.labelled))
        return len(self.labelled) + sum(self.dead.values()) + waiting

    @property
    def done(self) -> bool:
        """Every input accounted for."""
        return self.accounted >= self.expected

    def wait_done(self, timeout_s: float) -> None:
        """Block until done or timeout; record the finish time."""
        deadline = time.monotonic() + timeout_s
        while not self.done and time.monotonic() < deadline:
            time.sleep(0.2)
        self.finished = time.monotonic()


class Watcher:
    """Background consumer over the output topics."""

    def __init__(self, kafka: KafkaSettings, topics: TopicMap, tally: Tally, on_update: Callable[[], None]):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(kafka, topics, tally, on_update), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and join."""
        self._stop.set()
        self._thread.join(10)

    def _run(self, kafka: KafkaSettings, topics: TopicMap, tally: Tally, on_update: Callable[[], None]) -> None:
        consumer = make_consumer(kafka, None)
        consumer.subscribe([topics.labelled, topics.teacher, topics.teacher_labels, topics.deadletter])
        last = 0.0
        try:
            while not self._stop.is_set():
                msg = consumer.poll(0.2)
                if msg is not None and not msg.error():
                    _count(tally, topics, msg.topic(), msg.value() or b"")
                if time.monotonic() - last > 0.25:
                    on_update()
                    last = time.monotonic()
        finally:
            consumer.close()


def watch_outputs(kafka: KafkaSettings, topics: TopicMap, tally: Tally, on_update: Callable[[], None]) -> Watcher:
    """Start counting outputs in a background thread."""
    return Watcher(kafka, topics, tally, on_update)


def _count(tally: Tally, topics: TopicMap, topic: str, raw: bytes) -> None:
    try:
        doc = codec.loads(raw, max_bytes=1 << 24)
    except ContractError:
        return
    with tally.lock:
        if topic == topics.labelled:
            if doc["finding_id"] not in tally.labelled:
                tally.routes.update(doc.get("routes", []))
            tally.labelled[doc["finding_id"]] = doc.get("decided_by", "student")
        elif topic == topics.teacher:
            (tally.shadow if doc.get("shadow") else tally.deferred).add(doc["finding_id"])
        elif topic == topics.teacher_labels:
            tally.teacher_labels += 1
            tally.teacher_calls += int(not doc.get("cached", False))
            if doc.get("shadow"):
                for head, label in doc.get("student_labels", {}).items():
                    tally.shadow_agree[f"{head}:n"] += 1
                    tally.shadow_agree[f"{head}:ok"] += int(doc.get("labels", {}).get(head) == label)
        elif topic == topics.deadletter:
            tally.dead[doc.get("reason", "?")] += 1


def summary_table(t: Tally, final: bool = False) -> Table:
    """Live progress while running; the summary at the end."""
    with t.lock:
        elapsed = (t.finished or time.monotonic()) - t.started if t.started else 0.0
        table = Table(title="secdistill demo — summary" if final else "secdistill demo — live")
        table.add_column("what")
        table.add_column("value", justify="right")
        table.add_row("inputs accounted / sent", f"{t.accounted} / {t.expected}")
        decided = Counter(t.labelled.values())
        for who, n in sorted(decided.items()):
            table.add_row(f"labelled by {who}", str(n))
        for route, n in sorted(t.routes.items()):
            table.add_row(f"  route {route}", str(n))
        table.add_row("deferred to teacher", str(len(t.deferred)))
        table.add_row("shadow samples", str(len(t.shadow)))
        table.add_row("teacher labels", str(t.teacher_labels))
        heads = sorted({k.split(":")[0] for k in t.shadow_agree})
        if heads:
            agree = sum(t.shadow_agree[f"{h}:ok"] for h in heads) / max(1, sum(t.shadow_agree[f"{h}:n"] for h in heads))
            table.add_row("shadow agreement (all heads)", f"{agree:.1%}")
        for reason, n in sorted(t.dead.items()):
            table.add_row(f"dead letters: {reason}", str(n))
        if elapsed > 0:
            table.add_row("throughput (findings/s)", f"{t.accounted / elapsed:.1f}")
        if t.cache_hit_rate is not None:
            table.add_row("prediction cache hit rate", f"{t.cache_hit_rate:.1%}")
        n = t.accounted
        if final and n and elapsed > 0:
            fleet = t.cpu_hour_usd * t.cores * elapsed / 3600
            mix = (fleet + t.teacher_calls * t.teacher_price_usd) / n * 1e6
            table.add_row("teacher calls (cache misses)", str(t.teacher_calls))
            table.add_row("cost per million: this mix", f"${mix:,.2f}")
            table.add_row("cost per million: teacher on everything", f"${t.teacher_price_usd * 1e6:,.0f}")
    return table
