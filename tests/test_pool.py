"""The worker pool: workers that cannot start at all."""
from __future__ import annotations

import os
import sqlite3
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from indexer import Database, scan
from indexer.errors import IndexerError, WorkerPoolError
from indexer.pipeline import CRASH_ERROR, Pipeline, _WorkerContext
from indexer.records import ImageResult, WorkItem


# -- a pool that cannot run at all ------------------------------------------------------------------

def _die_at_start() -> None:
    os._exit(3)


class DeadPool(Pipeline):
    """Workers that die before doing anything (as every worker did when spawn re-ran a `__main__`
    read from stdin)."""

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=_WorkerContext(), initializer=_die_at_start)


def test_a_pool_whose_workers_cannot_start_raises_and_blames_no_file(archive):
    items = [WorkItem(1, str(archive), p.parent.relative_to(archive).as_posix(), p.name)
             for p in sorted(archive.rglob("*.JPG"))]
    got: list[ImageResult] = []
    with pytest.raises(WorkerPoolError, match=r"die before doing any work \(exit status 3;") as info:
        with DeadPool(2, batch=4, chunk=2) as pipe:
            pipe.run(iter(items), got.extend)
    assert isinstance(info.value, IndexerError)
    assert not [r for r in got if r.error == CRASH_ERROR]


def test_a_scan_whose_workers_cannot_start_fails_its_run_and_stores_no_failure(archive, db_path, monkeypatch):
    monkeypatch.setattr(sys.modules["indexer.scan"], "Pipeline", DeadPool)
    with Database(db_path, create=True) as db:
        with pytest.raises(WorkerPoolError):
            scan(db, [str(archive)], workers=2, batch=4, progress=False)
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT COUNT(*) FROM images WHERE error IS NOT NULL").fetchone() == (0,)
    status, error = conn.execute("SELECT status, error FROM runs ORDER BY id DESC").fetchone()
    assert status == "failed" and "worker processes die before doing any work" in error
