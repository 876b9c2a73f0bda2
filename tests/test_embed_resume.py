"""embed after kill -9 carries on to the vectors an uninterrupted run stores; scan --embed gives
features and vectors from one decode, as scan followed by embed does."""
from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx_models
import pytest
from imaging import make_archive, save_jpeg, scene

from indexer import Database, scan
from indexer.embed.combined import decode_both
from indexer.embed.preprocess import load_input, make_preprocess
from indexer.embed.run import prepare_job, run_embed
from indexer.embed.scan_embed import scan_and_embed
from indexer.features import features_from_file
from indexer.records import WorkItem

pytest.importorskip("onnxruntime")

N_FILES = 160


def vectors(db_path: Path) -> dict[str, np.ndarray]:
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT f.rel_path, e.vector FROM embeddings e JOIN image_files f ON f.id = e.image_id").fetchall()
    conn.close()
    return {p: np.frombuffer(v, "<f2").astype(np.float32) for p, v in rows}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    base = tmp_path_factory.mktemp("embed-resume")
    root = base / "archive"
    bases = [save_jpeg(scene(i, (1024, 768)), base / f"b{i}.jpg") for i in range(8)]
    for i in range(N_FILES):
        dest = root / f"cam{i // 40}" / f"IMG_{i:04d}.JPG"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(bases[i % len(bases)], dest)
    db_path = base / "index.db"
    with Database(db_path, create=True) as db:
        scan(db, [str(root)], workers=2, progress=False)
    model = onnx_models.encoder(base / "enc.onnx", dim=32, hidden=32)
    ref = base / "reference.db"
    shutil.copy(db_path, ref)
    with Database(ref) as db:
        assert run_embed(db, prepare_job(model, workers=1), workers=1, progress=False).counts.embedded == N_FILES
    return base, db_path, model, vectors(ref)


KILLED = """
import sys
from indexer import Database
from indexer.embed.run import prepare_job, run_embed
with Database(sys.argv[1]) as db:
    run_embed(db, prepare_job(sys.argv[2], workers=1, batch=4), workers=1, progress=False, commit=4, flush_seconds=0.05)
"""


def test_kill_9_then_resume_stores_what_one_run_stores(indexed, tmp_path):
    base, db_path, model, reference = indexed
    db = tmp_path / "index.db"
    shutil.copy(db_path, db)
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(db), str(model)])
    done = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as conn:
                done = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        except sqlite3.OperationalError:
            pass
        if done >= 8:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < done < N_FILES, f"the run was not stopped mid-way ({done} of {N_FILES} committed)"
    time.sleep(0.6)  # its worker notices the parent is gone
    with Database(db) as d:
        s = run_embed(d, prepare_job(model, workers=1), workers=1, progress=False)
    assert s.status == "completed" and 0 < s.counts.embedded < N_FILES
    got = vectors(db)
    assert set(got) == set(reference)
    for path, v in got.items():
        np.testing.assert_allclose(v, reference[path], atol=2e-3)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT image_id) FROM embeddings").fetchone() == (N_FILES, N_FILES)
    assert [r[0] for r in conn.execute("SELECT status FROM runs WHERE command = 'embed' ORDER BY id")] == \
        ["crashed", "completed"]


def test_one_decode_gives_the_scan_features_and_the_model_input(tmp_path):
    pp = make_preprocess("dinov2")
    for i, size in enumerate([(1920, 1080), (1024, 768), (640, 480)]):
        path = save_jpeg(scene(40 + i, size), tmp_path / f"f{i}.jpg", taken="2024:05:01 10:00:00")
        result, array = decode_both(WorkItem(1, str(tmp_path), "", path.name), pp)
        want = features_from_file(str(path))
        f = result.features
        assert f is not None and array is not None
        np.testing.assert_array_equal(array, load_input(str(path), pp))
        for h in ("dhash", "ahash", "phash"):
            assert ((getattr(f, h) ^ getattr(want, h)) & (2**64 - 1)).bit_count() <= 3, (size, h)
        assert abs(f.brightness - want.brightness) < 1.5 and f.is_gray == want.is_gray
        assert (f.width, f.height, f.captured_at) == (want.width, want.height, want.captured_at)
    png = tmp_path / "p.png"
    scene(9, (800, 600)).save(png)
    result, array = decode_both(WorkItem(1, str(tmp_path), "", "p.png"), pp)
    assert result.features == features_from_file(str(png))  # other formats: the scan's own reduction
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    result, array = decode_both(WorkItem(1, str(tmp_path), "", "bad.jpg"), pp)
    assert result.features is None and result.error and array is None


def test_scan_and_embed_is_scan_then_embed(tmp_path, indexed):
    base, _, model, _ = indexed
    root = tmp_path / "archive"
    make_archive(root, cameras=2, per_camera=4)
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    job = prepare_job(model, workers=1)
    with Database(one, create=True) as db:
        scanned, rest = scan_and_embed(db, [str(root)], job, workers=1, progress=False)
    assert scanned.counts.new == 8 and rest.counts.embedded == 8  # all in the scan's own decode:
    conn = sqlite3.connect(one)                                      # the completing run had none left
    assert conn.execute("SELECT n_new FROM runs WHERE command = 'embed'").fetchall() == [(0,)]
    with Database(two, create=True) as db:
        scan(db, [str(root)], workers=1, progress=False)
        run_embed(db, job, workers=1, progress=False)
    a, b = vectors(one), vectors(two)
    assert set(a) == set(b) and len(a) == 8
    for p in a:
        np.testing.assert_allclose(a[p], b[p], atol=2e-3)
    # images indexed before the model was used are embedded by the run that completes the scan
    save_jpeg(scene(500), root / "site1" / "cam01" / "NEW.JPG")
    with Database(two) as db:
        other = prepare_job(onnx_models.encoder(tmp_path / "other.onnx", seed=9), workers=1)
        scanned, rest = scan_and_embed(db, [str(root)], other, workers=1, progress=False)
    assert scanned.counts.new == 1 and rest.counts.embedded == 9  # 1 in the scan, 8 by the completing run
