"""Rate limits per API key (or client address), counted in memory or in Redis.

Three budgets, each a list of fixed windows from the ``limits`` library: ``default`` for
every request to the API, ``ingest`` for document POSTs (single or batch), which cost far
more and so do not eat into the budget of searches, and ``documents``, spent by each
document a POST adds: a batch of 100 is one ``ingest`` request and 100 ``documents``.
Counters live in process memory unless ``RAGD_REDIS_URL`` is set; then every process and
replica shares one budget per caller.

Admin keys and the keyless loopback mode (the owner of the machine, before any key
exists) are not limited unless ``RAGD_RATE_LIMIT_ADMIN=true``: a budget there stops
the operator's own bulk work and protects nothing from anyone else. With
``RAGD_AUTH_DISABLED`` every caller is anonymous, so callers stay limited by address.

The check runs as part of resolving the caller (see ``ragd.api.deps.get_principal``)
because the budget belongs to the key, and the key is known only then. Routes that
never ask who is calling (``/livez``, ``/readyz``, ``/metrics``, ``/docs``,
``/openapi.json``) are never limited. The verdict travels on ``request.state`` to
:class:`RateLimitHeadersMiddleware`, which puts ``X-RateLimit-*`` on the response
whatever the route returns (a model, a ``Response``, a stream or a 429).

When Redis cannot be reached the request is served unlimited
(``RAGD_RATE_LIMIT_FAIL_OPEN=true``, the default) or refused with 503; Redis is then
left alone for a few seconds instead of being asked (and waited for) on every request.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, replace
from typing import Literal

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragd.api.problems import problem
from ragd.auth import Principal
from ragd.config import Settings
from ragd.errors import PayloadTooLarge, Unavailable
from ragd.telemetry.metrics import RATE_LIMIT_REJECTIONS, RATE_LIMIT_STORAGE_ERRORS

log = structlog.get_logger(__name__)

Budget = Literal["default", "ingest", "documents"]

EXEMPT_PATHS = frozenset({"/livez", "/readyz", "/metrics", "/docs", "/openapi.json"})
INGEST_ROUTES = frozenset(
    {
        ("POST", "/v1/collections/{collection_id}/documents"),
        ("POST", "/v1/collections/{collection_id}/documents:batch"),
    }
)
_REDIS_TIMEOUT_S = 1.0
_STORAGE_RETRY_S = 5.0
_STATE_KEY = "rate_limit_headers"


def identity(request: Request) -> str:
    """Whose budget a request spends: its API key's prefix once authentication has set
    ``request.state.key_prefix``, otherwise the client address."""
    prefix = getattr(request.state, "key_prefix", None)
    if prefix:
        return f"key:{prefix}"
    return f"ip:{request.client.host if request.client else 'unknown'}"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one request against the tightest window of its budget."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until that window starts afresh
    window: str  # "60 per 1 minute"

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_s).encode()),
        ]


class RateLimited(Exception):
    """A request over its budget; answered 429 with ``Retry-After``."""

    def __init__(self, verdict: Verdict, detail: str | None = None) -> None:
        super().__init__(verdict.window)
        self.verdict = verdict
        self.detail = (
            detail or f"rate limit of {verdict.window} exceeded; retry in {verdict.reset_s} s"
        )


class RateLimiter:
    """Fixed windows that start at a caller's first request, counted in ``storage``.

    Counting is one atomic increment per window: the count it returns decides the
    request and fills the headers, so concurrent requests never see a stale remainder.
    """

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.fail_open = settings.rate_limit_fail_open
        self.shared = settings.redis_url is not None
        self.limit_admin = settings.rate_limit_admin
        self.auth_disabled = settings.auth_disabled
        self.budgets: dict[Budget, list[RateLimitItem]] = {
            "default": parse_many(settings.rate_limit),
            "ingest": parse_many(settings.ingest_rate_limit),
            "documents": parse_many(settings.ingest_documents_rate_limit),
        }
        self.storage = _open_storage(settings)
        self._down_until = 0.0

    def exempts(self, principal: Principal) -> bool:
        """Whether ``principal`` is served unlimited: an admin key, or the keyless
        loopback mode (anonymous while auth is on), unless RAGD_RATE_LIMIT_ADMIN."""
        if self.limit_admin or principal.scope != "admin":
            return False
        return principal.key_id is not None or not self.auth_disabled

    def smallest(self, budget: Budget) -> RateLimitItem:
        """The window of ``budget`` that allows the fewest hits."""
        return min(self.budgets[budget], key=lambda item: item.amount)

    async def hit(self, budget: Budget, who: str, cost: int = 1) -> Verdict | None:
        """Count ``cost`` hits (one request, or the documents it adds); None when the
        storage is down and the limiter fails open. Raises
        :class:`~ragd.errors.Unavailable` when it is down and fails closed."""
        if time.monotonic() >= self._down_until:
            try:
                return await self._count(budget, who, cost)
            except Exception as exc:  # logged once per retry period, not per request
                log.warning(
                    "rate-limit storage unreachable",
                    error_type=type(exc).__name__,
                    fail_open=self.fail_open,
                )
                self._down_until = time.monotonic() + _STORAGE_RETRY_S
        RATE_LIMIT_STORAGE_ERRORS.inc()
        if self.fail_open:
            return None
        raise Unavailable("rate limiting is unavailable (its storage cannot be reached)")

    async def _count(self, budget: Budget, who: str, cost: int) -> Verdict:
        tightest: Verdict | None = None
        spent: list[tuple[str, RateLimitItem]] = []
        for item in self.budgets[budget]:
            key = item.key_for(budget, who)
            count = await self.storage.incr(key, item.get_expiry(), amount=cost)
            spent.append((key, item))
            reset_at = await self.storage.get_expiry(key)
            verdict = Verdict(
                allowed=count <= item.amount,
                limit=item.amount,
                remaining=max(item.amount - count, 0),
                reset_s=max(math.ceil(reset_at - time.time()), 1),
                window=str(item),
            )
            if not verdict.allowed:
                self._down_until = 0.0
                if budget == "documents":
                    # Nothing of a refused batch is written, so none of it is spent: a
                    # smaller batch that still fits must not be refused for it.
                    for spent_key, spent_item in spent:
                        await self.storage.incr(spent_key, spent_item.get_expiry(), -cost)
                    remaining = max(item.amount - count + cost, 0)
                    return replace(verdict, remaining=remaining)
                return verdict
            if tightest is None or verdict.remaining < tightest.remaining:
                tightest = verdict
        assert tightest is not None  # settings validation guarantees one window at least
        self._down_until = 0.0
        return tightest

    async def check(self, timeout_s: float) -> None:
        """Raise unless the storage answers within ``timeout_s`` (for ``/readyz``)."""
        try:
            healthy = await asyncio.wait_for(self.storage.check(), timeout_s)
        except TimeoutError:
            raise Unavailable(f"Redis did not answer within {timeout_s:g}s") from None
        if not healthy:
            raise Unavailable("Redis cannot be reached")

    async def close(self) -> None:
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        aclose = getattr(client, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception as exc:  # closing a client whose server is gone
                log.debug("closing rate-limit storage failed", error_type=type(exc).__name__)


def _open_storage(settings: Settings) -> Storage:
    if settings.redis_url is None:
        storage = storage_from_string("async+memory://")
    else:
        url = settings.redis_url
        uri = "async+redis+" + url if url.startswith("unix://") else "async+" + url
        storage = storage_from_string(
            uri,
            implementation="redispy",
            key_prefix=settings.rate_limit_key_prefix,
            wrap_exceptions=True,
            socket_timeout=_REDIS_TIMEOUT_S,
            socket_connect_timeout=_REDIS_TIMEOUT_S,
        )
    assert isinstance(storage, Storage)
    return storage


def _limiter(request: Request, principal: Principal | None) -> RateLimiter | None:
    """The limiter that applies to this caller, or None when nothing limits it."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None or not limiter.enabled:
        return None
    if principal is not None and limiter.exempts(principal):
        return None
    return limiter


async def enforce_rate_limit(request: Request, principal: Principal | None = None) -> None:
    """Spend one request of the caller's budget, or raise :class:`RateLimited`.

    Call it once the caller is known (``request.state.key_prefix`` set for a key), with
    ``principal`` None for a caller that failed to authenticate."""
    limiter = _limiter(request, principal)
    if limiter is None or request.url.path in EXEMPT_PATHS:
        return
    if getattr(request.state, _STATE_KEY, None) is not None:
        return  # already counted for this request
    template = getattr(request.scope.get("route"), "path", "")
    budget: Budget = "ingest" if (request.method, template) in INGEST_ROUTES else "default"
    verdict = await limiter.hit(budget, identity(request))
    if verdict is None:
        return
    setattr(request.state, _STATE_KEY, verdict.headers())
    if not verdict.allowed:
        RATE_LIMIT_REJECTIONS.labels(budget=budget).inc()
        raise RateLimited(verdict)


async def spend_documents(request: Request, principal: Principal, count: int) -> None:
    """Spend ``count`` documents of the caller's documents budget before any is written.

    Raises :class:`RateLimited` (429, ``Retry-After``) when they do not fit what is left
    of a window, and :class:`~ragd.errors.PayloadTooLarge` when they could never fit
    (more than a whole window allows: waiting would not help, a smaller batch would)."""
    limiter = _limiter(request, principal)
    if limiter is None or count < 1:
        return
    smallest = limiter.smallest("documents")
    if count > smallest.amount:
        raise PayloadTooLarge(
            f"{count} documents are more than the documents budget of {smallest} allows "
            "at once; send smaller batches"
        )
    verdict = await limiter.hit("documents", identity(request), count)
    if verdict is None:
        return
    headers = getattr(request.state, _STATE_KEY, None) or []
    setattr(request.state, _STATE_KEY, [*headers, *_documents_headers(verdict)])
    if not verdict.allowed:
        RATE_LIMIT_REJECTIONS.labels(budget="documents").inc()
        raise RateLimited(
            verdict,
            f"documents budget of {verdict.window} exceeded: this request adds {count}, "
            f"{verdict.remaining} remain; retry in {verdict.reset_s} s",
        )


def _documents_headers(verdict: Verdict) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-documents-limit", str(verdict.limit).encode()),
        (b"x-ratelimit-documents-remaining", str(verdict.remaining).encode()),
        (b"x-ratelimit-documents-reset", str(verdict.reset_s).encode()),
    ]


def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)
    return problem(
        request,
        429,
        "Too Many Requests",
        exc.detail,
        headers={"Retry-After": str(exc.verdict.reset_s)},
    )


class RateLimitHeadersMiddleware:
    """Adds the verdict's ``X-RateLimit-*`` headers to the response of a limited request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = scope.get("state", {}).get(_STATE_KEY)
                if extra:
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_rate_limits(app: FastAPI) -> None:
    """The 429 handler and the header middleware; the limiter itself is built in the
    app's lifespan (:func:`open_rate_limiter`) so its connections belong to the
    serving event loop."""
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_middleware(RateLimitHeadersMiddleware)


def open_rate_limiter(app: FastAPI, settings: Settings) -> RateLimiter:
    limiter = RateLimiter(settings)
    app.state.rate_limiter = limiter
    log.info(
        "rate limits",
        enabled=limiter.enabled,
        storage="redis" if limiter.shared else "memory",
        default=settings.rate_limit,
        ingest=settings.ingest_rate_limit,
        documents=settings.ingest_documents_rate_limit,
        limit_admin=settings.rate_limit_admin,
    )
    return limiter
