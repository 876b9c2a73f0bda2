"""The indexed images nearest to one image, by Hamming distance of a stored hash.

The query is an indexed image (by id or path: its stored hashes, nothing decoded) or any image
file, decoded once with the scan's own feature code (`features_from_file`), so its hashes are
comparable with the stored ones. One vectorised pass over the stored hashes (`mih.nearest`):
milliseconds per million images once the select cache has them.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .db import Database
from .db import duplicates as dq
from .db import select as q
from .duplicates import DEFAULT_HASH, HASHES, bounds, opened
from .errors import DuplicatesError
from .methods import mih
from .names import printable


@dataclass(frozen=True)
class SimilarImage:
    id: int
    path: str
    bits: int            # differing bits of the ranking hash
    dhash_bits: int
    phash_bits: int
    ahash_bits: int
    distance: float | None = None  # cosine distance of the embeddings (--by embedding)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def similar(db: Database | str | os.PathLike[str] | None = None, image: str | os.PathLike[str] | None = None, *, id: int | None = None,
            path: str | os.PathLike[str] | None = None, top: int = 10, max_distance: int | None = 64,
            hash: str = DEFAULT_HASH, by: str = "hash") -> list[SimilarImage]:
    """The `top` live images nearest to the query by `hash` (ties: the sum of the other two
    hashes' bits, then natural path order), within max_distance bits; the query image itself is
    left out when it is indexed. `by="embedding"` or "embedding:MODEL": nearest by the cosine
    distance of the stored vectors of that model (max_distance is then a cosine distance); an
    image file that is not indexed is run through the model, where its file still is."""
    if sum(x is not None for x in (image, id, path)) != 1:
        raise DuplicatesError("give exactly one of an image file, --id ID or --path PATH")
    if hash == "all":
        raise DuplicatesError("similar ranks by one hash: choose phash, dhash or ahash")
    bound = bounds(hash, 64 if max_distance is None or by != "hash" else max_distance)[hash]
    if top < 1:
        raise DuplicatesError(f"--top must be at least 1, not {top}")
    if by != "hash":
        from .embed.similar import similar_by_embedding
        with opened(db) as d:
            return similar_by_embedding(d, by, image, id, path, top, max_distance)
    with opened(db) as d:
        return _similar(d, image, id, path, top, bound, hash)


def _similar(db: Database, image: Any, id: int | None, path: Any, top: int, bound: int, hash: str
             ) -> list[SimilarImage]:
    codes, self_id = _query(db, image, id, path)
    from .sequences import load_features
    table, _ = load_features(db, None)
    k = min(len(table), top + (1 if self_id is not None else 0))
    if k == 0:
        return []
    # a wider pool than k, so ties on the ranking hash can be ordered by the other hashes
    rows, _ = mih.nearest(codes[hash], getattr(table, hash), min(len(table), max(4 * k, 64)), bound)
    d = {h: np.bitwise_count(getattr(table, h)[rows] ^ np.uint64(codes[h])).astype(int) for h in HASHES}
    others = sum(d[h] for h in HASHES if h != hash)
    order = np.lexsort((rows, others, d[hash]))
    rows = rows[order]
    d = {h: d[h][order] for h in HASHES}
    keep = [k for k, r in enumerate(rows.tolist()) if int(table.ids[r]) != self_id][:top]
    paths = {p.id: p.path for p in q.image_paths(db, table.ids[rows[keep]].tolist())}
    out = []
    for k in keep:
        i = int(table.ids[rows[k]])
        dd = {h: int(d[h][k]) for h in HASHES}
        out.append(SimilarImage(i, paths.get(i, ""), dd[hash], dd["dhash"], dd["phash"], dd["ahash"]))
    return out


def query_hashes(db: Database, image: Any, image_id: int | None, path: Any) -> tuple[dict[str, int], int | None]:
    """The query's hashes (unsigned) and its image id when it is indexed (DuplicatesError when
    there is no such image)."""
    return _query(db, image, image_id, path)


def _query(db: Database, image: Any, image_id: int | None, path: Any) -> tuple[dict[str, int], int | None]:
    """The query's hashes (unsigned) and its image id when it is indexed."""
    if image is not None:
        from .features import features_from_file
        try:
            f = features_from_file(os.fspath(image))
        except FileNotFoundError:
            raise DuplicatesError(f"no such image file: {printable(os.fspath(image))}") from None
        except Exception as exc:  # noqa: BLE001 (Pillow raises many kinds for a bad file)
            raise DuplicatesError(f"cannot read {printable(os.fspath(image))} as an image: {exc}") from None
        found = dq.find_by_path(db, os.path.abspath(os.fspath(image)))
        return {h: getattr(f, h) & 0xFFFFFFFFFFFFFFFF for h in HASHES}, found
    if path is not None:
        image_id = dq.find_by_path(db, os.path.abspath(os.fspath(path)))
        if image_id is None:
            raise DuplicatesError(f"{printable(os.fspath(path))} is not in the index (give the file itself to decode it)")
    row = dq.image_row(db, int(image_id))
    if row is None:
        raise DuplicatesError(f"no image with id {image_id} in the index")
    if row["phash"] is None:
        raise DuplicatesError(f"image {image_id} has no stored hashes (state {row['state']})")
    return {h: row[h] & 0xFFFFFFFFFFFFFFFF for h in HASHES}, int(image_id)
