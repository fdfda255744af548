"""The ``ragd`` command line: the same services as the HTTP API, on the data directory.

No server is needed: commands open the database directly (SQLite handles several
processes; the server can keep running). This module only assembles the Typer app from
the command modules; ``ragd.cli:main`` is the console-script entry point.
"""

from __future__ import annotations

import sys

import typer

from ragd.cli.audit import audit_app
from ragd.cli.collections import collections_app
from ragd.cli.eval import eval_command
from ragd.cli.ingest import ingest
from ragd.cli.jobs import jobs_app
from ragd.cli.keys import keys_app
from ragd.cli.mcp import mcp_command
from ragd.cli.search import ask, search
from ragd.cli.serve import migrate, reindex, serve, version, worker
from ragd.cli.sources import sources_app
from ragd.cli.transfer import export, import_archive

app = typer.Typer(help="ragd: self-hosted retrieval-augmented generation.", no_args_is_help=True)
app.add_typer(collections_app, name="collections")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(jobs_app, name="jobs")
app.add_typer(sources_app, name="sources")
app.command("eval")(eval_command)
app.command("mcp")(mcp_command)
app.command("export")(export)
app.command("import")(import_archive)
for command in (version, serve, migrate, reindex, worker, ingest, search, ask):
    app.command()(command)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
