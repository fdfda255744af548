"""What every ``ragd`` command shares: the consoles, settings, a migrated container.

Commands live in their own modules (:mod:`.serve`, :mod:`.ingest`, :mod:`.search`, ...)
and import these helpers from here; :mod:`.app` only assembles the Typer app, so no
command module needs the app and no import runs in a circle.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from ragd.config import Settings, load_settings
from ragd.container import Container
from ragd.errors import RagdError
from ragd.telemetry.logging import configure_logging

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

CollectionsOpt = Annotated[
    list[str] | None, typer.Option("--collection", "-c", help="Collection name or id (repeat).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as one error line; raise the returned Exit."""
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except RagdError as exc:
        raise fail(exc.detail) from None


@contextmanager
def _container(*, migrate: bool = True) -> Iterator[Container]:
    """A migrated container for one command; domain errors become a one-line message.
    ``migrate=False`` for commands that only read (an auditor's read-only database user
    can run them)."""
    settings = _settings()
    configure_logging("WARNING", "console")
    container = Container(settings)
    try:
        if migrate:
            container.database.migrate()
        yield container
    except RagdError as exc:
        raise fail(exc.detail, code=1) from None
    finally:
        container.close()


def snippet(text: str, limit: int = 300) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
