"""What `indexer status` reports, as plain data."""
from __future__ import annotations

from typing import Any

from .db import Database
from .migrations import applied_version


def status(db: Database, *, errors: bool = False, runs: int = 5) -> dict[str, Any]:
    """Images by state, roots with their counts, recent runs and (with errors) failed files."""
    info: dict[str, Any] = {
        "db": str(db.path.resolve()),
        "schema_version": applied_version(db.conn),
        "images": db.state_counts(),
        "roots": db.root_summaries(),
        "runs": db.recent_runs(runs),
        "writer_active": db.writer_active(),
    }
    for run in info["runs"]:
        # The lock says who writes: a run still marked running whose holder is gone was killed.
        run["holder_gone"] = run["status"] == "running" and not info["writer_active"]
    if errors:
        info["failed_files"] = db.failed_files()
    return info
