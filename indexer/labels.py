"""Classes for `--per class`: labels from folder names or from a CSV file, into the labels table.

Each image has at most one label per source; `image_view.class` shows the label of the source
with the lowest precedence number (table label_sources: manual 0, csv 10, folders 20,
megadetector 30; unknown sources last).
"""
from __future__ import annotations

import csv
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .db import Database
from .db import select as q
from .errors import LabelError

_SOURCE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
PATH_COLUMNS = ("path", "file", "filename", "file_path", "image", "image_path")
LABEL_COLUMNS = ("label", "class", "species", "category")


@dataclass(frozen=True)
class LabelSummary:
    """What a labelling command did."""

    source: str
    labeled: int                                            # images that got (or kept) a label
    labels: dict[str, int] = field(default_factory=dict)    # label -> images
    skipped: int = 0                                        # from-folders: folders too shallow
    rows: int = 0                                           # import: data rows read
    unknown: list[str] = field(default_factory=list)        # import: paths not in the index
    ambiguous: list[str] = field(default_factory=list)      # import: relative paths under several roots
    bad_rows: list[str] = field(default_factory=list)       # import: rows without path/label, bad confidence
    removed: int = 0                                        # earlier labels of this source deleted first


def labels_from_folders(db: Database, level: int, where: str | None = None) -> LabelSummary:
    """Label every live image (or those matching `where`) with the name of its folder at `level`
    below the scan root (1 = the first folder). Replaces earlier 'folders' labels of those images
    (all of them without `where`); images whose folder is shallower lose their 'folders' label and
    are counted as skipped. Refused, with nothing changed, when no image matches `where` or no
    image has a folder at `level` (surely a mistake: it would only delete labels)."""
    if level < 1:
        raise LabelError(f"--level must be 1 or more, got {level}")
    ids = None
    if where:
        q.register_functions(db)
        q.check_expression(db, where, "--where")
        ids = q.where_ids(db, where)
    rows = q.live_folders_of(db, ids)
    if not rows:
        raise LabelError(f"no image matches --where {where}: nothing labelled" if where
                         else "the index holds no indexed image: nothing labelled")
    out: list[tuple[int, str, float | None]] = []
    deepest = 0
    for image_id, folder in rows:
        parts = [p for p in folder.split("/") if p]
        deepest = max(deepest, len(parts))
        if len(parts) >= level:
            out.append((image_id, parts[level - 1], None))
    if not out:
        depth = f"the deepest level is {deepest}" if deepest else "every image is directly in its scan root"
        raise LabelError(f"no image{' matching --where' if where else ''} has a folder at level {level} ({depth}): "
                         "nothing changed")
    removed = _replace(db, "folders", out, clear_ids=[r[0] for r in rows] if where else None, clear_all=not where)
    return LabelSummary("folders", len(out), dict(Counter(r[1] for r in out).most_common()), len(rows) - len(out),
                        removed=removed)


def import_labels(db: Database, csv_path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None,
                  source: str = "csv", replace: bool = False) -> LabelSummary:
    """Read `path,label[,confidence]` rows (a header row is recognised by its column names) and
    label the indexed images they name. Paths are absolute, or relative to `root`, or (without
    `root`) relative to whichever scan root holds them. With `replace`, every earlier label of
    this source is dropped first; that is refused, with nothing changed, when no row of the file
    names an indexed image (it would only delete labels)."""
    if not _SOURCE.match(source):
        raise LabelError(f"bad label source {source!r}: lower-case letters, digits, '-' and '_'")
    records, bad = _read_csv(Path(csv_path))
    known_roots = q.roots(db)
    base = _norm(str(root)) if root is not None else None
    found: dict[int, tuple[str, float | None]] = {}
    unknown: list[str] = []
    ambiguous: list[str] = []
    for path, label, conf in records:
        ids = _resolve(db, known_roots, path, base)
        if len(ids) == 1:
            found[ids[0]] = (label, conf)
        elif ids:
            ambiguous.append(path)
        else:
            unknown.append(path)
    if replace and not found:
        raise LabelError(f"no row of {csv_path} names an indexed image ({len(records) + len(bad)} rows read): "
                         f"--replace would only delete the labels of source {source!r}; nothing changed")
    removed = _replace(db, source, [(i, lab, c) for i, (lab, c) in found.items()], clear_all=replace)
    counts = Counter(lab for lab, _ in found.values())
    return LabelSummary(source, len(found), dict(counts.most_common()), 0, len(records) + len(bad), unknown,
                        ambiguous, bad, removed)


def label_counts(db: Database) -> list[dict[str, object]]:
    """Live images per source and label."""
    return [{"source": s, "label": lab, "images": n} for s, lab, n in q.label_counts(db)]


def _replace(db: Database, source: str, rows: list[tuple[int, str, float | None]],
             clear_ids: list[int] | None = None, clear_all: bool = False) -> int:
    """q.replace_labels, returning how many earlier labels it deleted first. replace_labels deletes
    (clear_ids / clear_all) and then upserts `rows`, one change each, on a table without triggers,
    so the connection's change count tells the deletions apart."""
    before = db.conn.total_changes
    q.replace_labels(db, source, rows, clear_ids=clear_ids, clear_all=clear_all)
    return max(0, db.conn.total_changes - before - len(rows))


def _read_csv(path: Path) -> tuple[list[tuple[str, str, float | None]], list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise LabelError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"{path} is not a UTF-8 CSV file: {exc}") from exc
    if not rows:
        return [], []
    p_col, l_col, c_col, start = 0, 1, 2, 0
    head = [h.strip().lower() for h in rows[0]]
    if any(h in PATH_COLUMNS for h in head) and any(h in LABEL_COLUMNS for h in head):
        p_col = next(i for i, h in enumerate(head) if h in PATH_COLUMNS)
        l_col = next(i for i, h in enumerate(head) if h in LABEL_COLUMNS)
        c_col = head.index("confidence") if "confidence" in head else -1
        start = 1
    good: list[tuple[str, str, float | None]] = []
    bad: list[str] = []
    for n, row in enumerate(rows[start:], start=start + 1):
        if not any(cell.strip() for cell in row):
            continue
        path = row[p_col].strip() if len(row) > p_col else ""
        label = row[l_col].strip() if len(row) > l_col else ""
        if not path or not label:
            bad.append(f"line {n}: needs a path and a label")
            continue
        conf: float | None = None
        if c_col >= 0 and len(row) > c_col and row[c_col].strip():
            try:
                conf = float(row[c_col])
            except ValueError:
                bad.append(f"line {n}: confidence {row[c_col]!r} is not a number")
                continue
        good.append((path, label, conf))
    return good, bad


def _norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(os.path.expanduser(path))).replace(os.sep, "/")


def _split(rel: str) -> tuple[str, str]:
    folder, _, name = rel.rpartition("/")
    return folder, name


def _resolve(db: Database, roots: list[tuple[int, str]], path: str, base: str | None) -> list[int]:
    """Image ids a CSV path can mean (one when it is clear)."""
    p = path.replace("\\", "/")
    if os.path.isabs(p) or base is not None:
        full = _norm(p if os.path.isabs(p) else os.path.join(base or "", p))
        for root_id, root in roots:  # longest root first
            prefix = root.rstrip("/") + "/"
            if full.startswith(prefix):
                i = q.find_image(db, root_id, *_split(full[len(prefix):]))
                return [i] if i is not None else []
        return []
    rel = os.path.normpath(p).replace(os.sep, "/")
    if rel.startswith("../"):
        return []
    hits = [q.find_image(db, root_id, *_split(rel)) for root_id, _ in roots]
    return [i for i in hits if i is not None]
