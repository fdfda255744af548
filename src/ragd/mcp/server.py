"""The MCP server: ragd's read side as tools and document resources.

Each tool is a thin adapter: find the caller, call one service with the caller's
collection limit (``allowed``), shape the result. A ragd error becomes an MCP tool error
whose text is the error's ``detail`` (the same sentence the HTTP API puts in a problem),
never a stack trace; anything unexpected is logged on the server and the client sees
only that the tool failed. Tools are synchronous: the SDK runs them on worker threads,
so a slow search never stalls the event loop that serves other callers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ragd import __version__
from ragd.domain import Filters
from ragd.errors import NotFound, RagdError

from .caller import Caller, CallerResolver
from .models import (
    DOCUMENT_URI,
    AskOutput,
    ChunkOut,
    CollectionsOutput,
    DocumentOutput,
    SearchOutput,
    ask_output,
    ask_text,
    collections_output,
    collections_text,
    document_output,
    document_text_block,
    search_output,
    search_text,
)
from .resources import serve_resource_list
from .text import document_text, excerpt

INSTRUCTIONS = (
    "ragd answers from the user's own documents. Use `ask` for a cited answer, `search` "
    "for the matching passages, `list_collections` to see what can be searched and "
    "`get_document` (or the ragd://documents/{id} resource) to read a document. Cite "
    "passages by the [n] numbers the tools give."
)
EXCERPT_DEFAULT = 4000
EXCERPT_MAX = 50_000
RESOURCE_MAX_CHARS = 1_000_000

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
_T = TypeVar("_T")

CollectionsArg = Annotated[
    list[str] | None,
    Field(description="Collection names or ids to search; every visible collection if omitted."),
]
FiltersArg = Annotated[
    Filters | None,
    Field(description="Metadata key -> required value (string, number, boolean or null)."),
]


def build_server(resolve: CallerResolver) -> MCPServer:
    """The tools and resources, serving whoever ``resolve`` says the caller is."""
    server: MCPServer = MCPServer(
        "ragd", title="ragd", version=__version__, instructions=INSTRUCTIONS
    )

    @server.tool(title="Search documents", annotations=_READ_ONLY)
    def search(
        ctx: Context,
        query: Annotated[str, Field(description="What to look for, in plain words.")],
        collections: CollectionsArg = None,
        top_k: Annotated[int, Field(ge=1, description="How many passages (default 10).")] = 10,
        mode: Annotated[
            Literal["hybrid", "keyword", "vector"],
            Field(description="hybrid (default), keyword (exact words) or vector (meaning)."),
        ] = "hybrid",
        filters: FiltersArg = None,
    ) -> Annotated[CallToolResult, SearchOutput]:
        """Find the passages of the user's documents that best match a query."""
        caller = resolve(ctx)
        hits = _run(
            lambda: caller.container.search.search(
                query,
                collections=collections,
                top_k=top_k,
                mode=mode,
                filters=filters,
                allowed=caller.allowed,
            )
        )
        output = search_output(hits)
        return _result(search_text(output), output)

    @server.tool(title="Answer with citations", annotations=_READ_ONLY)
    def ask(
        ctx: Context,
        question: Annotated[str, Field(description="The question to answer.")],
        collections: CollectionsArg = None,
        top_k: Annotated[
            int, Field(ge=1, description="Passages to ground the answer in (default 5).")
        ] = 5,
        filters: FiltersArg = None,
    ) -> Annotated[CallToolResult, AskOutput]:
        """Answer a question from the user's documents; the answer cites passages as [n],
        and each citation names its document, chunk, title and a snippet."""
        caller = resolve(ctx)
        result = _run(
            lambda: caller.container.answers.ask(
                question,
                collections=collections,
                top_k=top_k,
                filters=filters,
                allowed=caller.allowed,
            )
        )
        output = ask_output(result)
        return _result(ask_text(output), output)

    @server.tool(title="List collections", annotations=_READ_ONLY)
    def list_collections(ctx: Context) -> Annotated[CallToolResult, CollectionsOutput]:
        """The collections this caller can search, with their document and chunk counts."""
        caller = resolve(ctx)
        found = _run(lambda: caller.container.collections.list_all(allowed=caller.allowed))
        output = collections_output(found)
        return _result(collections_text(output), output)

    @server.tool(title="Read a document", annotations=_READ_ONLY)
    def get_document(
        ctx: Context,
        id: Annotated[str, Field(description="A document id, as search and ask give them.")],
        max_chars: Annotated[
            int,
            Field(ge=1, le=EXCERPT_MAX, description="How much of its text to return."),
        ] = EXCERPT_DEFAULT,
        include_chunks: Annotated[
            bool, Field(description="Also list its chunks (as far as max_chars reaches).")
        ] = False,
    ) -> Annotated[CallToolResult, DocumentOutput]:
        """A document's status and metadata with the start of its text."""
        caller = resolve(ctx)
        output = _run(lambda: _document(caller, id, max_chars, include_chunks))
        return _result(document_text_block(output), output)

    @server.resource(
        DOCUMENT_URI,
        name="document",
        title="Document text",
        description="The whole text of a ragd document (ready documents have text).",
        mime_type="text/markdown",
    )
    def document_resource(document_id: str, ctx: Context) -> str:
        caller = resolve(ctx)
        try:
            chunks = caller.container.documents.chunks(document_id, allowed=caller.allowed)
            if not chunks:
                # Tell "not there" from "not ready yet" (or failed): both have no chunks.
                caller.container.documents.get(document_id, allowed=caller.allowed)
        except NotFound as exc:
            raise ResourceNotFoundError(exc.detail) from None
        except RagdError as exc:
            raise ResourceError(exc.detail) from None
        return excerpt(document_text(chunks), RESOURCE_MAX_CHARS).text

    serve_resource_list(server, resolve)
    return server


def _document(
    caller: Caller, document_id: str, max_chars: int, with_chunks: bool
) -> DocumentOutput:
    documents = caller.container.documents
    document = documents.get(document_id, allowed=caller.allowed)
    chunks = documents.chunks(document.id, allowed=caller.allowed)
    text = excerpt(document_text(chunks), max_chars)
    listed: list[ChunkOut] | None = None
    if with_chunks:
        listed, budget = [], max_chars
        for chunk in chunks:
            if len(chunk.text) > budget:
                break
            budget -= len(chunk.text)
            listed.append(
                ChunkOut(
                    id=chunk.id,
                    ordinal=chunk.ordinal,
                    heading_path=list(chunk.heading_path),
                    text=chunk.text,
                )
            )
    return document_output(document, text.text, text.truncated, listed)


def _run(call: Callable[[], _T]) -> _T:
    """Call a service; its error, which is written for users, is the tool error."""
    try:
        return call()
    except RagdError as exc:
        raise ToolError(exc.detail) from None


def _result(text: str, output: BaseModel) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=output.model_dump(mode="json"),
    )
