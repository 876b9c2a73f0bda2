"""The smartdownsample drop-ins from any caller: stdin, a script without a main guard, and a cache
database that older versions poisoned with a worker crash for every file."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from functools import partial
from pathlib import Path

import pytest

import indexer
from imaging import make_archive
from indexer import Database
from indexer.api import index_files
from indexer.pipeline import CRASH_ERROR, Pipeline
from indexer.records import ImageResult, WorkItem

TARGET = 5
CALLS = {
    "sample_diverse": "indexer.sample_diverse(paths, {target}, n_workers=2, show_progress=False, "
                      "show_summary=False, db={db!r})",
    "select_distinct": "indexer.select_distinct(paths, {target}, n_workers=2, show_progress=False, db={db!r})",
}
# No `if __name__ == "__main__":` on purpose: spawn used to run this again in every worker.
CALLER = textwrap.dedent('''
    import glob, json, time
    print("caller body runs", flush=True)
    import indexer
    started = time.monotonic()
    paths = sorted(glob.glob({root!r} + "/**/*.JPG", recursive=True))
    out = {call}
    print(json.dumps({{"paths": out, "seconds": time.monotonic() - started}}), flush=True)
''')


def _caller(archive: Path, tmp_path: Path, func: str) -> str:
    call = CALLS[func].format(target=TARGET, db=str(tmp_path / "cache.db"))
    return CALLER.format(root=str(archive), call=call)


def _check(proc: subprocess.CompletedProcess[str], archive: Path, seconds: float) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines.count("caller body runs") == 1, proc.stdout  # the workers never ran the caller
    got = json.loads(lines[-1])
    assert len(got["paths"]) == TARGET and len(set(got["paths"])) == TARGET
    assert all(Path(p).is_file() and Path(p).is_relative_to(archive) for p in got["paths"])
    assert seconds < 60, f"the call took {seconds:.1f} s"


@pytest.mark.parametrize("func", sorted(CALLS))
def test_a_drop_in_works_when_the_caller_is_read_from_stdin(archive, tmp_path, func):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-"], input=_caller(archive, tmp_path, func), text=True,
                          capture_output=True, cwd=tmp_path, timeout=120)
    _check(proc, archive, time.monotonic() - started)


@pytest.mark.parametrize("func", sorted(CALLS))
def test_a_drop_in_works_from_a_script_without_a_main_guard(archive, tmp_path, func):
    script = tmp_path / "unguarded.py"
    script.write_text(_caller(archive, tmp_path, func))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(script)], text=True, capture_output=True, cwd=tmp_path, timeout=120)
    _check(proc, archive, time.monotonic() - started)


# -- a cache poisoned by an older version ----------------------------------------------------------

def as_old_versions_stored_a_dead_pool(items: list[WorkItem]) -> list[ImageResult]:
    """What Pipeline._isolate of older versions gave each file when no worker could start."""
    return [ImageResult(item, None, CRASH_ERROR, item.size, item.mtime_ns, None, None) for item in items]


def _poison(db_path: Path, files: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Index `files` as older versions did when no worker could start: every file failed with the
    worker-crash error."""
    with monkeypatch.context() as m:
        poisoned = partial(Pipeline, decode=as_old_versions_stored_a_dead_pool)
        m.setattr(sys.modules["indexer.scan"], "Pipeline", poisoned)
        with Database(db_path, create=True) as db:
            index_files(db, files, workers=2, progress=False)
    rows = sqlite3.connect(db_path).execute("SELECT state, error FROM images").fetchall()
    assert len(rows) == len(files) and set(rows) == {("failed", CRASH_ERROR)}


@pytest.mark.parametrize("func", sorted(CALLS))
def test_a_cache_poisoned_with_worker_crashes_is_healed(tmp_path, monkeypatch, func):
    archive = tmp_path / "archive"
    files = [p.as_posix() for p in make_archive(archive, cameras=2, per_camera=4)]
    cache = tmp_path / "cache.db"
    _poison(cache, files, monkeypatch)
    kwargs = dict(n_workers=2, show_progress=False, db=str(cache))
    if func == "sample_diverse":
        kwargs["show_summary"] = False
    got = getattr(indexer, func)(files, 3, **kwargs)
    assert len(got) == 3 and set(got) <= set(files)
    states = sqlite3.connect(cache).execute("SELECT state, COUNT(*) FROM images GROUP BY state").fetchall()
    assert states == [("indexed", len(files))]


def test_a_file_that_really_crashes_its_worker_is_still_left_out(tmp_path, monkeypatch):
    # the retry of crashed files does not turn a real crasher into a selected image
    archive = tmp_path / "archive"
    files = [p.as_posix() for p in make_archive(archive, cameras=1, per_camera=4)]
    boom = archive / "boom.jpg"
    boom.write_bytes(Path(files[0]).read_bytes())
    monkeypatch.setattr(sys.modules["indexer.scan"], "Pipeline", partial(Pipeline, decode=crash_on_boom))
    cache = tmp_path / "cache.db"
    for _ in range(2):
        got = indexer.select_distinct([*files, str(boom)], 3, n_workers=2, show_progress=False, db=str(cache))
        assert len(got) == 3 and str(boom) not in got
    error, attempts = sqlite3.connect(cache).execute(
        "SELECT error, attempts FROM images WHERE name = 'boom.jpg'").fetchone()
    assert (error, attempts) == (CRASH_ERROR, 2)


def crash_on_boom(items: list[WorkItem]) -> list[ImageResult]:
    if any(item.name == "boom.jpg" for item in items):
        os._exit(70)
    from indexer.features import extract_many
    return extract_many(items)
