-- 0003: exact bytes of file names that are not valid UTF-8, and one column vocabulary for
-- export, select, buckets, labels and the report.
-- Released files are never edited: schema changes go in a new numbered file.

-- A name or folder that is not valid UTF-8 (an old camera's or a Windows machine's Latin-1 'cam\xe9')
-- is stored in the TEXT columns with each undecodable byte written as the four characters \xNN
-- (Python's 'backslashreplace'), and its exact bytes here; NULL for every valid UTF-8 path.
ALTER TABLE images ADD COLUMN rel_raw BLOB;       -- exact bytes of folder/name below the root
ALTER TABLE roots ADD COLUMN path_raw BLOB;       -- exact bytes of the root path

DROP VIEW selection_images;
DROP VIEW image_view;
DROP VIEW image_files;

-- Every image in every state, with every column a --where or --per expression may use.
-- `export` reads this view (state 'indexed' unless --all); image_view is its live part.
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
      ORDER BY COALESCE(s.precedence, 1000000), l.confidence IS NULL, l.confidence DESC, l.created_at DESC
      LIMIT 1) AS class,
    (SELECT l.source FROM labels l LEFT JOIN label_sources s ON s.source = l.source
      WHERE l.image_id = i.id
      ORDER BY COALESCE(s.precedence, 1000000), l.confidence IS NULL, l.confidence DESC, l.created_at DESC
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
    i.first_seen_at, i.indexed_at, i.missing_since
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
