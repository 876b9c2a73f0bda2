"""User SQL (--where, --per) runs here: read-only, bounded in time, stoppable with Ctrl-C.

Writes are refused twice over (query_only and an authorizer). A progress handler aborts a query
that runs past its budget (INDEXER_QUERY_TIMEOUT seconds, default 60) or that the user stops with
Ctrl-C: SQLite checks it every few thousand steps, so even an endless recursive query ends.
"""
from __future__ import annotations

import difflib
import os
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ..errors import CorruptDatabaseError, QueryError
from ..names import is_exact_text

DEFAULT_BUDGET_S = 60.0
_STEPS = 20_000  # SQLite VM steps between two calls of the progress handler

_DENIED = {
    sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_PRAGMA, sqlite3.SQLITE_INSERT,
    sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE, sqlite3.SQLITE_TRANSACTION,
}
_CORRUPT = ("malformed", "file is not a database", "disk image")


def query_budget() -> float:
    raw = os.environ.get("INDEXER_QUERY_TIMEOUT", "")
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_BUDGET_S
    return value if value > 0 else DEFAULT_BUDGET_S


def _authorize(action: int, *args: object) -> int:
    return sqlite3.SQLITE_DENY if action in _DENIED else sqlite3.SQLITE_OK


class _Watch:
    """The progress handler: aborts past the deadline or after Ctrl-C."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.deadline = time.monotonic() + budget
        self.timed_out = False
        self.interrupted = False

    def __call__(self) -> int:
        if self.interrupted:
            return 1
        if time.monotonic() > self.deadline:
            self.timed_out = True
            return 1
        return 0

    def on_sigint(self, signum: int, frame: object) -> None:
        self.interrupted = True


@contextmanager
def read_only(conn: sqlite3.Connection, budget: float | None = None) -> Iterator[None]:
    """Run user SQL: writes refused, at most `budget` seconds, Ctrl-C honoured (KeyboardInterrupt)."""
    watch = _Watch(budget if budget is not None else query_budget())
    in_main = threading.current_thread() is threading.main_thread()
    # Ctrl-C inside SQLite only sets a flag that the handler reads: a KeyboardInterrupt raised in a
    # callback would be swallowed by sqlite3.
    previous = signal.signal(signal.SIGINT, watch.on_sigint) if in_main else None
    conn.execute("PRAGMA query_only = ON")
    conn.set_authorizer(_authorize)
    conn.set_progress_handler(watch, _STEPS)
    try:
        yield
    except Exception:  # the caller may have turned SQLite's "interrupted" into its own error already
        if watch.interrupted:
            raise KeyboardInterrupt from None
        if watch.timed_out:
            raise QueryError(f"the query ran longer than {watch.budget:g} s and was stopped (set "
                             "INDEXER_QUERY_TIMEOUT=SECONDS to allow more)") from None
        raise
    finally:
        conn.set_progress_handler(None, 0)
        conn.set_authorizer(None)
        conn.execute("PRAGMA query_only = OFF")
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if watch.interrupted:  # Ctrl-C after the last step: honour it all the same
        raise KeyboardInterrupt


def check_expression(expr: str, what: str = "--where") -> None:
    """Refuse an SQL expression that is not one self-contained expression: a ')' closing more
    than it opened, or a ';', outside quotes and comments. It is pasted inside parentheses."""
    if not is_exact_text(expr):
        raise QueryError(f"{what} is not valid UTF-8 text (check the terminal's or script's encoding)")
    depth, i, n = 0, 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch in "'\"`[":
            close = "]" if ch == "[" else ch
            end = expr.find(close, i + 1)
            while end != -1 and close != "]" and expr[end + 1:end + 2] == close:  # doubled quote
                end = expr.find(close, end + 2)
            if end == -1:
                raise QueryError(f"bad {what} expression (unterminated quote {ch}): {expr}")
            i = end + 1
            continue
        if expr.startswith("--", i) or expr.startswith("/*", i):
            raise QueryError(f"bad {what} expression (no comments allowed): {expr}")
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise QueryError(f"bad {what} expression (a ')' closes more than it opened): {expr}")
        elif ch == ";":
            raise QueryError(f"bad {what} expression (no ';' allowed): {expr}")
        i += 1
    if depth:
        raise QueryError(f"bad {what} expression (unbalanced '('): {expr}")


def is_corruption(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and any(s in str(exc) for s in _CORRUPT)


def corruption_error(path: object, exc: BaseException) -> CorruptDatabaseError:
    detail = " ".join(str(exc).split())  # quick_check's rows can hold newlines: the error stays one line
    return CorruptDatabaseError(
        f"the index database {path} is damaged ({detail}): restore it from a backup, or rescue what is "
        f"readable with `sqlite3 {path} .recover | sqlite3 rescued.db` and scan again into that")


_NO_COLUMN = re.compile(r"no such column: (\S+)")


def explain(exc: sqlite3.Error, what: str, columns: Sequence[str] = (), path: object = "the index") -> Exception:
    """A user's SQL failed: say why in one line, with the nearest column for a typo."""
    msg = str(exc)
    if is_corruption(exc):
        return corruption_error(path, exc)
    if "not authorized" in msg or "readonly" in msg or "read-only" in msg:
        return QueryError(f"{what} must only read: it tried to write or to run a PRAGMA/ATTACH ({msg})")
    if "one statement at a time" in msg:
        return QueryError(f"{what} must be one SQL expression, not several statements")
    m = _NO_COLUMN.match(msg)
    if m and columns:
        near = difflib.get_close_matches(m.group(1).split(".")[-1], list(columns), n=1, cutoff=0.6)
        if near:
            return QueryError(f"bad {what}: {msg} (did you mean {near[0]}?)")
        return QueryError(f"bad {what}: {msg} (columns: {', '.join(columns)})")
    return QueryError(f"bad {what}: {msg}")


def view_columns(conn: sqlite3.Connection, view: str) -> list[str]:
    """The columns of a view (no PRAGMA: this also runs inside read_only())."""
    return [d[0] for d in conn.execute(f"SELECT * FROM {view} LIMIT 0").description]
