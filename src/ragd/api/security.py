"""Browser-facing hardening: security headers, CORS allow-list, trusted Host headers.

Pure ASGI (and Starlette's CORS middleware) so that they apply to every response,
errors and streams included. ``create_app`` adds them; the order matters and is
explained there.
"""

from __future__ import annotations

import json

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragd.config import Settings

# Plain API responses load nothing; a same-origin page may use its own scripts and styles.
DEFAULT_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's /docs (Swagger UI) and /redoc pages load their bundles from jsDelivr and
# start them with an inline script; ReDoc also uses Google Fonts and blob: workers.
DOCS_CSP = (
    "default-src 'self'; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.jsdelivr.net; "
    "font-src 'self' https://fonts.gstatic.com; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
HSTS = "max-age=31536000; includeSubDomains"

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
CORS_HEADERS_ALLOWED = ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"]
CORS_HEADERS_EXPOSED = [
    "X-Request-ID",
    "X-Process-Time",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "Location",
]


class SecurityHeadersMiddleware:
    """Adds the security headers to every response. HSTS only over https: the scheme
    uvicorn saw, or ``X-Forwarded-Proto`` from a proxy in ``RAGD_FORWARDED_ALLOW_IPS``
    (uvicorn's proxy-headers middleware has already rewritten the scheme then)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope.get("path") in DOCS_PATHS else DEFAULT_CSP
        extra = [*_COMMON, (b"content-security-policy", csp.encode())]
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", HSTS.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers.extend(h for h in extra if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def host_allowed(host: str, patterns: list[str]) -> bool:
    """``host`` (no port) matches ``name``, ``*.domain`` (subdomains only) or ``*``."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower()
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


def _host_of(header: str) -> str:
    if header.startswith("["):  # [::1]:8000
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class TrustedHostMiddleware:
    """Answers 400 problem+json to a Host header outside ``RAGD_TRUSTED_HOSTS``; it
    stops Host-header poisoning of absolute URLs such as ``Location``."""

    def __init__(self, app: ASGIApp, *, allowed: list[str]) -> None:
        self.app = app
        self.allowed = allowed
        self.any_host = "*" in allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any_host or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = ""
        for name, value in scope["headers"]:
            if name == b"host":
                header = value.decode("latin-1")
                break
        if host_allowed(_host_of(header), self.allowed):
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        body = json.dumps(
            {
                "type": "https://ragd.dev/problems/bad-request",
                "title": "Bad Request",
                "status": 400,
                "detail": "the Host header is not one this server answers to",
                "request_id": request_id,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def add_cors(app: FastAPI, settings: Settings) -> None:
    """CORS for the configured origins only; with none, browsers get no CORS headers
    and so cannot read responses from another origin."""
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=CORS_HEADERS_ALLOWED,
            expose_headers=CORS_HEADERS_EXPOSED,
            max_age=600,
        )
