"""Saved selections (`select --save`): list them, print their paths, forget them."""
from __future__ import annotations

from typing import Any

from .db import Database
from .db import select as q
from .errors import SelectionError
from .discover import path_key


def list_selections(db: Database) -> list[dict[str, Any]]:
    """Saved selections with their parameters, member counts and rounds."""
    return [{"name": s.name, "members": s.members, "live_members": s.live_members, "rounds": s.rounds,
             "method": s.method, "seed": s.seed, "created_at": s.created_at, "updated_at": s.updated_at,
             "params": s.params} for s in q.list_selections(db)]


def selection_paths(db: Database, name: str) -> list[str]:
    """Absolute paths of the live members of a saved selection, in natural path order."""
    sel = q.get_selection(db, name)
    if sel is None:
        raise SelectionError(f"no saved selection named {name!r} (see `indexer selections`)")
    paths = [p.path for p in q.image_paths(db, q.member_ids(db, sel.id).tolist())]
    return sorted(paths, key=path_key)


def delete_selection(db: Database, name: str) -> None:
    if not q.delete_selection(db, name):
        raise SelectionError(f"no saved selection named {name!r} (see `indexer selections`)")
