"""Worker tasks for tests/test_cluster.py: Dask workers import them by name (tests/ is on their path).

Each wraps the real `features.extract_many`, adding what a test needs of a worker: to die on a
given file (once, or every time), to go slowly, or to log what it decoded.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from indexer.features import extract_many


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or a lost machine: no goodbye


def kill_once(items: list, name: str, marker: str) -> list:
    """Kills its worker the first time it meets `name` (marker: a file saying it did)."""
    if any(item.name == name for item in items):
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            _die()
    return extract_many(items)


def kill_always(items: list, path: str) -> list:
    """Kills every worker that meets `path` (folder/name): a file whose decode takes its process down."""
    if any(f"{item.folder}/{item.name}" == path for item in items):
        _die()
    return extract_many(items)


def slow_logged(items: list, seconds: float, log: str) -> list:
    """Decodes `seconds` per file and appends each decoded file's name to `log`."""
    results = []
    for item in items:
        time.sleep(seconds)
        results.extend(extract_many([item]))
        with Path(log).open("a") as fh:
            fh.write(f"{item.folder}/{item.name}\n")
    return results
