"""The one-writer lock: an exclusive flock on `<database>.lock`, held for a whole scan or watch.

The operating system releases it when its holder dies (kill -9, a power cut, a container
stopped), whatever pid namespace or host it ran in, so a dead run never blocks the next one and a
live run is never taken for dead. The `runs` table only reports; this file decides. The file holds
a line naming its holder, for the message a refused writer prints.
"""
from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

# A reader probing the lock (status) holds it shared for microseconds: a writer retries this long.
_RETRY_SECONDS = 0.5


def lock_path(db_path: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(db_path)}.lock")


class WriterLock:
    """Held from acquire() until release() or the process ends."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.path = lock_path(db_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, holder: str) -> str | None:
        """Take the lock and write `holder` into the file; on refusal return the current holder's
        line (never raises for a held lock; OSError when the file cannot be made)."""
        if self._fd is not None:
            return None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + _RETRY_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    other = _read(fd)
                    os.close(fd)
                    return other or "another process"
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode("utf-8", "backslashreplace") + b"\n", 0)
        self._fd = fd
        return None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock


def writer_active(db_path: str | os.PathLike[str]) -> bool:
    """Whether a scan or watch holds the lock now. Reads only (works on a read-only mount)."""
    try:
        fd = os.open(lock_path(db_path), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False  # no lock file: no writer ever ran here with this version
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
