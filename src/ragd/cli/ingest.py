"""``ragd ingest``: files and folders into a collection, processed right here, or pushed
to a remote ragd (``--server``) through its batch endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ragd.cli.common import _container, console, err_console, fail
from ragd.cli.remote import Outcome, RemoteIngest
from ragd.container import Container
from ragd.domain import Document
from ragd.errors import NotFound, RagdError
from ragd.services.ingestion import DrainProgress


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection name or id.")],
    create: Annotated[bool, typer.Option(help="Create the collection if missing.")] = True,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="Push to the ragd at this URL (its batch endpoint) instead of ingesting here.",
            show_default=False,
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            envvar="RAGD_API_KEY",
            help="API key for --server (write scope); none for a keyless loopback server.",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=1000, help="With --server: most files per request.")
    ] = 100,
    batch_mb: Annotated[
        float, typer.Option(min=0.001, help="With --server: most MB of files per request.")
    ] = 50.0,
) -> None:
    """Ingest files and folders into a collection, processing them right here, or push them
    to a remote ragd with --server (batches, retried on 429/503 after Retry-After)."""
    files = _files(paths)
    if server is not None:
        _push(server, key, collection, create, files, batch_size, int(batch_mb * 1024 * 1024))
        return
    with _container() as container:
        target = _target_collection(container, collection, create)
        submitted, duplicates, failed = _submit(container, target, files)
        with _progress_bar() as progress:
            container.ingestion.drain(submitted, progress)
        _summary(container, submitted, duplicates, failed)


def _push(
    server: str,
    key: str | None,
    collection: str,
    create: bool,
    files: list[Path],
    batch_size: int,
    batch_bytes: int,
) -> None:
    """Send ``files`` to ``server``; the documents are ingested there, by its workers."""
    remote = RemoteIngest(
        server,
        key,
        batch_size=batch_size,
        batch_bytes=batch_bytes,
        notify=lambda message: err_console.print(f"[yellow]{message}[/yellow]"),
    )
    try:
        target = remote.collection(collection, create)
        with _progress_bar("uploading") as update:
            sent = 0

            def advance(count: int) -> None:
                nonlocal sent
                sent += count
                update(sent, len(files))

            outcome = remote.push(target, files, advance)
    except RagdError as exc:
        raise fail(exc.detail, code=1) from None
    finally:
        remote.close()
    _remote_summary(outcome)


def _remote_summary(outcome: Outcome) -> None:
    table = Table("queued", "duplicate", "rejected", "retries")
    table.add_row(
        str(len(outcome.created)),
        str(len(outcome.duplicates)),
        str(len(outcome.rejected)),
        str(outcome.retries),
    )
    console.print(table)
    for path, problem in outcome.rejected:
        console.print(f"[red]rejected[/red] {path}: {problem}", soft_wrap=True)
    if outcome.rejected:
        raise typer.Exit(1)


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
def _progress_bar(label: str = "ingesting") -> Iterator[DrainProgress]:
    """A progress bar on stderr: the local worker draining the queue, or the upload."""
    with Progress(
        TextColumn(label),
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
