"""The faster paths of `indexer select` (issue 12, point 5) give what the plain ones gave.

Speed itself is measured by benchmarks/bench_select.py, never here."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from indexer.db import Database
from indexer.db import select as q
from indexer.names import from_db, rel_raw, to_text

COLUMNS = ("root_id", "folder", "name", "state", "size", "mtime_ns", "first_seen_at", "indexed_at", "rel_raw")
NOW = "2024-01-01T00:00:00.000000Z"


def _add(db: Database, root: str, files: list[tuple[str, str, str]]) -> None:
    """(folder, name, state) files under a root, names as os.fsdecode gives them (lone surrogates
    for bytes that are not UTF-8), stored the way scan stores them."""
    rid = db.add_root(root)
    sql = f"INSERT INTO images ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    with db.transaction() as c:
        c.executemany(sql, [(rid, to_text(f), to_text(n), st, 1, 1, NOW, NOW, rel_raw(f, n)) for f, n, st in files])


def _one_by_one(db: Database, ids: list[int]) -> list[tuple[int, str, str, str]]:
    """What image_paths gave before it was one set-based query: each id looked up alone."""
    out = []
    for i in ids:
        r = db.conn.execute(
            "SELECT i.id, r.path, r.path_raw, CASE WHEN i.folder = '' THEN i.name ELSE i.folder || '/' || i.name END, "
            "i.rel_raw FROM images i JOIN roots r ON r.id = i.root_id WHERE i.id = ? AND i.state = 'indexed'",
            (i,)).fetchone()
        if r is not None:
            root, rel = from_db(r[1], r[2]), from_db(r[3], r[4])
            out.append((r[0], root + "/" + rel, root, rel))
    return out


@pytest.fixture
def odd_db(tmp_path: Path):
    fs = os.fsdecode
    d = Database(tmp_path / "index.db", create=True)
    _add(d, "/arch", [("site/cam01", "IMG_0001.JPG", "indexed"), ("site/cam01", fs(b"IMG_\xff.JPG"), "indexed"),
                      (fs(b"site/cam\xe9"), "IMG_0002.JPG", "indexed"), (fs(b"site/cam\xe9"), fs(b"IMG_\xff.JPG"), "indexed"),
                      ("", "top.jpg", "indexed"), ("site/cam01", "gone.JPG", "missing"),
                      ("site/cam01", "bad.JPG", "failed"), ("site/caf\u00e9", "\u00e9t\u00e9.JPG", "indexed")])
    _add(d, fs(b"/mnt/d\xfcsk"), [("cam", fs(b"\xe9.JPG"), "indexed"), ("", "a.JPG", "indexed")])
    yield d
    d.close()


def test_image_paths_are_the_one_by_one_lookups_byte_exact(odd_db):
    ids = [i for (i,) in odd_db.conn.execute("SELECT id FROM images ORDER BY id")]
    given = ids[::-1] + [ids[1], 10_000, ids[3]]  # out of order, repeats, an id that does not exist
    got = q.image_paths(odd_db, given)
    assert [tuple(p) for p in got] == _one_by_one(odd_db, given)
    assert len(got) == len(given) - 3  # the missing, the failed and the unknown id are left out
    on_disk = {os.fsencode(p.path) for p in got}
    assert b"/arch/site/cam\xe9/IMG_\xff.JPG" in on_disk and b"/mnt/d\xfcsk/cam/\xe9.JPG" in on_disk
    assert b"/arch/top.jpg" in on_disk and "/arch/site/caf\u00e9/\u00e9t\u00e9.JPG".encode() in on_disk
    p = next(p for p in got if p.rel_path.endswith(".JPG") and p.root.startswith("/mnt"))
    assert (p.id, p.path, p.root, p.rel_path) == tuple(p) and p.path == p.root + "/" + p.rel_path


def test_image_paths_takes_numpy_ids_and_many_chunks(odd_db, monkeypatch):
    ids = np.array([i for (i,) in odd_db.conn.execute("SELECT id FROM images ORDER BY id DESC")], np.int64)
    want = _one_by_one(odd_db, ids.tolist())
    monkeypatch.setattr(q, "_PATH_CHUNK", 3)  # several queries; the order given is kept across them
    assert [tuple(p) for p in q.image_paths(odd_db, ids)] == want
    assert [tuple(p) for p in q.image_paths(odd_db, list(ids))] == want
    assert q.image_paths(odd_db, []) == []


def test_slice_distances_are_combined():
    import importlib

    from indexer.methods import Pool

    dist = importlib.import_module("indexer.methods.distance")
    rng = np.random.default_rng(4)
    n = 3000
    h = rng.integers(0, 2**64, (n, 3), dtype=np.uint64)
    h[1::3] = h[::3][: len(h[1::3])]  # repeats: distance 0
    p = Pool(h[:, 0], h[:, 1], h[:, 2], rng.uniform(0, 255, n), np.zeros(n), rng.random(n) < 0.4, np.arange(n))
    c = dist.codes(p)
    idx = np.arange(n)
    assert dist.to_previous(c).tolist() == dist.combined(c, idx[1:], idx[:-1]).tolist()
    ref = np.maximum.accumulate(np.where(rng.random(n) < 0.3, idx, 0))
    assert dist.to_rows(c, ref).tolist() == dist.combined(c, idx, ref).tolist()
    one = dist.codes(Pool(h[:1, 0], h[:1, 1], h[:1, 2], np.zeros(1), np.zeros(1), np.zeros(1, bool), np.zeros(1)))
    assert dist.to_previous(one).tolist() == [] and dist.to_rows(one, np.zeros(1, np.int64)).tolist() == [0]


def test_burst_majority_is_the_bitwise_majority_of_each_segment():
    import importlib

    bursts = importlib.import_module("indexer.methods.bursts")
    rng = np.random.default_rng(1)
    for trial in range(6):
        cnt = rng.integers(1, 12, 400)
        cnt[::37] = rng.choice([254, 255, 256, 300], len(cnt[::37]))  # around the byte counters' limit
        heads = np.r_[0, np.cumsum(cnt)[:-1]]
        w = rng.integers(0, 2**64, int(cnt.sum()), dtype=np.uint64)
        if trial % 2:
            w[::3] = w[0]  # many equal words: counts of exactly half and half + 1
        want = [np.packbits(2 * np.unpackbits(w[h:h + n].view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
                            .sum(axis=0) > n, bitorder="little").view(np.uint64)[0] for h, n in zip(heads, cnt)]
        assert bursts._majority(w, heads, cnt).tolist() == [int(x) for x in want]


# -- kcenter: passes over the band give the picks of passes over every row ------------------------

def _kcenter_module():
    import importlib

    return importlib.import_module("indexer.methods.kcenter")


def test_band_loop_gives_the_recorded_kcenter_picks(monkeypatch):
    import json

    import select_reference as ref

    monkeypatch.setattr(_kcenter_module(), "BAND_FROM", 0)  # every pool through the band loop
    want = json.loads(Path(ref.JSON).read_text())
    got = {k: ref.digest(v) for k, v in ref.method_cases().items() if "/kcenter/" in k}
    assert got and all(got[k] == want["methods"][k] for k in got)
    got = {k: ref.digest(v) for k, v in ref.group_cases().items() if k.endswith("/kcenter")}
    assert got and all(got[k] == want["groups"][k] for k in got)


@pytest.mark.parametrize("depth,catch", [(0, 1), (2, 64), (5, 3)])
def test_band_loop_is_the_plain_loop(monkeypatch, depth, catch):
    """Clustered rows, exact repeats (ties at every level, and the all-duplicates ending), kept
    rows; the band's depth and catch-up step only change how the work is cut."""
    import importlib

    from indexer.methods import Pool

    dist = importlib.import_module("indexer.methods.distance")
    km = _kcenter_module()
    monkeypatch.setattr(km, "BAND_DEPTH", depth)
    monkeypatch.setattr(km, "CATCH_UP", catch)
    rng = np.random.default_rng(depth)
    for n, scenes, reps in ((2000, 60, 1), (1500, 40, 25), (1200, 1200, 1)):
        base = rng.integers(0, 2**64, (scenes, 3), dtype=np.uint64)
        scene = rng.integers(0, scenes, n // reps).repeat(reps)[:n]
        flips = np.left_shift(np.uint64(1), rng.integers(0, 64, (len(scene), 3)).astype(np.uint64))
        h = base[scene] ^ np.where(rng.random((len(scene), 1)) < 0.7, flips, np.uint64(0))
        h[rng.random(len(scene)) < 0.2] = h[0]  # exact repeats of one row
        p = Pool(h[:, 0], h[:, 1], h[:, 2], rng.uniform(0, 255, len(scene)).round(-1), np.zeros(len(scene)),
                 rng.random(len(scene)) < 0.3, np.arange(len(scene)))
        c = dist.codes(p)
        for count, keep in ((150, np.zeros(0, np.int64)), (400, np.array([3, 17, 900])), (len(scene), np.zeros(0, np.int64))):
            rows = np.arange(len(scene))[::2] if count == 400 else np.arange(len(scene))
            out = []
            for band_from in (10**9, 0):
                monkeypatch.setattr(km, "BAND_FROM", band_from)
                out.append(km.farthest_point(c, rows, count, keep).tolist())
            assert out[0] == out[1], (n, count)


def test_sequence_groups_of_ordered_bursts_skip_the_sort():
    """Bursts in natural order (the select cache's) take a path without sorting: same result
    as the sorting path on the same ids, shuffled ids and unknown ones still sort."""
    from indexer.methods.common import sequence_groups

    def by_sorting(seq):
        seq = np.asarray(seq, np.int64).copy()
        unknown = seq < 0
        if unknown.any():
            seq[unknown] = (seq.max() + 1 if (~unknown).any() else 0) + np.arange(int(unknown.sum()))
        _, gid = np.unique(seq, return_inverse=True)
        order = np.argsort(gid, kind="stable")
        starts = np.flatnonzero(np.r_[True, gid[order][1:] != gid[order][:-1]])
        return gid, order, starts

    rng = np.random.default_rng(5)
    ordered = np.repeat(np.sort(rng.choice(10**6, 300, replace=False)), rng.integers(1, 9, 300))
    for seq in (ordered, ordered[::-1].copy(), rng.permutation(ordered), np.where(ordered % 5 == 0, -1, ordered),
                np.zeros(7, np.int64), np.array([4]), np.full(3, -1)):
        got, want = sequence_groups(seq), by_sorting(seq)
        assert all(np.array_equal(g, w) and g.dtype == np.int64 for g, w in zip(got, want)), seq[:10]


def test_cell_costs_are_the_weighted_row_sums_of_the_distance_matrix(monkeypatch):
    """diverse's medoid costs, summed term by term, equal sum_j d(i, j) * weight[j] exactly,
    for cells of every size (one unit, the sample size) and any slicing of the cells."""
    import importlib

    dist = importlib.import_module("indexer.methods.distance")
    dv = importlib.import_module("indexer.methods.diverse")
    rng = np.random.default_rng(11)
    n = 5000
    base = rng.integers(0, 2**64, (40, 3), dtype=np.uint64)
    h = base[rng.integers(0, 40, n)] ^ np.left_shift(np.uint64(1), rng.integers(0, 64, (n, 3)).astype(np.uint64))
    sub = dist.Codes((h[:, 0].copy(), h[:, 1].copy(), h[:, 2].copy()), rng.integers(0, 48, n).astype(np.uint8),
                     np.where(rng.random(n) < 0.4, 16, 0).astype(np.uint8))
    weight = rng.integers(1, 400, n).astype(np.float64)
    sizes = np.r_[1, 128, rng.integers(1, 129, 37), 2]
    cand = np.concatenate([np.sort(rng.choice(n, s, replace=False)) for s in sizes])
    cell_of = np.repeat(np.arange(len(sizes)), sizes)
    heads = np.r_[0, np.cumsum(sizes)]
    for slice_cells in (1, 3, dv._COST_CELLS, 100):
        monkeypatch.setattr(dv, "_COST_CELLS", slice_cells)
        got = dv._cell_costs(sub, weight, cand, cell_of, heads)
        for cell in range(len(sizes)):
            pos = cand[heads[cell]:heads[cell + 1]]
            d = dist.combined(sub, pos[:, None], pos[None, :]).astype(np.float64)
            assert np.array_equal(got[heads[cell]:heads[cell + 1]], d @ weight[pos]), (slice_cells, cell)


def test_update_min_labels_exactly_the_rows_it_brings_closer():
    """The nearest-centre bookkeeping of update_min (diverse's cells) labels the rows whose
    distance drops strictly, whether none, a few, many or all of them do (each takes its own
    path), in one part or in threads."""
    import importlib

    dist = importlib.import_module("indexer.methods.distance")
    rng = np.random.default_rng(3)
    for n in (1000, dist.PARALLEL_ROWS + 5000):
        h = tuple(rng.integers(0, 2**64, n, dtype=np.uint64) for _ in range(3))
        c = dist.Codes(h, rng.integers(0, 48, n).astype(np.uint8), np.where(rng.random(n) < 0.4, 16, 0).astype(np.uint8))
        ref = c.row(7)
        d = dist.combined(c, np.arange(n), 7)
        for m0 in (np.zeros(n, np.uint8), np.full(n, 255, np.uint8),                   # none, all
                   np.where(rng.random(n) < 0.01, 255, 0).astype(np.uint8),             # a few
                   np.where(rng.random(n) < 0.4, 255, 0).astype(np.uint8),              # many
                   rng.integers(0, 256, n).astype(np.uint8)):
            m, assign = m0.copy(), np.full(n, -1, np.int32)
            dist.update_min(c, ref, m, assign, 9)
            closer = d < m0
            assert np.array_equal(assign, np.where(closer, 9, -1))
            assert np.array_equal(m, np.minimum(m0, d))
