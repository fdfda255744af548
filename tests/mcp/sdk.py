"""The MCP SDK's own client against ragd, over either transport, from synchronous tests.

Each test writes its conversation as ``async def scenario(client)``; these helpers open
the client (a real ``ragd mcp`` subprocess, or HTTP to a real ``ragd serve``), run it in
a fresh event loop and close everything before returning.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

T = TypeVar("T")
Scenario = Callable[[Client], Awaitable[T]]


def over_stdio(env: Mapping[str, str], scenario: Scenario[T], *, args: tuple[str, ...] = ()) -> T:
    """``scenario`` against ``python -m ragd mcp *args`` started by the SDK's client."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "ragd", "mcp", *args],
        env={**os.environ, **env},
    )

    async def main() -> T:
        async with Client(params) as client:
            return await scenario(client)

    return anyio.run(main)


def over_http(url: str, scenario: Scenario[T], *, key: str | None = None, mode: str = "auto") -> T:
    """``scenario`` against ``url`` (``.../mcp``), sending ``key`` as a Bearer token.

    ``mode="legacy"`` speaks the 2025 initialize handshake that most MCP hosts still
    use; ``"auto"`` lets the client find the 2026 protocol."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def main() -> T:
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            transport = streamable_http_client(url, http_client=http)
            async with Client(transport, mode=mode) as client:
                return await scenario(client)

    return anyio.run(main)


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return dict(result.structured_content)
