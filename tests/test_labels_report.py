"""The report shows the class with its score and draws MegaDetector boxes on the cached reduced
thumbnails, never on the originals."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PIL import Image

from indexer.db import Database
from indexer.labels import import_file
from indexer.report import make_report
from indexer.scan import scan

from imaging import make_archive


def test_report_draws_boxes_on_thumbnails_and_shows_scores(tmp_path):
    root = tmp_path / "archive"
    paths = make_archive(root, cameras=1, per_camera=2, size=(320, 240))
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    md = {"info": {"format_version": "1.4"}, "detection_categories": {"1": "animal"},
          "classification_categories": {"0": "fox"},
          "images": [{"file": str(paths[0].relative_to(root)),
                      "detections": [{"category": "1", "conf": 0.9, "bbox": [0.25, 0.25, 0.5, 0.5],
                                      "classifications": [["0", 0.87]]}]},
                     {"file": str(paths[1].relative_to(root)), "detections": []}]}
    (tmp_path / "md.json").write_text(json.dumps(md), "utf-8")
    with Database(tmp_path / "index.db", create=True) as db:
        scan(db, [root], workers=1)
        import_file(db, tmp_path / "md.json")
        make_report(db, tmp_path / "rep", per="class", workers=1, progress=False)
    html = (tmp_path / "rep" / "index.html").read_text("utf-8")
    assert '<span class="cls">fox 0.87</span>' in html and '<span class="cls">empty</span>' in html
    boxed = sorted((tmp_path / "rep" / "thumbs").glob("*-b*.jpg"))
    plain = [p for p in (tmp_path / "rep" / "thumbs").glob("*.jpg") if p not in boxed]
    assert len(boxed) == 1 and len(plain) == 1
    with Image.open(boxed[0]) as im:
        w, h = im.size
        r, g, b = im.convert("RGB").getpixel((w // 2, h // 4))  # on the box's top edge
    assert g > 150 and r < 120 and b < 120
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths} == digest


def test_classes_table_shows_each_class_with_its_score(tmp_path):
    root = tmp_path / "archive"
    paths = make_archive(root, cameras=1, per_camera=4, size=(160, 120))
    confs = [0.9, 0.7, 0.6]  # three fox frames, classified at these scores; the last frame empty
    md = {"info": {"format_version": "1.4"}, "detection_categories": {"1": "animal"},
          "classification_categories": {"0": "fox"},
          "images": [{"file": str(p.relative_to(root)),
                      "detections": [{"category": "1", "conf": 0.95, "bbox": [0.1, 0.1, 0.3, 0.3],
                                      "classifications": [["0", c]]}]} for p, c in zip(paths, confs)]
          + [{"file": str(paths[3].relative_to(root)), "detections": []}]}
    (tmp_path / "md.json").write_text(json.dumps(md), "utf-8")
    with Database(tmp_path / "index.db", create=True) as db:
        scan(db, [root], workers=1)
        import_file(db, tmp_path / "md.json")
        make_report(db, tmp_path / "rep", workers=1, progress=False)
    html = (tmp_path / "rep" / "index.html").read_text("utf-8")
    table = html[html.index('<table id="classes">'):]
    table = table[:table.index("</table>")]
    assert "score: mean (lowest)" in table
    assert '<td class="path">fox</td><td class=n>3</td><td class=n title="3 scored images">0.73 (0.60)</td>' in table
