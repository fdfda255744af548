"""Liveness and readiness probes."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ragd.api.deps import ContainerDep
from ragd.errors import RagdError
from ragd.schemas import CheckResult, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/livez", summary="The process is up (checks no dependency)")
def livez() -> dict[str, str]:
    return {"status": "ok"}


def _run_check(check: Callable[[], None]) -> CheckResult:
    started = time.perf_counter()
    try:
        check()
        status, detail = "ok", None
    except RagdError as exc:
        status, detail = "fail", exc.detail
    except Exception as exc:
        status, detail = "fail", type(exc).__name__
    latency = round((time.perf_counter() - started) * 1000, 2)
    return CheckResult(status=status, detail=detail, latency_ms=latency)


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    summary="Ready to serve: database reachable, embedding model loaded",
    responses={503: {"model": ReadyResponse, "description": "A required check failed"}},
)
async def readyz(container: ContainerDep) -> JSONResponse:
    checks = {
        "database": await run_in_threadpool(_run_check, container.store.check),
        "embedder": _run_check(container.embedder.check),
    }
    ready = all(c.status == "ok" for c in checks.values())
    body = ReadyResponse(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
