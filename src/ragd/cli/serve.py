"""``ragd version``, ``serve``, ``migrate``, ``reindex`` and ``worker``: running ragd itself."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer
import uvicorn
from rich.markup import escape

from ragd import __version__
from ragd.api.app import create_app
from ragd.cli.common import _container, _settings, console, fail
from ragd.cli.keys import refuse_unprotected_bind
from ragd.errors import RagdError
from ragd.services.database import migrate_database
from ragd.telemetry.logging import configure_logging
from ragd.telemetry.metrics import multiprocess_dir, serve_process_metrics
from ragd.telemetry.tracing import require_installed


def version() -> None:
    """Print the version."""
    console.print(__version__)


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
    settings = _settings()
    refuse_unprotected_bind(host)
    try:
        require_installed(settings)
    except RagdError as exc:
        raise fail(escape(exc.detail)) from None  # escape keeps '[observability]'
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
    migrate_database(settings)  # before the workers, so they do not race to create tables
    with multiprocess_dir():  # set before the workers import prometheus-client
        uvicorn.run("ragd.api.app:create_app_from_env", factory=True, workers=workers, **options)


def migrate() -> None:
    """Create or upgrade the database schema."""
    with _container() as container:
        console.print(f"database schema is up to date ({container.database.dialect})")


def reindex(
    keyword: Annotated[
        bool,
        typer.Option(
            "--keyword",
            help="Rebuild this host's keyword index (RAGD_KEYWORD_INDEX=tantivy) from the "
            "database.",
        ),
    ] = False,
) -> None:
    """Rebuild what is derived from the database (the keyword index)."""
    if not keyword:
        raise fail("nothing to rebuild: give --keyword")
    with _container() as container:
        count = container.database.rebuild_keyword_index()
        console.print(f"keyword index rebuilt: {count} chunks")


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
    """Run ingestion workers and a background-job runner without the HTTP API until
    SIGINT/SIGTERM.

    On the signal they stop claiming, finish or hand back their documents and jobs (no
    attempt charged) and the command exits 0 within RAGD_SHUTDOWN_GRACE_S.
    """
    stop = threading.Event()
    with _container() as container:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        settings = container.settings
        container.audit.signer()  # made on first start; checkpoints on the way out need it
        configure_logging(settings.log_level, settings.log_format)
        count = concurrency or settings.worker_concurrency
        stop_metrics = serve_process_metrics(metrics_host, metrics_port) if metrics_port else None
        container.start_job_runner()
        try:
            container.ingestion.run_workers(count, stop, grace_s=settings.shutdown_grace_s)
        finally:
            container.stop_job_runner()
            container.close_audit()
            if stop_metrics is not None:
                stop_metrics()
