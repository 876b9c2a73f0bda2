"""Subsets out in the format they came in: import -> select -> export -> import gives the same
labels; Camtrap DP exports pass frictionless; the `indexer` command end to end."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.db import Database
from indexer.errors import OutputError
from indexer.labels import import_file
from indexer.output import export_selection
from indexer.selection import select

from imaging import make_archive
from test_labels_formats import COCO, FILES, MD, add, labels, write, write_camtrapdp


@pytest.fixture
def db(tmp_path: Path):
    d = Database(tmp_path / "index.db", create=True)
    add(d, "/arch", FILES)
    yield d
    d.close()


def saved(db: Database, name: str = "sub", where: str | None = None) -> list[str]:
    sel = select(db, total=4, where=where, method="random", save=name)
    return sorted(im.rel_path for im in sel.images)


def boxes(db: Database, source: str) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for r in db.conn.execute("SELECT v.rel_path, d.category, d.conf, round(d.x, 4), round(d.y, 4), round(d.w, 4), "
                             "round(d.h, 4), d.classification FROM detections d JOIN image_view v ON v.id = d.image_id "
                             "WHERE d.source = ? ORDER BY v.rel_path, d.id", (source,)):
        out.setdefault(r[0], []).append(tuple(r[1:]))
    return out


def only(d: dict, keys: list[str]) -> dict:
    return {k: v for k, v in d.items() if k in keys}


def test_md_round_trip(db, tmp_path):
    import_file(db, write(tmp_path / "md.json", MD))
    picked = saved(db, where="rel_path != 'cam2/e.jpg'")
    out = tmp_path / "sub.json"
    done, copied = export_selection(db, "md", out, selection="sub")
    assert (done.source, done.images, copied) == ("megadetector", 4, None)
    doc = json.loads(out.read_text("utf-8"))
    assert sorted(im["file"] for im in doc["images"]) == picked
    assert doc["info"]["format_version"] == "1.4" and doc["detection_categories"]["2"] == "person"
    s = import_file(db, out, source="back")
    assert s.format == "md" and s.matched == 4
    assert labels(db, "back") == only(labels(db, "megadetector"), picked)
    assert boxes(db, "back") == only(boxes(db, "megadetector"), picked)


def test_coco_round_trip_keeps_boxes_locations_and_sequences(db, tmp_path):
    import_file(db, write(tmp_path / "coco.json", COCO))
    picked = saved(db, where="rel_path IN ('cam1/a.jpg', 'cam1/b.jpg', 'cam1/c.jpg', 'cam2/d.jpg')")
    out = tmp_path / "sub.json"
    done, _ = export_selection(db, "coco", out, selection="sub")
    doc = json.loads(out.read_text("utf-8"))
    assert sorted(im["file_name"] for im in doc["images"]) == picked
    a = next(im for im in doc["images"] if im["file_name"] == "cam1/a.jpg")
    assert (a["location"], a["seq_id"], a["frame_num"], a["datetime"]) == ("L1", "s1", 0, "2024-05-01 10:00:00")
    assert {c["name"] for c in doc["categories"]} == {"empty", "deer", "fox"}
    s = import_file(db, out, source="back")
    assert s.format == "coco" and not s.bad_rows
    assert labels(db, "back") == only(labels(db, "coco"), picked)
    assert boxes(db, "back") == only(boxes(db, "coco"), picked)
    meta = "SELECT v.rel_path, m.location, m.seq_id, m.frame_num FROM image_meta m JOIN image_view v " \
           "ON v.id = m.image_id WHERE m.source = ? ORDER BY 1"
    assert db.conn.execute(meta, ("back",)).fetchall() == db.conn.execute(meta, ("coco",)).fetchall()


def test_camtrapdp_export_is_valid_and_round_trips(db, tmp_path):
    import_file(db, write_camtrapdp(tmp_path / "pkg"))
    picked = saved(db, where="rel_path IN ('cam1/a.jpg', 'cam1/c.jpg', 'cam2/d.jpg')")
    out = tmp_path / "out"
    done, _ = export_selection(db, "camtrapdp", out, selection="sub")
    assert sorted(Path(f).name for f in done.files) == ["datapackage.json", "deployments.csv", "media.csv",
                                                        "observations.csv"]
    with (out / "media.csv").open(newline="", encoding="utf-8") as fh:
        media = list(csv.DictReader(fh))
    assert {m["mediaID"]: m["filePath"] for m in media} == {"m1": "cam1/a.jpg", "m3": "cam1/c.jpg", "m4": "cam2/d.jpg"}
    frictionless = pytest.importorskip("frictionless")
    report = frictionless.validate(str(out / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    s = import_file(db, out / "datapackage.json", source="back")
    assert s.matched == 3
    assert labels(db, "back") == only(labels(db, "camtrapdp"), picked)


def test_timelapse_round_trip_and_formats_built_from_labels(db, tmp_path):
    f = tmp_path / "tl.csv"
    f.write_text("File,RelativePath,DateTime,DeleteFlag,Species,Count\n"
                 "a.jpg,cam1,2024-05-01 10:00:00,false,fox,1\nf.jpg,cam2\\sub,2024-05-01 10:00:00,false,deer,2\n",
                 "utf-8")
    import_file(db, f)
    saved(db, where="class IS NOT NULL")
    out = tmp_path / "sub.csv"
    export_selection(db, "timelapse", out, selection="sub")
    text = out.read_text("utf-8")
    assert text.splitlines()[0] == "File,RelativePath,DateTime,DeleteFlag,Species,Count"
    assert "f.jpg,cam2\\sub,2024-05-01 10:00:00,false,deer,2" in text
    import_file(db, out, source="back")
    assert labels(db, "back") == labels(db, "timelapse")
    # a format no import gave: built from the class labels
    done, _ = export_selection(db, "coco", tmp_path / "c.json", selection="sub")
    assert done.source is None
    doc = json.loads((tmp_path / "c.json").read_text("utf-8"))
    assert sorted(c["name"] for c in doc["categories"]) == ["deer", "fox"] and len(doc["annotations"]) == 2
    with pytest.raises(OutputError, match="no MegaDetector import"):
        export_selection(db, "md", tmp_path / "m.json", selection="sub")
    with pytest.raises(OutputError, match="no saved selection named 'nope'"):
        export_selection(db, "coco", tmp_path / "m.json", selection="nope")


def run(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, INDEXER_DB=str(cwd / "index.db"))
    return subprocess.run([sys.executable, "-m", "indexer", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=120)


def test_indexer_command_imports_selects_and_exports(tmp_path):
    root = tmp_path / "archive"
    paths = make_archive(root, cameras=2, per_camera=3)
    assert run("scan", root, "--workers", "1", "-q", cwd=tmp_path).returncode == 0
    md = {"info": {"format_version": "1.4"}, "detection_categories": {"1": "animal", "2": "person"},
          "images": [{"file": "C:\\cards\\" + str(p.relative_to(root)).replace("/", "\\"),
                      "detections": [{"category": "1" if k % 2 else "2", "conf": 0.3 + 0.1 * k,
                                      "bbox": [0.1, 0.1, 0.5, 0.5]}]} for k, p in enumerate(paths)]}
    write(tmp_path / "md.json", md)
    r = run("labels", "import", "md.json", "--threshold", "0.5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "md file, source 'megadetector' at threshold 0.5: 6 entries, 6 matched" in r.stderr
    r = run("select", "--target", 5, "--per", "class", "--where", "md_person_conf IS NULL OR md_person_conf < 0.5",
            "--save", "s", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run("labels", "export", "--selection", "s", "--format", "md", "-o", "sub.json", "--copy-to", "subset",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "sub.json").read_text("utf-8"))
    assert doc["images"] and all((tmp_path / "subset" / im["file"]).is_file() for im in doc["images"])
    assert all(d["conf"] < 0.5 for im in doc["images"] for d in im["detections"] if d["category"] == "2")
    r = run("select", "--target", 2, "--per", "class", "--format", "coco", "-o", "sub.coco.json", "--copy-to", "c2",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    coco = json.loads((tmp_path / "sub.coco.json").read_text("utf-8"))
    assert coco["images"] and all((tmp_path / "c2" / im["file_name"]).is_file() for im in coco["images"])
    r = run("select", "--target", 2, "--format", "camtrapdp", cwd=tmp_path)
    assert r.returncode == 2 and "give -o PATH (a new folder)" in r.stderr
    (tmp_path / "broken.json").write_text('{"images": [', "utf-8")
    r = run("labels", "import", "broken.json", "--format", "md", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("Error: broken.json is not valid JSON")
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
