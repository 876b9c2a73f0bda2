"""indexer: a resumable SQLite index of image features for camera-trap archives."""
from __future__ import annotations

# The selection methods subpackage is imported before the `select` function below is bound, so
# that `indexer.select` stays the function: a first import of the subpackage later would rebind
# the package attribute to the module. Use `from indexer.select import pick, Pool, ...` for it.
from . import select as _methods  # noqa: F401
from .api import sample_diverse, select, select_distinct
from .db import Database
from .discover import Filters
from .errors import (BusyError, DatabaseError, IndexerError, Interrupted, MigrationError, QueryError, RootError,
                     SchemaTooNewError)
from .features import extract_one, features_from_file
from .records import Features, ImageResult, State, WorkItem
from .scan import ScanSummary, scan
from .status import status

__all__ = [
    "BusyError", "Database", "DatabaseError", "Features", "Filters", "ImageResult", "IndexerError", "Interrupted",
    "MigrationError", "QueryError", "RootError", "ScanSummary", "SchemaTooNewError", "State", "WorkItem",
    "extract_one", "features_from_file", "sample_diverse", "scan", "select", "select_distinct", "status",
]
