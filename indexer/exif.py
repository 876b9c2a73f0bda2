"""Capture time, camera make and model from a JPEG's EXIF block. Used by indexer.features."""
from __future__ import annotations

import re
import struct
from datetime import datetime

from PIL import Image

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL, _DATETIME_DIGITIZED, _DATETIME, _MAKE, _MODEL = 36867, 36868, 306, 271, 272

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
