"""`indexer buckets`: smartdownsample's 32 buckets of each group, from the stored features."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .db import Database
from .db import select as q
from .selection import _filter_and_group, _label, _per_sql, pool_of
from .sequences import load_features


@dataclass(frozen=True)
class BucketCount:
    key: int
    meaning: str
    count: int


@dataclass(frozen=True)
class GroupBuckets:
    group: str
    images: int
    buckets: list[BucketCount]

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "images": self.images, "buckets": [asdict(b) for b in self.buckets]}


def bucket_table(db: Database, *, per: str | None = None, where: str | None = None,
                 burst_gap: float | None = None) -> tuple[list[GroupBuckets], list[str]]:
    """smartdownsample's 32 buckets (key, meaning, images) of each group, and notes."""
    from .methods import bucket_keys, bucket_meaning

    q.register_functions(db)
    per_sql, fast = _per_sql(per)
    if where:
        q.check_expression(db, where, "--where")
    if per_sql is not None:
        q.check_expression(db, per_sql, "--per")
    table, notes = load_features(db, burst_gap)
    none = np.zeros(len(table), bool)
    _, gkey, keys = _filter_and_group(db, table, ~none, none, per_sql, fast, where)
    in_play = np.flatnonzero(gkey >= 0)
    order = in_play[np.argsort(gkey[in_play], kind="stable")]
    bounds = np.searchsorted(gkey[order], np.arange(len(keys) + 1))
    out = []
    for g, key in enumerate(keys):
        rows = order[bounds[g]:bounds[g + 1]]
        counts = np.bincount(np.asarray(bucket_keys(pool_of(table, rows)), dtype=np.int64), minlength=32)
        buckets = [BucketCount(int(k), bucket_meaning(int(k)), int(counts[k])) for k in np.flatnonzero(counts)]
        out.append(GroupBuckets(_label(key), len(rows), buckets))
    if not out:
        notes.append("no image matches")
    return out, notes


