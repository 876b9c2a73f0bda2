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

Where the time goes now (issue 12, point 5; benchmarks/bench_select.py): on data whose frames
do not collapse into runs (its synthetic index keeps 846k units of 1M rows) the loop is 1000
passes over 846k units, ~2-3.3 ms each: the pass is already the fastest numpy form tried (a
fourth thermometer-coded word for brightness and gray, or a carry-save sum of the three hashes
to save a popcount, were 20-55% slower per pass), so the passes of pools of 64k rows or more
are split over the machine's cores (distance.THREADS, same result bit for bit). Not done:
pruning the pass with the triangle inequality (a row can only get closer to the new centre c
when d(c, its centre) < 2 x its distance). Measured on 200k rows, the share of rows that still
need each pass is 0.95 / 0.71 / 0.29 over steps 1-100 / 100-500 / 500-1000 on bench_select's
data (unrelated scenes, all ~90-130 apart) and 0.51 / 0.26 / 0.16 on bench_select_methods'
(cameras with a day and a night look); a per-row test and the gathers it needs cost about half
a pass, so the saving would be a fraction of the late steps only. `select --per sequence`
does not call this function per burst: bursts.py runs the same algorithm on all one-burst
groups at once.
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
            rest = np.flatnonzero(~taken)[: count - len(picks)]
            picks.extend(int(r) for r in rest)
            break
    return rows[np.asarray(picks, dtype=np.int64)]


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
