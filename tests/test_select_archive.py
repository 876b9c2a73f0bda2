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
