"""Liveness and readiness probes.

``/readyz`` runs its checks concurrently, each under ``RAGD_READY_TIMEOUT_S``:

- ``database`` and ``embedder``: always, always required;
- ``redis``: when ``RAGD_REDIS_URL`` is set; required only when rate limiting fails
  closed, because only then does a Redis outage stop requests being served;
- ``llm``: when ``RAGD_LLM_BASE_URL`` is set; reported, never required, because search
  and every other route still work without it (``/v1/ask`` answers 503 meanwhile).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ragd.api.bodies import JsonBodyRoute
from ragd.api.deps import ContainerDep
from ragd.api.ratelimit import RateLimiter
from ragd.api.schemas.core import CheckResult, ReadyResponse
from ragd.errors import RagdError
from ragd.telemetry.metrics import READINESS_CHECK

router = APIRouter(tags=["health"], route_class=JsonBodyRoute)


@router.get("/livez", summary="The process is up (checks no dependency)")
def livez() -> dict[str, str]:
    return {"status": "ok"}


async def _run_check(
    check: Callable[[], Awaitable[None]], timeout_s: float, *, required: bool = True
) -> CheckResult:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout_s)
        status, detail = "ok", None
    except TimeoutError:
        status, detail = "fail", f"no answer within {timeout_s:g}s"
    except RagdError as exc:
        status, detail = "fail", exc.detail
    except Exception as exc:
        status, detail = "fail", type(exc).__name__
    latency = round((time.perf_counter() - started) * 1000, 2)
    return CheckResult(status=status, detail=detail, latency_ms=latency, required=required)


def _in_thread(check: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await run_in_threadpool(check)

    return run


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    summary="Ready to serve: database, embedding model; Redis and LLM when configured",
    responses={503: {"model": ReadyResponse, "description": "A required check failed"}},
)
async def readyz(request: Request, container: ContainerDep) -> JSONResponse:
    settings = container.settings
    timeout = settings.ready_timeout_s
    checks: dict[str, Awaitable[CheckResult]] = {
        "database": _run_check(_in_thread(container.store.check), timeout),
        "embedder": _run_check(_in_thread(container.embedder.check), timeout),
    }
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None and limiter.shared:
        required = limiter.enabled and not limiter.fail_open

        async def redis() -> None:
            assert limiter is not None
            await limiter.check(timeout)

        checks["redis"] = _run_check(redis, timeout, required=required)
    if settings.llm_base_url or settings.llm_provider == "anthropic":
        checks["llm"] = _run_check(_in_thread(container.generator.check), timeout, required=False)
    results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    ready = all(c.status == "ok" for c in results.values() if c.required)
    for name, result in results.items():  # Prometheus sees what the probe saw
        needed = "true" if result.required else "false"
        READINESS_CHECK.labels(check=name, required=needed).set(result.status == "ok")
    body = ReadyResponse(status="ready" if ready else "not ready", checks=results)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
