"""Read a retrieval test collection in the BEIR layout.

A folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (``query-id  corpus-id  score``, with or without a
header line). Only queries with at least one judgment are kept: a query nobody judged
can only score 0 and would drag every mean down for no reason. Judged documents missing
from the corpus are kept too: they are relevant documents no system can find.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragd.errors import InvalidInput

Qrels = dict[str, dict[str, int]]
"""query id → {document id → grade}"""


@dataclass(frozen=True)
class CorpusDoc:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class BeirDataset:
    name: str
    corpus: list[CorpusDoc]
    queries: dict[str, str]
    """Judged queries only, id → text, in file order."""
    qrels: Qrels

    @property
    def judged_pairs(self) -> int:
        return sum(len(docs) for docs in self.qrels.values())


def load_beir(folder: Path, *, split: str = "test") -> BeirDataset:
    """The dataset in ``folder``; a missing file or a malformed line is an InvalidInput
    naming the file and line, since the folder usually comes from a command line."""
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    queries = {
        str(row["_id"]): str(row["text"])
        for row in _read_jsonl(folder / "queries.jsonl")
        if str(row["_id"]) in qrels
    }
    corpus = [
        CorpusDoc(
            id=str(row["_id"]), title=str(row.get("title") or ""), text=str(row.get("text") or "")
        )
        for row in _read_jsonl(folder / "corpus.jsonl")
    ]
    return BeirDataset(
        name=folder.resolve().name,
        corpus=corpus,
        queries=queries,
        qrels={q: qrels[q] for q in queries},
    )


def read_qrels(path: Path) -> Qrels:
    """``query-id corpus-id score`` lines, tab- or space-separated; a first line whose
    score is not a number is a header (business-reports has one, msmarco does not)."""
    qrels: Qrels = {}
    for number, line in enumerate(_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise InvalidInput(f"{path}:{number}: expected 'query-id corpus-id score'")
        try:
            grade = int(float(parts[2]))
        except ValueError:
            if number == 1:
                continue
            raise InvalidInput(f"{path}:{number}: score {parts[2]!r} is not a number") from None
        qrels.setdefault(parts[0], {})[parts[1]] = grade
    return qrels


def limit_dataset(
    dataset: BeirDataset, *, max_docs: int | None = None, max_queries: int | None = None
) -> BeirDataset:
    """A smaller dataset whose metrics still mean something: the first ``max_queries``
    judged queries, and the first ``max_docs`` documents *plus every document judged for
    those queries* (otherwise most relevant documents would be cut away and every system
    would look bad)."""
    query_ids = list(dataset.queries)[:max_queries] if max_queries else list(dataset.queries)
    qrels = {q: dataset.qrels[q] for q in query_ids}
    corpus = dataset.corpus
    if max_docs is not None:
        judged = {doc for docs in qrels.values() for doc in docs}
        corpus = [d for i, d in enumerate(corpus) if i < max_docs or d.id in judged]
    return BeirDataset(
        name=dataset.name,
        corpus=corpus,
        queries={q: dataset.queries[q] for q in query_ids},
        qrels=qrels,
    )


def _lines(path: Path) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8") as handle:
            yield from handle
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise InvalidInput(f"{path}:{number}: not a JSON object") from None
        if not isinstance(row, dict) or "_id" not in row:
            raise InvalidInput(f"{path}:{number}: a JSON object with '_id' is expected")
        yield row
