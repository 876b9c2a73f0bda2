"""Embeddings from the user's own ONNX image model (issue 13): `indexer embed`, `scan --embed`.

One module per job: `model.py` loads and checks the .onnx file (onnxruntime, imported only
here), `preprocess.py` decodes and prepares an image as the preset says, `task.py` is what a
worker process runs (decode, preprocess, batched inference, L2-normalised float16 vectors),
`run.py` drives a run (lock, run record, pool, batch commits). Nothing heavy is imported by this
file: the CLI imports it at start-up.
"""
from __future__ import annotations

from ..errors import IndexerError

INSTALL_HINT = "pip install 'indexer[embed]'"


class EmbedError(IndexerError):
    """An embedding model cannot be used as asked (missing, not ONNX, wrong inputs or outputs)."""


__all__ = ["INSTALL_HINT", "EmbedError"]
