"""A fake OpenAI-compatible chat-completions server: real HTTP on a free 127.0.0.1 port.

It runs aiohttp.web in its own thread and event loop, so the client under test talks to it exactly as
to a remote endpoint. Behaviour is scriptable per request (``script("429", "500", "ok")``) with a
default mode for the rest, and every request body is recorded for assertions.

Modes: ``ok`` (answer + logprobs), ``no_logprobs`` (answer, honours ``n`` with varied votes),
``429`` (with Retry-After), ``500``, ``503``, ``slow`` (sleeps ``slow_s`` first), ``malformed`` (not
JSON), ``outside`` (a value outside the label set), ``extra_key``, ``html`` (a proxy's error page),
``gullible`` (obeys an injected instruction found in the advisory: answers outside the label set).
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import deque
from typing import Any

from aiohttp import web

from secdistill.schemas import codec
from secdistill.schemas.task import TaskSpec

INJECTION_MARKER = "IGNORE PREVIOUS INSTRUCTIONS"


def default_answer(task: TaskSpec) -> dict[str, str]:
    """The first class of every head, except CVSS metrics set to a common vector."""
    common = {"AV": "N", "AC": "L", "PR": "N", "UI": "N", "S": "U", "C": "H", "I": "H", "A": "H"}
    return {h.name: common.get(h.name, h.classes[0]) for h in task.heads}


def tokenize_answer(answer: dict[str, str]) -> list[tuple[str, str | None]]:
    """Split the compact JSON answer into OpenAI-like tokens; value tokens carry their head."""
    tokens: list[tuple[str, str | None]] = [('{"', None)]
    items = list(answer.items())
    for i, (head, value) in enumerate(items):
        tokens += [(head, None), ('":"', None)]
        pieces = value.split("-")
        tokens.append((pieces[0], head))
        tokens += [("-" + p, None) for p in pieces[1:]]
        tokens.append(('","' if i < len(items) - 1 else '"}', None))
    return tokens


class FakeOpenAIServer:
    """``with FakeOpenAIServer(task) as srv: srv.base_url``; see the module docstring for modes."""

    def __init__(self, task: TaskSpec, *, mode: str = "ok", answer: dict[str, str] | None = None,
                 confidence: float = 0.8, retry_after: str = "0.2", slow_s: float = 2.0,
                 model: str = "fake-gpt") -> None:
        self.task, self.mode, self.model = task, mode, model
        self.answer = answer or default_answer(task)
        self.confidence, self.retry_after, self.slow_s = confidence, retry_after, slow_s
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.headers: list[dict[str, str]] = []
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """The ``/v1`` base URL clients are configured with."""
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *modes: str) -> None:
        """Modes for the next requests, in order; then the default ``mode`` again."""
        with self._lock:
            self._script.extend(modes)

    def set_mode(self, mode: str) -> None:
        """Change the default mode (e.g. ``503`` for an outage, then ``ok``)."""
        with self._lock:
            self.mode = mode

    def _next_mode(self) -> str:
        with self._lock:
            return self._script.popleft() if self._script else self.mode

    @property
    def completions(self) -> int:
        """How many chat-completion requests arrived."""
        return len(self.requests)

    # -- HTTP ---------------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        if self.mode in ("500", "503", "429"):
            return web.Response(status=503, text="down")
        return web.json_response({"object": "list", "data": [{"id": self.model}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = codec.loads(await request.read(), max_bytes=16 << 20)
        with self._lock:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
        mode = self._next_mode()
        resp = await self._respond(mode, body)
        self.statuses.append(resp.status)
        return resp

    async def _respond(self, mode: str, body: dict[str, Any]) -> web.Response:
        if mode == "429":
            return web.json_response({"error": {"message": "rate limited"}}, status=429,
                                     headers={"Retry-After": self.retry_after})
        if mode in ("500", "503"):
            return web.json_response({"error": {"message": "overloaded"}}, status=int(mode))
        if mode == "html":
            return web.Response(text="<html>bad gateway</html>", content_type="text/html")
        if mode == "slow":
            await asyncio.sleep(self.slow_s)
        user = body["messages"][-1]["content"]
        answer = dict(self.answer)
        if mode == "outside" or (mode == "gullible" and INJECTION_MARKER in user):
            answer[self.task.heads[0].name] = "X"
        if mode == "extra_key":
            answer["owned"] = "yes"
        n = int(body.get("n", 1))
        logprobs = bool(body.get("logprobs")) and mode not in ("no_logprobs",)
        choices = []
        for i in range(n):
            vote = self._vote(answer, i) if n > 1 else answer
            content = "this is {not json" if mode == "malformed" else codec.dumps(vote).decode()
            choice: dict[str, Any] = {"index": i, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": content}}
            if logprobs and mode != "malformed":
                choice["logprobs"] = {"content": self._logprobs(vote, int(body.get("top_logprobs", 0)))}
            choices.append(choice)
        prompt_tokens = sum(len(m["content"]) for m in body["messages"]) // 4
        return web.json_response({
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "model": self.model,
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 30 * n,
                      "total_tokens": prompt_tokens + 30 * n},
        })

    def _vote(self, answer: dict[str, str], i: int) -> dict[str, str]:
        """Sampled votes: every second one flips the second head to its next class."""
        vote = dict(answer)
        if i % 2 == 1:
            head = self.task.heads[1]
            vote[head.name] = head.classes[(head.classes.index(vote[head.name]) + 1) % len(head.classes)]
        return vote

    def _logprobs(self, answer: dict[str, str], top: int) -> list[dict[str, Any]]:
        heads = self.task.head_map()
        out = []
        for text, head in tokenize_answer(answer):
            entry: dict[str, Any] = {"token": text, "logprob": 0.0, "bytes": list(text.encode())}
            alts = [{"token": text, "logprob": 0.0}]
            if head is not None and head in heads:
                entry["logprob"] = math.log(self.confidence)
                others = [c.split("-")[0] for c in heads[head].classes if c != answer[head]]
                others = others[: max(0, top - 1)]
                share = (1.0 - self.confidence) / max(1, len(others))
                alts = [{"token": text, "logprob": math.log(self.confidence)}]
                alts += [{"token": o, "logprob": math.log(share)} for o in others]
            entry["top_logprobs"] = alts[:max(top, 1)]
            out.append(entry)
        return out

    # -- lifecycle ----------------------------------------------------------------------------

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application(client_max_size=16 << 20)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)  # the OS hands us a free port we own
        loop.run_until_complete(site.start())
        self.port = runner.addresses[0][1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def __enter__(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self._serve, name="fake-openai", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
