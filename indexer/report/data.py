"""Everything a report shows, as plain records: read from the index and a selection, no drawing.

The groups and their members come from `indexer.selection.select` itself (every image of every
group, in natural path order, with the same --per/--where/--burst-gap meaning as `indexer
select`); bucket keys and distances from `indexer.methods` on the stored features. Nothing here
opens an image or prints.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..db import Database
from ..db import select as q
from ..db.labels import class_scores, report_boxes
from ..db.report import ImageRow, image_classes, image_rows
from ..discover import path_key
from ..selection import Selection, pool_of, select
from ..sequences import FeatureTable, load_features
from .records import (GRID_LIMIT, NO_CLASS, BucketView, FailedFile, GroupView, ImageInfo, OddSize, Outliers, Overview,
                      Pair, ReportData, ReportError, RootInfo, SelectionInfo)

OUTLIERS = 10          # images per outlier list (one row of the page)
ODD_SHARE = 0.10       # a width x height held by fewer than this share of the images is odd
ODD_SIZES = 10         # odd sizes listed
FAILED_LIMIT = 1000    # failed files listed (the count is always complete)
DAY_HOURS = range(6, 20)  # EXIF capture hour counted as day


def gather(db: Database, *, per: str | None = None, where: str | None = None, selection: str | None = None,
           select_options: dict[str, Any] | None = None, chosen: Selection | None = None,
           burst_gap: float | None = None, pairs: int = 24, seed: int = 0,
           only_ids: Sequence[int] | None = None) -> ReportData:
    """The report's records. The selection shown is a saved one (`selection`), one made now with
    `select_options` (target, fraction, total, balance, method, seed), or one made by the caller
    (`chosen`); with none of them the report shows the groups and buckets without kept marks.
    A saved or given selection supplies --per, --where and --burst-gap unless they are given."""
    if pairs < 0:
        raise ReportError(f"--pairs must be >= 0, got {pairs}")
    notes: list[str] = []
    members: set[int] | None = None
    info: tuple[str | None, str, int, dict[str, Any]] | None = None
    if selection is not None:
        saved = q.get_selection(db, selection)
        if saved is None:
            raise ReportError(f"no saved selection named {selection!r} (see `indexer selections`)")
        per, where, burst_gap = _defaults(saved.params, per, where, burst_gap)
        members = set(q.member_ids(db, saved.id).tolist())
        info = (saved.name, saved.method, saved.seed, saved.params)
    elif select_options:
        chosen = select(db, per=per, where=where, burst_gap=burst_gap, only_ids=only_ids, **select_options)
    if chosen is not None:
        per, where, burst_gap = _defaults(chosen.params, per, where, burst_gap)
        members = set(chosen.ids)
        info = (chosen.saved, chosen.method, chosen.seed, chosen.params)
        notes += chosen.notes
    everything = select(db, fraction=1.0, per=per, where=where, method="random", burst_gap=burst_gap,
                        only_ids=only_ids)
    notes += [n for n in everything.notes if n not in notes]
    table, _ = load_features(db, None)  # the cache select() just built
    rows = image_rows(db)
    classes = image_classes(db)
    scores = class_scores(db) if classes else {}
    images = _image_infos(rows, classes, table, everything, members, scores)
    groups = _groups(everything, images)
    sel = None
    if info is not None and members is not None:
        shown = sum(1 for im in images if im.kept)
        sel = SelectionInfo(info[0], info[1], info[2], info[3], shown, len(members) - shown)
        if sel.outside:
            notes.append(f"{sel.outside} images of the selection are not in this report "
                         "(missing, failed, or left out by --where)")
    return ReportData(
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"), per=per, where=where,
        overview=_overview(db, rows, images, labelled=bool(classes)), groups=groups, selection=sel,
        pairs=_pairs(table, images, pairs, seed, _embeddings(db, table, info)) if members is not None else [],
        outliers=_outliers(images), notes=notes,
    )


def _defaults(params: dict[str, Any], per: str | None, where: str | None, burst_gap: float | None
              ) -> tuple[str | None, str | None, float | None]:
    return (per if per is not None else params.get("per"), where if where is not None else params.get("where"),
            burst_gap if burst_gap is not None else params.get("burst_gap"))


# -- images ----------------------------------------------------------------------------------------

def _image_infos(rows: dict[int, ImageRow], classes: dict[int, str], table: FeatureTable, everything: Selection,
                 members: set[int] | None, scores: dict[int, float] | None = None) -> list[ImageInfo]:
    """The report's images in natural path order, with group, bucket and kept mark."""
    from ..methods import bucket_keys

    ids = np.array(everything.ids, dtype=np.int64)
    keys = np.asarray(bucket_keys(pool_of(table, np.arange(len(table)))), dtype=np.int64)
    order = np.argsort(table.ids, kind="stable")
    at = order[np.searchsorted(table.ids[order], ids)] if len(table) else np.zeros(0, np.int64)
    out = []
    for im, pos in zip(everything.images, at.tolist()):
        r = rows.get(im.id)
        if r is None or int(table.ids[pos]) != im.id:
            continue  # changed under us: leave it out rather than show it wrong
        out.append(_info(r, im.group, int(keys[pos]), None if members is None else im.id in members,
                         classes.get(im.id), (scores or {}).get(im.id)))
    return out


def _info(r: ImageRow, group: str, bucket: int, kept: bool | None, label: str | None,
          score: float | None = None) -> ImageInfo:
    return ImageInfo(r.id, r.path, r.rel_path, r.name, group, bucket, kept, r.width, r.height, r.brightness,
                     r.sharpness, r.is_gray, r.captured_at, label, score)


def table_rows(table: FeatureTable, ids: Sequence[int]) -> np.ndarray:
    """Positions in the feature table of these image ids (all must be in it)."""
    order = np.argsort(table.ids, kind="stable")
    return order[np.searchsorted(table.ids[order], np.asarray(ids, dtype=np.int64))]


# -- groups and buckets ----------------------------------------------------------------------------

def _groups(everything: Selection, images: list[ImageInfo]) -> list[GroupView]:
    from ..methods import bucket_meaning

    by_group: dict[str, list[ImageInfo]] = {g.label: [] for g in everything.groups}
    for im in images:
        by_group.setdefault(im.group, []).append(im)
    out = []
    for label, ims in by_group.items():
        if not ims:
            continue
        by_bucket: dict[int, list[ImageInfo]] = {}
        for im in ims:
            by_bucket.setdefault(im.bucket, []).append(im)
        buckets = [BucketView(k, bucket_meaning(k), len(v), sum(1 for im in v if im.kept), grid_sample(v))
                   for k, v in sorted(by_bucket.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
        out.append(GroupView(label, len(ims), sum(1 for im in ims if im.kept), buckets))
    return out


def grid_sample(ims: list[ImageInfo], limit: int = GRID_LIMIT) -> list[ImageInfo]:
    """At most `limit` images of a bucket, in natural order: all of them if they fit, else the kept
    ones first (evenly spread when they alone are too many) and an even spread of the others."""
    if len(ims) <= limit:
        return list(ims)
    idx = np.arange(len(ims))
    kept = idx[[bool(im.kept) for im in ims]]
    rest = idx[[not im.kept for im in ims]]
    take = _spread(kept, min(len(kept), limit))
    take = np.concatenate([take, _spread(rest, limit - len(take))])
    return [ims[i] for i in np.sort(take).tolist()]


def _spread(a: np.ndarray, k: int) -> np.ndarray:
    """k elements of a, evenly spaced from its first to its last."""
    if k <= 0 or len(a) == 0:
        return np.zeros(0, np.int64)
    return a[np.unique(np.linspace(0, len(a) - 1, k).round().astype(np.int64))]


# -- verification pairs ----------------------------------------------------------------------------

def _embeddings(db: Database, table: FeatureTable, info: tuple[Any, ...] | None) -> np.ndarray | None:
    """The vectors (aligned with the table) of the model a selection made with --features
    embedding[:MODEL] used; None for a selection made with the hashes."""
    features = (info[3] or {}).get("features") if info is not None else None
    if not features or features == "hash":
        return None
    from ..embed.store import aligned_vectors, parse_features, resolve_model
    model = resolve_model(db, parse_features(features)[1])
    return aligned_vectors(db, model, table.ids)[0]


def _pairs(table: FeatureTable, images: list[ImageInfo], budget: int, seed: int,
           vectors: np.ndarray | None = None) -> list[Pair]:
    """A seeded sample of excluded images, spread over the groups, each with the nearest kept
    image of its group by the combined distance of indexer.methods (ties: the first in natural order),
    or, for a selection made on embeddings (`vectors`), by their cosine distance."""
    from ..methods import pairwise

    by_group: dict[str, tuple[list[ImageInfo], list[ImageInfo]]] = {}
    for im in images:
        kept, excluded = by_group.setdefault(im.group, ([], []))
        (kept if im.kept else excluded).append(im)
    eligible = [(g, k, e) for g, (k, e) in by_group.items() if k and e]
    if not eligible or budget == 0:
        return []
    rng = np.random.default_rng(seed)
    base, extra = divmod(budget, len(eligible))
    out: list[Pair] = []
    for n, (group, kept, excluded) in enumerate(eligible):
        want = min(len(excluded), base + (1 if n < extra else 0))
        if want == 0:
            continue
        sample = [excluded[i] for i in np.sort(rng.choice(len(excluded), want, replace=False)).tolist()]
        ex_rows = table_rows(table, [im.id for im in sample])
        kept_rows = table_rows(table, [im.id for im in kept])
        rows = np.union1d(ex_rows, kept_rows)  # pool_of wants ascending rows
        d = pairwise(pool_of(table, rows), np.searchsorted(rows, ex_rows), np.searchsorted(rows, kept_rows))
        if vectors is not None:
            cos = 1.0 - vectors[ex_rows].astype(np.float32) @ vectors[kept_rows].astype(np.float32).T
            nearest = np.argmin(cos, axis=1)
            out += [Pair(group, ex, kept[int(j)], int(d[i, j]), round(max(0.0, float(cos[i, j])), 6))
                    for i, (ex, j) in enumerate(zip(sample, nearest))]
            continue
        nearest = np.argmin(d, axis=1)
        out += [Pair(group, ex, kept[int(j)], int(d[i, j])) for i, (ex, j) in enumerate(zip(sample, nearest))]
    return out


# -- outliers --------------------------------------------------------------------------------------

def _outliers(images: list[ImageInfo]) -> Outliers:
    def ranked(attr: str, reverse: bool) -> list[ImageInfo]:
        have = [(i, im) for i, im in enumerate(images) if getattr(im, attr) is not None]
        have.sort(key=lambda t: ((-1 if reverse else 1) * getattr(t[1], attr), t[0]))
        return [im for _, im in have[:OUTLIERS]]

    sizes = Counter((im.width, im.height) for im in images)
    common = sizes.most_common(1)[0] if sizes else None
    odd = sorted(((wh, c) for wh, c in sizes.items() if common and wh != common[0] and c < ODD_SHARE * len(images)),
                 key=lambda t: (t[1], t[0][0] or 0, t[0][1] or 0))[:ODD_SIZES]
    odd_sizes = [OddSize(w, h, c, [im for im in images if (im.width, im.height) == (w, h)][:OUTLIERS])
                 for (w, h), c in odd]
    return Outliers(ranked("brightness", False), ranked("brightness", True), ranked("sharpness", False),
                    (common[0][0], common[0][1], common[1]) if common else None, odd_sizes)


# -- overview --------------------------------------------------------------------------------------

def _overview(db: Database, rows: dict[int, ImageRow], images: list[ImageInfo], labelled: bool) -> Overview:
    roots = [RootInfo(r["path"], r["indexed"], r["failed"], r["missing"], r["last_scan_at"])
             for r in db.root_summaries()]
    failed = [FailedFile(f["path"], f["error"] or "", f["attempts"]) for f in db.failed_files()[:FAILED_LIMIT]]
    folders = Counter(im.path[: len(im.path) - len(im.name) - 1] for im in images)
    hours = [int(im.captured_at[11:13]) for im in images if im.captured_at and len(im.captured_at) >= 13]
    day = sum(1 for h in hours if h in DAY_HOURS)
    times = [im.captured_at for im in images if im.captured_at]
    gray = sum(1 for im in images if im.is_gray)
    return Overview(
        db=str(db.path.resolve()), states=db.state_counts(), roots=roots, failed=failed, images=len(images),
        cameras=_cameras(rows, images), labels=_labels(images) if labelled else [],
        label_scores=_label_scores(images) if labelled else {},
        folders=sorted(folders.items(), key=lambda kv: path_key(kv[0])),
        gray=gray, colour=len(images) - gray, day=day, night=len(hours) - day, no_time=len(images) - len(hours),
        first=min(times) if times else None, last=max(times) if times else None,
    )


def _labels(images: list[ImageInfo]) -> list[tuple[str, int]]:
    """Images per class, most first, then the images without a class as NO_CLASS: the rows add up
    to the images of the report."""
    rows = sorted(Counter(im.label for im in images if im.label is not None).items(), key=lambda kv: (-kv[1], kv[0]))
    unlabelled = sum(1 for im in images if im.label is None)
    return rows + ([(NO_CLASS, unlabelled)] if unlabelled else [])


def _label_scores(images: list[ImageInfo]) -> dict[str, tuple[float, float, int]]:
    """class -> (mean score, lowest score, images with a score), for classes that have scores."""
    scores: dict[str, list[float]] = {}
    for im in images:
        if im.label is not None and im.score is not None:
            scores.setdefault(im.label, []).append(float(im.score))
    return {k: (sum(v) / len(v), min(v), len(v)) for k, v in scores.items()}


def _cameras(rows: dict[int, ImageRow], images: list[ImageInfo]) -> list[tuple[str, int]]:
    """Images per EXIF camera ("make model"), most first."""
    cams: Counter[str] = Counter()
    for im in images:
        r = rows.get(im.id)
        name = " ".join(x for x in ((r.camera_make if r else None), (r.camera_model if r else None)) if x)
        cams[name or "(no EXIF camera)"] += 1
    return sorted(cams.items(), key=lambda kv: (-kv[1], kv[0]))
