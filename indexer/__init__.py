"""indexer: a resumable SQLite index of image features for camera-trap archives.

The selection methods are in `indexer.methods` (`from indexer.methods import Pool, pick`);
`indexer.select` is the function that selects from an index, as `indexer select` does.
"""
from __future__ import annotations

from .api import sample_diverse, select, select_distinct
from .db import Database
from .discover import Filters
from .errors import (BusyError, DatabaseError, ImageLoadingError, IndexerError, Interrupted, LabelError,
                     MigrationError, OutputError, QueryError, ReportError, RootError, SchemaTooNewError,
                     SelectionError)
from .features import extract_one, features_from_file
from .records import Features, ImageResult, State, WorkItem
from .scan import ScanSummary, scan
from .status import status
from .watch import watch

__all__ = [
    "BusyError", "Database", "DatabaseError", "Features", "Filters", "ImageLoadingError", "ImageResult",
    "IndexerError", "Interrupted", "LabelError", "MigrationError", "OutputError", "QueryError", "ReportError",
    "RootError", "ScanSummary", "SchemaTooNewError", "SelectionError", "State", "WorkItem", "extract_one",
    "features_from_file", "sample_diverse", "scan", "select", "select_distinct", "status", "watch",
]
