"""smartdownsample-style PNG pictures of a selection, drawn with matplotlib (the `plots` extra):

    distribution_png   bar chart of kept vs excluded images per bucket
    thumbnails_png     a 10x10 grid of thumbnails per bucket, kept ones framed in green
    verification_png   excluded images each beside the nearest kept image, with the distance

They read a ReportData (data.py) and the thumbnails thumbs.py made; matplotlib is used without
pyplot (no global state, no window), so they work in scripts, notebooks and tests alike.
`open_file` shows a written PNG with the system viewer where a display exists.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .records import ImageInfo, PlotsUnavailable, ReportData, Thumb

INSTALL_HINT = ("the PNG charts need matplotlib, which is not installed: "
                "pip install 'indexer[plots]' (or pip install 'matplotlib>=3.7')")
KEPT_RGB = (46, 125, 50)
TILE = 64            # px per thumbnail in the grids
PANELS = 36          # buckets drawn by thumbnails_png (the largest)
PNG_NAMES = ("distribution.png", "thumbnails.png", "verification.png")


def require_matplotlib() -> Any:
    """The matplotlib module, or PlotsUnavailable with how to install it."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as exc:
        raise PlotsUnavailable(INSTALL_HINT) from exc
    return matplotlib


def write_pngs(data: ReportData, thumbs: dict[int, Thumb], folder: str | os.PathLike[str]) -> list[str]:
    """The three PNGs in `folder` (verification only with a selection); their names."""
    folder = Path(folder)
    out = [distribution_png(data, folder / PNG_NAMES[0]), thumbnails_png(data, thumbs, folder, folder / PNG_NAMES[1])]
    if data.selection is not None:
        out.append(verification_png(data, thumbs, folder, folder / PNG_NAMES[2]))
    return [p.name for p in out]


def _figure(width: float, height: float) -> Any:
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


# -- distribution ----------------------------------------------------------------------------------

def distribution_png(data: ReportData, path: str | os.PathLike[str]) -> Path:
    """Stacked bars, one per bucket (summed over the groups), largest first."""
    totals: dict[int, list[int]] = {}
    for g in data.groups:
        for b in g.buckets:
            t = totals.setdefault(b.key, [0, 0])
            t[0] += b.kept
            t[1] += b.excluded
    order = sorted(totals, key=lambda k: (-sum(totals[k]), k))
    fig = _figure(max(6.0, 0.42 * len(order) + 2), 4.5)
    ax = fig.add_subplot()
    x = list(range(len(order)))
    kept = [totals[k][0] for k in order]
    excluded = [totals[k][1] for k in order]
    if data.selection is not None:
        ax.bar(x, kept, color="#2e7d32", label="kept")
        ax.bar(x, excluded, bottom=kept, color="#c9ccd1", label="excluded")
        ax.legend(frameon=False)
        ax.set_title(f"Kept vs excluded per bucket ({sum(kept)} of {sum(kept) + sum(excluded)} kept)")
    else:
        ax.bar(x, excluded, color="#5c7cfa")
        ax.set_title(f"Images per bucket ({sum(excluded)} images)")
    ax.set_xticks(x, [str(k) for k in order])
    ax.set_xlabel("bucket (see the report for each bucket's meaning)")
    ax.set_ylabel("images")
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


# -- thumbnail grids -------------------------------------------------------------------------------

def thumbnails_png(data: ReportData, thumbs: dict[int, Thumb], folder: str | os.PathLike[str],
                   path: str | os.PathLike[str]) -> Path:
    """One 10x10 grid (up to 100 images, natural order) per bucket, the largest buckets first."""
    panels = [(g.label, b) for g in data.groups for b in g.buckets]
    panels.sort(key=lambda p: -p[1].size)
    panels = panels[:PANELS]
    cols = min(4, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    fig = _figure(3.6 * cols, 3.9 * rows)
    for i, (label, b) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(_mosaic(b.shown, thumbs, Path(folder)))
        kept = f", {b.kept} kept" if data.selection is not None else ""
        name = f"{label} · " if data.per else ""
        ax.set_title(f"{name}bucket {b.key}: {b.size} images{kept}", fontsize=9)
        ax.axis("off")
    if not panels:
        fig.add_subplot().text(0.5, 0.5, "no images", ha="center")
    return _save(fig, path)


def _mosaic(images: list[ImageInfo], thumbs: dict[int, Thumb], folder: Path) -> Any:
    """A square-ish sheet of tiles: 10x10 for 100 images, 3x3 for 7."""
    from PIL import Image

    cols = min(10, max(1, math.ceil(math.sqrt(len(images)))))
    rows = max(1, math.ceil(len(images) / cols))
    sheet = Image.new("RGB", (cols * TILE, rows * TILE), (255, 255, 255))
    for i, im in enumerate(images):
        sheet.paste(_tile(im, thumbs, folder), ((i % cols) * TILE, (i // cols) * TILE))
    return sheet


def _tile(im: ImageInfo, thumbs: dict[int, Thumb], folder: Path, size: int = TILE) -> Any:
    """A square tile of the thumbnail (gray when there is none), framed green when kept."""
    from PIL import Image, ImageDraw, ImageOps

    tile = Image.new("RGB", (size, size), (55, 71, 79))
    t = thumbs.get(im.id)
    if t is not None and t.ok:
        try:
            with Image.open(folder / t.src) as th:
                th = ImageOps.contain(th.convert("RGB"), (size - 6, size - 6))  # small sources are enlarged
                tile.paste(th, ((size - th.width) // 2, (size - th.height) // 2))
        except OSError:
            pass
    else:
        ImageDraw.Draw(tile).text((6, size // 2 - 6), "missing", fill=(240, 200, 200))
    if im.kept:
        ImageDraw.Draw(tile).rectangle((0, 0, size - 1, size - 1), outline=KEPT_RGB, width=3)
    return tile


# -- verification sheet ----------------------------------------------------------------------------

def verification_png(data: ReportData, thumbs: dict[int, Thumb], folder: str | os.PathLike[str],
                     path: str | os.PathLike[str]) -> Path:
    """Each sampled excluded image (left) beside the kept image nearest to it (right)."""
    from PIL import Image

    pairs = data.pairs
    cols = min(3, max(1, len(pairs)))
    rows = max(1, math.ceil(len(pairs) / cols))
    fig = _figure(4.2 * cols, 2.5 * rows)
    size = 160
    for i, p in enumerate(pairs):
        sheet = Image.new("RGB", (2 * size + 8, size), (255, 255, 255))
        sheet.paste(_tile(p.excluded, thumbs, Path(folder), size), (0, 0))
        sheet.paste(_tile(p.kept, thumbs, Path(folder), size), (size + 8, 0))
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(sheet)
        group = f" · {p.group}" if data.per else ""
        ax.set_title(f"excluded {_short(p.excluded.name)} → kept {_short(p.kept.name)}\n"
                     f"distance {p.distance}{group}", fontsize=8)
        ax.axis("off")
    if not pairs:
        fig.add_subplot().text(0.5, 0.5, "no excluded images to verify", ha="center")
    fig.suptitle("Verification: excluded images beside their nearest kept image (combined distance 0-255)",
                 fontsize=10)
    return _save(fig, path)


def _short(name: str, limit: int = 22) -> str:
    name = name.replace("\n", "␊")
    return name if len(name) <= limit else name[: limit - 1] + "…"


# -- showing ---------------------------------------------------------------------------------------

def has_display() -> bool:
    """A screen to open a picture on: macOS, Windows, or an X11/Wayland session."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_file(path: str | os.PathLike[str]) -> bool:
    """Open a file with the system viewer, without waiting for it, where a display exists."""
    if not has_display():
        return False
    try:
        if sys.platform == "win32":
            os.startfile(str(path))  # type: ignore[attr-defined]
        else:
            cmd = "open" if sys.platform == "darwin" else "xdg-open"
            subprocess.Popen([cmd, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    except OSError:
        return False
    return True
