"""Selection on a generated image archive with bursts, end to end: scan real JPEGs, then select."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest

from imaging import save_jpeg, scene
from indexer.cli import cli

# 8 views, each seen in 3 bursts (hours apart) of 4 near-identical frames 1 s apart: 24 bursts.
VIEWS, VISITS, BURST = 8, 3, 4
SCENES = VIEWS * VISITS


@pytest.fixture(scope="module")
def bursty_db(tmp_path_factory):
    from click.testing import CliRunner

    tmp = tmp_path_factory.mktemp("bursty")
    root = tmp / "archive"
    start = datetime(2024, 5, 1, 6, 0, 0)
    for s in range(SCENES):
        cam = f"cam{s % 3 + 1:02d}"
        for f in range(BURST):
            taken = start + timedelta(hours=s) + timedelta(seconds=f)
            view = s % VIEWS
            save_jpeg(scene(100 + view, (160, 120), gray=view % 3 == 0, shift=f + 2 * (s // VIEWS)),
                      root / "site" / cam / f"IMG_{s:03d}{f}.JPG",
                      taken=taken.strftime("%Y:%m:%d %H:%M:%S"))
    db = tmp / "index.db"
    r = CliRunner().invoke(cli, ["scan", str(root), "--db", str(db), "--workers", "2", "--quiet"])
    assert r.exit_code == 0, r.output
    return str(db)


def stats(runner, db, method, seed=0, k=10):
    r = runner.invoke(cli, ["select", "--db", db, "--target", str(k), "--method", method, "--seed", str(seed),
                            "--stats", "--format", "json", "-q"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    return doc, doc["stats"]["overall"]["chosen"]


def test_bursts_are_found_from_exif_times(runner, bursty_db):
    r = runner.invoke(cli, ["select", "--db", bursty_db, "--per", "sequence", "--target", "1", "--format", "json", "-q"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["groups"]) == SCENES


def test_diverse_takes_no_two_frames_of_a_burst_and_beats_random(runner, bursty_db):
    doc, diverse = stats(runner, bursty_db, "diverse")
    bursts = [p.rsplit("/", 1)[1][:7] for p in (i["path"] for i in doc["images"])]  # IMG_sss of the name
    assert len(set(bursts)) == len(bursts) == 10
    views = {int(b[4:7]) % VIEWS for b in bursts}
    assert views == set(range(VIEWS))  # no view is left out
    rnd = [stats(runner, bursty_db, "random", seed=s)[1] for s in range(20)]
    for key in ("coverage_mean", "coverage_max"):
        assert diverse[key] < 0.85 * np.mean([r[key] for r in rnd]), key


def test_kcenter_beats_random_on_the_largest_distance(runner, bursty_db):
    _, kcenter = stats(runner, bursty_db, "kcenter")
    rnd = [stats(runner, bursty_db, "random", seed=s)[1] for s in range(20)]
    assert kcenter["coverage_max"] < 0.85 * np.mean([r["coverage_max"] for r in rnd])


# -- frames without EXIF capture time ---------------------------------------------------------------

T0 = 1_714_550_400.0  # 2024-05-01T08:00:00Z


@pytest.fixture(scope="module")
def mtime_db(tmp_path_factory):
    """copied/: 8 different scenes without EXIF whose mtimes a copy set (3 ms apart); nocam/: a
    camera without EXIF, two bursts of 3 near-identical frames 1 s apart, an hour apart; exif/: two
    EXIF bursts whose files all carry one copy-time mtime."""
    from click.testing import CliRunner

    tmp = tmp_path_factory.mktemp("mtime")
    root = tmp / "archive"
    for i in range(8):
        save_jpeg(scene(300 + i, (160, 120)), root / "copied" / f"{i:04d}.jpg", mtime=T0 + 0.003 * i)
    for b in range(2):
        for f in range(3):
            save_jpeg(scene(400 + b, (160, 120), shift=f), root / "nocam" / f"PICT{b}{f}.JPG",
                      mtime=T0 + 3600 * b + f)
    for b in range(2):
        for f in range(3):
            save_jpeg(scene(500 + b, (160, 120), shift=f), root / "exif" / f"IMG_{b}{f}.JPG", mtime=T0,
                      taken=f"2024:05:0{b + 1} 12:00:0{f}")
    db = tmp / "index.db"
    r = CliRunner().invoke(cli, ["scan", str(root), "--db", str(db), "--workers", "2", "--quiet"])
    assert r.exit_code == 0, r.output
    return str(db)


def test_copy_time_mtimes_are_not_one_burst_but_camera_mtime_bursts_are(runner, mtime_db):
    r = runner.invoke(cli, ["select", "--db", mtime_db, "--per", "folder", "--target", "3", "--stats",
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["notes"] == ["8 images in 1 folder have no EXIF capture time and copy-time mtimes: "
                            "not grouped into bursts (each is its own sequence)"]
    assert "note: 8 images in 1 folder have no EXIF capture time" in r.stderr
    redundancy = {g["group"]: g["chosen"]["redundancy"] for g in doc["stats"]["groups"]}
    assert redundancy["copied"] == 0.0  # was 1.00: the whole folder was one burst
    r = runner.invoke(cli, ["select", "--db", mtime_db, "--per", "sequence", "--target", "1", "--format", "csv",
                            "-q"])
    folders = [line.split(",")[4].split("/")[0] for line in r.stdout.splitlines()[1:]]
    assert {f: folders.count(f) for f in set(folders)} == {"copied": 8, "nocam": 2, "exif": 2}


def test_real_frames_with_copy_time_mtimes_are_not_one_burst(runner, shared_samples, tmp_path):
    """ENA24's files carry no EXIF time (but one) and copy-time mtimes; the Reconyx burst has EXIF."""
    import sqlite3

    db = tmp_path / "real.db"
    assert runner.invoke(cli, ["scan", str(shared_samples), "--db", str(db), "--workers", "2", "--quiet"]
                         ).exit_code == 0
    r = runner.invoke(cli, ["select", "--db", str(db), "--per", "folder", "--target", "5", "--stats",
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    with sqlite3.connect(db) as c:
        no_exif = c.execute("SELECT COUNT(*) FROM image_view WHERE folder = 'ena24' AND captured_at IS NULL"
                            ).fetchone()[0]
        seqs = {f: (n, s) for f, n, s in c.execute("SELECT folder, COUNT(*), COUNT(DISTINCT sequence) "
                                                   "FROM image_view GROUP BY folder")}
    assert no_exif >= 19 and seqs["ena24"][1] == seqs["ena24"][0] and seqs["reconyx-burst"] == (10, 1)
    assert f"{no_exif} images in 1 folder have no EXIF capture time" in " ".join(doc["notes"])
    redundancy = {g["group"]: g["chosen"]["redundancy"] for g in doc["stats"]["groups"]}
    assert redundancy["ena24"] < 1.0 and redundancy["reconyx-burst"] == 1.0
