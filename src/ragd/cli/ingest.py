"""``ragd ingest``: files and folders into a collection, processed right here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ragd.cli.common import _container, console, err_console, fail
from ragd.container import Container
from ragd.domain import Document
from ragd.errors import NotFound, RagdError
from ragd.services.ingestion import DrainProgress


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection name or id.")],
    create: Annotated[bool, typer.Option(help="Create the collection if missing.")] = True,
) -> None:
    """Ingest files and folders into a collection, processing them right here."""
    files = _files(paths)
    with _container() as container:
        target = _target_collection(container, collection, create)
        submitted, duplicates, failed = _submit(container, target, files)
        with _progress_bar() as progress:
            container.ingestion.drain(submitted, progress)
        _summary(container, submitted, duplicates, failed)


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            found.append(path)
        else:
            raise fail(f"{path} does not exist")
    return found


def _target_collection(container: Container, ref: str, create: bool) -> str:
    try:
        return container.collections.get(ref).id
    except NotFound:
        if not create:
            raise
        return container.collections.create(ref).id


def _submit(
    container: Container, collection_id: str, files: list[Path]
) -> tuple[list[str], list[tuple[Path, Document]], list[tuple[str, str]]]:
    submitted: list[str] = []
    duplicates: list[tuple[Path, Document]] = []
    failed: list[tuple[str, str]] = []
    for path in files:
        try:
            document, created = container.documents.add_file(
                collection_id, path.read_bytes(), filename=path.name
            )
        except RagdError as exc:
            failed.append((str(path), exc.detail))
            continue
        if created:
            submitted.append(document.id)
        else:
            duplicates.append((path, document))
    return submitted, duplicates, failed


@contextmanager
def _progress_bar() -> Iterator[DrainProgress]:
    """A progress bar on stderr while the local worker drains the queue."""
    with Progress(
        TextColumn("ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task("ingest", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def _summary(
    container: Container,
    submitted: list[str],
    duplicates: list[tuple[Path, Document]],
    rejected: list[tuple[str, str]],
) -> None:
    documents = list(container.ingestion.documents(submitted))
    ready = [d for d in documents if d.status == "ready"]
    failed = [(d.source or d.id, d.error or "") for d in documents if d.status == "failed"]
    failed += rejected
    table = Table("ready", "failed", "duplicate", "chunks")
    table.add_row(
        str(len(ready)),
        str(len(failed)),
        str(len(duplicates)),
        str(sum(d.chunk_count for d in ready)),
    )
    console.print(table)
    for source, error in failed:
        console.print(f"[red]failed[/red] {source}: {error}")
    if failed:
        raise typer.Exit(1)
