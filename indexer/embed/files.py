"""Opening an image file for a worker: read-only, never blocking on a FIFO, with its stat."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import IO


@dataclass(frozen=True)
class Opened:
    """An open regular file and its stat, or why there is none (`vanished`: it is gone)."""

    fh: IO[bytes] | None
    st: os.stat_result | None
    error: str | None = None
    vanished: bool = False

    @property
    def stamp(self) -> tuple[int, int, int | None, int | None]:
        """(size, mtime_ns, inode, device); zeros and None without a stat."""
        if self.st is None:
            return 0, 0, None, None
        return self.st.st_size, self.st.st_mtime_ns, self.st.st_ino, self.st.st_dev


def open_image(path: str) -> Opened:
    """The file opened for reading, or the reason it cannot be decoded (gone, unreadable, not a
    regular file, empty). The caller closes `fh`."""
    from ..features import describe_error

    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)  # a FIFO named *.jpg must not hang
    try:
        fh = os.fdopen(os.open(path, flags), "rb")
    except FileNotFoundError:
        return Opened(None, None, "file vanished before it was read", vanished=True)
    except OSError as exc:
        return Opened(None, None, describe_error(exc))
    st = os.fstat(fh.fileno())
    reason = None if stat.S_ISREG(st.st_mode) else "not a regular file (a pipe, socket or device)"
    if reason is None and st.st_size == 0:
        reason = "empty file (0 bytes)"
    if reason is not None:
        fh.close()
        return Opened(None, st, reason)
    return Opened(fh, st)
