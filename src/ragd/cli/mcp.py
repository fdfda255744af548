"""``ragd mcp``: ragd as an MCP server over stdio, for clients that start it themselves.

An MCP client (Claude Desktop, an IDE, an agent) launches this command and talks JSON-RPC
on its stdin/stdout, so nothing but the protocol may reach stdout: logs go to stderr.
Like the other commands it opens the data directory itself, no server needed. It sees
every collection, as the rest of the CLI does, unless given a key: then it is scoped
exactly as that key is over HTTP.
"""

from __future__ import annotations

from typing import Annotated

import anyio
import typer

from ragd.auth import ANONYMOUS
from ragd.cli.common import _container


def mcp_command(
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            envvar="RAGD_MCP_KEY",
            help="Serve as this API key: only its collections are visible.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve search, answers and documents to an MCP client over stdio."""
    from ragd.mcp.caller import fixed_caller
    from ragd.mcp.server import build_server

    with _container() as container:
        principal = container.keys.authenticate(key) if key else ANONYMOUS
        container.embedder.start_loading()  # the first search should not wait for the model
        server = build_server(fixed_caller(container, principal))
        anyio.run(server.run_stdio_async)
