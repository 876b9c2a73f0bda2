"""Pure selection algorithms over stored features: numpy only, no I/O, no database.

A `Pool` holds the candidates of one group (in natural path order); `pick` chooses exactly
min(k, n) distinct images of it with one of METHODS and returns their sorted indices:

    diverse  (default) representative and diverse, one frame per burst first (diverse.py)
    kcenter  greedy farthest-point: minimises the largest distance (kcenter.py)
    buckets  smartdownsample 1.6+ buckets, always k distinct (buckets.py)
    window   smartdownsample 0.2 rolling window over pHash (window.py)
    random   uniform baseline (random_.py)

`pick_bursts` (bursts.py) gives the same picks as `pick` for many one-burst groups at once
(`select --per sequence`).

Distances (distance.py) and figures of merit (metrics.py) work from the same arrays.
"""
from __future__ import annotations

import numpy as np

from . import buckets as _buckets
from . import diverse as _diverse
from . import kcenter as _kcenter
from . import random_ as _random
from . import window as _window
from .buckets import bucket_keys, bucket_meaning
from .bursts import BURST_METHODS, MAX_BURST, pick_bursts
from .common import check_k, check_pool, check_seed
from .distance import distance, hamming, pairwise
from .metrics import buckets_covered, coverage, hamming_coverage, redundancy
from .pool import Pool

METHODS = ("diverse", "kcenter", "buckets", "window", "random")


def pick(pool: Pool, k: int, method: str = "diverse", *, seed: int = 0,
         keep: np.ndarray | None = None) -> np.ndarray:
    """Indices (int64, sorted ascending, distinct) of exactly min(k, n) images of the pool.

    `keep`: indices already selected (a saved selection being extended); they are part of the
    result and count toward k, and the new picks are those most different from them (diverse,
    kcenter, window; buckets and random just avoid duplicates). If len(keep) >= k, return keep.
    The same arguments always give the same result; `seed` matters for diverse (sampling of
    cell centres), window (first pick) and random.
    """
    check_pool(pool)
    check_k(k)
    check_seed(seed)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if method == "diverse":
        return _diverse.diverse(pool, k, seed=seed, keep=keep)
    if method == "kcenter":
        return _kcenter.kcenter(pool, k, keep=keep)
    if method == "buckets":
        return _buckets.buckets(pool, k, keep=keep)
    if method == "window":
        return _window.window(pool, k, seed=seed, keep=keep)
    return _random.random_subset(pool, k, seed=seed, keep=keep)


__all__ = [
    "BURST_METHODS", "MAX_BURST", "METHODS", "Pool", "bucket_keys", "bucket_meaning", "buckets_covered", "coverage", "distance", "hamming",
    "hamming_coverage", "pairwise", "pick", "pick_bursts", "redundancy",
]
