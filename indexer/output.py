"""Write a selection out: paths, CSV or JSON; or copies, hard links or symlinks of the files in a
folder that rebuilds their layout below the scan root. Never overwrites a different file."""
from __future__ import annotations

import csv
import errno
import filecmp
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .errors import OutputError
from .selection import SelectedImage, Selection

FORMATS = ("paths", "csv", "json")
MODES = ("copy", "link", "symlink")
CSV_COLUMNS = ("path", "id", "group", "root", "rel_path", "new")


def write_listing(selection: Selection, fmt: str, out: TextIO) -> None:
    """The selected images as absolute paths (one per line), CSV, or one JSON document."""
    if fmt == "paths":
        for im in selection.images:
            out.write(im.path + "\n")
    elif fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for im in selection.images:
            w.writerow((im.path, im.id, im.group, im.root, im.rel_path, int(im.new)))
    elif fmt == "json":
        out.write(json.dumps(selection.as_dict(), indent=2, ensure_ascii=False, default=_jsonable) + "\n")
    else:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")


def _jsonable(v: object) -> object:
    if isinstance(v, bytes):
        return v.hex()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()  # type: ignore[attr-defined]
    raise TypeError(f"cannot write {type(v).__name__} as JSON")


@dataclass(frozen=True)
class Materialized:
    """What copy/link/symlink did: files made, files already there (same file or same bytes),
    and the ones left alone because a different file is in the way or the source is gone."""

    mode: str
    folder: str
    created: int = 0
    existing: int = 0
    conflicts: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def destinations(images: Sequence[SelectedImage], folder: str | os.PathLike[str]) -> list[Path]:
    """Where each image goes: folder/rel_path; with several scan roots, folder/<root name>/rel_path
    (the root's last folder name, numbered when two roots share it)."""
    base = Path(folder)
    roots = sorted({im.root for im in images})
    if len(roots) <= 1:
        return [base.joinpath(*im.rel_path.split("/")) for im in images]
    names: dict[str, str] = {}
    used: dict[str, int] = {}
    for r in roots:
        name = r.rstrip("/").rsplit("/", 1)[-1] or "root"
        used[name] = used.get(name, 0) + 1
        names[r] = name if used[name] == 1 else f"{name}-{used[name]}"
    return [base.joinpath(names[im.root], *im.rel_path.split("/")) for im in images]


def materialize(images: Sequence[SelectedImage], folder: str | os.PathLike[str], mode: str) -> Materialized:
    """Copy, hard-link or symlink the images into `folder`. Re-runnable: files already there are
    counted, not rewritten; a different file in the way is reported and left untouched."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    created = existing = 0
    conflicts: list[str] = []
    failed: list[str] = []
    for im, dest in zip(images, destinations(images, folder)):
        if os.path.lexists(dest):
            if _same(im.path, dest):
                existing += 1
            else:
                conflicts.append(str(dest))
            continue
        if not os.path.isfile(im.path):
            failed.append(f"{im.path}: the source file is gone")
            continue
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _make(im.path, dest, mode)
            created += 1
        except FileExistsError:
            conflicts.append(str(dest))
        except OSError as exc:
            if mode == "link" and exc.errno == errno.EXDEV:
                raise OutputError(f"cannot hard-link {im.path} into {folder}: another file system "
                                  "(use --copy-to or --symlink-to)") from exc
            failed.append(f"{dest}: {exc.strerror or exc}")
    return Materialized(mode, str(folder), created, existing, conflicts, failed)


def _same(src: str, dest: Path) -> bool:
    """The destination already holds this image: the same file, a link to it, or the same bytes."""
    try:
        if os.path.samefile(src, dest):
            return True
        if dest.is_symlink() or not dest.is_file():
            return False
        return os.path.getsize(src) == dest.stat().st_size and filecmp.cmp(src, dest, shallow=False)
    except OSError:
        return False


def _make(src: str, dest: Path, mode: str) -> None:
    if mode == "symlink":
        os.symlink(src, dest)
    elif mode == "link":
        os.link(src, dest)
    else:
        # copy next to the destination, then link it in place: a crash never leaves a half file
        # under the final name, and an existing file is never replaced (link refuses to).
        tmp = dest.with_name(f".{dest.name}.indexer-partial")
        shutil.copy2(src, tmp)
        try:
            os.link(tmp, dest)
            os.unlink(tmp)
        except FileExistsError:
            os.unlink(tmp)
            raise
        except OSError:  # file systems without hard links
            if os.path.lexists(dest):
                os.unlink(tmp)
                raise FileExistsError(errno.EEXIST, "exists", str(dest)) from None
            os.replace(tmp, dest)
