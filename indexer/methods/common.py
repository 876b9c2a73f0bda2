"""Argument checks and small helpers shared by the selection methods."""
from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .pool import Pool


def distinct(a: np.ndarray) -> np.ndarray:
    """np.unique(a) of a 1-D array (sorted distinct values) without its import of numpy.ma, which
    costs ~20 ms of a select's start-up."""
    s = np.sort(np.asarray(a).ravel())
    if len(s) < 2:
        return s
    keep = np.empty(len(s), bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def check_pool(pool: object) -> None:
    from .pool import Pool

    if not isinstance(pool, Pool):
        raise ValueError(f"pool must be an indexer.methods.Pool, got {type(pool).__name__}")


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise ValueError(f"k must be a whole number, got {k!r}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return int(k)


def check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return int(seed)


def rng_for(seed: int) -> np.random.Generator:
    """numpy's Generator for a seed (any integer: negative ones wrap to 64 bits), made when first
    drawn from: importing numpy.random costs ~15 ms, and most picks from small pools draw nothing."""
    return _LazyGenerator(seed & 0xFFFF_FFFF_FFFF_FFFF)  # type: ignore[return-value]


class _LazyGenerator:
    """Stands in for np.random.default_rng(seed) until an attribute of it is used."""

    __slots__ = ("_seed", "_rng")

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._rng: np.random.Generator | None = None

    def __getattr__(self, name: str) -> object:
        if self._rng is None:
            self._rng = np.random.default_rng(self._seed)
        return getattr(self._rng, name)


def check_indices(indices: object, n: int, name: str) -> np.ndarray:
    """Sorted distinct int64 indices into a pool of n images (duplicates are merged)."""
    if indices is None:
        return np.zeros(0, np.int64)
    arr = np.asarray(indices)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    arr = distinct(arr.astype(np.int64))
    if arr[0] < 0 or arr[-1] >= n:
        raise ValueError(f"{name} has indices outside 0..{n - 1}")
    return arr


def prepare(pool: Pool, k: object, keep: object) -> tuple[int, np.ndarray, int]:
    """Check the common arguments: (k, keep as sorted distinct indices, number of new picks)."""
    check_pool(pool)
    k = check_k(k)
    keep_arr = check_indices(keep, pool.size, "keep")
    return k, keep_arr, max(0, min(k, pool.size) - len(keep_arr))


def finish(keep: np.ndarray, new: np.ndarray) -> np.ndarray:
    """keep and the new picks as one sorted int64 array (they are disjoint by construction)."""
    out = np.concatenate([keep, np.asarray(new, dtype=np.int64)])
    out.sort()
    return out


def free_mask(n: int, keep: np.ndarray) -> np.ndarray:
    free = np.ones(n, bool)
    free[keep] = False
    return free


def sequence_groups(sequence: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense burst ids for a pool: (group id per image, members ordered by group then index,
    start of each group in that order). Images with sequence -1 are each their own group."""
    n = len(sequence)
    seq = np.asarray(sequence, dtype=np.int64).copy()
    unknown = seq < 0
    if unknown.any():
        base = int(seq.max()) + 1 if (~unknown).any() else 0
        seq[unknown] = base + np.arange(int(unknown.sum()), dtype=np.int64)
    if n and not unknown.any() and bool((seq[1:] >= seq[:-1]).all()):  # in order (the select cache's): no sort
        gid = np.r_[0, np.cumsum(seq[1:] != seq[:-1])]
        order = np.arange(n)
    else:
        _, gid = np.unique(seq, return_inverse=True)
        gid = gid.astype(np.int64).reshape(n)
        order = np.argsort(gid, kind="stable")
    starts = np.flatnonzero(np.r_[True, gid[order][1:] != gid[order][:-1]]) if n else np.zeros(0, np.int64)
    return gid.astype(np.int64), order.astype(np.int64), starts.astype(np.int64)
