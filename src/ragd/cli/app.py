"""The ``ragd`` command line: the same services as the HTTP API, on the data directory.

No server is needed: commands open the store directly (SQLite handles several processes;
the server can keep running).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ragd import __version__
from ragd.cli.eval import eval_command
from ragd.cli.keys import keys_app, refuse_unprotected_bind
from ragd.config import Settings, load_settings
from ragd.container import Container
from ragd.domain import Document
from ragd.errors import NotFound, RagdError
from ragd.services.search import SearchMode
from ragd.telemetry.logging import configure_logging

app = typer.Typer(help="ragd: self-hosted retrieval-augmented generation.", no_args_is_help=True)
collections_app = typer.Typer(help="Create, list and delete collections.", no_args_is_help=True)
app.add_typer(collections_app, name="collections")
app.add_typer(keys_app, name="keys")
app.command("eval")(eval_command)

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

CollectionsOpt = Annotated[
    list[str] | None, typer.Option("--collection", "-c", help="Collection name or id (repeat).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except RagdError as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(2) from None


@contextmanager
def _container() -> Iterator[Container]:
    """A migrated container for one command; domain errors become a one-line message."""
    settings = _settings()
    configure_logging("WARNING", "console")
    container = Container(settings)
    try:
        container.store.migrate()
        yield container
    except RagdError as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from None
    finally:
        container.close()


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="Server processes; they share the database, Redis rate limits "
            "(RAGD_REDIS_URL) and metrics.",
            min=1,
            max=64,
        ),
    ] = 1,
) -> None:
    """Run the HTTP API (with an in-process ingestion worker unless disabled)."""
    import uvicorn

    from ragd.api.app import create_app
    from ragd.telemetry.metrics import multiprocess_dir
    from ragd.telemetry.tracing import require_installed

    settings = _settings()
    refuse_unprotected_bind(host)
    try:
        require_installed(settings)
    except RagdError as exc:
        err_console.print(f"[red]error:[/red] {escape(exc.detail)}")  # keeps '[observability]'
        raise typer.Exit(2) from None
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": settings.shutdown_grace_s,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    _migrate_once(settings)  # before the workers, so they do not race to create tables
    with multiprocess_dir():  # set before the workers import prometheus-client
        uvicorn.run("ragd.api.app:create_app_from_env", factory=True, workers=workers, **options)


def _migrate_once(settings: Settings) -> None:
    from ragd.store import open_store

    store = open_store(settings)
    try:
        store.migrate()
    finally:
        store.close()


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    with _container() as container:
        console.print(f"database schema is up to date ({container.store.dialect})")


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            help="Worker threads sharing one model: one parses while another embeds "
            "(default RAGD_WORKER_CONCURRENCY, 1).",
            min=1,
            max=64,
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve this process's Prometheus metrics (heartbeat, ingestion) on this "
            "port at /metrics; off by default.",
            min=1,
            max=65535,
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Address for --metrics-port (0.0.0.0 in a container).")
    ] = "127.0.0.1",
) -> None:
    """Run ingestion workers without the HTTP API until SIGINT/SIGTERM.

    On the signal they stop claiming, finish or hand back their documents (no attempt
    charged) and the command exits 0 within RAGD_SHUTDOWN_GRACE_S.
    """
    from ragd.ingest.worker import run_pool
    from ragd.telemetry.metrics import serve_process_metrics

    stop = threading.Event()
    with _container() as container:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        settings = container.settings
        configure_logging(settings.log_level, settings.log_format)
        count = concurrency or settings.worker_concurrency
        workers = [container.new_worker() for _ in range(count)]
        stop_metrics = serve_process_metrics(metrics_host, metrics_port) if metrics_port else None
        try:
            run_pool(workers, stop, grace_s=settings.shutdown_grace_s)
        finally:
            if stop_metrics is not None:
                stop_metrics()


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
            err_console.print(f"[red]error:[/red] {path} does not exist")
            raise typer.Exit(2)
    return found


@app.command()
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
        _process(container, submitted)
        _summary(container, submitted, duplicates, failed)


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


def _process(container: Container, document_ids: list[str]) -> None:
    """Run a worker here until every submitted document is ready or failed."""
    worker = container.new_worker()
    pending = set(document_ids)
    with Progress(
        TextColumn("ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task("ingest", total=len(document_ids))
        while pending:
            handled = worker.run_once()
            done = {
                d.id
                for d in container.store.get_documents(list(pending))
                if d.status in ("ready", "failed")
            }
            pending -= done
            progress.advance(task, len(done))
            if not handled and pending:
                threading.Event().wait(container.settings.worker_poll_interval_s)


def _summary(
    container: Container,
    submitted: list[str],
    duplicates: list[tuple[Path, Document]],
    rejected: list[tuple[str, str]],
) -> None:
    documents = container.store.get_documents(submitted)
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


def _parse_filters(raw: list[str] | None) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for item in raw or []:
        key, sep, value = item.partition("=")
        if not sep:
            err_console.print(f"[red]error:[/red] filter {item!r} must look like key=value")
            raise typer.Exit(2)
        try:
            filters[key] = json.loads(value)
        except json.JSONDecodeError:
            filters[key] = value
    return filters


@app.command()
def search(
    query: str,
    collection: CollectionsOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=100)] = 10,
    mode: Annotated[str, typer.Option(help="hybrid, keyword or vector.")] = "hybrid",
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", "-f", help="Metadata key=value (repeat).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search collections and print the best chunks."""
    filters = _parse_filters(filter_)
    with _container() as container:
        hits = container.search.search(
            query, collections=collection, top_k=top_k, mode=_mode(mode), filters=filters
        )
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {
                        "chunk_id": h.chunk_id,
                        "document_id": h.document_id,
                        "title": h.title,
                        "score": h.score,
                        "text": h.text,
                    }
                    for h in hits
                ]
            )
        )
        return
    table = Table("#", "score", "title", "text", show_lines=True)
    for i, h in enumerate(hits, start=1):
        table.add_row(str(i), f"{h.score:.4f}", h.title or "", _snippet(h.text))
    console.print(table)


def _mode(mode: str) -> SearchMode:
    if mode not in ("hybrid", "keyword", "vector"):
        err_console.print("[red]error:[/red] --mode must be hybrid, keyword or vector")
        raise typer.Exit(2)
    return mode  # type: ignore[return-value]


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@app.command()
def ask(
    question: str,
    collection: CollectionsOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=20)] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from the collections, with numbered citations."""
    with _container() as container:
        result = container.answers.ask(question, collections=collection, top_k=top_k)
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "answer": result.answer,
                    "citations": [
                        {
                            "n": c.n,
                            "document_id": c.document_id,
                            "chunk_id": c.chunk_id,
                            "title": c.title,
                            "score": c.score,
                            "text": c.text,
                        }
                        for c in result.citations
                    ],
                }
            )
        )
        return
    console.print(result.answer)
    for c in result.citations:
        console.print(f"  [{c.n}] {c.title or c.document_id} — {_snippet(c.text, 120)}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
