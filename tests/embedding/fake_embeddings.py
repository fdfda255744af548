"""A real HTTP server speaking the OpenAI ``/v1/embeddings`` protocol.

By default vectors are hashed bags of words, so texts sharing words are close: enough for
retrieval to work end to end through ragd without any model. Give it another ``vectors``
function to serve other vectors, e.g. :class:`OracleVectors`, a stand-in for a strong
hosted embedder built from a test collection's judgments.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from ragd.ingest.textnorm import normalize_text

DIM = 64

Matrix = npt.NDArray[np.float32]
VectorsFn = Callable[[list[str]], Sequence[Sequence[float]] | Matrix]
"""Texts in, one vector a text out: what the server answers with."""


def bag_of_words(text: str) -> list[float]:
    vector = [0.0] * DIM
    for word in re.findall(r"\w+", text.lower()):
        slot = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big") % DIM
        vector[slot] += 1.0
    return vector


def bags_of_words(texts: list[str]) -> list[list[float]]:
    return [bag_of_words(text) for text in texts]


class FakeEmbeddings:
    def __init__(self, vectors: VectorsFn = bags_of_words) -> None:
        self.vectors = vectors
        self.requests: list[dict[str, Any]] = []
        self.fail_status: int | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake: FakeEmbeddings = self.server.fake  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        fake.requests.append({"body": body, "authorization": self.headers.get("Authorization")})
        if fake.fail_status is not None:
            self._send(fake.fail_status, {"error": {"message": "boom", "type": "server_error"}})
            return
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        try:
            vectors = np.asarray(fake.vectors(list(inputs)), dtype=np.float64).tolist()
        except Exception as exc:  # a bug in a vectors function: say so, do not hang
            self._send(500, {"error": {"message": repr(exc), "type": "server_error"}})
            return
        data = [
            {"object": "embedding", "index": i, "embedding": vector}
            for i, vector in enumerate(vectors)
        ]
        self._send(
            200,
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            },
        )

    def _send(self, status: int, payload: object) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


# --- A stand-in for a strong embedder -------------------------------------------------

BaseEmbed = Callable[[Sequence[str]], Matrix]
"""A real embedding model (e.g. ``LocalEmbedder.embed_documents``): unit rows."""

SHINGLE = 5
"""Words per shingle in the index that finds the passage a chunk came from."""


def canonical(text: str) -> str:
    """The lookup key of a text: ragd's own normalization, whitespace runs collapsed (a
    passage sent as ``title + "\\n" + text`` and a chunk re-joined by ragd compare equal)."""
    return " ".join(normalize_text(text).split())


def _words(key: str) -> list[str]:
    return re.findall(r"\w+", key.lower())


def _shingles(words: list[str]) -> list[tuple[str, ...]]:
    if len(words) < SHINGLE:
        return [tuple(words)] if words else []
    return [tuple(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)]


def _unit_rows(rng: np.random.Generator, rows: int, dim: int) -> npt.NDArray[np.float64]:
    matrix = rng.standard_normal((rows, dim))
    norms: npt.NDArray[np.float64] = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def _normalized(matrix: npt.NDArray[np.float64]) -> Matrix:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)


class OracleVectors:
    """Vectors as good as a strong embedder's, built honestly from a collection's judgments.

    Not a model of any vendor's embedder: a stand-in whose quality is set on purpose, so
    that what ragd does with a strong embedder can be measured without one. Every vector
    is ``normalize([base(text), b·topic(text)] + c·noise)``:

    * ``base``: a real model's vector (MiniLM in the benchmark), so the semantic
      neighbourhood of every text is real;
    * ``topic``: ``topic_dim`` extra dimensions. Every judged query gets a random unit
      topic; a passage judged for queries gets their topics weighted by grade/max grade,
      topped up to unit length with a random topic of its own; any other passage has only
      its own random topic. So the topic part lifts judged passages toward their queries,
      graded passages more, and is near-orthogonal everywhere else;
    * ``noise``: a random unit vector per text, scaled by ``c``.

    ``b`` (``topic_weight``) sets how strong the embedder is; the benchmark tunes it so
    that exact dense search over the raw corpus scores the wanted nDCG.

    Texts are looked up by :func:`canonical` form: a known query, a known passage
    (``title + "\\n" + text``), else a chunk of a passage (the passage sharing most word
    5-grams with it, at least half of them) which gets ``base(chunk)`` with the passage's
    topic and noise; any other text gets its base vector alone.
    """

    def __init__(
        self,
        passages: Mapping[str, str],
        queries: Mapping[str, str],
        qrels: Mapping[str, Mapping[str, int]],
        base: BaseEmbed,
        *,
        topic_weight: float = 1.0,
        noise: float = 0.0,
        topic_dim: int = 256,
        seed: int = 0,
        batch_size: int = 256,
    ) -> None:
        self.base = base
        self.batch_size = batch_size
        self.served: Counter[str] = Counter()
        """How texts were recognized: query, passage, chunk or unknown."""
        self._lock = threading.Lock()
        # Identical passage texts are one text to an embedder: one group, one vector.
        self._passage_of: dict[str, int] = {}
        group_texts: list[str] = []
        group_of_id: dict[str, int] = {}
        for doc_id, text in passages.items():
            key = canonical(text)
            if key not in self._passage_of:
                self._passage_of[key] = len(group_texts)
                group_texts.append(text)
            group_of_id[doc_id] = self._passage_of[key]
        self._query_of: dict[str, int] = {}
        query_texts: list[str] = []
        query_rows: dict[str, int] = {}
        for query_id, text in queries.items():
            key = canonical(text)
            if key not in self._query_of:
                self._query_of[key] = len(query_texts)
                query_texts.append(text)
            query_rows[query_id] = self._query_of[key]

        self._shingle_index: dict[tuple[str, ...], set[int]] = {}
        for key, group in self._passage_of.items():
            for shingle in _shingles(_words(key)):
                self._shingle_index.setdefault(shingle, set()).add(group)

        rng = np.random.default_rng(seed)
        self._base_passages = self._embed_base(group_texts)
        self._base_queries = self._embed_base(query_texts)
        dim = self._base_passages.shape[1] if group_texts else self._base_queries.shape[1]
        self.base_dimension = dim
        self.dimension = dim + topic_dim
        query_topics = _unit_rows(rng, len(query_texts), topic_dim)
        own_topics = _unit_rows(rng, len(group_texts), topic_dim)
        self._passage_noise = _unit_rows(rng, len(group_texts), self.dimension)
        self._query_noise = _unit_rows(rng, len(query_texts), self.dimension)

        max_grade = max((g for docs in qrels.values() for g in docs.values()), default=1)
        judged = np.zeros((len(group_texts), topic_dim))
        strongest = np.zeros(len(group_texts))
        for query_id, docs in qrels.items():
            if query_id not in query_rows:
                continue
            for doc_id, grade in docs.items():
                row = group_of_id.get(doc_id)
                if row is None or grade <= 0:
                    continue
                weight = grade / max_grade
                judged[row] += weight * query_topics[query_rows[query_id]]
                strongest[row] = max(strongest[row], weight)
        own = np.sqrt(np.clip(1.0 - strongest**2, 0.0, 1.0))[:, None] * own_topics
        self._passage_topics = _normalized(judged + own).astype(np.float64)
        self._query_topics = query_topics
        self.set_strength(topic_weight, noise)

    def set_strength(self, topic_weight: float, noise: float) -> None:
        """Rebuild the served vectors with topic weight ``b`` and noise ``c``."""
        self.topic_weight, self.noise = topic_weight, noise
        self._passages = self._compose(
            self._base_passages, self._passage_topics, self._passage_noise
        )
        self._queries = self._compose(self._base_queries, self._query_topics, self._query_noise)

    def _compose(
        self,
        base: npt.NDArray[np.float64],
        topics: npt.NDArray[np.float64],
        noise: npt.NDArray[np.float64],
    ) -> Matrix:
        stacked = np.hstack([base, self.topic_weight * topics]) + self.noise * noise
        return _normalized(stacked)

    def _embed_base(self, texts: list[str]) -> npt.NDArray[np.float64]:
        parts = [
            np.asarray(self.base(texts[i : i + self.batch_size]), dtype=np.float64)
            for i in range(0, len(texts), self.batch_size)
        ]
        if not parts:
            probe = np.asarray(self.base(["dimension probe"]), dtype=np.float64)
            return np.empty((0, probe.shape[1]))
        return np.vstack(parts)

    def passage_containing(self, text: str) -> int | None:
        """The passage group a chunk was cut from: most shared word 5-grams, at least half."""
        shingles = _shingles(_words(canonical(text)))
        if not shingles:
            return None
        votes: Counter[int] = Counter()
        for shingle in shingles:
            votes.update(self._shingle_index.get(shingle, ()))
        if not votes:
            return None
        group, count = votes.most_common(1)[0]
        return group if count >= math.ceil(len(shingles) / 2) else None

    def __call__(self, texts: list[str]) -> Matrix:
        """The vectors of ``texts``: what the server answers and what the baseline uses."""
        with self._lock:
            out = np.zeros((len(texts), self.dimension), dtype=np.float32)
            unknown: list[int] = []
            for i, text in enumerate(texts):
                key = canonical(text)
                if key in self._query_of:
                    out[i] = self._queries[self._query_of[key]]
                    self.served["query"] += 1
                elif key in self._passage_of:
                    out[i] = self._passages[self._passage_of[key]]
                    self.served["passage"] += 1
                else:
                    unknown.append(i)
            if not unknown:
                return out
            base = self._embed_base([texts[i] for i in unknown])
            topic_dim = self.dimension - base.shape[1]
            for row, i in enumerate(unknown):
                group = self.passage_containing(texts[i])
                self.served["unknown" if group is None else "chunk"] += 1
                if group is None:  # not from this collection: the base model alone
                    vector = np.concatenate([base[row], np.zeros(topic_dim)])
                else:
                    vector = (
                        np.concatenate([base[row], self.topic_weight * self._passage_topics[group]])
                        + self.noise * self._passage_noise[group]
                    )
                out[i] = _normalized(vector[None, :])[0]
            return out
