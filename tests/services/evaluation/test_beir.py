"""The BEIR loader: header or not, judged queries only, limits that keep metrics honest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragd.errors import InvalidInput
from ragd.services.evaluation.beir import limit_dataset, load_beir, read_qrels


def write_dataset(folder: Path, qrels: str) -> Path:
    (folder / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "One", "text": "first"},
        {"_id": "d2", "text": "second"},
        {"_id": "d3", "title": "", "text": "third", "metadata": {}},
        {"_id": "d4", "title": "Four", "text": "fourth"},
    ]
    queries = [
        {"_id": "q1", "text": "judged query"},
        {"_id": "q2", "text": "never judged"},
        {"_id": "q3", "text": "also judged", "metadata": {}},
    ]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries) + "\n")
    (folder / "qrels" / "test.tsv").write_text(qrels)
    return folder


QRELS = "q1\td1\t2\nq1\td9\t1\nq3\td4\t1\nq3\td2\t0\nq-unknown\td1\t1\n"


@pytest.mark.parametrize("header", ["", "query-id\tcorpus-id\tscore\n"])
def test_loads_with_or_without_header(tmp_path: Path, header: str) -> None:
    dataset = load_beir(write_dataset(tmp_path / "set", header + QRELS))
    assert dataset.name == "set"
    assert [d.id for d in dataset.corpus] == ["d1", "d2", "d3", "d4"]
    assert dataset.corpus[0].title == "One"
    assert dataset.corpus[1].title == ""
    # Only judged queries, in file order; qrels of unknown queries are dropped, judged
    # documents missing from the corpus (d9) are kept: they are relevant and unfindable.
    assert dataset.queries == {"q1": "judged query", "q3": "also judged"}
    assert dataset.qrels == {"q1": {"d1": 2, "d9": 1}, "q3": {"d4": 1, "d2": 0}}
    assert dataset.judged_pairs == 4


def test_limits_keep_every_judged_document(tmp_path: Path) -> None:
    dataset = load_beir(write_dataset(tmp_path / "set", QRELS))
    first_query = limit_dataset(dataset, max_docs=1, max_queries=1)
    assert list(first_query.queries) == ["q1"]
    assert [d.id for d in first_query.corpus] == ["d1"]
    second = limit_dataset(dataset, max_docs=1)
    assert [d.id for d in second.corpus] == ["d1", "d2", "d4"]  # d2 is judged (grade 0)
    assert limit_dataset(dataset) == dataset


def test_space_separated_qrels_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "qrels.tsv"
    path.write_text("q1 d1 1\n\nq1 d2 2.0\n")
    assert read_qrels(path) == {"q1": {"d1": 1, "d2": 2}}
    path.write_text("q1\td1\t1\nq1\td2\tvery\n")
    with pytest.raises(InvalidInput, match=r"qrels\.tsv:2"):
        read_qrels(path)
    path.write_text("q1\td1\n")
    with pytest.raises(InvalidInput, match="expected"):
        read_qrels(path)


def test_missing_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_beir(tmp_path)
    folder = write_dataset(tmp_path / "set", QRELS)
    (folder / "corpus.jsonl").write_text('{"title": "no id"}\n')
    with pytest.raises(InvalidInput, match=r"corpus\.jsonl:1"):
        load_beir(folder)


def test_shared_datasets_match_their_readme(datasets_dir: Path) -> None:
    msmarco = load_beir(datasets_dir / "msmarco")
    assert (len(msmarco.corpus), len(msmarco.queries), msmarco.judged_pairs) == (5000, 43, 4102)
    reports = load_beir(datasets_dir / "business-reports")  # the one with a header line
    assert (len(reports.corpus), len(reports.queries), reports.judged_pairs) == (671, 11, 203)
