"""SQL functions every connection has, so --where and --per mean the same in every command."""
from __future__ import annotations

import sqlite3


def level(path: object, n: object) -> str | None:
    """level(folder_or_rel_path, n): the nth folder (1-based) of a '/'-separated path."""
    if not isinstance(path, str) or not isinstance(n, int) or n < 1:
        return None
    parts = [p for p in path.split("/") if p]
    return parts[n - 1] if n <= len(parts) else None


def as_u64(v: object) -> int | None:
    if isinstance(v, int):
        return v & 0xFFFF_FFFF_FFFF_FFFF
    if isinstance(v, str):
        try:
            return int(v, 16)
        except ValueError:
            return None
    return None


def hamming(a: object, b: object) -> int | None:
    """hamming(a, b): differing bits of two 64-bit hashes, as integers or 16-digit hex."""
    x, y = as_u64(a), as_u64(b)
    return None if x is None or y is None else (x ^ y).bit_count()


def has_label(all_labels: object, label: object) -> int | None:
    """has_label(all_labels, 'fox'): 1 when the image_view.all_labels JSON array holds the label."""
    if not isinstance(all_labels, str) or not isinstance(label, str):
        return None
    import json
    try:
        return int(label in json.loads(all_labels))
    except (ValueError, TypeError):
        return None


def register(conn: sqlite3.Connection) -> None:
    conn.create_function("level", 2, level, deterministic=True)
    conn.create_function("hamming", 2, hamming, deterministic=True)
    conn.create_function("has_label", 2, has_label, deterministic=True)
