"""`similar --by embedding` and `duplicates --by embedding`: the stored vectors of a model,
searched by cosine distance (methods/vectors.py)."""
from __future__ import annotations

import os
from typing import Any

from ..db import Database
from ..db import embeddings as qe
from ..db import select as q
from ..errors import DuplicatesError
from ..names import printable
from . import EmbedError
from .store import parse_features, resolve_model

DEFAULT_MAX_COSINE = 0.05  # duplicates --by embedding: near copies (not measured on real models here)


def check_cosine(max_distance: float | None) -> float | None:
    if max_distance is not None and not 0 <= float(max_distance) <= 2:
        raise DuplicatesError(f"--max-distance is a cosine distance from 0 to 2 with --by embedding, not {max_distance}")
    return None if max_distance is None else float(max_distance)


def similar_by_embedding(db: Database, by: str, image: Any, image_id: int | None, path: Any, top: int,
                         max_distance: float | None) -> list[Any]:
    import numpy as np

    from ..methods import vectors as V
    from ..sequences import load_features
    from ..similar import SimilarImage, query_hashes

    bound = check_cosine(max_distance)
    model = _model(db, by)
    hashes, self_id = query_hashes(db, image, image_id, path)
    vec = qe.vector_of(db, model.id, self_id) if self_id is not None else None
    if vec is None and image is None:
        raise DuplicatesError(f"image {self_id} has no embedding of model {model.name!r}: run "
                              f"`indexer embed --model {model.path}`")
    query = np.frombuffer(vec, "<f2").astype(np.float32) if vec is not None else _embed_file(model, image)
    ids, mat = qe.vectors(db, model.id, model.dim)
    rows, dist = V.nearest(mat, query, top + 1)
    keep = [k for k in range(len(rows)) if int(ids[rows[k]]) != self_id and (bound is None or dist[k] <= bound)][:top]
    chosen = ids[rows[keep]]
    paths = {p.id: p.path for p in q.image_paths(db, chosen.tolist())}
    table, _ = load_features(db, None)
    at = table.positions(chosen)
    out = []
    for k, i, pos in zip(keep, chosen.tolist(), at.tolist()):
        bits = {h: int(np.bitwise_count(getattr(table, h)[pos] ^ np.uint64(hashes[h]))) for h in ("dhash", "phash", "ahash")}
        out.append(SimilarImage(int(i), paths.get(int(i), ""), bits["phash"], bits["dhash"], bits["phash"],
                                bits["ahash"], round(float(dist[k]), 6)))
    return out


def _model(db: Database, by: str) -> Any:
    try:
        kind, name = parse_features(by)
        if kind != "embedding":
            raise EmbedError(f"--by {by!r}: choose hash, embedding or embedding:MODEL")
        return resolve_model(db, name)
    except EmbedError as exc:
        raise DuplicatesError(str(exc)) from None


def _embed_file(model: Any, image: Any) -> Any:
    """The vector of an image file that is not in the index: the model run on it in this process,
    with the preprocessing its vectors were made with."""
    import numpy as np

    from .model import session, sha256_of
    from .preprocess import Preprocess, load_input
    from .task import normalise

    if not os.path.isfile(model.path) or sha256_of(model.path) != model.sha256:
        raise DuplicatesError(f"{printable(os.fspath(image))} is not in the index and the model file of "
                              f"{model.name!r} is not at {model.path} any more: index the image, or give --id/--path")
    pp = Preprocess(model.preset, model.resize, model.crop, model.interpolation, tuple(model.mean), tuple(model.std))
    try:
        x = load_input(os.fspath(image), pp)
    except Exception as exc:  # noqa: BLE001
        raise DuplicatesError(f"cannot read {printable(os.fspath(image))} as an image: {exc}") from None
    y = session(model.path).run([model.output_name], {model.input_name: x[None]})[0]
    return normalise(np.asarray(y, np.float32).reshape(1, -1)).astype(np.float32)[0]


def embedding_pairs(db: Database, by: str, ids: Any, max_distance: float | None, max_pairs: int
                    ) -> tuple[Any, Any, Any, Any, list[str], str, float]:
    """(rows i, rows j, cosine distances, vectors aligned with ids, notes, model name, bound) of
    the pairs of these images within the bound; images without a vector take no part."""
    import numpy as np

    from ..methods import vectors as V
    from .store import aligned_vectors

    bound = check_cosine(max_distance)
    bound = DEFAULT_MAX_COSINE if bound is None else bound
    model = _model(db, by)
    mat, has = aligned_vectors(db, model, ids)
    notes = []
    if len(ids) and not has.any():
        raise DuplicatesError(f"no embeddings of model {model.name!r} are stored for these images: run "
                              f"`indexer embed --model {model.path}` first")
    if (~has).any():
        notes.append(f"{int((~has).sum())} images have no embedding of model {model.name!r} and take no part")
    rows = np.flatnonzero(has)
    try:
        i, j, d = V.self_pairs(mat[rows], bound, max_pairs=max_pairs)
    except V.TooManyPairs:
        raise DuplicatesError(f"more than {max_pairs:,} pairs of images are within cosine distance {bound}: "
                              "lower --max-distance, or narrow the search with --where or --per") from None
    return rows[i], rows[j], d, mat, notes, model.name, bound


__all__ = ["DEFAULT_MAX_COSINE", "check_cosine", "embedding_pairs", "similar_by_embedding"]
