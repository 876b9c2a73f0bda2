"""Near-duplicates, exact copies and train/test leakage, from the stored hashes (no image is decoded).

Pairs: every two live images whose hash (pHash by default) differs in at most `max_distance`
bits, found exactly by multi-index hashing (`indexer.methods.mih`), never by comparing all pairs.
With hash "all", a pair must be within the bound of each of dHash, pHash and aHash.

Groups never chain: each group has a centre, and every member is within the bound of the centre
(so any two members are within twice the bound). Centres are taken greedily: the image with the
most near neighbours first (ties: natural path order), with all its neighbours not yet in a group;
then the next, and so on. An image whose neighbours all went to other groups is in no group.

Keep rules (`keep`): a tuple of largest (pixels, then bytes), sharpest, oldest, newest (EXIF time,
else mtime), first-path (natural path order); each rule narrows the tie of the ones before, and
first-path (then the image id) breaks what is left, so the keeper is always the same.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .db import Database
from .db import duplicates as dq
from .db import select as q
from .errors import DuplicatesError, QueryError
from .methods import mih

HASHES = ("phash", "dhash", "ahash")
HASH_CHOICES = (*HASHES, "all")
# Measured on the real photos of ../shared/data/camtrap-samples and 155 copies of them (JPEG
# quality 60 and 95, resized to 50%, cropped by 4 px, EXIF stripped): the largest bound that still
# found every copy without joining two different photos (benchmarks/bench_duplicates.py real).
DEFAULT_MAX_DISTANCE = {"phash": 6, "dhash": 4, "ahash": 2}
DEFAULT_HASH = "phash"
KEEP_RULES = ("largest", "sharpest", "oldest", "newest", "first-path")
DEFAULT_KEEP = ("largest",)
MAX_PAIRS = 20_000_000  # ~1-2 GB while searching; beyond it the bound is far too wide for the archive


@dataclass(frozen=True)
class Member:
    """One image of a group, with its distances (bits) to the group's centre."""

    id: int
    path: str
    root: str
    rel_path: str
    size: int
    width: int
    height: int
    sharpness: float
    time: str | None
    dhash_bits: int
    phash_bits: int
    ahash_bits: int
    centre: bool
    keep: bool
    distance: float | None = None  # cosine distance of the embeddings to the centre (--by embedding)


@dataclass(frozen=True)
class DuplicateGroup:
    number: int
    centre: int          # image id
    keeper: int          # image id
    reason: str          # why the keeper was kept
    members: tuple[Member, ...]
    identical: bool = False  # every member is byte-identical (--exact)

    @property
    def others(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if not m.keep)


@dataclass(frozen=True)
class Duplicates:
    hash: str
    max_distance: dict[str, int]
    images: int           # live images searched
    pairs: int            # pairs within the bound
    groups: tuple[DuplicateGroup, ...]
    keep: tuple[str, ...]
    exact: bool
    notes: tuple[str, ...] = ()

    @property
    def redundant(self) -> int:
        return sum(len(g.members) - 1 for g in self.groups)

    def as_dict(self) -> dict[str, Any]:
        return {"hash": self.hash, "max_distance": self.max_distance, "images": self.images, "pairs": self.pairs,
                "keep": list(self.keep), "exact": self.exact, "redundant": self.redundant,
                "groups": [{**{k: v for k, v in asdict(g).items() if k != "members"},
                            "members": [asdict(m) for m in g.members]} for g in self.groups],
                "notes": list(self.notes)}


# -- options -----------------------------------------------------------------------------------

def bounds(hash: str, max_distance: int | None) -> dict[str, int]:
    """The bound of each hash used: {name: bits}. Raises DuplicatesError for bad options."""
    if hash not in HASH_CHOICES:
        raise DuplicatesError(f"unknown hash {hash!r}: choose one of {', '.join(HASH_CHOICES)}")
    if max_distance is not None and (isinstance(max_distance, bool) or not 0 <= int(max_distance) <= 64):
        raise DuplicatesError(f"--max-distance must be from 0 to 64 bits, not {max_distance}")
    names = HASHES if hash == "all" else (hash,)
    return {h: int(max_distance) if max_distance is not None else DEFAULT_MAX_DISTANCE[h] for h in names}


def check_keep(keep: Sequence[str] | str | None) -> tuple[str, ...]:
    if keep is None or keep == () or keep == "":
        return DEFAULT_KEEP
    rules = tuple(r.strip() for part in ([keep] if isinstance(keep, str) else keep) for r in part.split(",") if r.strip())
    for r in rules:
        if r not in KEEP_RULES:
            raise DuplicatesError(f"unknown keep rule {r!r}: choose from {', '.join(KEEP_RULES)}")
    if "oldest" in rules and "newest" in rules:
        raise DuplicatesError("--keep oldest and newest contradict each other: give one")
    return rules


@contextmanager
def opened(db: Database | str | os.PathLike[str] | None, write: bool | None = None) -> Iterator[Database]:
    """A Database given, or one opened from a path (default index.db or $INDEXER_DB) and closed after."""
    if isinstance(db, Database):
        yield db
        return
    from .db import default_db_path
    with Database(db or default_db_path(), write=write) as d:
        yield d


# -- the search --------------------------------------------------------------------------------

@dataclass
class _Live:
    """Hashes of the live images considered, in natural path order."""

    ids: np.ndarray
    hashes: dict[str, np.ndarray]   # uint64
    sequence: np.ndarray
    position: dict[int, int] = field(default_factory=dict)


def _live(db: Database, where: str | None) -> tuple[_Live, list[str]]:
    from .sequences import load_features
    if where:
        q.check_expression(db, where, "--where")
    table, notes = load_features(db, None)
    rows = np.arange(len(table))
    if where:
        rows = table.positions(q.where_ids(db, where))
    live = _Live(table.ids[rows], {h: getattr(table, h)[rows] for h in HASHES}, table.sequence[rows])
    return live, notes


def _pairs(live: _Live, b: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs (i < j) within every bound, the first hash found by mih, the others checked."""
    first, *rest = b
    try:
        i, j, _ = mih.self_pairs(live.hashes[first], b[first], max_pairs=MAX_PAIRS)
    except mih.TooManyPairs:
        raise DuplicatesError(f"more than {MAX_PAIRS:,} pairs of images are within {b[first]} {first} bits: "
                              "lower --max-distance, or narrow the search with --where or --per") from None
    for h in rest:
        keep = mih.hamming_rows(live.hashes[h], i, j) <= b[h]
        i, j = i[keep], j[keep]
    return i, j


def _same_group_only(db: Database, live: _Live, per: str | None, i: np.ndarray, j: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    if per is None:
        return i, j
    expr = per.strip()
    if expr.lower().startswith("level"):
        import re
        m = re.fullmatch(r"level\s*:?\s*(\d+)", expr.lower())
        if m:
            expr = f"level(folder, {int(m.group(1))})"
    q.check_expression(db, expr, "--per")
    ids, values = q.group_values(db, expr, None)
    code: dict[Any, int] = {}
    by_id = dict(zip(ids.tolist(), (code.setdefault(v, len(code)) for v in values)))
    g = np.array([by_id.get(int(x), -1) for x in live.ids], dtype=np.int64)
    keep = g[i] == g[j]
    return i[keep], j[keep]


def group_pairs(n: int, i: np.ndarray, j: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Greedy centres: (centre row, member rows including the centre) for pairs (i, j) over n rows;
    every member is a neighbour of its centre. Most neighbours first, ties by row."""
    if not len(i):
        return []
    a = np.concatenate([i, j])
    b = np.concatenate([j, i])
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(a, minlength=n), out=starts[1:])
    degree = np.diff(starts)
    nodes = np.flatnonzero(degree)
    nodes = nodes[np.lexsort((nodes, -degree[nodes]))]
    taken = np.zeros(n, bool)
    out = []
    for c in nodes.tolist():
        if taken[c]:
            continue
        nb = b[starts[c]:starts[c + 1]]
        free = nb[~taken[nb]]
        if not len(free):
            continue
        members = np.sort(np.concatenate([[c], free]))
        taken[members] = True
        out.append((c, members))
    return out


def duplicates(db: Database | str | os.PathLike[str] | None = None, *, hash: str = DEFAULT_HASH, max_distance: int | None = None, where: str | None = None,
               per: str | None = None, exact: bool = False, keep: Sequence[str] | str | None = None,
               by: str = "hash") -> Duplicates:
    """Groups of near-duplicate live images (see the module docstring). With `exact`, only groups
    of byte-identical files: candidates with equal size and equal hashes are read and compared by
    content hash (BLAKE2b); no other file is read. `by="embedding"` or "embedding:MODEL": pairs
    within `max_distance` cosine distance (default 0.05) of the stored vectors of that model
    (indexer.embed.similar.embedding_pairs: exact, n^2/2 dot products)."""
    rules = check_keep(keep)
    if by != "hash":
        if exact:
            raise DuplicatesError("--exact compares file contents: it does not go with --by embedding")
        with opened(db) as d:
            return _duplicates(d, {}, hash, where, per, False, rules, by, max_distance)
    b = bounds(hash, max_distance)
    with opened(db) as d:
        return _duplicates(d, b, hash, where, per, exact, rules)


def _duplicates(db: Database, b: dict[str, int], hash: str, where: str | None, per: str | None, exact: bool,
                rules: tuple[str, ...], by: str = "hash", max_distance: float | None = None) -> Duplicates:
    live, notes = _live(db, where)
    n = len(live.ids)
    vectors = None
    if by != "hash":
        from .embed.similar import embedding_pairs
        i, j, _, vectors, more, model, cos = embedding_pairs(db, by, live.ids, max_distance, MAX_PAIRS)
        notes = [*notes, *more]
        hash, b = f"embedding:{model}", {"cosine": cos}  # type: ignore[dict-item]
    elif exact:
        b_search = {h: 0 for h in HASHES}
        i, j = _pairs(live, b_search)
    else:
        i, j = _pairs(live, b)
    i, j = _same_group_only(db, live, per, i, j)
    if vectors is not None and not live.position:
        live.position.update((int(x), k) for k, x in enumerate(live.ids.tolist()))
    found = group_pairs(n, i, j)
    info = dq.image_info(db, live.ids[np.concatenate([m for _, m in found])] if found else [])
    groups: list[DuplicateGroup] = []
    for centre, members in found:
        mem = [info[int(live.ids[r])] for r in members if int(live.ids[r]) in info]
        cen = info.get(int(live.ids[centre]))
        if cen is None or len(mem) < 2:
            continue
        sets = _identical_sets(mem) if exact else [mem]
        for s in sets:
            c = cen if any(x.id == cen.id for x in s) else s[0]
            groups.append(_group(len(groups) + 1, c, s, rules, live, exact, vectors))
    return Duplicates(hash, b if not exact else {h: 0 for h in HASHES}, n, int(len(i)), tuple(groups), rules, exact,
                      tuple(notes))


def _identical_sets(mem: list[dq.ImageInfo]) -> list[list[dq.ImageInfo]]:
    """Byte-identical subsets (2 or more) of images with equal size and hashes: only those are read."""
    by_key: dict[tuple, list[dq.ImageInfo]] = {}
    for m in mem:
        by_key.setdefault((m.size, m.dhash, m.ahash, m.phash), []).append(m)
    out = []
    for cands in by_key.values():
        if len(cands) < 2:
            continue
        by_digest: dict[str, list[dq.ImageInfo]] = {}
        for m in cands:
            d = content_hash(m.path)
            if d is not None:
                by_digest.setdefault(d, []).append(m)
        out += [v for v in by_digest.values() if len(v) >= 2]
    return out


def content_hash(path: str) -> str | None:
    """BLAKE2b-128 of a file's bytes; None when it cannot be read (gone since the scan)."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def _group(number: int, centre: dq.ImageInfo, mem: list[dq.ImageInfo], rules: tuple[str, ...], live: _Live,
           identical: bool, vectors: np.ndarray | None = None) -> DuplicateGroup:
    if not live.position:
        live.position.update((int(x), k) for k, x in enumerate(live.ids.tolist()))
    keeper, reason = choose_keeper(mem, rules, live.position)
    mem = sorted(mem, key=lambda m: live.position.get(m.id, 0))

    def bits(a: int, b: int) -> int:
        return ((a ^ b) & 0xFFFFFFFFFFFFFFFF).bit_count()

    def cosine(m: dq.ImageInfo) -> float | None:
        if vectors is None:
            return None
        a, c = vectors[live.position[m.id]].astype(np.float32), vectors[live.position[centre.id]].astype(np.float32)
        return round(max(0.0, 1.0 - float(a @ c)), 6)

    members = tuple(Member(m.id, m.path, m.root, m.rel_path, m.size, m.width, m.height, m.sharpness, m.time,
                           bits(m.dhash, centre.dhash), bits(m.phash, centre.phash), bits(m.ahash, centre.ahash),
                           m.id == centre.id, m.id == keeper, cosine(m)) for m in mem)
    return DuplicateGroup(number, centre.id, keeper, reason, members, identical)


def choose_keeper(mem: Sequence[dq.ImageInfo], rules: Sequence[str], position: dict[int, int]) -> tuple[int, str]:
    """(id of the image kept, why): each rule narrows the tie left by the ones before."""
    value = {
        "largest": lambda m: (m.width * m.height, m.size),
        "sharpest": lambda m: m.sharpness,
        "oldest": lambda m: _neg_text(m.time),
        "newest": lambda m: m.time or "",
        "first-path": lambda m: -position.get(m.id, 0),
    }
    left = list(mem)
    why = []
    for r in rules:
        best = max(value[r](m) for m in left)
        narrowed = [m for m in left if value[r](m) == best]
        if len(narrowed) < len(left):
            why.append(r)
        left = narrowed
        if len(left) == 1:
            break
    if len(left) > 1:
        left.sort(key=lambda m: (position.get(m.id, 0), m.id))
        why.append("first-path" if "first-path" not in why else "id")
        if why[-1] == "first-path" and len(why) > 1:
            why[-1] = "first-path (tie)"
    return left[0].id, ", ".join(why) if why else "only image"


def _neg_text(s: str | None) -> tuple:
    """A key under which the earliest time is the largest (None: latest of all)."""
    if s is None:
        return (-1,)
    return (0, tuple(-ord(c) for c in s))


# -- leakage between two sets --------------------------------------------------------------------

@dataclass(frozen=True)
class LeakPair:
    a: int
    a_path: str
    b: int
    b_path: str
    bits: dict[str, int]
    same_image: bool
    same_sequence: bool


@dataclass(frozen=True)
class Leakage:
    a: str
    b: str
    a_images: int
    b_images: int
    max_distance: dict[str, int]
    pairs: tuple[LeakPair, ...]
    a_leaking: int        # images of A with a near copy (or the same image) in B
    b_leaking: int
    same_images: int      # images in both sets
    shared_sequences: int  # bursts with frames in both sets

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "pairs"},
                "pairs": [asdict(p) for p in self.pairs]}


def resolve_set(db: Database, spec: str) -> tuple[list[int], str]:
    """Image ids of a set given as a saved selection's name, an indexed folder (a root or a folder
    below one) or a --where expression; and how it was read."""
    sel = q.get_selection(db, spec)
    if sel is not None:
        return q.member_ids(db, sel.id).tolist(), f"selection {spec!r}"
    if os.path.isdir(spec):
        path = os.path.abspath(spec)
        for _, root in dq.roots(db):
            if path == root or path.startswith(root.rstrip("/") + "/"):
                return dq.ids_under(db, path), f"folder {path}"
    try:
        q.check_expression(db, spec, "--across")
    except QueryError as exc:
        raise DuplicatesError(f"--across {spec!r} is not a saved selection, an indexed folder or a valid "
                              f"expression ({exc})") from None
    return q.where_ids(db, spec).tolist(), f"where {spec}"


def across(db: Database | str | os.PathLike[str] | None, a: str, b: str, *, hash: str = DEFAULT_HASH,
           max_distance: int | None = None) -> Leakage:
    """Every pair (one image of A, one of B) within the bound, and a summary: images of each side
    with a near copy on the other, images in both sets, bursts with frames in both."""
    bd = bounds(hash, max_distance)
    with opened(db) as d:
        return _across(d, a, b, bd)


def _across(db: Database, a: str, b: str, bd: dict[str, int]) -> Leakage:
    ids_a, name_a = resolve_set(db, a)
    ids_b, name_b = resolve_set(db, b)
    live, _ = _live(db, None)
    pos = {int(x): k for k, x in enumerate(live.ids.tolist())}
    ra = np.array([pos[i] for i in ids_a if i in pos], dtype=np.int64)
    rb = np.array([pos[i] for i in ids_b if i in pos], dtype=np.int64)
    first, *rest = bd
    i, j, _ = mih.cross_pairs(live.hashes[first][ra], live.hashes[first][rb], bd[first])
    gi, gj = ra[i], rb[j]
    for h in rest:
        keep = mih.hamming_rows(live.hashes[h], gi, gj) <= bd[h]
        gi, gj = gi[keep], gj[keep]
    paths = {p.id: p.path for p in q.image_paths(db, live.ids[np.concatenate([gi, gj])].tolist())} if len(gi) else {}
    pairs = []
    for x, y in zip(gi.tolist(), gj.tolist()):
        ia, ib = int(live.ids[x]), int(live.ids[y])
        bits = {h: int(mih.hamming_rows(live.hashes[h], np.array([x]), np.array([y]))[0]) for h in HASHES}
        pairs.append(LeakPair(ia, paths.get(ia, ""), ib, paths.get(ib, ""), bits, ia == ib,
                              bool(live.sequence[x] == live.sequence[y] and live.sequence[x] >= 0)))
    seq_a = set(live.sequence[ra][live.sequence[ra] >= 0].tolist())
    seq_b = set(live.sequence[rb][live.sequence[rb] >= 0].tolist())
    return Leakage(name_a, name_b, len(ra), len(rb), bd, tuple(pairs), len(set(gi.tolist())), len(set(gj.tolist())),
                   len(set(ra.tolist()) & set(rb.tolist())), len(seq_a & seq_b))


def near_members(hashes: np.ndarray, sequence: np.ndarray, cand_rows: np.ndarray, member_rows: np.ndarray,
                 min_distance: int) -> np.ndarray:
    """Of cand_rows, those within min_distance bits (pHash arrays given) of a member, or in a
    burst that has a member: what `select --against` leaves out."""
    if not len(cand_rows) or not len(member_rows):
        return np.empty(0, np.int64)
    near = np.empty(0, np.int64)
    if min_distance >= 0:
        i, _, _ = mih.cross_pairs(hashes[cand_rows], hashes[member_rows], min_distance)
        near = cand_rows[np.unique(i)]
    seqs = sequence[member_rows]
    seqs = seqs[seqs >= 0]
    same = cand_rows[np.isin(sequence[cand_rows], seqs) & (sequence[cand_rows] >= 0)]
    return np.union1d(near, same)
