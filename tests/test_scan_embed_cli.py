"""`indexer scan --embed MODEL`: features and vectors from one decode, as a user runs it."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from onnx_models import encoder  # noqa: E402


def indexer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "indexer", *args], capture_output=True, text=True, timeout=300)


def vectors(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT m.name, COUNT(e.vector) FROM embedding_models m "
                                 "JOIN embeddings e ON e.model_id = m.id GROUP BY m.name"))
    finally:
        conn.close()


def test_scan_embed_stores_features_and_a_vector_for_every_image(archive, tmp_path):
    model = encoder(tmp_path / "enc.onnx", dim=16)
    db = tmp_path / "index.db"
    r = indexer("scan", str(archive), "--db", str(db), "--workers", "1", "--embed", str(model),
                "--embed-preset", "dinov2", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "12 new" in r.stderr and "embedded 12 images with enc (0 failed)" in r.stderr
    assert vectors(db) == {"enc": 12}
    r = indexer("scan", str(archive), "--db", str(db), "--workers", "1", "--embed", str(model),
                "--embed-preset", "dinov2", "--quiet")
    assert r.returncode == 0 and "12 unchanged" in r.stderr and "embedded 0 images" in r.stderr, r.stderr


def test_scan_embed_with_a_model_that_does_not_fit_touches_nothing(archive, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    db = tmp_path / "index.db"
    r = indexer("scan", str(archive), "--db", str(db), "--embed", str(bad))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not db.exists()
    r = indexer("scan", str(archive), "--db", str(db), "--embed-preset", "clip")
    assert r.returncode == 2 and "--embed-preset goes with --embed" in r.stderr and not db.exists()
