"""The report's duplicates and leakage sections (`indexer report --duplicates` / `--across A B`).

Groups of near copies as `indexer duplicates` finds them (the same options and keep rules), each
with its thumbnails, the keeper framed and badged and why it was kept; and with `--across`, the
pairs closer than the bound between two sets, side by side, with the summary.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ..db import Database
from .escape import attr, file_url, text, title, visible
from .records import Thumb

MAX_GROUPS = 200   # groups shown (the count is complete)
MAX_PAIRS = 200    # leakage pairs shown


@dataclass(frozen=True)
class DuplicatesView:
    """What the sections show: the search results, or None where not asked."""

    duplicates: Any = None   # indexer.duplicates.Duplicates
    leakage: Any = None      # indexer.duplicates.Leakage

    def images(self) -> list[tuple[int, str]]:
        """(id, path) of every image that needs a thumbnail, each once."""
        seen: dict[int, str] = {}
        if self.duplicates is not None:
            for g in self.duplicates.groups[:MAX_GROUPS]:
                for m in g.members:
                    seen.setdefault(m.id, m.path)
        if self.leakage is not None:
            for p in self.leakage.pairs[:MAX_PAIRS]:
                seen.setdefault(p.a, p.a_path)
                seen.setdefault(p.b, p.b_path)
        return list(seen.items())

    def sections(self, thumbs: dict[int, Thumb]) -> list[str]:
        out = []
        if self.duplicates is not None:
            out.append(_duplicates(self.duplicates, thumbs))
        if self.leakage is not None:
            out.append(_leakage(self.leakage, thumbs))
        return out


def gather(db: Database, duplicates: dict[str, Any] | None, across: dict[str, Any] | None) -> DuplicatesView:
    """Run the searches asked: `duplicates` holds indexer.duplicates' options (hash, max_distance,
    keep, where, per), `across` indexer.duplicates.across's (a, b, hash, max_distance)."""
    from ..duplicates import across as find_across
    from ..duplicates import duplicates as find_duplicates
    dups = find_duplicates(db, **duplicates) if duplicates is not None else None
    leak = find_across(db, **across) if across else None
    return DuplicatesView(dups, leak)


def _figure(image_id: int, path: str, thumbs: dict[int, Thumb], caption: str, kept: bool = False) -> str:
    t = thumbs.get(image_id)
    src = t.src if t is not None else "thumbs/missing.svg"
    name = visible(PurePosixPath(path).name)
    img = f'<img src="{attr(src)}" alt="{attr(name)}" loading="lazy">'
    url = file_url(path)
    if url:
        img = f'<a href="{attr(url)}">{img}</a>'
    badge = '<span class="badge">kept</span>' if kept else ""
    cls = "k" if kept else "x"
    return (f'<figure class="{cls}" data-id="{image_id}" data-kept="{int(kept)}">{img}{badge}'
            f'<figcaption title="{title(path)}">{text(name)}<br>{caption}</figcaption></figure>')


def _duplicates(d: Any, thumbs: dict[int, Thumb]) -> str:
    bound = ", ".join(f"{h} &lt;= {b}" for h, b in d.max_distance.items())
    what = "byte-identical files" if d.exact else f"near copies ({bound} bits from the group's centre)"
    head = (f'<section id="duplicates" data-groups="{len(d.groups)}" data-redundant="{d.redundant}">'
            f'<h2>Duplicates</h2><p class="legend">{len(d.groups)} groups of {what} among {d.images} images; '
            f'{d.redundant} images could be moved aside with <code>indexer duplicates --move-to DIR</code>. '
            f'The kept image (keep rules: {text(", ".join(d.keep))}) has a green frame; under each thumbnail, '
            'its distance in bits to the group\'s centre (d: dHash, p: pHash, a: aHash).</p>')
    if len(d.groups) > MAX_GROUPS:
        head += f'<p class="legend">showing the first {MAX_GROUPS} of {len(d.groups)} groups</p>'
    parts = [head]
    for g in d.groups[:MAX_GROUPS]:
        figs = []
        for m in g.members:
            cap = f"d{m.dhash_bits} p{m.phash_bits} a{m.ahash_bits} · {m.width}x{m.height}"
            if m.centre:
                cap += " · centre"
            figs.append(_figure(m.id, m.path, thumbs, cap, m.keep))
        why = "byte-identical; " if g.identical else ""
        parts.append(f'<section class="group" data-group="{g.number}" data-keeper="{g.keeper}">'
                     f'<h3>group {g.number}: {len(g.members)} images, {why}kept by {text(g.reason)}</h3>'
                     f'<div class="row">{"".join(figs)}</div></section>')
    parts.append("</section>")
    return "".join(parts)


def _leakage(leak: Any, thumbs: dict[int, Thumb]) -> str:
    bound = ", ".join(f"{h} &lt;= {b}" for h, b in leak.max_distance.items())
    head = (f'<section id="leakage" data-pairs="{len(leak.pairs)}"><h2>Leakage</h2><p class="legend">'
            f'A: {text(leak.a)} ({leak.a_images} images); B: {text(leak.b)} ({leak.b_images} images). '
            f'{len(leak.pairs)} pairs within {bound} bits; {leak.a_leaking} images of A and {leak.b_leaking} of B have '
            f'a near copy on the other side; {leak.same_images} images are in both; {leak.shared_sequences} bursts '
            'have frames in both.</p>')
    if len(leak.pairs) > MAX_PAIRS:
        head += f'<p class="legend">showing the first {MAX_PAIRS} of {len(leak.pairs)} pairs</p>'
    parts = [head, '<div class="pairs">']
    for p in leak.pairs[:MAX_PAIRS]:
        note = "the same image" if p.same_image else ("the same burst" if p.same_sequence else "")
        bits = f"d{p.bits['dhash']} p{p.bits['phash']} a{p.bits['ahash']}"
        parts.append(f'<div class="pair" data-a="{p.a}" data-b="{p.b}"><div class="two">'
                     f'{_figure(p.a, p.a_path, thumbs, "A")}{_figure(p.b, p.b_path, thumbs, "B")}</div>'
                     f'<p>{bits}{" · " + note if note else ""}</p></div>')
    parts.append("</div></section>")
    return "".join(parts)
