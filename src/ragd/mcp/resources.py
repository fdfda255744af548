"""``resources/list``: the documents this caller may read, a page at a time.

``MCPServer`` lists only resources registered up front, the same list for every caller,
while ragd's documents are one template (``ragd://documents/{id}``) whose instances
depend on who asks: a key limited to some collections must not learn that the others'
documents exist. So the method is answered by a handler of our own, registered on the
low-level server the way the SDK registers its optional handlers: it resolves the caller
as the tools do and pages through the ready documents (those that have text) of the
collections the caller may see, ``RESOURCES_PAGE`` at a time, by an opaque cursor.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio.to_thread
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    ListResourcesResult,
    PaginatedRequestParams,
    Resource,
)

from ragd.domain import Document
from ragd.errors import InvalidInput, RagdError

from .caller import CallerResolver
from .models import document_uri

RESOURCES_PAGE = 50
"""Documents per ``resources/list`` page: a host lists them to offer, not to read."""


def serve_resource_list(server: MCPServer, resolve: CallerResolver) -> None:
    """Answer ``resources/list`` on ``server`` with the caller's readable documents."""

    async def list_resources(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams
    ) -> ListResourcesResult:
        caller = resolve(Context(request_context=ctx, mcp_server=server))
        documents = caller.container.documents
        listing = partial(
            documents.list_visible,
            status="ready",
            limit=RESOURCES_PAGE,
            cursor=params.cursor,
            allowed=caller.allowed,
        )
        try:
            page = await anyio.to_thread.run_sync(listing)
        except InvalidInput as exc:  # a cursor we did not hand out
            raise MCPError(code=INVALID_PARAMS, message=exc.detail) from None
        except RagdError as exc:
            raise MCPError(code=INTERNAL_ERROR, message=exc.detail) from None
        return ListResourcesResult(
            resources=[_resource(document) for document in page.items],
            next_cursor=page.next_cursor,
            # Each caller sees its own list: never to be shared across keys.
            cache_scope="private",
            ttl_ms=0,
        )

    # MCPServer exposes no public way to replace a built-in handler; its low-level
    # server does (add_request_handler replaces), and is what the SDK's own
    # decorators register on.
    server._lowlevel_server.add_request_handler(
        "resources/list", PaginatedRequestParams, list_resources
    )


def _resource(document: Document) -> Resource:
    return Resource(
        uri=document_uri(document.id),
        name=document.title or document.source or document.id,
        title=document.title,
        description=f"{document.chunk_count} chunks from {document.source or document.source_type}",
        mime_type="text/markdown",
    )
