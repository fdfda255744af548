"""Who a tool call runs as: the container to serve it from and the caller's principal.

The tools are written once; only how the caller is found differs by transport. Over
stdio the command line decided it when the process started; over HTTP the API's key
dependency authenticated each request and left the principal on the request's state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from ragd.auth import Allowed, Principal
from ragd.container import Container

# Where the HTTP route leaves the authenticated principal for the tools (request.state).
PRINCIPAL_STATE = "ragd_mcp_principal"


@dataclass(frozen=True)
class Caller:
    container: Container
    principal: Principal

    @property
    def allowed(self) -> Allowed:
        """The collections this caller may see (None: all), passed to every service."""
        return self.principal.collection_ids


CallerResolver = Callable[[Context[Any]], Caller]


def fixed_caller(container: Container, principal: Principal) -> CallerResolver:
    """One caller for the whole connection: stdio, where the process is the session."""
    caller = Caller(container, principal)

    def resolve(_ctx: Context[Any]) -> Caller:
        return caller

    return resolve


def http_caller(ctx: Context[Any]) -> Caller:
    """The caller of the HTTP request that carried this message.

    The route that hands requests to the MCP transport has already authenticated them;
    a message without that state did not come through it and is refused."""
    request = ctx.request_context.request
    state = getattr(request, "state", None)
    principal = getattr(state, PRINCIPAL_STATE, None) if state is not None else None
    if not isinstance(principal, Principal):
        raise ToolError("this request was not authenticated")
    container: Container = request.app.state.container  # type: ignore[union-attr]
    return Caller(container, principal)
