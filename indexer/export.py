"""Rows for `indexer export`: the image_files view, filtered read-only."""
from __future__ import annotations

from collections.abc import Iterator

from .db import Database, check_expression


def export_rows(db: Database, *, where: str | None = None, include_all: bool = False
                ) -> tuple[list[str], Iterator[tuple]]:
    """Column names and rows of indexed images (all states with include_all)."""
    if where:
        check_expression(where)
    clauses = [f"({where})"] if where else []
    if not include_all:
        clauses.append("state = 'indexed'")
    return db.query("image_files", " AND ".join(clauses) or None, order_by="root, rel_path")
