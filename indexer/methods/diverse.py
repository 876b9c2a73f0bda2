"""diverse (the default): a subset that is representative and diverse at once.

Algorithm ("farthest-point cells, a weighted medoid per cell, no repeats"):

1. Bursts first. Each burst (sequence id; -1 = the image alone) is one candidate *unit*,
   represented by its middle frame and weighted by its number of frames. While some burst has
   no pick, no burst gets a second one: if k is at most the number of bursts without a pick,
   every pick comes from a different burst; if it is larger, every burst gets one and the
   rest go level by level (no burst gets its (j+1)-th frame while another with more frames
   lacks its j-th), each burst's frames most different from its representative first.
2. Cells. Greedy farthest-point over the units (the loop of kcenter.py: one vectorised
   distance pass per centre over a uint8 vector of minima) places as many centres as picks
   are needed, starting from the kept images when a selection is extended (they are centres
   that already have their pick) or else from the most central unit; every unit belongs to
   the cell of its nearest centre. Farthest-point cells reach every region of the pool,
   however small: no scene is left out, which keeps the largest distance low.
3. One pick per cell: its weighted medoid, the unit that minimises the burst-size-weighted
   sum of distances to the cell's units (greedy facility location with one facility, on a
   seeded sample of 128 units for large cells). A centre is an outlier by construction (it
   was the farthest point); the medoid is what the cell typically looks like, and big bursts
   weigh more, which keeps the mean distance low.
4. No repeats. Neighbouring cells of a dense region have close centres and close medoids, so
   a medoid that is a near-duplicate of a pick already made or kept (combined distance <= 18
   or dHash within 6 bits, what `redundancy` counts) is passed over for the cell's next best
   unit (or its centre). Only picks within reach of the cell's centre are compared (triangle
   inequality), so this costs little.
If all remaining units are duplicates of picks (distance 0), the rest are filled in natural
order.

Measured (combined distance of distance.py; random = mean of 20 seeds): over 28 generated
pools (tests' burst pools, scene-structured pools, 20k-row synthetic archives) and k from 10
to 200, diverse's mean distance to the nearest pick is on average 0.85 of a random subset's
and its largest distance 0.92, never worse than random on either; redundancy 0 in all of
them (random: 2-46%). On the 1M-row synthetic archive of benchmarks/bench_select_methods.py (100
cameras, 260k bursts), k = 1000: mean 37.1 and max 73 against random's 43.5 and 87 (0.85 /
0.84), no repeats (random: 14.5%), 1000 distinct bursts, 1.2 s, peak memory 1.3x the feature
arrays. Alternatives tried on the same pools: several picks per cell in
proportion to cell size (2 or 4 per cell: mean 0.83 / 0.81, but max 0.94 / 0.96 and worse
than random on max in some pools), half the budget farthest-point and half facility location
by uncovered mass (0.85 / 0.94), one k-medoids refinement pass (one more pass per pick, no
gain).

Cost: `need` passes over the units (like kcenter, over bursts instead of runs), then per cell
the weighted distance sums of its (up to 128) candidates and a few distances to nearby picks.
The sums are taken term by term for all cells at once (_cell_costs: bit counts weighted by
burst size, a brightness histogram, the gray weight), never as 128 x 128 distance matrices;
the cell's best candidate is compared with nearby picks alone first, while that keeps finding
it free (on a million rows most cells then compare one candidate instead of 128). Same picks
as the matrices gave (tests/select_reference.json). On bench_select's 1M rows (222k bursts,
k = 1000): the passes 0.65-0.95 s on 2 threads, the medoids 0.2-0.4 s (0.5-0.75 s with a
matrix per cell). `select --per sequence` does not call this function per burst: bursts.py picks in
all one-burst groups at once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .common import check_seed, finish, prepare, rng_for, sequence_groups
from .distance import (BRIGHTNESS_LEVELS, GRAY_MISMATCH, MAX_DISTANCE, Codes, codes, combined, combined_between,
                       distances_to, hamming, majority_code, update_min)

if TYPE_CHECKING:
    from .pool import Pool

MEDOID_SAMPLE = 128   # units of a cell compared all-pairs to find its weighted medoid
NEAR_DUP = 18         # combined distance (about 6 bits per hash) at which two picks repeat each other
NEAR_DHASH = 6        # ... or dHash bits (the redundancy figure of metrics.py)
CENTRAL_SAMPLE = 1024  # units used for the majority code that finds the most central unit
_COST_CELLS = 8       # cells whose candidates' costs are summed in one product (measured best of 2-32)


def diverse(pool: Pool, k: int, *, seed: int = 0, keep: np.ndarray | None = None) -> np.ndarray:
    """Indices (sorted int64) of min(k, n) images, representative and diverse (module doc).

    `keep`: indices already selected: they count toward k, bursts they belong to count as
    picked, and the new picks fill the regions farthest from them. `seed` drives the samples
    that large cells use to find their central unit and medoid; same seed, same result.
    """
    k, keep, need = prepare(pool, k, keep)
    rng = rng_for(check_seed(seed))
    if need == 0:
        return keep
    c = codes(pool)
    gid, order, starts = sequence_groups(pool.sequence)
    sizes = np.diff(np.r_[starts, pool.size])
    rep = order[starts + sizes // 2]          # the middle frame of each burst
    represented = np.zeros(len(starts), bool)
    represented[gid[keep]] = True
    units = np.flatnonzero(~represented)
    if need >= len(units):
        first = rep[units]
        more = _extra_frames(c, gid, rep, keep, first, need - len(units))
        return finish(keep, np.concatenate([first, more]))
    rows = rep[units]
    sub = c.take(rows)
    weight = sizes[units].astype(np.float64)
    cells, centres = _cells(sub, c, keep, need, rng)
    picked = _medoids(c, rows, sub, weight, cells, centres, keep, rng)
    if len(picked) < need:  # only duplicates of picks left: fill in natural order
        free = np.ones(len(rows), bool)
        free[picked] = False
        picked = np.concatenate([picked, np.flatnonzero(free)[: need - len(picked)]])
    return finish(keep, rows[picked])


def _cells(sub: Codes, c: Codes, keep: np.ndarray, count: int, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray]:
    """Cell of each unit: its nearest centre among the kept images (cell -1) and up to `count`
    new farthest-point centres (cells 0..). Returns (cell per unit, position of each new centre)."""
    n = len(sub)
    assign = np.full(n, -1, np.int32)
    dist = np.full(n, MAX_DISTANCE, np.uint8)
    for j in keep:
        update_min(sub, c.row(int(j)), dist, assign, -1)
    j = int(np.argmax(dist)) if len(keep) else _central(sub, np.arange(n), rng)
    centres: list[int] = []
    while len(centres) < count:
        if centres and dist[j] == 0:
            break
        update_min(sub, sub.row(j), dist, assign, len(centres))
        dist[j] = 0
        assign[j] = len(centres)
        centres.append(j)
        j = int(np.argmax(dist))
    return assign, np.asarray(centres, dtype=np.int64)


def _medoids(c: Codes, rows: np.ndarray, sub: Codes, weight: np.ndarray, cells: np.ndarray,
             centres: np.ndarray, keep: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One pick per new cell (positions in sub): its weighted medoid, skipping candidates that
    are near-duplicates (within NEAR_DUP) of a pick already made or kept. Centres of
    neighbouring cells in a dense region are close, and so are their medoids; without this
    check the picks of such cells would repeat one another.

    What does not depend on earlier picks is computed for all cells at once: the candidates
    (the seeded samples drawn cell by cell, as one call per cell drew them), their costs
    (_cell_costs), their ranking and each cell's reach; the loop over cells only checks the
    ranked candidates against the picks so far, whose codes it keeps together."""
    count = len(centres)
    mine = np.flatnonzero(cells >= 0)
    order = mine[np.argsort(cells[mine], kind="stable")]
    bounds = np.r_[0, np.cumsum(np.bincount(cells[mine], minlength=count))]
    cand = np.concatenate([_candidates(order[bounds[i]:bounds[i + 1]], rng) for i in range(count)])
    sizes = np.minimum(np.diff(bounds), MEDOID_SAMPLE)   # candidates per cell (len of each _candidates)
    cell_of = np.repeat(np.arange(count), sizes)
    heads = np.r_[0, np.cumsum(sizes)]   # where each cell's candidates start in cand
    cost = _cell_costs(sub, weight, cand, cell_of, heads)
    ranked = cand[np.lexsort((cand, cost, cell_of))]   # per cell: cheapest first, ties by position
    # reach of each cell's candidates from its centre (_within_reach), in either distance
    to_centre = combined_between(sub, cand, sub, centres[cell_of])
    far = np.maximum.reduceat(to_centre, heads[:-1]).astype(np.int64) + NEAR_DUP
    to_centre_d = hamming(sub.h[0][cand], sub.h[0][centres[cell_of]])
    far_d = np.maximum.reduceat(to_centre_d, heads[:-1]).astype(np.int64) + NEAR_DHASH
    made = c.take(np.r_[keep, np.zeros(count, np.int64)])  # codes of the picks so far, kept ones first
    t = len(keep)
    near = np.empty(len(made), np.uint8)  # distance of the cell's centre to each pick so far
    out = np.empty(count, np.int64)
    alone = True
    for cell in range(count):
        mine_ranked = ranked[heads[cell]:heads[cell + 1]]
        choice = int(mine_ranked[0])
        if t:
            centre = int(centres[cell])
            near[:t] = MAX_DISTANCE
            update_min(made, sub.row(centre), near, stop=t)
            close = np.flatnonzero((near[:t] <= far[cell]) | (hamming(made.h[0][:t], sub.h[0][centre]) <= far_d[cell]))
            if len(close):
                free = _first_free(sub, mine_ranked, made, close, alone)
                alone = free == 0   # the best was free: try it alone in the next cell too
                if free >= 0:
                    choice = int(mine_ranked[free])
                elif not _repeats(sub, np.array([centre]), made, close).any():
                    choice = centre
        out[cell] = choice
        made.put(t, sub, choice)
        t += 1
    return out


def _candidates(mem: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The units of a cell whose cost is computed: all, or a seeded sample of MEDOID_SAMPLE."""
    return mem if len(mem) <= MEDOID_SAMPLE else np.sort(rng.choice(mem, MEDOID_SAMPLE, replace=False))


def _cell_costs(sub: Codes, weight: np.ndarray, cand: np.ndarray, cell_of: np.ndarray, heads: np.ndarray
                ) -> np.ndarray:
    """For every candidate, the weighted sum of its distances to the candidates of its cell:
    sum over j of d(i, j) * weight[j], without the matrix of distances.

    Each term of the distance is summed on its own. A hash bit contributes the weight of the
    cell's candidates whose bit differs: W1 (their weight with the bit set) or W - W1, so a
    candidate's Hamming part is sum(W1) + its bits @ (W - 2 W1). The brightness part is a
    weighted histogram of the cell's levels times |level - level'|, the gray part the weight
    of the other kind. Every product and sum is an integer far below 2**53, exact in float64:
    the costs are those of the distance matrix to the last bit."""
    count = len(heads) - 1
    w = weight[cand]
    total = np.bincount(cell_of, weights=w, minlength=count)
    cost = np.zeros(len(cand))
    words = np.stack([h[cand] for h in sub.h], axis=1).view(np.uint8)   # (candidates, 24 bytes)
    for s in range(0, count, _COST_CELLS):  # cells in slices: their bits as float64 stay small
        e = min(s + _COST_CELLS, count)
        lo, hi = heads[s], heads[e]
        b = np.unpackbits(words[lo:hi], axis=1).astype(np.float64)   # (rows, 192) of 0 and 1
        part = cell_of[lo:hi] - s
        member = np.zeros((hi - lo, e - s))
        member[np.arange(hi - lo), part] = w[lo:hi]
        w1 = member.T @ b                       # per cell and bit: the weight with the bit set
        v = total[s:e, None] - 2.0 * w1
        cost[lo:hi] = w1.sum(axis=1)[part] + (b @ v.T)[np.arange(hi - lo), part]
    levels = np.arange(BRIGHTNESS_LEVELS)
    hist = np.bincount(cell_of * BRIGHTNESS_LEVELS + sub.q[cand], weights=w,
                       minlength=count * BRIGHTNESS_LEVELS).reshape(count, BRIGHTNESS_LEVELS)
    by_level = hist @ np.abs(levels[:, None] - levels[None, :]).astype(np.float64)
    cost += by_level[cell_of, sub.q[cand]]
    gray = sub.g[cand] > 0
    gray_w = np.bincount(cell_of, weights=w * gray, minlength=count)
    cost += GRAY_MISMATCH * np.where(gray, total[cell_of] - gray_w[cell_of], gray_w[cell_of])
    return cost


def _first_free(sub: Codes, ranked: np.ndarray, made: Codes, close: np.ndarray, alone: bool) -> int:
    """Position of the first of `ranked` (rows of sub) that repeats none of `close` (rows of
    made; -1: all do). With `alone`, the best candidate is checked alone first: where picks
    are sparse it is usually free, and the cell compares one row instead of all of them (where
    they are dense, the caller stops asking, and all rows are compared in one go)."""
    if alone and not _repeats(sub, ranked[:1], made, close).any():
        return 0
    if not alone:
        clash = _repeats(sub, ranked, made, close).any(axis=1)
        return int(np.argmin(clash)) if not clash.all() else -1
    clash = _repeats(sub, ranked[1:], made, close).any(axis=1)
    return 1 + int(np.argmin(clash)) if not clash.all() else -1


def _repeats(a: Codes, ia: np.ndarray, b: Codes, ib: np.ndarray) -> np.ndarray:
    """(len(ia), len(ib)) bool: pairs that repeat each other (combined distance within
    NEAR_DUP, or dHash within NEAR_DHASH bits: what `redundancy` counts)."""
    i, j = ia[:, None], ib[None, :]
    return (combined_between(a, i, b, j) <= NEAR_DUP) | (hamming(a.h[0][i], b.h[0][j]) <= NEAR_DHASH)


def _central(sub: Codes, rows: np.ndarray, rng: np.random.Generator) -> int:
    """Position in `rows` of the row nearest the majority code of (a sample of) rows."""
    if len(rows) <= 2:
        return 0
    sample = rows if len(rows) <= CENTRAL_SAMPLE else np.sort(rng.choice(rows, CENTRAL_SAMPLE, replace=False))
    ref = majority_code(sub, sample)
    part = sub.take(rows) if len(rows) != len(sub) else sub
    return int(np.argmin(distances_to(part, ref)))


def _extra_frames(c: Codes, gid: np.ndarray, rep: np.ndarray, keep: np.ndarray, first: np.ndarray,
                  count: int) -> np.ndarray:
    """Every burst has a pick: `count` more frames, level by level, most different from
    their burst's reference frame (its representative, or its first kept frame) first."""
    n = len(gid)
    picked = np.zeros(n, bool)
    picked[keep] = True
    picked[first] = True
    have = np.bincount(gid[picked], minlength=len(rep))
    ref = rep.copy()
    if len(keep):
        kept_first = np.full(len(rep), -1, np.int64)
        kept_first[gid[keep][::-1]] = keep[::-1]   # the first kept frame of each burst wins
        ref = np.where(kept_first >= 0, kept_first, ref)
    cand = np.flatnonzero(~picked)
    g = gid[cand]
    d = combined(c, cand, ref[g]).astype(np.int64)
    by = np.lexsort((cand, -d, g))
    gs = g[by]
    head = np.r_[0, np.flatnonzero(gs[1:] != gs[:-1]) + 1] if len(gs) else np.zeros(0, np.int64)
    rank = np.arange(len(by)) - np.repeat(head, np.diff(np.r_[head, len(by)]))
    level = np.empty(len(cand), np.int64)
    level[by] = have[gs] + rank
    return cand[np.lexsort((cand, -d, level))[:count]]
