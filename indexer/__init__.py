"""indexer: a resumable SQLite index of image features for camera-trap archives.

The selection methods are in `indexer.methods` (`from indexer.methods import Pool, pick`);
`indexer.select` is the function that selects from an index, as `indexer select` does.

Names are imported on first use (PEP 562), so `import indexer` and the `indexer` command start
without loading numpy or Pillow until a command needs them.
"""
from __future__ import annotations

import importlib
import sys
import types

_WHERE = {
    "sample_diverse": "api", "select": "api", "select_distinct": "api",
    "Database": "db", "Filters": "discover",
    "extract_one": "features", "features_from_file": "features",
    "Features": "records", "ImageResult": "records", "State": "records", "WorkItem": "records",
    "duplicates": "duplicates", "Duplicates": "duplicates", "DuplicateGroup": "duplicates",
    "Leakage": "duplicates", "across": "duplicates", "similar": "similar", "SimilarImage": "similar",
    "move_duplicates": "moves", "undo_moves": "moves",
    "ScanSummary": "scan", "scan": "scan", "status": "status", "watch": "watch",
    **{name: "errors" for name in (
        "BusyError", "CorruptDatabaseError", "DatabaseError", "DuplicatesError", "ImageLoadingError", "IndexerError", "Interrupted",
        "LabelError", "MigrationError", "OutputError", "QueryError", "ReadOnlyError", "ReportError", "RootError",
        "SchemaTooNewError", "SelectionError", "WorkerPoolError")},
}

__all__ = sorted(_WHERE)


# Functions named like their modules: `indexer.scan` is the function, the module is
# sys.modules["indexer.scan"] (importing the module must not replace the package's attribute).
_SHADOWED = frozenset({"duplicates", "scan", "similar", "status", "watch"})


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: object) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'indexer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
