"""indexer: a resumable SQLite index of image features for camera-trap archives."""
from __future__ import annotations

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
    "extract_one", "features_from_file", "scan", "status",
]
