"""Flow control for teacher calls: token bucket, daily call/cost budget, circuit breaker.

Each takes an injectable clock so tests can drive time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum

Clock = Callable[[], float]


def utc_today() -> date:
    """The current UTC date: budgets reset at UTC midnight."""
    return datetime.now(timezone.utc).date()


def seconds_to_utc_midnight() -> float:
    """Seconds until the next UTC day starts."""
    now = datetime.now(timezone.utc)
    nxt = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
    return (nxt - now).total_seconds()


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``acquire`` waits (FIFO) for its tokens."""

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, float(burst), clock
        self.tokens = float(burst)
        self.stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    async def acquire(self, n: float = 1.0) -> None:
        """Take ``n`` tokens (capped at the burst), sleeping until they are there."""
        n = min(float(n), self.burst)
        async with self._lock:
            while True:
                self._refill()
                if self.tokens >= n:
                    self.tokens -= n
                    return
                await asyncio.sleep((n - self.tokens) / self.rate)


class DailyBudget:
    """Calls and dollars per UTC day. In-flight calls reserve the average cost of a call."""

    def __init__(self, max_usd: float, max_calls: int, today: Callable[[], date] = utc_today) -> None:
        self.max_usd, self.max_calls, self.today = max_usd, max_calls, today
        self.day = today()
        self.spent_usd = 0.0
        self.calls = 0
        self.pending_calls = 0
        self.total_usd = 0.0  # lifetime, for the cost ledger
        self.total_calls = 0

    def _roll(self) -> None:
        today = self.today()
        if today != self.day:
            self.day, self.spent_usd, self.calls = today, 0.0, 0

    @property
    def avg_cost(self) -> float:
        """Mean dollars per call so far (today's, else lifetime)."""
        if self.calls:
            return self.spent_usd / self.calls
        return self.total_usd / self.total_calls if self.total_calls else 0.0

    def exhausted(self, n: int = 1) -> bool:
        """Would ``n`` more calls break today's call count or (at the average cost) dollars?"""
        self._roll()
        if self.calls + self.pending_calls + n > self.max_calls:
            return True
        committed = self.spent_usd + (self.pending_calls + n) * self.avg_cost
        return self.spent_usd >= self.max_usd or committed > self.max_usd

    def reserve(self, n: int = 1) -> None:
        """Count ``n`` calls as in flight."""
        self.pending_calls += n

    def settle(self, n: int, cost_usd: float, counted: bool = True) -> None:
        """``n`` reserved calls finished and cost ``cost_usd``; ``counted=False`` for calls the
        teacher refused (429, 5xx, timeouts), which do not use up the daily call count."""
        self._roll()
        self.pending_calls = max(0, self.pending_calls - n)
        if counted:
            self.calls += n
            self.total_calls += n
        self.spent_usd += cost_usd
        self.total_usd += cost_usd

    @property
    def remaining_usd(self) -> float:
        """Dollars left today."""
        self._roll()
        return max(0.0, self.max_usd - self.spent_usd)

    @property
    def remaining_fraction(self) -> float:
        """The tighter of dollars and calls left today, as a fraction."""
        self._roll()
        usd = self.remaining_usd / self.max_usd if self.max_usd > 0 else 1.0
        calls = 1.0 - self.calls / self.max_calls if self.max_calls > 0 else 0.0
        return max(0.0, min(usd, calls))


class BreakerState(StrEnum):
    """Circuit breaker states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; after ``reset_s`` one probe may close it."""

    def __init__(self, failures: int, reset_s: float, clock: Clock = time.monotonic) -> None:
        self.threshold, self.reset_s, self.clock = failures, reset_s, clock
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.opened_count = 0

    def ready_to_probe(self) -> bool:
        """Open long enough that a probe may try the teacher again."""
        return self.state is BreakerState.OPEN and self.clock() - self.opened_at >= self.reset_s

    def seconds_to_probe(self) -> float:
        """Time left until a probe is allowed (0 when not open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.reset_s - (self.clock() - self.opened_at))

    def half_open(self) -> None:
        """A probe is in flight."""
        self.state = BreakerState.HALF_OPEN

    def record_success(self) -> None:
        """The teacher answered: close."""
        self.state, self.failures = BreakerState.CLOSED, 0

    def record_failure(self) -> None:
        """A transient failure; opens at the threshold, or at once when half-open."""
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.failures >= self.threshold
        ):
            self.opened_count += 1
            self.state, self.opened_at = BreakerState.OPEN, self.clock()
        elif self.state is BreakerState.OPEN:
            self.opened_at = self.clock()  # a straggler failed: restart the cool-down
