"""indexer.selection on synthetic indexes (rows inserted straight into the schema, no images):
targets, groups, --where, sequences, the select cache, read-only queries, saved selections, stats."""
from __future__ import annotations

import os
import sqlite3
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from indexer.db import Database
from indexer.errors import QueryError
from indexer.selection import SelectionError, Target, allocate, balanced, proportional, select
from indexer.sequences import copy_time_frames, load_features, sequence_ids

COLUMNS = ("root_id", "folder", "name", "state", "size", "mtime_ns", "format", "mode", "width", "height", "dhash",
           "ahash", "phash", "brightness", "color_variance", "is_gray", "sharpness", "captured_at", "camera_model",
           "attempts", "first_seen_at", "indexed_at")
T0 = 1_714_550_400  # 2024-05-01T08:00:00Z


def iso(t: float) -> str:
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))


def add_rows(db: Database, root: str, folders: dict[str, int], *, seed: int = 0, burst: int = 4, gap: int = 3600,
             names: dict[str, list[str]] | None = None, first_seen: str = "2024-01-01T00:00:00.000000Z",
             t0: int = T0, scenes: int | None = None) -> None:
    """Camera-trap-like rows: per folder, bursts of `burst` frames 1 s apart (`gap` s between bursts);
    frames of a burst are one scene with a few bits flipped; every third scene is a gray night one."""
    rng = np.random.default_rng(seed)
    root_id = db.add_root(root)
    rows = []
    for folder, n in folders.items():
        count = scenes or max(3, n // (2 * burst) + 1)
        protos = rng.integers(-2**63, 2**63 - 1, size=(count, 3), dtype=np.int64)
        scene_of = rng.integers(0, count, size=n // burst + 1)
        file_names = names[folder] if names and folder in names else [f"IMG_{i + 1:04d}.JPG" for i in range(n)]
        for i in range(n):
            b = i // burst
            s = int(scene_of[b])
            flip = np.uint64(1) << np.uint64(int(rng.integers(0, 64)))
            h = (protos[s].view(np.uint64) ^ flip).view(np.int64)
            gray = s % 3 == 0
            t = t0 + b * gap + (i % burst)
            rows.append((root_id, folder, file_names[i], "indexed", 1000, t * 10**9, "JPEG", "L" if gray else "RGB",
                         640, 480, int(h[0]), int(h[1]), int(h[2]), 40.0 + (s % 5) * 40, 0.0 if gray else 300.0,
                         int(gray), 50.0, iso(t), "CAM" + folder[-1:], 1, first_seen, first_seen))
    sql = f"INSERT INTO images ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    with db.transaction() as c:
        c.executemany(sql, rows)


@pytest.fixture
def db(tmp_path: Path):
    d = Database(tmp_path / "index.db", create=True)
    add_rows(d, "/arch", {"site1/cam1": 40, "site1/cam2": 24, "site2/cam1": 12, "site2/cam3": 3})
    yield d
    d.close()


def paths(sel) -> list[str]:
    return sel.paths


def dump(db: Database) -> list[str]:
    return list(db.conn.iterdump())


# -- targets ---------------------------------------------------------------------------------------

def test_proportional_is_exact_at_least_one_and_capped():
    sizes = np.array([1000, 10, 1, 0, 89])
    for total in (4, 5, 17, 100, 500, 1099):
        out = proportional(sizes, total)
        assert out.sum() == total
        assert (out <= sizes).all()
        assert (out[sizes > 0] >= 1).all()
        assert out[3] == 0
    assert list(proportional(sizes, 2)) == [1, 0, 0, 0, 1]  # fewer than groups: the largest ones


def test_balanced_is_even_and_capped():
    sizes = np.array([100, 5, 40, 1])
    assert list(balanced(sizes, 40)) == [17, 5, 17, 1]
    assert balanced(sizes, 40).sum() == 40
    assert list(balanced(sizes, 2)) == [1, 0, 1, 0]
    assert list(balanced(sizes, 145)) == [99, 5, 40, 1]


def test_allocate_targets_and_fractions():
    sizes = np.array([40, 24, 12, 3])
    assert list(allocate(sizes, Target(count=10), grouped=True)) == [10, 10, 10, 3]
    assert list(allocate(sizes, Target(fraction=0.1), grouped=True)) == [4, 2, 1, 1]  # rounded, at least one
    assert allocate(sizes, Target(total=1000), grouped=True).tolist() == sizes.tolist()
    assert list(allocate(np.array([79]), Target(total=10), grouped=False)) == [10]


@pytest.mark.parametrize("bad", [dict(), dict(target=1, fraction=0.5), dict(fraction=0.0), dict(fraction=1.5),
                                 dict(target=-1), dict(target=0), dict(total=0), dict(total=0, per="folder"),
                                 dict(target=5, balance=True)])
def test_bad_targets_are_refused(db, bad):
    before = dump(db)
    with pytest.raises(SelectionError):
        select(db, **bad, save="x")
    assert dump(db) == before


def test_save_of_nothing_is_refused_and_says_why(db):
    select(db, target=1)  # the select cache is built: what follows must write nothing
    before = dump(db)
    with pytest.raises(SelectionError, match="nothing to save as 'x': no image matches --where is_gray = 7; "
                                             "the database is unchanged"):
        select(db, target=3, per="folder", where="is_gray = 7", save="x")
    assert dump(db) == before
    assert select(db, target=3, where="is_gray = 7").notes == ["no image matches --where is_gray = 7: "
                                                               "nothing to choose from"]
    select(db, fraction=1.0, save="all")
    with pytest.raises(SelectionError, match="every image is a member of --exclude-selection all"):
        select(db, target=3, exclude_selections=["all"], save="x")
    with pytest.raises(SelectionError, match="none of the given images is in the index"):
        select(db, target=3, only_ids=[10**9], save="x")


# -- exact counts, groups, determinism -----------------------------------------------------------------

@pytest.mark.parametrize("method", ["diverse", "kcenter", "buckets", "window", "random"])
def test_exact_counts_every_method(db, method):
    assert len(set(select(db, target=25, method=method).ids)) == 25
    by_folder = select(db, target=10, per="folder", method=method)
    assert {g.label: g.picked for g in by_folder.groups} == {"site1/cam1": 10, "site1/cam2": 10, "site2/cam1": 10,
                                                            "site2/cam3": 3}
    assert len(set(by_folder.ids)) == 33
    assert sorted(g.label for g in by_folder.groups) == sorted({im.group for im in by_folder.images})


def test_short_group_gets_everything_and_a_note(db):
    sel = select(db, target=10, per="folder")
    assert any("site2/cam3 has only 3 images" in n for n in sel.notes)
    assert sum(im.group == "site2/cam3" for im in sel.images) == 3
    assert len(select(db, target=500).ids) == 79


def test_fraction_total_and_balance(db):
    assert [g.picked for g in select(db, fraction=0.25, per="folder").groups] == [10, 6, 3, 1]
    prop = select(db, total=20, per="folder")
    assert sum(g.picked for g in prop.groups) == 20 and all(g.picked >= 1 for g in prop.groups)
    assert [g.picked for g in prop.groups] == [10, 6, 3, 1]
    assert [g.picked for g in select(db, total=20, per="folder", balance=True).groups] == [6, 6, 5, 3]
    assert len(select(db, total=7).ids) == 7  # without --per: like --target


def test_same_seed_same_selection_other_seed_other_selection(db):
    for method in ("diverse", "random", "window"):
        a = select(db, target=12, per="level:1", method=method, seed=3).ids
        assert a == select(db, target=12, per="level:1", method=method, seed=3).ids
    assert select(db, target=12, method="random", seed=1).ids != select(db, target=12, method="random", seed=2).ids


@pytest.mark.parametrize("per, groups", [
    ("folder", ["site1/cam1", "site1/cam2", "site2/cam1", "site2/cam3"]),
    ("level:1", ["site1", "site2"]),
    ("level1", ["site1", "site2"]),
    ("level:2", ["cam1", "cam2", "cam3"]),
    ("LEVEL 2", ["cam1", "cam2", "cam3"]),
    ("level:3", ["(none)"]),
    ("root", ["/arch"]),
    ("camera_model", ["CAM1", "CAM2", "CAM3"]),
    ("level2 || '@' || level1", ["cam1@site1", "cam1@site2", "cam2@site1", "cam3@site2"]),
    ("is_gray", ["0", "1"]),
    ("level(rel_path, 1)", ["site1", "site2"]),
])
def test_per_forms(db, per, groups):
    sel = select(db, target=2, per=per, method="random")
    assert [g.label for g in sel.groups] == groups
    assert sum(g.pool for g in sel.groups) == 79


def test_where_filters_candidates(db):
    sel = select(db, target=100, where="is_gray = 1 AND level1 = 'site1'")
    n = db.conn.execute("SELECT COUNT(*) FROM image_view WHERE is_gray = 1 AND level1 = 'site1'").fetchone()[0]
    assert 0 < len(sel.ids) == n
    assert all(p.startswith("/arch/site1/") for p in sel.paths)
    sel = select(db, target=1, per="sequence", where="hamming(dhash, dhash) = 0 AND folder = 'site2/cam1'")
    assert len(sel.ids) == 3  # 12 frames in bursts of 4


# -- order, sequences, the select cache ----------------------------------------------------------------

def test_pool_and_output_in_natural_path_order(tmp_path):
    with Database(tmp_path / "n.db", create=True) as db:
        names = {"cam10": ["IMG_10.JPG", "IMG_9.JPG", "IMG_100.JPG"], "cam2": ["b.JPG", "a.JPG"]}
        add_rows(db, "/r", {"cam10": 3, "cam2": 2}, names=names, burst=1)
        table, _ = load_features(db)
        got = [p.rel_path for p in __import__("indexer.db.select", fromlist=["x"]).image_paths(db, table.ids.tolist())]
        assert got == ["cam2/a.JPG", "cam2/b.JPG", "cam10/IMG_9.JPG", "cam10/IMG_10.JPG", "cam10/IMG_100.JPG"]
        assert [p.rsplit("/", 2)[-2] + "/" + p.rsplit("/", 1)[-1] for p in select(db, target=5).paths] == got


def test_sequence_ids_split_on_gap_and_folder():
    ids = np.array([10, 11, 12, 13, 14, 15])
    folder = np.array([0, 0, 0, 0, 1, 1])
    times = np.array([0.0, 30, 200, 230, 231, 232])
    assert sequence_ids(ids, folder, times, 60).tolist() == [10, 10, 12, 12, 14, 14]
    assert sequence_ids(ids, folder, times, 10).tolist() == [10, 11, 12, 13, 14, 14]
    assert sequence_ids(ids, folder, times, 1000).tolist() == [10, 10, 10, 10, 14, 14]
    with pytest.raises(ValueError):
        sequence_ids(ids, folder, times, -1)


def test_copy_time_frames_rule():
    folder = np.array([0] * 5 + [1] * 5 + [2] * 3 + [3] * 4 + [4] * 2)
    times = np.array([
        *[100.000, 100.004, 100.004, 100.009, 100.013],   # 0: a whole folder copied within 13 ms
        *[0.0, 1, 2, 600, 601],                           # 1: two bursts of a camera without EXIF
        *[0.0, 1.0, 2.0],                                 # 2: one burst at a camera's pace
        *[50.0, 50.0, 50.0, 50.0],                        # 3: identical mtimes, one run
        *[7.0, 7.1],                                      # 4: EXIF frames (their times are captured_at)
    ])
    mtime_only = np.r_[np.ones(17, bool), False, False]
    hit = copy_time_frames(folder, times, mtime_only, 60)
    assert hit.tolist() == [True] * 5 + [False] * 8 + [True] * 4 + [False] * 2
    assert copy_time_frames(folder, times, mtime_only, 1000)[5:10].tolist() == [False] * 5  # median step 1 s
    mixed = times.copy()
    mixed[[4]] = 5000  # one frame of folder 0 written much later: two runs, not a copy
    assert not copy_time_frames(folder, mixed, mtime_only, 60)[:5].any()
    with pytest.raises(ValueError):
        copy_time_frames(folder, times, mtime_only, -1)


def test_frames_without_exif_and_copy_time_mtimes_are_not_one_burst(tmp_path):
    """Rows without captured_at: a copied folder is not grouped, a camera's mtime bursts are."""
    with Database(tmp_path / "x.db", create=True) as db:
        add_rows(db, "/a", {"copied": 6, "cam": 8}, burst=4, gap=600)
        db.conn.execute("UPDATE images SET captured_at = NULL")
        db.conn.execute("UPDATE images SET mtime_ns = ? + id * 1000000 WHERE folder = 'copied'", (T0 * 10**9,))
        sel = select(db, target=2, per="folder", stats=True)
        seqs = dict(db.conn.execute("SELECT folder, COUNT(DISTINCT sequence) FROM image_view GROUP BY folder"))
        assert seqs == {"cam": 2, "copied": 6}
        assert sel.notes == ["6 images in 1 folder have no EXIF capture time and copy-time mtimes: "
                             "not grouped into bursts (each is its own sequence)"]
        copied = db.conn.execute("SELECT id, sequence FROM image_view WHERE folder = 'copied'").fetchall()
        assert all(i == s for i, s in copied)  # its own sequence: the id of its first (only) image
        assert select(db, target=2, per="folder").notes == sel.notes  # from the stored cache too
        assert not select(db, target=2, where="folder = 'cam'").notes  # only images in play count


def test_burst_gap_and_per_sequence(db):
    assert len(select(db, target=1, per="sequence").ids) == 10 + 6 + 3 + 1
    assert len(select(db, target=1, per="sequence", burst_gap=0.5).ids) == 79
    assert len(select(db, target=1, per="sequence", burst_gap=7200).ids) == 4
    # the stored column follows the last computation, for --where and --per as SQL
    n = db.conn.execute("SELECT COUNT(DISTINCT sequence) FROM image_view").fetchone()[0]
    assert n == 4
    select(db, target=1)
    assert db.conn.execute("SELECT COUNT(DISTINCT sequence) FROM image_view").fetchone()[0] == 20
    assert len(select(db, target=1, per="sequence + 0").ids) == 20


def test_cache_is_rebuilt_only_when_images_change(db):
    select(db, target=5)
    before = db.conn.total_changes
    select(db, target=5, per="folder", where="is_gray = 0")
    assert db.conn.total_changes == before  # a clean cache: select wrote nothing
    add_rows(db, "/arch", {"site3/cam9": 4}, seed=5)
    assert db.conn.execute("SELECT dirty FROM select_cache_state").fetchone()[0] == 1
    sel = select(db, target=1, per="level:1")
    assert [g.label for g in sel.groups] == ["site1", "site2", "site3"]
    db.conn.execute("UPDATE images SET state = 'missing' WHERE folder = 'site3/cam9'")
    assert [g.label for g in select(db, target=1, per="level:1").groups] == ["site1", "site2"]


# -- read-only user SQL ----------------------------------------------------------------------------

@pytest.mark.parametrize("where, message", [
    ("nope = 1", "no such column: nope"),
    ("1); DELETE FROM images; SELECT (1", "closes more than it opened"),
    ("is_gray = 1 -- a comment", "no comments"),
    ("id IN (SELECT 1 FROM pragma_user_version(7))", "must only read"),
    ("id IN (SELECT 1 FROM pragma_journal_mode('delete'))", "must only read"),
    ("is_gray = ", "syntax error"),
])
def test_bad_or_writing_where_is_refused_and_changes_nothing(db, where, message):
    select(db, target=3)
    before, changes = dump(db), db.conn.total_changes
    version = db.conn.execute("PRAGMA user_version").fetchone()[0]
    with pytest.raises(QueryError, match=message) as err:
        select(db, target=3, where=where)
    assert "\n" not in str(err.value)
    assert db.conn.total_changes == changes and dump(db) == before
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == version
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_bad_per_is_refused_before_the_cache_is_touched(tmp_path):
    with Database(tmp_path / "x.db", create=True) as db:
        add_rows(db, "/a", {"c": 5})
        changes = db.conn.total_changes
        with pytest.raises(QueryError, match="no such column: kind"):
            select(db, target=1, per="kind")
        assert db.conn.total_changes == changes  # not even the cache was built


# -- saved selections ------------------------------------------------------------------------------

def test_save_extend_keeps_earlier_picks_and_adds_only_new_images(db):
    first = select(db, target=3, per="folder", save="train")
    assert first.saved == "train" and first.round == 1
    with pytest.raises(SelectionError, match="exists already"):
        select(db, target=3, save="train")
    again = select(db, extend="train", target=2)
    assert set(again.ids) == set(first.ids) and again.round == 2  # nothing indexed since: nothing added
    add_rows(db, "/arch", {"site1/cam1b": 8, "site2/cam3b": 6}, seed=9, first_seen="2999-01-01T00:00:00.000000Z")
    grown = select(db, extend="train", target=2)  # per folder, inherited from the saved parameters
    new = [im for im in grown.images if im.new]
    assert set(first.ids) <= set(grown.ids)
    assert len(new) == 4 and {im.group for im in new} == {"site1/cam1b", "site2/cam3b"}
    assert all(not im.new for im in grown.images if im.id in first.ids)
    members = db.conn.execute("SELECT round, COUNT(*) FROM selection_members GROUP BY round").fetchall()
    assert [tuple(r) for r in members] == [(1, 12), (3, 4)]
    saved = db.conn.execute("SELECT params FROM selections WHERE name = 'train'").fetchone()[0]
    assert '"rounds"' in saved and '"added": 4' in saved


def test_extend_unknown_and_exclude_selection(db):
    with pytest.raises(SelectionError, match="no saved selection"):
        select(db, extend="nope", target=1)
    a = select(db, target=30, save="a", method="random")
    rest = select(db, target=100, exclude_selections=["a"])
    assert len(rest.ids) == 79 - 30 and not set(rest.ids) & set(a.ids)
    with pytest.raises(SelectionError, match="no saved selection"):
        select(db, target=1, exclude_selections=["b"])


# -- stats and quality -----------------------------------------------------------------------------

def test_stats_figures_have_the_right_shape(db):
    sel = select(db, target=5, per="level:1", stats=True)
    assert [g["group"] for g in sel.stats["groups"]] == ["site1", "site2"]
    for block in (*sel.stats["groups"], sel.stats["overall"]):
        assert block["picks"] == (10 if block is sel.stats["overall"] else 5)
        assert 1 <= block["buckets_in_pool"] <= 32
        for side in ("chosen", "random"):
            f = block[side]
            assert set(f) == {"coverage_mean", "coverage_max", "hamming_mean", "hamming_max", "redundancy",
                              "buckets_covered"}
            assert 0 <= f["hamming_mean"] <= f["hamming_max"] <= 64
            assert 0 <= f["coverage_mean"] <= f["coverage_max"] <= 255
            assert 0 <= f["redundancy"] <= 1
            assert 1 <= f["buckets_covered"] <= block["buckets_in_pool"]
    assert select(db, target=5).stats is None


def test_diverse_and_kcenter_beat_random_on_bursty_data(tmp_path):
    with Database(tmp_path / "b.db", create=True) as db:
        add_rows(db, "/b", {"cam": 240}, burst=6, seed=4, scenes=9)  # 40 bursts of 9 scenes
        chosen = {m: select(db, target=12, method=m, stats=True).stats["overall"]["chosen"]
                  for m in ("diverse", "kcenter")}
        rnd = [select(db, target=12, method="random", seed=s, stats=True).stats["overall"]["chosen"]
               for s in range(20)]
        mean = {k: float(np.mean([r[k] for r in rnd])) for k in ("coverage_mean", "coverage_max")}
        assert chosen["diverse"]["coverage_mean"] < 0.8 * mean["coverage_mean"]
        assert chosen["diverse"]["coverage_max"] < 0.8 * mean["coverage_max"]
        assert chosen["kcenter"]["coverage_max"] < 0.8 * mean["coverage_max"]


def test_diverse_takes_one_frame_per_burst_while_bursts_remain(tmp_path):
    with Database(tmp_path / "s.db", create=True) as db:
        add_rows(db, "/s", {"cam": 60}, burst=5, seed=2)  # 12 bursts
        for k in (4, 12):
            sel = select(db, target=k)
            seqs = [r[0] for r in db.conn.execute(
                f"SELECT sequence FROM image_view WHERE id IN ({','.join(map(str, sel.ids))})")]
            assert len(set(seqs)) == k


def test_select_refuses_unknown_method(db):
    with pytest.raises(SelectionError, match="unknown method"):
        select(db, target=1, method="best")


def test_read_only_database_still_selects(tmp_path):
    path = tmp_path / "ro.db"
    with Database(path, create=True) as db:
        add_rows(db, "/ro", {"c": 6})
    with Database(path) as db:
        db.conn.execute("PRAGMA query_only = ON")
        try:
            sel = select(db, target=2)
        finally:
            db.conn.execute("PRAGMA query_only = OFF")
    assert len(sel.ids) == 2 and any("read-only" in n for n in sel.notes)


@contextmanager
def read_only_db(path: Path) -> Iterator[Database]:
    """The database file and its folder made read-only. Root ignores mode bits, so as root the
    file is opened through a read-only connection instead (what a reader gets either way)."""
    modes = [(p, p.stat().st_mode) for p in (path.parent, *path.parent.glob(path.name + "*"))]
    for p, mode in modes:
        p.chmod(mode & 0o555)
    try:
        with Database(path, write=False if os.geteuid() == 0 else None) as db:
            yield db
    finally:
        for p, mode in modes:
            p.chmod(mode)


def test_read_only_file_selects_in_memory_and_notes_only_stale_sequences(tmp_path):
    path = tmp_path / "ro" / "index.db"
    path.parent.mkdir()
    with Database(path, create=True) as db:
        add_rows(db, "/ro", {"a": 8, "b": 8})  # never selected: no stored sequence yet
        before = dump(db)
    with read_only_db(path) as db:
        sel = select(db, target=2, per="folder")
        assert len(sel.ids) == 4
        assert [n for n in sel.notes if "read-only" in n and "`sequence`" in n]
    with Database(path) as db:
        assert dump(db) == before  # nothing was written
        select(db, target=2, per="folder")  # stores the cache and the sequences
        db.conn.execute("UPDATE images SET brightness = brightness + 1 WHERE name = 'IMG_0001.JPG'")  # dirty
    with read_only_db(path) as db:
        sel = select(db, target=2, per="folder")
    assert sel.notes == []  # the bursts found are the stored ones: nothing to say
    with Database(path) as db:
        assert select(db, target=2, per="folder").ids == sel.ids  # the table a writer stores


def test_select_does_not_wait_for_another_writer(tmp_path):
    path = tmp_path / "index.db"
    with Database(path, create=True) as db:
        add_rows(db, "/a", {"a": 8})
        select(db, target=2)
        add_rows(db, "/a", {"b": 8}, seed=3)  # new images: the cache is dirty, their sequence unset
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            sel = select(db, target=4, per="folder")
            assert time.monotonic() - started < 5  # the busy timeout is 10 s: it did not wait
            assert len(sel.ids) == 8
            assert [n for n in sel.notes if "being written by another process" in n and "`sequence`" in n]
            other.execute("ROLLBACK")
            assert select(db, target=4, per="folder").notes == []  # stored now
            other.execute("UPDATE images SET brightness = brightness + 1 WHERE id = 1")  # dirty, same bursts
            other.execute("BEGIN IMMEDIATE")
            sel = select(db, target=4, per="folder")
            assert sel.notes == [] and db.conn.execute("SELECT dirty FROM select_cache_state").fetchone()[0] == 1
        finally:
            other.close()


def test_view_columns(db):
    row = db.conn.execute("SELECT * FROM image_view WHERE folder = 'site2/cam3' ORDER BY name LIMIT 1").fetchone()
    assert row["path"] == "/arch/site2/cam3/IMG_0001.JPG" and row["rel_path"] == "site2/cam3/IMG_0001.JPG"
    assert (row["level1"], row["level2"], row["level3"], row["level4"]) == ("site2", "cam3", None, None)
    assert len(row["dhash"]) == 16 and isinstance(row["dhash64"], int)
    assert row["time"] == row["captured_at"] and row["class"] is None
    select(db, target=1)  # level() and hamming() are there at the latest once select ran
    assert db.conn.execute("SELECT level(folder, 2), hamming('ff', 0) FROM image_view LIMIT 1").fetchone()[:] == \
        ("cam1", 8)


# -- smartdownsample drop-ins ------------------------------------------------------------------------

def test_drop_ins_return_exact_distinct_paths_and_reuse_their_cache(tmp_path, capsys):
    from imaging import make_archive
    from indexer import sample_diverse, select_distinct

    files = [str(p) for p in make_archive(tmp_path / "imgs", cameras=2, per_camera=6, size=(96, 72))]
    cache = tmp_path / "cache" / "c.db"
    out = sample_diverse(files, 5, n_workers=1, show_progress=False, db=cache)
    assert len(out) == len(set(out)) == 5 and set(out) <= set(files)
    assert out == sorted(out, key=files.index)  # in the order given
    assert "Selected 5 of 12 images" in capsys.readouterr().out  # show_summary defaults to True
    assert sample_diverse(files, 5, n_workers=1, show_progress=False, show_summary=False, db=cache) == out
    idx = sample_diverse(files, 5, n_workers=1, show_progress=False, show_summary=False, db=cache,
                         return_indices=True)
    assert [files[i] for i in idx] == out
    with sqlite3.connect(cache) as c:  # decoded once; later calls only stat the files
        assert c.execute("SELECT n_new, n_unchanged FROM runs ORDER BY id").fetchall() == [(12, 0), (0, 12), (0, 12)]
        assert c.execute("SELECT MAX(attempts) FROM images").fetchone()[0] == 1
    distinct = select_distinct(files, 7, n_workers=1, show_progress=False, cache_dir=tmp_path / "cd")
    assert len(set(distinct)) == 7 and (tmp_path / "cd" / "indexer-cache.db").exists()
    assert select_distinct(files, 7, random_seed=1, n_workers=1, show_progress=False, method="random",
                           cache_dir=tmp_path / "cd") != select_distinct(files, 7, random_seed=2, n_workers=1,
                                                                          show_progress=False, method="random",
                                                                          cache_dir=tmp_path / "cd")


def test_drop_ins_edge_cases(tmp_path, monkeypatch):
    from imaging import make_archive
    from indexer import sample_diverse, select_distinct
    from indexer.api import ImageLoadingError

    files = [str(p) for p in make_archive(tmp_path / "imgs", cameras=1, per_camera=6, size=(96, 72))]
    cache = tmp_path / "c.db"
    assert sample_diverse(files + files[:2], 6, show_progress=False, db=cache) == files  # all: nothing indexed
    assert not cache.exists()
    assert select_distinct(files, 0, db=cache) == []
    bad = tmp_path / "imgs" / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ImageLoadingError, match="broken.jpg"):
        sample_diverse(files + [str(bad)], 3, n_workers=1, show_progress=False, show_summary=False, db=cache)
    got = sample_diverse(files + [str(bad)], 3, n_workers=1, show_progress=False, show_summary=False, db=cache,
                         image_loading_errors="skip")
    assert len(got) == 3 and str(bad) not in got
    gone = str(tmp_path / "never" / "there.jpg")
    with pytest.raises(ImageLoadingError, match="file not found"):
        sample_diverse(files + [gone], 3, n_workers=1, show_progress=False, show_summary=False, db=cache)
    assert len(select_distinct(files + [str(bad)], 6, n_workers=1, show_progress=False, db=cache)) == 6
    monkeypatch.chdir(tmp_path / "imgs")
    rel = [str(Path(f).relative_to(tmp_path / "imgs")) for f in files]
    got = select_distinct(rel, 2, n_workers=1, show_progress=False, db=cache)
    assert len(got) == 2 and set(got) <= set(rel)  # the strings as given
    with warnings.catch_warnings():  # drawn with matplotlib, else a warning (tests/test_report.py)
        warnings.simplefilter("ignore")
        assert len(sample_diverse(rel, 2, n_workers=1, show_progress=False, show_summary=False, db=cache,
                                  save_distribution=str(tmp_path / "d.png"))) == 2
    with pytest.raises(ValueError):
        sample_diverse(rel, 2, image_loading_errors="ignore", db=cache)



def test_pool_of_keeps_the_order_of_rows_given_out_of_order():
    import numpy as np

    from indexer.selection import pool_of
    from indexer.sequences import FeatureTable

    table = FeatureTable(
        ids=np.arange(3, dtype=np.int64), dhash=np.array([1, 2, 3], np.uint64),
        ahash=np.array([4, 5, 6], np.uint64), phash=np.array([7, 8, 9], np.uint64),
        brightness=np.array([10, 20, 30], np.float32), color_variance=np.zeros(3, np.float32),
        is_gray=np.zeros(3, bool), sequence=np.arange(3, dtype=np.int64), folder=np.zeros(3, np.int32),
        folders=(("/r", ""),))
    pool = pool_of(table, np.array([0, 2, 1]))  # first and last look contiguous, the middle is not
    assert pool.dhash.tolist() == [1, 3, 2]
    assert pool.brightness.tolist() == [10, 30, 20]


def test_per_group_picks_match_the_recorded_reference():
    """--per sequence (thousands of small groups) and --per folder, every method, with and without
    kept images: the same rows as recorded before the per-group path was vectorised
    (tests/select_reference.py)."""
    import json

    import select_reference as ref

    want = json.loads(Path(ref.JSON).read_text())["groups"]
    got = {k: ref.digest(v) for k, v in ref.group_cases().items()}
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k] != want[k]] == []
