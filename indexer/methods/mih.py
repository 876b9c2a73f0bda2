"""Multi-index hashing: every pair of 64-bit hashes within r bits, exactly and without comparing all pairs.

Pigeonhole (Norouzi, Punjani and Fleet, "Fast search in Hamming space with multi-index hashing",
CVPR 2012): cut the 64 bits into m contiguous blocks and give block i a radius s_i with
sum(s_i + 1) >= r + 1. Two hashes at most r bits apart then differ in at most s_i bits in at least
one block i (if every block differed in s_i + 1 or more, the total would exceed r). A block with
s_i = -1 is never probed. For each probed block the hashes are bucketed by their block value in a
dense table (counting sort, 2^bits entries, bits <= 24); every hash looks up the buckets of its
block value XOR each pattern of at most s_i bits, and each candidate pair found is checked on the
full 64 bits. The search is exact for the radius asked; the number of blocks is chosen from a
cost estimate (probes x expected bucket size), and plain chunked brute force is used when that
estimate says it is cheaper (small inputs, radii close to 64).

numpy only, pure: arrays in, arrays out. Hashes may be given as int64 (as SQLite stores them) or
uint64.
"""
from __future__ import annotations

from itertools import combinations
from math import comb
import os

import numpy as np

_MAX_BLOCK_BITS = 24       # dense bucket tables of at most 2^24 entries (64 MiB of int32 counts)
_BRUTE_CHUNK = 2048        # rows per brute-force block (x n columns)
THREADS = 1  # probing threads: measured slower with 2 (fancy indexing holds the GIL)


def _u64(a: np.ndarray | list[int]) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.uint64:
        return np.ascontiguousarray(a)
    if a.dtype == np.int64:
        return np.ascontiguousarray(a).view(np.uint64)
    if a.dtype == object or a.size == 0:
        return np.array([int(x) & 0xFFFFFFFFFFFFFFFF for x in a.ravel()], dtype=np.uint64)
    return a.astype(np.int64).view(np.uint64)


def _check_radius(r: int) -> int:
    if isinstance(r, bool) or int(r) != r or not 0 <= int(r) <= 64:
        raise ValueError(f"radius must be an integer from 0 to 64, not {r!r}")
    return int(r)


def blocks(m: int) -> list[tuple[int, int]]:
    """(shift, bits) of m contiguous blocks covering the 64 bits, the longer blocks first."""
    base, extra = divmod(64, m)
    sizes = [base + (1 if i < extra else 0) for i in range(m)]
    out, shift = [], 64
    for b in sizes:
        shift -= b
        out.append((shift, b))
    return out


def radii(r: int, m: int) -> list[int]:
    """Per-block radii s_i with sum(s_i + 1) = r + 1 (when possible): -1 means the block is not probed."""
    need = r + 1  # sum of (s_i + 1)
    base, extra = divmod(need, m)
    return [base + (1 if i < extra else 0) - 1 for i in range(m)]


def patterns(bits: int, s: int) -> np.ndarray:
    """Every value of `bits` bits with at most s bits set, 0 first (uint32)."""
    out = [0]
    for k in range(1, s + 1):
        out += [sum(1 << p for p in c) for c in combinations(range(bits), k)]
    return np.array(out, dtype=np.uint32)


def _ball(bits: int, s: int) -> int:
    return sum(comb(bits, k) for k in range(0, s + 1)) if s >= 0 else 0


def plan(n_queries: int, n_base: int, r: int) -> int:
    """The number of blocks m to use (0: brute force is cheaper), from a cost estimate."""
    brute = n_queries * n_base / 8.0  # vectorised XOR+popcount is ~8x cheaper per pair than a probe
    best_m, best = 0, brute
    for m in range(3, 17):
        bl, rs = blocks(m), radii(r, m)
        if bl[0][1] > _MAX_BLOCK_BITS:
            continue
        cost = 0.0
        for (_, bits), s in zip(bl, rs):
            if s >= 0:
                cost += _ball(bits, s) * n_queries * (1.0 + n_base / 2.0 ** bits) + 2.0 ** bits / 16
        if cost < best:
            best_m, best = m, cost
    return best_m


class _Buckets:
    """Hashes bucketed by one block's value: a counting sort over a dense table."""

    def __init__(self, values: np.ndarray, bits: int) -> None:
        self.counts = np.bincount(values, minlength=1 << bits).astype(np.int32)
        self.starts = np.zeros((1 << bits) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=self.starts[1:])
        self.order = np.argsort(values, kind="stable").astype(np.int64)

    def lookup(self, rows: np.ndarray, probe: np.ndarray, positions: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
        """(rows[k], base row) for every base hash in the bucket of probe[k]; with positions=True
        the base hash's position in bucket order instead of its row."""
        c = self.counts[probe]
        hit = np.flatnonzero(c)
        if not len(hit):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        c = c[hit]
        st = self.starts[probe[hit]]
        multi = np.flatnonzero(c > 1)
        if len(multi):  # buckets of several hashes: expand; most buckets hold one (fast path)
            cm = c[multi]
            total = int(cm.sum())
            ends = np.cumsum(cm)
            offs = np.repeat(st[multi] - ends + cm, cm) + np.arange(total, dtype=np.int64)
            one = c == 1
            q_rows = np.concatenate([rows[hit[one]], np.repeat(rows[hit[multi]], cm)])
            offs = np.concatenate([st[one], offs])
        else:
            q_rows, offs = rows[hit], st
        return q_rows, (offs if positions else self.order[offs])


def _verify(a: np.ndarray, b: np.ndarray, i: np.ndarray, j: np.ndarray, r: int
            ) -> tuple[np.ndarray, np.ndarray]:
    d = np.bitwise_count(np.bitwise_xor(a[i], b[j]))
    keep = d <= r
    return i[keep], j[keep]


def _pack(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    return i.astype(np.int64) * np.int64(n) + j.astype(np.int64)


def _unpack(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    keys = np.unique(keys)
    return keys // n, keys % n


class TooManyPairs(ValueError):
    """More pairs than the caller's max_pairs: the radius is too wide for these hashes."""


def _count(found: list[np.ndarray], max_pairs: int | None) -> None:
    if max_pairs is not None and sum(len(a) for a in found) > max_pairs:
        raise TooManyPairs(f"more than {max_pairs:,} pairs")


def self_pairs(hashes: np.ndarray | list[int], r: int, *, m: int | None = None, max_pairs: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i, j), i < j, of positions whose hashes are at most r bits apart, with the
    distance: (i, j, d) sorted by (i, j). `m` forces the number of blocks (0: brute force).
    TooManyPairs as soon as more than max_pairs were found (a pair found in several blocks counts
    once per block): memory grows with the pairs, quadratically in the size of dense clusters."""
    r = _check_radius(r)
    h = _u64(hashes)
    n = len(h)
    if n < 2:
        e = np.empty(0, np.int64)
        return e, e.copy(), np.empty(0, np.uint8)
    if m is None:
        m = plan(n // 2 or 1, n, r)  # each unordered pair is probed from one side only
    if m == 0:
        return _brute_self(h, r, max_pairs)
    found: list[np.ndarray] = []
    for (shift, bits), s in zip(blocks(m), radii(r, m)):
        if s < 0:
            continue
        v = ((h >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.uint32)
        bk = _Buckets(v, bits)
        found.append(_same_bucket_pairs(bk, h, r, n))
        _count(found, max_pairs)
        pats = patterns(bits, s)[1:]
        if not len(pats):
            continue
        # Work in bucket order: for a fixed pattern, v ^ p visits the table almost sequentially
        # (XOR only permutes inside aligned runs), and the base hashes are read in order too.
        hs, vs = h[bk.order], v[bk.order]
        # probe from the side where the top bit of the pattern is clear: each pair once
        side = {}
        for t in {int(p).bit_length() - 1 for p in pats}:
            pos = np.flatnonzero((vs >> np.uint32(t)) & np.uint32(1) == 0)
            side[t] = (pos, vs[pos])

        def probe(chunk: np.ndarray) -> list[np.ndarray]:
            out = []
            for p in chunk:
                pos, vr = side[int(p).bit_length() - 1]
                a, b = bk.lookup(pos, vr ^ p, positions=True)
                a, b = _verify(hs, hs, a, b, r)
                i, j = bk.order[a], bk.order[b]
                out.append(_pack(np.minimum(i, j), np.maximum(i, j), n))
                _count(found + out, max_pairs)
            return out

        found += _threaded(probe, pats)
    i, j = _unpack(np.concatenate(found) if found else np.empty(0, np.int64), n)
    return i, j, np.bitwise_count(h[i] ^ h[j]).astype(np.uint8)


def _threaded(fn, items: np.ndarray) -> list[np.ndarray]:
    """fn over slices of items in THREADS threads (numpy releases the GIL in its loops)."""
    if len(items) < 8 or THREADS < 2:
        return fn(items)
    from concurrent.futures import ThreadPoolExecutor
    parts = [items[k::THREADS] for k in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as ex:
        return [a for res in ex.map(fn, parts) for a in res]


def _same_bucket_pairs(bk: _Buckets, h: np.ndarray, r: int, n: int) -> np.ndarray:
    """Pairs within the same bucket (pattern 0), each once, verified."""
    c = bk.counts
    sizes = c[c >= 2].astype(np.int64)
    if not len(sizes):
        return np.empty(0, np.int64)
    st = bk.starts[:-1][c >= 2]
    out = []
    # position k of a bucket [st, st + size) pairs with the positions after it
    per_bucket_pos = np.repeat(st, sizes) + (np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes))
    ends = np.repeat(st + sizes, sizes)
    after = ends - per_bucket_pos - 1
    todo = np.flatnonzero(after)
    pos, cnt = per_bucket_pos[todo], after[todo]
    for s0 in range(0, len(pos), 1 << 16):  # big buckets (many copies) are expanded in slices
        p, k = pos[s0:s0 + (1 << 16)], cnt[s0:s0 + (1 << 16)]
        total = int(k.sum())
        a = np.repeat(p, k)
        b = a + 1 + (np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(k) - k, k))
        i, j = _verify(h, h, bk.order[a], bk.order[b], r)
        out.append(_pack(np.minimum(i, j), np.maximum(i, j), n))
    return np.concatenate(out)


def _brute_self(h: np.ndarray, r: int, max_pairs: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(h)
    ii, jj = [], []
    for s in range(0, n, _BRUTE_CHUNK):
        e = min(s + _BRUTE_CHUNK, n)
        d = np.bitwise_count(h[s:e, None] ^ h[None, s:])
        a, b = np.nonzero(d <= r)
        a = a + s
        b = b + s
        keep = b > a
        ii.append(a[keep])
        jj.append(b[keep])
        _count(ii, max_pairs)
    i = np.concatenate(ii).astype(np.int64)
    j = np.concatenate(jj).astype(np.int64)
    order = np.lexsort((j, i))
    i, j = i[order], j[order]
    return i, j, np.bitwise_count(h[i] ^ h[j]).astype(np.uint8)


def cross_pairs(queries: np.ndarray | list[int], base: np.ndarray | list[int], r: int, *, m: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (q, b) of a query position and a base position whose hashes are at most r bits
    apart, with the distance, sorted by (q, b)."""
    r = _check_radius(r)
    a, h = _u64(queries), _u64(base)
    nq, nb = len(a), len(h)
    if not nq or not nb:
        e = np.empty(0, np.int64)
        return e, e.copy(), np.empty(0, np.uint8)
    if m is None:
        m = plan(nq, nb, r)
    if m == 0:
        return _brute_cross(a, h, r)
    found: list[np.ndarray] = []
    rows = np.arange(nq, dtype=np.int64)
    for (shift, bits), s in zip(blocks(m), radii(r, m)):
        if s < 0:
            continue
        mask = np.uint64((1 << bits) - 1)
        bk = _Buckets(((h >> np.uint64(shift)) & mask).astype(np.uint32), bits)
        qv = ((a >> np.uint64(shift)) & mask).astype(np.uint32)

        def probe(chunk: np.ndarray) -> list[np.ndarray]:
            out = []
            for p in chunk:
                i, j = bk.lookup(rows, qv ^ p)
                i, j = _verify(a, h, i, j, r)
                out.append(_pack(i, j, nb))
            return out

        found += _threaded(probe, patterns(bits, s))
    i, j = _unpack(np.concatenate(found), nb)
    return i, j, np.bitwise_count(a[i] ^ h[j]).astype(np.uint8)


def _brute_cross(a: np.ndarray, h: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ii, jj = [], []
    for s in range(0, len(a), _BRUTE_CHUNK):
        d = np.bitwise_count(a[s:s + _BRUTE_CHUNK, None] ^ h[None, :])
        x, y = np.nonzero(d <= r)
        ii.append(x + s)
        jj.append(y)
    i = np.concatenate(ii).astype(np.int64)
    j = np.concatenate(jj).astype(np.int64)
    return i, j, np.bitwise_count(a[i] ^ h[j]).astype(np.uint8)


def nearest(query: int, base: np.ndarray | list[int], k: int, r: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the k base hashes nearest to `query` within r bits, nearest first (ties by
    position), and their distances. One vectorised pass: ~5 ms per million hashes."""
    r = _check_radius(r)
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k!r}")
    h = _u64(base)
    q = np.uint64(int(query) & 0xFFFFFFFFFFFFFFFF)
    d = np.bitwise_count(h ^ q)
    within = np.flatnonzero(d <= r)
    dw = d[within]
    if len(within) > k:
        part = np.argpartition(dw, k - 1)[:k]
        cut = dw[part].max()
        sel = np.flatnonzero(dw <= cut)  # every tie at the cut, then ordered and trimmed
        within, dw = within[sel], dw[sel]
    order = np.lexsort((within, dw))[:k]
    return within[order], dw[order].astype(np.uint8)


def brute_pairs(hashes: np.ndarray | list[int], r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference: all pairs compared (quadratic). For tests and the benchmark."""
    return _brute_self(_u64(hashes), _check_radius(r))


def hamming_rows(hashes: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Differing bits of hashes[i] and hashes[j], elementwise (uint8)."""
    h = _u64(hashes)
    return np.bitwise_count(h[i] ^ h[j])
