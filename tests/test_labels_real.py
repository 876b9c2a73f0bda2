"""The real ENA24 files (MegaDetector batch output 1.4 and COCO Camera Traps) beside the checkout;
skipped without them (test_labels_formats and test_labels_export cover the same on made files)."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from indexer.db import Database
from indexer.labels import import_file
from indexer.output import export_selection
from indexer.scan import scan

from test_labels_formats import labels


def norm(label: str) -> str:
    return label.lower().replace(" ", "_")


def test_ena24_megadetector_and_coco_files(shared_samples, tmp_path):
    root = tmp_path / "ena24"
    shutil.copytree(shared_samples / "ena24", root)
    with Database(tmp_path / "index.db", create=True) as db:
        scan(db, [root], workers=1)
        truth = {r["filepath"]: r["label"] for r in csv.DictReader((root / "labels.csv").open(encoding="utf-8"))}
        md = import_file(db, root / "md_annotations.json")
        coco = import_file(db, root / "coco_annotations.json")
        assert (md.format, md.matched, coco.format, coco.matched) == ("md", len(truth), "coco", len(truth))
        assert not (md.unknown or md.bad_rows or coco.unknown or coco.bad_rows)
        assert {k: v[0] for k, v in labels(db, "coco").items()} == truth
        assert {k: norm(v[0]) for k, v in labels(db, "megadetector").items()} == {k: norm(v) for k, v in truth.items()}
        n = db.conn.execute("SELECT COUNT(*) FROM image_view WHERE md_animal_conf > 0.5 AND is_empty = 0").fetchone()[0]
        assert n == len(truth)
        ids = [r[0] for r in db.conn.execute("SELECT id FROM image_view WHERE class IN ('Grey Fox', 'Chicken')")]
        with db.transaction() as c:  # a saved selection made by hand: the export reads its members
            c.execute("INSERT INTO selections (name, created_at, updated_at, method, seed, params) "
                      "VALUES ('s', 'x', 'x', 'random', 0, '{}')")
            c.executemany("INSERT INTO selection_members (selection_id, image_id, added_at, round) "
                          "SELECT id, ?, 'x', 1 FROM selections WHERE name = 's'", [(i,) for i in ids])
        for fmt in ("md", "coco"):
            out = tmp_path / f"{fmt}.json"
            export_selection(db, fmt, out, selection="s")
            assert len(json.loads(out.read_text("utf-8"))["images"]) == 6
            import_file(db, out, source=f"back-{fmt}")
        picked = {r[0] for r in db.conn.execute("SELECT rel_path FROM image_view WHERE id IN "
                                                "(SELECT image_id FROM selection_members)")}
        assert labels(db, "back-coco") == {k: v for k, v in labels(db, "coco").items() if k in picked}
        assert labels(db, "back-md") == {k: v for k, v in labels(db, "megadetector").items() if k in picked}
