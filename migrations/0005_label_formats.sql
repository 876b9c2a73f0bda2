-- 0005: classes from the field's own files (MegaDetector, SpeciesNet, COCO Camera Traps, Camtrap DP,
-- Timelapse): every label of multi-label images, one row per detection box, the locations and
-- sequences those files give, and the query columns over them at the end of the views.
-- Released files are never edited: schema changes go in a new numbered file.

DROP VIEW selection_images;
DROP VIEW image_view;
DROP VIEW image_files;

-- labels: several labels per image and source (a deer and a fox; MegaDetector's animal and person).
-- rank 0 is the label the file's own rule puts first for the image (README: "Which label is the
-- class"); image_view.class takes, of the source with the lowest precedence, the label of lowest rank.
CREATE TABLE labels_0005 (
    id         INTEGER PRIMARY KEY,
    image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    source     TEXT NOT NULL,               -- a label_sources.source (unknown sources rank last)
    confidence REAL,                        -- 0-1 when the source gives one, else NULL
    created_at TEXT NOT NULL,               -- UTC ISO-8601
    rank       INTEGER NOT NULL DEFAULT 0,  -- 0: the image's first label in this source; 1, 2 ... the others
    UNIQUE (image_id, source, label)
);
INSERT INTO labels_0005 (id, image_id, label, source, confidence, created_at, rank)
    SELECT id, image_id, label, source, confidence, created_at, 0 FROM labels;
DROP TABLE labels;
ALTER TABLE labels_0005 RENAME TO labels;
CREATE INDEX labels_label ON labels (label);  -- (image_id, ...) lookups use the UNIQUE index

-- Ground-truth data sets and human review beat model output.
INSERT INTO label_sources (source, precedence, description) VALUES
    ('coco',       5,  'indexer labels import FILE (COCO Camera Traps JSON)'),
    ('camtrapdp',  6,  'indexer labels import datapackage.json (Camtrap DP)'),
    ('timelapse',  8,  'indexer labels import FILE.csv (Timelapse export)'),
    ('speciesnet', 25, 'indexer labels import FILE (SpeciesNet predictions JSON)');
UPDATE label_sources SET description = 'indexer labels import FILE (MegaDetector batch output)'
    WHERE source = 'megadetector';

-- One row per import source: the format, the threshold and what the file said about itself
-- (info, category maps, the package descriptor), kept so that exports write the same format back.
CREATE TABLE label_imports (
    source      TEXT PRIMARY KEY,
    format      TEXT NOT NULL,              -- md, speciesnet, coco, camtrapdp, timelapse, csv
    file        TEXT NOT NULL,              -- the imported file, as given
    imported_at TEXT NOT NULL,              -- UTC ISO-8601
    threshold   REAL,                       -- md/speciesnet: boxes below it do not count
    meta        TEXT NOT NULL DEFAULT '{}'  -- JSON: info, detection_categories, categories, columns ...
);

-- One row per box (MegaDetector / SpeciesNet detections, COCO and Camtrap DP annotations).
CREATE TABLE detections (
    id                  INTEGER PRIMARY KEY,
    image_id            INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    source              TEXT NOT NULL,      -- the label source of the import
    category            TEXT NOT NULL,      -- animal / person / vehicle (MD), or the annotation's class
    conf                REAL,               -- detector confidence 0-1; NULL for ground truth
    x                   REAL,               -- box, normalized to [0, 1], origin top left; NULL: no box
    y                   REAL,
    w                   REAL,
    h                   REAL,
    classification      TEXT,               -- top species classification of the box (MD), else NULL
    classification_conf REAL,
    extra               TEXT                -- JSON: fields carried through to exports
);
CREATE INDEX detections_image ON detections (image_id, source);

-- What a file says about an image: emptiness at the import's threshold, camera location or
-- deployment, its own sequence (COCO seq_id, Camtrap DP eventID) and frame number.
CREATE TABLE image_meta (
    image_id  INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    source    TEXT NOT NULL,
    is_empty  INTEGER,                      -- 1: nothing above the threshold / blank; NULL: not said
    location  TEXT,                         -- COCO location, Camtrap DP deploymentID
    seq_id    TEXT,                         -- COCO seq_id, Camtrap DP eventID
    frame_num INTEGER,
    file_time TEXT,                         -- COCO datetime, Camtrap DP timestamp, Timelapse DateTime
    failure   TEXT,                         -- MD: why the detector failed on the file
    extra     TEXT,                         -- JSON: the file's record, carried through to exports
    PRIMARY KEY (image_id, source)
) WITHOUT ROWID;
CREATE INDEX image_meta_seq ON image_meta (seq_id) WHERE seq_id IS NOT NULL;

-- A change of file-given sequences makes `select` rebuild its cache (sequences.py).
CREATE TRIGGER image_meta_seq_insert AFTER INSERT ON image_meta WHEN NEW.seq_id IS NOT NULL
BEGIN
    UPDATE select_cache_state SET dirty = 1 WHERE dirty = 0;
END;
CREATE TRIGGER image_meta_seq_delete AFTER DELETE ON image_meta WHEN OLD.seq_id IS NOT NULL
BEGIN
    UPDATE select_cache_state SET dirty = 1 WHERE dirty = 0;
END;

-- Every image in every state, with every column a --where or --per expression may use: the
-- columns of 0003 in the same order, then class_score ... file_time, and 0004's features_source.
CREATE VIEW image_files AS
SELECT
    i.id,
    r.path || '/' || CASE WHEN i.folder = '' THEN '' ELSE i.folder || '/' END || i.name AS path,
    r.path AS root,
    i.root_id,
    CASE WHEN i.folder = '' THEN '' ELSE i.folder || '/' END || i.name AS rel_path,
    i.folder,
    i.name,
    CASE WHEN i.folder = '' THEN NULL
         ELSE json_extract('[' || replace(json_quote(i.folder), '/', '","') || ']', '$[0]') END AS level1,
    CASE WHEN i.folder = '' THEN NULL
         ELSE json_extract('[' || replace(json_quote(i.folder), '/', '","') || ']', '$[1]') END AS level2,
    CASE WHEN i.folder = '' THEN NULL
         ELSE json_extract('[' || replace(json_quote(i.folder), '/', '","') || ']', '$[2]') END AS level3,
    CASE WHEN i.folder = '' THEN NULL
         ELSE json_extract('[' || replace(json_quote(i.folder), '/', '","') || ']', '$[3]') END AS level4,
    (SELECT l.label FROM labels l LEFT JOIN label_sources s ON s.source = l.source
      WHERE l.image_id = i.id
      ORDER BY COALESCE(s.precedence, 1000000), l.rank, l.confidence IS NULL, l.confidence DESC, l.created_at DESC
      LIMIT 1) AS class,
    (SELECT l.source FROM labels l LEFT JOIN label_sources s ON s.source = l.source
      WHERE l.image_id = i.id
      ORDER BY COALESCE(s.precedence, 1000000), l.rank, l.confidence IS NULL, l.confidence DESC, l.created_at DESC
      LIMIT 1) AS label_source,
    i.state,
    i.format, i.mode, i.width, i.height, i.size, i.mtime_ns,
    i.brightness, i.is_gray, i.color_variance, i.sharpness,
    i.captured_at,
    CAST(strftime('%H', i.captured_at) AS INTEGER) AS hour,
    CASE WHEN i.captured_at IS NULL OR strftime('%H', i.captured_at) IS NULL THEN NULL
         WHEN CAST(strftime('%H', i.captured_at) AS INTEGER) >= 20
           OR CAST(strftime('%H', i.captured_at) AS INTEGER) < 6 THEN 1 ELSE 0 END AS is_night,
    strftime('%Y-%m-%dT%H:%M:%S', i.mtime_ns / 1000000000, 'unixepoch') AS mtime,
    COALESCE(i.captured_at, strftime('%Y-%m-%dT%H:%M:%S', i.mtime_ns / 1000000000, 'unixepoch')) AS time,
    i.camera_make, i.camera_model,
    CASE WHEN i.dhash IS NULL THEN NULL ELSE printf('%016x', i.dhash) END AS dhash,
    CASE WHEN i.ahash IS NULL THEN NULL ELSE printf('%016x', i.ahash) END AS ahash,
    CASE WHEN i.phash IS NULL THEN NULL ELSE printf('%016x', i.phash) END AS phash,
    i.dhash AS dhash64, i.ahash AS ahash64, i.phash AS phash64,
    i.sequence_id AS sequence,
    i.error, i.attempts,
    i.first_seen_at, i.indexed_at, i.missing_since,
    (SELECT l.confidence FROM labels l LEFT JOIN label_sources s ON s.source = l.source
      WHERE l.image_id = i.id
      ORDER BY COALESCE(s.precedence, 1000000), l.rank, l.confidence IS NULL, l.confidence DESC, l.created_at DESC
      LIMIT 1) AS class_score,
    (SELECT json_group_array(label) FROM (SELECT DISTINCT label FROM labels WHERE image_id = i.id ORDER BY label))
      AS all_labels,
    (SELECT COUNT(*) FROM detections d JOIN label_imports li ON li.source = d.source
      WHERE d.image_id = i.id AND (d.conf IS NULL OR d.conf >= COALESCE(li.threshold, 0))) AS n_detections,
    (SELECT MAX(d.conf) FROM detections d WHERE d.image_id = i.id AND d.category = 'animal') AS md_animal_conf,
    (SELECT MAX(d.conf) FROM detections d WHERE d.image_id = i.id AND d.category = 'person') AS md_person_conf,
    (SELECT MAX(d.conf) FROM detections d WHERE d.image_id = i.id AND d.category = 'vehicle') AS md_vehicle_conf,
    (SELECT m.is_empty FROM image_meta m LEFT JOIN label_sources s ON s.source = m.source
      WHERE m.image_id = i.id AND m.is_empty IS NOT NULL ORDER BY COALESCE(s.precedence, 1000000) LIMIT 1) AS is_empty,
    (SELECT m.location FROM image_meta m LEFT JOIN label_sources s ON s.source = m.source
      WHERE m.image_id = i.id AND m.location IS NOT NULL ORDER BY COALESCE(s.precedence, 1000000) LIMIT 1) AS location,
    (SELECT m.seq_id FROM image_meta m LEFT JOIN label_sources s ON s.source = m.source
      WHERE m.image_id = i.id AND m.seq_id IS NOT NULL ORDER BY COALESCE(s.precedence, 1000000) LIMIT 1) AS seq_id,
    (SELECT m.frame_num FROM image_meta m LEFT JOIN label_sources s ON s.source = m.source
      WHERE m.image_id = i.id AND m.frame_num IS NOT NULL ORDER BY COALESCE(s.precedence, 1000000) LIMIT 1) AS frame_num,
    (SELECT m.file_time FROM image_meta m LEFT JOIN label_sources s ON s.source = m.source
      WHERE m.image_id = i.id AND m.file_time IS NOT NULL ORDER BY COALESCE(s.precedence, 1000000) LIMIT 1) AS file_time,
    i.features_source                       -- 0004's column ('draft' / 'exif-thumbnail'), left to this redefinition
FROM images i JOIN roots r ON r.id = i.root_id;

-- Live indexed images: what `select`, `buckets`, `labels` and `report` read.
CREATE VIEW image_view AS
SELECT * FROM image_files WHERE state = 'indexed';

-- Members of saved selections, by name, with their paths.
CREATE VIEW selection_images AS
SELECT s.name AS selection, m.round, m.added_at, v.*
FROM selection_members m
JOIN selections s ON s.id = m.selection_id
JOIN image_view v ON v.id = m.image_id;
