"""The ``openai`` teacher: any OpenAI-compatible chat-completions endpoint, over aiohttp.

Hosted LLMs, vLLM, llama.cpp server and Ollama speak this API. Soft labels come from
``top_logprobs`` at each value token; an endpoint without logprobs is asked for sampled votes
instead (``n`` choices, or repeated calls where ``n`` is ignored). Malformed answers and answers
outside the label sets are retried, then refused (``RejectedAnswer`` -> ``teacher_rejected``).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import aiohttp

from secdistill.schemas import codec
from secdistill.schemas.errors import ContractError
from secdistill.schemas.records import Finding
from secdistill.schemas.task import TaskSpec
from secdistill.workers.config import OpenAISettings
from secdistill.workers.teachers import prompt
from secdistill.workers.teachers.base import (
    RejectedAnswer,
    TeacherAnswer,
    TeacherFailed,
    TransientTeacherError,
    answer_from_probs,
)

log = logging.getLogger(__name__)

Retriever = Callable[[list[Finding], int], Awaitable[list[list[prompt.Example]]]]
# Auth failures wait rather than dead-letter: a rotated key is an outage, not a bad finding.
_TRANSIENT = {401, 403, 408, 409, 425, 429}


def retry_after(headers: Any) -> float | None:
    """Seconds from ``Retry-After`` (delta-seconds or HTTP date) or ``retry-after-ms``."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class OpenAIBackend:
    """Chat completions with constrained JSON, logprob soft labels and strict validation."""

    name = "openai"
    batchable = False

    def __init__(self, task: TaskSpec, settings: OpenAISettings, retriever: Retriever | None = None,
                 max_invalid: int = 2) -> None:
        self.task, self.settings, self.retriever = task, settings, retriever
        self.version = settings.model
        self.max_invalid = max_invalid
        self.logprobs_supported = settings.top_logprobs > 0
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Content-Type": "application/json"}
            key = self.settings.api_key.get_secret_value()
            if key:
                headers["Authorization"] = f"Bearer {key}"
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s))
        return self._session

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        url = self.settings.base_url.rstrip("/") + "/chat/completions"
        try:
            async with self._http().post(url, data=codec.dumps(body)) as resp:
                raw = await resp.read()
                if resp.status in _TRANSIENT or resp.status >= 500:
                    raise TransientTeacherError(f"HTTP {resp.status} from {url}: {raw[:200]!r}",
                                                retry_after(resp.headers))
                if resp.status >= 400:
                    raise TeacherFailed(f"HTTP {resp.status} from {url}: {raw[:500]!r}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientTeacherError(f"{type(exc).__name__} calling {url}: {exc}") from exc
        try:
            data = codec.loads(raw, max_bytes=8 << 20)
        except ContractError as exc:  # a proxy's HTML error page, a truncated body
            raise TransientTeacherError(f"unparseable response from {url}: {exc}") from exc
        if not isinstance(data, dict) or not data.get("choices"):
            raise TransientTeacherError(f"response from {url} has no choices")
        return data

    def _cost(self, data: dict[str, Any]) -> float:
        usage = data.get("usage") or {}
        s = self.settings
        return (float(usage.get("prompt_tokens", 0)) * s.price_per_1k_input_tokens
                + float(usage.get("completion_tokens", 0)) * s.price_per_1k_output_tokens) / 1000.0

    def _body(self, messages: list[dict[str, str]], votes: int = 1) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.settings.model, "messages": messages,
                                "response_format": prompt.response_format(self.task),
                                "temperature": 0.0 if votes == 1 else 0.7, "max_tokens": 200}
        if votes > 1:
            body["n"] = votes
        elif self.logprobs_supported:
            body.update(logprobs=True, top_logprobs=self.settings.top_logprobs)
        return body

    async def _examples(self, finding: Finding) -> list[prompt.Example]:
        k = self.settings.retrieved_examples
        if not self.retriever or k <= 0:
            return []
        return (await self.retriever([finding], k))[0]

    async def label(self, findings: list[Finding]) -> list[TeacherAnswer]:
        """One request per finding, concurrently (the service bounds the concurrency)."""
        return list(await asyncio.gather(*(self._one(f) for f in findings)))

    async def _one(self, finding: Finding) -> TeacherAnswer:
        started = time.perf_counter()
        messages = [{"role": "system", "content": prompt.system_prompt(self.task)},
                    {"role": "user", "content": prompt.user_prompt(
                        self.task, finding, await self._examples(finding))}]
        cost, last = 0.0, RejectedAnswer("no answer")
        for _attempt in range(self.max_invalid + 1):
            data = await self._post(self._body(messages))
            cost += self._cost(data)
            choice = data["choices"][0]
            content = (choice.get("message") or {}).get("content")
            try:
                labels = prompt.parse_answer(self.task, content)
            except RejectedAnswer as exc:
                log.debug("invalid answer for %s: %s", finding.finding_id, exc)
                last = exc
                continue
            tokens = ((choice.get("logprobs") or {}).get("content")) or []
            if tokens:
                probs = prompt.soft_labels(self.task, content or "", labels, tokens)
            else:
                if self.logprobs_supported:
                    log.info("endpoint gave no logprobs: soft labels from %d sampled votes",
                             self.settings.votes)
                    self.logprobs_supported = False
                answers, extra = await self._votes(messages, labels)
                cost += extra
                probs = prompt.vote_probs(self.task, answers)
            ans = answer_from_probs(self.task, probs, raw_answer=content, cost_usd=cost,
                                    decided_by="openai")
            return _with_latency(ans, started)
        rejected = RejectedAnswer(f"{self.max_invalid + 1} invalid answers: {last}", last.raw_answer)
        rejected.cost_usd = cost
        raise rejected

    async def _votes(self, messages: list[dict[str, str]], first: dict[str, str]
                     ) -> tuple[list[dict[str, str]], float]:
        answers, cost, calls = [first], 0.0, 0
        while len(answers) < self.settings.votes and calls < self.settings.votes:
            data = await self._post(self._body(messages, votes=self.settings.votes - len(answers)))
            cost, calls = cost + self._cost(data), calls + 1
            for choice in data["choices"]:
                try:
                    answers.append(prompt.parse_answer(
                        self.task, (choice.get("message") or {}).get("content")))
                except RejectedAnswer:
                    continue  # an invalid sample is not a vote
        return answers[: self.settings.votes], cost

    async def probe(self) -> None:
        """``GET /models``: any answer below 500 (except 429) means the endpoint is up."""
        url = self.settings.base_url.rstrip("/") + "/models"
        try:
            async with self._http().get(url) as resp:
                if resp.status >= 500 or resp.status == 429:
                    raise TransientTeacherError(f"probe: HTTP {resp.status}", retry_after(resp.headers))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientTeacherError(f"probe: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _with_latency(ans: TeacherAnswer, started: float) -> TeacherAnswer:
    return replace(ans, latency_ms=round((time.perf_counter() - started) * 1000.0, 3))
