"""Walk scan roots one folder at a time, in natural order, without listing the archive first."""
from __future__ import annotations

import fnmatch
import os
import stat as stat_module
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"})

# Natural order, the order of the walk and of every listing: IMG_2 before IMG_10, case ignored.
# name_key is for single names (no separators, so ns.PATH's pathlib split, 3x slower, is not
# needed); path_key for paths, compared part by part (a folder sorts before its sub-folders).
# Both made on first use: natsort costs ~20 ms to import, and `select` on a warm cache sorts nothing.
@lru_cache(maxsize=2)
def _keygen(paths: bool) -> Callable[[str], Any]:
    from natsort import natsort_keygen, ns
    return natsort_keygen(alg=ns.PATH | ns.IGNORECASE if paths else ns.IGNORECASE)


def name_key(name: str) -> Any:
    return _keygen(False)(name)


def path_key(path: str) -> Any:
    return _keygen(True)(path)


@dataclass(frozen=True)
class FileEntry:
    """One image file as stat() sees it; `error` is set when it cannot even be stat'ed."""

    name: str
    size: int = 0
    mtime_ns: int = 0
    inode: int | None = None
    device: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Listing:
    """The image files directly inside one folder (relative to the root, '/' separators)."""

    folder: str
    files: list[FileEntry]
    complete: bool = True  # False when the folder could not be read: nothing in it is missing


@dataclass(frozen=True)
class Filters:
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    hidden: bool = False
    extensions: frozenset[str] = field(default=IMAGE_EXTENSIONS)

    def wants_file(self, rel: str, name: str) -> bool:
        if not self.hidden and name.startswith("."):
            return False
        if os.path.splitext(name)[1].lower() not in self.extensions:
            return False
        if self.include and not _matches(self.include, rel, name):
            return False
        return not _matches(self.exclude, rel, name)

    def wants_dir(self, rel: str, name: str) -> bool:
        if not self.hidden and name.startswith("."):
            return False
        return not _matches(self.exclude, rel, name)


def _matches(patterns: Sequence[str], rel: str, name: str) -> bool:
    """Case-insensitive, like the extension check: '*.jpg' matches IMG_0001.JPG."""
    rel, name = rel.lower(), name.lower()
    return any(fnmatch.fnmatchcase(rel, p.lower()) or fnmatch.fnmatchcase(name, p.lower()) for p in patterns)


@dataclass
class Problem:
    path: str
    error: str


def walk(root: str, start: str = "", filters: Filters = Filters(), *, stat: bool = True,
         problems: list[Problem] | None = None) -> Iterator[Listing]:
    """Depth-first, natural order: each folder's files, then its sub-folders.

    Folder symlinks that point outside the root are followed once; those pointing inside it are
    aliases of folders walked anyway and are skipped; a loop back to a folder already walked is
    reported in `problems` and skipped. Unreadable folders are reported and yielded as incomplete.
    """
    problems = problems if problems is not None else []
    real_root = os.path.realpath(root)
    seen: set[tuple[int, int]] = set()
    stack = [start]
    while stack:
        folder = stack.pop()
        abs_dir = os.path.join(root, *folder.split("/")) if folder else root
        try:
            st = os.stat(abs_dir)
            key = (st.st_dev, st.st_ino)
            if key in seen:
                problems.append(Problem(abs_dir, "symlink loop: folder already walked, skipped"))
                continue
            seen.add(key)
            with os.scandir(abs_dir) as it:
                entries = list(it)
        except OSError as exc:
            problems.append(Problem(abs_dir, f"cannot read folder: {exc.strerror or exc}"))
            yield Listing(folder, [], complete=False)
            continue
        entries.sort(key=lambda e: name_key(e.name))
        files, subdirs = [], []
        for entry in entries:
            rel = f"{folder}/{entry.name}" if folder else entry.name
            if _is_dir(entry):
                if not filters.wants_dir(rel, entry.name):
                    continue
                alias = _alias_inside(entry, real_root)
                if alias == "loop":
                    problems.append(Problem(entry.path, "symlink loop: it points back to a folder above it, skipped"))
                elif alias is None:
                    subdirs.append(rel)
            elif filters.wants_file(rel, entry.name):
                found = stat_file(entry.path, entry.name) if stat else FileEntry(entry.name)
                if found is not None:  # None: gone between listing and stat
                    files.append(found)
        yield Listing(folder, files)
        stack.extend(reversed(subdirs))


def _alias_inside(entry: os.DirEntry[str], real_root: str) -> str | None:
    """'loop' for a folder symlink to the folder holding it or one above; 'alias' for one to
    another folder inside the same root, which is walked under its own name anyway (following
    the alias would index its files twice, or under the alias only); None to walk it."""
    if not entry.is_symlink():
        return None
    target = os.path.realpath(entry.path)
    here = os.path.realpath(os.path.dirname(entry.path))
    if here == target or here.startswith(target.rstrip(os.sep) + os.sep):
        return "loop"
    if target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep):
        return "alias"
    return None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def stat_file(path: str, name: str) -> FileEntry | None:
    """What stat() says of one image file (symlinks followed); None when it does not exist.
    A broken symlink, a stat error or a file that is not a regular file is an entry with `error`."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return FileEntry(name, error="broken symlink: its target does not exist")
        return None
    except OSError as exc:
        return FileEntry(name, error=f"cannot stat: {exc.strerror or exc}")
    if not stat_module.S_ISREG(st.st_mode):  # a FIFO or device named *.jpg would block a reader
        return FileEntry(name, error="not a regular file (a pipe, socket or device)")
    return FileEntry(name, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def count_files(root: str, start: str = "", filters: Filters = Filters()) -> int:
    """How many image files the walk will meet (names only, no stat): the progress total."""
    return sum(len(listing.files) for listing in walk(root, start, filters, stat=False))
