"""Prometheus metrics of the teacher worker, on an explicit registry (tests get their own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BREAKER_CODES = {"closed": 0, "half_open": 1, "open": 2}


class TeacherMetrics:
    """Calls, latency, cost, budget, cache, breaker and shadow agreement."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.calls = Counter("secdistill_teacher_calls", "Teacher backend calls",
                             ["backend", "result"], registry=r)
        self.seconds = Histogram("secdistill_teacher_seconds", "Teacher call latency",
                                 buckets=_SECONDS, registry=r)
        self.cost = Counter("secdistill_teacher_cost_usd", "Dollars spent on teacher calls", registry=r)
        self.budget_remaining = Gauge("secdistill_teacher_budget_remaining_usd",
                                      "Dollars left in today's teacher budget", registry=r)
        self.cache_hits = Counter("secdistill_teacher_cache_hits",
                                  "Requests answered from the fingerprint cache (no call)", registry=r)
        self.outcomes = Counter("secdistill_teacher_outcomes", "Teacher requests by outcome",
                                ["outcome"], registry=r)
        self.breaker = Gauge("secdistill_teacher_breaker_state",
                             "Circuit breaker: 0 closed, 1 half-open, 2 open", registry=r)
        self.waiting = Gauge("secdistill_teacher_waiting",
                             "Requests waiting for capacity (breaker, budget, Retry-After)", registry=r)
        self.in_flight = Gauge("secdistill_teacher_in_flight", "Teacher calls in flight", registry=r)
        self.shadow_agreement = Gauge("secdistill_shadow_agreement",
                                      "Student-teacher agreement on shadow samples", ["head"], registry=r)
        self.shadow_slice = Gauge("secdistill_shadow_agreement_slice",
                                  "Shadow agreement per slice", ["head", "slice", "value"], registry=r)
