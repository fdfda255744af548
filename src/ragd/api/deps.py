"""Dependencies that routes declare through ``Annotated`` aliases.

Authentication happens here and nowhere else: :func:`get_principal` resolves the caller
once per request (key, loopback default, or auth disabled), and the scope aliases
(``ReadKey``, ``WriteKey``, ``AdminKey``, ``KeyAdmin``) refuse callers below a route's
scope. A key's collection limit travels on into the services as
``principal.collection_ids``, which answer 404 for anything outside it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ragd.api.problems import PROBLEM_JSON
from ragd.api.ratelimit import enforce_rate_limit
from ragd.api.schemas.core import Problem
from ragd.audit import ANONYMOUS as ANONYMOUS_ACTOR
from ragd.audit import bind_actor
from ragd.auth import ANONYMOUS, Principal, Scope, is_loopback, key_prefix
from ragd.container import Container
from ragd.errors import Forbidden, Unauthorized
from ragd.telemetry.metrics import AUTH_FAILURES

KEY_REQUIRED = "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
NO_KEYS_YET = (
    "no API keys exist yet, so this server only answers loopback clients; create one on "
    "the server with 'ragd keys create --name NAME --scope admin' (or set RAGD_ADMIN_KEY), "
    "or set RAGD_AUTH_DISABLED=true on a trusted network"
)

log = structlog.get_logger(__name__)

_bearer = HTTPBearer(
    auto_error=False, bearerFormat="rgd_<prefix>_<secret>", description="An API key."
)
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key, for clients without Bearer."
)


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_principal(
    request: Request,
    container: ContainerDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key)],
) -> Principal:
    """The caller of this request, or 401. The key prefix (never the key) goes into the
    log context, so the access line and every service log line name the key."""
    presented = bearer.credentials if bearer is not None else api_key
    client = request.client.host if request.client else None
    try:
        principal = await run_in_threadpool(_resolve, container, presented, client)
    except Unauthorized as exc:
        reason = _failure_reason(presented, exc)
        AUTH_FAILURES.labels(reason=reason).inc()
        await _note_failure(container, presented, client, reason)
        # Failed attempts spend the address's budget too, so keys cannot be guessed fast.
        await enforce_rate_limit(request)
        raise
    bind_actor(principal.prefix or ANONYMOUS_ACTOR)  # who the audit log names
    if principal.prefix is not None:
        request.state.key_prefix = principal.prefix
        structlog.contextvars.bind_contextvars(key_prefix=principal.prefix)
    # The budget is the key's (or the address's), so it is spent once the caller is known.
    await enforce_rate_limit(request, principal)
    return principal


async def _note_failure(
    container: Container, presented: str | None, client: str | None, reason: str
) -> None:
    """An ``auth.failed`` audit event (aggregated per source; the prefix of a well-formed
    key, never the secret). Failing to write it must not turn the 401 into a 500."""
    prefix = key_prefix(presented) if presented else None
    failures = container.audit.failed_auths
    try:
        # Counting is in memory; only a due event (one a minute per source) is a write.
        entry = failures.count(key_prefix=prefix, client=client, reason=reason)
        if entry is not None:
            await run_in_threadpool(failures.write, entry, client=client)
    except Exception as exc:  # the refusal stands whatever the audit log did
        log.warning("could not record a failed authentication", error=str(exc))


def _resolve(container: Container, presented: str | None, client: str | None) -> Principal:
    if container.settings.auth_disabled:
        return ANONYMOUS
    if presented:
        try:
            return container.keys.authenticate(presented)
        except Unauthorized:
            if container.keys.any_active() or not is_loopback(client):
                raise
            # Keyless loopback mode: no key can be valid yet, so a credential is ignored
            # and the caller served as if it sent none. Clients such as the official
            # OpenAI SDK always send one, and a fresh laptop install must answer them.
            # An unknown rgd_ key is ignored too: refusing it would protect nothing.
            return ANONYMOUS
    if container.keys.any_active():
        raise Unauthorized(KEY_REQUIRED)
    if is_loopback(client):
        return ANONYMOUS  # the secure default: no keys yet, this machine only
    raise Unauthorized(NO_KEYS_YET)


def _failure_reason(presented: str | None, exc: Unauthorized) -> str:
    if not presented:
        return "missing"
    return "revoked" if "revoked" in exc.detail else "invalid"


def _require(
    needed: Scope, *, every_collection: bool = False
) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.allows(needed):
            AUTH_FAILURES.labels(reason="scope").inc()
            raise Forbidden(f"this needs a key with {needed} scope; this key has {principal.scope}")
        if every_collection and principal.limited:
            # Key management could mint a key that escapes the limit.
            raise Forbidden("managing keys needs an admin key that is not limited to collections")
        return principal

    return check


ReadKey = Annotated[Principal, Depends(_require("read"))]
WriteKey = Annotated[Principal, Depends(_require("write"))]
AdminKey = Annotated[Principal, Depends(_require("admin"))]
KeyAdmin = Annotated[Principal, Depends(_require("admin", every_collection=True))]


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# OpenAPI: every route behind a key can answer 401; routes above read scope also 403.
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: _problem_response("Missing, invalid or revoked API key (see WWW-Authenticate)")
}
FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: _problem_response("The API key's scope or collection limit does not allow this")
}
