"""Classes for `--per class`: labels from folder names, a simple CSV, or the field's own files
(MegaDetector, SpeciesNet, COCO Camera Traps, Camtrap DP, Timelapse), into the labels table.

An image may have several labels per source (rank 0 first); `image_view.class` shows the rank-0
label of the source with the lowest precedence number (table label_sources: manual 0, coco 5,
camtrapdp 6, timelapse 8, csv 10, folders 20, speciesnet 25, megadetector 30; unknown sources last).
One module per format; `import_file` detects the format and stores an import in one transaction.
"""
from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..db import Database
from ..db import select as q
from ..db import labels as dbl
from ..errors import LabelError
from .common import ImportSummary

_SOURCE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
PATH_COLUMNS = ("path", "filepath", "file", "filename", "file_path", "image", "image_path")
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
    """dbl.replace_labels: how many earlier labels it deleted first (clear_ids / clear_all)."""
    return dbl.replace_labels(db, source, rows, clear_ids=clear_ids, clear_all=clear_all)


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
    if any(h in LABEL_COLUMNS for h in head) and not any(h in PATH_COLUMNS for h in head):
        raise LabelError(f"{path}: no path column (the header has {', '.join(rows[0])}; name one of "
                         f"{', '.join(PATH_COLUMNS)})")
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


# -- the field's own files ----------------------------------------------------------------------

FORMATS = ("auto", "md", "speciesnet", "coco", "camtrapdp", "timelapse", "csv")
DEFAULT_SOURCE = {"md": "megadetector", "speciesnet": "speciesnet", "coco": "coco", "camtrapdp": "camtrapdp",
                  "timelapse": "timelapse", "csv": "csv"}


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of a label file, from its content (its first MB)."""
    p = Path(path)
    try:
        with p.open("r", encoding="utf-8-sig", errors="replace") as f:
            head = f.read(1 << 20)
    except OSError as exc:
        raise LabelError(f"cannot read {p}: {exc.strerror or exc}") from exc
    text = head.lstrip()
    if text.startswith("{"):
        if re.search(r'"resources"\s*:', head) and re.search(r'"(media|observations)"', head):
            return "camtrapdp"
        if re.search(r'"predictions"\s*:', head):
            return "speciesnet"
        if re.search(r'"(detection_categories|detector)"\s*:|"file"\s*:', head):
            return "md"
        if re.search(r'"(file_name|annotations|categories)"\s*:', head):
            return "coco"
        raise LabelError(f"{p}: a JSON file of no format indexer knows (MegaDetector, SpeciesNet, COCO Camera "
                         "Traps, Camtrap DP): give --format")
    if text.startswith("["):
        raise LabelError(f"{p}: a JSON list, not a MegaDetector, SpeciesNet, COCO or Camtrap DP file")
    first = next(csv.reader([head.splitlines()[0] if head else ""]), [])
    if "File" in first and "RelativePath" in first:
        return "timelapse"
    return "csv"


def import_file(db: Database, path: str | os.PathLike[str], *, fmt: str = "auto",
                root: str | os.PathLike[str] | None = None, threshold: float | None = None,
                source: str | None = None, replace: bool = False, taxon_level: str = "common",
                label_column: str | None = None) -> ImportSummary:
    """Import a label file of any known format (detected from its content with fmt='auto').
    Paths match indexed images relative to `root`, absolutely, or by a unique suffix. Everything
    is stored in one transaction; --replace first drops every label, box and fact of the source
    (refused, nothing changed, when no entry of the file names an indexed image)."""
    from . import camtrapdp, coco, md, speciesnet, timelapse
    from .common import Collector, read_in_thread
    from .jsonstream import JSONStreamError
    from .match import PathMatcher

    if fmt not in FORMATS:
        raise LabelError(f"unknown label format {fmt!r}: choose one of {', '.join(FORMATS)}")
    p = Path(path)
    if not p.is_file():
        raise LabelError(f"cannot read {p}: no such file")
    if fmt == "auto":
        fmt = detect_format(p)
    source = source or DEFAULT_SOURCE[fmt]
    if threshold is not None and not 0 <= threshold <= 1:
        raise LabelError(f"--threshold must be between 0 and 1, got {threshold}")
    if fmt == "csv":
        s = import_labels(db, p, root=root, source=source, replace=replace)
        return ImportSummary(source, "csv", s.rows, s.labeled, s.labels, 0, s.unknown, s.ambiguous, s.bad_rows,
                             removed=s.removed, matched=s.labeled)
    if not _SOURCE.match(source):
        raise LabelError(f"bad label source {source!r}: lower-case letters, digits, '-' and '_'")
    if fmt in ("md", "speciesnet") and threshold is None:
        threshold = md.DEFAULT_THRESHOLD
    with dbl.import_writer(db, source, replace) as writer:
        matcher = PathMatcher(db, root)  # inside the transaction: the ids it gives stay live until COMMIT
        col = Collector(matcher, writer)
        try:
            if fmt in ("md", "speciesnet", "coco"):
                with p.open("r", encoding="utf-8-sig") as f:
                    if fmt == "md":
                        meta = read_in_thread(col, lambda: md.read(f, col, threshold or 0.0, str(p)))
                    elif fmt == "speciesnet":
                        meta = read_in_thread(col, lambda: speciesnet.read(f, col, threshold or 0.0, taxon_level,
                                                                           str(p)))
                    else:
                        meta = coco.read(json.load(f), col, lambda ids: dbl.image_sizes(db, ids), str(p))
            elif fmt == "camtrapdp":
                meta = camtrapdp.read(p, col)
            else:
                meta = timelapse.read(p, col, label_column)
        except (JSONStreamError, json.JSONDecodeError) as exc:
            raise LabelError(f"{p} is not valid JSON: {exc}") from None
        except UnicodeDecodeError as exc:
            raise LabelError(f"{p} is not UTF-8 text: {exc}") from None
        col.flush(force=True)
        if replace and not col.labeled and not col.seen:
            raise LabelError(f"no entry of {p} names an indexed image ({col.rows} read): --replace would only "
                             f"delete the labels of source {source!r}; nothing changed")
        writer.record(fmt, str(p), threshold, meta)
    return ImportSummary(source, fmt, col.rows, col.labeled, dict(col.classes.most_common()), col.n_detections,
                         matcher.counts.unknown, matcher.counts.ambiguous, col.bad, col.duplicates, col.failures,
                         writer.removed, threshold, len(col.seen))
