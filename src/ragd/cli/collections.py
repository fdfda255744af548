"""``ragd collections create|list|delete``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ragd.cli.common import JsonOpt, _container, console

collections_app = typer.Typer(help="Create, list and delete collections.", no_args_is_help=True)


@collections_app.command("create")
def collections_create(
    name: str,
    description: Annotated[str, typer.Option(help="What the collection holds.")] = "",
) -> None:
    """Create a collection."""
    with _container() as container:
        created = container.collections.create(name, description)
        console.print(f"created collection [bold]{created.name}[/bold] ({created.id})")


@collections_app.command("list")
def collections_list(as_json: JsonOpt = False) -> None:
    """List collections with their document and chunk counts."""
    with _container() as container:
        found = container.collections.list_all()
    if as_json:
        rows = [
            {
                "id": c.id,
                "name": c.name,
                "documents": c.document_count,
                "chunks": c.chunk_count,
                "embedding_model": c.embedding_model,
            }
            for c in found
        ]
        console.print_json(json.dumps(rows))
        return
    table = Table("name", "id", "documents", "chunks", "description")
    for c in found:
        table.add_row(c.name, c.id, str(c.document_count), str(c.chunk_count), c.description)
    console.print(table)


@collections_app.command("delete")
def collections_delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a collection with all its documents and chunks."""
    with _container() as container:
        collection = container.collections.get(name)
        if not yes and not typer.confirm(
            f"Delete {collection.name} and its {collection.document_count} documents?"
        ):
            raise typer.Exit(1)
        container.collections.delete(collection.id)
        console.print(f"deleted collection [bold]{collection.name}[/bold]")
