"""Embeddings used by select, similar and duplicates: a planted structure the hashes cannot see,
and the vector methods against plain reference implementations."""
from __future__ import annotations

import sqlite3

import numpy as np
import onnx_models
import pytest
from imaging import save_jpeg, scene
from PIL import Image

from indexer import Database, scan
from indexer.cli import cli
from indexer.methods import vectors as V

pytest.importorskip("onnxruntime")

SIZES = (20, 8, 4, 4, 2, 2)  # images per hue: a random subset of 6 rarely meets the small ones


def hue_colour(theta: float) -> np.ndarray:
    """An RGB colour of luminance 128 (ITU-R 601, what grayscale conversion keeps) and hue theta:
    the same gray level whatever the hue."""
    y = np.array([0.299, 0.587, 0.114])
    u = np.array([1.0, -1.0, 0.0])
    u -= y * (u @ y) / (y @ y)
    u /= np.linalg.norm(u)
    v = np.cross(y, u)
    v /= np.linalg.norm(v)
    return 128 + 70 * (np.cos(theta) * u + np.sin(theta) * v)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """40 frames of unrelated gray scenes, each with a small square (3% of the frame) whose hue is
    one of six; the hue is the structure, and a grayscale hash does not see it."""
    base = tmp_path_factory.mktemp("planted")
    root = base / "archive"
    rng = np.random.default_rng(5)
    hue_of = {}
    n = 0
    for h, size in enumerate(SIZES):
        colour = np.clip(hue_colour(h * np.pi / 3), 0, 255).astype(np.uint8)
        for _ in range(size):
            img = np.asarray(scene(100 + n, gray=True).convert("RGB")).copy()
            x, y = rng.integers(64, 256 - 48), rng.integers(20, 220 - 40)  # inside the centre crop
            img[y:y + 40, x:x + 48] = colour
            path = root / f"cam{n % 3}" / f"IMG_{n:04d}.JPG"
            save_jpeg(Image.fromarray(img), path, taken=f"2024:01:{1 + n // 20:02d} {n % 20:02d}:00:00", quality=95)
            hue_of[str(path)] = h
            n += 1
    db_path = base / "index.db"
    with Database(db_path, create=True) as db:
        scan(db, [str(root)], workers=1, progress=False)
    return db_path, hue_of, base


def picks(runner, db_path, *args):
    r = runner.invoke(cli, ["select", "--db", str(db_path), "--target", str(len(SIZES)), "-q", *args])
    assert r.exit_code == 0, r.output
    return r.stdout.splitlines()


def test_embedding_diverse_covers_every_planted_cluster_where_hashes_and_random_do_not(runner, planted):
    db_path, hue_of, base = planted
    model = onnx_models.hue(base / "hue.onnx")
    r = runner.invoke(cli, ["embed", "--db", str(db_path), "--model", str(model), "--workers", "1", "-q",
                            "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5"])
    assert r.exit_code == 0, r.output
    covered = {}
    for name, args in {"embedding diverse": ["--features", "embedding"],
                       "embedding kcenter": ["--features", "embedding", "--method", "kcenter"],
                       "hash diverse": [], "hash kcenter": ["--method", "kcenter"],
                       "random": ["--method", "random"]}.items():
        covered[name] = len({hue_of[p] for p in picks(runner, db_path, *args)})
    assert covered["embedding diverse"] == covered["embedding kcenter"] == len(SIZES), covered
    assert max(covered["hash diverse"], covered["hash kcenter"], covered["random"]) < len(SIZES), covered
    r = runner.invoke(cli, ["select", "--db", str(db_path), "--target", "6", "--features", "embedding", "--stats",
                            "--format", "json", "-q"])
    import json
    e = json.loads(r.stdout)["stats"]["groups"][0]["embedding"]
    assert e["cosine_max"] < 0.05 < e["random_cosine_max"] and e["cosine_mean"] < e["random_cosine_mean"]
    # random subsets of this size cover every hue in well under 1% of draws
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(SIZES)), SIZES)
    full = np.mean([len(set(rng.choice(labels, len(SIZES), replace=False))) == len(SIZES) for _ in range(2000)])
    assert full < 0.01


def test_similar_and_duplicates_by_embedding(runner, planted):
    db_path, hue_of, base = planted
    model = onnx_models.hue(base / "hue.onnx")
    runner.invoke(cli, ["embed", "--db", str(db_path), "--model", str(model), "--workers", "1", "-q",
                        "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5"])
    small = [p for p, h in hue_of.items() if h == 4]  # a hue with 2 frames
    r = runner.invoke(cli, ["similar", "--db", str(db_path), "--path", small[0], "--by", "embedding", "--top", "1",
                            "--format", "csv"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[1].split(",")[1] == small[1]
    r = runner.invoke(cli, ["duplicates", "--db", str(db_path), "--by", "embedding", "--max-distance", "0.01",
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    import json
    groups = json.loads(r.stdout)["groups"]
    assert len(groups) == len(SIZES)  # every hue is one group of near-identical embeddings
    assert sorted(len(g["members"]) for g in groups) == sorted(SIZES)
    for g in groups:
        assert len({hue_of[m["path"]] for m in g["members"]}) == 1
    r = runner.invoke(cli, ["duplicates", "--db", str(db_path), "--by", "embedding", "--max-distance", "3"])
    assert r.exit_code == 2 and "cosine distance from 0 to 2" in r.output


def plain_farthest(x: np.ndarray, count: int, keep=()) -> np.ndarray:
    """One pass over every row per pick: the definition."""
    x = x.astype(np.float32)
    keep = list(keep)
    s = (x @ x[keep].T).max(axis=1) if keep else np.full(len(x), -2.0, np.float32)
    picks = []
    if not keep:
        picks.append(V.central_row(x))
        s = np.maximum(s, x @ x[picks[0]])
    s[keep + picks] = 3.0
    while len(picks) < count:
        j = int(np.argmin(s))
        picks.append(j)
        s = np.maximum(s, x @ x[j])
        s[j] = 3.0
    return np.array(picks)


@pytest.mark.parametrize("n, dim, clusters, keep", [(600, 8, 20, ()), (3000, 24, 60, (5, 9)), (1500, 64, 0, ())])
def test_lazy_farthest_point_gives_the_plain_picks(n, dim, clusters, keep, monkeypatch):
    monkeypatch.setattr(V, "BLOCK", 128)
    monkeypatch.setattr(V, "ACTIVE_CAP", 512)  # many re-sorts on small data
    rng = np.random.default_rng(n)
    x = rng.normal(size=(clusters, dim))[rng.integers(0, clusters, n)] + rng.normal(0, 0.3, (n, dim)) \
        if clusters else rng.normal(size=(n, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)
    got = V.farthest_first(x, 150, np.array(keep, dtype=np.int64))
    assert np.array_equal(got, plain_farthest(x, 150, keep))


def test_kcenter_runs_collapse_bursts_and_keep_their_bound():
    rng = np.random.default_rng(1)
    events = rng.normal(size=(300, 32))
    sizes = rng.integers(1, 8, 300)
    x = np.repeat(events, sizes, axis=0) + rng.normal(0, 0.02, (sizes.sum(), 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)
    leaders, dist = V.runs(x, 0.02)
    assert 300 <= len(leaders) < len(x) / 2
    lead = leaders[np.searchsorted(leaders, np.arange(len(x)), side="right") - 1]
    xf = x.astype(np.float32)
    assert (1 - np.einsum("ij,ij->i", xf, xf[lead])).max() <= 0.02 + 1e-6
    got = V.kcenter(x, 40)
    assert len(got) == 40 and len(np.unique(got)) == 40
    keep = np.array([0, 5])
    assert set(keep) <= set(V.kcenter(x, 40, keep=keep).tolist())


def test_vector_diverse_takes_one_frame_per_burst_first():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)
    sequence = np.repeat(np.arange(20), 3)
    got = V.diverse(x, 20, sequence=sequence)
    assert len(np.unique(sequence[got])) == 20
    got = V.diverse(x, 25, sequence=sequence)
    assert len(got) == 25 and len(np.unique(sequence[got])) == 20


def test_self_pairs_and_nearest_match_brute_force():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(700, 8))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)
    xf = x.astype(np.float32)
    d = 1 - xf @ xf.T
    i, j, dist = V.self_pairs(x, 0.05)
    want = {(a, b) for a, b in zip(*np.nonzero(d <= 0.05)) if a < b}
    assert set(zip(i.tolist(), j.tolist())) == want
    rows, dd = V.nearest(x, xf[3], 5)
    assert rows[0] == 3 and np.array_equal(rows, np.argsort(d[3], kind="stable")[:5])


def test_report_pairs_use_the_embeddings_a_selection_was_made_with(runner, planted, tmp_path):
    db_path, hue_of, base = planted
    model = onnx_models.hue(base / "hue.onnx")
    runner.invoke(cli, ["embed", "--db", str(db_path), "--model", str(model), "--workers", "1", "-q",
                        "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5"])
    r = runner.invoke(cli, ["select", "--db", str(db_path), "--target", "6", "--features", "embedding:hue",
                            "--save", "by-hue", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["report", "--db", str(db_path), "--out", str(tmp_path / "rep"), "--selection", "by-hue",
                            "--workers", "1", "--pairs", "10", "-q"])
    assert r.exit_code == 0, r.output
    import re
    page = (tmp_path / "rep" / "index.html").read_text()
    cards = re.findall(r'data-excluded="(\d+)" data-nearest="(\d+)" data-distance="\d+" data-cosine="([0-9.]+)"', page)
    assert len(cards) == 10
    conn = sqlite3.connect(db_path)
    path_of = dict(conn.execute("SELECT id, path FROM image_files"))
    for ex, kept, cos in cards:  # every excluded image has a kept one of its own hue: the nearest
        assert hue_of[path_of[int(ex)]] == hue_of[path_of[int(kept)]] and float(cos) < 0.01
