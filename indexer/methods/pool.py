"""The candidates of one group as plain arrays: what every selection method reads."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

_HASHES = ("dhash", "ahash", "phash")


@dataclass(frozen=True, eq=False)
class Pool:
    """The candidates of one group, in natural path order (index 0..n-1).

    Arrays are coerced on construction: hashes to uint64 (signed int64 values as stored in
    SQLite are reinterpreted bit for bit, so ImageHash bit order is kept), brightness and
    color_variance to float32, is_gray to bool, sequence to int64 (-1 = unknown: each such
    image is its own burst). All arrays must be one-dimensional and of the same length, and
    brightness / color_variance finite; anything else raises ValueError.
    """

    dhash: np.ndarray       # uint64, shape (n,)
    ahash: np.ndarray       # uint64
    phash: np.ndarray       # uint64
    brightness: np.ndarray  # float32, 0-255
    color_variance: np.ndarray  # float32
    is_gray: np.ndarray     # bool
    sequence: np.ndarray    # int64 burst/sequence id (-1 = unknown, each such image its own burst)
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = None
        for name in (*_HASHES, "brightness", "color_variance", "is_gray", "sequence"):
            value = np.asarray(getattr(self, name))
            if value.ndim != 1:
                raise ValueError(f"Pool.{name} must be one-dimensional, got shape {value.shape}")
            if n is None:
                n = len(value)
            elif len(value) != n:
                raise ValueError(f"Pool.{name} has {len(value)} values, expected {n} like Pool.dhash")
            object.__setattr__(self, name, _coerce(name, value))

    @property
    def size(self) -> int:
        """Number of images in the pool."""
        return int(self.dhash.shape[0])

    def __len__(self) -> int:
        return self.size


def _coerce(name: str, value: np.ndarray) -> np.ndarray:
    if name in _HASHES:
        if value.dtype == np.uint64:
            return np.ascontiguousarray(value)
        if value.dtype == np.int64:
            return np.ascontiguousarray(value).view(np.uint64)
        if value.size == 0:
            return np.zeros(0, np.uint64)
        if np.issubdtype(value.dtype, np.integer) or value.dtype == object:
            # Python ints from sqlite (signed 64-bit), unsigned ones, or small integer types
            try:
                return np.ascontiguousarray(value.astype(np.int64)).view(np.uint64)
            except (OverflowError, TypeError, ValueError):
                try:
                    return np.ascontiguousarray(value.astype(np.uint64))
                except (OverflowError, TypeError, ValueError) as exc:
                    raise ValueError(f"Pool.{name} must hold 64-bit integer hashes: {exc}") from None
        raise ValueError(f"Pool.{name} must hold 64-bit integer hashes, got dtype {value.dtype}")
    if name in ("brightness", "color_variance"):
        try:
            out = np.ascontiguousarray(value, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Pool.{name} must be numeric: {exc}") from None
        if out.size and not np.isfinite(out).all():
            raise ValueError(f"Pool.{name} has missing or non-finite values")
        return out
    if name == "is_gray":
        return np.ascontiguousarray(value, dtype=bool)
    try:
        return np.ascontiguousarray(value, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Pool.sequence must hold integer ids: {exc}") from None
