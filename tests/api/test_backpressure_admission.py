"""The admission middleware on its own, around a small ASGI app whose requests finish
when the test says so: which request gets a slot, and when, is decided by events, not by
clocks (the only time here is the queue timeout, long when a request must be admitted and
near zero when it must be shed)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from ragd.api.middleware.admission import AdmissionMiddleware

LONG_WAIT_S = 60.0  # never reached: the holder is released first
NO_WAIT_S = 0.01


class Gated:
    """An ASGI app: each request announces itself, then answers once released."""

    def __init__(self) -> None:
        self.started: asyncio.Queue[str] = asyncio.Queue()
        self.release: dict[str, asyncio.Event] = {}

    def gate(self, name: str) -> asyncio.Event:
        return self.release.setdefault(name, asyncio.Event())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"].strip("/")
        await self.started.put(name)
        if name not in ("livez", "readyz", "metrics"):
            await self.gate(name).wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": name.encode()})


def scope_for(path: str) -> Scope:
    return {"type": "http", "method": "GET", "path": path, "headers": [], "state": {}}


async def call(app: AdmissionMiddleware, path: str) -> tuple[int, dict[str, str], bytes]:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    await app(scope_for(path), receive, send)
    start = messages[0]
    headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], headers, body


async def until_queued(app: AdmissionMiddleware, count: int) -> None:
    while app.admission.queued < count:
        await asyncio.sleep(0)


def test_a_request_waiting_within_the_timeout_is_admitted_when_a_slot_frees() -> None:
    async def scenario() -> None:
        inner = Gated()
        app = AdmissionMiddleware(inner, max_concurrent=1, queue_timeout_s=LONG_WAIT_S)
        first = asyncio.create_task(call(app, "/first"))
        assert await inner.started.get() == "first"
        second = asyncio.create_task(call(app, "/second"))
        await until_queued(app, 1)
        assert inner.started.empty(), "the second request ran while the slot was taken"
        assert app.admission.in_flight == 1

        inner.gate("first").set()
        assert (await first)[0] == 200
        assert await inner.started.get() == "second"
        inner.gate("second").set()
        status, _, body = await second
        assert (status, body) == (200, b"second")
        assert app.admission.in_flight == 0 and app.admission.queued == 0

    asyncio.run(scenario())


def test_past_the_timeout_a_request_is_shed_with_a_problem_and_retry_after() -> None:
    async def scenario() -> None:
        inner = Gated()
        app = AdmissionMiddleware(inner, max_concurrent=1, queue_timeout_s=NO_WAIT_S)
        first = asyncio.create_task(call(app, "/first"))
        assert await inner.started.get() == "first"

        status, headers, body = await call(app, "/second")
        assert status == 503
        assert headers["content-type"] == "application/problem+json"
        assert headers["retry-after"] == "1"
        problem: dict[str, Any] = json.loads(body)
        assert problem["status"] == 503 and problem["title"] == "Service Unavailable"
        assert "1 concurrent requests" in problem["detail"]
        assert inner.started.empty(), "a shed request never reaches the app"
        assert app.admission.queued == 0, "a shed request leaves the queue"

        inner.gate("first").set()
        assert (await first)[0] == 200
        assert app.admission.in_flight == 0
        inner.gate("third").set()
        assert (await call(app, "/third"))[0] == 200, "the freed slot is usable again"

    asyncio.run(scenario())


def test_probes_and_metrics_are_answered_while_every_slot_is_taken() -> None:
    async def scenario() -> None:
        inner = Gated()
        app = AdmissionMiddleware(inner, max_concurrent=1, queue_timeout_s=NO_WAIT_S)
        first = asyncio.create_task(call(app, "/first"))
        assert await inner.started.get() == "first"
        for path in ("/livez", "/readyz", "/metrics"):
            assert (await call(app, path))[0] == 200, path
        inner.gate("first").set()
        await first

    asyncio.run(scenario())


def test_waiters_are_admitted_in_arrival_order() -> None:
    async def scenario() -> None:
        inner = Gated()
        app = AdmissionMiddleware(inner, max_concurrent=1, queue_timeout_s=LONG_WAIT_S)
        tasks = [asyncio.create_task(call(app, "/first"))]
        assert await inner.started.get() == "first"
        for number, name in enumerate(("second", "third", "fourth"), start=1):
            tasks.append(asyncio.create_task(call(app, f"/{name}")))
            await until_queued(app, number)
        for name in ("first", "second", "third", "fourth"):
            inner.gate(name).set()
            if name != "first":
                assert await inner.started.get() == name
        assert [(await task)[0] for task in tasks] == [200] * 4

    asyncio.run(scenario())


def test_a_waiter_that_hangs_up_gives_its_turn_to_the_next() -> None:
    async def scenario() -> None:
        inner = Gated()
        app = AdmissionMiddleware(inner, max_concurrent=1, queue_timeout_s=LONG_WAIT_S)
        first = asyncio.create_task(call(app, "/first"))
        assert await inner.started.get() == "first"
        gone = asyncio.create_task(call(app, "/gone"))
        await until_queued(app, 1)
        third = asyncio.create_task(call(app, "/third"))
        await until_queued(app, 2)
        gone.cancel()
        inner.gate("first").set()
        assert await inner.started.get() == "third"
        inner.gate("third").set()
        assert (await third)[0] == 200
        assert (await first)[0] == 200
        assert app.admission.in_flight == 0 and app.admission.queued == 0

    asyncio.run(scenario())
