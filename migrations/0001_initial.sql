-- 0001: roots, images and runs: the index that `indexer scan` writes.
-- Released files are never edited: schema changes go in a new numbered file.

CREATE TABLE roots (
    id           INTEGER PRIMARY KEY,
    path         TEXT NOT NULL UNIQUE,      -- absolute path of the scan root, '/' separators
    added_at     TEXT NOT NULL,             -- UTC ISO-8601, when first scanned
    last_scan_at TEXT                       -- UTC ISO-8601, end of the last complete walk
);

CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    command      TEXT NOT NULL,             -- 'scan' or 'watch'
    status       TEXT NOT NULL CHECK (status IN ('running', 'completed', 'interrupted', 'crashed', 'failed')),
    started_at   TEXT NOT NULL,
    ended_at     TEXT,
    heartbeat_at TEXT NOT NULL,             -- refreshed at every batch commit while running
    pid          INTEGER NOT NULL,
    host         TEXT NOT NULL,
    params       TEXT NOT NULL,             -- JSON: roots, workers, batch, include, exclude, ...
    n_new        INTEGER NOT NULL DEFAULT 0,
    n_changed    INTEGER NOT NULL DEFAULT 0,
    n_unchanged  INTEGER NOT NULL DEFAULT 0,
    n_restored   INTEGER NOT NULL DEFAULT 0,
    n_moved      INTEGER NOT NULL DEFAULT 0,
    n_missing    INTEGER NOT NULL DEFAULT 0,
    n_failed     INTEGER NOT NULL DEFAULT 0,
    elapsed_s    REAL,
    error        TEXT,                      -- why the run failed, when status = 'failed'
    problems     TEXT                       -- JSON list of {path, error} for folders that could not be read
);

CREATE TABLE images (
    id             INTEGER PRIMARY KEY,
    root_id        INTEGER NOT NULL REFERENCES roots(id) ON DELETE CASCADE,
    folder         TEXT NOT NULL,           -- folder below the root, '/' separators, '' at the root
    name           TEXT NOT NULL,           -- file name
    state          TEXT NOT NULL CHECK (state IN ('indexed', 'failed', 'missing')),
    size           INTEGER NOT NULL,        -- bytes, when last decoded
    mtime_ns       INTEGER NOT NULL,        -- st_mtime_ns, when last decoded
    inode          INTEGER,
    device         INTEGER,
    format         TEXT,                    -- Pillow format: JPEG, PNG, TIFF, BMP, WEBP
    mode           TEXT,                    -- Pillow mode of the file: RGB, L, CMYK, P, RGBA, I;16 ...
    width          INTEGER,                 -- of the original image, in pixels
    height         INTEGER,
    dhash          INTEGER,                 -- 64-bit hashes, ImageHash bit order, stored signed
    ahash          INTEGER,
    phash          INTEGER,
    brightness     REAL,                    -- mean gray level, 0-255
    color_variance REAL,                    -- mean per-pixel variance of R, G, B (0 for pure gray)
    is_gray        INTEGER,                 -- 1 for grayscale or nearly gray (IR night) frames
    sharpness      REAL,                    -- variance of the Laplacian at 160 px wide
    captured_at    TEXT,                    -- EXIF DateTimeOriginal as ISO-8601, camera local time
    camera_make    TEXT,
    camera_model   TEXT,
    error          TEXT,                    -- why the file failed, NULL when indexed
    attempts       INTEGER NOT NULL DEFAULT 0,
    first_seen_at  TEXT NOT NULL,
    indexed_at     TEXT NOT NULL,           -- when it was last decoded (or its decode failed)
    missing_since  TEXT,                    -- when a scan found it gone; NULL while on disk
    run_id         INTEGER REFERENCES runs(id),
    UNIQUE (root_id, folder, name)
);

CREATE INDEX images_state ON images (state);
CREATE INDEX images_inode ON images (device, inode);

-- One row per image with its absolute path: what `export` and queries read.
CREATE VIEW image_files AS
SELECT
    i.id,
    r.path || '/' || CASE WHEN i.folder = '' THEN '' ELSE i.folder || '/' END || i.name AS path,
    r.path AS root,
    CASE WHEN i.folder = '' THEN '' ELSE i.folder || '/' END || i.name AS rel_path,
    i.folder, i.name, i.state, i.size, i.mtime_ns, i.format, i.mode, i.width, i.height,
    CASE WHEN i.dhash IS NULL THEN NULL ELSE printf('%016x', i.dhash) END AS dhash,
    CASE WHEN i.ahash IS NULL THEN NULL ELSE printf('%016x', i.ahash) END AS ahash,
    CASE WHEN i.phash IS NULL THEN NULL ELSE printf('%016x', i.phash) END AS phash,
    i.brightness, i.color_variance, i.is_gray, i.sharpness,
    i.captured_at, i.camera_make, i.camera_model, i.error, i.attempts,
    i.first_seen_at, i.indexed_at, i.missing_since
FROM images i JOIN roots r ON r.id = i.root_id;
