"""Frozen records passed between discovery, the worker pool and the database."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class State(str, Enum):
    """The state of a file in the index (the `images.state` column)."""

    INDEXED = "indexed"
    FAILED = "failed"
    MISSING = "missing"


@dataclass(frozen=True)
class Features:
    """Everything measured from one image by one reduced decode."""

    format: str
    mode: str
    width: int
    height: int
    dhash: int  # signed 64-bit, ImageHash bit order (first cell = most significant bit)
    ahash: int
    phash: int
    brightness: float
    color_variance: float
    is_gray: bool
    sharpness: float
    captured_at: str | None
    camera_make: str | None
    camera_model: str | None
    features_source: str = "draft"  # or "exif-thumbnail": the embedded preview (scan --exif-thumbnails)


@dataclass(frozen=True)
class WorkItem:
    """A file to decode: where it is and where its row goes."""

    root_id: int
    root: str
    folder: str
    name: str
    size: int = 0  # as stat() saw it when the item was made
    mtime_ns: int = 0

    @property
    def path(self) -> str:
        return "/".join(p for p in (self.root, self.folder, self.name) if p)


@dataclass(frozen=True)
class ImageResult:
    """What a worker made of one file: features, or the reason it failed."""

    item: WorkItem
    features: Features | None
    error: str | None
    size: int
    mtime_ns: int
    inode: int | None
    device: int | None
    vanished: bool = False  # the file was gone when the worker opened it
