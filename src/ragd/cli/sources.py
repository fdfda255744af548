"""``ragd sources add|list|sync|remove|rotate-secret``: synced sources from a terminal.

``sync`` runs the sync in this process, now, on the same service the server's jobs
use; the server need not be running.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from ragd.cli.common import JsonOpt, _container, console, fail
from ragd.domain import Source

sources_app = typer.Typer(
    help="Keep collections in sync with URL lists, sitemaps, spreadsheets and folders.",
    no_args_is_help=True,
)


@sources_app.command("add")
def sources_add(
    collection: Annotated[str, typer.Argument(help="Collection name or id.")],
    type_: Annotated[
        str, typer.Option("--type", "-t", help="urls, sitemap, spreadsheet or folder.")
    ],
    location: Annotated[
        list[str],
        typer.Option("--location", "-l", help="URL or folder path (repeat for urls)."),
    ],
    interval: Annotated[
        int | None, typer.Option("--interval", help="Sync every this many seconds.")
    ] = None,
    mapping: Annotated[
        str | None,
        typer.Option("--mapping", help='JSON: {"key_column", "text_columns", ...} or patterns.'),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a source; prints its webhook secret once."""
    try:
        parsed_mapping = json.loads(mapping) if mapping else None
    except json.JSONDecodeError:
        raise fail("--mapping must be JSON") from None
    with _container() as container:
        created = container.sources.create(
            collection,
            type=type_,
            location=location if type_ == "urls" else location[0],
            schedule={"interval_s": interval} if interval is not None else None,
            mapping=parsed_mapping,
        )
    if as_json:
        console.print_json(json.dumps({**_source_json(created.source), "secret": created.secret}))
        return
    console.print(f"added {created.source.type} source [bold]{created.source.id}[/bold]")
    console.print("webhook secret (shown only now):")
    print(created.secret)  # plain print: no wrapping or markup inside the secret


@sources_app.command("list")
def sources_list(
    collection: Annotated[str, typer.Argument(help="Collection name or id.")],
    as_json: JsonOpt = False,
) -> None:
    """List a collection's sources and how their last sync went."""
    with _container() as container:
        found = container.sources.list_all(collection)
    if as_json:
        console.print_json(json.dumps([_source_json(s) for s in found]))
        return
    table = Table()
    table.add_column("id", no_wrap=True, min_width=28)
    for heading in ("type", "location", "last sync", "status", "+/~/-/!", "next"):
        table.add_column(heading)
    for s in found:
        c = s.last_counts
        table.add_row(
            s.id,
            s.type,
            _location(s),
            _when(s.last_sync_at),
            s.last_status,
            f"{c.added}/{c.updated}/{c.deleted}/{c.failed}",
            _when(s.next_sync_at),
        )
    console.print(table)


@sources_app.command("sync")
def sources_sync(
    source_id: Annotated[str, typer.Argument(help="The source's id.")],
    as_json: JsonOpt = False,
) -> None:
    """Sync a source now, in this process."""
    with _container() as container:
        result = container.sources.sync_now(source_id)
    if as_json:
        console.print_json(json.dumps(result))
        return
    console.print(
        f"{result['status']}: {result.get('added', 0)} added, {result.get('updated', 0)} "
        f"updated, {result.get('deleted', 0)} deleted, {result.get('failed', 0)} failed, "
        f"{result.get('unchanged', 0)} unchanged"
    )
    if result.get("error"):
        console.print(result["error"], markup=False)
    if result["status"] == "failed":
        raise typer.Exit(1)


@sources_app.command("remove")
def sources_remove(
    source_id: Annotated[str, typer.Argument(help="The source's id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a source and the documents it synced."""
    with _container() as container:
        source = container.sources.get(source_id)
        if not yes and not typer.confirm(f"Remove {source.id} and the documents it synced?"):
            raise typer.Exit(1)
        removed = container.sources.delete(source_id)
    console.print(f"removed source {source_id} and {removed} documents")


@sources_app.command("rotate-secret")
def sources_rotate(source_id: Annotated[str, typer.Argument(help="The source's id.")]) -> None:
    """Replace a source's webhook secret; prints the new one once."""
    with _container() as container:
        rotated = container.sources.rotate_secret(source_id)
    console.print("new webhook secret (shown only now; the old one no longer works):")
    print(rotated.secret)


def _source_json(source: Source) -> dict[str, Any]:
    return {
        "id": source.id,
        "collection_id": source.collection_id,
        "type": source.type,
        "location": source.location,
        "mapping": source.mapping,
        "schedule": source.schedule,
        "last_sync_at": _when(source.last_sync_at) or None,
        "last_status": source.last_status,
        "last_items": source.last_counts.__dict__,
        "last_error": source.last_error,
        "next_sync_at": _when(source.next_sync_at) or None,
    }


def _location(source: Source) -> str:
    if isinstance(source.location, list):
        more = len(source.location) - 1
        return source.location[0] + (f" (+{more})" if more else "")
    return source.location


def _when(moment: Any) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else ""
