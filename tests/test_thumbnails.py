"""`indexer scan --exif-thumbnails`: features from the preview embedded in a JPEG's EXIF block.

The previews are embedded by benchmarks/embed_thumbnails.py (as trail-camera firmware writes
them: 160x120, letterboxed); the real photos in ../shared get theirs the same way in the last test.
"""
from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from imaging import save_jpeg, scene
from indexer.db import Database
from indexer.features import (SOURCE_DRAFT, SOURCE_THUMBNAIL, crop_bars, features_from_file,
                              features_from_thumbnail, read_jpeg_head)
from indexer.scan import scan

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from embed_thumbnails import embed  # noqa: E402  (a sibling script, not a package)

FRAME = (640, 360)  # 16:9, as 1080p trail-camera frames; the preview is 4:3


def bits(a: int, b: int) -> int:
    return bin((a ^ b) & (2**64 - 1)).count("1")


def framed(path: Path, seed: int = 1, *, gray: bool = False, **embed_options: object) -> Path:
    """A frame with EXIF time, make and model, then the same file with a preview embedded."""
    save_jpeg(scene(seed, FRAME, gray=gray), path, taken="2024:05:01 10:00:00", make="TESTCAM", model="T1",
              quality=90)
    path.write_bytes(embed(path.read_bytes(), **embed_options))  # type: ignore[arg-type]
    return path


class CountingReader(io.BufferedReader):
    def __init__(self, raw: io.RawIOBase) -> None:
        super().__init__(raw, buffer_size=4096)
        self.taken = 0

    def read(self, n: int | None = -1) -> bytes:  # type: ignore[override]
        data = super().read(n)
        self.taken += len(data)
        return data


def test_features_come_from_the_preview_and_agree_with_the_draft_decode(tmp_path):
    for seed, gray in ((1, False), (2, True), (3, False)):
        p = framed(tmp_path / f"f{seed}.jpg", seed, gray=gray)
        draft, thumb = features_from_file(p), features_from_file(p, thumbnails=True)
        assert (draft.features_source, thumb.features_source) == (SOURCE_DRAFT, SOURCE_THUMBNAIL)
        # the frame's own size, mode, format and EXIF fields, not the preview's
        for field in ("format", "mode", "width", "height", "captured_at", "camera_make", "camera_model"):
            assert getattr(thumb, field) == getattr(draft, field), field
        assert (thumb.width, thumb.height) == FRAME
        assert thumb.is_gray == draft.is_gray == gray
        assert abs(thumb.brightness - draft.brightness) < 3
        for h in ("dhash", "ahash", "phash"):
            assert bits(getattr(thumb, h), getattr(draft, h)) <= 12, h


def test_only_the_head_of_the_file_is_read(tmp_path):
    p = framed(tmp_path / "f.jpg")
    with open(p, "rb", buffering=0) as raw:
        reader = CountingReader(raw)
        assert features_from_thumbnail(reader) is not None
    assert reader.taken < 20_000 < p.stat().st_size / 2


def test_letterbox_bars_are_cropped_and_a_stretched_preview_is_kept_whole(tmp_path):
    boxed = read_jpeg_head(open(framed(tmp_path / "boxed.jpg"), "rb"))
    stretched = read_jpeg_head(open(framed(tmp_path / "stretched.jpg", stretch=True), "rb"))
    assert boxed is not None and stretched is not None and boxed.thumbnail and stretched.thumbnail
    with Image.open(io.BytesIO(boxed.thumbnail)) as im:
        assert im.size == (160, 120)
        cropped = crop_bars(im.convert("RGB"), *FRAME)
    assert cropped.size[0] == 160 and 86 <= cropped.size[1] <= 90  # 160x90 shows the frame, a pixel off each edge
    with Image.open(io.BytesIO(stretched.thumbnail)) as im:
        assert crop_bars(im.convert("RGB"), *FRAME).size == (160, 120)  # no bars: nothing to crop
    # a pillarboxed preview (a 4:3 frame in a 16:9 preview) loses its side bars
    pillar = Image.new("RGB", (160, 90))
    pillar.paste(scene(5, (120, 90)), (20, 0))
    assert crop_bars(pillar, 400, 300).size[0] in range(116, 121)
    a = features_from_file(tmp_path / "boxed.jpg", thumbnails=True)
    b = features_from_file(tmp_path / "stretched.jpg", thumbnails=True)
    assert bits(a.dhash, b.dhash) <= 8 and abs(a.brightness - b.brightness) < 3


@pytest.mark.parametrize("case", ["none", "too-small", "broken", "not-a-jpeg-preview", "png"])
def test_without_a_usable_preview_the_draft_decode_runs(tmp_path, case):
    p = tmp_path / "f.jpg"
    save_jpeg(scene(4, FRAME), p, taken="2024:05:01 10:00:00", quality=90)
    if case == "too-small":
        p.write_bytes(embed(p.read_bytes(), size=(48, 36)))
    elif case == "broken":
        p.write_bytes(embed(p.read_bytes(), thumbnail=b"\xff\xd8\xff\xdb" + b"\x00" * 300))
    elif case == "not-a-jpeg-preview":
        p.write_bytes(embed(p.read_bytes(), thumbnail=b"GIF89a" + b"\x00" * 300))
    elif case == "png":
        p = tmp_path / "f.png"
        scene(4, FRAME).save(p)
    got = features_from_file(p, thumbnails=True)
    assert got == features_from_file(p)
    assert got.features_source == SOURCE_DRAFT


def test_scan_records_the_source_of_each_row(tmp_path):
    root = tmp_path / "archive"
    framed(root / "cam1" / "IMG_0001.JPG", 1)
    framed(root / "cam1" / "IMG_0002.JPG", 2, gray=True)
    save_jpeg(scene(3, FRAME), root / "cam1" / "IMG_0003.JPG")  # no preview
    (root / "cam1" / "IMG_0004.JPG").write_bytes(b"not an image")
    thumbs, plain = tmp_path / "thumbs.db", tmp_path / "plain.db"
    for db, extra in ((thumbs, ["--exif-thumbnails"]), (plain, [])):
        r = subprocess.run([sys.executable, "-m", "indexer", "scan", str(root), "--db", str(db), "--quiet",
                            "--workers", "1", *extra], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    rows = dict(sqlite3.connect(thumbs).execute("SELECT name, features_source FROM images"))
    assert rows == {"IMG_0001.JPG": "exif-thumbnail", "IMG_0002.JPG": "exif-thumbnail", "IMG_0003.JPG": "draft",
                    "IMG_0004.JPG": None}
    rows = dict(sqlite3.connect(plain).execute("SELECT name, features_source FROM images"))
    assert rows == {"IMG_0001.JPG": "draft", "IMG_0002.JPG": "draft", "IMG_0003.JPG": "draft", "IMG_0004.JPG": None}
    params = sqlite3.connect(thumbs).execute("SELECT params FROM runs").fetchone()[0]
    assert '"exif_thumbnails": true' in params

    # select says where the features it compares came from; an all-draft index says nothing
    def select(db: Path) -> str:
        r = subprocess.run([sys.executable, "-m", "indexer", "select", "--db", str(db), "--target", "2"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stderr

    assert "EXIF thumbnail" not in select(plain)
    note = select(thumbs)
    assert "features of 2 images come from their embedded EXIF thumbnail and of 1 from the draft decode" in note


def test_old_rows_are_draft_after_migration_0004(tmp_path, archive):
    db_path = tmp_path / "index.db"
    with Database(db_path, create=True) as db:
        scan(db, [str(archive)], workers=1, progress=False)
        assert db.features_sources() == {"draft": 12}
    conn = sqlite3.connect(db_path)
    # as an index of schema 0003 was: no column; 0004 adds it and fills it for rows with features
    conn.execute("UPDATE images SET features_source = NULL")
    conn.commit()
    script = (Path(__file__).resolve().parent.parent / "migrations" / "0004_features_source.sql").read_text()
    update = [s for s in script.split(";") if "UPDATE" in s]
    conn.execute(update[0])
    conn.commit()
    assert conn.execute("SELECT COUNT(*) FROM images WHERE features_source = 'draft'").fetchone() == (12,)


def test_real_photos_with_embedded_previews(shared_samples, tmp_path):
    n = 0
    for p in sorted(shared_samples.rglob("*")):
        if p.suffix.lower() not in (".jpg", ".jpeg"):
            continue
        q = tmp_path / p.name
        q.write_bytes(embed(p.read_bytes()))
        draft, thumb = features_from_file(q), features_from_file(q, thumbnails=True)
        assert thumb.features_source == SOURCE_THUMBNAIL
        assert (thumb.width, thumb.height, thumb.captured_at) == (draft.width, draft.height, draft.captured_at)
        assert thumb.is_gray == draft.is_gray, p.name
        assert bits(thumb.dhash, draft.dhash) <= 10, p.name
        n += 1
    assert n >= 20


def test_watch_takes_the_same_option(tmp_path):
    from test_watch import WatchProc

    root = tmp_path / "archive"
    framed(root / "cam1" / "IMG_0001.JPG", 1)
    w = WatchProc(root, tmp_path / "index.db", "--exif-thumbnails")
    try:
        w.wait_until("SELECT COUNT(*) FROM images WHERE state = 'indexed'", 1)
        framed(root / "cam1" / "IMG_0002.JPG", 2)  # an arrival
        w.wait_until("SELECT COUNT(*) FROM images WHERE features_source = 'exif-thumbnail'", 2)
        assert w.stop() == 0
    finally:
        w.kill()
