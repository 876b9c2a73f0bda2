"""The plain records a report is made of: gathered by data.py, drawn by html.py and plots.py."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ReportError

GRID_LIMIT = 100  # thumbnails per bucket grid (smartdownsample's 10x10)
SMALL_BUCKET = 3  # a bucket (or group) of at most this many images is drawn compactly, beside others
NO_CLASS = "(none)"  # the classes table's row of the images without a class


class PlotsUnavailable(ReportError):
    """The PNG charts need matplotlib, which is not installed."""


@dataclass(frozen=True)
class ImageInfo:
    """One image of the report, with what its thumbnail caption and the outlier lists need."""

    id: int
    path: str
    rel_path: str
    name: str
    group: str
    bucket: int
    kept: bool | None  # None: no selection shown
    width: int | None
    height: int | None
    brightness: float | None
    sharpness: float | None
    is_gray: bool
    captured_at: str | None
    label: str | None = None  # the class (image_view.class), when labels were imported
    score: float | None = None  # the class's score (image_view.class_score), when its source gives one


@dataclass(frozen=True)
class BucketView:
    key: int
    meaning: str
    size: int
    kept: int
    shown: list[ImageInfo]  # at most GRID_LIMIT, natural order

    @property
    def excluded(self) -> int:
        return self.size - self.kept


@dataclass(frozen=True)
class GroupView:
    label: str
    size: int
    kept: int
    buckets: list[BucketView]  # largest first

    @property
    def excluded(self) -> int:
        return self.size - self.kept


@dataclass(frozen=True)
class Pair:
    """An excluded image and the kept image of its group nearest to it."""

    group: str
    excluded: ImageInfo
    kept: ImageInfo
    distance: int  # combined distance of indexer.methods.distance (0-255)
    cosine: float | None = None  # cosine distance of the embeddings, when the selection used them (the nearest by it)


@dataclass(frozen=True)
class OddSize:
    width: int | None
    height: int | None
    count: int
    examples: list[ImageInfo]


@dataclass(frozen=True)
class Outliers:
    darkest: list[ImageInfo]
    brightest: list[ImageInfo]
    blurriest: list[ImageInfo]
    common_size: tuple[int | None, int | None, int] | None  # (width, height, images)
    odd_sizes: list[OddSize]


@dataclass(frozen=True)
class RootInfo:
    path: str
    indexed: int
    failed: int
    missing: int
    last_scan_at: str | None


@dataclass(frozen=True)
class FailedFile:
    path: str
    error: str
    attempts: int


@dataclass(frozen=True)
class Overview:
    """The index as a whole (states, roots, failed files) and the images of this report."""

    db: str
    states: dict[str, int]
    roots: list[RootInfo]
    failed: list[FailedFile]
    images: int                       # in this report (after --where)
    cameras: list[tuple[str, int]]    # "make model" or "(no EXIF camera)", most images first
    labels: list[tuple[str, int]]     # class -> images in this report, most first, then NO_CLASS -> the
                                      # unlabelled ones (no rows at all when no image has a class)
    folders: list[tuple[str, int]]    # root/folder, natural order
    gray: int
    colour: int
    day: int                          # EXIF capture hour 06-19
    night: int                        # 20-05
    no_time: int                      # no EXIF capture time
    first: str | None                 # capture-time span
    last: str | None
    label_scores: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    # class -> (mean, lowest, images with a score) of image_view.class_score, for classes whose
    # source gives scores (MegaDetector, SpeciesNet, Camtrap DP)


@dataclass(frozen=True)
class SelectionInfo:
    """The selection shown: a saved one (name) or one made for this report."""

    name: str | None
    method: str
    seed: int
    params: dict[str, Any]
    members: int                      # kept images in this report
    outside: int = 0                  # members not in this report (missing, failed, or left out by --where)


@dataclass(frozen=True)
class ReportData:
    generated_at: str
    per: str | None
    where: str | None
    overview: Overview
    groups: list[GroupView]
    selection: SelectionInfo | None
    pairs: list[Pair]
    outliers: Outliers
    notes: list[str] = field(default_factory=list)

    def shown_images(self) -> list[ImageInfo]:
        """Every image that gets a thumbnail, each once, in order of first appearance."""
        seen: dict[int, ImageInfo] = {}
        for g in self.groups:
            for b in g.buckets:
                for im in b.shown:
                    seen.setdefault(im.id, im)
        for p in self.pairs:
            seen.setdefault(p.excluded.id, p.excluded)
            seen.setdefault(p.kept.id, p.kept)
        o = self.outliers
        for im in [*o.darkest, *o.brightest, *o.blurriest, *(e for s in o.odd_sizes for e in s.examples)]:
            seen.setdefault(im.id, im)
        return list(seen.values())


@dataclass(frozen=True)
class Thumb:
    """Where an image's thumbnail is, relative to the report folder."""

    src: str
    ok: bool                # False: a placeholder (missing or unreadable source)
    error: str | None = None


@dataclass(frozen=True)
class ThumbStats:
    made: int = 0
    cached: int = 0
    placeholders: int = 0
    removed: int = 0        # stale thumbnails of changed files deleted
    seconds: float = 0.0


@dataclass(frozen=True)
class ReportSummary:
    """What `make_report` wrote."""

    index: str              # path of index.html
    images: int
    groups: int
    kept: int | None
    thumbs: ThumbStats
    pngs: list[str]
    seconds: float
    notes: list[str] = field(default_factory=list)
