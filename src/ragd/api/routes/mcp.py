"""``/mcp`` on the HTTP API: MCP's streamable HTTP transport behind the API's own auth.

The route is an ordinary FastAPI route, so an MCP request meets exactly what a /v1
request meets: the key dependency (Bearer or X-API-Key, the keyless loopback default,
``RAGD_AUTH_DISABLED``), its 401 problems, the per-key rate limit, request ids, metrics
and security headers. Only once the caller is known does the route hand the request to
the SDK's transport, with the principal on the request state for the tools to read.

The transport runs stateless with JSON responses: every POST is complete in itself and
carries its own key, so nothing lives in the API process between requests, any replica
(or ``--workers`` process) can answer any request, and a session can never outlive
the key it was opened with.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragd.api.bodies import JsonBodyRoute, parse_json
from ragd.api.deps import ReadKey
from ragd.errors import Forbidden, PayloadTooLarge, UnsupportedMediaType
from ragd.mcp.caller import PRINCIPAL_STATE, http_caller
from ragd.mcp.server import build_server

MCP_PATH = "/mcp"
# Tool calls are a query and a few options; nothing needs more.
MAX_BODY_BYTES = 1024 * 1024
_STATE = "ragd_mcp_manager"
# The SDK says "Terminating session: None" at INFO after every stateless request; the
# access log already has one line per request. Its warnings and errors still show.
_CHATTY_LOGGERS = ("mcp.server.streamable_http", "mcp.server.streamable_http_manager")


@asynccontextmanager
async def _run_transport(app: FastAPI) -> AsyncIterator[None]:
    """Runs the SDK's request manager for the app's lifetime (it owns the task group the
    per-request servers run in). FastAPI nests this inside the app's own lifespan, so
    the container already exists here."""
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    server = build_server(http_caller)
    # Builds the manager (the Starlette app it returns is not used: the route below is
    # the endpoint), the SDK's way to mount a server inside another application.
    server.streamable_http_app(
        json_response=True,
        stateless_http=True,
        # Host headers are the API's TrustedHostMiddleware's job; Origin is checked below.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=MAX_BODY_BYTES,
    )
    manager = server.session_manager
    async with manager.run():
        setattr(app.state, _STATE, manager)
        yield


router = APIRouter(tags=["mcp"], lifespan=_run_transport, route_class=JsonBodyRoute)


class _HandOff(Response):
    """A response that lets an ASGI app answer the request: FastAPI has run the
    dependencies and the route has read (and checked) the body, which the transport
    is handed again as the request's only message."""

    def __init__(self, app: ASGIApp, body: bytes) -> None:
        super().__init__()
        self._app = app
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: a disconnect, as the server says
            replayed = True
            return {"type": "http.request", "body": self._body, "more_body": False}

        await self._app(scope, replay, send)


@router.post(MCP_PATH, include_in_schema=False)
async def mcp_endpoint(request: Request, key: ReadKey) -> Response:
    """The MCP endpoint. Read scope is enough: every tool only reads.

    POST only: a stateless server has nothing to push on a GET stream (the SDK would
    hold one open forever) and no session to DELETE, so both are 405, as the
    transport's specification allows."""
    _check_origin(request)
    _check_body(request)
    body = await request.body()
    # The API's one JSON parser (depth limit, 400 problem) sees the message first.
    with contextlib.suppress(json.JSONDecodeError):  # the SDK answers bad JSON-RPC itself
        parse_json(body)
    setattr(request.state, PRINCIPAL_STATE, key)
    manager: StreamableHTTPSessionManager = getattr(request.app.state, _STATE)
    return _HandOff(manager.handle_request, body)


def _check_body(request: Request) -> None:
    """What the transport would refuse as plain text, refused as the API's problems."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType("an MCP message is a JSON-RPC message: send application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"an MCP message must be at most {MAX_BODY_BYTES} bytes")


def _check_origin(request: Request) -> None:
    """MCP servers must refuse foreign browser origins: a web page could otherwise drive
    a loopback server (which needs no key) through DNS rebinding. Clients that are not
    browsers send no Origin; browsers may only come from the CORS allow-list."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    allowed = request.app.state.container.settings.cors_origins
    if "*" not in allowed and origin not in allowed:
        raise Forbidden(f"requests from the web origin {origin!r} may not use MCP")
