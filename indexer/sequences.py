"""Burst sequences, and the feature table `select` reads: both derived from `images` in one pass.

A sequence (burst) is a run of images of one folder whose times (EXIF capture time, else the
file's mtime) are at most `burst_gap` seconds apart; its id is the id of its first image.

Reading a million rows through sqlite3 costs seconds (a Python object per value), so the pass
that computes sequences also stores every live image's selection features as packed arrays in the
`select_cache` table, in natural path order. `select` then loads them in milliseconds. Triggers
mark the cache dirty whenever scan or watch touch `images`; the next `select` rebuilds it in its
own transaction before any user query runs (cache maintenance, not a user write).
"""
from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass

import numpy as np

from .db import Database
from .db import select as q
from .discover import name_key, path_key

log = logging.getLogger(__name__)

DEFAULT_BURST_GAP = 60.0

_ARRAYS = {  # cache key -> dtype of its little-endian bytes
    "id": "<i8", "dhash": "<i8", "ahash": "<i8", "phash": "<i8", "brightness": "<f4",
    "color_variance": "<f4", "is_gray": "u1", "sequence": "<i8", "folder": "<i4",
}


@dataclass(frozen=True)
class FeatureTable:
    """Selection features of every live indexed image, in natural path order."""

    ids: np.ndarray             # int64
    dhash: np.ndarray           # uint64 (stored signed in SQLite)
    ahash: np.ndarray
    phash: np.ndarray
    brightness: np.ndarray      # float32
    color_variance: np.ndarray  # float32
    is_gray: np.ndarray         # bool
    sequence: np.ndarray        # int64: id of the first image of the burst
    folder: np.ndarray          # int32: index into `folders`
    folders: tuple[tuple[str, str], ...]  # (root path, folder below it)

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Positions in this table of the given image ids (ids not in it are dropped)."""
        order = np.argsort(self.ids, kind="stable")
        sorted_ids = self.ids[order]
        at = np.searchsorted(sorted_ids, ids)
        at[at >= len(sorted_ids)] = 0
        hit = sorted_ids[at] == ids if len(sorted_ids) else np.zeros(len(ids), bool)
        return np.sort(order[at[hit]])


def sequence_ids(ids: np.ndarray, folder: np.ndarray, times: np.ndarray, burst_gap: float) -> np.ndarray:
    """Sequence id of each image: runs of one folder with time steps <= burst_gap seconds.

    Arrays are aligned and in natural path order, which breaks ties between equal times."""
    if burst_gap < 0:
        raise ValueError("burst_gap must be >= 0 seconds")
    n = len(ids)
    if n == 0:
        return np.empty(0, np.int64)
    order = np.lexsort((np.arange(n), times, folder))
    f, t = folder[order], times[order]
    start = np.ones(n, bool)
    start[1:] = (f[1:] != f[:-1]) | (np.diff(t) > burst_gap)
    run = np.cumsum(start) - 1
    first_ids = ids[order][start]
    out = np.empty(n, np.int64)
    out[order] = first_ids[run]
    return out


def load_features(db: Database, burst_gap: float | None = DEFAULT_BURST_GAP) -> tuple[FeatureTable, list[str]]:
    """The feature table, rebuilt first if images changed or the burst gap differs (None: keep the
    gap of the last build, or the default). Returns notes for the user."""
    state = q.cache_state(db)
    if burst_gap is None:
        burst_gap = state.burst_gap if state.burst_gap is not None else DEFAULT_BURST_GAP
    if not state.dirty and state.burst_gap == burst_gap:
        return _from_cache(q.read_cache(db)), []
    try:
        with db.transaction() as conn:
            arrays, updates = _build(conn, burst_gap)
            q.write_cache(conn, {k: v for k, v in arrays.items()}, burst_gap, updates)
        log.info("select cache rebuilt: %d images, %d sequence ids changed", len(arrays["id"]) // 8, len(updates))
        return _from_cache(arrays), []
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc) and "read-only" not in str(exc):
            raise
    with q.snapshot(db) as conn:
        arrays, _ = _build(conn, burst_gap)
    return _from_cache(arrays), ["the index is read-only: sequences were computed in memory only, "
                                 "so the `sequence` column of --where/--per may be stale"]


def _from_cache(blobs: dict[str, bytes]) -> FeatureTable:
    a = {k: np.frombuffer(blobs[k], dtype=dt) for k, dt in _ARRAYS.items()}
    folders = tuple((r, f) for r, f in json.loads(blobs["folders"].decode("utf-8")))
    return FeatureTable(
        ids=a["id"], dhash=a["dhash"].view(np.uint64), ahash=a["ahash"].view(np.uint64),
        phash=a["phash"].view(np.uint64), brightness=a["brightness"], color_variance=a["color_variance"],
        is_gray=a["is_gray"].view(bool), sequence=a["sequence"], folder=a["folder"], folders=folders,
    )


def _build(conn: sqlite3.Connection, burst_gap: float) -> tuple[dict[str, bytes], list[tuple[int, int]]]:
    """Read all live images once; natural order, sequences; arrays to store and sequence updates."""
    folders = q.folder_rows(conn)
    rows = q.feature_rows(conn)
    counts = np.array([f.count for f in folders], np.int64)
    if counts.sum() != len(rows):  # cannot happen inside one transaction; be loud if it does
        raise RuntimeError("images changed while the select cache was read")
    perm, folder_idx = _natural_order(conn, folders, counts)
    rows, folder_idx = rows[perm], folder_idx[perm]
    seq = sequence_ids(rows["id"], folder_idx, rows["time"], burst_gap)
    changed = np.flatnonzero(seq != rows["sequence"])
    updates = [(int(s), int(i)) for s, i in zip(seq[changed], rows["id"][changed])]
    arrays = {
        "id": rows["id"], "dhash": rows["dhash"], "ahash": rows["ahash"], "phash": rows["phash"],
        "brightness": rows["brightness"], "color_variance": rows["color_variance"], "is_gray": rows["is_gray"],
        "sequence": seq, "folder": folder_idx,
    }
    blobs = {k: np.ascontiguousarray(v, dtype=_ARRAYS[k]).tobytes() for k, v in arrays.items()}
    blobs["folders"] = json.dumps([[f.root, f.folder] for f in folders]).encode("utf-8")
    return blobs, updates


def _natural_order(conn: sqlite3.Connection, folders: list[q.FolderRow], counts: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Permutation from (root_id, folder, name) byte order to natural path order, and the folder
    index of each row (in byte order). Folders are few and sorted naturally; inside a folder byte
    order is natural when all names have one length (IMG_0001.JPG ...), so only folders with names
    of several lengths (IMG_2, IMG_10) are sorted naturally name by name."""
    n = int(counts.sum())
    folder_idx = np.repeat(np.arange(len(folders), dtype=np.int32), counts)
    rank = np.empty(len(folders), np.int64)
    rank[sorted(range(len(folders)), key=lambda i: (path_key(folders[i].root), path_key(folders[i].folder)))] = \
        np.arange(len(folders))
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    within = np.arange(n, dtype=np.int64) - offsets[folder_idx]
    for i, f in enumerate(folders):
        if f.uneven_names:
            names = q.names_in_folder(conn, f.root_id, f.folder)
            local = np.empty(len(names), np.int64)
            local[sorted(range(len(names)), key=lambda j: name_key(names[j]))] = np.arange(len(names))
            within[offsets[i]:offsets[i] + f.count] = local
    perm = np.lexsort((within, rank[folder_idx]))
    return perm, folder_idx
