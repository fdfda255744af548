"""Pure ASGI middleware around the app, one job per module, composed in one order.

Pure ASGI rather than ``BaseHTTPMiddleware`` so that bodies stream through untouched and
the cap can stop an upload while it arrives instead of after it has been buffered.
:class:`RequestContextMiddleware` is the chain the app installs; from the outside in:

- :mod:`.request_id`: a request id in every log line and the response headers, with
  ``X-Process-Time``;
- :mod:`.access_log`: one access line per request, whatever answered it;
- :mod:`.errors`: any escaped exception becomes a problem+json 500 with the request id;
- :mod:`.admission`: backpressure, a bounded number of requests at once, the rest wait
  briefly and are then shed with a 503 (inside the id and the access log, so a shed
  request carries an id and is logged);
- :mod:`.body_limit`: the body cap (413), declared or streamed;
- :mod:`.nul_guard`: JSON bodies with ``\\u0000`` are a 422 on every database.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from ragd.api.middleware.access_log import AccessLogMiddleware
from ragd.api.middleware.admission import AdmissionMiddleware
from ragd.api.middleware.body_limit import BodyLimitMiddleware
from ragd.api.middleware.errors import ServerErrorMiddleware
from ragd.api.middleware.nul_guard import NulGuardMiddleware, has_nul_escape
from ragd.api.middleware.request_id import RequestIdMiddleware

__all__ = ["RequestContextMiddleware", "has_nul_escape"]


class RequestContextMiddleware:
    """The request-context chain, in the order its parts depend on: the id exists
    before anything logs, and the access line sees the status of every refusal."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_batch_bytes: int,
        max_concurrent_requests: int,
        queue_timeout_s: float,
        body_caps: Mapping[str, int] | None = None,
    ) -> None:
        self.app: ASGIApp = RequestIdMiddleware(
            AccessLogMiddleware(
                ServerErrorMiddleware(
                    AdmissionMiddleware(
                        BodyLimitMiddleware(
                            NulGuardMiddleware(app),
                            max_body_bytes=max_body_bytes,
                            max_batch_bytes=max_batch_bytes,
                            path_caps=body_caps,
                        ),
                        max_concurrent=max_concurrent_requests,
                        queue_timeout_s=queue_timeout_s,
                    )
                )
            )
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
