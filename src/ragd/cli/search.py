"""``ragd search`` and ``ragd ask``: the same services as ``/v1/search`` and ``/v1/ask``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from ragd.cli.common import CollectionsOpt, JsonOpt, _container, console, fail, snippet
from ragd.services.search import SEARCH_MODES, SearchMode


def _parse_filters(raw: list[str] | None) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for item in raw or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise fail(f"filter {item!r} must look like key=value")
        try:
            filters[key] = json.loads(value)
        except json.JSONDecodeError:
            filters[key] = value
    return filters


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
        table.add_row(str(i), f"{h.score:.4f}", h.title or "", snippet(h.text))
    console.print(table)


def _mode(mode: str) -> SearchMode:
    for known in SEARCH_MODES:
        if mode == known:
            return known
    raise fail("--mode must be hybrid, keyword or vector")


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
        console.print(f"  [{c.n}] {c.title or c.document_id} — {snippet(c.text, 120)}")
