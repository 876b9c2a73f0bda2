-- 0004: which source each image's features came from.
-- 'draft': the reduced (1/2 to 1/8) decode of the whole image, as every scan before 0004 did;
-- 'exif-thumbnail': the small preview embedded in the JPEG's EXIF block (scan --exif-thumbnails).
-- NULL for rows without features (failed files). Rows indexed before 0004 came from the draft decode.
-- Only the images table changes here: the views are redefined by a later migration.
ALTER TABLE images ADD COLUMN features_source TEXT
    CHECK (features_source IS NULL OR features_source IN ('draft', 'exif-thumbnail'));
UPDATE images SET features_source = 'draft' WHERE dhash IS NOT NULL;
