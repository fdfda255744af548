"""``ragd eval``'s table: the legs and the hybrid side by side, and a note when the
hybrid ranked below its better leg."""

from __future__ import annotations

from rich.console import Console

from ragd.cli.eval import _dataset_table, _hybrid_note
from ragd.services.evaluation.metrics import Metrics
from ragd.services.evaluation.runner import EvalReport, IngestReport, ModeReport
from ragd.services.search import SearchMode


def report(**ndcg: float) -> EvalReport:
    modes = [
        ModeReport(
            mode=mode,  # type: ignore[arg-type]
            metrics=Metrics(k=10, ndcg=value, recall=0.5, mrr=0.5, queries=3),
            latencies_ms=[1.0, 2.0],
            per_query={},
        )
        for mode, value in ndcg.items()
    ]
    ingest = IngestReport(
        collection_id="col", documents=3, chunks=3, seconds=1.0, corpus_ids={}, failed={}
    )
    return EvalReport("data", "eval-data", 10, ingest, modes, kept=False)


def rendered(table_report: EvalReport) -> str:
    console = Console(width=200, record=True)
    console.print(_dataset_table(table_report))
    return console.export_text()


def test_a_hybrid_below_its_better_leg_is_pointed_out() -> None:
    note = _hybrid_note(report(hybrid=0.516, keyword=0.391, vector=0.525))
    assert note is not None
    assert "0.5160" in note and "vector" in note and "0.5250" in note


def test_no_note_when_the_hybrid_keeps_up() -> None:
    assert _hybrid_note(report(hybrid=0.816, keyword=0.733, vector=0.799)) is None
    # Within the tolerance: one passage moving one rank, not a finding.
    assert _hybrid_note(report(hybrid=0.7985, keyword=0.733, vector=0.7999)) is None
    # One mode alone has nothing to compare with.
    assert _hybrid_note(report(hybrid=0.5)) is None


def test_the_table_shows_each_mode_against_the_better_leg() -> None:
    text = rendered(report(hybrid=0.816, keyword=0.733, vector=0.799))
    assert "vs best leg" in text
    assert "+0.0170" in text and "-0.0660" in text and "+0.0000" in text


def test_the_column_is_blank_without_both_legs() -> None:
    modes: list[SearchMode] = ["hybrid"]
    text = rendered(report(**{m: 0.5 for m in modes}))
    assert "+0." not in text and "-0." not in text
