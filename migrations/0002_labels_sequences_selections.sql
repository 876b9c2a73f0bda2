-- 0002: labels (classes), burst sequences, saved selections, and the image_view that
-- `indexer select --where/--per` and `indexer buckets` query.
-- Released files are never edited: schema changes go in a new numbered file.

-- Where a label came from, and which source wins when an image has labels from several.
CREATE TABLE label_sources (
    source      TEXT PRIMARY KEY,           -- 'manual', 'csv', 'folders', 'megadetector', ...
    precedence  INTEGER NOT NULL,           -- lower wins in image_view.class
    description TEXT NOT NULL
);
INSERT INTO label_sources (source, precedence, description) VALUES
    ('manual',       0,  'set by hand (reserved for a later command)'),
    ('csv',          10, 'indexer labels import FILE.csv'),
    ('folders',      20, 'indexer labels from-folders --level N'),
    ('megadetector', 30, 'MegaDetector / classifier output (reserved for a later command)');

-- One label per image and source; importing again from the same source replaces it.
CREATE TABLE labels (
    id         INTEGER PRIMARY KEY,
    image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    source     TEXT NOT NULL,               -- a label_sources.source (unknown sources rank last)
    confidence REAL,                        -- 0-1 when the source gives one, else NULL
    created_at TEXT NOT NULL,               -- UTC ISO-8601
    UNIQUE (image_id, source)
);
CREATE INDEX labels_label ON labels (label);

-- Burst (sequence) of each image: the id of the first image of its run of frames from one
-- folder whose times (captured_at, else mtime) are at most burst_gap seconds apart.
-- Computed by `indexer select` (not by scan) whenever images changed: NULL until then.
ALTER TABLE images ADD COLUMN sequence_id INTEGER;

-- Derived data for `indexer select`, rebuilt in one pass when images changed (see docs/select.md):
-- the selection features of all live images as packed arrays in natural path order, and the
-- sequences. `dirty` is set by the triggers below whenever scan or watch touches images.
CREATE TABLE select_cache_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    burst_gap   REAL,                       -- seconds, used for the stored sequence ids
    computed_at TEXT,                       -- UTC ISO-8601
    dirty       INTEGER NOT NULL            -- 1: images were added, moved, changed or lost since
);
INSERT INTO select_cache_state (id, burst_gap, computed_at, dirty) VALUES (1, NULL, NULL, 1);

CREATE TABLE select_cache (
    key   TEXT PRIMARY KEY,                 -- 'id', 'dhash', ..., 'folders' (JSON)
    value BLOB NOT NULL                     -- little-endian numpy array bytes, or UTF-8 JSON
);

CREATE TRIGGER images_touch_insert AFTER INSERT ON images
BEGIN
    UPDATE select_cache_state SET dirty = 1 WHERE dirty = 0;
END;
CREATE TRIGGER images_touch_update
AFTER UPDATE OF root_id, folder, name, state, mtime_ns, captured_at, dhash, ahash, phash, brightness,
                color_variance, is_gray ON images
BEGIN
    UPDATE select_cache_state SET dirty = 1 WHERE dirty = 0;
END;
CREATE TRIGGER images_touch_delete AFTER DELETE ON images
BEGIN
    UPDATE select_cache_state SET dirty = 1 WHERE dirty = 0;
END;
CREATE TRIGGER roots_touch_update AFTER UPDATE OF path ON roots
BEGIN
    UPDATE select_cache_state SET dirty = 1 WHERE dirty = 0;
END;

-- Saved selections (`select --save NAME`), grown by `select --extend NAME`.
CREATE TABLE selections (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,               -- UTC ISO-8601, round 1
    updated_at TEXT NOT NULL,               -- UTC ISO-8601, the last round (--extend)
    method     TEXT NOT NULL,               -- diverse, kcenter, buckets, window, random
    seed       INTEGER NOT NULL,
    params     TEXT NOT NULL                -- JSON: where, per, target spec, burst_gap, rounds [...]
);

CREATE TABLE selection_members (
    selection_id INTEGER NOT NULL REFERENCES selections(id) ON DELETE CASCADE,
    image_id     INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    added_at     TEXT NOT NULL,             -- UTC ISO-8601
    round        INTEGER NOT NULL,          -- 1 for --save, 2, 3, ... for each --extend
    PRIMARY KEY (selection_id, image_id)
) WITHOUT ROWID;
CREATE INDEX selection_members_image ON selection_members (image_id);

-- Live indexed images with everything a --where or --per expression may use.
-- level1..level4: the 1st..4th folder below the scan root (NULL when the folder is shallower).
CREATE VIEW image_view AS
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
      ORDER BY COALESCE(s.precedence, 1000000), l.confidence IS NULL, l.confidence DESC, l.created_at DESC
      LIMIT 1) AS class,
    (SELECT l.source FROM labels l LEFT JOIN label_sources s ON s.source = l.source
      WHERE l.image_id = i.id
      ORDER BY COALESCE(s.precedence, 1000000), l.confidence IS NULL, l.confidence DESC, l.created_at DESC
      LIMIT 1) AS label_source,
    i.format, i.mode, i.width, i.height, i.size,
    i.brightness, i.is_gray, i.color_variance, i.sharpness,
    i.captured_at,
    strftime('%Y-%m-%dT%H:%M:%S', i.mtime_ns / 1000000000, 'unixepoch') AS mtime,
    COALESCE(i.captured_at, strftime('%Y-%m-%dT%H:%M:%S', i.mtime_ns / 1000000000, 'unixepoch')) AS time,
    i.camera_make, i.camera_model,
    CASE WHEN i.dhash IS NULL THEN NULL ELSE printf('%016x', i.dhash) END AS dhash,
    CASE WHEN i.ahash IS NULL THEN NULL ELSE printf('%016x', i.ahash) END AS ahash,
    CASE WHEN i.phash IS NULL THEN NULL ELSE printf('%016x', i.phash) END AS phash,
    i.dhash AS dhash64, i.ahash AS ahash64, i.phash AS phash64,
    i.sequence_id AS sequence,
    i.first_seen_at, i.indexed_at
FROM images i JOIN roots r ON r.id = i.root_id
WHERE i.state = 'indexed';

-- Members of saved selections, by name, with their paths.
CREATE VIEW selection_images AS
SELECT s.name AS selection, m.round, m.added_at, v.*
FROM selection_members m
JOIN selections s ON s.id = m.selection_id
JOIN image_view v ON v.id = m.image_id;
