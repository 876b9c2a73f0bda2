"""Pure feature extraction: a path in, a frozen Features record out. No database, no click.

One reduced decode per image: JPEGs are decoded in the DCT domain at 1/2 to 1/8 scale with
`Image.draft()` (short side kept >= 64 px), other formats are loaded and shrunk with `reduce()`.
Hashes follow ImageHash exactly on the reduced image (grayscale, LANCZOS resize, same bit order).

With `thumbnails=True` (`indexer scan --exif-thumbnails`) a JPEG's features come from the small
preview most cameras embed in its EXIF block (IFD1, typically 160x120) when there is a usable
one: only the head of the file is read (the EXIF block and the frame header, ~20-64 KB) and
~1/100 of the pixels are decoded. Letterbox or pillarbox bars (a 4:3 preview of a 16:9 frame)
are cropped. Without a usable preview (none, smaller than MIN_THUMB_SIDE, broken) the draft
decode runs as usual. `Features.features_source` says which one a row's features came from.
"""
from __future__ import annotations

import io
import math
import os
import re
import stat
import struct
import warnings
from datetime import datetime
from functools import lru_cache

import numpy as np
from PIL import Image, UnidentifiedImageError

from .records import Features, ImageResult, WorkItem

MIN_SIDE = 64  # the reduced image keeps at least this many pixels on its short side
SHARPNESS_WIDTH = 160  # sharpness is measured at this width, so it compares across resolutions
# A pixel whose channels differ by more than this is coloured; JPEG chroma noise on IR frames
# stays below it. A frame is gray when fewer than GRAY_SHARE of its pixels are coloured, counted
# on the middle 80% of rows (camera info bars with coloured logos are left out).
GRAY_CHROMA = 24
GRAY_SHARE = 0.01

SOURCE_DRAFT = "draft"  # the reduced decode of the whole image
SOURCE_THUMBNAIL = "exif-thumbnail"  # the preview embedded in the JPEG's EXIF block
MIN_THUMB_SIDE = 64  # smaller previews are not used (as MIN_SIDE for the draft decode)
HEAD_BYTES = 16384  # a JPEG's head is read in steps of this size (the EXIF block is at most 64 KB)
BAR_LEVEL = 24  # letterbox bars are darker than this on average ...
BAR_SPREAD = 12  # ... and this uniform (standard deviation)

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL, _DATETIME_DIGITIZED, _DATETIME, _MAKE, _MODEL = 36867, 36868, 306, 271, 272


def extract_many(items: list[WorkItem], thumbnails: bool = False) -> list[ImageResult]:
    """Worker entry point: one result per item, never raises for a bad file."""
    return [extract_one(item, thumbnails=thumbnails) for item in items]


def extract_one(item: WorkItem, thumbnails: bool = False) -> ImageResult:
    path = item.path
    size = mtime_ns = 0
    inode = device = None
    try:
        # O_NONBLOCK: a FIFO named *.jpg must not hang the worker (it is refused below).
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return ImageResult(item, None, "file vanished before it was read", 0, 0, None, None, vanished=True)
    except OSError as exc:
        return ImageResult(item, None, describe_error(exc), 0, 0, None, None)
    try:
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            size, mtime_ns, inode, device = st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev
            if not stat.S_ISREG(st.st_mode):
                return ImageResult(item, None, "not a regular file (a pipe, socket or device)", size, mtime_ns,
                                   inode, device)
            if size == 0:
                return ImageResult(item, None, "empty file (0 bytes)", size, mtime_ns, inode, device)
            features = features_from_file(fh, thumbnails=thumbnails)
    except Exception as exc:  # any decoder error is this file's failure, not the run's
        return ImageResult(item, None, describe_error(exc), size, mtime_ns, inode, device)
    return ImageResult(item, features, None, size, mtime_ns, inode, device)


def features_from_file(fp: str | os.PathLike[str] | object, thumbnails: bool = False) -> Features:
    """Open, reduce-decode and measure one image. Raises on unreadable input.

    thumbnails=True: from the embedded EXIF preview of a JPEG when it has a usable one."""
    if thumbnails:
        if isinstance(fp, (str, os.PathLike)):
            with open(fp, "rb") as fh:
                return features_from_file(fh, thumbnails=True)
        found = features_from_thumbnail(fp)  # type: ignore[arg-type]
        if found is not None:
            return found
        fp.seek(0)  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(fp) as im:  # type: ignore[arg-type]
            fmt, mode, (width, height) = im.format or "", im.mode, im.size
            fields = jpeg_exif_fields(im) if fmt == "JPEG" else None
            exif = im.getexif() if fields is None else None
            reduced = reduce_decode(im)
    gray, rgb = to_gray_and_rgb(reduced)
    captured_at, make, model = fields if fields is not None else exif_fields(exif)  # type: ignore[arg-type]
    return _measure(gray, rgb, format=fmt, mode=mode, width=width, height=height, captured_at=captured_at,
                    camera_make=make, camera_model=model, features_source=SOURCE_DRAFT)


def _measure(gray: Image.Image, rgb: Image.Image | None, **fields: object) -> Features:
    a = np.asarray(gray).astype(np.float64)  # gray is mode L: exact integers, so the sum below is exact
    d, av, p = hash_grids(gray, a)
    color_variance, is_gray = color_stats(rgb)
    return Features(
        dhash=_dhash_bits(d), ahash=_ahash_bits(av), phash=_phash_bits(p),
        brightness=round(float(a.sum()) / a.size, 3),  # = np.mean: an exact integer sum over the count
        color_variance=round(color_variance, 3), is_gray=is_gray,
        sharpness=round(sharpness(gray), 3), **fields,  # type: ignore[arg-type]
    )


def features_from_thumbnail(fh: io.BufferedIOBase) -> Features | None:
    """Features of a JPEG from its embedded EXIF preview, reading only the file's head; None
    when it has no usable preview (the caller decodes the image itself then)."""
    head = read_jpeg_head(fh)
    if head is None or head.thumbnail is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(head.thumbnail)) as im:
                if im.format != "JPEG" or min(im.size) < MIN_THUMB_SIDE:
                    return None
                im.load()
                thumb = im.convert("RGB") if im.mode not in ("L", "RGB") else im.copy()
            fields = exif_block_fields(head.exif)
            if fields is None:
                exif = Image.Exif()
                exif.load(head.exif)
                fields = exif_fields(exif)
            captured_at, make, model = fields
    except Exception:  # a broken preview or EXIF block: the full decode decides
        return None
    thumb = crop_bars(thumb, head.width, head.height)
    gray, rgb = to_gray_and_rgb(thumb)
    return _measure(gray, rgb, format="JPEG", mode=head.mode, width=head.width, height=head.height,
                    captured_at=captured_at, camera_make=make, camera_model=model, features_source=SOURCE_THUMBNAIL)


class JpegHead:
    """What the head of a JPEG says: frame size and mode, the EXIF block, the preview's bytes."""

    __slots__ = ("width", "height", "mode", "exif", "thumbnail", "bytes_read")

    def __init__(self, width: int, height: int, mode: str, exif: bytes, thumbnail: bytes | None,
                 bytes_read: int) -> None:
        self.width, self.height, self.mode = width, height, mode
        self.exif, self.thumbnail, self.bytes_read = exif, thumbnail, bytes_read


_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_MODES = {1: "L", 3: "RGB", 4: "CMYK"}


def read_jpeg_head(fh: io.BufferedIOBase, limit: int = 8 * HEAD_BYTES) -> JpegHead | None:
    """Walk a JPEG's marker segments up to its frame header (SOF), reading only what they span.
    None when the file is not a JPEG, has no EXIF block or no frame header within `limit` bytes."""
    buf = bytearray(fh.read(HEAD_BYTES))
    if buf[:2] != b"\xff\xd8":
        return None
    pos, exif = 2, b""
    while True:
        while len(buf) < pos + 4 and len(buf) < limit:
            more = fh.read(HEAD_BYTES)
            if not more:
                return None
            buf += more
        if len(buf) < pos + 4 or buf[pos] != 0xFF:
            return None
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(buf[pos + 2:pos + 4], "big")
        end = pos + 2 + length
        while len(buf) < end and len(buf) < limit:
            more = fh.read(max(HEAD_BYTES, end - len(buf)))
            if not more:
                return None
            buf += more
        if len(buf) < end:
            return None
        if marker == 0xE1 and not exif and buf[pos + 4:pos + 10] == b"Exif\x00\x00":
            exif = bytes(buf[pos + 10:end])
        elif marker in _SOF:
            if not exif or length < 8:
                return None
            height, width = struct.unpack(">HH", buf[pos + 5:pos + 9])
            mode = _MODES.get(buf[pos + 9], "RGB")
            return JpegHead(width, height, mode, exif, exif_thumbnail(exif), len(buf))
        elif marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        pos = end


def exif_thumbnail(tiff: bytes) -> bytes | None:
    """The JPEG preview of an EXIF (TIFF) block: IFD1's JPEGInterchangeFormat and its length."""
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        (ifd0,) = struct.unpack(order + "I", tiff[4:8])
        (n,) = struct.unpack(order + "H", tiff[ifd0:ifd0 + 2])
        (ifd1,) = struct.unpack(order + "I", tiff[ifd0 + 2 + 12 * n:ifd0 + 6 + 12 * n])
        if not ifd1:
            return None
        (n,) = struct.unpack(order + "H", tiff[ifd1:ifd1 + 2])
        tags: dict[int, int] = {}
        for i in range(min(n, 64)):
            entry = tiff[ifd1 + 2 + 12 * i:ifd1 + 14 + 12 * i]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            value = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])[0]
            tags[tag] = value
        offset, length = tags.get(0x0201), tags.get(0x0202)
        if not offset or not length or offset + length > len(tiff):
            return None
        data = tiff[offset:offset + length]
        return data if data[:2] == b"\xff\xd8" else None
    except (KeyError, struct.error, IndexError):
        return None


def crop_bars(thumb: Image.Image, width: int, height: int) -> Image.Image:
    """The part of a preview that shows the frame: a preview whose aspect differs from the
    frame's by more than 2% is cropped to it when the bars around that part are dark and flat
    (letterbox or pillarbox); a stretched preview (no bars) is kept whole."""
    tw, th = thumb.size
    if not width or not height or abs(tw / th - width / height) <= 0.02 * width / height:
        return thumb
    if width / height > tw / th:  # a wider frame: bars above and below
        inner = round(tw * height / width)
        box = (0, (th - inner) // 2, tw, (th - inner) // 2 + inner)
        bars = [(0, 0, tw, box[1]), (0, box[3], tw, th)]
    else:  # a narrower frame: bars left and right
        inner = round(th * width / height)
        box = ((tw - inner) // 2, 0, (tw - inner) // 2 + inner, th)
        bars = [(0, 0, box[0], th), (box[2], 0, tw, th)]
    gray = np.asarray(thumb.convert("L"), dtype=np.float32)
    for x0, y0, x1, y1 in bars:
        part = gray[y0:y1, x0:x1]
        if part.size == 0:
            continue
        if part.mean() > BAR_LEVEL or part.std() > BAR_SPREAD:
            return thumb
    # one pixel more off each side: a JPEG's blocks smear the bar's edge into the picture
    x0, y0, x1, y1 = box
    if y0 or y1 < th:
        y0, y1 = min(y0 + 1, y1 - 1), max(y1 - 1, y0 + 1)
    else:
        x0, x1 = min(x0 + 1, x1 - 1), max(x1 - 1, x0 + 1)
    return thumb.crop((x0, y0, x1, y1))


def reduce_decode(im: Image.Image) -> Image.Image:
    """Decode at the smallest scale that keeps MIN_SIDE pixels on the short side."""
    w, h = im.size
    factor = 1
    for f in (8, 4, 2):
        if min(w, h) // f >= MIN_SIDE:
            factor = f
            break
    if im.format == "JPEG":
        im.draft(im.mode, (max(1, w // factor), max(1, h // factor)))
        im.load()
        return im
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    im.load()
    return im.reduce(factor) if factor > 1 and im.mode not in ("P", "1", "I;16", "I;16B", "I;16L", "I;16N") else im


def to_gray_and_rgb(im: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """The 8-bit grayscale image hashes are taken from, and an RGB one for colour (None if gray)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a / top * 255.0, 0, 255).astype(np.uint8), "L"), None
    if im.mode in ("L", "1", "LA"):
        return im.convert("L"), None
    if im.mode == "CMYK":
        rgb = im.convert("RGB")
    elif im.mode in ("RGBA", "PA", "P", "RGBX", "LAB", "HSV", "YCbCr"):
        rgb = im.convert("RGBA").convert("RGB") if im.mode in ("P", "PA") else im.convert("RGB")
    else:
        rgb = im if im.mode == "RGB" else im.convert("RGB")
    gray = im.convert("L") if im.mode not in ("CMYK", "LAB", "HSV", "PA") else rgb.convert("L")
    return gray, rgb


def color_stats(rgb: Image.Image | None) -> tuple[float, bool]:
    """Mean per-pixel variance across R, G, B, and whether the frame counts as gray.

    Computed on channel planes (a reduction over a trailing axis of 3 is several times slower),
    on every other row and column of the reduced image: the figures are means and shares, and
    a quarter of the pixels estimates them to well under a level. The variance is taken in
    float32, operation for operation as it always was (stored values do not change); the
    chroma test is exact in integers.
    """
    if rgb is None:
        return 0.0, True
    if rgb.mode == "RGB":  # Pillow keeps RGB as RGBX: reading it so is a copy, asarray() packs it
        a = np.frombuffer(rgb.tobytes("raw", "RGBX"), np.uint8).reshape(rgb.size[1], rgb.size[0], 4)
    else:
        a = np.asarray(rgb)
    h = a.shape[0]
    if h >= 10:  # leave out the info bars at top and bottom: their logos are often coloured
        a = a[h // 10: h - h // 10]
    if a.shape[0] >= 32 and a.shape[1] >= 32:
        a = a[::2, ::2]
    top = np.maximum(a[..., 0], a[..., 1])
    np.maximum(top, a[..., 2], out=top)
    low = np.minimum(a[..., 0], a[..., 1])
    np.minimum(low, a[..., 2], out=low)
    top -= low  # max - min of uint8 channels: never below 0
    coloured = int(np.count_nonzero(top > GRAY_CHROMA)) / top.size  # a Python float, as (chroma > 24).mean() was
    r, g, b = (a[..., i].astype(np.float32) for i in range(3))
    m = r + g
    m += b
    m /= 3.0
    for c in (r, g, b):  # (c - m) ** 2, in place
        c -= m
        c *= c
    r += g
    r += b
    r /= 3.0
    return float(r.mean()), coloured < GRAY_SHARE


def _bits_to_int(bits: np.ndarray) -> int:
    """64 booleans, row-major, first the most significant bit, as a signed 64-bit integer."""
    return int.from_bytes(np.packbits(bits.astype(bool).ravel()).tobytes(), "big", signed=True)


def _dhash_bits(px: np.ndarray) -> int:
    return _bits_to_int(px[:, 1:] > px[:, :-1])


def _ahash_bits(px: np.ndarray) -> int:
    return _bits_to_int(px > px.mean())


def _phash_bits(px: np.ndarray) -> int:
    c = _dct_matrix()
    # Rounded so that coefficients which are 0 in exact arithmetic (a flat frame) compare as 0,
    # as scipy's DCT gives them, instead of +-1e-13 float noise that would flip bits at random.
    low = np.round(c @ np.ascontiguousarray(px, dtype=np.float64) @ c.T, 6)
    mid = np.sort(low, axis=None)[31:33]
    return _bits_to_int(low > (mid[0] + mid[1]) / 2)  # np.median: the mean of the middle two


def dhash(gray: Image.Image) -> int:
    """ImageHash's dhash: 9x8 LANCZOS, a bit per left-to-right brightness step."""
    return _dhash_bits(np.asarray(gray.resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16))


def ahash(gray: Image.Image) -> int:
    """ImageHash's average_hash: 8x8 LANCZOS, a bit per pixel above the mean."""
    return _ahash_bits(np.asarray(gray.resize((8, 8), Image.Resampling.LANCZOS), dtype=np.float64))


@lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    n = np.arange(32)
    k = np.arange(8)[:, None]
    return np.cos(np.pi * k * (2 * n + 1) / 64.0)


def phash(gray: Image.Image) -> int:
    """ImageHash's phash: 32x32 LANCZOS, 2-D DCT-II, low 8x8 coefficients above their median."""
    return _phash_bits(np.asarray(gray.resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64))


# -- the three hash resizes at once ------------------------------------------------------------
# ImageHash resizes with Pillow's LANCZOS, in C but one tap at a time: ~0.3 ms per grid on a
# 240x135 draft, a third of the feature work. The same fixed-point arithmetic as matrix products
# (libImaging/Resample.c: its weights, its rounding after each pass, its pass order) gives the
# same bytes in ~0.1 ms for all three: every product and sum is an integer below 2**53, exact in
# float64 whatever order BLAS adds in. A plan is trusted only after it gave Pillow's own grids on
# an image of its size and on a noise probe of that size; a size seen once, or a Pillow that
# resizes otherwise, is resized by Pillow as before.

HASH_GRIDS = ((9, 8), (8, 8), (32, 32))  # dhash, ahash, phash
_PRECISION_BITS = 22  # Resample.c: 32 - 8 - 2
# OpenBLAS runs a product of m*n*k <= 65536 * 4 on the calling thread; a larger one wakes its
# thread pool, which spins on the cores the other workers decode on. Products are cut into blocks
# below that, unless OpenBLAS was started with one thread (~60 us an image less).
_BLAS_ONE_THREAD = 1 << 18
_BLAS_THREADED = os.environ.get("OPENBLAS_NUM_THREADS") != "1"


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    return _sinc(x) * _sinc(x / 3) if -3.0 <= x < 3.0 else 0.0


def lanczos_weights(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's fixed-point LANCZOS weights for one axis (precompute_coeffs, then
    normalize_coeffs_8bpc), as an (out_size, in_size) matrix: row i weighs output pixel i."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    inv = 1.0 / filterscale
    one = float(1 << _PRECISION_BITS)
    m = np.zeros((out_size, in_size))
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        n = min(int(center + support + 0.5), in_size) - xmin
        w = [_lanczos((x + xmin - center + 0.5) * inv) for x in range(n)]
        ww = 0.0
        for v in w:  # in C's order
            ww += v
        for x, v in enumerate(w):
            k = v / ww if ww != 0.0 else v
            m[xx, xmin + x] = int(k * one - 0.5) if k < 0 else int(k * one + 0.5)
    return m


def _clip8(a: np.ndarray) -> np.ndarray:
    """Resample.c's clip8 of fixed-point sums, with its rounding offset, in place."""
    a += 1 << (_PRECISION_BITS - 1)
    a *= 1.0 / (1 << _PRECISION_BITS)
    np.floor(a, out=a)
    return np.clip(a, 0, 255, out=a)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b in blocks of rows that BLAS multiplies on this thread."""
    rows = max(1, _BLAS_ONE_THREAD // (a.shape[1] * b.shape[1]))
    if a.shape[0] <= rows or not _BLAS_THREADED:
        return a @ b
    out = np.empty((a.shape[0], b.shape[1]))
    for i in range(0, a.shape[0], rows):
        np.matmul(a[i:i + rows], b, out=out[i:i + rows])
    return out


class HashPlan:
    """The three hash grids of one input size as matrix products.

    Pillow resizes each axis in turn, rounding to 8 bits in between, and skips an axis that
    keeps its size; Pillow >= 13 goes down first when the height shrinks more than twice as much
    as the width, before that always across first. `orders` says, per grid, across first (True)
    or not. The grids resized across first share one product across (and the 9x8 and 8x8 ones
    one product down)."""

    def __init__(self, width: int, height: int, orders: tuple[bool, ...]) -> None:
        self.size, self.orders = (width, height), orders
        across = [lanczos_weights(width, w).T if w != width else None for w, _ in HASH_GRIDS]
        down = [lanczos_weights(height, h) if h != height else None for _, h in HASH_GRIDS]
        fused = [i for i in range(len(HASH_GRIDS)) if orders[i] and across[i] is not None and down[i] is not None]
        self.across = np.ascontiguousarray(np.concatenate([across[i] for i in fused], axis=1)) if fused else None
        # (first column, last column, weights down, the grids and their widths) per height
        self.groups: list[tuple[int, int, np.ndarray, list[tuple[int, int]]]] = []
        col = 0
        for i in fused:
            w, h = HASH_GRIDS[i]
            if self.groups and self.groups[-1][2].shape[0] == h:
                first, _, weights, grids = self.groups[-1]
                self.groups[-1] = (first, col + w, weights, [*grids, (i, w)])
            else:
                self.groups.append((col, col + w, down[i], [(i, w)]))  # type: ignore[arg-type]
            col += w
        self.alone = [(i, across[i], down[i], orders[i]) for i in range(len(HASH_GRIDS)) if i not in fused]

    @staticmethod
    def pillow_orders(width: int, height: int) -> tuple[bool, ...]:
        """Pillow 13's pass order for each grid (Resample.c, ImagingResampleInner)."""
        return tuple(not (height - h > 0 and height - h > (width - w) * 2) for w, h in HASH_GRIDS)

    def grids(self, a: np.ndarray) -> tuple[np.ndarray, ...]:
        """(9x8, 8x8, 32x32) from the float64 pixels of an 8-bit image of the plan's size."""
        out: list[np.ndarray] = [a] * len(HASH_GRIDS)
        if self.across is not None:
            t = _clip8(_matmul(a, self.across))
            for first, last, weights, grids in self.groups:
                both = _clip8(weights @ t[:, first:last])
                col = 0
                for i, w in grids:
                    out[i] = both[:, col:col + w]
                    col += w
        for i, across, down, across_first in self.alone:
            g = a
            if across_first and across is not None:
                g = _clip8(_matmul(g, across))
            if down is not None:
                g = _clip8(_matmul(down, g))
            if not across_first and across is not None:
                g = _clip8(_matmul(g, across))
            out[i] = g
        return tuple(out)


def _pillow_grids(gray: Image.Image) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(gray.resize(s, Image.Resampling.LANCZOS)) for s in HASH_GRIDS)


def make_hash_plan(gray: Image.Image, a: np.ndarray, want: tuple[np.ndarray, ...]) -> HashPlan | None:
    """A plan for gray's size that gives `want` (Pillow's grids of gray) and Pillow's grids of a
    noise probe of that size: in Pillow 13's pass orders, else in older Pillow's (always across
    first); None if neither does (a Pillow that resizes otherwise keeps resizing)."""
    width, height = gray.size
    probe = np.random.default_rng(width * 65536 + height).integers(0, 256, (height, width), dtype=np.uint8)
    checks = [(a, want), (probe.astype(np.float64), _pillow_grids(Image.fromarray(probe, "L")))]
    newer = HashPlan.pillow_orders(width, height)
    for orders in dict.fromkeys([newer, (True,) * len(HASH_GRIDS)]):
        plan = HashPlan(width, height, orders)
        if all(all(np.array_equal(g, w) for g, w in zip(plan.grids(x), ws)) for x, ws in checks):
            return plan
    return None


_plans: dict[tuple[int, int], HashPlan | None] = {}
_seen_once: set[tuple[int, int]] = set()


def hash_grids(gray: Image.Image, a: np.ndarray) -> tuple[np.ndarray, ...]:
    """The 9x8, 8x8 and 32x32 LANCZOS grids of an L image (a: its pixels as float64), exactly
    as gray.resize(size, LANCZOS) gives them: by a checked plan from the second image of a size
    on (the first one pays for nothing it may not need again), else by Pillow."""
    key = gray.size
    plan = _plans.get(key)
    if plan is not None:
        return plan.grids(a)
    grids = _pillow_grids(gray)
    if key not in _plans:
        if key in _seen_once:
            if len(_plans) >= 64:
                _plans.clear()
            _plans[key] = make_hash_plan(gray, a, grids)
        else:
            if len(_seen_once) >= 4096:
                _seen_once.clear()
            _seen_once.add(key)
    return grids


def sharpness(gray: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian at SHARPNESS_WIDTH px wide: low means blurred."""
    w, h = gray.size
    if w != SHARPNESS_WIDTH:
        gray = gray.resize((SHARPNESS_WIDTH, max(1, round(h * SHARPNESS_WIDTH / w))), Image.Resampling.BILINEAR)
    # 8-bit pixels: the Laplacian is an integer within +-1020, exact in int16 as it was in float32,
    # and var() converts either to float64 alike
    a = np.asarray(gray, dtype=np.int16 if gray.mode == "L" else np.float32)
    if a.shape[0] < 3 or a.shape[1] < 3:
        return 0.0
    lap = a[1:-1, :-2] + a[1:-1, 2:]
    lap += a[:-2, 1:-1]
    lap += a[2:, 1:-1]
    lap -= 4 * a[1:-1, 1:-1]
    return float(lap.var(dtype=np.float64))


# -- EXIF ----------------------------------------------------------------------------------------
# Pillow's getexif() and get_ifd() build every tag of two IFDs (~0.2 ms); five ASCII tags are
# needed. A plain EXIF block (the usual one) is read here with the same result; any block Pillow
# might read otherwise (a bad header, a tag twice, a value outside the block, an unknown type)
# goes to Pillow as before.

_TIFF_ORDER = {b"II*\x00": "<", b"MM\x00*": ">"}


def _plain_ifd(tiff: bytes, offset: int, order: str) -> dict[int, tuple[int, bytes]] | None:
    """One IFD's entries as {tag: (type, value bytes)}, or None unless Pillow would read every
    entry as it stands: all inside the block, known types, no tag twice, no empty value."""
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    units = ImageFileDirectory_v2._load_dispatch
    n = len(tiff)
    if offset + 2 > n:
        return None
    (count,) = struct.unpack_from(order + "H", tiff, offset)
    end = offset + 2 + 12 * count
    if end + 4 > n:  # the entries and the next IFD's offset
        return None
    out: dict[int, tuple[int, bytes]] = {}
    total = 0
    for tag, kind, cnt, raw in struct.iter_unpack(order + "HHL4s", tiff[offset + 2:end]):
        if tag in out or kind not in units:
            return None
        size = cnt * units[kind][0]
        if size > 4:
            (at,) = struct.unpack(order + "L", raw)
            total += size
            if at + size > n or total > n:
                return None
            value = tiff[at:at + size]
        else:
            value = raw[:size]
        if not value:
            return None
        out[tag] = (kind, value)
    return out


def _text(entry: tuple[int, bytes] | None) -> str | bytes | None | bool:
    """An ASCII value as Pillow gives it (one trailing NUL off), UNDEFINED as bytes; False for
    any other type (Pillow's own reading decides then)."""
    if entry is None:
        return None
    kind, value = entry
    if kind == 2:
        return (value[:-1] if value.endswith(b"\0") else value).decode("latin-1", "replace")
    return value if kind == 7 else False


def exif_block_fields(block: bytes) -> tuple[str | None, str | None, str | None] | None:
    """exif_fields() of an EXIF block (a JPEG's APP1 payload, with or without its Exif header)
    when it is plain; None when Pillow must read it. Never raises."""
    try:
        return _plain_exif_fields(block)
    except Exception:  # whatever it is, Pillow's reading decides
        return None


def _plain_exif_fields(block: bytes) -> tuple[str | None, str | None, str | None] | None:
    data = re.sub(b"^(Exif\x00\x00){1,2}", b"", block)  # as Image.Exif.load
    if data.startswith(b"Exif\x00\x00") or len(data) < 8 or data[:4] not in _TIFF_ORDER:
        return None
    order = _TIFF_ORDER[data[:4]]
    ifd0 = _plain_ifd(data, struct.unpack_from(order + "L", data, 4)[0], order)
    if ifd0 is None:
        return None
    sub: dict[int, tuple[int, bytes]] | None = {}
    if _EXIF_IFD in ifd0:
        kind, value = ifd0[_EXIF_IFD]
        if kind != 4 or len(value) != 4:
            return None
        sub = _plain_ifd(data, struct.unpack(order + "L", value)[0], order)
        if sub is None:
            return None
    texts = [_text(sub.get(_DATETIME_ORIGINAL)), _text(sub.get(_DATETIME_DIGITIZED)), _text(ifd0.get(_DATETIME)),
             _text(ifd0.get(_MAKE)), _text(ifd0.get(_MODEL))]
    if any(t is False for t in texts):
        return None
    captured = None
    for raw in texts[:3]:
        captured = parse_exif_datetime(raw)
        if captured:
            break
    return captured, _clean(texts[3]), _clean(texts[4])


def jpeg_exif_fields(im: Image.Image) -> tuple[str | None, str | None, str | None] | None:
    """exif_fields(im.getexif()) of an opened JPEG from the EXIF block its parser kept, or None
    when Pillow must read it. Only the JPEG plugin's APP1 block is looked at (getexif() of other
    formats has other sources)."""
    block = im.info.get("exif")
    if block is None:
        return None if "Raw profile type exif" in im.info or hasattr(im, "tag_v2") else (None, None, None)
    return exif_block_fields(block) if isinstance(block, bytes) else None


def exif_fields(exif: Image.Exif) -> tuple[str | None, str | None, str | None]:
    """Capture time (ISO-8601, camera local time), camera make and model, from EXIF."""
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:
        sub = {}
    captured = None
    for raw in (sub.get(_DATETIME_ORIGINAL), sub.get(_DATETIME_DIGITIZED), exif.get(_DATETIME)):
        captured = parse_exif_datetime(raw)
        if captured:
            break
    return captured, _clean(exif.get(_MAKE)), _clean(exif.get(_MODEL))


_PLAIN_DATETIME = re.compile(r"([0-9]{4}):([0-9]{2}):([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")


def parse_exif_datetime(raw: object) -> str | None:
    """'2021:04:11 20:43:09' (often padded with spaces or NULs) -> '2021-04-11T20:43:09'."""
    text = _clean(raw)
    if not text:
        return None
    plain = _PLAIN_DATETIME.match(text)
    if plain:  # what _strptime_exif makes of the usual form, without its ~15 us
        try:
            return datetime(*map(int, plain.groups())).isoformat()  # type: ignore[misc]
        except ValueError:
            pass  # an impossible date: strptime says so too
    return _strptime_exif(text)


def _strptime_exif(text: str) -> str | None:
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M", "%Y/%m/%d %H:%M:%S"):
        try:
            return datetime.strptime(text[:19] if len(text) >= 19 else text, fmt).isoformat()
        except ValueError:
            continue
    return None


def _clean(raw: object) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    text = str(raw).replace("\x00", " ").strip()
    return text or None


def describe_error(exc: BaseException) -> str:
    """One line naming the error, without the traceback."""
    if isinstance(exc, Image.DecompressionBombWarning | Image.DecompressionBombError):
        return f"decompression bomb refused: {exc}".splitlines()[0]
    if isinstance(exc, UnidentifiedImageError):
        return "UnidentifiedImageError: not an image Pillow can read (cannot identify image file)"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.strerror or exc}"
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def __getattr__(name: str) -> object:
    if name == "IMAGE_EXTENSIONS":  # defined where the walk uses it; re-exported here as before
        from .discover import IMAGE_EXTENSIONS
        return IMAGE_EXTENSIONS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["IMAGE_EXTENSIONS", "extract_many", "extract_one", "features_from_file", "dhash", "ahash",
           "phash", "sharpness", "color_stats", "parse_exif_datetime"]
