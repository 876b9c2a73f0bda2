"""random: the baseline, a uniform sample without replacement from numpy's Generator(seed)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .common import check_seed, finish, free_mask, prepare, rng_for

if TYPE_CHECKING:
    from .pool import Pool


def random_subset(pool: Pool, k: int, *, seed: int = 0, keep: np.ndarray | None = None) -> np.ndarray:
    """Indices (sorted int64) of min(k, n) images drawn uniformly; the kept ones plus new draws."""
    k, keep, need = prepare(pool, k, keep)
    seed = check_seed(seed)
    if need == 0:
        return keep
    rng = rng_for(seed)
    if len(keep) == 0:
        return finish(keep, rng.choice(pool.size, need, replace=False))
    cand = np.flatnonzero(free_mask(pool.size, keep))
    return finish(keep, cand[rng.choice(len(cand), need, replace=False)])
