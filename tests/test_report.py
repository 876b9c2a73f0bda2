"""`indexer report` as users meet it: the page is parsed back (stdlib html.parser) and checked
against the database: counts by state, groups and buckets, grids capped at 100, kept marks,
failed files, verification pairs; hostile file names, missing sources, the thumbnail cache,
one-line errors, and the PNG charts (skipped without matplotlib)."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from imaging import make_archive, save_jpeg, scene
from indexer.cli import cli
from indexer.report.records import ReportData

HOSTILE_DIR = 'cam<i>"03"&amp;'
HOSTILE_NAME = "evil <script>alert('x') \"q\" & b\nline2.JPG"  # no '/': that would make a folder
BURST = 130  # near-identical frames in one folder: a bucket over the grid limit of 100


def invoke(runner: CliRunner, *args: object) -> Result:
    return runner.invoke(cli, [str(a) for a in args])


def ok(r: Result) -> Result:
    assert r.exit_code == 0, f"exit {r.exit_code}\nstdout: {r.stdout}\nstderr: {r.stderr}\n{r.exception!r}"
    return r


def one_line_error(r: Result, contains: str) -> str:
    assert r.exit_code == 1, f"exit {r.exit_code}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert isinstance(r.exception, SystemExit), repr(r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    assert contains.lower() in lines[0].lower(), lines[0]
    return lines[0]


def build_archive(root: Path, *, burst: int = 0) -> None:
    """12 generated frames (2 cameras, day and night), a hostile name in a hostile folder, an
    odd-sized frame, a corrupt file, and optionally a long burst of one scene."""
    make_archive(root)
    save_jpeg(scene(77, (320, 240)), root / "site2" / HOSTILE_DIR / HOSTILE_NAME, taken="2024:05:03 12:00:00")
    save_jpeg(scene(78, (320, 240), gray=True), root / "site2" / HOSTILE_DIR / "IMG_0002.JPG",
              taken="2024:05:03 23:00:00")
    save_jpeg(scene(79, (200, 100)), root / "site1" / "cam01" / "IMG_0099.JPG", taken="2024:05:01 18:00:00")
    (root / "site1" / "cam01" / "BROKEN.JPG").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    for i in range(burst):
        save_jpeg(scene(5, (160, 120), shift=i % 3), root / "site3" / "burst" / f"IMG_{i + 1:04d}.JPG",
                  taken=f"2024:05:05 12:{i // 60:02d}:{i % 60:02d}")


def scan(runner: CliRunner, root: Path, db: Path) -> None:
    ok(invoke(runner, "scan", root, "--db", db, "--workers", "1", "--quiet"))


def report(runner: CliRunner, db: Path, out: Path, *args: object) -> Result:
    return ok(invoke(runner, "report", "--db", db, "--out", out, "--workers", "1", *args))


# -- reading the page back -------------------------------------------------------------------------

class Page(HTMLParser):
    """Grids (bucket -> figures, each with its caption's name and tooltip; the classes of the
    boxes around the grid), pairs, outlier rows, failed rows, tables by id, group sections, text."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.grids: list[dict] = []
        self.pairs: list[dict] = []
        self.outliers: dict[str, list[dict]] = {}
        self.failed: list[list[str]] = []
        self.groups: list[str] = []
        self.states = ""
        self.selection_kept: int | None = None
        self.text: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.tiny_rows: list[list[str]] = []  # groups drawn side by side, row by row
        self.packs = 0  # grids of small buckets seen (each grid's "pack" says which one holds it)
        self.charts: list[str] = []  # groups drawn with a bar chart of their buckets
        self._boxes: list[list[str]] = []  # classes of the open div, details and section elements
        self._table: list[list[str]] | None = None
        self._divs: list[object] = []
        self._figure: dict | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = a.get("class", "").split()
        if tag in ("div", "details", "section"):
            self._boxes.append(classes)
        if tag == "div" and "tinies" in classes:
            self.tiny_rows.append([])
        if tag == "div" and "pack" in classes:
            self.packs += 1
        if tag == "section" and "tiny" in classes:
            self.tiny_rows[-1].append(a["data-group"])
        if tag == "svg" and "chart" in classes and any("group" in box for box in self._boxes):
            self.charts.append(self.groups[-1])
        if tag == "table" and "id" in a:
            self._table = self.tables.setdefault(a["id"], [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        if tag == "div":
            holder: object = None
            if "grid" in classes:
                holder = {"group": a["data-group"], "bucket": int(a["data-bucket"]), "size": int(a["data-size"]),
                          "figures": [], "within": {c for box in self._boxes[:-1] for c in box}}
                holder["pack"] = self.packs if "pack" in holder["within"] else None
                self.grids.append(holder)
            elif "pair" in classes:
                holder = {"excluded": int(a["data-excluded"]), "nearest": int(a["data-nearest"]),
                          "distance": int(a["data-distance"]), "figures": []}
                self.pairs.append(holder)
            elif "data-outliers" in a:
                holder = {"figures": []}
                self.outliers[a["data-outliers"]] = holder["figures"]
            elif "data-states" in a:
                self.states = a["data-states"]
            self._divs.append(holder)
        elif tag == "figure":
            self._figure = {"id": int(a["data-id"]), "kept": a.get("data-kept"), "classes": classes, "src": None}
            for holder in reversed(self._divs):
                if isinstance(holder, dict):
                    holder["figures"].append(self._figure)
                    break
        elif tag == "img" and self._figure is not None:
            self._figure["src"] = a["src"]
        elif tag == "figcaption" and self._figure is not None:
            self._figure["tip"] = a.get("title", "")
            self._caption = []
        elif tag == "br":
            self._end_caption()
        elif tag == "section" and "group" in classes:
            self.groups.append(a["data-group"])
        elif tag == "tr" and "failed" in classes:
            self._row = []
        elif tag == "td" and (self._row is not None or self._table is not None):
            self._cell = []
        elif tag == "p" and "data-kept" in a:
            self.selection_kept = int(a["data-kept"])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("div", "details", "section") and self._boxes:
            self._boxes.pop()
        if tag == "table":
            self._table = None
        if tag == "div" and self._divs:
            self._divs.pop()
        elif tag == "figure":
            self._figure = None
        elif tag == "figcaption":
            self._end_caption()
        elif tag == "td" and self._cell is not None:
            if self._row is not None:
                self._row.append("".join(self._cell))
            if self._table:
                self._table[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.failed.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._caption is not None:
            self._caption.append(data)

    def _end_caption(self) -> None:
        """A figure's caption is its name: the text of the figcaption up to the first <br>."""
        if self._figure is not None and self._caption is not None:
            self._figure["caption"] = "".join(self._caption)
        self._caption = None

    def grid_figures(self) -> list[dict]:
        return [f for g in self.grids for f in g["figures"]]


def read_page(out: Path) -> tuple[str, Page]:
    source = (out / "index.html").read_text(encoding="utf-8")
    return source, Page(source)


# -- the database, read directly -------------------------------------------------------------------

def db_rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def member_ids(db: Path, name: str) -> set[int]:
    return {r[0] for r in db_rows(db, "SELECT m.image_id FROM selection_members m JOIN selections s "
                                      "ON s.id = m.selection_id WHERE s.name = ?", (name,))}


def buckets_json(runner: CliRunner, db: Path, *args: object) -> list[dict]:
    return json.loads(ok(invoke(runner, "buckets", "--db", db, "--json", *args)).stdout)


# -- fixtures --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> tuple[Path, Path]:
    """A scanned archive with a saved selection `kept` (2 per level-2 folder); read-only for tests."""
    base = tmp_path_factory.mktemp("report")
    root, db = base / "archive", base / "index.db"
    build_archive(root, burst=BURST)
    runner = CliRunner()
    scan(runner, root, db)
    ok(invoke(runner, "select", "--db", db, "--target", 2, "--per", "level:2", "--save", "kept"))
    return root, db


@pytest.fixture(scope="module")
def saved_report(scanned, tmp_path_factory) -> tuple[Path, Result]:
    """The report of selection `kept`, made once with two worker processes."""
    root, db = scanned
    out = tmp_path_factory.mktemp("out") / "report"
    r = ok(invoke(CliRunner(), "report", "--db", db, "--out", out, "--selection", "kept", "--workers", 2))
    return out, r


@pytest.fixture
def small(tmp_path: Path, runner: CliRunner) -> tuple[Path, Path]:
    """A fresh small archive and index a test may change."""
    root, db = tmp_path / "archive", tmp_path / "index.db"
    build_archive(root)
    scan(runner, root, db)
    return root, db


# -- content against the database ------------------------------------------------------------------

def test_prints_the_page_path_and_a_summary(saved_report):
    out, r = saved_report
    assert r.stdout.strip() == str(out / "index.html")
    assert "report:" in r.stderr and "thumbnails" in r.stderr


def test_states_match_the_database(scanned, saved_report):
    _, db = scanned
    out, _ = saved_report
    _, page = read_page(out)
    states = dict(kv.split("=") for kv in page.states.split())
    expected = {s: 0 for s in ("indexed", "failed", "missing")}
    expected.update({s: n for s, n in db_rows(db, "SELECT state, COUNT(*) FROM images GROUP BY state")})
    assert {k: int(v) for k, v in states.items()} == expected
    assert expected["failed"] == 1


def test_groups_and_buckets_match_the_bucket_table(scanned, saved_report):
    _, db = scanned
    out, _ = saved_report
    _, page = read_page(out)
    table = buckets_json(CliRunner(), db, "--per", "level:2")
    assert page.groups == [g["group"] for g in table]  # natural order, every group
    want = {(g["group"], b["key"]): b["count"] for g in table for b in g["buckets"]}
    got = {(g["group"], g["bucket"]): g["size"] for g in page.grids}
    assert got == want
    for g in page.grids:
        assert len(g["figures"]) == min(g["size"], 100)
        ids = [f["id"] for f in g["figures"]]
        assert len(set(ids)) == len(ids)
    assert max(g["size"] for g in page.grids) > 100, "the burst should fill one bucket past the grid limit"


def test_grids_are_in_natural_order(scanned, saved_report):
    _, db = scanned
    out, _ = saved_report
    _, page = read_page(out)
    paths = {i: f"{f}/{n}" for i, f, n in db_rows(db, "SELECT id, folder, name FROM images")}
    for g in page.grids:
        names = [paths[f["id"]] for f in g["figures"]]
        from natsort import natsorted, ns
        assert names == natsorted(names, alg=ns.PATH | ns.IGNORECASE)


def test_kept_marks_are_the_selection_members(scanned, saved_report):
    _, db = scanned
    out, _ = saved_report
    _, page = read_page(out)
    members = member_ids(db, "kept")
    figures = page.grid_figures()
    assert {f["id"] for f in figures if f["kept"] == "1"} == members
    assert all(f["kept"] in ("0", "1") for f in figures)
    assert all(("k" in f["classes"]) == (f["kept"] == "1") for f in figures)
    assert page.selection_kept == len(members)


def test_failed_files_are_listed_with_their_reasons(scanned, saved_report):
    _, db = scanned
    out, _ = saved_report
    _, page = read_page(out)
    want = db_rows(db, "SELECT r.path || '/' || i.folder || '/' || i.name, i.error FROM images i "
                       "JOIN roots r ON r.id = i.root_id WHERE i.state = 'failed'")
    assert len(want) == 1
    assert sorted((row[0], row[1]) for row in page.failed) == sorted(want)
    assert "BROKEN.JPG" in page.failed[0][0] and page.failed[0][1]


def test_verification_pairs_show_the_nearest_kept_image(scanned, saved_report):
    from indexer.methods import Pool, pairwise

    _, db = scanned
    out, _ = saved_report
    _, page = read_page(out)
    members = member_ids(db, "kept")
    assert 0 < len(page.pairs) <= 24
    rows = {r[0]: r for r in db_rows(db, "SELECT id, dhash, ahash, phash, brightness, color_variance, is_gray, "
                                         "folder FROM images WHERE state = 'indexed'")}

    def level2(i: int) -> str:
        return rows[i][7].split("/")[1]

    for p in page.pairs:
        assert p["excluded"] not in members and p["nearest"] in members
        assert level2(p["excluded"]) == level2(p["nearest"])
        assert [f["id"] for f in p["figures"]] == [p["excluded"], p["nearest"]]
        for f in p["figures"]:
            assert (out / f["src"]).is_file()
        kept = sorted(m for m in members if level2(m) == level2(p["excluded"]))
        ids = [p["excluded"], *kept]
        pool = Pool(*(np.array([rows[i][c] for i in ids]) for c in range(1, 7)), sequence=np.full(len(ids), -1))
        d = pairwise(pool, np.array([0]), np.arange(1, len(ids)))[0]
        assert p["distance"] == int(d.min())
        assert p["distance"] == int(d[kept.index(p["nearest"])])


def test_every_thumbnail_exists_and_outliers_are_listed(saved_report):
    out, _ = saved_report
    source, page = read_page(out)
    for f in page.grid_figures():
        assert f["src"].startswith("thumbs/") and (out / f["src"]).is_file()
    assert len(page.outliers["darkest"]) == 10 and len(page.outliers["blurriest"]) == 10
    assert page.outliers["size-200x100"], "the 200x100 frame is an odd size"
    assert "<script" not in source.lower()  # the page needs no script at all


def test_hostile_names_are_escaped(scanned, saved_report):
    out, _ = saved_report
    source, page = read_page(out)
    assert "<script" not in source.lower() and 'cam<i>"' not in source
    shown = HOSTILE_NAME.replace("\n", "\u240a")  # the file name, newline made visible
    hostile = [f for f in page.grid_figures() if shown in f["tip"]]  # whole in the tooltip
    assert len(hostile) == 1 and hostile[0]["caption"].endswith("line2.JPG")  # its end under the thumbnail
    assert HOSTILE_DIR in page.groups  # the folder as a group label, round-tripped through an attribute
    assert "&lt;script&gt;" in source and "&quot;q&quot;" in source


def test_thumbnails_use_the_reduced_decode(tmp_path, monkeypatch):
    import indexer.features
    from indexer.report.thumbs import make_thumbnail

    src = save_jpeg(scene(3, (1600, 1200)), tmp_path / "big.JPG")
    seen = []
    real = indexer.features.reduce_decode

    def spy(im):
        out = real(im)
        seen.append(out.size)
        return out

    monkeypatch.setattr(indexer.features, "reduce_decode", spy)
    make_thumbnail(str(src), str(tmp_path / "t.jpg"), 160)
    assert seen == [(200, 150)]  # decoded at 1/8, never at 1600x1200
    from PIL import Image
    with Image.open(tmp_path / "t.jpg") as t:
        assert max(t.size) == 160


# -- selections made now, and none --------------------------------------------------------------------

def test_report_without_selection_has_no_marks_or_pairs(scanned, tmp_path, runner):
    _, db = scanned
    report(runner, db, tmp_path / "r", "--per", "level:2", "--where", "is_gray = 0")
    source, page = read_page(tmp_path / "r")
    assert page.grids and not page.pairs and page.selection_kept is None
    assert all(f["kept"] is None for f in page.grid_figures())
    n = db_rows(db, "SELECT COUNT(*) FROM images WHERE state = 'indexed' AND is_gray = 0")[0][0]
    assert sum(g["size"] for g in page.grids) == n


def test_selection_made_now_matches_indexer_select(scanned, tmp_path, runner):
    _, db = scanned
    args = ("--per", "level:1", "--target", 3, "--method", "kcenter", "--seed", 5)
    report(runner, db, tmp_path / "r", *args)
    _, page = read_page(tmp_path / "r")
    chosen = json.loads(ok(invoke(runner, "select", "--db", db, *args, "--format", "json")).stdout)
    assert {f["id"] for f in page.grid_figures() if f["kept"] == "1"} == {im["id"] for im in chosen["images"]}
    assert page.groups == [g["label"] for g in chosen["groups"]]


# -- files on disk ---------------------------------------------------------------------------------

def test_missing_and_unreadable_sources_get_placeholders(small, tmp_path, runner):
    root, db = small
    gone = root / "site1" / "cam01" / "IMG_0001.JPG"
    gone.unlink()
    bad = root / "site2" / "cam02" / "IMG_0002.JPG"
    bad.write_bytes(b"\xff\xd8\xff\xe0 overwritten with junk after the scan")
    r = report(runner, db, tmp_path / "r", "--per", "level:2")
    assert "2 placeholders" in r.stderr
    _, page = read_page(tmp_path / "r")
    ids = {n: i for i, n in db_rows(db, "SELECT id, folder || '/' || name FROM images")}
    by_id = {f["id"]: f for f in page.grid_figures()}
    assert by_id[ids["site1/cam01/IMG_0001.JPG"]]["src"] == "thumbs/missing.svg"
    assert by_id[ids["site2/cam02/IMG_0002.JPG"]]["src"] == "thumbs/unreadable.svg"
    assert "ph" in by_id[ids["site1/cam01/IMG_0001.JPG"]]["classes"]
    assert (tmp_path / "r" / "thumbs" / "missing.svg").is_file()
    assert "file not found" in "".join(page.text)


def test_rerun_reuses_thumbnails_and_a_changed_file_gets_a_new_one(small, tmp_path, runner):
    root, db = small
    out = tmp_path / "r"
    report(runner, db, out)
    thumbs = {p.name: p.stat().st_mtime_ns for p in (out / "thumbs").glob("*.jpg")}
    assert len(thumbs) == 15
    r = report(runner, db, out)
    assert "0 made, 15 cached" in r.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (out / "thumbs").glob("*.jpg")} == thumbs
    changed = root / "site1" / "cam01" / "IMG_0003.JPG"
    save_jpeg(scene(999, (320, 240)), changed)
    os.utime(changed, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    r = report(runner, db, out)
    assert "1 made, 14 cached" in r.stderr
    now = {p.name for p in (out / "thumbs").glob("*.jpg")}
    assert len(now) == 15 and len(now - set(thumbs)) == 1
    assert next(iter(now - set(thumbs))).endswith("-1700000000000000000.jpg")


def test_thumbnails_in_worker_processes(small, tmp_path):
    from indexer.report.thumbs import thumbnails

    root, _ = small
    files = sorted(p for p in root.rglob("*.JPG") if "BROKEN" not in p.name)
    files.append(root / "site1" / "cam01" / "BROKEN.JPG")
    jobs = [(i, str(p)) for i, p in enumerate(files)]
    found, stats = thumbnails(tmp_path / "r", jobs, workers=2, progress=False, min_parallel=0)
    assert stats.made == len(files) - 1 and stats.placeholders == 1
    assert found[len(files) - 1].src == "thumbs/unreadable.svg" and found[len(files) - 1].error
    assert all((tmp_path / "r" / t.src).is_file() for t in found.values())
    assert not list((tmp_path / "r" / "thumbs").glob("*.tmp"))


def test_progress_bar_on_stderr(small, tmp_path, capsys):
    from indexer.report.thumbs import thumbnails

    root, _ = small
    files = sorted(root.rglob("IMG_000*.JPG"))[:3]
    found, stats = thumbnails(tmp_path / "r", [(i, str(p)) for i, p in enumerate(files)], progress=True, workers=1)
    assert stats.made == 3 and all(t.ok for t in found.values())
    err = capsys.readouterr().err
    assert "thumbnails" in err and "3/3" in err


# -- errors ----------------------------------------------------------------------------------------

def test_missing_database_is_one_line(tmp_path, runner):
    r = invoke(runner, "report", "--db", tmp_path / "nope.db", "--out", tmp_path / "r")
    one_line_error(r, "no index database")
    assert not (tmp_path / "r").exists()


def test_unknown_selection_is_one_line(small, tmp_path, runner):
    _, db = small
    one_line_error(invoke(runner, "report", "--db", db, "--out", tmp_path / "r", "--selection", "nope"),
                   "no saved selection named 'nope'")


def test_bad_where_is_one_line(small, tmp_path, runner):
    _, db = small
    one_line_error(invoke(runner, "report", "--db", db, "--out", tmp_path / "r", "--where", "no_such_column > 1"),
                   "--where")
    one_line_error(invoke(runner, "report", "--db", db, "--out", tmp_path / "r", "--where", "1) OR (1"), "--where")


def test_out_inside_the_archive_or_on_a_file_is_refused(small, tmp_path, runner):
    root, db = small
    one_line_error(invoke(runner, "report", "--db", db, "--out", root / "report"), "inside the scan root")
    assert not (root / "report").exists()
    (tmp_path / "file").write_text("x")
    r = invoke(runner, "report", "--db", db, "--out", tmp_path / "file")
    assert r.exit_code == 2 and "is a file" in r.stderr


def test_selection_and_select_options_do_not_mix(small, tmp_path, runner):
    _, db = small
    ok(invoke(runner, "select", "--db", db, "--target", 2, "--save", "s"))
    one_line_error(invoke(runner, "report", "--db", db, "--out", tmp_path / "r", "--selection", "s", "--target", 3),
                   "--selection")
    one_line_error(invoke(runner, "report", "--db", db, "--out", tmp_path / "r", "--method", "kcenter"), "--method")


# -- PNG charts --------------------------------------------------------------------------------------

def test_png_charts(small, tmp_path, runner):
    pytest.importorskip("matplotlib")
    _, db = small
    out = tmp_path / "r"
    report(runner, db, out, "--per", "level:2", "--target", 2, "--png")
    for name in ("distribution.png", "thumbnails.png", "verification.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    source, _ = read_page(out)
    assert 'src="distribution.png"' in source


def test_png_without_matplotlib_says_how_to_install_it(small, tmp_path, runner, monkeypatch):
    _, db = small
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    r = invoke(runner, "report", "--db", db, "--out", tmp_path / "r", "--png")
    one_line_error(r, "pip install 'indexer[plots]'")
    assert not (tmp_path / "r").exists()


def test_open_file_needs_a_display(monkeypatch, tmp_path):
    from indexer.report import plots

    monkeypatch.setattr(plots.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert plots.has_display() is False
    assert plots.open_file(tmp_path / "x.png") is False


def test_report_folder_can_be_moved(saved_report, tmp_path):
    """Thumbnails are referenced relatively: the folder opens from anywhere."""
    out, _ = saved_report
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    _, page = read_page(moved)
    assert all((moved / f["src"]).is_file() for f in page.grid_figures())


# -- many small buckets and groups, long names, undecodable names ------------------------------------

BURST_START = "StationB__2009-06-12__03-14-22"  # 30 characters all 20 frames of the burst folder share


def build_trap(root: Path) -> None:
    """A camera-trap archive of small folders: 8 cameras of 6 unrelated frames (so many buckets
    hold 1-3 images), a burst of 20 frames whose names share a 30-character start, 9 frames
    whose names differ only in the month (in their middle), and 3 cameras of 1-2 frames."""
    n = 0
    for cam in range(8):
        for i in range(6):
            name = f"StationA__2009-0{cam + 1}-1{i}__0{i}-00-00({i + 1}).JPG"
            save_jpeg(scene(500 + n, (64, 48), gray=i % 3 == 0), root / "StationA" / f"cam{cam + 1:02d}" / name)
            n += 1
    for i in range(20):
        save_jpeg(scene(900 + i, (64, 48), gray=i % 4 == 0), root / "StationB" / "burst" / f"{BURST_START}({i + 1}).JPG")
    for m in range(1, 10):
        save_jpeg(scene(950 + m, (64, 48)), root / "StationB" / "months" / f"StationB__2009-0{m}-12__03-14-22(1).JPG")
    for cam, count in ((1, 1), (2, 2), (3, 1)):
        for i in range(count):
            save_jpeg(scene(990 + 10 * cam + i, (64, 48)), root / "StationC" / f"cam{cam:02d}" / f"IMG_{i + 1:04d}.JPG")


@pytest.fixture(scope="module")
def trap(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The trap archive scanned, and its report --per folder: (root, db, report folder)."""
    base = tmp_path_factory.mktemp("trap")
    root, db, out = base / "archive", base / "index.db", base / "report"
    build_trap(root)
    runner = CliRunner()
    scan(runner, root, db)
    report(runner, db, out, "--per", "folder")
    return root, db, out


def test_small_buckets_are_packed_one_grid_per_group(trap):
    _, db, out = trap
    _, page = read_page(out)
    n = db_rows(db, "SELECT COUNT(*) FROM images WHERE state = 'indexed'")[0][0]
    assert n == 81 and sum(g["size"] for g in page.grids) == n
    small = [g for g in page.grids if g["size"] <= 3]
    assert len(small) > 40, "the archive should make many small buckets"
    for g in page.grids:  # a small bucket never gets a box of its own; a larger one does
        assert ("bucket" in g["within"]) == (g["size"] > 3), g
        assert ("pack" in g["within"]) == (g["size"] <= 3), g
    packs: dict[str, set[int]] = {}
    for g in small:
        packs.setdefault(g["group"], set()).add(g["pack"])
    assert all(len(p) == 1 for p in packs.values())  # one pack per group holds all its small buckets
    assert len({p for ps in packs.values() for p in ps}) == len(packs)
    large = {g["group"] for g in page.grids if g["size"] > 3}
    assert large and set(page.charts) == large  # a chart only where some bucket is larger than 3


def test_groups_of_a_few_images_sit_side_by_side(trap):
    _, _, out = trap
    _, page = read_page(out)
    tiny = ["StationC/cam01", "StationC/cam02", "StationC/cam03"]
    assert page.tiny_rows == [tiny]  # one row of boxes, in natural order, after the larger groups
    assert page.groups[-3:] == tiny
    assert all("group" in g["within"] and "tinies" in g["within"] for g in page.grids if g["group"] in tiny)


def page_height(html_file: Path, width: int = 1280) -> int:
    """The page's height in CSS px as headless Chromium lays it out at this window width."""
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if chromium is None:
        pytest.skip("no Chromium to lay the page out")
    import subprocess

    probe = html_file.with_name("height-probe.html")
    probe.write_text(html_file.read_text(encoding="utf-8").replace(
        "</body>", "<script>document.title='H='+document.documentElement.scrollHeight</script></body>"),
        encoding="utf-8")
    try:
        dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                              f"--window-size={width},900", "--virtual-time-budget=5000", "--dump-dom",
                              probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    finally:
        probe.unlink()
    import re

    found = re.search(r"<title>H=(\d+)", dom)
    assert found, dom[:500]
    return int(found.group(1))


def test_page_of_many_small_buckets_is_not_a_box_per_bucket_tall(trap):
    """81 images in 13 folders, most buckets of 1-3 images: a box per bucket made this page 9,900 px
    tall at 1280 px; packed, it is 4,700 px (1,000 of them the overview, 700 the outliers)."""
    _, _, out = trap
    assert page_height(out / "index.html") < 6000


def test_captions_keep_the_distinct_end_of_long_names(trap):
    from indexer.report.html import NAME_CHARS

    _, _, out = trap
    _, page = read_page(out)
    burst = [f for g in page.grids if g["group"] == "StationB/burst" for f in g["figures"]]
    assert len(burst) == 20
    captions = [f["caption"] for f in burst]
    assert len(set(captions)) == 20 and all(len(c) <= NAME_CHARS for c in captions)
    assert all(c.startswith("…") and "-14-22(" in c for c in captions)  # the start all share makes room for the end
    for f in burst:
        full = next(line for line in f["tip"].splitlines() if line.startswith("StationB/burst/"))
        assert full.startswith(f"StationB/burst/{BURST_START}(")  # the whole name stays in the tooltip
        assert f["caption"].endswith(full[full.index("("):])  # the frame number and extension: "(13).JPG"
    months = [f["caption"] for g in page.grids if g["group"] == "StationB/months" for f in g["figures"]]
    assert len(months) == 9 and len(set(months)) == 9  # told apart by the month in the middle of the name
    assert all(c.endswith("(1).JPG") and f"-0{m}" in c for m, c in enumerate(sorted(months), 1))


def test_short_names_never_share_a_form():
    import random

    from indexer.report.escape import short_names, shorten

    twenty = [f"RCNX_Site04_CameraB_{i:04d}.JPG" for i in range(1, 21)]  # a 20-character start in common
    shown = short_names(twenty, 16)
    assert len(set(shown.values())) == 20 and all(len(v) <= 16 for v in shown.values())
    assert all(shown[n].endswith(n[-8:]) for n in twenty)  # "0013.JPG" stays
    assert shorten("IMG_0001.JPG", 16) == "IMG_0001.JPG"  # short names stay as they are
    rng = random.Random(7)
    for _ in range(2000):  # names alike at the start, middle or end, of equal and different lengths
        base = "".join(rng.choice("ab_-.") for _ in range(rng.randint(0, 30)))
        names = {base[:rng.randint(0, len(base))] + "".join(rng.choice("ab01") for _ in range(rng.randint(0, 12)))
                 + rng.choice(["", ".JPG", "b.JPG"]) for _ in range(rng.randint(1, 40))}
        forms = short_names(names, rng.randint(5, 30))
        assert len(set(forms.values())) == len(names), names


def test_chart_labels_keep_their_distinct_end():
    from indexer.report.chart import bar_chart

    start = "/mnt/archive/projects/2019/serengeti/season4/StationB/"
    svg = bar_chart([(f"{start}cam01", 1, 2), (f"{start}cam02", 2, 1)], selection=True, caption="groups")
    page = Page(svg)
    labels = [t for t in page.text if t.endswith(("cam01", "cam02")) and not t.startswith(start)]
    assert len(labels) == 2 and labels[0] != labels[1] and "…" in labels[0]


# A file name that is not UTF-8: os.fsdecode gives it as a lone surrogate
UNDECODABLE = os.fsdecode(b"IMG_\xff.JPG")
UNDECODABLE_DIR = os.fsdecode(b"cam\xe9")


def undecodable_records(root: Path) -> ReportData:
    """A report's records holding one image under a folder and name that are not UTF-8, built
    directly (the index cannot hold such names yet)."""
    from indexer.report.records import (BucketView, GroupView, ImageInfo, Outliers, Overview, ReportData,
                                        RootInfo)

    folder = f"site1/{UNDECODABLE_DIR}"
    im = ImageInfo(1, f"{root}/{folder}/{UNDECODABLE}", f"{folder}/{UNDECODABLE}", UNDECODABLE, folder, 3, None,
                   64, 48, 120.0, 30.0, False, "2024-05-01T10:00:00", label=UNDECODABLE_DIR)
    overview = Overview(str(root / "index.db"), {"indexed": 1}, [RootInfo(str(root), 1, 0, 0, None)], [], 1,
                        [("(no EXIF camera)", 1)], [(UNDECODABLE_DIR, 1)], [(f"{root}/{folder}", 1)],
                        0, 1, 1, 0, 0, im.captured_at, im.captured_at)
    group = GroupView(folder, 1, 0, [BucketView(3, "colour / bright", 1, 0, [im])])
    return ReportData("2024-05-02 00:00:00 UTC", "folder", None, overview, [group], None, [],
                      Outliers([im], [im], [im], (64, 48, 1), []))


def test_undecodable_names_are_shown_escaped(tmp_path):
    from indexer.report.html import render
    from indexer.report.records import Thumb

    source = render(undecodable_records(tmp_path), {1: Thumb("thumbs/1.jpg", True)})
    source.encode("utf-8")  # writable as UTF-8: no lone surrogate left
    page = Page(source)
    shown = "IMG_\\xff.JPG"  # the byte, as Python's backslashreplace writes it
    assert all(f["caption"] == shown for f in page.grid_figures())
    assert "site1/cam\\xe9/IMG_\\xff.JPG" in page.grid_figures()[0]["tip"]
    assert page.groups == ["site1/cam\\xe9"] and "cam\\xe9" in page.tables["classes"][1]
    assert f"{tmp_path.as_uri()}/site1/cam%E9/IMG_%FF.JPG" in source  # the link opens the real file


def test_report_with_an_undecodable_name_is_written_and_thumbnailed(small, tmp_path, runner, monkeypatch):
    import indexer.report

    _, db = small
    files = tmp_path / "files"
    real = os.fsencode(files / "site1" / UNDECODABLE_DIR / UNDECODABLE)
    try:
        os.makedirs(os.path.dirname(real))
        save_jpeg(scene(5, (64, 48)), tmp_path / "ok.JPG").rename(real.decode("utf-8", "surrogateescape"))
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    monkeypatch.setattr(indexer.report, "gather", lambda *a, **k: undecodable_records(files))
    report(runner, db, tmp_path / "r")
    source, page = read_page(tmp_path / "r")
    src = {f["src"] for f in page.grid_figures()}
    assert len(src) == 1 and (tmp_path / "r" / src.pop()).is_file()  # made from the real file, no placeholder
    assert "IMG_\\xff.JPG" in source


# -- classes ----------------------------------------------------------------------------------------

def label_site1(runner: CliRunner, db: Path) -> None:
    ok(invoke(runner, "labels", "from-folders", "--db", db, "--level", 2, "--where", "folder LIKE 'site1/%'"))


def test_classes_table_counts_unlabelled_images_as_none(small, tmp_path, runner):
    _, db = small
    report(runner, db, tmp_path / "before")
    assert "classes" not in read_page(tmp_path / "before")[1].tables  # no labels at all: no table
    label_site1(runner, db)
    report(runner, db, tmp_path / "r")
    _, page = read_page(tmp_path / "r")
    rows = {k: int(v) for k, v in filter(None, page.tables["classes"])}
    folders = dict(db_rows(db, "SELECT folder, COUNT(*) FROM images WHERE state = 'indexed' GROUP BY folder"))
    assert rows == {"cam01": folders["site1/cam01"], "(none)": sum(v for k, v in folders.items() if k[:6] != "site1/")}
    assert sum(rows.values()) == sum(folders.values())  # every image of the report is in one row
    assert [r for r in page.tables["classes"] if r][-1][0] == "(none)"
    report(runner, db, tmp_path / "site2", "--where", "folder LIKE 'site2/%'")
    rows2 = {k: int(v) for k, v in filter(None, read_page(tmp_path / "site2")[1].tables["classes"])}
    assert rows2 == {"(none)": sum(v for k, v in folders.items() if k.startswith("site2/"))}


# -- the smartdownsample drop-ins' display parameters ---------------------------------------------------

@pytest.fixture
def drop_in_files(tmp_path: Path) -> list[str]:
    return [str(p) for p in make_archive(tmp_path / "imgs", cameras=2, per_camera=6, size=(96, 72))]


def test_drop_in_pictures_without_matplotlib_warn_and_still_select(drop_in_files, tmp_path, monkeypatch):
    from indexer import sample_diverse

    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.warns(UserWarning, match=r"save_distribution.*pip install 'indexer\[plots\]'"):
        out = sample_diverse(drop_in_files, 4, n_workers=1, show_progress=False, show_summary=False,
                             save_distribution=str(tmp_path / "d.png"), db=tmp_path / "c.db")
    assert len(out) == 4 and not (tmp_path / "d.png").exists()


def test_drop_in_pictures_are_written_and_opened_only_with_a_display(drop_in_files, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    from indexer import sample_diverse, select_distinct
    from indexer.report import plots

    launched: list[list[str]] = []
    monkeypatch.setattr(plots.subprocess, "Popen", lambda cmd, **kw: launched.append(cmd))
    monkeypatch.setattr(plots.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    cache = tmp_path / "cache" / "c.db"
    out = sample_diverse(drop_in_files, 5, n_workers=1, show_progress=False, show_summary=True, db=cache,
                         save_distribution=str(tmp_path / "charts" / "d.png"),
                         save_thumbnails=str(tmp_path / "charts" / "t.png"), show_distribution=True)
    assert len(out) == 5
    for p in (tmp_path / "charts" / "d.png", tmp_path / "charts" / "t.png"):
        assert p.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "Selected 5 of 12 images" in printed and f"distribution chart: {tmp_path / 'charts' / 'd.png'}" in printed
    assert launched == []  # no display: nothing opened, nothing waited for
    monkeypatch.setenv("DISPLAY", ":99")
    select_distinct(drop_in_files, 4, n_workers=1, show_progress=False, show_verification=True, db=cache)
    sheet = cache.parent / "indexer-pictures" / "verification.png"
    assert sheet.read_bytes()[:4] == b"\x89PNG"
    assert launched == [["xdg-open", str(sheet)]]
