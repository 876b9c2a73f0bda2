"""Paths of a label file -> indexed images: relative to --root, absolute, or by suffix: of the
indexed images with the file's name, the one sharing the most trailing folders with the path
(a tie is ambiguous), so paths from another machine or another mount still match.

Built once per import from every live image (one query), so a million rows match in seconds.
Windows paths (`\\`, `C:`) are read as '/' paths.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..db import Database
from ..db import labels as dbl


@dataclass
class MatchCounts:
    """What matching found, for the summary."""

    unknown: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)


class PathMatcher:
    """match(path) -> image id, or None (the path is then counted unknown or ambiguous)."""

    def __init__(self, db: Database, root: str | os.PathLike[str] | None = None) -> None:
        self.base = _norm(str(root)) if root is not None else None
        self.full: list[str] = []
        self.ids: list[int] = []
        self.by_name: dict[str, int | list[int]] = {}
        for i, root_path, folder, name in dbl.live_image_paths(db):
            k = len(self.ids)
            self.ids.append(i)
            self.full.append(f"{root_path.rstrip('/')}/{folder + '/' if folder else ''}{name}")
            hit = self.by_name.get(name)
            if hit is None:
                self.by_name[name] = k
            elif isinstance(hit, int):
                self.by_name[name] = [hit, k]
            else:
                hit.append(k)
        self.counts = MatchCounts()

    def match(self, path: str) -> int | None:
        if self.base is None and "\\" not in path and "./" not in path and "//" not in path \
                and not path.startswith(("/", "file:")) and path == path.strip():
            # the common case, fast: a clean relative path naming one indexed file
            hit = self.by_name.get(path.rpartition("/")[2])
            if isinstance(hit, int) and (self.full[hit].endswith("/" + path)):
                return self.ids[hit]
        p = clean(path)
        if not p:
            self.counts.unknown.append(path)
            return None
        if self.base is not None and not _is_abs(p):
            p = _norm(os.path.join(self.base, p))
        name = p.rpartition("/")[2]
        hit = self.by_name.get(name)
        if hit is None:
            self.counts.unknown.append(path)
            return None
        cands = [hit] if isinstance(hit, int) else hit
        exact = [k for k in cands if self.full[k] == p]
        if exact or (self.base is not None and not _is_abs(clean(path))):
            found = exact  # under --root: that path or nothing
        else:
            # the longest run of trailing folders in common decides; a tie is ambiguous
            tail = p.lstrip("/").split("/")
            score = [_common_tail(self.full[k], tail) for k in cands]
            best = max(score)
            found = [k for k, sc in zip(cands, score) if sc == best]
        if len(found) == 1:
            return self.ids[found[0]]
        (self.counts.ambiguous if found else self.counts.unknown).append(path)
        return None


def _common_tail(full: str, tail: list[str]) -> int:
    parts = full.split("/")
    n = 0
    while n < len(tail) and n < len(parts) and parts[-1 - n] == tail[-1 - n]:
        n += 1
    return n


def clean(path: str) -> str:
    """'/' separators, no './' or '//', a Windows drive letter kept as 'C:'."""
    p = path.strip().replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    if p.startswith("file://"):
        p = p[7:]
    parts = [s for s in p.split("/") if s not in ("", ".")]
    out = "/".join(parts)
    return "/" + out if p.startswith("/") else out


def _is_abs(p: str) -> bool:
    return p.startswith("/") or (len(p) > 1 and p[1] == ":")


def _norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(os.path.expanduser(path))).replace(os.sep, "/")
