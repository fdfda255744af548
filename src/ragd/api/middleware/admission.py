"""Backpressure: at most ``RAGD_MAX_CONCURRENT_REQUESTS`` requests run at once in this
process; the next ones wait up to ``RAGD_QUEUE_TIMEOUT_MS`` for a slot and are then shed
with a problem+json 503 and ``Retry-After``.

Why: past the point where the CPU (the local embedding model, mostly) is saturated, every
extra concurrent request only makes all of them slower, until clients time out and retry
and nothing at all is answered in time. Refusing the excess quickly keeps the latency of
the admitted requests close to the unloaded one and tells clients (and load balancers)
to come back, instead of letting the queue grow without bound inside the process.

A slot is held for the whole ASGI call, so a streamed answer keeps its slot until its last
byte is sent or the client hangs up. Probes and ``/metrics`` are exempt: an overloaded
process is alive and still worth scraping, and a failing ``/livez`` would get it
restarted for being busy.

The admission is a counter and a FIFO of waiters rather than an ``asyncio.Semaphore``:
the wait is bounded and a slot is handed directly to the oldest waiter, so a request
arriving later cannot overtake one that has been waiting, and nothing is bound to one
event loop (tests run one app under several).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

from starlette.types import ASGIApp, Receive, Scope, Send

from ragd.api.middleware.problem import ResponseWatch, send_problem
from ragd.telemetry.metrics import HTTP_IN_FLIGHT, HTTP_QUEUED, HTTP_SHED

EXEMPT_PATHS = frozenset({"/livez", "/readyz", "/metrics"})


class Admission:
    """Up to ``limit`` holders at once; others queue in arrival order for a bounded time."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    async def enter(self, timeout_s: float) -> bool:
        """True once a slot is ours (then :meth:`leave` must follow); False if none
        freed up within ``timeout_s``."""
        if self.in_flight < self.limit and not self.queued:
            self._set_in_flight(self.in_flight + 1)
            return True
        if timeout_s <= 0:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        HTTP_QUEUED.inc()
        try:
            await asyncio.wait_for(waiter, timeout_s)
            return True
        except TimeoutError:
            # leave() may have handed us the slot just as the wait ran out: keep it.
            return waiter.done() and not waiter.cancelled()
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.leave()  # handed over as the client hung up: pass it on
            raise
        finally:
            HTTP_QUEUED.dec()
            if waiter in self._waiters and waiter.cancelled():
                self._waiters.remove(waiter)

    def leave(self) -> None:
        """Hand the slot to the oldest live waiter, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # in_flight is unchanged: the slot moves on
                return
        self._set_in_flight(self.in_flight - 1)

    def _set_in_flight(self, value: int) -> None:
        self.in_flight = value
        HTTP_IN_FLIGHT.set(value)


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, max_concurrent: int, queue_timeout_s: float) -> None:
        self.app = app
        self.queue_timeout_s = queue_timeout_s
        self.admission = Admission(max_concurrent)
        # Whole seconds (RFC 9110); a client retrying sooner would most likely wait again.
        self.retry_after = str(max(1, math.ceil(queue_timeout_s)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if not await self.admission.enter(self.queue_timeout_s):
            HTTP_SHED.inc()
            await send_problem(
                ResponseWatch(send),
                scope,
                503,
                "Service Unavailable",
                f"the server is at its limit of {self.admission.limit} concurrent requests; "
                f"retry after {self.retry_after} s",
                headers=[(b"retry-after", self.retry_after.encode())],
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.admission.leave()
