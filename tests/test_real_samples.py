"""Real camera-trap photos (../shared/data/camtrap-samples): what we index must match what is in them.

Checked by eye beforehand: the Reconyx burst is a night IR sequence of a heron (frame 1 has its
wings up, frames 2-9 are nearly still, frame 10 moves again); in ENA24 the IR night frames and the
monochrome day frames (6039, 8200, 8786, 9455) are gray, 352/596 (green slope, same camera) and
422, 49, 5840, 5899, 7951, 8831 are colour; 2968 is an IR frame with an orange Bushnell logo in
its bottom info bar.
"""
from __future__ import annotations

import csv
import itertools
import sqlite3
import statistics
from pathlib import Path

import pytest

from indexer import Database, scan

BURST_FIRST, BURST_LAST = "2021-04-11T20:43:09", "2021-04-11T20:43:15"
GRAY = {"2480", "2573", "2595", "2968", "2999", "3084", "4330", "4383", "4451", "6039", "8200", "8786", "9455"}
COLOUR = {"352", "422", "49", "5840", "5899", "596", "7951", "8831"}
SAME_SITE = [{"352", "596"}, {"5840", "5899"}]  # same camera and view, different moments


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> dict[str, dict[str, sqlite3.Row]]:
    from conftest import SHARED  # the shared_samples fixture is function-scoped; same folder

    if not SHARED.is_dir():
        pytest.skip("../shared/data/camtrap-samples is not beside this checkout")
    db_path = tmp_path_factory.mktemp("real") / "index.db"
    with Database(db_path, create=True) as db:
        summary = scan(db, [str(SHARED)], workers=2, progress=False)
        assert summary.counts.failed == 0
        out: dict[str, dict[str, sqlite3.Row]] = {"reconyx-burst": {}, "ena24": {}}
        for row in db.conn.execute("SELECT i.*, f.path, f.rel_path FROM images i JOIN image_files f USING (id)"):
            out[row["folder"]][Path(row["name"]).stem] = row
    return out


def dist(a: int, b: int) -> int:
    return bin((a ^ b) & (2 ** 64 - 1)).count("1")


def test_all_samples_indexed(shared_samples, rows):
    assert len(rows["reconyx-burst"]) == 10
    with open(shared_samples / "ena24" / "labels.csv", newline="") as fh:
        labelled = {Path(rec["filepath"]).stem for rec in csv.DictReader(fh)}
    assert labelled and labelled <= set(rows["ena24"])
    assert set(rows["ena24"]) == GRAY | COLOUR
    assert all(r["state"] == "indexed" and r["error"] is None for f in rows.values() for r in f.values())


def test_burst_capture_time_comes_from_exif_not_file_name(shared_samples, rows):
    burst = [rows["reconyx-burst"][k] for k in sorted(rows["reconyx-burst"])]
    times = [r["captured_at"] for r in burst]
    assert times[0] == BURST_FIRST and times[-1] == BURST_LAST
    assert times == sorted(times)  # frames in name order are in time order
    assert all(BURST_FIRST <= t <= BURST_LAST for t in times)
    assert not any(t.startswith("2021-05-31") for t in times)  # the date in the file names


def test_burst_camera_and_size(shared_samples, rows):
    for r in rows["reconyx-burst"].values():
        assert r["camera_make"] == "RECONYX"
        assert r["camera_model"] == "HYPERFIRE 2 COVERT"  # stored NUL-padded in the file
        assert (r["width"], r["height"]) == (2048, 1440)
        assert r["is_gray"] == 1
        assert r["format"] == "JPEG" and r["mode"] == "RGB"


def test_ena24_exif_and_sizes(shared_samples, rows):
    ena = rows["ena24"]
    crow = ena["49"]  # the only ENA24 frame with EXIF: make and model padded with spaces and NULs
    assert (crow["captured_at"], crow["camera_make"], crow["camera_model"]) == \
        ("2016-03-24T10:30:12", "Reconyx", "RC55 RAPIDFIRE")
    assert all(r["captured_at"] is None for k, r in ena.items() if k != "49")
    sizes = {k: (r["width"], r["height"]) for k, r in ena.items()}
    assert {k for k, s in sizes.items() if s == (1920, 1080)} == {"2480", "2573", "2595", "8200"}
    assert sizes["4451"] == (2592, 1944)
    assert sum(s == (2048, 1536) for s in sizes.values()) == 16


def test_burst_frames_are_near_identical_and_scenes_far_apart(shared_samples, rows):
    burst = [r["dhash"] for _, r in sorted(rows["reconyx-burst"].items())]
    ena = {k: r["dhash"] for k, r in rows["ena24"].items()}
    within = [dist(a, b) for a, b in itertools.combinations(burst, 2)]
    consecutive = [dist(a, b) for a, b in zip(burst, burst[1:])]
    across = [dist(ena[a], ena[b]) for a, b in itertools.combinations(sorted(ena), 2) if {a, b} not in SAME_SITE]
    print(f"\ndHash distances: burst median {statistics.median(within)} max {max(within)}, "
          f"consecutive {consecutive}; ENA24 scenes median {statistics.median(across)} min {min(across)}")
    assert statistics.median(within) <= 4
    assert sorted(consecutive)[len(consecutive) // 2] <= 2  # most steps of the burst change a bit or two
    assert statistics.median(across) >= 20
    assert max(within) < statistics.median(across)
    # every burst frame's nearest neighbour in the whole set is another burst frame
    for i, h in enumerate(burst):
        nearest_burst = min(dist(h, o) for j, o in enumerate(burst) if j != i)
        assert nearest_burst < min(dist(h, o) for o in ena.values())


def test_ena24_gray_and_colour_frames(shared_samples, rows):
    ena = rows["ena24"]
    assert {k for k, r in ena.items() if r["is_gray"] == 1} == GRAY
    assert {k for k, r in ena.items() if r["is_gray"] == 0} == COLOUR
    assert max(ena[k]["color_variance"] for k in GRAY) < min(ena[k]["color_variance"] for k in COLOUR)


def test_ir_frame_with_orange_logo_is_gray(shared_samples, rows):
    r = rows["ena24"]["2968"]
    assert r["is_gray"] == 1
    assert r["color_variance"] > 0  # the logo's colour is really there, the info bar is left out


def test_brightness_and_sharpness_on_real_frames(shared_samples, rows):
    burst, ena = rows["reconyx-burst"], rows["ena24"]
    night = statistics.mean(r["brightness"] for r in burst.values())
    day = statistics.mean(ena[k]["brightness"] for k in COLOUR)
    assert night < day  # a night IR burst is darker than daytime colour frames
    assert all(0 <= r["brightness"] <= 255 and r["sharpness"] > 0 for f in rows.values() for r in f.values())


def test_real_samples_rescan_decodes_nothing(shared_samples, tmp_path):
    """The samples folder is read-only: indexing it twice works and the second run is all unchanged."""
    burst = shared_samples / "reconyx-burst"
    with Database(tmp_path / "i.db", create=True) as db:
        first = scan(db, [str(burst)], workers=1, progress=False)
        second = scan(db, [str(burst)], workers=1, progress=False)
    assert (first.counts.new, second.counts.new, second.counts.changed, second.counts.unchanged) == (10, 0, 0, 10)
