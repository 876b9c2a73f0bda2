"""File names that are not valid UTF-8, between the file system and the database.

Python gives such names as strings with lone surrogates (os.fsdecode's 'surrogateescape': byte
0xff becomes U+DCFF); SQLite's TEXT must be valid UTF-8. The database stores the name with each
undecodable byte written as the four characters ``\\xNN`` (readable, and what `ls -b` shows) and
the exact bytes in a BLOB column beside it (images.rel_raw, roots.path_raw); every other name is
stored as it is, with NULL bytes. Reading back, the exact bytes win, so a path leaves the index
byte for byte as it came in.
"""
from __future__ import annotations

_ENCODING = "utf-8"


def is_exact_text(s: str) -> bool:
    """True when `s` is valid Unicode text (no lone surrogates from undecodable bytes)."""
    if s.isascii():
        return True
    try:
        s.encode(_ENCODING)
    except UnicodeEncodeError:
        return False
    return True


def to_text(s: str) -> str:
    """The TEXT stored for a name: itself, or with undecodable bytes as \\xNN."""
    if is_exact_text(s):
        return s
    return s.encode(_ENCODING, "surrogateescape").decode(_ENCODING, "backslashreplace")


def to_raw(s: str) -> bytes | None:
    """The exact bytes stored beside a name that is not valid UTF-8; None for every other name."""
    return None if is_exact_text(s) else s.encode(_ENCODING, "surrogateescape")


def from_db(text: str, raw: bytes | None) -> str:
    """The name as the file system has it, from the stored TEXT and exact bytes."""
    return text if raw is None else bytes(raw).decode(_ENCODING, "surrogateescape")


def split_raw(rel_raw: bytes | None) -> tuple[bytes | None, bytes | None]:
    """(folder bytes, name bytes) of a stored rel_raw ('folder/name' or 'name')."""
    if rel_raw is None:
        return None, None
    raw = bytes(rel_raw)
    folder, sep, name = raw.rpartition(b"/")
    return (folder if sep else b""), name


def rel_raw(folder: str, name: str) -> bytes | None:
    """images.rel_raw for a file: the exact bytes of folder/name when either is not valid UTF-8."""
    if is_exact_text(folder) and is_exact_text(name):
        return None
    rel = f"{folder}/{name}" if folder else name
    return rel.encode(_ENCODING, "surrogateescape")


def printable(s: str) -> str:
    """A name for messages and pages (valid UTF-8): undecodable bytes as \\xNN."""
    return to_text(s)
