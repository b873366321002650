"""Dead-letter tools: summarise the DLQ and replay payloads to the input topic after a fix."""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from secdistill.schemas import codec
from secdistill.schemas.envelopes import DeadLetter
from secdistill.schemas.errors import ContractError
from secdistill.workers.config import WorkerSettings
from secdistill.workers.kafka_tools import consume, make_producer, produce_values
from secdistill.workers.topics_cli import deployment_topics


@dataclass
class DlqScan:
    """What a pass over the dead-letter topic found."""

    by_reason: Counter[str] = field(default_factory=Counter)
    selected: list[DeadLetter] = field(default_factory=list)
    unreadable: int = 0


def scan_dlq(s: WorkerSettings, *, reasons: set[str] | None, since: datetime | None,
             timeout_s: float, max_records: int | None = None) -> DlqScan:
    """Read the DLQ from the beginning (a throwaway group) and select letters to replay."""
    out = DlqScan()
    topic = deployment_topics(s).deadletter
    for rec in consume(s.kafka, [topic], max_records=max_records, timeout_s=timeout_s, idle_s=3.0):
        try:
            dl = codec.decode(DeadLetter, rec.value or b"", max_bytes=1 << 24)
        except ContractError:
            out.unreadable += 1
            continue
        out.by_reason[dl.reason.value] += 1
        if reasons and dl.reason.value not in reasons:
            continue
        if since and dl.created_at < since:
            continue
        out.selected.append(dl)
    return out


def replay(s: WorkerSettings, letters: list[DeadLetter]) -> int:
    """Publish each letter's original bytes to the input topic, keyed by its finding id if known."""
    items = [
        (dl.finding_id.encode() if dl.finding_id else None, base64.b64decode(dl.payload_b64))
        for dl in letters
    ]
    return produce_values(make_producer(s.kafka), deployment_topics(s).input, items)
