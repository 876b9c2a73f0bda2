"""`indexer duplicates`: near copies grouped from the stored hashes, keep rules, moving aside with a
manifest and putting back, leakage between sets, and bad input: on generated photos with planted
copies (re-saved, resized, cropped, EXIF stripped, byte copies)."""
from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from imaging import save_jpeg, scene
from indexer.cli import cli
from indexer.duplicates import choose_keeper, group_pairs
from indexer.db.duplicates import ImageInfo

ORIGINALS = {"a": 101, "b": 202, "c": 303}  # name -> scene seed; unrelated scenes stay apart


def _strip_exif(data: bytes) -> bytes:
    out, k = bytearray(data[:2]), 2
    while data[k] == 0xFF and data[k + 1] not in (0xDA, 0xD9):
        n = int.from_bytes(data[k + 2:k + 4], "big")
        if data[k + 1] != 0xE1:
            out += data[k:k + 2 + n]
        k += 2 + n
    return bytes(out + data[k:])


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """cam01: originals a, b, c (640x480) and unrelated singles; cam02: copies of a and b."""
    root = tmp_path / "archive"
    for name, seed in ORIGINALS.items():
        save_jpeg(scene(seed, (640, 480)), root / "cam01" / f"{name}.JPG", taken="2024:05:01 10:00:00", quality=90)
    for k in range(4):
        save_jpeg(scene(900 + k, (640, 480)), root / "cam01" / f"single{k}.JPG", quality=90)
    a = root / "cam01" / "a.JPG"
    with Image.open(a) as im:
        im.save(root / "cam02" / "a_q60.JPG", quality=60) if (root / "cam02").mkdir() is None else None
        im.resize((320, 240), Image.Resampling.LANCZOS).save(root / "cam02" / "a_half.JPG", quality=85)
        im.crop((3, 3, 637, 477)).save(root / "cam02" / "a_crop.JPG", quality=90)
    (root / "cam02" / "a_noexif.JPG").write_bytes(_strip_exif(a.read_bytes()))
    shutil.copy2(root / "cam01" / "b.JPG", root / "cam02" / "b_copy.JPG")
    return root


def _scan(runner: CliRunner, root: Path, db: Path) -> None:
    r = runner.invoke(cli, ["scan", str(root), "--db", str(db), "--workers", "1", "-q"])
    assert r.exit_code == 0, r.output


def _json(runner: CliRunner, db: Path, *args: str) -> dict:
    r = runner.invoke(cli, ["duplicates", "--db", str(db), "--format", "json", "-q", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _names(group: dict) -> set[str]:
    return {Path(m["path"]).name for m in group["members"]}


def test_planted_copies_grouped_and_largest_kept(runner: CliRunner, planted: Path, db_path: Path) -> None:
    _scan(runner, planted, db_path)
    doc = _json(runner, db_path)
    groups = sorted((_names(g) for g in doc["groups"]), key=len)
    assert groups == [{"b.JPG", "b_copy.JPG"}, {"a.JPG", "a_q60.JPG", "a_half.JPG", "a_crop.JPG", "a_noexif.JPG"}]
    for g in doc["groups"]:
        keeper = next(m for m in g["members"] if m["keep"])
        assert keeper["width"] == 640 and g["keeper"] == keeper["id"]
        centre = next(m for m in g["members"] if m["centre"])
        assert centre["phash_bits"] == 0
        assert all(m["phash_bits"] <= doc["max_distance"]["phash"] for m in g["members"])
    assert doc["max_distance"] == {"phash": 6} and doc["images"] == 12


def test_all_hashes_each_within_its_bound_and_per(runner: CliRunner, planted: Path, db_path: Path) -> None:
    _scan(runner, planted, db_path)
    doc = _json(runner, db_path, "--hash", "all", "--max-distance", "10")
    assert doc["max_distance"] == {"phash": 10, "dhash": 10, "ahash": 10}
    for g in doc["groups"]:
        assert all(max(m["dhash_bits"], m["phash_bits"], m["ahash_bits"]) <= 10 for m in g["members"])
    per = _json(runner, db_path, "--per", "folder")  # copies live in cam02, originals in cam01
    assert all(len({Path(m["path"]).parent.name for m in g["members"]}) == 1 for g in per["groups"])
    assert [_names(g) for g in per["groups"]] == [{"a_q60.JPG", "a_half.JPG", "a_crop.JPG", "a_noexif.JPG"}]
    where = _json(runner, db_path, "--where", "name LIKE 'b%'")
    assert [_names(g) for g in where["groups"]] == [{"b.JPG", "b_copy.JPG"}]


def test_exact_reads_only_candidates(runner: CliRunner, planted: Path, db_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _scan(runner, planted, db_path)
    d = sys.modules["indexer.duplicates"]  # the module (indexer.duplicates is the function)
    read: list[str] = []
    real = d.content_hash
    monkeypatch.setattr(d, "content_hash", lambda p: read.append(p) or real(p))
    doc = _json(runner, db_path, "--exact")
    assert [_names(g) for g in doc["groups"]] == [{"b.JPG", "b_copy.JPG"}, {"a.JPG", "a_noexif.JPG"}][:1]
    assert doc["groups"][0]["identical"] is True
    assert sorted(Path(p).name for p in read) == ["b.JPG", "b_copy.JPG"]  # equal size and hashes only


def test_groups_never_chain() -> None:
    # a path 0-1-2-3-4-5-6 (each step within the bound, the ends far apart) and a star around 10
    i = np.array([0, 1, 2, 3, 4, 5, 10, 10, 10], dtype=np.int64)
    j = np.array([1, 2, 3, 4, 5, 6, 11, 12, 13], dtype=np.int64)
    groups = group_pairs(14, i, j)
    pairs = set(zip(i.tolist(), j.tolist())) | set(zip(j.tolist(), i.tolist()))
    for centre, members in groups:
        assert all(m == centre or (centre, m) in pairs for m in members.tolist())
    assert [(c, m.tolist()) for c, m in groups][0] == (10, [10, 11, 12, 13])  # most neighbours first
    seen = np.concatenate([m for _, m in groups])
    assert len(seen) == len(set(seen.tolist()))


def test_random_groups_have_a_centre_within_the_bound() -> None:
    from indexer.methods import mih
    rng = np.random.default_rng(3)
    h = rng.integers(0, 2**64 - 1, 3000, dtype=np.uint64, endpoint=True)
    h[1500:] = h[:1500] ^ (np.uint64(1) << rng.integers(0, 64, 1500).astype(np.uint64))
    h[::7] = h[0] ^ np.uint64(0b111)
    i, j, _ = mih.self_pairs(h, 4)
    for centre, members in group_pairs(len(h), i, j):
        assert (np.bitwise_count(h[members] ^ h[centre]) <= 4).all()


def _info(i: int, w: int = 100, size: int = 10, sharp: float = 1.0, time: str | None = "2024-01-01T00:00:00") -> ImageInfo:
    return ImageInfo(i, f"/r/{i}.jpg", "/r", f"{i}.jpg", size, 0, w, w, sharp, time, 0, 0, 0)


def test_keep_rules_combine_and_ties_are_deterministic() -> None:
    pos = {1: 2, 2: 0, 3: 1}
    mem = [_info(1, 200, sharp=1), _info(2, 200, sharp=5), _info(3, 100, sharp=9)]
    assert choose_keeper(mem, ["largest"], pos)[0] == 2          # tie on size: first path (pos 0)
    assert choose_keeper(mem, ["largest", "sharpest"], pos) == (2, "largest, sharpest")
    assert choose_keeper(mem, ["sharpest"], pos)[0] == 3
    old = [_info(1, time="2024-01-02T00:00:00"), _info(2, time="2024-01-01T00:00:00"), _info(3, time=None)]
    assert choose_keeper(old, ["oldest"], pos)[0] == 2
    assert choose_keeper(old, ["newest"], pos)[0] == 1
    assert choose_keeper(mem, ["first-path"], pos)[0] == 2
    assert choose_keeper(list(reversed(mem)), ["largest"], pos)[0] == 2  # order of the input does not matter


def _rows(db: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(db)) as c:
        return c.execute(sql).fetchall()


def test_move_manifest_index_and_undo(runner: CliRunner, planted: Path, db_path: Path, tmp_path: Path) -> None:
    _scan(runner, planted, db_path)
    before = {p.relative_to(planted): p.read_bytes() for p in planted.rglob("*.JPG")}
    dry = runner.invoke(cli, ["duplicates", "--db", str(db_path)])
    assert dry.exit_code == 0 and "dry run: nothing moved" in dry.stderr
    assert {p.relative_to(planted) for p in planted.rglob("*.JPG")} == set(before)
    dest = tmp_path / "dups"
    r = runner.invoke(cli, ["duplicates", "--db", str(db_path), "--keep", "largest,first-path", "--move-to", str(dest)])
    assert r.exit_code == 0, r.output
    moved = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.JPG"))
    assert moved == ["cam02/a_crop.JPG", "cam02/a_half.JPG", "cam02/a_noexif.JPG", "cam02/a_q60.JPG",
                     "cam02/b_copy.JPG"]
    manifest = next(dest.glob("indexer-moves-*.csv"))
    rows = list(csv.DictReader(manifest.open()))
    assert [Path(x["to"]).relative_to(dest).as_posix() for x in rows] == sorted(moved, key=lambda m: (
        "b" in m, m)) or len(rows) == 5
    assert all(set(x) >= {"from", "to", "group", "reason"} and not Path(x["from"]).exists() for x in rows)
    assert _rows(db_path, "SELECT COUNT(*) FROM moves WHERE undone_at IS NULL") == [(5,)]
    assert _rows(db_path, "SELECT COUNT(*) FROM images WHERE state = 'missing'") == [(5,)]
    again = _json(runner, db_path)
    assert again["groups"] == []
    u = runner.invoke(cli, ["duplicates", "--db", str(db_path), "--undo", str(manifest)])
    assert u.exit_code == 0 and "put back 5 files" in u.stderr
    assert {p.relative_to(planted): p.read_bytes() for p in planted.rglob("*.JPG")} == before
    assert _rows(db_path, "SELECT state, COUNT(*) FROM images GROUP BY state") == [("indexed", 12)]
    rescan = runner.invoke(cli, ["scan", str(planted), "--db", str(db_path), "--json", "-q"])
    assert json.loads(rescan.stdout)["unchanged"] == 12
    twice = runner.invoke(cli, ["duplicates", "--db", str(db_path), "--undo", str(manifest)])
    assert twice.exit_code == 0 and "put back 0 files (5 were put back before)" in twice.stderr


def _one_line_error(r, *words: str) -> None:
    assert r.exit_code != 0
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    assert "Traceback" not in r.output
    for w in words:
        assert w in lines[0], r.output


def test_refusals_move_nothing(runner: CliRunner, planted: Path, db_path: Path, tmp_path: Path) -> None:
    _scan(runner, planted, db_path)
    files = sorted(planted.rglob("*"))

    def run(*args: str):
        return runner.invoke(cli, ["duplicates", "--db", str(db_path), "-q", *args])

    _one_line_error(run("--hash", "md5"), "unknown hash")
    _one_line_error(run("--max-distance", "65"), "0 to 64")
    _one_line_error(run("--max-distance", "-1"), "0 to 64")
    _one_line_error(run("--keep", "biggest"), "unknown keep rule")
    _one_line_error(run("--move-to", str(planted / "dups")), "inside the scan root")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_line_error(run("--move-to", str(blocker / "sub")), "cannot write")
    (planted / "cam02" / "a_q60.JPG").write_bytes((planted / "cam02" / "a_q60.JPG").read_bytes() + b"\0")
    _one_line_error(run("--move-to", str(tmp_path / "d1")), "changed since")
    assert sorted(planted.rglob("*")) == files
    assert not list((tmp_path / "d1").rglob("*.JPG"))
    assert _rows(db_path, "SELECT COUNT(*) FROM moves") == [(0,)]


def test_undo_refuses_edited_manifest_and_changed_files(runner: CliRunner, planted: Path, db_path: Path,
                                                        tmp_path: Path) -> None:
    _scan(runner, planted, db_path)
    dest = tmp_path / "dups"
    man = tmp_path / "m.csv"
    r = runner.invoke(cli, ["duplicates", "--db", str(db_path), "-q", "--move-to", str(dest), "--manifest", str(man)])
    assert r.exit_code == 0, r.output
    text = man.read_text()
    rows = list(csv.reader(text.splitlines()))
    edited = tmp_path / "edited.csv"
    # the same manifest path with a row pointing elsewhere
    bad = text.replace(rows[1][1], rows[1][1] + "x")
    man.write_text(bad)
    u = runner.invoke(cli, ["duplicates", "--db", str(db_path), "--undo", str(man)])
    _one_line_error(u, "edited")
    man.write_text(text)
    edited.write_text(text)
    _one_line_error(runner.invoke(cli, ["duplicates", "--db", str(db_path), "--undo", str(edited)]), "records no move")
    victim = Path(rows[2][1])
    victim.write_bytes(victim.read_bytes() + b"\0")
    _one_line_error(runner.invoke(cli, ["duplicates", "--db", str(db_path), "--undo", str(man)]), "changed since")
    assert all(Path(x[1]).exists() and not Path(x[0]).exists() for x in rows[1:])  # nothing moved back
    _one_line_error(runner.invoke(cli, ["duplicates", "--db", str(db_path), "--undo", str(tmp_path / "none.csv")]),
                    "no manifest")


def test_across_sets_finds_leaks(runner: CliRunner, planted: Path, db_path: Path) -> None:
    _scan(runner, planted, db_path)
    r = runner.invoke(cli, ["duplicates", "--db", str(db_path), "--format", "json", "--across",
                            "folder = 'cam01'", str(planted / "cam02")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["a_images"] == 7 and doc["b_images"] == 5
    assert {(Path(p["a_path"]).name, Path(p["b_path"]).name) for p in doc["pairs"]} == {
        ("a.JPG", "a_q60.JPG"), ("a.JPG", "a_half.JPG"), ("a.JPG", "a_crop.JPG"), ("a.JPG", "a_noexif.JPG"),
        ("b.JPG", "b_copy.JPG")}
    assert doc["a_leaking"] == 2 and doc["b_leaking"] == 5 and doc["same_images"] == 0
    assert "5 pairs within phash <= 6 bits" in r.stderr
    bad = runner.invoke(cli, ["duplicates", "--db", str(db_path), "--across", "nosuchset", "cam01"])
    _one_line_error(bad, "not a saved selection")


def test_python_api(planted: Path, db_path: Path, runner: CliRunner) -> None:
    import indexer
    _scan(runner, planted, db_path)
    res = indexer.duplicates(db_path, keep=["sharpest"])
    assert isinstance(res, indexer.Duplicates) and len(res.groups) == 2
    assert all(isinstance(g, indexer.DuplicateGroup) for g in res.groups)
    assert res.redundant == 5 and res.as_dict()["keep"] == ["sharpest"]
    with pytest.raises(indexer.DuplicatesError):
        indexer.duplicates(db_path, hash="sha1")


def test_command_as_the_user_runs_it(planted: Path, db_path: Path, runner: CliRunner) -> None:
    _scan(runner, planted, db_path)
    exe = Path(sys.executable).with_name("indexer")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "indexer"]
    out = subprocess.run([*cmd, "duplicates", "--db", str(db_path), "--format", "csv"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(out.stdout.splitlines()))
    assert len(rows) == 7 and sum(r["role"] == "keep" for r in rows) == 2
    assert "2 groups of near-duplicate images (5 could go) among 12 images" in out.stderr
    bad = subprocess.run([*cmd, "duplicates", "--db", str(db_path), "--max-distance", "99"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("Error:") and len(bad.stderr.splitlines()) == 1


def test_real_photos_and_their_copies(shared_samples: Path, tmp_path: Path, runner: CliRunner) -> None:
    """Copies of real ENA24 photos are found at the default distance and nothing else joins them."""
    root = tmp_path / "real"
    photos = sorted((shared_samples / "ena24").glob("*.jpg"))[:4]
    for p in photos:
        (root / "orig").mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, root / "orig" / p.name)
        with Image.open(p) as im:
            (root / "copies").mkdir(exist_ok=True)
            im.save(root / "copies" / f"{p.stem}_q60.jpg", quality=60)
            im.crop((4, 4, im.width - 4, im.height - 4)).save(root / "copies" / f"{p.stem}_crop.jpg", quality=90)
    db = tmp_path / "real.db"
    _scan(runner, root, db)
    doc = _json(runner, db)
    assert sorted(sorted(_names(g)) for g in doc["groups"]) == sorted(
        sorted([p.name, f"{p.stem}_q60.jpg", f"{p.stem}_crop.jpg"]) for p in photos)


def test_select_against_a_test_set(runner: CliRunner, planted: Path, db_path: Path) -> None:
    _scan(runner, planted, db_path)
    saved = runner.invoke(cli, ["select", "--db", str(db_path), "--target", "1", "--where", "name = 'a.JPG'",
                                "--save", "test", "-q"])
    assert saved.exit_code == 0, saved.output
    r = runner.invoke(cli, ["select", "--db", str(db_path), "--target", "100", "--against", "test"])
    assert r.exit_code == 0, r.output
    picked = {Path(p).name for p in r.stdout.splitlines()}
    assert not picked & {"a.JPG", "a_q60.JPG", "a_half.JPG", "a_crop.JPG", "a_noexif.JPG"}  # near copies
    assert not picked & {"b.JPG", "c.JPG"}  # the same burst as a.JPG (one EXIF time in cam01)
    assert "b_copy.JPG" in picked and "--against test:" in r.stderr
    wide = runner.invoke(cli, ["select", "--db", str(db_path), "--target", "100", "--against", "test",
                               "--min-distance", "0", "-q"])
    assert wide.exit_code == 0 and "a_noexif.JPG" not in wide.stdout  # 0 bits: the same pHash
    _one_line_error(runner.invoke(cli, ["select", "--db", str(db_path), "--target", "3", "--against", "nope"]),
                    "no saved selection named 'nope'")
    _one_line_error(runner.invoke(cli, ["select", "--db", str(db_path), "--target", "3", "--against", "test",
                                        "--min-distance", "80"]), "0 to 64")


def test_report_sections(runner: CliRunner, planted: Path, db_path: Path, tmp_path: Path) -> None:
    import re
    _scan(runner, planted, db_path)
    out = tmp_path / "report"
    r = runner.invoke(cli, ["report", "--db", str(db_path), "--out", str(out), "--duplicates", "--keep", "sharpest",
                            "--across", "folder = 'cam01'", "folder = 'cam02'", "-q", "--workers", "1"])
    assert r.exit_code == 0, r.output
    page = (out / "index.html").read_text()
    dup = page[page.index('<section id="duplicates"'):page.index('<section id="leakage"')]
    assert 'data-groups="2" data-redundant="5"' in dup and "kept by" in dup and "sharpest" in dup
    kept = re.findall(r'<figure class="k" data-id="(\d+)" data-kept="1">', dup)
    assert len(kept) == 2
    srcs = re.findall(r'<img src="([^"]+)"', dup)
    assert len(srcs) == 7 and all((out / s).is_file() for s in srcs)
    assert '<section id="leakage" data-pairs="5">' in page


def test_a_move_stopped_half_way_leaves_a_true_manifest(runner: CliRunner, planted: Path, db_path: Path,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import indexer.moves as moves
    from indexer.errors import DuplicatesError
    _scan(runner, planted, db_path)
    real, calls = moves._move_file, []

    def third_fails(src: str, dest: str) -> None:
        calls.append(src)
        if len(calls) == 3:
            raise DuplicatesError("disk full (simulated)")
        real(src, dest)

    monkeypatch.setattr(moves, "_move_file", third_fails)
    man = tmp_path / "m.csv"
    r = runner.invoke(cli, ["duplicates", "--db", str(db_path), "--move-to", str(tmp_path / "d"), "--manifest", str(man)])
    assert r.exit_code == 1 and "disk full" in r.output
    rows = list(csv.DictReader(man.open()))
    assert len(rows) == 2 and all(Path(x["to"]).exists() and not Path(x["from"]).exists() for x in rows)
    assert _rows(db_path, "SELECT COUNT(*) FROM moves") == [(2,)]
    monkeypatch.setattr(moves, "_move_file", real)
    u = runner.invoke(cli, ["duplicates", "--db", str(db_path), "--undo", str(man)])
    assert u.exit_code == 0 and "put back 2 files" in u.stderr
    assert _rows(db_path, "SELECT COUNT(*) FROM images WHERE state = 'missing'") == [(0,)]


def test_too_many_pairs_is_one_line(runner: CliRunner, planted: Path, db_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _scan(runner, planted, db_path)
    monkeypatch.setattr(sys.modules["indexer.duplicates"], "MAX_PAIRS", 3)
    r = runner.invoke(cli, ["duplicates", "--db", str(db_path), "--max-distance", "64"])
    _one_line_error(r, "more than 3 pairs", "lower --max-distance")
