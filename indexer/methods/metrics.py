"""How good a subset is against its pool: coverage, redundancy, buckets covered.

coverage          mean and largest combined distance (distance.py) from every pool image to
                  its nearest pick: low mean = nothing common is under-sampled, low max = no
                  scene is left out.
hamming_coverage  the same with dHash Hamming bits only (0-64): the figure `--stats` prints.
redundancy        share of picks that have another pick within `bits` dHash bits, or in the
                  same burst (sequence >= 0).
buckets_covered   how many of the pool's non-empty smartdownsample buckets have a pick.

coverage costs one vectorised pass over the pool per pick (k x n popcounts): ~3.5 ms per pick
for n = 1M, so seconds for 1000 picks; hamming_coverage about a third of that.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .buckets import bucket_keys
from .common import check_indices, check_pool
from .distance import MAX_DISTANCE, codes, hamming, update_min, update_min_hamming

if TYPE_CHECKING:
    from .pool import Pool

_DIRECT = 4096  # up to this many picks, redundancy compares all pairs directly


def coverage(pool: Pool, picks: np.ndarray) -> tuple[float, float]:
    """(mean, max) combined distance from every pool image to its nearest pick."""
    m = _nearest(pool, picks, combined=True)
    return (0.0, 0.0) if m is None else (float(m.mean()), float(m.max()))


def hamming_coverage(pool: Pool, picks: np.ndarray) -> tuple[float, float]:
    """(mean, max) dHash Hamming distance (bits, 0-64) from every pool image to its nearest pick."""
    m = _nearest(pool, picks, combined=False)
    return (0.0, 0.0) if m is None else (float(m.mean()), float(m.max()))


def _nearest(pool: Pool, picks: np.ndarray, combined: bool) -> np.ndarray | None:
    check_pool(pool)
    picks = check_indices(picks, pool.size, "picks")
    if pool.size == 0:
        return None
    if len(picks) == 0:
        raise ValueError("picks is empty: coverage needs at least one pick")
    m = np.full(pool.size, MAX_DISTANCE, np.uint8)
    if combined:
        c = codes(pool)
        for j in picks:
            update_min(c, c.row(int(j)), m)
    else:
        for j in picks:
            update_min_hamming(pool.dhash, int(pool.dhash[j]), m)
    return m


def redundancy(pool: Pool, picks: np.ndarray, bits: int = 6) -> float:
    """Share of picks with another pick within `bits` (dHash Hamming) or in the same sequence."""
    check_pool(pool)
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 0 <= bits <= 63:
        raise ValueError(f"bits must be an integer in 0..63, got {bits!r}")
    picks = check_indices(picks, pool.size, "picks")
    if len(picks) < 2:
        return 0.0
    flag = np.zeros(len(picks), bool)
    seq = pool.sequence[picks]
    known = seq >= 0
    if known.any():
        _, inv, counts = np.unique(seq[known], return_inverse=True, return_counts=True)
        flag[np.flatnonzero(known)[counts[inv] > 1]] = True
    h = pool.dhash[picks]
    flag |= _close_pairs(h, int(bits)) if len(h) <= _DIRECT else _close_pairs_indexed(h, int(bits))
    return float(flag.mean())


def _close_pairs(h: np.ndarray, bits: int) -> np.ndarray:
    """Rows with another row within `bits`: all pairs, in blocks."""
    out = np.zeros(len(h), bool)
    for s in range(0, len(h), 512):
        d = hamming(h[s:s + 512, None], h[None, :])
        d[np.arange(d.shape[0]), np.arange(s, s + d.shape[0])] = 255
        out[s:s + 512] = (d <= bits).any(axis=1)
    return out


def _close_pairs_indexed(h: np.ndarray, bits: int) -> np.ndarray:
    """Rows with another row within `bits`, by multi-index hashing: split the 64 bits into
    bits + 1 segments; two hashes within `bits` agree exactly on at least one segment, so only
    rows sharing a segment value are compared."""
    out = np.zeros(len(h), bool)
    edges = np.linspace(0, 64, bits + 2).astype(int)
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = np.uint64((1 << (hi - lo)) - 1)
        key = (h >> np.uint64(lo)) & mask
        order = np.argsort(key, kind="stable")
        ks = key[order]
        for off in range(1, len(h)):
            same = np.flatnonzero(ks[off:] == ks[:-off])
            if same.size == 0:
                break
            a, b = order[same], order[same + off]
            close = hamming(h[a], h[b]) <= bits
            out[a[close]] = True
            out[b[close]] = True
    return out


def buckets_covered(pool: Pool, picks: np.ndarray) -> tuple[int, int]:
    """(buckets with at least one pick, non-empty buckets in the pool)."""
    check_pool(pool)
    picks = check_indices(picks, pool.size, "picks")
    keys = bucket_keys(pool)
    return int(len(np.unique(keys[picks]))), int(len(np.unique(keys)))
