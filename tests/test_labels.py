"""indexer.labels: classes from folder names and from CSV files, and how image_view.class picks one."""
from __future__ import annotations

from pathlib import Path

import pytest

from indexer.db import Database
from indexer.errors import QueryError
from indexer.labels import LabelError, import_labels, label_counts, labels_from_folders
from indexer.selection import select

NOW = "2024-01-01T00:00:00.000000Z"


def add(db: Database, root: str, files: list[str]) -> None:
    """Minimal indexed rows (features are irrelevant to labels) for root-relative paths."""
    rid = db.add_root(root)
    rows = []
    for n, rel in enumerate(files):
        folder, _, name = rel.rpartition("/")
        rows.append((rid, folder, name, 1000, n * 10**9, n, n, n, 100.0, 10.0, 0, NOW, NOW))
    with db.transaction() as c:
        c.executemany("INSERT INTO images (root_id, folder, name, state, size, mtime_ns, dhash, ahash, phash, "
                      "brightness, color_variance, is_gray, first_seen_at, indexed_at) "
                      "VALUES (?, ?, ?, 'indexed', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


FILES = ["classified/deer/a.jpg", "classified/deer/b.jpg", "classified/fox/c.jpg", "classified/d.jpg",
         "raw/cam1/e.jpg", "top.jpg"]


@pytest.fixture
def db(tmp_path: Path):
    d = Database(tmp_path / "index.db", create=True)
    add(d, "/arch", FILES)
    yield d
    d.close()


def classes(db: Database) -> dict[str, str | None]:
    return {r["rel_path"]: r["class"] for r in db.conn.execute("SELECT rel_path, class FROM image_view")}


def test_from_folders_labels_the_folder_at_a_level_and_skips_shallow_ones(db):
    s = labels_from_folders(db, 2)
    assert s.labeled == 4 and s.skipped == 2 and s.labels == {"deer": 2, "fox": 1, "cam1": 1}
    c = classes(db)
    assert c["classified/deer/a.jpg"] == "deer" and c["raw/cam1/e.jpg"] == "cam1"
    assert c["classified/d.jpg"] is None and c["top.jpg"] is None
    s = labels_from_folders(db, 1)  # again: the 'folders' labels are replaced, not added
    assert s.labeled == 5 and classes(db)["classified/deer/a.jpg"] == "classified"
    assert db.conn.execute("SELECT COUNT(*) FROM labels WHERE source = 'folders'").fetchone()[0] == 5


def test_from_folders_with_where_touches_only_those_images(db):
    labels_from_folders(db, 1)
    labels_from_folders(db, 2, where="level1 = 'classified'")
    c = classes(db)
    assert c["classified/fox/c.jpg"] == "fox" and c["raw/cam1/e.jpg"] == "raw"
    assert c["classified/d.jpg"] is None  # inside --where but too shallow: its old label is gone
    with pytest.raises(LabelError):
        labels_from_folders(db, 0)
    with pytest.raises(QueryError):
        labels_from_folders(db, 1, where="nope = 1")


def test_import_absolute_relative_and_unknown_paths(db, tmp_path):
    f = tmp_path / "labels.csv"
    f.write_text("path,label,confidence\n"
                 "/arch/classified/deer/a.jpg,roe deer,0.9\n"
                 "classified/fox/c.jpg,red fox,\n"
                 "/arch/nothere.jpg,x,\n"
                 "other/missing.jpg,y,\n"
                 ",nolabelpath,\n"
                 "top.jpg,,\n"
                 "raw/cam1/e.jpg,empty,high\n", encoding="utf-8")
    s = import_labels(db, f)
    assert s.labeled == 2 and s.rows == 7
    assert s.unknown == ["/arch/nothere.jpg", "other/missing.jpg"]
    assert len(s.bad_rows) == 3 and "line 8" in s.bad_rows[-1]
    row = db.conn.execute("SELECT label, confidence, source FROM labels l JOIN image_view v ON v.id = l.image_id "
                          "WHERE v.name = 'a.jpg'").fetchone()
    assert tuple(row) == ("roe deer", 0.9, "csv")


def test_import_without_header_and_with_root(db, tmp_path):
    f = tmp_path / "l.csv"
    f.write_text("deer/a.jpg,deer\nfox/c.jpg,fox\n", encoding="utf-8")
    assert import_labels(db, f).unknown == ["deer/a.jpg", "fox/c.jpg"]  # not relative to the scan root
    s = import_labels(db, f, root="/arch/classified")
    assert s.labeled == 2 and not s.unknown
    assert classes(db)["classified/fox/c.jpg"] == "fox"


def test_relative_paths_under_two_roots_are_ambiguous(db, tmp_path):
    add(db, "/other", ["top.jpg"])
    f = tmp_path / "l.csv"
    f.write_text("path,label\ntop.jpg,x\n/other/top.jpg,y\n", encoding="utf-8")
    s = import_labels(db, f)
    assert s.ambiguous == ["top.jpg"] and s.labeled == 1


def test_csv_beats_folders_and_class_feeds_per_class(db, tmp_path):
    labels_from_folders(db, 2)
    f = tmp_path / "l.csv"
    f.write_text("path,label\nclassified/deer/b.jpg,fox\n", encoding="utf-8")
    import_labels(db, f)
    c = classes(db)
    assert c["classified/deer/b.jpg"] == "fox" and c["classified/deer/a.jpg"] == "deer"
    src = db.conn.execute("SELECT label_source FROM image_view WHERE name = 'b.jpg'").fetchone()[0]
    assert src == "csv"
    sel = select(db, target=5, per="class", method="random")
    assert {g.label: g.pool for g in sel.groups} == {"cam1": 1, "deer": 1, "fox": 2, "(none)": 2}
    assert {(r["source"], r["label"]): r["images"] for r in label_counts(db)}[("csv", "fox")] == 1


def test_replace_and_custom_source(db, tmp_path):
    f = tmp_path / "l.csv"
    f.write_text("path,label\ntop.jpg,a\nraw/cam1/e.jpg,b\n", encoding="utf-8")
    import_labels(db, f, source="megadetector")
    f.write_text("path,label\ntop.jpg,c\n", encoding="utf-8")
    import_labels(db, f, source="megadetector", replace=True)
    rows = db.conn.execute("SELECT label FROM labels WHERE source = 'megadetector'").fetchall()
    assert [r[0] for r in rows] == ["c"]
    with pytest.raises(LabelError, match="bad label source"):
        import_labels(db, f, source="Bad Source")
    with pytest.raises(LabelError, match="cannot read"):
        import_labels(db, tmp_path / "none.csv")


def test_from_folders_refuses_what_would_only_delete_and_counts_what_it_replaced(db):
    s = labels_from_folders(db, 2)
    assert s.removed == 0
    before = [tuple(r) for r in db.conn.execute("SELECT * FROM labels ORDER BY id")]
    with pytest.raises(LabelError, match=r"^no image has a folder at level 9 \(the deepest level is 2\): "
                                         "nothing changed$"):
        labels_from_folders(db, 9)
    with pytest.raises(LabelError, match=r"no image matching --where has a folder at level 2 \(the deepest level "
                                         r"is 1\)"):
        labels_from_folders(db, 2, where="folder IN ('', 'classified')")
    with pytest.raises(LabelError, match="no image matches --where name = 'x': nothing labelled"):
        labels_from_folders(db, 1, where="name = 'x'")
    assert [tuple(r) for r in db.conn.execute("SELECT * FROM labels ORDER BY id")] == before
    assert labels_from_folders(db, 1).removed == 4  # every earlier 'folders' label, shallow ones too
    assert labels_from_folders(db, 2, where="level1 = 'classified'").removed == 4  # a, b, c, d had one


def test_from_folders_when_every_image_is_at_the_root(tmp_path):
    with Database(tmp_path / "flat.db", create=True) as d:
        add(d, "/flat", ["a.jpg", "b.jpg"])
        with pytest.raises(LabelError, match=r"level 1 \(every image is directly in its scan root\)"):
            labels_from_folders(d, 1)
        with pytest.raises(LabelError, match="the index holds no indexed image"):
            d.conn.execute("UPDATE images SET state = 'missing'")
            labels_from_folders(d, 1)


def test_import_replace_counts_what_it_removed_and_refuses_to_only_delete(db, tmp_path):
    f = tmp_path / "l.csv"
    f.write_text("path,label\ntop.jpg,a\nraw/cam1/e.jpg,b\nclassified/d.jpg,c\n", encoding="utf-8")
    assert import_labels(db, f).removed == 0
    f.write_text("path,label\ntop.jpg,z\n", encoding="utf-8")
    assert import_labels(db, f, replace=True).removed == 3
    f.write_text("path,label\nnothere.jpg,z\n", encoding="utf-8")
    with pytest.raises(LabelError, match="--replace would only delete the labels of source 'csv'; nothing changed"):
        import_labels(db, f, replace=True)
    assert [r[0] for r in db.conn.execute("SELECT label FROM labels WHERE source = 'csv'")] == ["z"]
    assert import_labels(db, f).labeled == 0  # without --replace nothing is deleted: no refusal
