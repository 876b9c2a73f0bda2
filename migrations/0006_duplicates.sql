-- 0006: duplicates: files moved aside by `indexer duplicates --move-to` and where they went.
-- The moved image's row is marked `missing` (images.state keeps its three values); this table
-- says where the file is now, which manifest lists it, and whether `--undo` put it back.

CREATE TABLE moves (
    id          INTEGER PRIMARY KEY,
    image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    manifest    TEXT NOT NULL,            -- absolute path of the manifest CSV that lists the move
    from_path   TEXT NOT NULL,            -- where the file was (absolute; undecodable bytes as \xNN)
    to_path     TEXT NOT NULL,            -- where it is now
    from_raw    BLOB,                     -- exact bytes of from_path when it is not valid UTF-8, else NULL
    to_raw      BLOB,                     -- exact bytes of to_path when it is not valid UTF-8, else NULL
    group_no    INTEGER NOT NULL,         -- the duplicate group (as numbered in the plan)
    keeper_id   INTEGER,                  -- images.id of the image kept in its place
    reason      TEXT NOT NULL,            -- why this one was moved and not the keeper
    size        INTEGER NOT NULL,         -- bytes and st_mtime_ns of the file when moved: --undo
    mtime_ns    INTEGER NOT NULL,         --   refuses a file changed since
    moved_at    TEXT NOT NULL,            -- UTC ISO-8601
    undone_at   TEXT                      -- when `--undo` put it back; NULL while moved
);

CREATE INDEX moves_image ON moves (image_id);
CREATE INDEX moves_manifest ON moves (manifest);
