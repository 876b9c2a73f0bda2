"""Selection and search over embeddings (unit vectors, cosine distance): numpy only, no I/O.

The vectors are those `indexer embed` stores: one L2-normalised row per image, float16. The
distance is the cosine distance 1 - a.b (0 = same direction, 1 = orthogonal, 2 = opposite);
its square root times sqrt(2) is the Euclidean distance of unit vectors, a metric, so the
farthest-point bounds below hold.

kcenter: greedy farthest-point (Gonzalez), exact, without a pass over every row per pick. Each
row keeps s = its largest similarity to the centres it has been compared with; s only grows as
centres are added, so a stale s is a lower bound and the row is at least that close to its
nearest centre. Rows are sorted by s once; an *active* set (the rows that might be farthest)
is kept exact and compared with each new centre; the others are compared only when the
farthest active row is no farther than the best bound outside it, in blocks, against just the
centres added since they were last compared (a small matrix product). When the active set
grows past ACTIVE_CAP it is re-sorted into the rest. Same picks as the plain loop of one pass
per centre (tests/test_embed_methods.py), at a fraction of the work where embeddings cluster.

diverse: bursts first (one unit per burst, its middle frame, weighted by its size; no burst
gets a second pick while one has none), farthest-point cells over the units, then the
burst-size-weighted medoid of each cell (on a sample of MEDOID_SAMPLE units), as
methods/diverse.py does with hashes. The assignment of units to cells costs units x picks dot
products.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from .common import check_k, check_seed, finish, rng_for, sequence_groups

BLOCK = 2048          # rows brought into the active set at a time
ACTIVE_CAP = 8192     # active rows before they are re-sorted into the rest
CHUNK = 16384         # rows per matrix product (float16 rows converted a chunk at a time)
MEDOID_SAMPLE = 128
KCENTER_EPS = 0.02     # cosine distance within which consecutive frames share one kcenter unit


def check_vectors(vectors: object) -> np.ndarray:
    arr = np.asarray(vectors)
    if arr.ndim != 2:
        raise ValueError(f"vectors must be two-dimensional (n, dim), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"vectors must be floating point, got {arr.dtype}")
    return arr


def similarities(vectors: np.ndarray, centres: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """max over `centres` of row . centre, for `rows` of vectors (all rows without), float32."""
    c = np.ascontiguousarray(centres, dtype=np.float32).reshape(-1, vectors.shape[1])
    idx = np.arange(len(vectors)) if rows is None else rows
    out = np.full(len(idx), -2.0, np.float32)
    if not len(c):
        return out
    for s in range(0, len(idx), CHUNK):
        part = vectors[idx[s:s + CHUNK]] if rows is not None else vectors[s:s + CHUNK]
        out[s:s + CHUNK] = (part.astype(np.float32, copy=False) @ c.T).max(axis=1)
    return out


def central_row(vectors: np.ndarray) -> int:
    """The row most similar to the mean direction (ties: the first)."""
    mean = np.zeros(vectors.shape[1], np.float64)
    for s in range(0, len(vectors), CHUNK):
        mean += vectors[s:s + CHUNK].astype(np.float32).sum(axis=0)
    sims = similarities(vectors, mean[None, :].astype(np.float32))
    return int(np.argmax(sims))


def farthest_first(vectors: np.ndarray, count: int, keep: np.ndarray | None = None,
                   centres: np.ndarray | None = None) -> np.ndarray:
    """Up to `count` rows picked greedily farthest-first (cosine). The starting centres are the
    rows `keep` and the extra vectors `centres`; without either, the most central row is the
    first pick. Stops early when every row left duplicates a pick (similarity 1)."""
    x = check_vectors(vectors)
    n = len(x)
    keep = np.zeros(0, np.int64) if keep is None else np.asarray(keep, dtype=np.int64)
    extra = np.zeros((0, x.shape[1]), np.float32) if centres is None else np.asarray(centres, np.float32)
    if count <= 0 or n == 0:
        return np.zeros(0, np.int64)
    with one_blas_thread():
        return _Farthest(x, keep, extra).run(count)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """OpenBLAS on one thread for the loop: its products (a few thousand rows by one vector)
    are too small to share, and on a busy machine the second thread's spin-waits made the loop
    3-4x slower (measured: 100k rows, 0.66 s against 2.2 s). numpy's bundled OpenBLAS only;
    elsewhere nothing changes."""
    lib = _openblas()
    if lib is None:
        yield
        return
    before = lib.scipy_openblas_get_num_threads64_()
    lib.scipy_openblas_set_num_threads64_(1)
    try:
        yield
    finally:
        lib.scipy_openblas_set_num_threads64_(before)


_BLAS: list[object] = []


def _openblas() -> object | None:
    if not _BLAS:
        found = None
        try:
            import ctypes
            import glob
            import os
            libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "libscipy_openblas64_*.so")
            for path in glob.glob(libs):
                lib = ctypes.CDLL(path)
                if hasattr(lib, "scipy_openblas_set_num_threads64_"):
                    found = lib
        except OSError:
            found = None
        _BLAS.append(found)
    return _BLAS[0]


class _Farthest:
    """The state of one farthest-point run (see the module docstring)."""

    def __init__(self, x: np.ndarray, keep: np.ndarray, extra: np.ndarray) -> None:
        self.x = x
        self.n = len(x)
        self.c = np.zeros((max(16, len(keep) + len(extra) + 1), x.shape[1]), np.float32)
        self.k = 0
        self.taken = np.zeros(self.n, bool)
        self.s = np.full(self.n, -2.0, np.float32)
        self.done = np.zeros(self.n, np.int64)     # centres row i has been compared with
        for v in [*extra, *x[keep].astype(np.float32)]:
            self._add_centre(v)
        self.taken[keep] = True
        self.first = None
        self.xa_buf = None
        if self.k == 0:
            self.first = central_row(x)
        else:
            self.s = similarities(x, self.c[:self.k])
            self.done[:] = self.k
        self.s[self.taken] = 3.0
        self._sort()

    def _add_centre(self, v: np.ndarray) -> None:
        if self.k == len(self.c):
            self.c = np.concatenate([self.c, np.zeros_like(self.c)])
        self.c[self.k] = v
        self.k += 1

    def _sort(self, active: np.ndarray | None = None, active_s: np.ndarray | None = None) -> None:
        if active is not None and active_s is not None:
            self.s[active] = active_s
            self.done[active] = self.k
        self.order = np.argsort(self.s, kind="stable")
        self.p = 0
        cap = min(self.n, ACTIVE_CAP + BLOCK) + 1
        if getattr(self, "xa_buf", None) is None:
            self.xa_buf = np.empty((cap, self.x.shape[1]), np.float32)
            self.sa_buf = np.empty(cap, np.float32)
            self.active_buf = np.empty(cap, np.int64)
        self.m = 0
        self._grow()

    @property
    def active(self) -> np.ndarray:
        return self.active_buf[:self.m]

    @property
    def xa(self) -> np.ndarray:
        return self.xa_buf[:self.m]

    @property
    def sa(self) -> np.ndarray:
        return self.sa_buf[:self.m]

    def _grow(self) -> None:
        """Bring the next BLOCK rows (lowest bounds) in, compared with the centres they missed."""
        rows = self.order[self.p:self.p + BLOCK]
        self.p += len(rows)
        self._append(rows)

    def _append(self, rows: np.ndarray) -> None:
        a, b = self.m, self.m + len(rows)
        self.active_buf[a:b] = rows
        xr = self.xa_buf[a:b]
        xr[:] = self.x[rows]
        s = self.s[rows]
        for d in np.unique(self.done[rows]).tolist():
            if d < self.k:
                sel = np.flatnonzero(self.done[rows] == d)
                s[sel] = np.maximum(s[sel], (xr[sel] @ self.c[d:self.k].T).max(axis=1))
        s[self.taken[rows]] = 3.0
        self.sa_buf[a:b] = s
        self.m = b

    def _next(self) -> int:
        """Position in the active set of the farthest row of all."""
        while True:
            j = int(np.argmin(self.sa)) if len(self.sa) else -1
            bound = self.s[self.order[self.p]] if self.p < self.n else np.float32(np.inf)
            if j >= 0 and self.sa[j] <= bound:
                return j
            if self.m >= ACTIVE_CAP:
                self._sort(self.active.copy(), self.sa.copy())
            else:
                self._grow()

    def run(self, count: int) -> np.ndarray:
        picks: list[int] = []
        if self.first is not None:
            self._pick(int(np.flatnonzero(self.active == self.first)[0]) if self.first in set(self.active.tolist())
                       else self._bring(self.first), picks)
        while len(picks) < count:
            j = self._next()
            if self.sa[j] >= 1.0 - 1e-6:  # every row left is a duplicate of a pick
                rest = np.flatnonzero(~self.taken)[: count - len(picks)]
                picks.extend(int(r) for r in rest)
                break
            self._pick(j, picks)
        return np.asarray(picks, dtype=np.int64)

    def _bring(self, row: int) -> int:
        self._append(np.array([row], np.int64))
        return self.m - 1

    def _pick(self, j: int, picks: list[int]) -> None:
        row = int(self.active[j])
        picks.append(row)
        self.taken[row] = True
        v = self.xa_buf[j].copy()
        self._add_centre(v)
        np.maximum(self.sa, self.xa @ v, out=self.sa_buf[:self.m])
        self.sa_buf[j] = 3.0
        self.s[row] = 3.0


def kcenter(vectors: np.ndarray, k: int, *, keep: np.ndarray | None = None, eps: float = KCENTER_EPS) -> np.ndarray:
    """Indices (sorted int64) of min(k, n) rows chosen by greedy farthest-point (cosine).

    `eps`: consecutive rows (natural path order: the frames of a burst) each within this cosine
    distance of their run's first row are one unit, represented by that row, as kcenter.py does
    with hashes; the largest distance to the nearest pick is then at most the units' radius plus
    about eps. 0: every row is its own unit (plain farthest-point)."""
    x = check_vectors(vectors)
    k = check_k(k)
    keep_arr = np.unique(np.asarray(keep if keep is not None else [], dtype=np.int64))
    need = max(0, min(k, len(x)) - len(keep_arr))
    if need == 0:
        return keep_arr
    leaders, lead_dist = runs(x, eps)
    if len(leaders) == len(x):
        return finish(keep_arr, farthest_first(x, need, keep_arr))
    free = np.ones(len(x), bool)
    free[keep_arr] = False
    units = leaders[free[leaders]]
    new = units[farthest_first(x[units], need, centres=x[keep_arr].astype(np.float32) if len(keep_arr) else None)]
    if len(new) < need:  # fewer units than picks: the rows farthest from their run's first row
        free[new] = False
        cand = np.flatnonzero(free)
        new = np.concatenate([new, cand[np.lexsort((cand, -lead_dist[cand]))][: need - len(new)]])
    return finish(keep_arr, new)


def runs(x: np.ndarray, eps: float, passes: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Maximal runs of consecutive rows each within `eps` cosine distance of the run's first row:
    (first row of each run, distance of every row to its run's first row). A chunk at a time,
    each row converted to float32 once; a run may continue across chunks (its first row is
    carried over)."""
    n = len(x)
    if eps <= 0 or n < 2:
        return np.arange(n, dtype=np.int64), np.zeros(n, np.float32)
    starts: list[np.ndarray] = []
    dist = np.zeros(n, np.float32)
    carry: tuple[int, np.ndarray] | None = None
    for s in range(0, n, CHUNK):
        a = x[s:s + CHUNK].astype(np.float32)
        base = s
        if carry is not None:
            a = np.concatenate([carry[1][None, :], a])
            base = s - 1
        m = len(a)
        idx = np.arange(m)
        start = np.ones(m, bool)
        start[1:] = 1.0 - np.einsum("ij,ij->i", a[1:], a[:-1]) > eps
        for _ in range(passes):
            lead = np.maximum.accumulate(np.where(start, idx, 0))
            d = 1.0 - np.einsum("ij,ij->i", a, a[lead])
            d[start] = 0.0
            bad = d > eps
            if not bad.any():
                break
            start |= bad
        else:
            start[:] = True
            d = np.zeros(m, np.float32)
        glob = np.where(start, idx, 0)
        lead = np.maximum.accumulate(glob)
        first = 1 if carry is not None else 0
        if carry is not None:  # local row 0 is the carried first row of a run: global row carry[0]
            mine = start.copy()
            mine[0] = False
            starts.append(np.flatnonzero(mine) + base)
        else:
            starts.append(np.flatnonzero(start) + base)
        dist[s:s + m - first] = d[first:]
        last = int(lead[-1])
        carry = (last + base if last or carry is None else carry[0], a[last].copy())
    return np.concatenate(starts).astype(np.int64), dist


def _pair_distance(x: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    out = np.empty(len(i), np.float32)
    for s in range(0, len(i), CHUNK):
        a = x[i[s:s + CHUNK]].astype(np.float32)
        b = x[j[s:s + CHUNK]].astype(np.float32)
        out[s:s + CHUNK] = 1.0 - np.einsum("ij,ij->i", a, b)
    return out


def diverse(vectors: np.ndarray, k: int, *, sequence: np.ndarray | None = None, seed: int = 0,
            keep: np.ndarray | None = None) -> np.ndarray:
    """Indices (sorted int64) of min(k, n) rows, representative and diverse (module docstring)."""
    x = check_vectors(vectors)
    k = check_k(k)
    rng = rng_for(check_seed(seed))
    n = len(x)
    keep_arr = np.unique(np.asarray(keep if keep is not None else [], dtype=np.int64))
    need = max(0, min(k, n) - len(keep_arr))
    if need == 0:
        return keep_arr
    seq = np.full(n, -1, np.int64) if sequence is None else np.asarray(sequence, dtype=np.int64)
    gid, order, starts = sequence_groups(seq)
    sizes = np.diff(np.r_[starts, n])
    rep = order[starts + sizes // 2]
    represented = np.zeros(len(starts), bool)
    represented[gid[keep_arr]] = True
    units = np.flatnonzero(~represented)
    if need >= len(units):
        first = rep[units]
        return finish(keep_arr, np.concatenate([first, _extra_frames(x, gid, rep, keep_arr, first, need - len(units))]))
    rows = rep[units]
    sub = x[rows]
    centres = farthest_first(sub, need, centres=x[keep_arr].astype(np.float32) if len(keep_arr) else None)
    cells = _assign(sub, centres)
    picked = _medoids(sub, sizes[units].astype(np.float64), cells, centres, rng)
    return finish(keep_arr, rows[picked])


def _assign(sub: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Cell (index into centres) of every unit: its most similar centre."""
    c = sub[centres].astype(np.float32)
    out = np.empty(len(sub), np.int64)
    for s in range(0, len(sub), CHUNK):
        out[s:s + CHUNK] = np.argmax(sub[s:s + CHUNK].astype(np.float32) @ c.T, axis=1)
    out[centres] = np.arange(len(centres))
    return out


def _medoids(sub: np.ndarray, weight: np.ndarray, cells: np.ndarray, centres: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """One unit per cell: the one with the least weighted sum of cosine distances to the cell's
    (sampled) units; ties to the first."""
    order = np.argsort(cells, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(cells, minlength=len(centres)))]
    out = np.empty(len(centres), np.int64)
    for cell in range(len(centres)):
        mem = order[bounds[cell]:bounds[cell + 1]]
        pos = mem if len(mem) <= MEDOID_SAMPLE else np.sort(rng.choice(mem, MEDOID_SAMPLE, replace=False))
        v = sub[pos].astype(np.float32)
        cost = (1.0 - v @ v.T) @ weight[pos]
        out[cell] = int(pos[np.lexsort((pos, np.round(cost, 6)))[0]])
    return out


def _extra_frames(x: np.ndarray, gid: np.ndarray, rep: np.ndarray, keep: np.ndarray, first: np.ndarray,
                  count: int) -> np.ndarray:
    """Every burst has a pick: `count` more frames, level by level (no burst gets its j+1-th
    while another lacks its j-th), the most different from their burst's representative first."""
    if count <= 0:
        return np.zeros(0, np.int64)
    picked = np.zeros(len(x), bool)
    picked[keep] = True
    picked[first] = True
    have = np.bincount(gid[picked], minlength=len(rep))
    cand = np.flatnonzero(~picked)
    g = gid[cand]
    d = 1.0 - np.einsum("ij,ij->i", x[cand].astype(np.float32), x[rep[g]].astype(np.float32))
    by = np.lexsort((cand, -d, g))            # each burst's frames, most different first
    rank = np.arange(len(by)) - np.searchsorted(g[by], g[by])  # place in its burst's list
    level = np.empty(len(cand), np.int64)
    level[by] = have[g[by]] + rank            # the how-many-th frame of its burst it would be
    return cand[np.lexsort((cand, -d, level))[:count]]


def pick_vectors(vectors: np.ndarray, k: int, method: str, *, sequence: np.ndarray | None = None, seed: int = 0,
                 keep: np.ndarray | None = None) -> np.ndarray:
    """`pick` for embeddings: diverse or kcenter."""
    if method == "kcenter":
        return kcenter(vectors, k, keep=keep)
    if method == "diverse":
        return diverse(vectors, k, sequence=sequence, seed=seed, keep=keep)
    raise ValueError(f"method {method!r} does not work on embeddings: choose diverse or kcenter")


def coverage(vectors: np.ndarray, picks: np.ndarray, sample: int = 50_000, seed: int = 0) -> tuple[float, float]:
    """(mean, largest) cosine distance from a row to its nearest pick, over every row (or a
    seeded sample of `sample` rows of larger pools)."""
    picks = np.asarray(picks, dtype=np.int64)
    if not len(picks) or not len(vectors):
        return 0.0, 0.0
    rows = np.arange(len(vectors))
    if len(rows) > sample:
        rows = np.sort(rng_for(seed).choice(len(vectors), sample, replace=False))
    sims = similarities(vectors, vectors[picks].astype(np.float32), rows)
    d = np.maximum(0.0, 1.0 - sims)
    return float(d.mean()), float(d.max())


def coverage_stats(vectors: np.ndarray, picks: np.ndarray, seed: int) -> dict[str, float]:
    """--stats of a group picked on embeddings: cosine coverage of the picks and of a random
    subset of the same size."""
    rnd = np.sort(rng_for(seed + 1).choice(len(vectors), len(picks), replace=False)) if len(picks) else picks
    cm, cx = coverage(vectors, picks, seed=seed)
    rm, rx = coverage(vectors, rnd, seed=seed)
    return {"cosine_mean": round(cm, 4), "cosine_max": round(cx, 4), "random_cosine_mean": round(rm, 4),
            "random_cosine_max": round(rx, 4)}


# -- search --------------------------------------------------------------------------------------

def nearest(vectors: np.ndarray, query: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cosine distances) of the `top` rows nearest the query, nearest first (ties: row)."""
    q = np.asarray(query, np.float32).reshape(-1)
    sims = np.empty(len(vectors), np.float32)
    for s in range(0, len(vectors), CHUNK):
        sims[s:s + CHUNK] = vectors[s:s + CHUNK].astype(np.float32) @ q
    top = min(top, len(sims))
    if top <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    part = np.argpartition(-sims, top - 1)[:top] if top < len(sims) else np.arange(len(sims))
    part = part[np.lexsort((part, -sims[part]))]
    return part.astype(np.int64), np.maximum(0.0, 1.0 - sims[part])


class TooManyPairs(Exception):
    pass


def self_pairs(vectors: np.ndarray, max_distance: float, max_pairs: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row pairs (i < j) within `max_distance` cosine distance, and their distances. Exact, by
    blocks of dot products: n^2 / 2 of them (seconds for 20,000 rows of 384 dims; narrow large
    archives with --where or --per)."""
    x = check_vectors(vectors)
    n = len(x)
    lim = np.float32(1.0 - max_distance)
    out_i, out_j, out_d = [], [], []
    total = 0
    step = 2048
    for a in range(0, n, step):
        xa = x[a:a + step].astype(np.float32)
        for b in range(a, n, step * 4):
            sims = xa @ x[b:b + step * 4].astype(np.float32).T
            ii, jj = np.nonzero(sims >= lim)
            ii, jj = ii + a, jj + b
            keep = ii < jj
            ii, jj = ii[keep], jj[keep]
            if len(ii):
                out_i.append(ii)
                out_j.append(jj)
                out_d.append(np.maximum(0.0, 1.0 - sims[ii - a, jj - b]))
                total += len(ii)
                if max_pairs is not None and total > max_pairs:
                    raise TooManyPairs(total)
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    i, j, d = np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)
    order = np.lexsort((j, i))
    return i[order].astype(np.int64), j[order].astype(np.int64), d[order].astype(np.float32)


def cosine_rows(vectors: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cosine distance of each pair (i[t], j[t])."""
    a = vectors[i].astype(np.float32)
    b = vectors[j].astype(np.float32)
    return np.maximum(0.0, 1.0 - np.einsum("ij,ij->i", a, b))
