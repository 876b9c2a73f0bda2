#!/usr/bin/env python3
"""Give JPEGs the EXIF preview (IFD1 thumbnail) trail cameras embed, as their firmware does.

Usage::

    python benchmarks/embed_thumbnails.py SRC DST [--size 160x120] [--stretch] [--quality 75]

copies every JPEG under SRC to the same place under DST with a new EXIF block: the original's
EXIF IFD0 and Exif sub-IFD (make, model, capture times) and an IFD1 holding a JPEG preview of
the frame, `--size` pixels (default 160x120, the usual trail-camera size). A frame whose aspect
differs from the preview's is letterboxed or pillarboxed with black bars, as most cameras do
(`--stretch` squeezes it instead). File mtimes are kept.

`embed(jpeg_bytes, ...)` is the same as a function (tests/test_thumbnails.py and
bench_thumbnails.py use it); numpy is not needed, only Pillow.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import struct
import sys
from pathlib import Path

from PIL import Image

_EXIF = b"Exif\x00\x00"


def preview(im: Image.Image, size: tuple[int, int] = (160, 120), *, stretch: bool = False,
            quality: int = 75) -> bytes:
    """The JPEG preview a camera would write for frame `im`."""
    rgb = im.convert("RGB") if im.mode not in ("RGB", "L") else im
    tw, th = size
    if stretch:
        small = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    else:
        w, h = rgb.size
        scale = min(tw / w, th / h)
        inner = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = Image.new(rgb.mode, size, 0)
        small.paste(rgb.resize(inner, Image.Resampling.BILINEAR, reducing_gap=2.0),
                    ((tw - inner[0]) // 2, (th - inner[1]) // 2))
    out = io.BytesIO()
    small.save(out, "JPEG", quality=quality)
    return out.getvalue()


def tiff_with_thumbnail(exif: Image.Exif, thumbnail: bytes | None) -> bytes:
    """EXIF block (TIFF, without the 'Exif\\0\\0' prefix) of `exif`'s IFD0 and Exif sub-IFD, with
    an IFD1 pointing at `thumbnail` (JPEGInterchangeFormat/-Length) when one is given."""
    tiff = bytearray(exif.tobytes()[len(_EXIF):])
    if thumbnail is None:
        return bytes(tiff)
    order = "<" if tiff[:2] == b"II" else ">"
    (ifd0,) = struct.unpack(order + "I", tiff[4:8])
    (n,) = struct.unpack(order + "H", tiff[ifd0:ifd0 + 2])
    if len(tiff) % 2:
        tiff += b"\x00"
    ifd1 = len(tiff)
    struct.pack_into(order + "I", tiff, ifd0 + 2 + 12 * n, ifd1)
    data = ifd1 + 2 + 3 * 12 + 4
    tiff += struct.pack(order + "H", 3)
    tiff += struct.pack(order + "HHIHH", 0x0103, 3, 1, 6, 0)  # Compression: JPEG
    tiff += struct.pack(order + "HHII", 0x0201, 4, 1, data)  # JPEGInterchangeFormat
    tiff += struct.pack(order + "HHII", 0x0202, 4, 1, len(thumbnail))  # JPEGInterchangeFormatLength
    tiff += struct.pack(order + "I", 0)
    tiff += thumbnail
    return bytes(tiff)


def _segments(jpeg: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """(position of the first non-APPn segment, [(marker, start, end) of each APPn before it])."""
    pos, apps = 2, []
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF and 0xE0 <= jpeg[pos + 1] <= 0xEF:
        end = pos + 2 + int.from_bytes(jpeg[pos + 2:pos + 4], "big")
        apps.append((jpeg[pos + 1], pos, end))
        pos = end
    return pos, apps


def embed(jpeg: bytes, size: tuple[int, int] = (160, 120), *, stretch: bool = False, quality: int = 75,
          thumbnail: bytes | None = None) -> bytes:
    """`jpeg` with an EXIF block holding its original EXIF fields and a preview (made from the
    frame unless `thumbnail` gives the preview's bytes, which may be anything: a broken one)."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    with Image.open(io.BytesIO(jpeg)) as im:
        exif = im.getexif()
        if thumbnail is None:
            im.draft("RGB" if im.mode != "L" else "L", (size[0] * 2, size[1] * 2))
            thumbnail = preview(im, size, stretch=stretch, quality=quality)
    block = _EXIF + tiff_with_thumbnail(exif, thumbnail)
    if len(block) + 2 > 65535:
        raise ValueError(f"EXIF block of {len(block)} bytes does not fit in one APP1 segment")
    app1 = b"\xff\xe1" + struct.pack(">H", len(block) + 2) + block
    _, apps = _segments(jpeg)
    kept = b"".join(jpeg[s:e] for m, s, e in apps if not (m == 0xE1 and jpeg[s + 4:s + 10] == _EXIF))
    rest = jpeg[apps[-1][2]:] if apps else jpeg[2:]
    jfif = [jpeg[s:e] for m, s, e in apps if m == 0xE0]
    # JFIF's APP0 (when there is one) first, then the EXIF block, then any other APPn
    others = kept[len(jfif[0]):] if jfif and kept.startswith(jfif[0]) else kept
    return b"\xff\xd8" + (jfif[0] if jfif else b"") + app1 + others + rest


def copy_tree(src: Path, dst: Path, **options: object) -> int:
    """Copy every JPEG under src to dst with an embedded preview; other files are copied as they are."""
    n = 0
    for folder, dirs, files in os.walk(src):
        dirs.sort()
        out = dst / Path(folder).relative_to(src)
        out.mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            source, target = Path(folder) / name, out / name
            if name.lower().endswith((".jpg", ".jpeg")):
                target.write_bytes(embed(source.read_bytes(), **options))  # type: ignore[arg-type]
                shutil.copystat(source, target)
                n += 1
            else:
                shutil.copy2(source, target)
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--size", default="160x120", help="preview size WxH [160x120]")
    p.add_argument("--stretch", action="store_true", help="squeeze the frame instead of letterboxing it")
    p.add_argument("--quality", type=int, default=75, help="JPEG quality of the preview [75]")
    a = p.parse_args(argv)
    w, h = (int(x) for x in a.size.lower().split("x"))
    n = copy_tree(a.src, a.dst, size=(w, h), stretch=a.stretch, quality=a.quality)
    print(f"{n} JPEGs copied with a {w}x{h} preview into {a.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
