"""Distances between pool images, from the stored features only (vectorised numpy popcount).

The combined distance between images i and j is a whole number from 0 to 255 ("combined
units"; two unrelated frames are typically 90-130 apart, frames of one burst 0-12):

    d(i, j) = H(dhash_i, dhash_j) + H(ahash_i, ahash_j) + H(phash_i, phash_j)   0..192
              + |q_i - q_j|,  q = min(47, floor(brightness * 48 / 256))          0..47
              + 16 * [is_gray_i != is_gray_j]                                    0 or 16

H is the Hamming distance of two 64-bit hashes (popcount of their XOR), so the three hashes
weigh one unit per differing bit each. Brightness counts 0.1875 units per gray level
(quantised to 48 steps: a day/night change of ~100 levels adds ~19), and a gray (IR night)
frame against a colour one adds 16. Each term is a metric, so d is a metric too (the
triangle inequality holds; kcenter's error bound relies on it), and the maximum 192 + 47 + 16
= 255 fits one byte: the per-step kernels below work in uint8 on chunks that stay in cache.

`hamming_coverage` in metrics.py uses dHash Hamming bits alone (0-64), the figure the CLI's
--stats reports.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .pool import Pool

BRIGHTNESS_LEVELS = 48   # brightness 0-255 is quantised to this many steps (one unit each)
GRAY_MISMATCH = 16       # added when one frame is gray and the other is colour
MAX_DISTANCE = 255       # 3 * 64 + (BRIGHTNESS_LEVELS - 1) + GRAY_MISMATCH
_CHUNK = 1 << 17         # rows per kernel chunk (measured best: 128k rows, ~1 MB of uint64 temporaries)
THREADS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
PARALLEL_ROWS = 1 << 16  # update_min splits pools of this many rows over THREADS threads
_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0


@dataclass(frozen=True)
class Codes:
    """The per-image terms of the combined distance, laid out for the kernels."""

    h: tuple[np.ndarray, np.ndarray, np.ndarray]  # dhash, ahash, phash: uint64, contiguous
    q: np.ndarray  # uint8 brightness level 0..47
    g: np.ndarray  # uint8: GRAY_MISMATCH for gray frames, 0 for colour

    def __len__(self) -> int:
        return int(self.q.shape[0])

    def take(self, idx: np.ndarray) -> Codes:
        """The codes of some rows, as a new contiguous Codes (row j = idx[j])."""
        idx = np.asarray(idx, dtype=np.int64)
        return Codes(tuple(np.ascontiguousarray(w[idx]) for w in self.h), self.q[idx], self.g[idx])  # type: ignore[arg-type]

    def put(self, i: int, other: Codes, j: int) -> None:
        """Row i of these codes becomes row j of `other` (codes built to be filled in)."""
        for w, src in zip(self.h, other.h):
            w[i] = src[j]
        self.q[i], self.g[i] = other.q[j], other.g[j]

    def row(self, i: int) -> tuple:
        """One row as the reference for the kernels."""
        return (self.h[0][i], self.h[1][i], self.h[2][i], self.q[i], self.g[i])


def codes(pool: Pool) -> Codes:
    """The distance codes of a pool (computed once per pool and cached on it)."""
    cached = pool._cache.get("codes")
    if cached is None:
        q = np.minimum(np.floor(np.clip(pool.brightness, 0, 255) * (BRIGHTNESS_LEVELS / 256.0)),
                       BRIGHTNESS_LEVELS - 1).astype(np.uint8)
        g = pool.is_gray.astype(np.uint8) * np.uint8(GRAY_MISMATCH)
        cached = Codes((pool.dhash, pool.ahash, pool.phash), q, g)
        pool._cache["codes"] = cached
    return cached


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Hamming distance of 64-bit hashes, elementwise with broadcasting (uint8, 0..64)."""
    a = np.asarray(a)
    b = np.asarray(b)
    a = a.view(np.uint64) if a.dtype == np.int64 else a.astype(np.uint64, copy=False)
    b = b.view(np.uint64) if b.dtype == np.int64 else b.astype(np.uint64, copy=False)
    return np.bitwise_count(np.bitwise_xor(a, b))


def combined(c: Codes, i: np.ndarray | int, j: np.ndarray | int) -> np.ndarray:
    """Combined distance of rows i and j (arrays broadcast), as int16."""
    return combined_between(c, i, c, j)


def combined_between(a: Codes, i: np.ndarray | int, b: Codes, j: np.ndarray | int) -> np.ndarray:
    """Combined distance of rows i of a and rows j of b (arrays broadcast), as int16."""
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    d = np.zeros(np.broadcast_shapes(i.shape, j.shape), np.int16)
    for wa, wb in zip(a.h, b.h):
        d += np.bitwise_count(np.bitwise_xor(wa[i], wb[j]))
    d += np.abs(a.q[i].astype(np.int16) - b.q[j].astype(np.int16))
    d += np.bitwise_xor(a.g[i], b.g[j])
    return d


def to_previous(c: Codes) -> np.ndarray:
    """Combined distance of every row to the row before it (uint8, n - 1 values): `combined(c,
    i, i - 1)` from slices, without gathering the rows."""
    if len(c) < 2:
        return np.zeros(0, np.uint8)
    return _sum_terms(c, slice(1, None), slice(None, -1))


def to_rows(c: Codes, ref: np.ndarray) -> np.ndarray:
    """Combined distance of every row i to row ref[i] (uint8): `combined(c, arange(n), ref)`,
    gathering only the reference rows."""
    return _sum_terms(c, slice(None), np.asarray(ref, dtype=np.int64))


def _sum_terms(c: Codes, a: slice, b: slice | np.ndarray) -> np.ndarray:
    """The five terms of d(a, b) summed in uint8 (the largest sum, 255, fits)."""
    w0 = c.h[0][a]
    d = np.bitwise_count(np.bitwise_xor(w0, c.h[0][b]))
    t = np.empty_like(w0)
    for w in c.h[1:]:
        np.bitwise_xor(w[a], w[b], out=t)
        d += np.bitwise_count(t)
    qa, qb = c.q[a], c.q[b]
    d += np.minimum(qa - qb, qb - qa)  # uint8 wraps around: the smaller one is |qa - qb|
    d += np.bitwise_xor(c.g[a], c.g[b])
    return d


def distance(pool: Pool, i: int, j: int) -> int:
    """Combined distance between images i and j of a pool."""
    n = pool.size
    for name, v in (("i", i), ("j", j)):
        if not 0 <= int(v) < n:
            raise ValueError(f"{name}={v} is outside 0..{n - 1}")
    return int(combined(codes(pool), int(i), int(j)))


def pairwise(pool: Pool, rows: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
    """Combined distances between two small sets of images, shape (len(rows), len(cols)), int16.

    Meant for a few thousand images at most: the result is a dense matrix.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = rows if cols is None else np.asarray(cols, dtype=np.int64)
    n = pool.size
    for name, a in (("rows", rows), ("cols", cols)):
        if a.ndim != 1 or (a.size and (a.min() < 0 or a.max() >= n)):
            raise ValueError(f"{name} must be a one-dimensional array of indices in 0..{n - 1}")
    return combined(codes(pool), rows[:, None], cols[None, :])


def distances_to(c: Codes, ref: tuple) -> np.ndarray:
    """Combined distance from every row of c to the reference row `ref` (uint8)."""
    out = np.full(len(c), MAX_DISTANCE, np.uint8)
    update_min(c, ref, out)
    return out


def update_min(c: Codes, ref: tuple, m: np.ndarray, assign: np.ndarray | None = None,
               label: int = 0, stop: int | None = None) -> None:
    """m = minimum(m, distance of each row of c to ref), in place, chunk by chunk (rows
    0..stop-1 only, with `stop`).

    With `assign`, rows whose distance is strictly below their old m get `label` there
    (nearest-centre bookkeeping for clustering). This is the O(n) step every greedy
    farthest-point loop repeats: 3 XOR + popcount passes and a few uint8 operations. Pools of
    PARALLEL_ROWS rows or more are cut in THREADS parts done at once (numpy releases the GIL in
    its loops; every row is computed exactly as in one part).
    """
    n = len(c) if stop is None else stop
    parts = THREADS if n >= PARALLEL_ROWS else 1
    if parts <= 1:
        _update_range(c, ref, m, assign, label, 0, n)
        return
    edges = [n * i // parts for i in range(parts + 1)]
    futures = [_executor().submit(_update_range, c, ref, m, assign, label, edges[i], edges[i + 1])
               for i in range(1, parts)]
    _update_range(c, ref, m, assign, label, edges[0], edges[1])
    for f in futures:
        f.result()


def _executor() -> ThreadPoolExecutor:
    """The helper threads, made on first use (again in a forked child, which has none)."""
    global _POOL, _POOL_PID
    if _POOL is None or _POOL_PID != os.getpid():
        _POOL = ThreadPoolExecutor(max_workers=max(1, THREADS - 1), thread_name_prefix="indexer-distance")
        _POOL_PID = os.getpid()
    return _POOL


def _update_range(c: Codes, ref: tuple, m: np.ndarray, assign: np.ndarray | None, label: int,
                  start: int, stop: int) -> None:
    """update_min on rows start..stop-1."""
    ch = min(_CHUNK, max(stop - start, 1))
    t64 = np.empty(ch, np.uint64)
    acc = np.empty(ch, np.uint8)
    t8 = np.empty(ch, np.uint8)
    u8 = np.empty(ch, np.uint8)
    mask = np.empty(ch, bool) if assign is not None else None
    r0, r1, r2 = (np.uint64(ref[0]), np.uint64(ref[1]), np.uint64(ref[2]))
    rq, rg = np.uint8(ref[3]), np.uint8(ref[4])
    h0, h1, h2 = c.h
    for s in range(start, stop, ch):
        e = min(s + ch, stop)
        L = e - s
        t, a, b, u = t64[:L], acc[:L], t8[:L], u8[:L]
        np.bitwise_xor(h0[s:e], r0, out=t)
        np.bitwise_count(t, out=a)
        np.bitwise_xor(h1[s:e], r1, out=t)
        np.bitwise_count(t, out=b)
        a += b
        np.bitwise_xor(h2[s:e], r2, out=t)
        np.bitwise_count(t, out=b)
        a += b
        q = c.q[s:e]
        np.subtract(q, rq, out=b)      # wraps around in uint8 ...
        np.subtract(rq, q, out=u)
        np.minimum(b, u, out=b)        # ... so the smaller of the two is |q - rq|
        a += b
        np.bitwise_xor(c.g[s:e], rg, out=b)
        a += b
        mm = m[s:e]
        if assign is not None:
            k = mask[:L]  # type: ignore[index]
            np.less(a, mm, out=k)
            label_rows(assign[s:e], k, label)
        np.minimum(mm, a, out=mm)


def label_rows(assign: np.ndarray, rows: np.ndarray, label: int) -> None:
    """assign[rows] = label for a boolean mask `rows`. np.putmask walks every row at ~1.7 ns
    even when none is set (~190 us per 111k rows), and a farthest-point pass sets few once its
    first centres are placed: none is a count, a few (< 1/16) go by np.copyto, which skips runs
    of False fast (25-50 us), and only many use putmask (diverse's 1,000 passes over 222k
    bursts: ~0.3 s less, the same cells)."""
    hits = int(np.count_nonzero(rows))
    if hits == len(rows):
        assign[...] = label
    elif hits * 16 < len(rows):
        if hits:
            np.copyto(assign, label, where=rows)
    else:
        np.putmask(assign, rows, label)


def update_min_hamming(words: np.ndarray, ref: int, m: np.ndarray) -> None:
    """m = minimum(m, Hamming distance of each hash in `words` to ref), in place."""
    n = len(words)
    ch = min(_CHUNK, max(n, 1))
    t64 = np.empty(ch, np.uint64)
    acc = np.empty(ch, np.uint8)
    r = np.uint64(ref)
    for s in range(0, n, ch):
        e = min(s + ch, n)
        t, a = t64[: e - s], acc[: e - s]
        np.bitwise_xor(words[s:e], r, out=t)
        np.bitwise_count(t, out=a)
        mm = m[s:e]
        np.minimum(mm, a, out=mm)


def majority_code(c: Codes, rows: np.ndarray) -> tuple:
    """A synthetic "central" code of some rows: the bitwise majority of each hash, the median
    brightness level and the majority gray flag (the Hamming-space analogue of a mean)."""
    rows = np.asarray(rows, dtype=np.int64)
    ref = []
    for w in c.h:
        bits = np.unpackbits(w[rows].view(np.uint8).reshape(-1, 8), axis=1)
        major = (2 * bits.sum(axis=0, dtype=np.int64) > len(rows)).astype(np.uint8)
        ref.append(np.packbits(major).view(np.uint64)[0])
    q = np.uint8(np.median(c.q[rows]))
    g = np.uint8(GRAY_MISMATCH) if 2 * int(np.count_nonzero(c.g[rows])) > len(rows) else np.uint8(0)
    return (ref[0], ref[1], ref[2], q, g)


def central_row(c: Codes, rng: np.random.Generator | None = None, sample: int = 2048) -> int:
    """The row nearest the majority code of (a sample of) all rows: a cheap medoid stand-in.
    Ties go to the lowest row, so the result is deterministic for a given rng state."""
    n = len(c)
    if n <= sample or rng is None:
        rows = np.arange(n) if n <= sample else np.linspace(0, n - 1, sample).astype(np.int64)
    else:
        rows = np.sort(rng.choice(n, sample, replace=False))
    return int(np.argmin(distances_to(c, majority_code(c, rows))))
