"""kcenter: greedy farthest-point (Gonzalez), which minimises the largest distance from any
image to its nearest pick (it reaches outliers first) and is a 2-approximation of the optimum.

Algorithm. The first pick is the most central image (nearest the bitwise-majority code), or,
when extending a saved selection, the kept images are the starting centres. Then, k times:
pick the image whose distance to its nearest pick is largest, and update that one vector of
n minimum distances with one vectorised pass of distances from the new pick (distance.py:
three XOR + popcount passes plus uint8 brightness/gray terms, in cache-sized chunks). Memory
is the uint8 vector of n minima and a few chunk buffers: never an n x k matrix.

Speed trade-off (measured with benchmarks/bench_select_methods.py on this shared 2-core
machine). One pass over 1,000,000 rows costs ~2-4 ms (numpy's popcount runs at ~0.6 ns per
64-bit word; the XORs and uint8 adds cost about as much again), so exact farthest-point over
1M rows with k = 1000 takes ~4-6 s: over the goal. Camera-trap archives are mostly bursts:
consecutive frames (natural path order) that are near-identical. So the loop runs over
*units*: maximal runs of consecutive images each within `eps` (combined units, default 16,
about 5 bits per hash) of the run's first image, which stands for the run. A run's members
are within eps of it, so by the triangle inequality the largest distance from any image to
its nearest pick is at most the farthest-point radius over the units plus eps (coverage
figures are always computed exactly, over all images). With eps = 0 only identical
consecutive images collapse: plain farthest-point over all images. Measured on the synthetic
1M-row archive (100 cameras, 50k scenes, 260k bursts): runs leave ~300k units, k = 1000 takes
0.7-1.4 s and the largest distance is 71 against 67 for eps = 0 (5.9 s) and 87 for random
subsets; the mean distance is unchanged (50). Trying other radii on 100k rows: eps 8-20 all
cost 3-5 units of the largest distance, eps 16 collapses the most (runs are not monotonic in
eps: a new run starts at the first image too far from its leader).

If k exceeds the number of units, the remaining picks are the images farthest from their
run's representative.

Passes over the band (issue 12, point 5; benchmarks/bench_select.py). On data whose frames do
not collapse into runs (bench_select's synthetic index keeps 846k units of 1M rows) the plain
loop is 1000 passes over 846k units, ~2.5-4 ms each, ~3 s in all; the pass itself is already
the fastest numpy form tried (a fourth thermometer-coded word for brightness and gray, or a
carry-save sum of the three hashes, were 20-55% slower; pruning with the triangle inequality
saves little here, since unrelated scenes are all ~90-130 apart). But a pass only matters for
the rows that can still be the farthest one, and m[i] never grows: so pools of BAND_FROM units
or more pass over the *band* only, the rows within BAND_DEPTH of the largest m, copied together
(`_Band`). Every other row keeps the m of the centres it has seen, an upper bound below the
band's floor, so it cannot be the farthest row while the band's largest m is at or above the
floor. When that falls below the floor, the floor moves down and the rows that reach it catch up
on the centres they missed, in order, CATCH_UP at a time, stopping as soon as they fall below
the floor again. The largest m, and the first row that has it, are exactly those of the plain
loop, so the picks are the same (tests/test_select_speedups.py runs both on the recorded cases
and on pools with ties and repeats). On bench_select's 1M rows: 1000 picks from 846k units in
~1.3 s instead of ~4 s of the plain loop in the same run (load average ~2.7), 0.3x the CPU;
the band holds 1-30% of the units, and the catch-ups are most of the work. Rows are far apart
and their m close together there (75% of the units within 10 of the largest m at the end), the
hard case; clustered archives keep the band smaller. `select --per sequence` does not call
this function per burst: bursts.py runs the same algorithm on all one-burst groups at once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .common import finish, free_mask, prepare
from .distance import MAX_DISTANCE, Codes, central_row, codes, to_previous, to_rows, update_min

if TYPE_CHECKING:
    from .pool import Pool

KCENTER_EPS = 16  # run radius (combined units) below which consecutive images share one unit
_MAX_PASSES = 64
BAND_FROM = 1 << 15  # farthest_point over this many units or more passes over the band only
BAND_DEPTH = 2       # the band: rows within this much of the largest m (when it was listed)
CATCH_UP = 64        # centres applied to rows catching up before those below the floor are dropped


def kcenter(pool: Pool, k: int, *, keep: np.ndarray | None = None, eps: int = KCENTER_EPS) -> np.ndarray:
    """Indices (sorted int64) of min(k, n) images chosen by greedy farthest-point.

    `keep`: indices already selected; they count toward k and the new picks are the images
    farthest from them. `eps`: run radius for collapsing bursts (see the module docstring).
    """
    k, keep, need = prepare(pool, k, keep)
    if isinstance(eps, bool) or not isinstance(eps, (int, np.integer)) or not 0 <= eps <= MAX_DISTANCE:
        raise ValueError(f"eps must be an integer in 0..{MAX_DISTANCE}, got {eps!r}")
    if need == 0:
        return keep
    c = codes(pool)
    leaders, lead_of, lead_dist = runs(c, int(eps))
    new = farthest_point(c, leaders, need, keep)
    if len(new) < need:
        new = np.concatenate([new, _fill(pool.size, keep, new, lead_of, lead_dist, need - len(new))])
    return finish(keep, new)


def farthest_point(c: Codes, rows: np.ndarray, count: int, keep: np.ndarray) -> np.ndarray:
    """Up to `count` rows (indices into the pool) picked greedily farthest-first among `rows`.

    The kept images are the initial centres; without them the loop starts at the most
    central row. Stops early when every candidate is at
    distance 0 from a pick (all remaining rows duplicate picks).
    """
    rows = np.asarray(rows, dtype=np.int64)
    if count <= 0 or len(rows) == 0:
        return np.zeros(0, np.int64)
    sub = c.take(rows)
    m = np.full(len(rows), MAX_DISTANCE, np.uint8)
    taken = np.zeros(len(rows), bool)
    if len(keep):
        for j in keep:
            update_min(sub, c.row(int(j)), m)
        taken[np.isin(rows, keep)] = True
        m[taken] = 0
        nxt = int(np.argmax(m))
    else:
        nxt = central_row(sub)
    loop = _band_loop if len(rows) >= BAND_FROM else _plain_loop
    picks = loop(sub, m, taken, nxt, count)
    return rows[np.asarray(picks, dtype=np.int64)]


def _plain_loop(sub: Codes, m: np.ndarray, taken: np.ndarray, nxt: int, count: int) -> list[int]:
    """The greedy loop with one pass over every row per pick: m is the exact distance of every
    row to its nearest centre."""
    picks: list[int] = []
    while len(picks) < count:
        if taken[nxt]:
            break
        picks.append(nxt)
        taken[nxt] = True
        update_min(sub, sub.row(nxt), m)
        m[nxt] = 0
        nxt = int(np.argmax(m))
        if m[nxt] == 0:  # all remaining rows duplicate a pick: take them in natural order
            return picks + np.flatnonzero(~taken)[: count - len(picks)].tolist()
    return picks


def _band_loop(sub: Codes, m: np.ndarray, taken: np.ndarray, nxt: int, count: int) -> list[int]:
    """The picks of _plain_loop, with passes over the rows near the top of m only (module doc,
    "Passes over the band")."""
    band = _Band(sub, m, count)
    picks: list[int] = []
    while len(picks) < count:
        if taken[nxt]:
            break
        picks.append(nxt)
        taken[nxt] = True
        nxt, top = band.add(nxt)
        if top == 0:  # all remaining rows duplicate a pick: take them in natural order
            return picks + np.flatnonzero(~taken)[: count - len(picks)].tolist()
    return picks


class _Band:
    """m and the bookkeeping of _band_loop.

    m[i] is exact over the first seen[i] centres (the kept images are in m from the start) and
    an upper bound of row i's distance to its nearest centre. The band is the rows at or above
    `floor`, all exact, with their codes copied together so that a pass over them streams; every
    row outside it has m below `floor`, so the largest exact m is in the band as long as it is
    at least `floor`. When it falls below, the floor moves down and the rows that reach it catch
    up on the centres they missed."""

    def __init__(self, sub: Codes, m: np.ndarray, count: int) -> None:
        self.sub, self.m = sub, m
        self.seen = np.zeros(len(m), np.int32)
        self.centres: list[int] = []
        self.rows = np.zeros(0, np.int64)   # the band, ascending
        self.codes = sub.take(self.rows)
        self.mb = np.zeros(0, np.uint8)     # m of the band rows (the copy that passes update)
        self.floor = MAX_DISTANCE + 1

    def add(self, centre: int) -> tuple[int, int]:
        """Make `centre` (a row at the top) a centre; (first row of the largest m, that m)."""
        self.centres.append(centre)
        t = len(self.centres)
        if t == 1:  # every row: m exact after one pass
            update_min(self.sub, self.sub.row(centre), self.m)
            self.seen[:] = 1
            self.m[centre] = 0
        else:
            update_min(self.codes, self.sub.row(centre), self.mb)
            self.mb[np.searchsorted(self.rows, centre)] = 0
        while True:
            at = int(np.argmax(self.mb)) if len(self.mb) else -1
            if at >= 0 and self.mb[at] >= self.floor:
                return int(self.rows[at]), int(self.mb[at])
            self._lower(t)

    def _lower(self, t: int) -> None:
        """Move the floor BAND_DEPTH below the largest m and list the rows at or above it,
        catching up the ones that have not seen every centre."""
        m, seen = self.m, self.seen
        m[self.rows] = self.mb
        self.floor = max(int(m.max()) - BAND_DEPTH, 0)
        near = np.flatnonzero(m >= self.floor)
        _catch_up(self.sub, self.centres, near[seen[near] < t], m, seen, self.floor)
        self.rows = near[m[near] >= self.floor]
        self.codes = self.sub.take(self.rows)
        self.mb = m[self.rows]


def _catch_up(sub: Codes, centres: list[int], rows: np.ndarray, m: np.ndarray, seen: np.ndarray,
              floor: int) -> None:
    """Apply to each row the centres it has not seen, in order, until it has seen them all or its
    m falls below `floor` (it cannot be the farthest row then; the rest can wait). Rows are
    ordered by what they have seen, so the rows that need a centre are a prefix of them, and
    every CATCH_UP centres the rows that fell below the floor are dropped."""
    t = len(centres)
    rows = rows[np.argsort(seen[rows], kind="stable")]
    codes, mr, sr = sub.take(rows), m[rows], seen[rows]
    j = int(sr[0]) if len(rows) else t
    while len(rows) and j < t:
        stop = min(t, j + CATCH_UP)
        need = np.searchsorted(sr, np.arange(j, stop + 1, dtype=sr.dtype), side="right").tolist()
        for i in range(j, stop):  # need[i - j] rows have not seen centre i
            update_min(codes, sub.row(centres[i]), mr, stop=need[i - j])
        j = stop
        sr[:need[-1]] = j
        low = mr < floor
        if low.any():
            m[rows[low]], seen[rows[low]] = mr[low], sr[low]
            stay = np.flatnonzero(~low)
            rows, mr, sr = rows[stay], mr[stay], sr[stay]
            codes = codes.take(stay)
    m[rows], seen[rows] = mr, sr


def runs(c: Codes, eps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split the rows (in natural order) into maximal runs of consecutive rows each within
    `eps` of the run's first row. Returns (first row of each run, run leader of every row,
    distance of every row to its leader)."""
    n = len(c)
    idx = np.arange(n, dtype=np.int64)
    start = np.ones(n, bool)
    start[1:] = to_previous(c) > eps
    for _ in range(_MAX_PASSES):
        lead = np.maximum.accumulate(np.where(start, idx, 0))
        dist = to_rows(c, lead)
        far = dist > eps
        if not far.any():
            return idx[start], lead, dist.astype(np.int16)
        start |= far
    start[:] = True  # pathological drift: give up collapsing
    return idx, idx, np.zeros(n, np.int16)


def _fill(n: int, keep: np.ndarray, new: np.ndarray, lead_of: np.ndarray, lead_dist: np.ndarray,
          count: int) -> np.ndarray:
    """More picks when the units ran out: images farthest from their run's first image."""
    free = free_mask(n, keep)
    free[new] = False
    cand = np.flatnonzero(free)
    order = np.lexsort((cand, -lead_dist[cand].astype(np.int64)))
    return cand[order[:count]]
