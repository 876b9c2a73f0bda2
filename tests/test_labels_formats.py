"""indexer.labels.import_file: MegaDetector, SpeciesNet, COCO Camera Traps, Camtrap DP, Timelapse
and simple CSV files made here; bad files; the query columns of image_view."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.db import Database
from indexer.labels import LabelError, detect_format, import_file
from indexer.labels import common
from indexer.selection import select
from indexer.sequences import load_features

NOW = "2024-01-01T00:00:00.000000Z"
FILES = ["cam1/a.jpg", "cam1/b.jpg", "cam1/c.jpg", "cam2/d.jpg", "cam2/e.jpg", "cam2/sub/f.jpg"]


def add(db: Database, root: str, files: list[str], size: tuple[int, int] = (1000, 500)) -> None:
    """Minimal indexed rows (features irrelevant here) for root-relative paths."""
    rid = db.add_root(root)
    rows = []
    for n, rel in enumerate(files):
        folder, _, name = rel.rpartition("/")
        rows.append((rid, folder, name, 1000, n * 10**9, n, n, n, 100.0, 10.0, 0, *size, NOW, NOW))
    with db.transaction() as c:
        c.executemany("INSERT INTO images (root_id, folder, name, state, size, mtime_ns, dhash, ahash, phash, "
                      "brightness, color_variance, is_gray, width, height, first_seen_at, indexed_at) "
                      "VALUES (?, ?, ?, 'indexed', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


@pytest.fixture
def db(tmp_path: Path):
    d = Database(tmp_path / "index.db", create=True)
    add(d, "/arch", FILES)
    yield d
    d.close()


def view(db: Database, cols: str) -> dict[str, tuple]:
    return {r[0]: tuple(r[1:]) for r in db.conn.execute(f"SELECT rel_path, {cols} FROM image_view")}


def labels(db: Database, source: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rel, lab in db.conn.execute("SELECT v.rel_path, l.label FROM labels l JOIN image_view v ON v.id = l.image_id "
                                    "WHERE l.source = ? ORDER BY v.rel_path, l.rank", (source,)):
        out.setdefault(rel, []).append(lab)
    return out


def write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


MD = {
    "info": {"format_version": "1.4", "detector": "md_v5a.0.0"},
    "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
    "classification_categories": {"0": "fox", "1": "deer"},
    "images": [
        {"file": "cam1\\a.jpg", "detections": [  # Windows separators
            {"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2], "classifications": [["0", 0.8], ["1", 0.1]]},
            {"category": "2", "conf": 0.6, "bbox": [0.5, 0.5, 0.2, 0.3]}]},   # multi-label: fox and person
        {"file": "cam1/b.jpg", "detections": [{"category": "1", "conf": 0.1, "bbox": [0, 0, 0.5, 0.5]}]},  # below
        {"file": "cam1/c.jpg", "detections": [{"category": "3", "conf": 0.95, "bbox": [0.2, 0.2, 0.9, 0.1]},  # out
                                              {"category": "7", "conf": 0.9, "bbox": [0, 0, 0.1, 0.1]},  # unknown id
                                              {"category": "1", "conf": 0.5, "bbox": [0, 0, 0.1, 0.1]}]},
        {"file": "cam2/d.jpg", "failure": "Failure image access"},
        {"file": "cam2/d.jpg", "detections": []},                      # duplicated entry
        {"file": "/elsewhere/cam2/zz.jpg", "detections": []},          # not in the index
        {"file": "sub/f.jpg", "detections": [{"category": "1", "conf": 0.7, "bbox": [0.1, 0.2, 0.3, 0.4],
                                               "classifications": [["1", 0.9]]}]},   # unique suffix
    ],
}


def test_megadetector_every_box_stored_class_by_rule_and_skips_counted(db, tmp_path):
    s = import_file(db, write(tmp_path / "md.json", MD))
    assert (s.format, s.source, s.threshold) == ("md", "megadetector", 0.2)
    assert s.rows == 7 and s.matched == 5 and s.labeled == 4 and s.detections == 5
    assert s.unknown == ["/elsewhere/cam2/zz.jpg"] and s.duplicates == ["cam2/d.jpg"]
    assert s.failures == ["cam2/d.jpg: Failure image access"]
    assert any("box [0.2, 0.2, 0.9, 0.1] is not inside [0, 1]" in b for b in s.bad_rows)
    assert any("unknown category id '7'" in b for b in s.bad_rows)
    assert labels(db, "megadetector") == {"cam1/a.jpg": ["fox", "person"], "cam1/b.jpg": ["empty"],
                                          "cam1/c.jpg": ["animal"], "cam2/sub/f.jpg": ["deer"]}
    v = view(db, "class, class_score, n_detections, md_animal_conf, md_person_conf, md_vehicle_conf, is_empty")
    assert v["cam1/a.jpg"] == ("fox", 0.8, 2, 0.9, 0.6, None, 0)
    assert v["cam1/b.jpg"] == ("empty", None, 0, 0.1, None, None, 1)
    assert v["cam1/c.jpg"] == ("animal", 0.5, 1, 0.5, None, None, 0)
    assert v["cam2/d.jpg"] == (None, None, 0, None, None, None, None)
    person = db.conn.execute("SELECT COUNT(*) FROM image_view WHERE id IN (SELECT image_id FROM labels "
                             "WHERE label = 'person')").fetchone()[0]
    assert person == 1
    sel = select(db, target=10, where="has_label(all_labels, 'person')", method="random")
    assert [im.rel_path for im in sel.images] == ["cam1/a.jpg"]
    box = db.conn.execute("SELECT x, y, w, h, classification, classification_conf FROM detections d "
                          "JOIN image_view v ON v.id = d.image_id WHERE v.rel_path = 'cam2/sub/f.jpg'").fetchone()
    assert tuple(box) == (0.1, 0.2, 0.3, 0.4, "deer", 0.9)


def test_megadetector_threshold_and_reimport_replaces_the_images_it_names(db, tmp_path):
    f = write(tmp_path / "md.json", MD)
    import_file(db, f, threshold=0.65)
    assert labels(db, "megadetector")["cam1/a.jpg"] == ["fox"]
    assert view(db, "is_empty, n_detections")["cam1/c.jpg"] == (1, 0)
    s = import_file(db, f)  # the same images again: their rows are replaced, not doubled
    assert s.removed == 4
    assert db.conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0] == 5
    assert labels(db, "megadetector")["cam1/a.jpg"] == ["fox", "person"]


def test_megadetector_categories_after_the_images(db, tmp_path):
    doc = {"images": MD["images"][:1], "detection_categories": MD["detection_categories"],
           "classification_categories": MD["classification_categories"], "info": MD["info"]}
    import_file(db, write(tmp_path / "late.json", doc), fmt="md")
    assert labels(db, "megadetector") == {"cam1/a.jpg": ["fox", "person"]}


def test_bad_files_give_one_line_errors_and_change_nothing(db, tmp_path, monkeypatch):
    import_file(db, write(tmp_path / "md.json", MD))
    before = db.conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0]
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [{"file": "cam1/a.jpg", "detections": []}, {"file": "cam1/b.jpg", "det', "utf-8")
    with pytest.raises(LabelError, match=r"bad.json is not valid JSON: .* at offset \d+"):
        import_file(db, bad, fmt="md")
    coco = write(tmp_path / "coco.json", {"images": [{"id": 1, "file_name": "cam1/a.jpg"}], "annotations": [],
                                          "categories": [{"id": 1, "name": "fox"}]})
    with pytest.raises(LabelError, match="image 1 has no 'file': not MegaDetector batch output"):
        import_file(db, coco, fmt="md")
    with pytest.raises(LabelError, match="not a COCO Camera Traps file"):
        import_file(db, write(tmp_path / "md2.json", MD), fmt="coco")
    nopath = tmp_path / "nopath.csv"
    nopath.write_text("species,count\nfox,1\n", encoding="utf-8")
    with pytest.raises(LabelError, match="no path column"):
        import_file(db, nopath)
    # an error after part of the file was written (batches of 2 here) rolls the whole import back
    monkeypatch.setattr(common, "BATCH", 2)
    late = dict(MD, images=[*MD["images"][:3], {"file": "cam2/e.jpg", "detections": "x"}, {"nofile": 1}])
    with pytest.raises(LabelError, match="image 5 has no 'file'"):
        import_file(db, write(tmp_path / "late.json", late), source="other")
    assert db.conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == before
    assert db.conn.execute("SELECT COUNT(*) FROM labels WHERE source = 'other'").fetchone()[0] == 0


COCO = {
    "info": {"version": "1.0", "description": "made by a test"},
    "images": [
        {"id": "i1", "file_name": "cam1/a.jpg", "width": 1000, "height": 500, "location": "L1",
         "datetime": "2024-05-01 10:00:00", "seq_id": "s1", "frame_num": 0},
        {"id": "i2", "file_name": "cam1/b.jpg", "width": 1000, "height": 500, "location": "L1",
         "datetime": "2024-05-01 10:00:01", "seq_id": "s1", "frame_num": 1},
        {"id": "i3", "file_name": "cam1/c.jpg", "location": "L1", "seq_id": "s2", "frame_num": 0},
        {"id": "i4", "file_name": "cam2/d.jpg", "location": "L2", "seq_id": "s3", "frame_num": 0},
        {"id": "i4", "file_name": "cam2/e.jpg"},                          # duplicated id
    ],
    "annotations": [
        {"id": 1, "image_id": "i1", "category_id": 1, "bbox": [100, 50, 200, 100]},
        {"id": 2, "image_id": "i1", "category_id": 2, "bbox": [500, 250, 100, 100]},   # deer and fox
        {"id": 3, "image_id": "i1", "category_id": 1},
        {"id": 4, "image_id": "i2", "category_id": 1},
        {"id": 5, "image_id": "i3", "category_id": 0},
        {"id": 6, "image_id": "i4", "category_id": 9},                                  # unknown category
        {"id": 6, "image_id": "i4", "category_id": 1},                                  # duplicated id
        {"id": 7, "image_id": "i2", "category_id": 2, "bbox": [900, 0, 200, 10]},       # box outside
    ],
    "categories": [{"id": 0, "name": "empty"}, {"id": 1, "name": "deer"}, {"id": 2, "name": "fox"}],
}


def test_coco_labels_boxes_locations_and_sequences(db, tmp_path):
    s = import_file(db, write(tmp_path / "coco.json", COCO))
    assert (s.format, s.source, s.matched, s.labeled) == ("coco", "coco", 4, 3)
    assert any("unknown category id 9" in b for b in s.bad_rows) and any("outside" in b or "not inside" in b
                                                                       for b in s.bad_rows)
    assert "image id i4 (cam2/e.jpg)" in s.duplicates and "annotation id 6" in s.duplicates
    assert labels(db, "coco") == {"cam1/a.jpg": ["deer", "fox"], "cam1/b.jpg": ["deer"], "cam1/c.jpg": ["empty"]}
    v = view(db, "class, location, seq_id, frame_num, is_empty, file_time")
    assert v["cam1/a.jpg"] == ("deer", "L1", "s1", 0, 0, "2024-05-01 10:00:00")
    assert v["cam1/c.jpg"] == ("empty", "L1", "s2", 0, 1, None)
    assert v["cam2/d.jpg"] == (None, "L2", "s3", 0, None, None)
    box = db.conn.execute("SELECT x, y, w, h FROM detections WHERE category = 'fox'").fetchall()
    assert [tuple(b) for b in box] == [(0.5, 0.5, 0.1, 0.2)]
    # the data set's sequences win over EXIF bursts (every frame here is 1 s apart in one folder)
    load_features(db, burst_gap=0)
    seq = view(db, "id, sequence")
    assert seq["cam1/b.jpg"][1] == seq["cam1/a.jpg"][0] and seq["cam1/c.jpg"][1] == seq["cam1/c.jpg"][0]
    n = db.conn.execute("SELECT COUNT(*) FROM image_view WHERE location = 'L1'").fetchone()[0]
    assert n == 3


SPECIESNET = {"predictions": [
    {"filepath": "/data/cam1/a.jpg", "prediction": "u1;mammalia;carnivora;canidae;vulpes;vulpes;red fox",
     "prediction_score": 0.91, "prediction_source": "classifier",
     "detections": [{"category": "1", "label": "animal", "conf": 0.93, "bbox": [0.1, 0.1, 0.3, 0.3]}]},
    {"filepath": "/data/cam1/b.jpg", "prediction": "f1;;;;;;blank", "prediction_score": 0.8, "detections": []},
    {"filepath": "/data/cam1/c.jpg", "failures": ["CLASSIFIER", "DETECTOR"]},
]}


@pytest.mark.parametrize("level, expected", [("common", "red fox"), ("species", "vulpes vulpes"),
                                              ("genus", "vulpes"), ("family", "canidae")])
def test_speciesnet_taxon_levels(db, tmp_path, level, expected):
    s = import_file(db, write(tmp_path / "sn.json", SPECIESNET), taxon_level=level)
    assert (s.format, s.source, s.matched, s.labeled, len(s.failures)) == ("speciesnet", "speciesnet", 3, 2, 1)
    v = view(db, "class, class_score, is_empty, md_animal_conf")
    assert v["cam1/a.jpg"] == (expected, 0.91, 0, 0.93)
    assert v["cam1/b.jpg"] == ("blank", 0.8, 1, None)


def write_camtrapdp(folder: Path) -> Path:
    folder.mkdir()
    (folder / "deployments.csv").write_text(
        "deploymentID,latitude,longitude,deploymentStart,deploymentEnd\n"
        "dep1,51.0,4.0,2024-05-01T00:00:00Z,2024-05-02T00:00:00Z\n"
        "dep2,51.1,4.1,2024-05-01T00:00:00Z,2024-05-02T00:00:00Z\n", "utf-8")
    (folder / "media.csv").write_text(
        "mediaID,deploymentID,captureMethod,timestamp,filePath,filePublic,fileName,fileMediatype\n"
        "m1,dep1,activityDetection,2024-05-01T10:00:00Z,media/cam1/a.jpg,false,a.jpg,image/jpeg\n"
        "m2,dep1,activityDetection,2024-05-01T10:00:02Z,media/cam1/b.jpg,false,b.jpg,image/jpeg\n"
        "m3,dep1,activityDetection,2024-05-01T12:00:00Z,media/cam1/c.jpg,false,c.jpg,image/jpeg\n"
        "m4,dep2,timeLapse,2024-05-01T12:00:00Z,media/cam2/d.jpg,false,d.jpg,image/jpeg\n", "utf-8")
    (folder / "observations.csv").write_text(
        "observationID,deploymentID,mediaID,eventID,eventStart,eventEnd,observationLevel,observationType,"
        "scientificName,count,bboxX,bboxY,bboxWidth,bboxHeight,classificationProbability\n"
        "o1,dep1,,e1,2024-05-01T10:00:00Z,2024-05-01T10:00:05Z,event,animal,Vulpes vulpes,1,,,,,\n"
        "o2,dep1,m1,e1,2024-05-01T10:00:00Z,2024-05-01T10:00:00Z,media,animal,Capreolus capreolus,1,"
        "0.1,0.1,0.2,0.2,0.7\n"
        "o3,dep1,m3,e2,2024-05-01T12:00:00Z,2024-05-01T12:00:00Z,media,blank,,,,,,,\n"
        "o4,dep2,m4,e3,2024-05-01T12:00:00Z,2024-05-01T12:00:00Z,media,human,,,,,,,\n", "utf-8")
    desc = {"name": "test", "profile": "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0/camtrap-dp-profile.json",
            "resources": [{"name": n, "path": f"{n}.csv", "profile": "tabular-data-resource"}
                          for n in ("deployments", "media", "observations")]}
    return write(folder / "datapackage.json", desc)


def test_camtrapdp_media_and_event_observations(db, tmp_path):
    f = write_camtrapdp(tmp_path / "pkg")
    assert detect_format(f) == "camtrapdp"
    s = import_file(db, f)
    assert (s.format, s.source, s.labeled) == ("camtrapdp", "camtrapdp", 4)
    assert labels(db, "camtrapdp") == {"cam1/a.jpg": ["Capreolus capreolus", "Vulpes vulpes"],
                                       "cam1/b.jpg": ["Vulpes vulpes"], "cam1/c.jpg": ["blank"],
                                       "cam2/d.jpg": ["human"]}
    v = view(db, "location, seq_id, is_empty, class_score")
    assert v["cam1/a.jpg"] == ("dep1", "e1", 0, 0.7) and v["cam1/b.jpg"][:2] == ("dep1", "e1")
    assert v["cam1/c.jpg"][2] == 1 and v["cam2/d.jpg"][0] == "dep2"


def test_timelapse_csv_with_windows_relative_paths(db, tmp_path):
    f = tmp_path / "tl.csv"
    f.write_text("File,RelativePath,DateTime,DeleteFlag,Species,Count\n"
                 "a.jpg,cam1,2024-05-01 10:00:00,false,fox,1\n"
                 "f.jpg,cam2\\sub,2024-05-01 10:00:00,false,deer,2\n"
                 "b.jpg,cam1,2024-05-01 10:00:00,false,,0\n"
                 "zz.jpg,cam9,2024-05-01 10:00:00,false,bear,1\n", "utf-8")
    assert detect_format(f) == "timelapse"
    s = import_file(db, f)
    assert (s.format, s.matched, s.labeled, s.unknown) == ("timelapse", 3, 2, ["cam9/zz.jpg"])
    assert labels(db, "timelapse") == {"cam1/a.jpg": ["fox"], "cam2/sub/f.jpg": ["deer"]}
    with pytest.raises(LabelError, match="no column 'Kind'"):
        import_file(db, f, label_column="Kind")
    f.write_text("File,RelativePath,DateTime,Animal\na.jpg,cam1,2024-05-01 10:00:00,true\n", "utf-8")
    with pytest.raises(LabelError, match=r"--label-column \(columns: Animal\)"):
        import_file(db, f)


def test_detect_format_and_unknown_json(tmp_path):
    assert detect_format(write(tmp_path / "a.json", MD)) == "md"
    assert detect_format(write(tmp_path / "b.json", COCO)) == "coco"
    assert detect_format(write(tmp_path / "c.json", SPECIESNET)) == "speciesnet"
    with pytest.raises(LabelError, match="a JSON file of no format indexer knows"):
        detect_format(write(tmp_path / "d.json", {"hello": 1}))
