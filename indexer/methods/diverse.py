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

Cost: `need` passes over the units (like kcenter, over bursts instead of runs), a 128 x 128
distance matrix per cell and a few distances to nearby picks (the cell's best candidate is
compared with them alone first, while that keeps finding it free: on a million rows most cells
then compare one candidate instead of 128; same picks). `select --per sequence` does not call
this function per burst: bursts.py picks in all one-burst groups at once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .common import check_seed, finish, prepare, rng_for, sequence_groups
from .distance import MAX_DISTANCE, Codes, codes, combined, distances_to, hamming, majority_code, update_min

if TYPE_CHECKING:
    from .pool import Pool

MEDOID_SAMPLE = 128   # units of a cell compared all-pairs to find its weighted medoid
NEAR_DUP = 18         # combined distance (about 6 bits per hash) at which two picks repeat each other
NEAR_DHASH = 6        # ... or dHash bits (the redundancy figure of metrics.py)
CENTRAL_SAMPLE = 1024  # units used for the majority code that finds the most central unit


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
    check the picks of such cells would repeat one another."""
    count = len(centres)
    mine = np.flatnonzero(cells >= 0)
    order = mine[np.argsort(cells[mine], kind="stable")]
    bounds = np.r_[0, np.cumsum(np.bincount(cells[mine], minlength=count))]
    out = np.empty(count, np.int64)
    made = np.empty(len(keep) + count, np.int64)      # pool rows of the picks so far
    made[:len(keep)] = keep
    t = len(keep)
    alone = True
    for cell in range(count):
        mem = order[bounds[cell]:bounds[cell + 1]]
        cand, cost = _medoid_costs(sub, weight, mem, rng)
        rank = np.lexsort((cand, cost))
        choice = int(cand[rank[0]])
        if t:
            centre = rows[centres[cell]]
            close = _within_reach(c, centre, rows[cand], made[:t])
            if len(close):
                free = _first_free(c, rows[cand[rank]], close, alone)
                alone = free == 0   # the best was free: try it alone in the next cell too
                if free >= 0:
                    choice = int(cand[rank[free]])
                elif not _repeats(c, np.array([centre]), close).any():
                    choice = int(centres[cell])
        out[cell] = choice
        made[t] = rows[choice]
        t += 1
    return out


def _within_reach(c: Codes, centre: int, cand: np.ndarray, made: np.ndarray) -> np.ndarray:
    """The picks in `made` that could repeat one of `cand`: by the triangle inequality only
    those within (farthest candidate from the centre + threshold) of the centre, in either
    distance."""
    far = combined(c, centre, cand).max() + NEAR_DUP
    far_d = hamming(c.h[0][centre], c.h[0][cand]).max() + NEAR_DHASH
    mask = (combined(c, centre, made) <= far) | (hamming(c.h[0][centre], c.h[0][made]) <= far_d)
    return made[mask]


def _first_free(c: Codes, ranked: np.ndarray, close: np.ndarray, alone: bool) -> int:
    """Position of the first of `ranked` that repeats none of `close` (-1: all do). With
    `alone`, the best candidate is checked alone first: where picks are sparse it is usually
    free, and the cell compares one row instead of all of them (where they are dense, the
    caller stops asking, and all rows are compared in one go)."""
    if alone and not _repeats(c, ranked[:1], close).any():
        return 0
    if not alone:
        clash = _repeats(c, ranked, close).any(axis=1)
        return int(np.argmin(clash)) if not clash.all() else -1
    clash = _repeats(c, ranked[1:], close).any(axis=1)
    return 1 + int(np.argmin(clash)) if not clash.all() else -1


def _repeats(c: Codes, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) bool: pairs that repeat each other (combined distance within NEAR_DUP,
    or dHash within NEAR_DHASH bits: what `redundancy` counts)."""
    ai, bi = a[:, None], b[None, :]
    return (combined(c, ai, bi) <= NEAR_DUP) | (hamming(c.h[0][ai], c.h[0][bi]) <= NEAR_DHASH)


def _medoid_costs(sub: Codes, weight: np.ndarray, mem: np.ndarray, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Candidate units of a cell (a seeded sample of MEDOID_SAMPLE when larger) and their
    burst-size-weighted sum of distances to the sampled units."""
    pos = mem if len(mem) <= MEDOID_SAMPLE else np.sort(rng.choice(mem, MEDOID_SAMPLE, replace=False))
    d = combined(sub, pos[:, None], pos[None, :]).astype(np.float64)
    return pos, d @ weight[pos]


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
