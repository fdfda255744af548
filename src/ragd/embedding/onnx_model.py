"""A sentence-transformers model run by ONNX Runtime instead of torch.

Why: on CPU the query embedding was most of a hybrid search on a small collection, and
ONNX Runtime runs the same transformer faster, without torch in the serving process once
the graph exists. The graph is exported once, offline, from the local weights
(``torch.onnx.export`` of the transformer, which needs torch only that once) into a cache
folder keyed by the weights' identity, and reused afterwards; pooling and normalization
are a few lines of numpy read from the model's own sentence-transformers configuration.

Supported: the pipelines most sentence-transformers models have, Transformer → Pooling
(mean, CLS or max) → optional Normalize, with a fast tokenizer (``tokenizer.json``).
Anything else raises :class:`UnsupportedModel` and the caller keeps torch. The vectors
equal torch's to float32 rounding (cosine ≥ 0.99999 in the tests), so a collection
embedded by one backend is searched by the other without loss.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from ragd.embedding.base import Matrix, normalize_rows

log = structlog.get_logger(__name__)

_SUPPORTED_MODULES = {
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
}
_POOLING_MODES = ("mean_tokens", "cls_token", "max_tokens")
_EXPORT_FORMAT = "1"  # bump when the exported graph changes shape or inputs


class UnsupportedModel(Exception):
    """The model's pipeline has a part this runner does not reproduce: use torch."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnsupportedModel(f"{path.name} is missing or unreadable") from exc


def _pooling_mode(model_dir: Path) -> str:
    modules = _read_json(model_dir / "modules.json")
    types = {module.get("type") for module in modules}
    if not types <= _SUPPORTED_MODULES:
        raise UnsupportedModel(f"pipeline modules {sorted(map(str, types - _SUPPORTED_MODULES))}")
    pooling = next(m for m in modules if m["type"].endswith(".Pooling"))
    config = _read_json(model_dir / pooling["path"] / "config.json")
    modes = [mode for mode in _POOLING_MODES if config.get(f"pooling_mode_{mode}")]
    others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
    if len(modes) != 1 or len(others) != 1:
        raise UnsupportedModel(f"pooling {others}")
    return modes[0]


def _max_length(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    length = _read_json(config).get("max_seq_length") if config.exists() else None
    return int(length or 512)


def fingerprint(model_dir: Path) -> str:
    """Identity of the weights without hashing hundreds of MB: names, sizes, mtimes."""
    digest = hashlib.sha256(_EXPORT_FORMAT.encode())
    for path in sorted(model_dir.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(
                f"{path.relative_to(model_dir)}:{stat.st_size}:{stat.st_mtime_ns}".encode()
            )
    return digest.hexdigest()[:16]


def export_onnx(model_dir: Path, target: Path) -> None:
    """Write the transformer of ``model_dir`` as an ONNX graph to ``target`` (atomically:
    a process that finds the file finds it whole). Loads torch, once."""
    import torch
    from sentence_transformers import SentenceTransformer

    first: Any = SentenceTransformer(str(model_dir), device="cpu")[0]
    transformer = first.auto_model.eval()
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in first.tokenizer.model_input_names:
        names.append("token_type_ids")

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, *inputs: Any) -> Any:
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    sample = first.tokenizer(["an example sentence"], return_tensors="pt")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(handle)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shapes fixed at export
            torch.onnx.export(
                LastHidden(),
                tuple(sample[name] for name in names),
                tmp,
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the export is no secret
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class OnnxSentenceModel:
    """Tokenize (``tokenizers``), run the graph (ONNX Runtime), pool, normalize."""

    def __init__(self, model_dir: Path, cache_dir: Path, *, threads: int = 0) -> None:
        if not model_dir.is_dir():
            raise UnsupportedModel("the ONNX backend needs the model as a local folder")
        if not (model_dir / "tokenizer.json").is_file():
            raise UnsupportedModel("no fast tokenizer (tokenizer.json)")
        self.pooling = _pooling_mode(model_dir)
        self.graph = ensure_exported(model_dir, cache_dir)
        self.session = _session(self.graph, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = _tokenizer(model_dir, _max_length(model_dir))
        self.dimension = int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: Sequence[str], batch_size: int) -> Matrix:
        """Embeddings in input order; texts of similar length are batched together so
        that little padding is computed."""
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            out[chosen] = self._run([encodings[i] for i in chosen])
        return normalize_rows(out)

    def _run(self, encodings: list[Any]) -> Matrix:
        width = max(len(e.ids) for e in encodings)
        feed = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in self.inputs}
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            feed["input_ids"][row, :n] = encoding.ids
            feed["attention_mask"][row, :n] = encoding.attention_mask
            if "token_type_ids" in feed:
                feed["token_type_ids"][row, :n] = encoding.type_ids
        hidden = self.session.run(None, feed)[0]
        return _pool(hidden, feed["attention_mask"], self.pooling)


def ensure_exported(model_dir: Path, cache_dir: Path) -> Path:
    """The graph for these weights, exported on first use; in a temporary folder when
    the cache folder cannot be written (a read-only home in a container)."""
    name = Path(f"{model_dir.name}-{fingerprint(model_dir)}") / "model.onnx"
    fallback = Path(tempfile.gettempdir()) / "ragd-onnx"
    for folder in (cache_dir, fallback):
        graph = folder / name
        if graph.is_file():
            return graph
        try:
            log.info("exporting the embedding model to ONNX", target=str(graph))
            export_onnx(model_dir, graph)
            return graph
        except OSError as exc:
            log.warning("cannot write the ONNX export", target=str(graph), error=str(exc))
    raise UnsupportedModel("no writable folder for the ONNX export")


def _pool(hidden: Any, mask: Any, mode: str) -> Matrix:
    weights = mask[..., None].astype(np.float32)
    if mode == "cls_token":
        pooled = hidden[:, 0]
    elif mode == "max_tokens":
        pooled = np.where(weights > 0, hidden, -1e9).max(axis=1)
    else:
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    result: Matrix = pooled.astype(np.float32)
    return result


def _session(graph: Path, threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def _tokenizer(model_dir: Path, max_length: int) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    config = model_dir / "tokenizer_config.json"
    model_max = _read_json(config).get("model_max_length") if config.exists() else None
    if isinstance(model_max, int) and model_max < max_length:
        max_length = model_max
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()
    return tokenizer
