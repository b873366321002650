"""A teacher outage over real HTTP: requests wait, nothing is lost, the budget holds, work resumes."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from secdistill.schemas.task import TaskSpec
from secdistill.workers.config import OpenAISettings, TeacherSettings
from secdistill.workers.teachers.flow import ServiceOptions
from secdistill.workers.teachers.metrics import TeacherMetrics
from secdistill.workers.teachers.openai import OpenAIBackend
from secdistill.workers.teachers.service import TeacherService
from tests.fakes.openai_server import FakeOpenAIServer
from tests.unit.workers.teachers.conftest import finding, request_for


def test_outage_then_recovery_loses_nothing(task: TaskSpec) -> None:
    with FakeOpenAIServer(task) as srv:
        openai = OpenAISettings(base_url=srv.base_url, api_key=SecretStr("k"), timeout_s=2.0,
                                retrieved_examples=0, price_per_1k_input_tokens=0.01,
                                price_per_1k_output_tokens=0.01)
        settings = TeacherSettings(backend="openai", max_in_flight=4, rate_per_s=1000.0, burst=100,
                                   breaker_failures=3, breaker_reset_s=0.1, max_retries=2,
                                   backoff_base_s=0.01, backoff_max_s=0.05, daily_budget_usd=1.0,
                                   openai=openai)
        registry = CollectorRegistry()
        svc = TeacherService(OpenAIBackend(task, openai), task, settings,
                             metrics=TeacherMetrics(registry), options=ServiceOptions(poll_s=0.02, seed=1))
        srv.set_mode("503")

        async def main() -> list:
            tasks = [asyncio.create_task(svc.handle(request_for(finding(i)))) for i in range(12)]
            deadline = time.monotonic() + 5
            while svc.breaker.opened_count == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert svc.breaker.opened_count >= 1
            during = srv.completions
            await asyncio.sleep(0.5)  # an outage lasting a while: probes only, no call storm
            assert srv.completions - during <= settings.max_in_flight
            assert not any(t.done() for t in tasks)
            assert registry.get_sample_value("secdistill_teacher_waiting") >= 1
            srv.set_mode("ok")
            try:
                return list(await asyncio.wait_for(asyncio.gather(*tasks), 10))
            finally:
                await svc.aclose()

        outcomes = asyncio.run(main())
    assert all(o.label is not None and o.labelled is not None for o in outcomes)
    assert {o.label.finding_id for o in outcomes} == {f"f-{i}" for i in range(12)}
    assert svc.budget.spent_usd <= settings.daily_budget_usd
    assert svc.breaker.state.value == "closed"
    assert registry.get_sample_value("secdistill_teacher_calls_total",
                                     {"backend": "openai", "result": "ok"}) == 12
