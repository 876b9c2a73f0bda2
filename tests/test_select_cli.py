"""`indexer select`, `selections`, `buckets` and `labels` as users meet them, on a scanned archive of
generated camera-trap images with bursts (EXIF capture times) and day/night frames."""
from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from imaging import save_jpeg, scene
from indexer.cli import cli

# (folder, scene seed, night, EXIF time): three bursts in site1/cam01, two in site1/cam02, singles elsewhere
FRAMES = [
    *[("site1/cam01", 11, False, f"2024:05:01 10:00:0{i}") for i in range(3)],
    *[("site1/cam01", 12, False, f"2024:05:01 10:30:0{i}") for i in range(3)],
    *[("site1/cam01", 13, True, f"2024:05:01 23:10:0{i}") for i in range(2)],
    *[("site1/cam02", 21, False, f"2024:05:02 08:00:0{i}") for i in range(2)],
    *[("site1/cam02", 22, True, f"2024:05:02 22:00:0{i}") for i in range(2)],
    ("site1/cam02", 23, False, "2024:05:03 12:00:00"),
    *[("site2/cam01", 30 + i, i % 2 == 1, f"2024:05:0{i + 1} 12:00:00") for i in range(4)],
]
BURSTS = 3 + 2 + 1 + 4  # sequences at the default 60 s gap


def stored_bytes(db: Path) -> dict[str, bytes]:
    """What the database holds: the file and the WAL's committed frames. (A read-only connection
    that closes last leaves an empty -wal and the -shm index beside the file: SQLite's, not data.)"""
    files = {p.name: p.read_bytes() for p in db.parent.glob("index.db*") if not p.name.endswith("-shm")}
    return {name: data for name, data in files.items() if data or not name.endswith("-wal")}


def make_bursty_archive(root: Path, frames=FRAMES, start: int = 1) -> list[Path]:
    out, count = [], {}
    for folder, seed, night, taken in frames:
        count[folder] = count.get(folder, start - 1) + 1
        shift = 4 * sum(1 for f in frames[:frames.index((folder, seed, night, taken))] if f[1] == seed)
        img = scene(seed, (160, 120), gray=night, shift=shift)
        out.append(save_jpeg(img, root / folder / f"IMG_{count[folder]:04d}.JPG", taken=taken, make="TEST", model="T1"))
    return out


def invoke(runner: CliRunner, *args: object) -> Result:
    return runner.invoke(cli, [str(a) for a in args])


def ok(r: Result) -> Result:
    assert r.exit_code == 0, f"exit {r.exit_code}\nstdout: {r.stdout}\nstderr: {r.stderr}\n{r.exception!r}"
    return r


def error_line(r: Result, code: int = 1) -> str:
    assert r.exit_code == code, f"exit {r.exit_code}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert isinstance(r.exception, SystemExit), repr(r.exception)
    lines = r.stderr.strip().splitlines()
    if code == 1:
        assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("bursty")
    root, db = base / "archive", base / "index.db"
    make_bursty_archive(root)
    ok(invoke(CliRunner(), "scan", root, "--db", db, "--workers", "1", "--quiet"))
    return root, db


@pytest.fixture
def db(scanned, tmp_path) -> Path:
    """A private copy of the scanned index (the archive itself is shared: do not write into it)."""
    copy = tmp_path / "index.db"
    shutil.copy(scanned[1], copy)
    return copy


@pytest.fixture
def own(tmp_path, runner) -> tuple[Path, Path]:
    """A private archive and index, for tests that add images."""
    root, db = tmp_path / "archive", tmp_path / "own.db"
    make_bursty_archive(root)
    ok(invoke(runner, "scan", root, "--db", db, "--workers", "1", "--quiet"))
    return root, db


def lines(r: Result) -> list[str]:
    return r.stdout.splitlines()


def test_every_command_has_help(runner):
    for args in (["select"], ["selections"], ["buckets"], ["labels"], ["labels", "from-folders"],
                 ["labels", "import"], ["labels", "show"]):
        r = ok(invoke(runner, *args, "--help"))
        assert len(r.stdout.split("Options:")[0].strip().splitlines()) >= 2, args


def test_default_output_is_absolute_paths_one_per_line(runner, scanned, db):
    r = ok(invoke(runner, "select", "--db", db, "--target", 5))
    out = lines(r)
    assert len(out) == len(set(out)) == 5
    assert all(Path(p).is_absolute() and Path(p).is_file() and p.startswith(scanned[0].as_posix()) for p in out)
    assert "selected 5 of 17 images" in r.stderr


def test_same_seed_same_output(runner, db):
    a = lines(ok(invoke(runner, "select", "--db", db, "--target", 7, "--per", "level:1", "--seed", 4)))
    b = lines(ok(invoke(runner, "select", "--db", db, "--target", 7, "--per", "level:1", "--seed", 4)))
    assert a == b and len(a) == 7 + 4


@pytest.mark.parametrize("args, per_group", [
    (["--target", 2, "--per", "folder"], {"site1/cam01": 2, "site1/cam02": 2, "site2/cam01": 2}),
    (["--target", 3, "--per", "level:1"], {"site1": 3, "site2": 3}),
    (["--target", 1, "--per", "level:2"], {"cam01": 1, "cam02": 1}),
    (["--target", 2, "--per", "is_gray"], {"0": 2, "1": 2}),
    (["--target", 1, "--per", "substr(time, 1, 10)"],
     {"2024-05-01": 1, "2024-05-02": 1, "2024-05-03": 1, "2024-05-04": 1}),
    (["--fraction", 0.5, "--per", "folder"], {"site1/cam01": 4, "site1/cam02": 3, "site2/cam01": 2}),
    (["--total", 6, "--per", "folder"], {"site1/cam01": 3, "site1/cam02": 2, "site2/cam01": 1}),
    (["--total", 6, "--per", "folder", "--balance"], {"site1/cam01": 2, "site1/cam02": 2, "site2/cam01": 2}),
    (["--target", 4, "--where", "is_gray = 1"], {"(none)": 4}),
])
def test_groups_and_targets(runner, db, args, per_group):
    r = ok(invoke(runner, "select", "--db", db, *args, "--format", "csv"))
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    got: dict[str, int] = {}
    for row in rows:
        got[row["group"]] = got.get(row["group"], 0) + 1
    assert got == per_group


def test_where_selects_only_matching_images(runner, db):
    where = "is_gray = 1 AND level1 = 'site1'"
    out = lines(ok(invoke(runner, "select", "--db", db, "--target", 100, "--where", where)))
    assert len(out) == 4 and all("/site1/" in p for p in out)


def test_short_group_note_on_stderr(runner, db):
    r = ok(invoke(runner, "select", "--db", db, "--target", 5, "--per", "folder"))
    assert len(lines(r)) == 5 + 5 + 4
    assert "note: group site2/cam01 has only 4 images (asked for 5): all are taken" in r.stderr
    assert "note:" not in ok(invoke(runner, "select", "--db", db, "--target", 5, "--per", "folder", "-q")).stderr


@pytest.mark.parametrize("where, message", [
    ("1); DROP TABLE images; --", "bad --where expression"),
    ("id IN (SELECT 1 FROM pragma_user_version(9))", "must only read"),
    ("no_such_column > 1", "no such column: no_such_column"),
])
def test_user_sql_is_read_only_and_errors_are_one_line(runner, db, where, message):
    ok(invoke(runner, "select", "--db", db, "--target", 2))  # the select cache exists now
    with closing(sqlite3.connect(db)) as c:
        version = c.execute("PRAGMA user_version").fetchone()[0]
    before = stored_bytes(db)
    line = error_line(invoke(runner, "select", "--db", db, "--target", 2, "--where", where))
    assert message in line
    assert stored_bytes(db) == before
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 17
        assert c.execute("PRAGMA user_version").fetchone()[0] == version


def test_bad_per_expression_is_one_line(runner, db):
    assert "no such column: camera" in error_line(invoke(runner, "select", "--db", db, "--target", 1, "--per",
                                                         "camera"))
    assert "closes more than it opened" in error_line(invoke(runner, "select", "--db", db, "--target", 1, "--per",
                                                             "folder), (1"))
    assert "syntax error" in error_line(invoke(runner, "buckets", "--db", db, "--per", "folder ||"))


@pytest.mark.parametrize("args, message", [
    ([], "exactly one of"), (["--target", 1, "--fraction", 0.5], "exactly one of"),
    (["--target", 1, "--balance"], "--balance goes with --total"),
    (["--target", 1, "--copy-to", "a", "--symlink-to", "b"], "one of --copy-to"),
    (["--target", 1, "--only-new"], "--only-new goes with --extend"),
    (["--target", 1, "--method", "best"], "best"),
    (["--fraction", 1.5], "1.5"),
])
def test_usage_errors_exit_2(runner, db, args, message):
    r = invoke(runner, "select", "--db", db, *args)
    assert r.exit_code == 2 and message in r.stderr


def test_stats_on_stderr_and_in_json(runner, db):
    r = ok(invoke(runner, "select", "--db", db, "--target", 3, "--per", "level:1", "--stats"))
    assert len(lines(r)) == 6
    assert "coverage mean" in r.stderr and "redundancy" in r.stderr and "buckets" in r.stderr
    assert "all groups: pool 17, picks 6" in r.stderr
    doc = json.loads(ok(invoke(runner, "select", "--db", db, "--target", 3, "--per", "level:1", "--stats",
                               "--format", "json")).stdout)
    assert doc["count"] == 6 and [g["label"] for g in doc["groups"]] == ["site1", "site2"]
    overall = doc["stats"]["overall"]
    assert overall["pool"] == 17 and overall["picks"] == 6
    assert set(overall["chosen"]) == set(overall["random"]) == {
        "coverage_mean", "coverage_max", "hamming_mean", "hamming_max", "redundancy", "buckets_covered"}


def test_output_file(runner, db, tmp_path):
    out = tmp_path / "sel.txt"
    r = ok(invoke(runner, "select", "--db", db, "--target", 4, "-o", out))
    assert r.stdout == "" and len(out.read_text().splitlines()) == 4


def test_sequences_burst_gap_and_per_sequence(runner, db):
    assert len(lines(ok(invoke(runner, "select", "--db", db, "--target", 1, "--per", "sequence")))) == BURSTS
    hour = lines(ok(invoke(runner, "select", "--db", db, "--target", 1, "--per", "sequence", "--burst-gap", 3600)))
    assert len(hour) == 2 + 2 + 1 + 4  # the two morning bursts of cam01 are 30 minutes apart
    with sqlite3.connect(db) as c:  # the stored column follows the last --burst-gap
        assert c.execute("SELECT COUNT(DISTINCT sequence) FROM image_view").fetchone()[0] == 9
    r = ok(invoke(runner, "select", "--db", db, "--target", 10, "--where", "sequence IN (SELECT sequence FROM "
                  "image_view GROUP BY sequence HAVING COUNT(*) = 3)"))
    assert len(lines(r)) == 6


def test_diverse_takes_one_frame_of_each_burst_first(runner, db):
    r = ok(invoke(runner, "select", "--db", db, "--target", 3, "--per", "folder", "--where", "level1 = 'site1'",
                  "--format", "json"))
    with sqlite3.connect(db) as c:
        for folder, n in (("site1/cam01", 3), ("site1/cam02", 3)):
            ids = [im["id"] for im in json.loads(r.stdout)["images"] if im["group"] == folder]
            seqs = c.execute(f"SELECT COUNT(DISTINCT sequence) FROM image_view WHERE id IN ({','.join(map(str, ids))})")
            assert seqs.fetchone()[0] == n


def test_buckets_text_and_json(runner, db):
    r = ok(invoke(runner, "buckets", "--db", db, "--per", "level:1"))
    assert r.stdout.startswith("site1: 13 images in ")
    assert "  gray / " in r.stdout and "  colour / " in r.stdout
    doc = json.loads(ok(invoke(runner, "buckets", "--db", db, "--json", "--where", "is_gray = 0")).stdout)
    assert len(doc) == 1 and doc[0]["group"] == "(none)" and doc[0]["images"] == 11
    assert sum(b["count"] for b in doc[0]["buckets"]) == 11
    assert all(0 <= b["key"] < 32 and b["meaning"].startswith("colour / ") for b in doc[0]["buckets"])


def flash_frame(seed: int, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A white-flash night frame: a gray scene with one small coloured patch (6% of the frame).
    Colour for is_gray (over 1% of the pixels have channels far apart), but its mean per-pixel
    channel variance is far under smartdownsample's 100: the old colour rule called it gray."""
    rgb = np.asarray(scene(seed, size, gray=True).convert("RGB")).astype(np.int16)
    w, h = size
    patch = rgb[h // 3:h // 3 + h // 5, w // 3:w // 3 + w // 3]
    patch[..., 0] += 40
    patch[..., 2] -= 40
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def test_bucket_colour_bit_agrees_with_is_gray(runner, tmp_path):
    root, db = tmp_path / "archive", tmp_path / "flash.db"
    for i in range(4):
        save_jpeg(flash_frame(40 + i), root / "cam" / f"FLASH_{i}.JPG", quality=95)
        save_jpeg(scene(50 + i, (160, 120), gray=True), root / "cam" / f"IR_{i}.JPG")
        save_jpeg(scene(60 + i, (160, 120)), root / "cam" / f"DAY_{i}.JPG")
    ok(invoke(runner, "scan", root, "--db", db, "--workers", 1, "--quiet"))
    with sqlite3.connect(db) as c:
        rows = dict(c.execute("SELECT name, is_gray FROM images"))
        flash_cv = [v for n, v in c.execute("SELECT name, color_variance FROM images") if n.startswith("FLASH")]
    assert all(rows[f"FLASH_{i}.JPG"] == 0 and rows[f"IR_{i}.JPG"] == 1 for i in range(4))
    assert max(flash_cv) < 100  # what smartdownsample's rule (and ours before) called gray
    keys = {}
    for where, meaning in (("is_gray = 1", "gray / "), ("is_gray = 0", "colour / "), ("name LIKE 'FLASH%'", "colour / ")):
        doc = json.loads(ok(invoke(runner, "buckets", "--db", db, "--json", "--where", where)).stdout)
        assert all(b["meaning"].startswith(meaning) for b in doc[0]["buckets"]), (where, doc)
        keys[where] = {b["key"] for b in doc[0]["buckets"]}
    # select's buckets method and its --stats figures use the same keys
    sel = json.loads(ok(invoke(runner, "select", "--db", db, "--target", 2, "--method", "buckets", "--stats",
                               "--where", "is_gray = 0", "--format", "json")).stdout)
    assert sel["stats"]["groups"][0]["buckets_in_pool"] == len(keys["is_gray = 0"])


def test_save_list_extend_exclude_delete(runner, own, tmp_path):
    root, db = own
    first = lines(ok(invoke(runner, "select", "--db", db, "--target", 2, "--per", "folder", "--save", "train")))
    assert len(first) == 6
    assert "a selection named 'train' exists already" in error_line(
        invoke(runner, "select", "--db", db, "--target", 1, "--save", "train"))
    listed = ok(invoke(runner, "selections", "--db", db)).stdout
    assert listed.startswith('train: 6 images (6 members), rounds 1, diverse seed 0, --target 2 --per "folder"; ')
    assert sorted(lines(ok(invoke(runner, "selections", "--db", db, "--paths", "train")))) == sorted(first)
    # the archive grows: a new camera and more frames from an old one
    new = make_bursty_archive(root, [("site3/cam01", 41, False, "2024:06:01 10:00:00"),
                                     ("site3/cam01", 42, True, "2024:06:01 22:00:00"),
                                     ("site1/cam02", 43, False, "2024:06:02 10:00:00")], start=50)
    ok(invoke(runner, "scan", root, "--db", db, "--workers", "1", "--quiet"))
    r = ok(invoke(runner, "select", "--db", db, "--extend", "train", "--target", 1))
    grown = lines(r)
    assert set(first) <= set(grown) and len(grown) == 6 + 2  # one new image per folder with new images
    assert set(grown) - set(first) <= {p.as_posix() for p in new}
    assert "kept 6 from 'train'" in r.stderr and "round 2" in r.stderr
    again = lines(ok(invoke(runner, "select", "--db", db, "--extend", "train", "--target", 1, "--only-new")))
    assert again == []  # nothing indexed since round 2: the image left out then is not offered again
    later = make_bursty_archive(root, [("site3/cam01", 44, False, "2024:06:03 10:00:00")], start=60)
    ok(invoke(runner, "scan", root, "--db", db, "--workers", "1", "--quiet"))
    only = lines(ok(invoke(runner, "select", "--db", db, "--extend", "train", "--target", 1, "--only-new")))
    assert only == [later[0].as_posix()]
    doc = json.loads(ok(invoke(runner, "selections", "--db", db, "--json")).stdout)
    assert doc[0]["rounds"] == 4 and doc[0]["members"] == 9
    rest = lines(ok(invoke(runner, "select", "--db", db, "--target", 100, "--exclude-selection", "train")))
    assert len(rest) == 21 - 9 and not set(rest) & set(grown + only)
    ok(invoke(runner, "selections", "--db", db, "--delete", "train"))
    gone = invoke(runner, "selections", "--db", db, "--paths", "train")
    assert "no saved selection named 'train'" in error_line(gone)


@pytest.mark.parametrize("flag", ["--copy-to", "--link-to", "--symlink-to"])
def test_copy_link_symlink_rerun_and_refuse_to_overwrite(runner, scanned, db, tmp_path, flag):
    dest = tmp_path / "subset"
    args = ["select", "--db", db, "--target", 2, "--per", "folder", flag, dest]
    picked = lines(ok(invoke(runner, *args)))
    made = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.JPG"))
    assert made == sorted(Path(p).relative_to(scanned[0]).as_posix() for p in picked)
    r = ok(invoke(runner, *args))
    assert "0 files into" in r.stderr and "(6 already there)" in r.stderr
    victim = dest / made[0]
    victim.unlink()
    victim.write_bytes(b"not the image")
    r = invoke(runner, *args)
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit)
    assert r.stderr.strip().splitlines()[-1].startswith("Error: 1 files not written: a different file is already there")
    assert victim.read_bytes() == b"not the image"


def test_labels_from_folders_and_per_class(runner, db):
    r = ok(invoke(runner, "labels", "from-folders", "--db", db, "--level", 2))
    assert "labelled 17 images: cam01 12, cam02 5" in r.stderr
    got = lines(ok(invoke(runner, "select", "--db", db, "--target", 1, "--per", "class")))
    assert len(got) == 2
    assert ok(invoke(runner, "labels", "show", "--db", db)).stdout.splitlines() == ["folders\tcam01\t12",
                                                                                   "folders\tcam02\t5"]


def labels_table(db: Path) -> list[tuple]:
    with closing(sqlite3.connect(db)) as c:
        return c.execute("SELECT image_id, label, source, confidence, created_at FROM labels ORDER BY 1, 3").fetchall()


def test_labels_from_folders_refuses_a_level_no_image_has_and_says_what_it_replaced(runner, db):
    ok(invoke(runner, "labels", "from-folders", "--db", db, "--level", 2))
    before = labels_table(db)
    assert len(before) == 17
    line = error_line(invoke(runner, "labels", "from-folders", "--db", db, "--level", 9))
    assert line == "Error: no image has a folder at level 9 (the deepest level is 2): nothing changed"
    line = error_line(invoke(runner, "labels", "from-folders", "--db", db, "--level", 1, "--where", "name = 'x'"))
    assert line == "Error: no image matches --where name = 'x': nothing labelled"
    assert labels_table(db) == before
    r = ok(invoke(runner, "labels", "from-folders", "--db", db, "--level", 1))
    assert "labelled 17 images: site1 13, site2 4" in r.stderr
    assert "replaced 17 labels of source 'folders'" in r.stderr


def test_labels_import_replace_says_what_it_removed_and_refuses_to_only_delete(runner, scanned, db, tmp_path):
    f = tmp_path / "labels.csv"
    f.write_text("path,label\nsite1/cam01/IMG_0001.JPG,deer\nsite1/cam01/IMG_0002.JPG,deer\n", encoding="utf-8")
    r = ok(invoke(runner, "labels", "import", f, "--db", db))
    assert "removed" not in r.stderr
    f.write_text("path,label\nsite1/cam01/IMG_0003.JPG,fox\n", encoding="utf-8")
    r = ok(invoke(runner, "labels", "import", f, "--db", db, "--replace"))
    assert "removed 2 labels of source 'csv' first (--replace)" in r.stderr
    assert "labelled 1 images: fox 1" in r.stderr
    before = labels_table(db)
    f.write_text("path,label\nsite9/nothing.JPG,bear\n", encoding="utf-8")
    line = error_line(invoke(runner, "labels", "import", f, "--db", db, "--replace"))
    assert "no row of" in line and "--replace would only delete the labels of source 'csv'" in line
    assert labels_table(db) == before


@pytest.mark.parametrize("args", [["--target", 0], ["--total", 0], ["--total", 0, "--per", "folder", "--balance"]])
def test_zero_target_is_a_usage_error(runner, db, args):
    r = invoke(runner, "select", "--db", db, *args, "--save", "empty")
    assert r.exit_code == 2 and "0 is not in the range x>=1" in r.stderr
    with closing(sqlite3.connect(db)) as c:
        assert c.execute("SELECT COUNT(*) FROM selections").fetchone()[0] == 0


@pytest.mark.parametrize("args, why", [
    (["--where", "is_gray = 5"], "no image matches --where is_gray = 5"),
    (["--per", "folder", "--where", "folder = 'nope'"], "no image matches --where folder = 'nope'"),
    (["--exclude-selection", "all"], "every image is a member of --exclude-selection all"),
])
def test_save_of_an_empty_selection_is_refused_and_changes_nothing(runner, db, args, why):
    ok(invoke(runner, "select", "--db", db, "--fraction", 1, "--save", "all", "-q"))
    r = ok(invoke(runner, "select", "--db", db, "--target", 2, *args))  # without --save: a note says why
    assert r.stdout == "" and f"note: {why}: nothing to choose from" in r.stderr
    before = stored_bytes(db)
    line = error_line(invoke(runner, "select", "--db", db, "--target", 2, *args, "--save", "empty"))
    assert line == f"Error: nothing to save as 'empty': {why}; the database is unchanged"
    assert stored_bytes(db) == before
    assert [s["name"] for s in json.loads(ok(invoke(runner, "selections", "--db", db, "--json")).stdout)] == ["all"]


def test_extend_sums_up_the_groups_without_new_images_in_one_line(runner, own):
    root, db = own
    ok(invoke(runner, "select", "--db", db, "--target", 1, "--per", "sequence", "--save", "bursts", "-q"))
    r = ok(invoke(runner, "select", "--db", db, "--extend", "bursts"))
    assert "note: no image was indexed since 'bursts' was last saved or extended: nothing to choose from" in r.stderr
    make_bursty_archive(root, [("site3/cam01", 41, False, "2024:06:01 10:00:00")], start=50)
    ok(invoke(runner, "scan", root, "--db", db, "--workers", "1", "--quiet"))
    r = ok(invoke(runner, "select", "--db", db, "--extend", "bursts"))
    notes = [line for line in r.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and notes[0].startswith(f"note: {BURSTS} groups have no new candidate images: "
                                                   "nothing taken there (")
    assert notes[0].endswith(f" and {BURSTS - 3} more)") and notes[0].count(",") == 2
    assert "selected 1 of 1 images" in r.stderr


def test_labels_import_reports_unknown_paths(runner, scanned, db, tmp_path):
    f = tmp_path / "labels.csv"
    f.write_text("path,label\n"
                 f"{scanned[0].as_posix()}/site1/cam01/IMG_0001.JPG,deer\n"
                 "site1/cam01/IMG_0002.JPG,deer\n"
                 "site2/cam01/IMG_0001.JPG,fox\n"
                 "site9/nothing.JPG,bear\n", encoding="utf-8")
    r = ok(invoke(runner, "labels", "import", f, "--db", db))
    assert "labelled 3 images: deer 2, fox 1" in r.stderr
    assert "warning: 1 paths of" in r.stderr and "site9/nothing.JPG" in r.stderr
    doc = json.loads(ok(invoke(runner, "select", "--db", db, "--target", 5, "--per", "class", "--where",
                               "class IS NOT NULL", "--format", "json")).stdout)
    assert {g["label"]: g["picked"] for g in doc["groups"]} == {"deer": 2, "fox": 1}
