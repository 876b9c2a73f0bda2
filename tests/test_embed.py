"""indexer embed: preprocessing, storage, incremental runs, several models, swaps and bad models."""
from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import numpy as np
import onnx_models
import pytest
from imaging import make_archive, save_jpeg, scene
from PIL import Image

from indexer import Database, scan
from indexer.cli import cli
from indexer.embed.preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    load_input,
    make_preprocess,
)

pytest.importorskip("onnxruntime")


def reference_input(path: Path, resize: int, crop: int, mean, std, bicubic: bool) -> np.ndarray:
    """torchvision's Resize(resize) + CenterCrop(crop) + ToTensor + Normalize, written out with
    Pillow and numpy on the full decode (no draft)."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    size = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    im = im.resize(size, Image.Resampling.BICUBIC if bicubic else Image.Resampling.BILINEAR)
    left, top = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
    a = np.asarray(im, np.float32)[top:top + crop, left:left + crop] / 255.0
    return ((a - np.array(mean, np.float32)) / np.array(std, np.float32)).transpose(2, 0, 1)


@pytest.mark.parametrize("preset, resize, mean, std, bicubic", [
    ("dinov2", 256, IMAGENET_MEAN, IMAGENET_STD, True),
    ("clip", 224, CLIP_MEAN, CLIP_STD, True),
    ("imagenet", 256, IMAGENET_MEAN, IMAGENET_STD, False),
])
def test_preprocessing_matches_a_numpy_reference(tmp_path, preset, resize, mean, std, bicubic):
    png = tmp_path / "a.png"
    scene(3, (300, 260)).save(png)  # a PNG small enough for no reduction: exactly the reference
    got = load_input(str(png), make_preprocess(preset))
    assert got.shape == (3, 224, 224) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference_input(png, resize, 224, mean, std, bicubic), atol=1e-5)
    # a large JPEG is decoded at a reduced scale (short side >= the resize target): close to the full decode
    jpg = save_jpeg(scene(4, (1600, 1200)), tmp_path / "b.jpg", quality=95)
    got = load_input(str(jpg), make_preprocess(preset))
    ref = reference_input(jpg, resize, 224, mean, std, bicubic)
    assert np.abs(got - ref).mean() < 0.05 and np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.99


def test_input_size_and_custom_normalisation():
    pp = make_preprocess("dinov2", 448)
    assert (pp.resize, pp.crop) == (512, 448)
    pp = make_preprocess("clip", 336, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert (pp.resize, pp.crop, pp.mean, pp.std) == (336, 336, (0.5,) * 3, (0.25,) * 3)


@pytest.fixture
def indexed(tmp_path):
    root = tmp_path / "archive"
    make_archive(root, cameras=2, per_camera=5)
    db_path = tmp_path / "index.db"
    with Database(db_path, create=True) as db:
        scan(db, [str(root)], workers=1, progress=False)
    return root, db_path


def embed(runner, db_path, model, *args):
    return runner.invoke(cli, ["embed", "--db", str(db_path), "--model", str(model), "--workers", "1", "-q", *args])


def stored(db_path, name):
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT e.image_id, e.vector, e.error FROM embeddings e JOIN embedding_models m "
                        "ON m.id = e.model_id WHERE m.name = ? ORDER BY e.image_id", (name,)).fetchall()
    conn.close()
    return rows


def test_embed_stores_unit_float16_vectors_once(runner, indexed, tmp_path):
    root, db_path = indexed
    model = onnx_models.encoder(tmp_path / "enc.onnx", dim=16)
    r = embed(runner, db_path, model)
    assert r.exit_code == 0, r.output
    assert "completed: 10 embedded, 0 failed" in r.output
    rows = stored(db_path, "enc")
    assert len(rows) == 10
    for _, blob, err in rows:
        v = np.frombuffer(blob, "<f2").astype(np.float32)
        assert err is None and v.shape == (16,) and abs(np.linalg.norm(v) - 1) < 2e-3
    again = embed(runner, db_path, model)
    assert "completed: 0 embedded" in again.output  # incremental: nothing left
    conn = sqlite3.connect(db_path)
    runs = conn.execute("SELECT command, status, n_new FROM runs WHERE command = 'embed' ORDER BY id").fetchall()
    assert runs == [("embed", "completed", 10), ("embed", "completed", 0)]


def test_vector_is_what_the_model_gives_on_the_preprocessed_image(runner, indexed, tmp_path):
    root, db_path = indexed
    model = onnx_models.channel_means(tmp_path / "means.onnx", keep_dims=True)  # (N, 3, 1, 1): squeezed
    assert embed(runner, db_path, model, "--preset", "clip").exit_code == 0
    conn = sqlite3.connect(db_path)
    path_of = dict(conn.execute("SELECT id, path FROM image_files"))
    for image_id, blob, _ in stored(db_path, "means"):
        x = load_input(path_of[image_id], make_preprocess("clip"))
        want = x.mean(axis=(1, 2))
        want /= np.linalg.norm(want)
        np.testing.assert_allclose(np.frombuffer(blob, "<f2").astype(np.float32), want, atol=2e-3)


def test_two_models_side_by_side_and_choosing_one(runner, indexed, tmp_path):
    root, db_path = indexed
    a = onnx_models.encoder(tmp_path / "a.onnx", dim=8, seed=1)
    b = onnx_models.encoder(tmp_path / "b.onnx", dim=12, seed=2)
    assert embed(runner, db_path, a).exit_code == 0
    assert embed(runner, db_path, b, "--preset", "dinov2").exit_code == 0
    assert len(stored(db_path, "a")) == len(stored(db_path, "b")) == 10
    listing = runner.invoke(cli, ["models", "--db", str(db_path)])
    assert "a: 10 vectors (0 failed), 8-d, imagenet" in listing.output
    assert "b: 10 vectors (0 failed), 12-d, dinov2" in listing.output
    ambiguous = runner.invoke(cli, ["select", "--db", str(db_path), "--target", "3", "--features", "embedding"])
    assert ambiguous.exit_code == 1 and "several models (b, a)" in ambiguous.output
    for name in ("a", "b"):
        r = runner.invoke(cli, ["select", "--db", str(db_path), "--target", "3", "--features", f"embedding:{name}"])
        assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3
    unknown = runner.invoke(cli, ["select", "--db", str(db_path), "--target", "3", "--features", "embedding:c"])
    assert unknown.exit_code == 1 and "no embedding model 'c'" in unknown.output and "Traceback" not in unknown.output


def test_a_swapped_model_file_is_a_new_model(runner, indexed, tmp_path):
    root, db_path = indexed
    path = tmp_path / "model.onnx"
    onnx_models.encoder(path, seed=1)
    assert embed(runner, db_path, path).exit_code == 0
    first = stored(db_path, "model")
    onnx_models.encoder(path, seed=2)  # retrained weights, same file name
    r = embed(runner, db_path, path)
    assert "completed: 10 embedded" in r.output  # nothing of the old weights is reused
    conn = sqlite3.connect(db_path)
    models = conn.execute("SELECT name, COUNT(e.id) FROM embedding_models m JOIN embeddings e ON e.model_id = m.id "
                          "GROUP BY m.id ORDER BY m.id").fetchall()
    assert models == [("model", 10), ("model", 10)]
    new = stored(db_path, "model")[10:]
    assert [x[1] for x in new] != [x[1] for x in first]
    # the name means the one used last
    r = runner.invoke(cli, ["select", "--db", str(db_path), "--target", "2", "--features", "embedding:model"])
    assert r.exit_code == 0


def test_a_changed_image_loses_its_embeddings_and_only_it_is_embedded_again(runner, indexed, tmp_path):
    root, db_path = indexed
    model = onnx_models.encoder(tmp_path / "enc.onnx")
    embed(runner, db_path, model)
    changed = sorted(root.rglob("*.JPG"))[0]
    save_jpeg(scene(999), changed)
    os.utime(changed, (1e9, 1e9))
    moved = sorted(root.rglob("*.JPG"))[-1]
    moved.rename(moved.with_name("RENAMED.JPG"))  # a rename keeps content and vectors
    with Database(db_path) as db:
        scan(db, [str(root)], workers=1, progress=False)
    assert len(stored(db_path, "enc")) == 9
    r = embed(runner, db_path, model)
    assert "completed: 1 embedded" in r.output


def test_a_bad_image_is_recorded_and_the_run_goes_on(runner, indexed, tmp_path):
    root, db_path = indexed
    bad = sorted(root.rglob("*.JPG"))[2]
    st = bad.stat()
    bad.write_bytes(b"\xff\xd8" + b"\x00" * (st.st_size - 2))  # same size and mtime: the index still trusts it
    os.utime(bad, ns=(st.st_atime_ns, st.st_mtime_ns))
    model = onnx_models.encoder(tmp_path / "enc.onnx")
    r = embed(runner, db_path, model)
    assert r.exit_code == 0 and "9 embedded, 1 failed" in r.output
    errors = runner.invoke(cli, ["models", "--db", str(db_path), "--errors", "enc"])
    assert str(bad) in errors.output
    assert "completed: 0 embedded, 0 failed" in embed(runner, db_path, model).output  # not tried again
    assert "0 embedded, 1 failed" in embed(runner, db_path, model, "--retry-errors").output


def test_an_image_changed_since_the_scan_is_skipped_not_stored(runner, indexed, tmp_path):
    root, db_path = indexed
    save_jpeg(scene(77), sorted(root.rglob("*.JPG"))[0])
    r = embed(runner, db_path, onnx_models.encoder(tmp_path / "enc.onnx"))
    assert "9 embedded, 0 failed, 1 skipped" in r.output and "changed since it was indexed" in r.output
    assert len(stored(db_path, "enc")) == 9


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "no model file at"),
    (lambda p: (p.write_bytes(b"not a model"), p)[1], "is not an ONNX model onnxruntime can load"),
    (onnx_models.two_inputs, "has 2 inputs"),
    (onnx_models.token_output, "is not one vector per image"),
])
def test_models_that_do_not_fit_are_one_line_errors(runner, indexed, tmp_path, make, message):
    root, db_path = indexed
    model = make(tmp_path / "m.onnx")
    r = embed(runner, db_path, model)
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    if "inputs" in message or "vector" in message:
        assert "expected one image input (N, 3, H, W) float32 and one vector output" in lines[0]
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT COUNT(*) FROM runs WHERE command = 'embed'").fetchone()[0] == 0  # nothing written


def test_static_input_size_is_taken_from_the_model_and_checked(runner, indexed, tmp_path):
    root, db_path = indexed
    model = onnx_models.encoder(tmp_path / "s.onnx", size=160)
    assert embed(runner, db_path, model).exit_code == 0
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT resize, crop FROM embedding_models").fetchone() == (182, 160)
    r = embed(runner, db_path, model, "--input-size", "224")
    assert r.exit_code == 1 and "does not fit s, whose input is 160x160" in r.output


def test_without_onnxruntime_embed_says_how_to_install_it(tmp_path, indexed):
    import subprocess
    root, db_path = indexed
    code = ("import sys; sys.modules['onnxruntime'] = None\n"
            "from indexer.__main__ import main\n"
            f"main(['embed', '--db', {str(db_path)!r}, '--model', {str(tmp_path / 'x.onnx')!r}])")
    (tmp_path / "x.onnx").write_bytes(b"x")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == "Error: embeddings need onnxruntime, which is not installed: pip install 'indexer[embed]'"


def test_import_indexer_cli_does_not_import_onnxruntime():
    import subprocess
    code = "import sys, indexer.cli; assert 'onnxruntime' not in sys.modules and 'numpy' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_where_limits_the_images_embedded(runner, indexed, tmp_path):
    root, db_path = indexed
    model = onnx_models.encoder(tmp_path / "enc.onnx")
    r = embed(runner, db_path, model, "--where", "folder LIKE '%cam01'")
    assert "completed: 5 embedded" in r.output
    assert "completed: 5 embedded" in embed(runner, db_path, model).output  # the others, later
    bad = embed(runner, db_path, model, "--where", "no_such_column = 1")
    assert bad.exit_code == 1 and bad.output.startswith("Error: bad --where expression")


def test_embed_is_refused_while_another_writer_holds_the_index(runner, indexed, tmp_path):
    from indexer.lock import WriterLock
    root, db_path = indexed
    lock = WriterLock(db_path)
    assert lock.acquire("`indexer scan` (pid 1 on elsewhere)") is None
    try:
        r = embed(runner, db_path, onnx_models.encoder(tmp_path / "enc.onnx"))
    finally:
        lock.release()
    assert r.exit_code == 1 and "is writing to this database" in r.output
    assert stored(db_path, "enc") == []


def test_embed_on_a_dask_cluster_stores_what_the_local_pool_stores(runner, indexed, tmp_path):
    pytest.importorskip("distributed")
    root, db_path = indexed
    model = onnx_models.encoder(tmp_path / "enc.onnx")
    other = tmp_path / "other.db"
    import shutil
    shutil.copy(db_path, other)
    assert embed(runner, db_path, model).exit_code == 0
    r = runner.invoke(cli, ["embed", "--db", str(other), "--model", str(model), "--cluster", "local:1", "-q"])
    assert r.exit_code == 0, r.output
    assert "completed: 10 embedded" in r.output
    a, b = stored(db_path, "enc"), stored(other, "enc")
    assert [x[0] for x in a] == [x[0] for x in b]
    for (_, va, _), (_, vb, _) in zip(a, b):
        np.testing.assert_allclose(np.frombuffer(va, "<f2").astype(np.float32),
                                   np.frombuffer(vb, "<f2").astype(np.float32), atol=2e-3)


def test_of_several_outputs_the_one_vector_is_used_or_the_one_named(runner, indexed, tmp_path):
    root, db_path = indexed
    model = onnx_models.tokens_and_pooled(tmp_path / "hf.onnx")
    r = embed(runner, db_path, model)
    assert r.exit_code == 0 and "completed: 10 embedded" in r.output
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT output_name, dim FROM embedding_models").fetchall() == [("pooler_output", 3)]
    r = embed(runner, db_path, model, "--output", "last_hidden_state")
    assert r.exit_code == 1 and "output last_hidden_state has shape [1, " in r.output
    r = embed(runner, db_path, model, "--output", "nope")
    assert r.exit_code == 1 and "has no output named 'nope'" in r.output
