"""The MCP transport: ragd's search, answers and documents as Model Context Protocol tools.

Like ``ragd.api`` and ``ragd.cli`` it only parses, authorises, calls the services on a
:class:`~ragd.container.Container` and shapes their output; :mod:`ragd.mcp.server` builds
the tool set once for both transports, :mod:`ragd.api.routes.mcp` mounts it on the HTTP API
(behind the API's own key dependency) and ``ragd mcp`` serves it over stdio.
"""
