"""The ONNX Runtime backend: the same vectors as torch, exported once and reused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragd.config import load_settings
from ragd.embedding import LocalEmbedder, build_embedder
from ragd.embedding.local import resolve_model_path
from tests.databases import unavailable

CORPORA = [
    Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "msmarco",
    Path("/work/shared/datasets/msmarco"),
]
TEXTS = [
    "anthropological definition of environment",
    "causes of left ventricular hypertrophy",
    "Daniel Gabriel Fahrenheit was the German physicist who invented an alcohol "
    "thermometer in 1709, and the mercury thermometer in 1714.",
    "é ü ß — 中文 テキスト, emoji 🙂 and punctuation!?",
    "x",
    " ".join(["a long passage that is cut at the model's token limit"] * 60),
]


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        unavailable("onnxruntime is not installed (pip install -e .)")
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def onnx_embedder(onnx_dir: Path) -> LocalEmbedder:
    model = LocalEmbedder("all-MiniLM-L6-v2", backend="onnx", cache_dir=onnx_dir)
    assert model.dimension == 384
    return model


def real_texts() -> list[str]:
    """msmarco passages when the shared datasets are here, else the fixed texts."""
    path = next((c / "corpus.jsonl" for c in CORPORA if (c / "corpus.jsonl").is_file()), None)
    if path is None:
        return TEXTS
    with path.open(encoding="utf-8") as handle:
        return TEXTS + [json.loads(next(handle))["text"] for _ in range(40)]


def test_onnx_runs_and_matches_torch_on_real_texts(
    onnx_embedder: LocalEmbedder, embedder: LocalEmbedder
) -> None:
    assert onnx_embedder.backend == "onnx"
    texts = real_texts()
    ours, torch = onnx_embedder.embed_documents(texts), embedder.embed_documents(texts)
    assert ours.shape == torch.shape == (len(texts), 384)
    assert ours.dtype == np.float32
    cosines = (ours * torch).sum(axis=1)
    assert cosines.min() >= 0.99999
    assert np.linalg.norm(ours, axis=1) == pytest.approx(1.0, abs=1e-5)


def test_query_and_batch_embeddings_agree(onnx_embedder: LocalEmbedder) -> None:
    """A query alone (no padding) and inside a padded batch give the same vector."""
    batch = onnx_embedder.embed_documents(TEXTS)
    for i, text in enumerate(TEXTS):
        assert float(onnx_embedder.embed_query(text) @ batch[i]) >= 0.99999


def test_the_export_is_made_once_and_reused(onnx_embedder: LocalEmbedder, onnx_dir: Path) -> None:
    graphs = list(onnx_dir.rglob("*.onnx"))
    assert len(graphs) == 1
    before = graphs[0].stat().st_mtime_ns
    again = LocalEmbedder("all-MiniLM-L6-v2", backend="onnx", cache_dir=onnx_dir)
    assert again.dimension == 384
    assert again.backend == "onnx"
    assert graphs[0].stat().st_mtime_ns == before
    assert not list(onnx_dir.rglob("*.tmp"))


def test_a_model_the_runner_cannot_reproduce_is_refused(tmp_path: Path) -> None:
    from ragd.embedding.onnx_model import OnnxSentenceModel, UnsupportedModel

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    source = Path(resolve_model_path("all-MiniLM-L6-v2"))
    (model_dir / "tokenizer.json").write_bytes((source / "tokenizer.json").read_bytes())
    modules = json.loads((source / "modules.json").read_text())
    modules.append(
        {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    )
    (model_dir / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnsupportedModel, match="Dense"):
        OnnxSentenceModel(model_dir, tmp_path / "cache")
    with pytest.raises(UnsupportedModel, match="local folder"):
        OnnxSentenceModel(tmp_path / "missing", tmp_path / "cache")


def test_settings_choose_the_backend(tmp_path: Path, onnx_dir: Path) -> None:
    settings = load_settings(
        data_dir=str(tmp_path), embedding_backend="torch", embedding_onnx_dir=str(onnx_dir)
    )
    built = build_embedder(settings)
    inner = getattr(built, "inner", built)
    assert isinstance(inner, LocalEmbedder)
    assert inner.requested_backend == "torch"
    assert inner.cache_dir == onnx_dir
    assert load_settings(data_dir=str(tmp_path)).embedding_backend == "onnx"
