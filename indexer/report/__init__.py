"""`indexer report`: one self-contained HTML page showing the index and a selection.

    data.py    gathers everything to show as plain records (records.py) from the index
    thumbs.py  makes cached thumbnails in parallel with the scan's reduced decode
    html.py    renders index.html (inline CSS, inline SVG charts from chart.py, no script)
    plots.py   the smartdownsample-style PNG charts, with matplotlib (`indexer[plots]`)

`make_report` is the one function the command calls; `selection_pngs` draws the PNG pictures of
a selection for the smartdownsample drop-ins (indexer.api). Neither prints; the progress bar of
the thumbnails goes to stderr like scan's.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..db import Database
from ..db.labels import report_boxes
from ..scan import root_holding
from .data import gather
from .html import render
from .records import (PlotsUnavailable, ReportData, ReportError, ReportSummary, Thumb, ThumbStats)
from .thumbs import thumbnails

if TYPE_CHECKING:
    from ..selection import Selection

INDEX = "index.html"
PICTURES = ("distribution", "thumbnails", "verification")


def make_report(db: Database, out: str | os.PathLike[str], *, per: str | None = None, where: str | None = None,
                selection: str | None = None, target: int | None = None, fraction: float | None = None,
                total: int | None = None, balance: bool = False, method: str | None = None,
                seed: int | None = None, burst_gap: float | None = None, pairs: int = 24, thumb_size: int = 160,
                workers: int | None = None, png: bool = False, progress: bool | None = None,
                duplicates: dict[str, Any] | None = None, across: dict[str, Any] | None = None,
                features: str | None = None) -> ReportSummary:
    """Write out/index.html (and out/thumbs/, and with `png` the PNG charts) for the images of
    the index matching `where`, grouped by `per`, showing saved selection `selection` or one made
    now with target/fraction/total (balance, method, seed), or no selection."""
    started = time.monotonic()
    options = _select_options(selection, target, fraction, total, balance, method, seed)
    if features and options is not None:  # a selection made now on embeddings (select --features)
        options["features"] = features
    if png:
        from .plots import require_matplotlib

        require_matplotlib()  # before any work: the missing extra is the user's first message
    if not 16 <= thumb_size <= 1024:
        raise ReportError(f"--thumb-size must be between 16 and 1024 px, got {thumb_size}")
    folder = _out_folder(db, Path(out))
    data = gather(db, per=per, where=where, selection=selection, select_options=options, burst_gap=burst_gap,
                  pairs=pairs, seed=seed or 0)
    shown = data.shown_images()
    wanted = [(im.id, im.path) for im in shown]
    dups = None
    if duplicates is not None or across:  # the duplicates and leakage sections (report/duplicates.py)
        from .duplicates import gather as gather_duplicates
        dups = gather_duplicates(db, duplicates, across)
        have = {i for i, _ in wanted}
        wanted += [(i, p) for i, p in dups.images() if i not in have]
    thumbs, stats = thumbnails(folder, wanted, px=thumb_size, workers=workers,
                               progress=progress, boxes=report_boxes(db, [i for i, _ in wanted]))
    pngs: list[str] = []
    if png:
        from .plots import write_pngs

        pngs = write_pngs(data, thumbs, folder)
    index = folder / INDEX
    _write_atomic(index, render(data, thumbs, pngs, dups.sections(thumbs) if dups is not None else ()))
    groups_kept = sum(g.kept for g in data.groups) if data.selection else None
    return ReportSummary(str(index), data.overview.images, len(data.groups), groups_kept, stats, pngs,
                         round(time.monotonic() - started, 3), data.notes)


def selection_pngs(db: Database, chosen: Selection, pictures: dict[str, str | os.PathLike[str]],
                   folder: str | os.PathLike[str], *, only_ids: Sequence[int] | None = None, seed: int = 0,
                   workers: int | None = None, progress: bool | None = None) -> dict[str, Path]:
    """Draw the asked pictures of a selection (`pictures`: {"distribution" | "thumbnails" |
    "verification": PNG path}) over its candidates `only_ids`; thumbnails are made (and cached)
    under `folder`. Raises PlotsUnavailable before any work without matplotlib."""
    from .plots import distribution_png, require_matplotlib, thumbnails_png, verification_png

    unknown = set(pictures) - set(PICTURES)
    if unknown:
        raise ValueError(f"unknown pictures {sorted(unknown)}: choose from {', '.join(PICTURES)}")
    require_matplotlib()
    data = gather(db, chosen=chosen, only_ids=only_ids, seed=seed)
    out: dict[str, Path] = {}
    if "distribution" in pictures:
        out["distribution"] = distribution_png(data, pictures["distribution"])
    if "thumbnails" in pictures or "verification" in pictures:
        thumbs, _ = thumbnails(folder, [(im.id, im.path) for im in data.shown_images()], workers=workers,
                               progress=progress)
        if "thumbnails" in pictures:
            out["thumbnails"] = thumbnails_png(data, thumbs, folder, pictures["thumbnails"])
        if "verification" in pictures:
            out["verification"] = verification_png(data, thumbs, folder, pictures["verification"])
    return out


def _select_options(selection: str | None, target: int | None, fraction: float | None, total: int | None,
                    balance: bool, method: str | None, seed: int | None) -> dict[str, Any] | None:
    given = {k: v for k, v in (("target", target), ("fraction", fraction), ("total", total)) if v is not None}
    if selection is not None and (given or balance or method or seed is not None):
        raise ReportError("--selection NAME shows a saved selection as it is: leave out --target, --fraction, "
                          "--total, --balance, --method and --seed")
    if not given:
        if balance or method or seed is not None:
            raise ReportError("--balance, --method and --seed go with --target N, --fraction F or --total N")
        return None
    return {**given, "balance": balance, "method": method, "seed": seed}


def _out_folder(db: Database, out: Path) -> Path:
    """The report folder, made if needed; refused inside a scan root (the next scan would index
    the thumbnails) and when it is a file."""
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} is a file, not a folder")
    root = root_holding(db, out)
    if root is not None:
        raise ReportError(f"--out {out} is inside the scan root {root}: the next scan would index the "
                          "thumbnails; choose a folder outside the archive")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot make the report folder {out}: {exc.strerror or exc}") from exc
    return out


def _write_atomic(path: Path, content: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from exc


__all__ = ["PlotsUnavailable", "ReportData", "ReportError", "ReportSummary", "Thumb", "ThumbStats", "gather",
           "make_report", "render", "selection_pngs", "thumbnails"]
