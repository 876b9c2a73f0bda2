"""Burst sequences, and the feature table `select` reads: both derived from `images` in one pass.

A sequence (burst) is a run of images of one folder whose times (EXIF capture time, else the
file's mtime) are at most `burst_gap` seconds apart; its id is the id of its first image.

Frames without EXIF capture time and with copy-time mtimes are not grouped. An mtime is the
capture time only when the camera's files kept the time the camera wrote them; a copy (`cp`
without -p, a download, a sync tool) sets it to when the copy was made, so a whole folder lands
within seconds and would be one "burst". The rule, per folder, over its frames without EXIF time
(`copy_time_frames`): when there are at least 2 of them, they chain into ONE run at `burst_gap`
(no two consecutive mtimes further apart) and the median step between consecutive mtimes is under
MIN_CAMERA_STEP (0.4 s, i.e. faster than 2.5 frames a second, which a camera trap's burst does not
reach: 2 frames a second at the most, ~1 typically, and copies from a card or disk take
milliseconds to ~0.2 s per file), their mtimes are copy-time artefacts and each of them is its
own sequence. Identical mtimes count as steps of 0. Otherwise they are cut into bursts as usual.

The trade-off: a folder whose mtime-only frames hold several runs (bursts of a camera without
EXIF, the usual case: events minutes or hours apart) is grouped normally, even when the frames of
a burst carry one identical mtime (FAT keeps 2 s steps); a folder that holds just ONE such burst
written faster than 0.4 s a frame, or with one 2-second FAT stamp for all its frames, is taken
for a copy and not grouped. Copies that are slower than 0.4 s a file (a slow network) or that
were made in several sittings (several runs) are not recognised: their frames are grouped by
their copy times, as before. Not grouping is the safer mistake: a missed burst costs some
redundancy among the picks, while a false burst of a whole folder lets the `diverse` method
treat hundreds of scenes as one.

Reading a million rows through sqlite3 costs seconds (a Python object per value), so the pass
that computes sequences also stores every live image's selection features as packed arrays in the
`select_cache` table, in natural path order. `select` then loads them in milliseconds. Triggers
mark the cache dirty whenever scan or watch touch `images`; the next `select` rebuilds it in its
own transaction before any user query runs (cache maintenance, not a user write). It never waits
for the write lock: when the database is read-only, or another process is writing, the table is
built in memory from a read snapshot and nothing is stored (a note says so only when the bursts
found differ from the stored `sequence` column, which `--where`/`--per` expressions read).
"""
from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass

import numpy as np

from .db import Database
from .db import labels as dbl
from .db import select as q
from .discover import name_key, path_key
from .errors import BusyError, ReadOnlyError
from .methods.common import distinct

log = logging.getLogger(__name__)

DEFAULT_BURST_GAP = 60.0
MIN_CAMERA_STEP = 0.4  # seconds: a median step between mtimes below this is a copy, not a camera
_NO_CAPTURE_TIME = "captured_at IS NULL"  # frames whose time is their file's mtime

_ARRAYS = {  # cache key -> dtype of its little-endian bytes
    "id": "<i8", "dhash": "<i8", "ahash": "<i8", "phash": "<i8", "brightness": "<f4",
    "color_variance": "<f4", "is_gray": "u1", "sequence": "<i8", "folder": "<i4", "copy_time": "u1",
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
    copy_time: np.ndarray | None = None   # bool: no EXIF time, copy-time mtime: not grouped (None: none)

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

    def copy_time_counts(self, rows: np.ndarray) -> tuple[int, int]:
        """(images, folders) among these rows that were kept out of bursts for copy-time mtimes."""
        if self.copy_time is None:
            return 0, 0
        hit = rows[self.copy_time[rows]]
        return len(hit), len(distinct(self.folder[hit]))


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


def copy_time_frames(folder: np.ndarray, times: np.ndarray, mtime_only: np.ndarray, burst_gap: float) -> np.ndarray:
    """Which frames have copy-time mtimes (the rule of the module docstring): of each folder, its
    frames without EXIF time (`mtime_only`) when there are 2 or more, they chain into one run at
    burst_gap and the median step between consecutive mtimes is under MIN_CAMERA_STEP."""
    if burst_gap < 0:
        raise ValueError("burst_gap must be >= 0 seconds")
    out = np.zeros(len(folder), bool)
    pos = np.flatnonzero(mtime_only)
    if len(pos) < 2:
        return out
    order = pos[np.lexsort((times[pos], folder[pos]))]
    f, t = folder[order], times[order]
    starts = np.flatnonzero(np.r_[True, f[1:] != f[:-1]])
    ends = np.r_[starts[1:], len(order)]
    for a, b in zip(starts.tolist(), ends.tolist()):
        if b - a < 2:
            continue
        steps = np.diff(t[a:b])
        if steps.max() <= burst_gap and float(np.median(steps)) < MIN_CAMERA_STEP:
            out[order[a:b]] = True
    return out


def file_sequences(ids: np.ndarray, seq: np.ndarray, given: list[tuple[int, str]]) -> np.ndarray:
    """`seq` with the sequences label files give (COCO seq_id, Camtrap DP eventID) in place of the
    EXIF bursts of those images: each given sequence's id is its smallest image id."""
    if not given:
        return seq
    first: dict[str, int] = {}
    for i, s in given:
        first[s] = min(first.get(s, i), i)
    img = np.fromiter((i for i, _ in given), np.int64, len(given))
    val = np.fromiter((first[s] for _, s in given), np.int64, len(given))
    order = np.argsort(ids, kind="stable")
    at = np.searchsorted(ids[order], img)
    ok = at < len(ids)
    ok[ok] = ids[order][at[ok]] == img[ok]
    out = seq.copy()
    out[order[at[ok]]] = val[ok]
    return out


def load_features(db: Database, burst_gap: float | None = DEFAULT_BURST_GAP) -> tuple[FeatureTable, list[str]]:
    """The feature table, rebuilt first if images changed or the burst gap differs (None: keep the
    gap of the last build, or the default). Never waits for the write lock: a read-only or busy
    database gets a table built in memory. Returns notes for the user."""
    state = q.cache_state(db)
    if burst_gap is None:
        burst_gap = state.burst_gap if state.burst_gap is not None else DEFAULT_BURST_GAP
    if not state.dirty and state.burst_gap == burst_gap:
        blobs = q.read_cache(db)
        if set(_ARRAYS) | {"folders"} <= set(blobs):  # else: made by an older indexer, rebuild
            return _from_cache(blobs), []
    stored, why = _store(db, burst_gap)
    if stored is not None:
        return _from_cache(stored), []
    with q.snapshot(db) as conn:
        blobs, updates = _build(db, conn, burst_gap)
    notes = []
    if updates:
        notes.append(f"the index {why}: bursts were computed in memory only, and {len(updates)} images' "
                     "stored `sequence` differs from them (what --where/--per expressions read)")
    return _from_cache(blobs), notes


def _store(db: Database, burst_gap: float) -> tuple[dict[str, bytes] | None, str]:
    """Rebuild the cache and store it, without waiting for the write lock: (arrays, "") or, when
    the database cannot be written now, (None, why)."""
    if db.readonly:
        return None, "is read-only"
    try:
        with db.transaction(wait=False) as conn:
            blobs, updates = _build(db, conn, burst_gap)
            q.write_cache(conn, blobs, burst_gap, updates)
    except ReadOnlyError:
        return None, "is read-only"
    except BusyError:
        return None, "is being written by another process"
    except sqlite3.OperationalError as exc:  # a write refused after BEGIN (a read-only mount)
        if "readonly" not in str(exc) and "read-only" not in str(exc):
            raise
        return None, "is read-only"
    log.info("select cache rebuilt: %d images, %d sequence ids changed", len(blobs["id"]) // 8, len(updates))
    return blobs, ""


def _from_cache(blobs: dict[str, bytes]) -> FeatureTable:
    a = {k: np.frombuffer(blobs[k], dtype=dt) for k, dt in _ARRAYS.items()}
    folders = tuple((r, f) for r, f in json.loads(blobs["folders"].decode("utf-8")))
    return FeatureTable(
        ids=a["id"], dhash=a["dhash"].view(np.uint64), ahash=a["ahash"].view(np.uint64),
        phash=a["phash"].view(np.uint64), brightness=a["brightness"], color_variance=a["color_variance"],
        is_gray=a["is_gray"].view(bool), sequence=a["sequence"], folder=a["folder"], folders=folders,
        copy_time=a["copy_time"].view(bool),
    )


def _build(db: Database, conn: sqlite3.Connection, burst_gap: float
           ) -> tuple[dict[str, bytes], list[tuple[int, int]]]:
    """Read all live images once; natural order, sequences; arrays to store and sequence updates."""
    folders = q.folder_rows(conn)
    rows = q.feature_rows(conn)
    counts = np.array([f.count for f in folders], np.int64)
    if counts.sum() != len(rows):  # cannot happen inside one transaction; be loud if it does
        raise RuntimeError("images changed while the select cache was read")
    perm, folder_idx = _natural_order(conn, folders, counts)
    rows, folder_idx = rows[perm], folder_idx[perm]
    mtime_only = np.isin(rows["id"], q.where_ids(db, _NO_CAPTURE_TIME))
    copy_time = copy_time_frames(folder_idx, rows["time"], mtime_only, burst_gap)
    seq = rows["id"].astype(np.int64)  # frames with copy-time mtimes: each its own sequence
    grouped = ~copy_time
    seq[grouped] = sequence_ids(rows["id"][grouped], folder_idx[grouped], rows["time"][grouped], burst_gap)
    seq = file_sequences(rows["id"], seq, dbl.file_sequences(conn))  # a label file's sequences win
    changed = np.flatnonzero(seq != rows["sequence"])
    updates = [(int(s), int(i)) for s, i in zip(seq[changed], rows["id"][changed])]
    arrays = {
        "id": rows["id"], "dhash": rows["dhash"], "ahash": rows["ahash"], "phash": rows["phash"],
        "brightness": rows["brightness"], "color_variance": rows["color_variance"], "is_gray": rows["is_gray"],
        "sequence": seq, "folder": folder_idx, "copy_time": copy_time,
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
