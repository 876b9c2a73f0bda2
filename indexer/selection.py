"""`indexer select`: diverse subsets per group, straight from the stored features.

`select(db, ...)` reads the feature table (sequences.load_features), filters it with --where,
splits it into groups with --per, turns --target/--fraction/--total into an exact count per group,
runs the chosen method (indexer.methods.pick) on each group's pool, and optionally saves or extends
a named selection. It never opens an image and never prints: notes come back in the result.
"""
from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .db import Database, utcnow
from .db import select as q
from .discover import name_key
from .errors import SelectionError
from .methods.common import distinct
from .sequences import DEFAULT_BURST_GAP, FeatureTable, load_features

log = logging.getLogger(__name__)

METHOD_NAMES = ("diverse", "kcenter", "buckets", "window", "random")
STATS_SAMPLE = 50_000  # coverage figures of larger pools are measured on a sample of this size
_LEVEL = re.compile(r"^\s*level\s*(?::\s*|)(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    """How many images: `count` per group (or in all without --per), a `fraction` of each group,
    or a `total` spread over the groups (in proportion to their size, or evenly with `balance`)."""

    count: int | None = None
    fraction: float | None = None
    total: int | None = None
    balance: bool = False

    def check(self) -> None:
        given = [x is not None for x in (self.count, self.fraction, self.total)]
        if sum(given) != 1:
            raise SelectionError("give exactly one of --target N, --fraction F or --total N")
        if self.count is not None and self.count < 1:
            raise SelectionError(f"--target must be 1 or more (0 selects nothing), got {self.count}")
        if self.total is not None and self.total < 1:
            raise SelectionError(f"--total must be 1 or more (0 selects nothing), got {self.total}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise SelectionError(f"--fraction must be in (0, 1], got {self.fraction}")
        if self.balance and self.total is None:
            raise SelectionError("--balance goes with --total N")

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}


@dataclass(frozen=True)
class GroupResult:
    key: Any            # value of the --per expression (None without --per)
    label: str          # printable key
    pool: int           # candidates in the group (new images only, with --extend)
    requested: int      # what the target asked of this group
    picked: int         # images chosen from the candidates
    kept: int = 0       # images kept from the extended selection
    stats: dict[str, Any] | None = None


@dataclass(frozen=True)
class SelectedImage:
    id: int
    path: str
    root: str
    rel_path: str
    group: str
    new: bool = True    # False: kept from the extended selection


@dataclass(frozen=True)
class Selection:
    images: list[SelectedImage]
    groups: list[GroupResult]
    method: str
    seed: int
    params: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    stats: dict[str, Any] | None = None
    saved: str | None = None
    round: int | None = None

    @property
    def paths(self) -> list[str]:
        return [im.path for im in self.images]

    @property
    def ids(self) -> list[int]:
        return [im.id for im in self.images]

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "seed": self.seed, "params": self.params, "saved": self.saved,
            "round": self.round, "count": len(self.images),
            "groups": [{k: v for k, v in asdict(g).items() if k != "stats"} for g in self.groups],
            "images": [asdict(im) for im in self.images], "notes": self.notes,
            **({"stats": self.stats} if self.stats is not None else {}),
        }


# -- the library function ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Options:
    target: Target
    where: str | None
    per: str | None
    method: str
    seed: int
    burst_gap: float
    features: str = "hash"

    def params(self) -> dict[str, Any]:
        out = {"where": self.where, "per": self.per, "method": self.method, "seed": self.seed,
               "burst_gap": self.burst_gap, "target": self.target.as_dict()}
        return out if self.features == "hash" else {**out, "features": self.features}


def select(db: Database, *, target: int | None = None, fraction: float | None = None, total: int | None = None,
           per: str | None = None, balance: bool = False, where: str | None = None, method: str | None = None,
           seed: int | None = None, burst_gap: float | None = None, save: str | None = None,
           extend: str | None = None, exclude_selections: Sequence[str] = (), stats: bool = False,
           only_ids: Sequence[int] | np.ndarray | None = None, against: str | None = None,
           min_distance: int | None = None, features: str | None = None) -> Selection:
    """Choose images from the index; see the README, "Selecting subsets". With `extend`, unset options default to
    those the selection was saved with, and the target counts new images only. `only_ids`
    restricts the candidates to these image ids (the smartdownsample drop-ins use it). A target
    of 0 is refused, and so is a `save` that would store no image (SelectionError saying why,
    before anything is stored). `features`: "hash" (default), "embedding" or "embedding:MODEL":
    diverse and kcenter on the stored vectors of that model (cosine distance); images without
    one are left out with a note."""
    started = utcnow()  # images first seen after this are new to the next --extend
    saved = _saved(db, extend, save)
    opt = _options(saved, target, fraction, total, per, balance, where, method, seed, burst_gap, features)
    q.register_functions(db)
    per_sql, fast = _per_sql(opt.per)
    if opt.where:  # compile user SQL before anything is written: a bad expression leaves the DB untouched
        q.check_expression(db, opt.where, "--where")
    if per_sql is not None:
        q.check_expression(db, per_sql, "--per")

    table, notes = load_features(db, opt.burst_gap)
    cand, kept = _candidates(db, table, saved, exclude_selections, only_ids, notes, against, min_distance)
    offered = int(cand.sum())
    cand, gkey, keys = _filter_and_group(db, table, cand, kept, per_sql, fast, opt.where)
    vectors = _embedding_rows(db, table, cand, kept, gkey, opt, notes) if opt.features != "hash" else None
    sizes = np.bincount(gkey[cand & (gkey >= 0)], minlength=len(keys))
    alloc = allocate(sizes, opt.target, grouped=opt.per is not None)
    labels = [_label(k) for k in keys]
    empty = _why_empty(table, offered, opt.where, saved, exclude_selections, only_ids) if sizes.sum() == 0 else None
    _short_notes(notes, labels, sizes, opt.target, opt.per is not None, saved is not None, empty)
    _copy_time_note(notes, table, np.flatnonzero(gkey >= 0))
    with q.no_gc():  # ~2 small objects per group and per pick (445k for 222k bursts): nothing to collect
        chosen, groups = _pick_groups(table, np.flatnonzero(gkey >= 0), gkey, kept, keys, labels, sizes, alloc,
                                      opt.method, opt.seed, stats, vectors)
        images = _images(db, table, chosen, gkey, labels, kept)
    new_ids = [im.id for im in images if im.new]
    if save is not None and not new_ids:
        raise SelectionError(f"nothing to save as {save!r}: {empty or 'no image was chosen'}; "
                             "the database is unchanged")
    name, rnd = _store(db, saved, save, opt, new_ids, started)
    return Selection(images, groups, opt.method, opt.seed, opt.params(), notes,
                     _overall_stats(groups) if stats else None, name, rnd)


def _saved(db: Database, extend: str | None, save: str | None) -> q.SavedSelection | None:
    if save is not None and q.get_selection(db, save) is not None:
        raise SelectionError(f"a selection named {save!r} exists already: extend it with --extend {save}, "
                             f"or delete it with `indexer selections --delete {save}`")
    if extend is None:
        return None
    saved = q.get_selection(db, extend)
    if saved is None:
        raise SelectionError(f"no saved selection named {extend!r} (see `indexer selections`)")
    return saved


def _options(saved: q.SavedSelection | None, target: int | None, fraction: float | None, total: int | None,
             per: str | None, balance: bool, where: str | None, method: str | None, seed: int | None,
             burst_gap: float | None, features: str | None = None) -> _Options:
    """The options of this run: given ones, else those of the extended selection, else defaults."""
    base = saved.params if saved is not None else {}
    tgt = Target(target, fraction, total, balance)
    if saved is not None and (target, fraction, total) == (None, None, None):
        tgt = Target(**{"balance": False, **base.get("target", {})})
        try:
            tgt.check()
        except SelectionError as exc:  # saved by an older indexer that took --target 0
            raise SelectionError(f"{saved.name!r} was saved with a target that is refused now ({exc}): "
                                 "give --target N, --fraction F or --total N") from None
    tgt.check()
    opt = _Options(tgt, where if where is not None else base.get("where"), per if per is not None else base.get("per"),
                   method or base.get("method") or "diverse", int(seed if seed is not None else base.get("seed", 0)),
                   float(burst_gap if burst_gap is not None else base.get("burst_gap", DEFAULT_BURST_GAP)),
                   (features or base.get("features") or "hash").strip())
    if opt.method not in METHOD_NAMES:
        raise SelectionError(f"unknown method {opt.method!r}: choose one of {', '.join(METHOD_NAMES)}")
    if opt.burst_gap < 0:
        raise SelectionError("--burst-gap must be >= 0 seconds")
    if opt.per is not None and not opt.per.strip():
        raise SelectionError("--per needs a column, level:N or an SQL expression")
    if opt.features != "hash":
        from .embed.store import parse_features
        kind, _ = parse_features(opt.features)
        if kind == "embedding" and opt.method not in ("diverse", "kcenter"):
            raise SelectionError(f"--features {opt.features} works with --method diverse or kcenter, not {opt.method}")
    return opt


def _embedding_rows(db: Database, table: FeatureTable, cand: np.ndarray, kept: np.ndarray, gkey: np.ndarray,
                    opt: _Options, notes: list[str]) -> np.ndarray | None:
    """--features embedding[:MODEL]: the model's vectors aligned with the table (float16); the
    candidates without one leave the play (cand and gkey are updated in place), with a note.
    SelectionError when no candidate has one."""
    from .embed.store import aligned_vectors, parse_features, resolve_model
    _, name = parse_features(opt.features)
    model = resolve_model(db, name)
    vectors, has = aligned_vectors(db, model, table.ids)
    lacking = cand & ~has
    if cand.any() and not (cand & has).any():
        raise SelectionError(f"no embeddings of model {model.name!r} are stored for the selected images: run "
                             f"`indexer embed --model {model.path}` first")
    if lacking.any():
        notes.append(f"{int(lacking.sum())} images have no embedding of model {model.name!r} and were left out "
                     f"(run `indexer embed --model {model.path}`)")
        cand &= has
        gkey[lacking & ~kept] = -1
    return vectors


def _candidates(db: Database, table: FeatureTable, saved: q.SavedSelection | None, exclude: Sequence[str],
                only_ids: Sequence[int] | np.ndarray | None, notes: list[str], against: str | None = None,
                min_distance: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(candidates, kept members) as masks over the table, before --where."""
    cand = np.ones(len(table), bool)
    if only_ids is not None:
        cand &= np.isin(table.ids, np.asarray(only_ids, dtype=np.int64))
    for name in exclude:
        sel = q.get_selection(db, name)
        if sel is None:
            raise SelectionError(f"no saved selection named {name!r} to exclude (see `indexer selections`)")
        cand &= ~np.isin(table.ids, q.member_ids(db, sel.id))
    kept = np.zeros(len(table), bool)
    if saved is not None:
        members = q.member_ids(db, saved.id)
        kept = np.isin(table.ids, members)
        cand &= ~kept & np.isin(table.ids, q.ids_first_seen_after(db, saved.updated_at))
        gone = len(members) - int(kept.sum())
        if gone:
            notes.append(f"{gone} images of {saved.name!r} are no longer in the index (missing or failed); "
                         "they stay members but are not listed")
    if against is not None:
        _against(db, table, cand, against, min_distance, notes)
    return cand, kept


def _against(db: Database, table: FeatureTable, cand: np.ndarray, name: str, min_distance: int | None,
             notes: list[str]) -> None:
    """--against NAME (a test set): leave out its members, every candidate at most min_distance pHash
    bits from one of them (default: the duplicates bound) and every frame of a burst that has one."""
    from .duplicates import DEFAULT_MAX_DISTANCE, near_members
    sel = q.get_selection(db, name)
    if sel is None:
        raise SelectionError(f"no saved selection named {name!r} to select against (see `indexer selections`)")
    bits = DEFAULT_MAX_DISTANCE["phash"] if min_distance is None else min_distance
    if isinstance(bits, bool) or not 0 <= int(bits) <= 64:
        raise SelectionError(f"--min-distance must be from 0 to 64 bits, not {min_distance}")
    members = table.positions(q.member_ids(db, sel.id))
    cand[members] = False
    near = near_members(table.phash, table.sequence, np.flatnonzero(cand), members, int(bits))
    cand[near] = False
    if len(near):
        notes.append(f"--against {name}: {len(near)} images within {bits} pHash bits of one of its {len(members)} "
                     "members, or in a burst with one, are left out")


def _store(db: Database, saved: q.SavedSelection | None, save: str | None, opt: _Options, new_ids: list[int],
           started: str) -> tuple[str | None, int | None]:
    """Save a new selection or add a round to the extended one; (name, round)."""
    params = opt.params()
    if save is not None:
        q.save_selection(db, save, opt.method, opt.seed, {**params, "rounds": [_round(1, params, len(new_ids))]},
                         new_ids, started)
        return save, 1
    if saved is None:
        return None, None
    rounds = list(saved.params.get("rounds", []))
    rnd = max([int(r.get("round", 1)) for r in rounds] + [q.next_round(db, saved.id) - 1]) + 1
    q.extend_selection(db, saved.id, rnd, {**saved.params, "rounds": rounds + [_round(rnd, params, len(new_ids))]},
                       new_ids, started)
    return saved.name, rnd


def _round(n: int, params: dict[str, Any], added: int) -> dict[str, Any]:
    return {"round": n, "added": added, **{k: params[k] for k in ("where", "per", "method", "seed", "target")}}


# -- groups --------------------------------------------------------------------------------------

def _per_sql(per: str | None) -> tuple[str | None, str | None]:
    """(SQL expression to evaluate, name of a form read from the feature table instead)."""
    if per is None:
        return None, None
    p = per.strip()
    m = _LEVEL.match(p)
    if m:
        if int(m.group(1)) < 1:
            raise SelectionError(f"--per {per}: levels count from 1 (level:1 is the first folder below the root)")
        return None, f"level{int(m.group(1))}"
    if p.lower() in ("folder", "root", "sequence") or re.fullmatch(r"level[1-4]", p.lower()):
        return None, p.lower()
    return p, None


def _filter_and_group(db: Database, table: FeatureTable, cand: np.ndarray, kept: np.ndarray, per_sql: str | None,
                      fast: str | None, where: str | None) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Apply --where to the candidates (kept members stay whatever it says) and give every row its
    group: (candidates, group index per row or -1 when not in play, group keys in order)."""
    n = len(table)
    raw: dict[int, Any] = {}
    if per_sql is not None:
        pos, vals = _align(table, *q.group_values(db, per_sql, where))
        raw = dict(zip(pos.tolist(), vals))
        matched = np.zeros(n, bool)
        matched[pos] = True
        cand = cand & matched
        lost = np.flatnonzero(kept & ~matched)
        if len(lost):  # kept members outside --where still need their group
            pos, vals = _align(table, *q.group_values(db, per_sql, None, ids=table.ids[lost].tolist()))
            raw.update(zip(pos.tolist(), vals))
    elif where:
        matched = np.zeros(n, bool)
        matched[table.positions(q.where_ids(db, where))] = True
        cand = cand & matched
    live = cand | kept
    if per_sql is not None:
        return (cand, *_index(raw, live))
    if fast is None:
        return cand, np.where(live, 0, -1).astype(np.int64), [None]
    if fast == "sequence":
        keys, inv = np.unique(table.sequence[live], return_inverse=True)
        g = np.full(n, -1, np.int64)
        g[live] = inv
        return cand, g, keys.tolist()
    per_folder = [_fast_key(fast, root, folder) for root, folder in table.folders]
    uniq = sorted(set(per_folder), key=_sort_key)
    index = {k: i for i, k in enumerate(uniq)}
    fmap = np.array([index[k] for k in per_folder] or [0], np.int64)
    g = np.where(live, fmap[table.folder], -1).astype(np.int64)
    used = distinct(g[g >= 0])
    remap = np.full(max(len(uniq), 1), -1, np.int64)
    remap[used] = np.arange(len(used))
    g = np.where(g >= 0, remap[np.maximum(g, 0)], -1)
    return cand, g, [uniq[i] for i in used]


def _fast_key(form: str, root: str, folder: str) -> str | None:
    if form == "folder":
        return folder
    if form == "root":
        return root
    n = int(form[5:])
    parts = [p for p in folder.split("/") if p]
    return parts[n - 1] if n <= len(parts) else None


def _align(table: FeatureTable, ids: np.ndarray, values: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """Table positions of query rows (rows not in the table dropped), with their values."""
    order = np.argsort(table.ids, kind="stable")
    sorted_ids = table.ids[order]
    at = np.searchsorted(sorted_ids, ids)
    at[at >= len(sorted_ids)] = 0
    hit = (sorted_ids[at] == ids) if len(sorted_ids) else np.zeros(len(ids), bool)
    idx = np.flatnonzero(hit)
    return order[at[idx]], [values[i] for i in idx.tolist()]


def _index(raw: dict[int, Any], inside: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Dense group numbers for arbitrary SQL values (by table position), keys sorted naturally."""
    seen: dict[Any, int] = {}
    g = np.full(len(inside), -1, np.int64)
    for p in np.flatnonzero(inside).tolist():
        v = raw.get(p)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        g[p] = seen.setdefault(v, len(seen))
    keys = list(seen)
    order = sorted(range(len(keys)), key=lambda i: _sort_key(keys[i]))
    remap = np.empty(len(keys), np.int64)
    remap[order] = np.arange(len(keys))
    g = np.where(g >= 0, remap[np.maximum(g, 0)] if len(keys) else g, -1)
    return g, [keys[i] for i in order]


def _sort_key(v: Any) -> tuple:
    if v is None:
        return (3, ())
    if isinstance(v, (int, float)):
        return (0, v)
    if isinstance(v, str):
        return (1, name_key(v))
    return (2, repr(v))


def _label(key: Any) -> str:
    if key is None:
        return "(none)"
    if isinstance(key, bytes):
        return key.hex()
    return str(key)


# -- targets -------------------------------------------------------------------------------------

def allocate(sizes: np.ndarray, target: Target, *, grouped: bool) -> np.ndarray:
    """Exact number of images to choose from each group of these sizes."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if target.fraction is not None:
        want = np.floor(sizes * target.fraction + 0.5).astype(np.int64)
        return np.minimum(sizes, np.maximum(want, (sizes > 0).astype(np.int64)))
    if target.count is not None and (grouped or target.total is None):
        return np.minimum(sizes, target.count)
    total = int(target.total or 0)
    if not grouped or total >= sizes.sum():
        return np.minimum(sizes, total) if not grouped else sizes.copy()
    return balanced(sizes, total) if target.balance else proportional(sizes, total)


def proportional(sizes: np.ndarray, total: int) -> np.ndarray:
    """`total` (< sum of sizes) in proportion to size, at least one per non-empty group: groups
    whose share is under one get one and the rest is shared again (largest remainder; ties to the
    larger group, then the earlier one). If total is below the number of groups, the largest
    groups get one each."""
    sizes = np.asarray(sizes, dtype=np.int64)
    out = np.zeros(len(sizes), np.int64)
    live = np.flatnonzero(sizes > 0)
    if total < len(live):
        out[live[np.lexsort((live, -sizes[live]))][:total]] = 1
        return out
    free = sizes > 0
    while free.any():
        idx = np.flatnonzero(free)
        budget = total - int(out[~free].sum())
        quota = budget * sizes[idx] / sizes[idx].sum()
        low, high = quota < 1, quota > sizes[idx]
        if low.any() or high.any():
            pin = idx[low] if low.any() else idx[high]
            out[pin] = 1 if low.any() else sizes[pin]
            free[pin] = False
            continue
        base = np.floor(quota).astype(np.int64)
        left = budget - int(base.sum())
        order = np.lexsort((idx, -sizes[idx], -(quota - base)))[:left]
        base[order] += 1
        out[idx] = base
        break
    return out


def balanced(sizes: np.ndarray, total: int) -> np.ndarray:
    """`total` (< sum of sizes) spread evenly, each group capped by its size; what small groups
    cannot take goes to the others; leftover units to the larger groups, then the earlier ones."""
    out = np.zeros(len(sizes), np.int64)
    remaining = total
    open_ = sizes > 0
    while remaining > 0 and open_.any():
        k = int(open_.sum())
        share = remaining // k
        if share == 0:
            idx = np.flatnonzero(open_)
            idx = idx[np.lexsort((idx, -(sizes[idx] - out[idx])))][:remaining]
            out[idx] += 1
            break
        add = np.where(open_, np.minimum(share, sizes - out), 0)
        out += add
        remaining -= int(add.sum())
        open_ &= out < sizes
    return out


def _why_empty(table: FeatureTable, offered: int, where: str | None, saved: q.SavedSelection | None,
               exclude: Sequence[str], only_ids: Sequence[int] | np.ndarray | None) -> str:
    """Why there is no candidate at all, in words."""
    if len(table) == 0:
        return "the index holds no indexed image"
    if offered == 0 and saved is not None:
        return f"no image was indexed since {saved.name!r} was last saved or extended"
    if offered == 0 and exclude:
        return f"every image is a member of --exclude-selection {', '.join(exclude)}"
    if offered == 0 and only_ids is not None:
        return "none of the given images is in the index"
    return f"no image matches --where {where}" if where else "no image matches"


def _short_notes(notes: list[str], labels: list[str], sizes: np.ndarray, tgt: Target, grouped: bool,
                 extending: bool, empty: str | None) -> None:
    if len(sizes) == 0 or sizes.sum() == 0:
        notes.append(f"{empty or 'no image matches'}: nothing to choose from")
        return
    none = [i for i in range(len(sizes)) if sizes[i] == 0]  # only groups of kept images (--extend)
    if none:
        notes.append(_no_candidates_note([labels[i] for i in none], extending))
    if tgt.count is not None:
        short = [i for i in range(len(sizes)) if 0 < sizes[i] < tgt.count]
        what = f"asked for {tgt.count}"
    elif tgt.total is not None and grouped and tgt.total > sizes.sum():
        notes.append(f"--total {tgt.total} is more than the {int(sizes.sum())} candidates: all are taken")
        return
    else:
        short = []
        what = ""
    if tgt.total is not None and grouped and tgt.total < int((sizes > 0).sum()):
        notes.append(f"--total {tgt.total} is less than the {int((sizes > 0).sum())} groups: "
                     "only the largest groups get an image")
    for i in short[:10]:
        name = f"group {labels[i]}" if grouped else "the pool"
        notes.append(f"{name} has only {int(sizes[i])} images ({what}): all are taken")
    if len(short) > 10:
        notes.append(f"... and {len(short) - 10} more groups with fewer images than asked")


def _no_candidates_note(labels: list[str], extending: bool, shown: int = 3) -> str:
    """One line for every group that offers nothing (its images are all kept ones)."""
    what = "new candidate images" if extending else "candidate images"
    if len(labels) == 1:
        return f"group {labels[0]} has no {what}: nothing taken there"
    names = ", ".join(labels[:shown]) + (f" and {len(labels) - shown} more" if len(labels) > shown else "")
    return f"{len(labels)} groups have no {what}: nothing taken there ({names})"


def _copy_time_note(notes: list[str], table: FeatureTable, rows: np.ndarray) -> None:
    images, folders = table.copy_time_counts(rows)
    if images:
        notes.append(f"{_count(images, 'image')} in {_count(folders, 'folder')} "
                     f"{'has' if images == 1 else 'have'} no EXIF capture time and copy-time mtimes: "
                     "not grouped into bursts (each is its own sequence)")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# -- picking -------------------------------------------------------------------------------------

def group_seed(seed: int, key: Any) -> int:
    """A per-group seed that depends only on the seed and the group's key: one group's picks do
    not change when other groups come or go."""
    x = ((seed & 0xFFFF_FFFF) << 32 | zlib.crc32(repr(key).encode())) + 0x9E37_79B9_7F4A_7C15
    x = ((x ^ (x >> 30)) * 0xBF58_476D_1CE4_E5B9) & 0xFFFF_FFFF_FFFF_FFFF  # splitmix64 finaliser
    x = ((x ^ (x >> 27)) * 0x94D0_49BB_1331_11EB) & 0xFFFF_FFFF_FFFF_FFFF
    return (x ^ (x >> 31)) & 0xFFFF_FFFF


def pool_of(table: FeatureTable, rows: np.ndarray) -> Any:
    """The Pool of these table rows (a zero-copy view when they are one contiguous run)."""
    from .methods import Pool

    if len(rows) and int(rows[-1]) - int(rows[0]) + 1 == len(rows) and bool(np.all(np.diff(rows) == 1)):
        sl = slice(int(rows[0]), int(rows[-1]) + 1)
        return Pool(dhash=table.dhash[sl], ahash=table.ahash[sl], phash=table.phash[sl],
                    brightness=table.brightness[sl], color_variance=table.color_variance[sl],
                    is_gray=table.is_gray[sl], sequence=table.sequence[sl])
    return Pool(dhash=table.dhash[rows], ahash=table.ahash[rows], phash=table.phash[rows],
                brightness=table.brightness[rows], color_variance=table.color_variance[rows],
                is_gray=table.is_gray[rows], sequence=table.sequence[rows])


def _pick_groups(table: FeatureTable, in_play: np.ndarray, gkey: np.ndarray, kept: np.ndarray, keys: list[Any],
                 labels: list[str], sizes: np.ndarray, alloc: np.ndarray, method: str, seed: int,
                 with_stats: bool, vectors: np.ndarray | None = None) -> tuple[np.ndarray, list[GroupResult]]:
    """Run the method on every group: (chosen table rows, one GroupResult per group).

    Groups that need no method (everything or nothing is taken) are settled for all groups at
    once; groups that are one burst (`--per sequence`) go to methods.pick_bursts together when
    the method has a batched form; the rest call `pick` group by group. The picks are the same
    as one `pick` per group (tests/select_reference.py)."""
    order = in_play[np.argsort(gkey[in_play], kind="stable")]
    bounds = np.searchsorted(gkey[order], np.arange(len(keys) + 1))
    glen = np.diff(bounds)
    gof = np.repeat(np.arange(len(keys)), glen)            # group of each position in `order`
    kept_o = kept[order]
    nkeep = np.bincount(gof[kept_o], minlength=len(keys))
    k = nkeep + np.asarray(alloc, dtype=np.int64)
    take = np.zeros(len(order), bool)                       # chosen positions in `order`
    loop = np.ones(len(keys), bool) if with_stats else (k > 0) & (k < glen)
    if not with_stats:
        take[(k >= glen)[gof]] = True                       # everything (e.g. one-frame bursts)
        if vectors is None:  # the batched burst methods work on hashes
            _pick_bursts(table, order, bounds, gof, kept_o, k, loop, method, take)
    stats: dict[int, dict[str, Any]] = {}
    for g in np.flatnonzero(loop).tolist():
        rows = order[bounds[g]:bounds[g + 1]]  # table order = natural path order
        keep = np.flatnonzero(kept_o[bounds[g]:bounds[g + 1]])
        pool = pool_of(table, rows)
        gs = group_seed(seed, keys[g])
        if vectors is not None:
            from .methods.vectors import pick_vectors
            picks = pick_vectors(vectors[rows], int(k[g]), method, sequence=table.sequence[rows], seed=gs,
                                 keep=keep if len(keep) else None)
        else:
            picks = np.asarray(pick_one(pool, int(k[g]), method, gs, keep), dtype=np.int64)
        take[bounds[g] + picks] = True
        if with_stats and len(picks):
            stats[g] = group_stats(pool, picks, gs)
            if vectors is not None:  # what the picks were chosen by: the cosine distance
                from .methods.vectors import coverage_stats
                stats[g]["embedding"] = coverage_stats(vectors[rows], picks, gs)
    npick = np.bincount(gof[take], minlength=len(keys))
    groups = [GroupResult(key, label, int(size), int(a), int(p) - int(kc), int(kc), stats.get(g))
              for g, (key, label, size, a, p, kc)
              in enumerate(zip(keys, labels, sizes.tolist(), np.asarray(alloc).tolist(), npick.tolist(),
                               nkeep.tolist()))]
    return np.sort(order[take]), groups


def pick_one(pool: Any, k: int, method: str, seed: int, keep: np.ndarray) -> np.ndarray:
    """indexer.methods.pick on one group's pool."""
    from .methods import pick

    return pick(pool, k, method, seed=seed, keep=keep if len(keep) else None)


def _pick_bursts(table: FeatureTable, order: np.ndarray, bounds: np.ndarray, gof: np.ndarray, kept_o: np.ndarray,
                 k: np.ndarray, loop: np.ndarray, method: str, take: np.ndarray) -> None:
    """The groups of `loop` that are one burst each, all at once (methods.pick_bursts); they
    are marked in `take` and dropped from `loop`."""
    from .methods import BURST_METHODS, MAX_BURST, pick_bursts

    if method not in BURST_METHODS or not loop.any():
        return
    seq = table.sequence[order]
    glen = np.diff(bounds)
    heads = bounds[:-1]
    same = np.ones(len(order), bool)
    same[1:] = seq[1:] == seq[:-1]
    same[heads[glen > 0]] = True
    broken = np.bincount(gof[~same], minlength=len(glen)) > 0
    one = loop & ~broken & (glen <= MAX_BURST) & (seq[np.minimum(heads, max(len(seq) - 1, 0))] >= 0)
    if not one.any():
        return
    pos = np.flatnonzero(one[gof])
    rows = order[pos]
    starts = np.r_[0, np.cumsum(glen[one])[:-1]]
    picked = pick_bursts(pool_of(table, rows), starts, k[one], kept_o[pos], method)
    take[pos[picked]] = True
    loop &= ~one


def _images(db: Database, table: FeatureTable, rows: np.ndarray, gkey: np.ndarray, labels: list[str],
            kept: np.ndarray) -> list[SelectedImage]:
    ids = table.ids[rows].tolist()
    paths: list[Any] = q.image_paths(db, ids)  # in the order of ids, but rows gone since are left out
    if len(paths) != len(ids):
        by_id = {p.id: p for p in paths}
        paths = [by_id.get(i) for i in ids]
    groups = gkey[rows].tolist()
    new = (~kept[rows]).tolist()
    return [SelectedImage(p.id, p.path, p.root, p.rel_path, labels[g], n)
            for p, g, n in zip(paths, groups, new) if p is not None]


# -- diversity figures ---------------------------------------------------------------------------

def group_stats(pool: Any, picks: np.ndarray, seed: int) -> dict[str, Any]:
    """--stats of one group: the chosen subset and a random one of the same size, against the pool."""
    from .methods import bucket_keys, pick

    n = len(pool)
    rnd = np.asarray(pick(pool, len(picks), "random", seed=seed + 1), dtype=np.int64)
    keys = np.asarray(bucket_keys(pool))
    out: dict[str, Any] = {"pool": n, "picks": int(len(picks)), "buckets_in_pool": int(len(distinct(keys)))}
    mpool, mpicks, mrnd, sampled = _measured(pool, picks, rnd, seed)
    out["sampled"] = sampled
    out["chosen"] = _figures(mpool, mpicks, pool, picks, keys)
    out["random"] = _figures(mpool, mrnd, pool, rnd, keys)
    return out


def _measured(pool: Any, picks: np.ndarray, rnd: np.ndarray, seed: int) -> tuple[Any, np.ndarray, np.ndarray, int]:
    """Coverage is O(pool x picks): pools over STATS_SAMPLE are measured on a random sample of
    the pool plus both subsets (0 = not sampled)."""
    n = len(pool)
    if n <= STATS_SAMPLE:
        return pool, picks, rnd, 0
    rng = np.random.default_rng(seed)
    rows = distinct(np.concatenate([rng.choice(n, STATS_SAMPLE, replace=False), picks, rnd]))
    sub = _subpool(pool, rows)
    return sub, np.searchsorted(rows, picks), np.searchsorted(rows, rnd), int(len(rows))


def _subpool(pool: Any, rows: np.ndarray) -> Any:
    from .methods import Pool

    return Pool(dhash=pool.dhash[rows], ahash=pool.ahash[rows], phash=pool.phash[rows],
                brightness=pool.brightness[rows], color_variance=pool.color_variance[rows],
                is_gray=pool.is_gray[rows], sequence=pool.sequence[rows])


def _figures(mpool: Any, mpicks: np.ndarray, pool: Any, picks: np.ndarray, keys: np.ndarray) -> dict[str, Any]:
    from .methods import coverage, hamming_coverage, redundancy

    cm, cx = coverage(mpool, mpicks)
    hm, hx = hamming_coverage(mpool, mpicks)
    return {"coverage_mean": round(float(cm), 3), "coverage_max": round(float(cx), 3),
            "hamming_mean": round(float(hm), 3), "hamming_max": round(float(hx), 3),
            "redundancy": round(float(redundancy(pool, picks)), 4),
            "buckets_covered": int(len(distinct(keys[picks]))) if len(picks) else 0}


def _overall_stats(groups: list[GroupResult]) -> dict[str, Any]:
    """Pool-weighted means, largest maxima, pick-weighted redundancy, bucket counts summed."""
    measured = [g for g in groups if g.stats]
    out: dict[str, Any] = {"groups": [{"group": g.label, **g.stats} for g in measured]}  # type: ignore[dict-item]
    if not measured:
        return out
    blocks: list[dict[str, Any]] = [g.stats for g in measured if g.stats is not None]
    pools = np.array([b["pool"] for b in blocks], float)
    picks = np.array([b["picks"] for b in blocks], float)
    total: dict[str, Any] = {"pool": int(pools.sum()), "picks": int(picks.sum()),
                             "buckets_in_pool": sum(b["buckets_in_pool"] for b in blocks)}
    for side in ("chosen", "random"):
        f = [b[side] for b in blocks]
        total[side] = {
            "coverage_mean": round(float(np.average([x["coverage_mean"] for x in f], weights=pools)), 3),
            "coverage_max": max(x["coverage_max"] for x in f),
            "hamming_mean": round(float(np.average([x["hamming_mean"] for x in f], weights=pools)), 3),
            "hamming_max": max(x["hamming_max"] for x in f),
            "redundancy": round(float(np.average([x["redundancy"] for x in f], weights=np.maximum(picks, 1e-9))), 4),
            "buckets_covered": sum(x["buckets_covered"] for x in f),
        }
    out["overall"] = total
    return out
