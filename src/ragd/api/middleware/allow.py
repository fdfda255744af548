"""``Allow`` names every method of a path: on OPTIONS, and on every 405.

FastAPI makes one route per method, and Starlette's router answers a wrong method with
the methods of the *first* route whose path matched, so ``/v1/collections/{id}`` said
``Allow: GET`` although it also has PATCH and DELETE, and a plain OPTIONS was a 405.
This middleware knows the method set of each path (built once from the routes) and
answers a non-CORS OPTIONS itself with 204 and the full ``Allow``, and corrects the
``Allow`` of any 405. CORS preflights never reach it: the CORS middleware sits outside
and answers them (when no origin is configured, a preflight gets the plain answer,
which carries no ``Access-Control-Allow-Origin``, so browsers still refuse).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _rank(method: str) -> tuple[int, str]:
    return (_ORDER.index(method) if method in _ORDER else len(_ORDER), method)


class MethodTable:
    """The methods each path of the app answers, from its routes' path patterns."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._paths: list[tuple[re.Pattern[str], frozenset[str]]] = []
        for route in routes:
            regex = getattr(route, "path_regex", None)
            methods = getattr(route, "methods", None)
            if isinstance(regex, re.Pattern) and methods:
                self._paths.append((regex, frozenset(methods)))

    def allow(self, path: str) -> str | None:
        """The ``Allow`` value of ``path``, or None for no route. It names the methods of
        the path's routes; OPTIONS, answered for every path alike, is left out, as
        Starlette and the MCP transport do (clients compare it to the OpenAPI
        document, which has no OPTIONS operations)."""
        found: set[str] = set()
        for regex, methods in self._paths:
            if regex.match(path):
                found |= methods
        if not found:
            return None
        return ", ".join(sorted(found, key=_rank))


class AllowMiddleware:
    def __init__(self, app: ASGIApp, table: MethodTable) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            allow = self.table.allow(scope["path"])
            if allow is None:
                await self.app(scope, receive, send)
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(b"allow", allow.encode())],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_allow(message: Message) -> None:
            # Only a 405 needs the table: matching every route per request costs more
            # than the rest of this middleware.
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = self.table.allow(scope["path"])
                if allow is not None:
                    MutableHeaders(scope=message)["Allow"] = allow
            await send(message)

        await self.app(scope, receive, send_with_allow)
