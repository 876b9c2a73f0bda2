"""Thumbnails for a report: the scan's reduced decode, in a pool of spawned processes, cached.

A thumbnail is `thumbs/<id>-<px>-<size>-<mtime_ns>.jpg` in the report folder, named by the
image id, the thumbnail size and the source file's size and mtime as stat() gives them now: a
re-run reuses it, a changed file gets a new one (the old one is deleted). Each file is written to
a temporary name and renamed, so an interrupted run never leaves a half thumbnail to be trusted.
A source that is missing or cannot be decoded gets a placeholder (`thumbs/missing.svg`,
`thumbs/unreadable.svg`) and its reason, never an exception.
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from ..features import describe_error
from ..pipeline import spawn_pool, stop_pool
from ..progress import Progress
from .records import Thumb, ThumbStats

log = logging.getLogger(__name__)

THUMBS = "thumbs"
QUALITY = 80
CHUNK = 16            # thumbnails per task
IN_PROCESS = 256      # fewer jobs than this are done here: starting workers costs ~0.5 s each
PLACEHOLDERS = {
    "missing": ("file missing", "#8a6d3b"),
    "unreadable": ("cannot read", "#a94442"),
}


Box = tuple[str, float, float, float, float]  # category, x, y, w, h (normalized, top left origin)
BOX_COLOURS = {"animal": (46, 204, 64), "person": (255, 65, 54), "human": (255, 65, 54), "vehicle": (0, 116, 217)}


@dataclass(frozen=True)
class ThumbJob:
    id: int
    source: str
    dest: str
    px: int
    boxes: tuple[Box, ...] = ()


@dataclass(frozen=True)
class ThumbResult:
    id: int
    error: str | None  # None: written


# -- the worker side (pure: paths in, files and results out) ---------------------------------------

def make_thumbnail(source: str, dest: str, px: int, boxes: Sequence[Box] = ()) -> None:
    """Reduce-decode `source` (as scan does: never a full decode of a large JPEG), turn it upright,
    fit it in px x px, draw `boxes` (detections) on that small copy and write it as a JPEG to
    `dest` (atomically). The source file is only read. Raises on unreadable input."""
    from PIL import Image, ImageOps

    from ..features import reduce_decode

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(source) as im:
            small = reduce_decode(im)
            small = ImageOps.exif_transpose(small) or small
            if small.mode not in ("RGB", "L"):
                small = _to_rgb(small)
            small.thumbnail((px, px), Image.Resampling.BILINEAR, reducing_gap=2.0)
            if boxes:
                small = _draw_boxes(small, boxes)
            tmp = f"{dest}.{os.getpid()}.tmp"
            try:
                small.save(tmp, "JPEG", quality=QUALITY)
                os.replace(tmp, dest)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise


def _draw_boxes(im: object, boxes: Sequence[Box]) -> object:
    from PIL import Image, ImageDraw

    assert isinstance(im, Image.Image)
    im = im.convert("RGB")
    draw = ImageDraw.Draw(im)
    w, h = im.size
    for cat, x, y, bw, bh in boxes:
        colour = BOX_COLOURS.get(cat, (255, 220, 0))  # annotations of a species: yellow
        draw.rectangle([x * w, y * h, (x + bw) * w - 1, (y + bh) * h - 1], outline=colour, width=2)
    return im


def _to_rgb(im: object) -> object:
    from PIL import Image

    assert isinstance(im, Image.Image)
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        import numpy as np

        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a / top * 255.0, 0, 255).astype(np.uint8), "L")
    if im.mode in ("P", "PA", "RGBA", "LA"):
        return im.convert("RGBA").convert("RGB")
    return im.convert("RGB")


def make_many(jobs: list[ThumbJob]) -> list[ThumbResult]:
    """Worker entry point: one result per job, never raises for a bad file."""
    out = []
    for job in jobs:
        try:
            make_thumbnail(job.source, job.dest, job.px, job.boxes)
            out.append(ThumbResult(job.id, None))
        except Exception as exc:  # any decoder error is this file's placeholder, not the report's failure
            out.append(ThumbResult(job.id, describe_error(exc)))
    return out


# -- the parent side -------------------------------------------------------------------------------

def thumbnails(out_dir: str | os.PathLike[str], images: Sequence[tuple[int, str]], *, px: int = 160,
               workers: int | None = None, progress: bool | None = None,
               min_parallel: int = IN_PROCESS, boxes: dict[int, tuple[Box, ...]] | None = None
               ) -> tuple[dict[int, Thumb], ThumbStats]:
    """A thumbnail (or placeholder) for each (image id, source path), made or reused under
    out_dir/thumbs; {id: Thumb with its src relative to out_dir} and what was done. Fewer than
    `min_parallel` thumbnails to make are made in this process. Images with `boxes` get them
    drawn on the thumbnail (its name then carries a digest of the boxes)."""
    if px < 16:
        raise ValueError(f"thumbnail size must be at least 16 px, got {px}")
    started = time.monotonic()
    folder = Path(out_dir) / THUMBS
    folder.mkdir(parents=True, exist_ok=True)
    existing = _listing(folder)
    found: dict[int, Thumb] = {}
    jobs: list[ThumbJob] = []
    keep: set[str] = set()
    for image_id, source in images:
        if image_id in found:
            continue
        try:
            st = os.stat(source)
        except FileNotFoundError:
            found[image_id] = _placeholder(folder, "missing", "file not found")
            continue
        except OSError as exc:
            found[image_id] = _placeholder(folder, "unreadable", describe_error(exc))
            continue
        drawn = (boxes or {}).get(image_id, ())
        mark = f"-b{_digest(drawn)}" if drawn else ""
        name = f"{image_id}-{px}-{st.st_size}-{st.st_mtime_ns}{mark}.jpg"
        keep.add(name)
        found[image_id] = Thumb(f"{THUMBS}/{name}", True)
        if name not in existing:
            jobs.append(ThumbJob(image_id, source, str(folder / name), px, drawn))
    bar = Progress("thumbnails", enabled=progress)
    bar.set_total(len(jobs))
    try:
        results = _run(jobs, workers, min_parallel, bar.update)
    finally:
        bar.close()
    for r in results:
        if r.error is not None:
            found[r.id] = _placeholder(folder, "unreadable", r.error)
    made = sum(1 for r in results if r.error is None)
    placeholders = sum(1 for t in found.values() if not t.ok)
    removed = _prune(folder, existing, keep, px)
    return found, ThumbStats(made, len(found) - made - placeholders, placeholders, removed,
                             round(time.monotonic() - started, 3))


def _digest(boxes: tuple[Box, ...]) -> str:
    import hashlib
    return hashlib.sha1(repr(boxes).encode("utf-8")).hexdigest()[:10]


def _listing(folder: Path) -> set[str]:
    with os.scandir(folder) as it:
        return {e.name for e in it}


def _placeholder(folder: Path, kind: str, error: str) -> Thumb:
    """The shared placeholder image of this kind (written once), with this image's reason."""
    text, colour = PLACEHOLDERS[kind]
    path = folder / f"{kind}.svg"
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="160" height="120" viewBox="0 0 160 120">'
           f'<rect width="160" height="120" fill="#f4f1ea" stroke="{colour}" stroke-width="2" '
           f'stroke-dasharray="6 4"/><text x="80" y="66" font-family="sans-serif" font-size="15" '
           f'text-anchor="middle" fill="{colour}">{text}</text></svg>\n')
    try:
        current = path.read_text(encoding="utf-8")
    except OSError:
        current = None
    if current != svg:
        path.write_text(svg, encoding="utf-8")
    return Thumb(f"{THUMBS}/{kind}.svg", False, error)


def _prune(folder: Path, existing: set[str], keep: set[str], px: int) -> int:
    """Delete thumbnails of this size made from an earlier version of a file now shown, and
    temporary files left by an interrupted run. Thumbnails of images not in this report stay."""
    current = {n.split("-", 1)[0] for n in keep}
    removed = 0
    for name in existing:
        parts = name.split("-")
        stale = (name.endswith(".tmp")
                 or (len(parts) in (4, 5) and parts[1] == str(px) and parts[0] in current and name not in keep))
        if stale:
            try:
                (folder / name).unlink()
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def _run(jobs: list[ThumbJob], workers: int | None, min_parallel: int,
         advance: Callable[[int], None]) -> list[ThumbResult]:
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(jobs) < max(1, min_parallel):
        out: list[ThumbResult] = []
        for i in range(0, len(jobs), CHUNK):
            out += make_many(jobs[i:i + CHUNK])
            advance(len(jobs[i:i + CHUNK]))
        return out
    chunks = [jobs[i:i + CHUNK] for i in range(0, len(jobs), CHUNK)]
    workers = min(workers, len(chunks))
    ex = spawn_pool(workers)
    results: list[ThumbResult] = []
    pending: dict[Future[list[ThumbResult]], list[ThumbJob]] = {}
    try:
        todo = iter(chunks)
        while True:
            for chunk in todo:
                try:
                    pending[ex.submit(make_many, chunk)] = chunk
                except BrokenProcessPool:  # a worker died: what is left gets placeholders
                    results += _crashed(chunk)
                    advance(len(chunk))
                    continue
                if len(pending) >= workers * 4:
                    break
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                chunk = pending.pop(fut)
                results += _collect(fut, chunk)
                advance(len(chunk))
    except BaseException:
        stop_pool(ex)
        raise
    ex.shutdown(wait=True)
    return results


def _collect(fut: Future[list[ThumbResult]], chunk: list[ThumbJob]) -> list[ThumbResult]:
    """A chunk's results, or placeholders for all of it when its worker died (a decoder crash;
    redoing the files here could take the report down with it)."""
    try:
        return fut.result()
    except BrokenProcessPool:
        return _crashed(chunk)


def _crashed(chunk: list[ThumbJob]) -> list[ThumbResult]:
    log.warning("a thumbnail worker process died: %d placeholders", len(chunk))
    return [ThumbResult(j.id, "the image decoder crashed its worker process") for j in chunk]
