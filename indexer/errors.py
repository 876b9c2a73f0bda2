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


class QueryError(IndexerError):
    """A user-supplied SQL expression is invalid or tries to write."""


class RootError(IndexerError):
    """A scan root does not exist, is not a folder, or clashes with a known root."""


class Interrupted(IndexerError):
    """The run was stopped by Ctrl-C or SIGTERM."""
