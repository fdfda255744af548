"""``ragd eval`` end to end on a real data directory: a slice of msmarco, then a golden set
built from the same judgments against the kept collection, which must score the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ragd.cli.app import app
from ragd.config import load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from ragd.services.evaluation.beir import read_qrels

runner = CliRunner()
MAX_JUDGED = 25  # the cheapest judged queries: few judged documents to ingest
LIMIT_DOCS, LIMIT_QUERIES = 50, 4


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"RAGD_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}


def invoke(env: dict[str, str], *args: str) -> Any:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write_slice(source: Path, folder: Path) -> dict[str, dict[str, int]]:
    """The msmarco queries with at most MAX_JUDGED judgments, their judged documents and
    the first 300 others, with a header line on the qrels this time."""
    qrels = {q: d for q, d in read_qrels(source / "qrels" / "test.tsv").items() if len(d) <= 25}
    (folder / "qrels").mkdir(parents=True)
    queries = [line for line in _lines(source / "queries.jsonl") if _id(line) in qrels]
    judged = {doc for docs in qrels.values() for doc in docs}
    corpus = [
        line
        for n, line in enumerate(_lines(source / "corpus.jsonl"))
        if n < 300 or _id(line) in judged
    ]
    (folder / "queries.jsonl").write_text("".join(queries))
    (folder / "corpus.jsonl").write_text("".join(corpus))
    rows = [f"{q}\t{doc}\t{grade}\n" for q, docs in qrels.items() for doc, grade in docs.items()]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(rows))
    order = [_id(line) for line in queries][:LIMIT_QUERIES]
    return {q: qrels[q] for q in order}


def _lines(path: Path) -> list[str]:
    """Lines split on newlines only: msmarco texts hold U+2028 and friends, which
    ``str.splitlines`` would also split on."""
    with path.open(encoding="utf-8") as handle:
        return list(handle)


def _id(line: str) -> str:
    return str(json.loads(line)["_id"])


def test_eval_slice_then_golden_set_on_the_kept_collection(
    env: dict[str, str], tmp_path: Path, datasets_dir: Path, embedder: LocalEmbedder
) -> None:
    evaluated = write_slice(datasets_dir / "msmarco", tmp_path / "slice")
    report = invoke(
        env,
        *("eval", str(tmp_path / "slice"), "--mode", "all", "--json", "--keep"),
        *("--collection", "smoke", "--limit-docs", str(LIMIT_DOCS)),
        *("--limit-queries", str(LIMIT_QUERIES)),
    )
    first = [_id(line) for line in _lines(tmp_path / "slice" / "corpus.jsonl")][:LIMIT_DOCS]
    expected_docs = set(first) | {doc for docs in evaluated.values() for doc in docs}
    ingestion = report["ingestion"]
    assert ingestion["documents"] == ingestion["stored_documents"] == len(expected_docs)
    assert ingestion["failed_documents"] == 0
    assert ingestion["chunks"] >= ingestion["documents"]
    assert report["collection"] == {"id": report["collection"]["id"], "name": "smoke", "kept": True}
    modes = report["modes"]
    assert set(modes) == {"hybrid", "keyword", "vector"}
    for scores in modes.values():
        assert scores["queries"] == LIMIT_QUERIES
        for metric in ("ndcg@10", "recall@10", "mrr@10"):
            assert 0.0 <= scores[metric] <= 1.0
    assert modes["vector"]["ndcg@10"] > 0.3  # far above chance on judged msmarco queries
    best_leg = max(modes["keyword"]["ndcg@10"], modes["vector"]["ndcg@10"])
    assert modes["hybrid"]["ndcg@10"] >= best_leg - 0.1

    golden = tmp_path / "golden.json"
    golden.write_text(json.dumps({"queries": golden_set(env, evaluated, embedder, tmp_path)}))
    result = invoke(env, "eval", "--golden", str(golden), "--collection", "smoke", "--json")
    assert result["collection"]["name"] == "smoke"
    hybrid = result["modes"]["hybrid"]
    assert len(hybrid["per_query"]) == LIMIT_QUERIES
    for metric in ("ndcg@10", "recall@10", "mrr@10"):
        assert hybrid[metric] == pytest.approx(modes["hybrid"][metric], abs=1e-4)


def golden_set(
    env: dict[str, str],
    qrels: dict[str, dict[str, int]],
    embedder: LocalEmbedder,
    tmp_path: Path,
) -> list[dict[str, Any]]:
    """The same judgments, by ragd document id (found through the beir_id metadata)."""
    settings = load_settings(data_dir=env["RAGD_DATA_DIR"], inprocess_worker=False)
    container = Container(settings, embedder=embedder)
    try:
        by_beir: dict[str, str] = {}
        cursor = None
        while True:
            page = container.documents.list_page("smoke", limit=100, cursor=cursor)
            by_beir.update({d.metadata["beir_id"]: d.id for d in page.items})
            if not (cursor := page.next_cursor):
                break
    finally:
        container.close()
    texts = {
        _id(line): json.loads(line)["text"] for line in _lines(tmp_path / "slice" / "queries.jsonl")
    }
    return [
        {"query": texts[q], "relevant": {by_beir[doc]: grade for doc, grade in docs.items()}}
        for q, docs in qrels.items()
    ]


def test_eval_deletes_its_collection_unless_kept(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    docs = {"a": "Tower Bridge opened in 1894.", "b": "Espresso is strong coffee."}
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in docs.items())
    )
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "espresso"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("q\tb\t1\n")
    result = runner.invoke(app, ["eval", str(folder), "--mode", "keyword"], env=env)
    assert result.exit_code == 0, result.output
    assert "keyword" in result.stdout
    assert "1.0000" in result.stdout
    listed = runner.invoke(app, ["collections", "list", "--json"], env=env)
    assert json.loads(listed.stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval"], "either DATASET_DIR or --golden"),
        (["eval", "--golden", "g.json"], "needs --collection"),
        (["eval", "somewhere", "--mode", "fuzzy"], "--mode must be"),
        (["eval", "no-such-folder"], "does not exist"),
        (["eval", "--golden", "missing.json", "-c", "kb"], "missing.json"),
        (["eval", "{unjudged}"], "no judged query"),
    ],
)
def test_usage_errors_are_one_line_messages(
    env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    unjudged = tmp_path / "unjudged"
    (unjudged / "qrels").mkdir(parents=True)
    (unjudged / "corpus.jsonl").write_text('{"_id": "d", "text": "a document"}\n')
    (unjudged / "queries.jsonl").write_text('{"_id": "q", "text": "a query"}\n')
    (unjudged / "qrels" / "test.tsv").write_text("other-query\td\t1\n")
    args = [arg.format(unjudged=unjudged) for arg in args]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2
    assert message in result.output
