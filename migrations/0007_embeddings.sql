-- 0007: embeddings (issue 13): what the user's own ONNX image model sees in each image.
-- `indexer embed --model M.onnx` (or `scan --embed`) stores one L2-normalised vector per live image
-- and model, float16; several models live side by side. A model is its file's content (sha256)
-- together with the preprocessing it was run with: the same file under another preset is another
-- model. A changed image (scan found new content: size, mtime or hashes differ) loses its
-- embeddings through the trigger below, so they are made again from the new content.

CREATE TABLE embedding_models (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,            -- the model file's name without .onnx (what embedding:NAME means)
    sha256       TEXT NOT NULL,            -- of the .onnx file: a swapped file is another model
    path         TEXT NOT NULL,            -- where the file was when last used (absolute)
    dim          INTEGER NOT NULL,         -- length of each vector
    preset       TEXT NOT NULL,            -- dinov2, clip, imagenet (or custom with --mean/--std)
    resize       INTEGER NOT NULL,         -- short side resized to this (pixels) ...
    crop         INTEGER NOT NULL,         -- ... then this centre square fed to the model
    interpolation TEXT NOT NULL,           -- bicubic or bilinear
    mean         TEXT NOT NULL,            -- JSON [r, g, b] subtracted from pixels scaled to 0-1 ...
    std          TEXT NOT NULL,            -- ... then divided by this JSON [r, g, b]
    input_name   TEXT NOT NULL,            -- the model's image input (NCHW float32)
    output_name  TEXT NOT NULL,            -- the model's vector output
    created_at   TEXT NOT NULL,            -- UTC ISO-8601
    last_used_at TEXT NOT NULL,            -- last embed run with it
    UNIQUE (sha256, resize, crop, interpolation, mean, std, output_name)
);

CREATE TABLE embeddings (
    id         INTEGER PRIMARY KEY,
    image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    model_id   INTEGER NOT NULL REFERENCES embedding_models(id) ON DELETE CASCADE,
    vector     BLOB,                       -- dim float16 little-endian, L2 norm 1; NULL when failed
    error      TEXT,                       -- why this image could not be embedded; NULL when vector is set
    run_id     INTEGER REFERENCES runs(id),
    created_at TEXT NOT NULL,              -- UTC ISO-8601
    UNIQUE (model_id, image_id),
    CHECK ((vector IS NULL) != (error IS NULL))
);

CREATE INDEX embeddings_image ON embeddings (image_id);

-- New content: the vectors describe the old one. A move or rename (same content) keeps them.
CREATE TRIGGER embeddings_content_changed AFTER UPDATE OF size, mtime_ns, dhash, ahash, phash ON images
WHEN NEW.size IS NOT OLD.size OR NEW.mtime_ns IS NOT OLD.mtime_ns OR NEW.dhash IS NOT OLD.dhash
     OR NEW.ahash IS NOT OLD.ahash OR NEW.phash IS NOT OLD.phash
BEGIN
    DELETE FROM embeddings WHERE image_id = NEW.id;
END;
