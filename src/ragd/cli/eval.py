"""``ragd eval``: measure retrieval quality on a BEIR dataset or on a golden set.

The shared helpers (a migrated container, the consoles) come from :mod:`ragd.cli.common`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ragd.cli.common import _container, console, err_console, fail
from ragd.errors import InvalidInput, RagdError
from ragd.services.evaluation.beir import BeirDataset, limit_dataset, load_beir
from ragd.services.evaluation.golden import GoldenReport, parse_golden
from ragd.services.evaluation.runner import EvalReport, ProgressFn, run_beir
from ragd.services.evaluations import EvaluationService
from ragd.services.search import SEARCH_MODES, SearchMode


@contextmanager
def _reported_errors() -> Iterator[None]:
    """Bad input found before any container exists: one line and exit code 2."""
    try:
        yield
    except RagdError as exc:
        raise fail(exc.detail) from None


def _modes(mode: str) -> list[SearchMode]:
    if mode == "all":
        return list(SEARCH_MODES)
    for known in SEARCH_MODES:
        if mode == known:
            return [known]
    raise fail("--mode must be hybrid, keyword, vector or all")


def eval_command(
    dataset_dir: Annotated[
        Path | None,
        typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."),
    ] = None,
    golden: Annotated[
        Path | None,
        typer.Option("--golden", help="Golden-set JSON file to run against --collection."),
    ] = None,
    mode: Annotated[str, typer.Option(help="hybrid, keyword, vector or all.")] = "hybrid",
    top_k: Annotated[
        int, typer.Option("--top-k", "-k", min=1, max=100, help="The cutoff k of every metric.")
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection",
            "-c",
            help="Name of the new evaluation collection (with --golden: "
            "the existing collection to evaluate).",
        ),
    ] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the evaluation collection.")] = False,
    limit_docs: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Ingest the first N documents plus every document judged for the "
            "evaluated queries (so the judged documents can still be found).",
        ),
    ] = None,
    limit_queries: Annotated[
        int | None, typer.Option(min=1, help="Evaluate the first N judged queries.")
    ] = None,
) -> None:
    """Measure retrieval quality: nDCG, recall and MRR at k, per search mode.

    With DATASET_DIR (a BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv), the corpus
    is ingested into a new collection through the normal services, every judged query is run,
    and the collection is deleted afterwards unless --keep. Ingestion docs/s and chunks/s
    count from the first submission to the last document ready; embeddings already in the
    cache (an earlier run of the same data) make it look faster than a first ingestion.

    With --golden FILE.json and --collection NAME, a golden set ({"queries": [{"query",
    "relevant": {document_id: grade}}]}, the body of POST /v1/collections/{id}/evaluations, or
    just its list) runs against that existing collection.
    """
    modes = _modes(mode)
    if (dataset_dir is None) == (golden is None):
        raise fail("give either DATASET_DIR or --golden FILE (with --collection)")
    if golden is not None:
        if collection is None:
            raise fail("--golden needs --collection: the collection to evaluate")
        if keep or limit_docs or limit_queries:
            raise fail("--keep, --limit-docs and --limit-queries apply to DATASET_DIR only")
        _eval_golden(golden, collection, modes, top_k, as_json)
        return
    assert dataset_dir is not None
    with _reported_errors():
        dataset = limit_dataset(
            load_beir(dataset_dir), max_docs=limit_docs, max_queries=limit_queries
        )
    if not dataset.queries:
        raise fail(f"{dataset_dir} has no judged query: nothing to evaluate")
    _eval_dataset(dataset, modes, top_k, as_json, collection, keep)


def _eval_dataset(
    dataset: BeirDataset,
    modes: list[SearchMode],
    top_k: int,
    as_json: bool,
    collection: str | None,
    keep: bool,
) -> None:

    with _container() as container, _progress_bar() as progress:
        report = run_beir(
            container,
            dataset,
            modes=modes,
            k=top_k,
            collection_name=collection,
            keep=keep,
            progress=progress,
        )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    console.print(_dataset_table(report))
    note = _hybrid_note(report)
    if note:
        console.print(f"[yellow]{note}[/yellow]")
    if report.ingest.failed:
        console.print(f"[yellow]{len(report.ingest.failed)} documents failed to ingest[/yellow]")
    if report.kept:
        console.print(f"kept collection [bold]{report.collection_name}[/bold]")


@contextmanager
def _progress_bar() -> Iterator[ProgressFn]:
    """A rich progress bar on stderr (stdout stays clean for --json), one line a phase."""

    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done, total=total)

        yield update


# Differences this small are one query moving one passage by a rank: not worth a note.
HYBRID_TOLERANCE = 0.002


def _best_leg(report: EvalReport) -> tuple[str, float] | None:
    """The better of the keyword and vector legs by nDCG, when both were run."""
    legs = {m.mode: m.metrics.ndcg for m in report.modes if m.mode != "hybrid"}
    if len(legs) < 2:
        return None
    mode = max(legs, key=lambda name: legs[name])
    return mode, legs[mode]


def _hybrid_note(report: EvalReport) -> str | None:
    """Says so when the hybrid ranked below its better leg on this data: the user can
    then choose that leg (``mode``) or another fusion for their collection."""
    best = _best_leg(report)
    hybrid = next((m.metrics.ndcg for m in report.modes if m.mode == "hybrid"), None)
    if best is None or hybrid is None or hybrid >= best[1] - HYBRID_TOLERANCE:
        return None
    mode, ndcg = best
    return (
        f"hybrid nDCG@{report.top_k} {hybrid:.4f} is below the {mode} leg alone ({ndcg:.4f}) "
        f"on this data: search with mode={mode}, or try another RAGD_HYBRID_FUSION"
    )


def _dataset_table(report: EvalReport) -> Table:
    """One row a mode, the legs and the hybrid side by side, with each mode's nDCG
    against the better leg; ingestion is the same for every mode, so it is the caption."""
    k, ingest = report.top_k, report.ingest
    best = _best_leg(report)
    table = Table(
        "mode",
        f"nDCG@{k}",
        "vs best leg",
        f"recall@{k}",
        f"MRR@{k}",
        "queries",
        "p50 ms",
        "p95 ms",
        title=f"{report.dataset}: {ingest.documents} documents, {ingest.chunks} chunks",
        caption=f"ingestion {ingest.docs_per_s:.1f} docs/s, {ingest.chunks_per_s:.1f} chunks/s"
        f" ({ingest.seconds:.1f} s); search latency per query",
    )
    for m in report.modes:
        table.add_row(
            m.mode,
            f"{m.metrics.ndcg:.4f}",
            f"{m.metrics.ndcg - best[1]:+.4f}" if best else "",
            f"{m.metrics.recall:.4f}",
            f"{m.metrics.mrr:.4f}",
            str(m.metrics.queries),
            f"{m.p50_ms:.1f}",
            f"{m.p95_ms:.1f}",
        )
    return table


def _eval_golden(
    path: Path, collection: str, modes: list[SearchMode], top_k: int, as_json: bool
) -> None:

    with _reported_errors():
        queries = parse_golden(_read_json(path))
    with _container() as container:
        target = container.collections.get(collection)
        service = EvaluationService(container.search, container.collections)
        reports = [service.evaluate(target.id, queries, top_k=top_k, mode=m) for m in modes]
    if as_json:
        body = {
            "collection": {"id": target.id, "name": target.name},
            "top_k": top_k,
            "modes": {r.mode: _golden_json(r) for r in reports},
        }
        typer.echo(json.dumps(body, indent=2))
        return
    table = Table("mode", f"nDCG@{top_k}", f"recall@{top_k}", f"MRR@{top_k}", "queries")
    for r in reports:
        m = r.metrics
        table.add_row(r.mode, f"{m.ndcg:.4f}", f"{m.recall:.4f}", f"{m.mrr:.4f}", str(m.queries))
    table.title = f"golden set {path.name} on {target.name}"
    console.print(table)


def _golden_json(report: GoldenReport) -> dict[str, Any]:
    body = report.as_dict()
    return {**body["metrics"], "per_query": body["per_query"]}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror or 'cannot be read'}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput(f"{path} is not a UTF-8 JSON file") from None
