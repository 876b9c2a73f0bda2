"""window: the smartdownsample 0.2 rolling window over perceptual hashes.

What smartdownsample 0.2 does (source read: smartdownsample/core.py of the 0.2.1 wheel,
`select_distinct`, `_fast_selection_algorithm` and `_rolling_window_selection`):
paths sorted by folder then natural order; `imagehash.phash(img, hash_size=8)` per image; a
random first pick (`np.random.choice(n)` after `np.random.seed(random_seed)`, default 42);
then, until target_count images are selected, the not-yet-selected image whose smallest
distance to the last `window_size` (default 100) selected images is largest (distance: share
of differing pHash bits, which orders like the Hamming distance; ties to the lowest index,
as `np.argmax` over the remaining indices in ascending order gives). Returns all images
when target_count >= n.

What we match: pHash Hamming distance, window of the last 100 picks in pick order,
farthest-from-window greedy, ties to the lowest index, exactly min(k, n) images. What
differs: the first pick comes from numpy's Generator seeded with `seed` (default 0), not the
legacy global RandomState seeded with 42, so the exact subset is not smartdownsample's;
the result is returned in ascending index order rather than pick order. With `keep`, the
kept images (in ascending order) play the part of the earlier picks.

Cost: smartdownsample recomputes candidate x window distances at every step (O(n * k *
window)). Here each image keeps its minimum over the window and the pick that attains it
(the newest on ties); a new pick costs one popcount pass over n, and when the oldest pick
leaves the window only the images whose minimum came from it are recomputed against the
window. Exact, O(n) memory.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .common import check_seed, finish, prepare, rng_for
from .distance import hamming, label_rows

if TYPE_CHECKING:
    from .pool import Pool

WINDOW_SIZE = 100
_CHUNK = 1 << 17


def window(pool: Pool, k: int, *, seed: int = 0, keep: np.ndarray | None = None,
           window_size: int = WINDOW_SIZE) -> np.ndarray:
    """Indices (sorted int64) of min(k, n) images by the rolling-window rule."""
    k, keep, need = prepare(pool, k, keep)
    seed = check_seed(seed)
    if isinstance(window_size, bool) or not isinstance(window_size, (int, np.integer)) or window_size < 1:
        raise ValueError(f"window_size must be a positive integer, got {window_size!r}")
    if need == 0:
        return keep
    n = pool.size
    ph = pool.phash
    m = np.full(n, 255, np.uint8)      # min pHash distance to the window (255: no window yet)
    age = np.full(n, -1, np.int32)     # pick number attaining that minimum
    picked = np.zeros(n, bool)
    order: list[int] = [int(j) for j in keep]
    for t, j in enumerate(order):
        _add(ph, m, age, picked, j, t, order, window_size)
    new: list[int] = []
    if not order:
        first = int(rng_for(seed).integers(n))
        order.append(first)
        new.append(first)
        _add(ph, m, age, picked, first, 0, order, window_size)
        need -= 1
    while need > 0:
        j = int(np.argmax(m))
        if picked[j]:  # every image left duplicates a window pick: take the first one
            j = int(np.argmin(picked))
        order.append(j)
        new.append(j)
        _add(ph, m, age, picked, j, len(order) - 1, order, window_size)
        need -= 1
    return finish(keep, np.asarray(new, dtype=np.int64))


def _add(ph: np.ndarray, m: np.ndarray, age: np.ndarray, picked: np.ndarray, j: int, t: int,
         order: list[int], w: int) -> None:
    """Pick number t (image j) enters the window; pick t - w leaves it."""
    n = len(ph)
    ref = ph[j]
    ch = min(_CHUNK, n)
    t64 = np.empty(ch, np.uint64)
    d = np.empty(ch, np.uint8)
    closer = np.empty(ch, bool)
    for s in range(0, n, ch):
        e = min(s + ch, n)
        L = e - s
        np.bitwise_xor(ph[s:e], ref, out=t64[:L])
        np.bitwise_count(t64[:L], out=d[:L])
        mm = m[s:e]
        np.less_equal(d[:L], mm, out=closer[:L])   # ties: the newest pick owns the minimum
        label_rows(age[s:e], closer[:L], t)
        np.minimum(mm, d[:L], out=mm)
    picked[j] = True
    m[j] = 0
    old = t - w
    if old < 0:
        return
    stale = np.flatnonzero(age == old)
    stale = stale[~picked[stale]]
    if stale.size == 0:
        return
    newest_first = np.asarray(order[t:old:-1], dtype=np.int64)
    # distance and position in one key, so one min() finds both (the newest pick on ties)
    key = hamming(ph[stale][:, None], ph[newest_first][None, :]).astype(np.int32) * w
    key += np.arange(len(newest_first), dtype=np.int32)
    best = key.min(axis=1)
    m[stale] = best // w
    age[stale] = t - best % w
