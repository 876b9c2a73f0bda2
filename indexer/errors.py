"""Typed errors: the library raises these, the CLI turns them into one-line messages."""
from __future__ import annotations


class IndexerError(Exception):
    """Base class of every error indexer reports to its user."""


class DatabaseError(IndexerError):
    """The database cannot be opened, read or written."""


class SchemaTooNewError(DatabaseError):
    """The database was written by a newer indexer than this one."""


class MigrationError(DatabaseError):
    """The migrations folder is inconsistent or a migration failed."""


class BusyError(DatabaseError):
    """Another process is already writing to this database."""


class ReadOnlyError(DatabaseError):
    """The database (or its folder) cannot be written: only reading commands work on it."""


class CorruptDatabaseError(DatabaseError):
    """The database file is damaged (SQLite reports a malformed disk image)."""


class QueryError(IndexerError):
    """A user-supplied SQL expression is invalid or tries to write."""


class RootError(IndexerError):
    """A scan root does not exist, is not a folder, or clashes with a known root."""


class WorkerPoolError(IndexerError):
    """The pool of decoding processes could not run at all (not one bad file: every worker died)."""


class ClusterError(IndexerError):
    """The Dask cluster cannot be used: unreachable, no workers, other code on them, lost."""


class Interrupted(IndexerError):
    """The run was stopped by Ctrl-C or SIGTERM."""


class OutputError(IndexerError):
    """A selection cannot be written where it was asked to go."""


class ReportError(IndexerError):
    """A report cannot be made as asked (unknown selection, unusable output folder)."""


class SelectionError(IndexerError):
    """A selection cannot be made as asked (bad target, unknown or existing saved selection)."""


class ImageLoadingError(IndexerError):
    """Some of the given images could not be read (image_loading_errors='raise')."""


class LabelError(IndexerError):
    """Labels cannot be read or stored as asked."""


class WatchError(IndexerError):
    """The file system cannot be watched (inotify limits, an unsupported mount)."""


class DuplicatesError(IndexerError):
    """Duplicates cannot be searched, moved or put back as asked (nothing was moved)."""
