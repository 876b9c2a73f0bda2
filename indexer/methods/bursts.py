"""Many one-burst groups at once (`select --per sequence`): the picks `pick` would make in each
group, computed for all groups together with one vectorised pass per step instead of one call
per group.

A group here is a run of consecutive pool rows that share one known sequence id (one burst), as
`--per sequence` makes them; `pick_bursts` takes many such groups and returns, for each, exactly
the indices that `pick(group_pool, k, method, seed=..., keep=...)` returns (tests compare the two
on every case of tests/select_reference.py). What the methods do on one burst:

- diverse: a burst is one unit, so its first pick is the middle frame (or, when the burst has
  kept frames, none), and every further pick is the next frame most different from the burst's
  reference frame (the middle one, or its first kept frame), ties to the earlier frame
  (diverse.py, `_extra_frames`). No seed is used. One distance per frame, one sort for all groups.
- kcenter: runs of frames within KCENTER_EPS of the run's first frame (kcenter.py, `runs`), then
  greedy farthest-point over the runs' first frames from the most central one (or from the kept
  frames), then the frames farthest from their run's first frame. Each greedy step is one
  vectorised pass over the runs of the groups still picking, with a segmented argmax (ties to
  the lowest index, as np.argmax).

Other methods (buckets, window, random) draw from per-group generators or bucket tables and are
not batched: `select` runs them group by group.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .distance import MAX_DISTANCE, GRAY_MISMATCH, Codes, codes, to_previous, to_rows
from .kcenter import KCENTER_EPS, _MAX_PASSES

if TYPE_CHECKING:
    from .pool import Pool

BURST_METHODS = ("diverse", "kcenter")
MAX_BURST = 2048  # larger groups go through `pick` (kcenter's central row samples above this)


def pick_bursts(pool: Pool, starts: np.ndarray, k: np.ndarray, keep: np.ndarray, method: str) -> np.ndarray:
    """Sorted pool indices of the picks of every group.

    `starts`: first row of each group (ascending; group g is rows starts[g]..starts[g+1]-1, the
    last one ends at the end of the pool), each group one burst of at most MAX_BURST rows.
    `k`: the k handed to `pick` for each group (kept frames included). `keep`: bool mask of kept
    rows. The result holds the kept rows of every group too, as `pick` does.
    """
    if method not in BURST_METHODS:
        raise ValueError(f"method {method!r} is not batched: choose one of {', '.join(BURST_METHODS)}")
    n = pool.size
    starts = np.asarray(starts, dtype=np.int64)
    size = np.diff(np.r_[starts, n])
    if len(starts) == 0:
        return np.zeros(0, np.int64)
    if size.min() < 1 or size.max() > MAX_BURST:
        raise ValueError(f"every group must hold 1..{MAX_BURST} rows")
    keep = np.asarray(keep, dtype=bool)
    grp = np.repeat(np.arange(len(starts)), size)
    kc = np.bincount(grp[keep], minlength=len(starts))
    need = np.maximum(0, np.minimum(np.asarray(k, dtype=np.int64), size) - kc)
    c = codes(pool)
    if method == "diverse":
        new = _diverse(c, grp, starts, size, keep, kc, need)
    else:
        new = _kcenter(c, grp, starts, size, keep, kc, need)
    out = np.concatenate([np.flatnonzero(keep), new])
    out.sort()
    return out


def _dist(c: Codes, rows: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Combined distance (int16) of rows[i] to ref[i], elementwise."""
    d = np.zeros(len(rows), np.int16)
    for w in c.h:
        d += np.bitwise_count(np.bitwise_xor(w[rows], w[ref]))
    d += np.abs(c.q[rows].astype(np.int16) - c.q[ref].astype(np.int16))
    d += np.bitwise_xor(c.g[rows], c.g[ref])
    return d


def _first_in_group(grp: np.ndarray, rows: np.ndarray, groups: int) -> np.ndarray:
    """The first (lowest) of `rows` in each group, -1 where a group has none."""
    out = np.full(groups, -1, np.int64)
    out[grp[rows[::-1]]] = rows[::-1]
    return out


def _top_per_group(grp: np.ndarray, cand: np.ndarray, score: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Of the candidate rows, the `count[group]` highest `score`s of each group (ties: lower row)."""
    if len(cand) == 0:
        return cand
    g = grp[cand]
    by = np.lexsort((cand, -score.astype(np.int64), g))
    gs = g[by]
    head = np.r_[0, np.flatnonzero(gs[1:] != gs[:-1]) + 1]
    rank = np.arange(len(by)) - np.repeat(head, np.diff(np.r_[head, len(by)]))
    return cand[by[rank < count[gs]]]


# -- diverse ---------------------------------------------------------------------------------------

def _diverse(c: Codes, grp: np.ndarray, starts: np.ndarray, size: np.ndarray, keep: np.ndarray,
             kc: np.ndarray, need: np.ndarray) -> np.ndarray:
    """diverse.py on one-burst groups: the middle frame (unless the burst has kept frames), then
    the frames most different from the burst's reference frame."""
    G = len(starts)
    mid = starts + size // 2
    fresh = (kc == 0) & (need > 0)
    first = mid[fresh]
    ref = np.where(kc > 0, _first_in_group(grp, np.flatnonzero(keep), G), mid)
    extra = need - fresh
    picked = keep.copy()
    picked[first] = True
    cand = np.flatnonzero(~picked & (extra[grp] > 0))
    d = _dist(c, cand, ref[grp[cand]])
    return np.concatenate([first, _top_per_group(grp, cand, d, extra)])


# -- kcenter ---------------------------------------------------------------------------------------

def _runs(c: Codes, grp: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """kcenter.runs in every group at once: (run start flag, distance to the run's first row).
    Groups that would need more than _MAX_PASSES passes give up collapsing, as `runs` does."""
    n = len(grp)
    idx = np.arange(n, dtype=np.int64)
    start = np.ones(n, bool)
    start[1:] = to_previous(c) > KCENTER_EPS
    start[starts] = True
    dist = np.zeros(n, np.int16)
    for _ in range(_MAX_PASSES):
        lead = np.maximum.accumulate(np.where(start, idx, 0))
        dist = to_rows(c, lead).astype(np.int16)
        far = dist > KCENTER_EPS
        if not far.any():
            return start, dist
        start |= far
    stuck = np.zeros(len(starts), bool)
    stuck[grp[far]] = True
    start[stuck[grp]] = True
    dist[stuck[grp]] = 0
    return start, dist


def _seg_argmax(values: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """Position of the largest value in each segment (segments start at `heads`), ties to the
    first, as np.argmax."""
    n = len(values)
    pos = np.arange(n, dtype=np.int64)
    key = values.astype(np.int64) * (n + 1) + (n - pos)
    best = np.maximum.reduceat(key, heads)
    return n - best % (n + 1)


def _seg_argmin(values: np.ndarray, heads: np.ndarray) -> np.ndarray:
    n = len(values)
    key = values.astype(np.int64) * (n + 1) + np.arange(n, dtype=np.int64)
    return np.minimum.reduceat(key, heads) % (n + 1)


def _central(c: Codes, lead: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """distance.central_row over each group's run leaders (at most 2048: all of them): the leader
    nearest the bitwise-majority code (median brightness level, majority gray flag). Returns
    positions in `lead`."""
    L = len(lead)
    cnt = np.diff(np.r_[heads, L])
    seg = np.repeat(np.arange(len(heads)), cnt)
    words = [w[lead] for w in c.h]
    refs = [_majority(w, heads, cnt) for w in words]
    q = c.q[lead]
    qs = (np.sort((seg << 6) | q) & 63).astype(np.float64)  # each segment's levels (< 64) sorted in place
    lo = qs[heads + (cnt - 1) // 2]
    hi = qs[heads + cnt // 2]
    med = ((lo + hi) / 2).astype(np.uint8)
    gray = np.add.reduceat((c.g[lead] > 0).astype(np.int64), heads)
    g = np.where(2 * gray > cnt, GRAY_MISMATCH, 0).astype(np.uint8)
    d = np.zeros(L, np.int16)
    for w, r in zip(words, refs):
        d += np.bitwise_count(np.bitwise_xor(w, r[seg]))
    d += np.abs(q.astype(np.int16) - med[seg].astype(np.int16))
    d += np.bitwise_xor(c.g[lead], g[seg])
    np.minimum(d, MAX_DISTANCE, out=d)
    return _seg_argmin(d, heads)


def _majority(w: np.ndarray, heads: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Bitwise majority (a bit is set when more than half of the words have it) of each segment
    of 64-bit words. Eight bit planes: plane b holds bit b of every byte, so one sum per plane
    counts that bit in all eight bytes at once, and one add tells all eight counts from half:
    count + 127 - half reaches 128 (bit 7 of its byte) exactly when count > half, and never
    carries into the next byte (segments of up to 255 words; longer ones are counted bit by bit)."""
    lo = np.uint64(0x0101010101010101)
    bias = (np.uint64(127) - np.minimum(cnt // 2, 127).astype(np.uint64)) * lo
    out = np.zeros(len(heads), np.uint64)    # bit 8j + b: the majority of bit 8j + b
    for b in range(8):
        ones = np.add.reduceat((w >> np.uint64(b)) & lo, heads)
        ones += bias
        ones >>= np.uint64(7)
        ones &= lo
        ones <<= np.uint64(b)
        out |= ones
    for s in np.flatnonzero(cnt > 255).tolist():  # the byte counts above wrapped: count again
        seg = w[heads[s]:heads[s] + cnt[s]].view(np.uint8).reshape(-1, 8)
        ones = np.unpackbits(seg, axis=1, bitorder="little").reshape(-1, 8, 8).sum(axis=0)
        out[s] = np.packbits(2 * ones > cnt[s], axis=1, bitorder="little").reshape(8).view(np.uint64)[0]
    return out


def _kcenter(c: Codes, grp: np.ndarray, starts: np.ndarray, size: np.ndarray, keep: np.ndarray,
             kc: np.ndarray, need: np.ndarray) -> np.ndarray:
    """kcenter.py on one-burst groups (module doc)."""
    G = len(starts)
    start, lead_dist = _runs(c, grp, starts)
    active_rows = need[grp] > 0
    lead = np.flatnonzero(start & active_rows)
    picks = np.zeros(len(grp), bool)
    if len(lead):
        _greedy(c, grp, lead, keep, kc, need, picks)
    short = need - np.bincount(grp[picks], minlength=G)
    if (short > 0).any():
        cand = np.flatnonzero(~keep & ~picks & (short[grp] > 0))
        picks[_top_per_group(grp, cand, lead_dist[cand], short)] = True
    return np.flatnonzero(picks)


def _greedy(c: Codes, grp: np.ndarray, lead: np.ndarray, keep: np.ndarray, kc: np.ndarray,
            need: np.ndarray, picks: np.ndarray) -> None:
    """kcenter.farthest_point over each active group's run leaders; marks the picks in `picks`."""
    lgrp = grp[lead]
    L = len(lead)
    heads = np.r_[0, np.flatnonzero(lgrp[1:] != lgrp[:-1]) + 1]
    gid = lgrp[heads]                        # group of each segment
    m = np.full(L, MAX_DISTANCE, np.uint8)
    taken = keep[lead].copy()
    nxt = np.empty(len(heads), np.int64)
    has_keep = kc[gid] > 0
    if has_keep.any():
        krows = np.flatnonzero(keep)
        kg = grp[krows]
        kh = np.r_[0, np.flatnonzero(kg[1:] != kg[:-1]) + 1] if len(krows) else np.zeros(0, np.int64)
        kfirst = np.full(len(kc), -1, np.int64)
        kfirst[kg[kh]] = kh
        seg_of_lead = np.repeat(np.arange(len(heads)), np.diff(np.r_[heads, L]))
        for r in range(int(kc[gid].max())):
            use = has_keep[seg_of_lead] & (kc[lgrp] > r)
            at = np.flatnonzero(use)
            ref = krows[kfirst[lgrp[at]] + r]
            np.minimum.at(m, at, np.minimum(_dist(c, lead[at], ref), MAX_DISTANCE).astype(np.uint8))
        m[taken] = 0
        nxt[has_keep] = _seg_argmax(m, heads)[has_keep]
    seg_len = np.diff(np.r_[heads, L])
    nxt[~has_keep & (seg_len == 1)] = heads[~has_keep & (seg_len == 1)]   # one run: its leader
    multi = ~has_keep & (seg_len > 1)
    if multi.any():
        sel = np.flatnonzero(multi)
        sub = _segment_rows(heads[sel], seg_len[sel])
        sheads = np.r_[0, np.cumsum(seg_len[sel])[:-1]]
        nxt[sel] = sub[_central(c, lead[sub], sheads)]
    count = need[gid]
    made = np.zeros(len(heads), np.int64)
    live = np.ones(len(heads), bool)
    while True:
        live &= made < count
        live &= ~taken[nxt]
        act = np.flatnonzero(live)
        if len(act) == 0:
            return
        j = nxt[act]
        picks[lead[j]] = True
        taken[j] = True
        made[act] += 1
        keep_on = made[act] < count[act]  # segments that are done need no pass (all of them for --target 1)
        act, j = act[keep_on], j[keep_on]
        if len(act) == 0:
            return
        # one pass over the leaders of the active segments
        rows = _segment_rows(heads[act], seg_len[act])
        owner = np.repeat(j, seg_len[act])
        d = np.minimum(_dist(c, lead[rows], lead[owner]), MAX_DISTANCE).astype(np.uint8)
        m[rows] = np.minimum(m[rows], d)
        m[j] = 0
        ah = np.r_[0, np.cumsum(seg_len[act])[:-1]]
        best = rows[_seg_argmax(m[rows], ah)]
        nxt[act] = best
        dup = m[best] == 0
        if dup.any():  # every leader left duplicates a pick: the rest in natural order
            ds = act[dup]
            live[ds] = False
            ds = ds[made[ds] < count[ds]]
            if len(ds):
                seg = np.full(len(heads), -1, np.int64)
                seg[ds] = ds
                where = _segment_rows(heads[ds], seg_len[ds])
                where = where[~taken[where]]
                left = count - made
                owner = np.repeat(np.arange(len(heads)), seg_len)
                rest = _top_per_group(owner, where, np.zeros(len(where), np.int64), left)
                picks[lead[rest]] = True
                taken[rest] = True


def _segment_rows(heads: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions heads[i] .. heads[i] + lengths[i] - 1 of every segment, concatenated."""
    total = int(lengths.sum())
    seg_start = np.r_[0, np.cumsum(lengths)[:-1]]
    return np.arange(total, dtype=np.int64) - np.repeat(seg_start - heads, lengths)
