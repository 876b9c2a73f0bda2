"""Which stored model a command means (`--features embedding[:MODEL]`, `--by embedding`), and its
vectors, aligned with the rows a command works on. No onnxruntime here: reading needs none."""
from __future__ import annotations

from typing import Any

from ..db import Database
from ..db import embeddings as qe
from ..db.embeddings import ModelRow, failures
from . import EmbedError

__all__ = ["aligned_vectors", "failures", "list_models", "parse_features", "resolve_model"]


def list_models(db: Database) -> list[ModelRow]:
    return qe.models(db)


def parse_features(spec: str | None) -> tuple[str, str | None]:
    """'hash' | 'embedding' | 'embedding:MODEL' -> (kind, model or None)."""
    text = (spec or "hash").strip()
    kind, _, model = text.partition(":")
    if kind not in ("hash", "embedding") or (kind == "hash" and model):
        raise EmbedError(f"--features {text!r}: choose hash, embedding or embedding:MODEL")
    return kind, (model.strip() or None) if kind == "embedding" else None


def resolve_model(db: Database, name: str | None) -> ModelRow:
    """The model NAME (its file name without .onnx, or a sha256 prefix of 6+ characters; the most
    recently used of that name), or, without a name, the only model that has vectors."""
    rows = qe.models(db)
    if not rows:
        raise EmbedError("this index holds no embeddings: run `indexer embed --model PATH.onnx` first")
    if name is None:
        used = [r for r in rows if r.vectors] or rows
        if len(used) > 1:
            raise EmbedError(f"this index holds embeddings of several models ({_names(used)}): "
                             "choose one with embedding:MODEL")
        return used[0]
    for r in rows:
        if r.name == name:
            return r
    if len(name) >= 6:
        by_sha = [r for r in rows if r.sha256.startswith(name.lower())]
        if len(by_sha) == 1:
            return by_sha[0]
    raise EmbedError(f"no embedding model {name!r} in this index (it has {_names(rows)}; see `indexer models`)")


def _names(rows: list[ModelRow]) -> str:
    seen: list[str] = []
    for r in rows:
        if r.name not in seen:
            seen.append(r.name)
    return ", ".join(seen)


def aligned_vectors(db: Database, model: ModelRow, ids: Any) -> tuple[Any, Any]:
    """(vectors (len(ids), dim) float16, has: bool per id) for these image ids, in their order;
    rows without a vector are zero."""
    import numpy as np

    ids = np.asarray(ids, dtype=np.int64)
    got_ids, mat = qe.vectors(db, model.id, model.dim)
    out = np.zeros((len(ids), model.dim), "<f2")
    has = np.zeros(len(ids), bool)
    if len(got_ids) and len(ids):
        at = np.searchsorted(got_ids, ids)
        at[at >= len(got_ids)] = 0
        hit = got_ids[at] == ids
        out[hit] = mat[at[hit]]
        has = hit
    return out, has
