"""Timelapse CSV export (Timelapse 2 image set: File, RelativePath, DateTime, DeleteFlag and the
template's data columns). --label-column names the data column holding the class; without it the
first of Species, species, Label, Class present is used."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ..errors import LabelError
from .common import EMPTY_LABELS, Collector

GUESS = ("Species", "species", "Label", "label", "Class", "class")
FIXED = ("File", "RelativePath", "DateTime")


def read(path: Path, col: Collector, label_column: str | None) -> dict[str, Any]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            r = csv.DictReader(fh)
            cols = list(r.fieldnames or [])
            if "File" not in cols:
                raise LabelError(f"{path}: no 'File' column: not a Timelapse CSV export")
            if label_column is None:
                label_column = next((c for c in GUESS if c in cols), None)
                if label_column is None:
                    raise LabelError(f"{path}: say which column holds the class with --label-column "
                                     f"(columns: {', '.join(c for c in cols if c not in FIXED)})")
            elif label_column not in cols:
                raise LabelError(f"{path}: no column {label_column!r} (columns: {', '.join(cols)})")
            for n, row in enumerate(r, 2):
                rel = (row.get("RelativePath") or "").strip().replace("\\", "/").strip("/")
                i = col.image(f"{rel}/{row['File']}" if rel and row.get("File") else row.get("File"), f"line {n}")
                if i is None:
                    continue
                label = (row.get(label_column) or "").strip()
                if label:
                    col.set_labels(i, [(label, None)])
                col.meta(i, is_empty=(1 if label.lower() in EMPTY_LABELS else 0) if label else None,
                         file_time=row.get("DateTime") or None, extra={k: v for k, v in row.items() if k is not None})
                col.flush()
    except OSError as exc:
        raise LabelError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"{path} is not a UTF-8 CSV file: {exc}") from exc
    return {"columns": cols, "label_column": label_column}
