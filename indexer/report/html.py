"""One self-contained page: inline CSS and SVG, thumbnails as relative files, no script.

Every path, name, label and note is escaped (escape.py). Grids, pairs and outliers carry
data-* attributes (image id, kept mark) so tests and scripts can read the page back.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .chart import bar_chart
from .escape import attr, file_url, short_names, text, title, visible
from .records import GRID_LIMIT, NO_CLASS, SMALL_BUCKET, BucketView, GroupView, ImageInfo, Pair, ReportData, Thumb

NAME_CHARS = 16  # characters of a file name that fit under a thumbnail (108 px at 10 px, DejaVu Sans too)

DISTANCE_HELP = ("The distance is indexer's combined distance, 0-255: differing bits of dHash + aHash + pHash, plus brightness steps (48 "
                 "levels), plus 16 when one frame is gray and the other colour. Frames of one burst are "
                 "typically 0-12 apart, unrelated frames 90-130.")

CSS = """
:root{--kept:#2e7d32;--muted:#5f6368;--line:#dadce0;--bg:#fafafa}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#202124;
 margin:0;background:#fff}
main{max-width:1240px;margin:0 auto;padding:0 20px 40px}
header{background:#263238;color:#fff;padding:18px 20px}
header h1{margin:0 auto;max-width:1200px;font-size:22px}
header p{margin:4px auto 0;max-width:1200px;color:#cfd8dc;font-size:13px;word-break:break-all}
nav{margin:16px 0;padding:10px 14px;background:var(--bg);border:1px solid var(--line);border-radius:6px;
 font-size:14px}
nav a{margin-right:14px;white-space:nowrap}
h2{margin:32px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line);font-size:20px}
h3{margin:22px 0 6px;font-size:17px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:14px}
th,td{border-bottom:1px solid var(--line);padding:3px 10px 3px 0;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.path{word-break:break-all;max-width:640px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:170px;background:var(--bg)}
.card b{display:block;font-size:22px}
.card span{color:var(--muted);font-size:13px}
.share{display:flex;height:10px;width:160px;margin-top:6px;background:#c9ccd1;border-radius:3px;overflow:hidden}
.share i{display:block;background:#455a64}
.muted{color:var(--muted)}
.note{background:#fff8e1;border-left:4px solid #f9a825;padding:6px 10px;margin:6px 0;font-size:14px}
.chart{max-width:100%;height:auto;font:12px system-ui,sans-serif}
.chart .lbl{fill:#202124}.chart .num{fill:#5f6368}
.buckets{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
details.bucket{border:1px solid var(--line);border-radius:6px;padding:4px 10px 10px;flex:0 1 auto;max-width:100%}
details.bucket summary{cursor:pointer;padding:4px 0;font-size:14px}
.grid{display:grid;grid-template-columns:repeat(var(--cols,10),minmax(0,108px));gap:6px;margin-top:6px}
.pack{display:grid;grid-template-columns:repeat(auto-fill,108px);gap:6px;margin:8px 0}
.pack.fixed{grid-template-columns:repeat(var(--cols,1),108px)}
.grid.cell{display:contents}
figure .bk{position:absolute;top:5px;right:5px;background:#263238;color:#fff;font-size:10px;padding:1px 4px;
 border-radius:3px;opacity:.85}
.tinies{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0;align-items:flex-start}
.group.tiny{border:1px solid var(--line);border-radius:6px;padding:6px 8px 0}
.group.tiny h3{margin:0;font-size:14px;width:0;min-width:100%;overflow-wrap:anywhere}
.group.tiny .pack{margin:4px 0 6px}
.row{display:grid;grid-template-columns:repeat(auto-fill,minmax(108px,1fr));gap:6px}
figure{margin:0;position:relative;font-size:11px;line-height:1.25;min-width:0}
figure img{display:block;width:100%;aspect-ratio:4/3;object-fit:contain;background:#37474f;border-radius:3px;
 border:3px solid transparent}
figure.k img{border-color:var(--kept)}
figure.x img{opacity:.78}
figure .badge{position:absolute;top:5px;left:5px;background:var(--kept);color:#fff;font-size:10px;
 font-weight:600;padding:1px 5px;border-radius:3px}
figcaption{font-size:10px;overflow-wrap:anywhere;color:var(--muted);margin-top:2px}
figure.ph figcaption{color:#a94442}
figcaption .cls{color:#202124}
.pairs{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:12px}
.pair{border:1px solid var(--line);border-radius:6px;padding:8px;background:var(--bg)}
.pair .two{display:grid;grid-template-columns:1fr 1fr;gap:6px}
.pair p{margin:6px 0 0;font-size:13px}
.legend{font-size:13px;color:var(--muted)}
"""


@dataclass(frozen=True)
class Shown:
    """What the thumbnails of a part of the page need: their files, and how their names are shown."""

    thumbs: dict[int, Thumb]
    names: dict[str, str]  # visible file name -> caption, apart from the other names of this part

    def among(self, images: Iterable[ImageInfo]) -> Shown:
        """For a part of the page showing these images (a group, the pairs, an outlier row): their
        names shortened so that no two of them look alike."""
        return Shown(self.thumbs, short_names((visible(im.name) for im in images), NAME_CHARS))

    def name(self, im: ImageInfo) -> str:
        """The caption's file name, escaped: shortened by keeping its end and what sets it apart."""
        shown = visible(im.name)
        return text(self.names.get(shown, shown))


def render(data: ReportData, thumbs: dict[int, Thumb], pngs: Sequence[str] = (), extra: Sequence[str] = ()) -> str:
    """The whole page as one string; `extra` sections (duplicates, leakage) go after the outliers."""
    page = Shown(thumbs, {})
    body = [_header(data), "<main>", _nav(data, bool(pngs)), _notes(data.notes), _overview(data),
            _selection(data), _groups(data, page), _pairs(data, page), _outliers(data, page), *extra,
            _pngs(pngs), "</main>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>indexer report: {text(data.overview.db)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(b for b in body if b) + "\n</body>\n</html>\n")


# -- page parts ------------------------------------------------------------------------------------

def _header(data: ReportData) -> str:
    o = data.overview
    bits = [f"database {text(o.db)}", f"made {text(data.generated_at)}", f"{o.images} images"]
    if data.per:
        bits.append(f"--per {text(data.per)}")
    if data.where:
        bits.append(f"--where {text(data.where)}")
    return f"<header><h1>indexer report</h1><p>{' · '.join(bits)}</p></header>"


def _nav(data: ReportData, pngs: bool) -> str:
    links = ['<a href="#overview">Overview</a>']
    if data.selection:
        links.append('<a href="#selection">Selection</a>')
    links.append(f'<a href="#groups">Groups ({len(data.groups)})</a>')
    if data.selection:
        links.append(f'<a href="#pairs">Verification pairs ({len(data.pairs)})</a>')
    links.append('<a href="#outliers">Outliers</a>')
    if pngs:
        links.append('<a href="#pngs">PNG charts</a>')
    if 1 < len(data.groups) <= 60:
        links.append("<br>" + " ".join(f'<a href="#g{i}">{text(g.label)}</a>' for i, g in enumerate(data.groups)))
    return f"<nav>{' '.join(links)}</nav>"


def _notes(notes: list[str]) -> str:
    return "".join(f'<p class="note">{text(n)}</p>' for n in notes)


def _card(value: object, label: str, share: float | None = None) -> str:
    bar = f'<div class="share"><i style="width:{100 * share:.1f}%"></i></div>' if share is not None else ""
    return f'<div class="card"><b>{text(value)}</b><span>{label}</span>{bar}</div>'


def _stamp(utc: str | None) -> str:
    """2026-11-22T20:18:02.686412Z -> 2026-11-22 20:18:02 UTC."""
    return f"{utc[:19].replace('T', ' ')} UTC" if utc else "never completed"


def _time(iso: str | None) -> str:
    return (iso or "").replace("T", " ")


def _pct(a: int, n: int) -> str:
    return f"{100 * a / n:.0f}%" if n else "-"


def _overview(data: ReportData) -> str:
    o = data.overview
    n = o.images
    s = o.states
    span = f"{text(_time(o.first))} to {text(_time(o.last))}" if o.first else "no EXIF capture times"
    cards = [
        _card(s.get("indexed", 0), "indexed"), _card(s.get("failed", 0), "failed"),
        _card(s.get("missing", 0), "missing (gone from disk)"),
        _card(n, "images in this report" + (" (--where)" if data.where else "")),
        _card(_pct(o.colour, n), f"colour ({o.colour}) vs gray ({o.gray})", o.colour / n if n else 0),
        _card(_pct(o.day, n), f"day 06-20h ({o.day}) vs night ({o.night})"
              + (f", {o.no_time} no time" if o.no_time else ""), o.day / n if n else 0),
    ]
    parts = ['<section id="overview"><h2>Overview</h2>', f'<div class="cards" data-states="{attr(_states(s))}">',
             *cards, "</div>", f"<p>Capture times (EXIF, camera clock): {span}.</p>",
             "<h3>Roots</h3><table><tr><th>root</th><th class=n>indexed</th><th class=n>failed</th>"
             "<th class=n>missing</th><th>last complete scan</th></tr>"]
    for r in o.roots:
        parts.append(f'<tr><td class="path">{text(r.path)}</td><td class=n>{r.indexed}</td><td class=n>{r.failed}'
                     f'</td><td class=n>{r.missing}</td><td>{text(_stamp(r.last_scan_at))}</td></tr>')
    parts.append("</table>")
    parts.append(_counts(f"Cameras ({len(o.cameras)})", "camera (EXIF make and model)", o.cameras, "cameras"))
    if o.labels:
        classes = sum(1 for k, _ in o.labels if k != NO_CLASS)
        parts.append(_counts(f"Classes ({classes})", "class (image_view.class)", o.labels, "classes",
                             open_=len(o.labels) <= 30, scores=o.label_scores))
    parts.append(_counts(f"Folders ({len(o.folders)})", "folder", o.folders, "folders", open_=len(o.folders) <= 30))
    parts.append(_failed(data))
    parts.append("</section>")
    return "".join(parts)


def _states(s: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in s.items())


def _counts(heading: str, what: str, rows: list[tuple[str, int]], ident: str, open_: bool = True,
            scores: dict[str, tuple[float, float, int]] | None = None) -> str:
    """A table of counts; with `scores` (class -> mean, lowest, scored images) a score column too."""
    head = '<th class=n>score: mean (lowest)</th>' if scores else ""
    table = [f'<table id="{ident}"><tr><th>{what}</th><th class=n>images</th>{head}</tr>']
    for k, v in rows:
        cell = ""
        if scores:
            s = scores.get(k)
            cell = (f'<td class=n title="{s[2]} scored images">{s[0]:.2f} ({s[1]:.2f})</td>' if s
                    else "<td class=n>-</td>")
        table.append(f'<tr><td class="path">{text(k)}</td><td class=n>{v}</td>{cell}</tr>')
    table.append("</table>")
    body = "".join(table)
    if open_:
        return f"<h3>{heading}</h3>{body}"
    return f"<h3>{heading}</h3><details><summary>show all {len(rows)}</summary>{body}</details>"


def _failed(data: ReportData) -> str:
    o = data.overview
    total = o.states.get("failed", 0)
    if not total:
        return "<h3>Failed files</h3><p class=muted>none</p>"
    rows = [f'<tr class="failed"><td class="path">{text(f.path)}</td><td>{text(f.error)}</td>'
            f'<td class=n>{f.attempts}</td></tr>' for f in o.failed]
    more = f"<p class=muted>… and {total - len(o.failed)} more (indexer status --errors)</p>" \
        if total > len(o.failed) else ""
    return (f'<h3>Failed files ({total})</h3><table id="failed"><tr><th>file</th><th>why</th>'
            f'<th class=n>attempts</th></tr>{"".join(rows)}</table>{more}')


def _selection(data: ReportData) -> str:
    sel = data.selection
    if sel is None:
        return ""
    total = sum(g.size for g in data.groups)
    what = f"saved selection <b>{text(sel.name)}</b>" if sel.name else "a selection made for this report"
    target = ", ".join(_option(k, v) for k, v in (sel.params.get("target") or {}).items())
    rows = [(g.label, g.kept, g.excluded) for g in data.groups]
    chart = bar_chart(rows, selection=True, caption="kept vs excluded per group") if len(rows) > 1 else ""
    return (f'<section id="selection"><h2>Selection</h2><p data-kept="{sel.members}">{what}: '
            f"<b>{sel.members}</b> of {total} images kept ({_pct(sel.members, total)}), method "
            f"{text(sel.method)}, seed {sel.seed}{', ' + text(target) if target else ''}.</p>{chart}</section>")


def _option(key: str, value: object) -> str:
    """A stored target as the option that asked for it: {"count": 3} -> --target 3."""
    name = {"count": "target"}.get(key, key)
    return f"--{name}" if value is True else f"--{name} {value}"


def _groups(data: ReportData, page: Shown) -> str:
    out = [f'<section id="groups"><h2>Groups and buckets</h2><p class="legend">Each group is split into '
           "smartdownsample's 32 buckets (colour or gray by the stored is_gray, brightness, two dHash structure bits, the aHash "
           f"top-left cell). Each grid shows up to {GRID_LIMIT} images of a bucket in natural path order. "
           f"Buckets of up to {SMALL_BUCKET} images share one grid, each thumbnail tagged with its bucket number "
           "(a group of only such buckets has no chart), and groups that small sit side by side"
           + ("; kept images have a green frame and a <em>kept</em> badge" if data.selection else "")
           + ". Click a thumbnail to open the original.</p>"]
    if not data.groups:
        out.append("<p class=muted>No image matches.</p>")
    tiny: list[str] = []  # consecutive groups of at most SMALL_BUCKET images, drawn in one row
    for i, g in enumerate(data.groups):
        if g.size <= SMALL_BUCKET:
            tiny.append(_tiny_group(i, g, data, page))
            continue
        out.append(_tiny_row(tiny))
        tiny = []
        out.append(_group(i, g, data, page))
    out.append(_tiny_row(tiny))
    out.append("</section>")
    return "".join(out)


def _tiny_row(groups: list[str]) -> str:
    return f'<div class="tinies">{"".join(groups)}</div>' if groups else ""


def _tiny_group(i: int, g: GroupView, data: ReportData, page: Shown) -> str:
    """A group of a few images: a small box of its thumbnails, beside the next such group."""
    page = page.among(im for b in g.buckets for im in b.shown)
    name = text(g.label) if data.per else "all images"
    kept = f", {g.kept} kept" if data.selection else ""
    return (f'<section class="group tiny" id="g{i}" data-group="{attr(g.label)}"><h3>{name} '
            f'<span class="muted">· {_n(g.size, "image")}{kept}</span></h3>'
            f"{_pack(g, g.buckets, data, page, cols=g.size)}</section>")


def _group(i: int, g: GroupView, data: ReportData, page: Shown) -> str:
    """A group: a chart of its buckets (when one is large), a box per large bucket, and the small
    buckets packed in one grid."""
    sel = data.selection is not None
    page = page.among(im for b in g.buckets for im in b.shown)
    head = f"{_n(g.size, 'image')} in {_n(len(g.buckets), 'bucket')}" + (f", {g.kept} kept" if sel else "")
    name = text(g.label) if data.per else "all images"
    large = [b for b in g.buckets if b.size > SMALL_BUCKET]
    small = [b for b in g.buckets if b.size <= SMALL_BUCKET]
    rows = [(f"{b.key:>2} {b.meaning}", b.kept, b.excluded) for b in g.buckets]
    chart = bar_chart(rows, selection=sel, caption=f"{g.label}: images per bucket") if large else ""
    boxes = "".join(_bucket_box(g, b, sel, page) for b in large)
    return (f'<section class="group" id="g{i}" data-group="{attr(g.label)}"><h3>{name} '
            f'<span class="muted">· {head}</span></h3>{chart}'
            + (f'<div class="buckets">{boxes}</div>' if boxes else "")
            + _pack(g, small, data, page) + "</section>")


def _bucket_box(g: GroupView, b: BucketView, sel: bool, page: Shown) -> str:
    """A bucket of more than SMALL_BUCKET images: a box of its own with a grid of up to GRID_LIMIT."""
    shown = _n(b.size, "image")
    if len(b.shown) < b.size:
        among = sum(1 for im in b.shown if im.kept)
        shown = f"showing {len(b.shown)} of {b.size}" + (f" (all {b.kept} kept among them)"
                                                         if sel and b.kept and among == b.kept else "")
    kept = f", {b.kept} kept" if sel else ""
    return (f'<details class="bucket" open><summary>bucket {b.key} · {text(b.meaning)} · {shown}{kept}'
            f'</summary><div class="grid" style="--cols:{max(1, min(10, len(b.shown)))}" '
            f'data-group="{attr(g.label)}" data-bucket="{b.key}" data-size="{b.size}">'
            f'{"".join(_figure(im, page, sel) for im in b.shown)}</div></details>')


def _pack(g: GroupView, buckets: list[BucketView], data: ReportData, page: Shown, cols: int | None = None) -> str:
    """Small buckets in one grid, one after another in the group's bucket order: each thumbnail
    tagged with its bucket (the meaning in its tooltip). `cols`: fixed columns, else as many as fit."""
    if not buckets:
        return ""
    sel = data.selection is not None
    parts = []
    for b in buckets:
        kept = f", {b.kept} kept" if sel else ""
        tip = title(f"bucket {b.key} · {b.meaning}", _n(b.size, "image") + kept)
        tag = f'<span class="bk" title="{tip}">{b.key}</span>'
        parts.append(f'<div class="grid cell" data-group="{attr(g.label)}" data-bucket="{b.key}" '
                     f'data-size="{b.size}">{"".join(_figure(im, page, sel, tag=tag) for im in b.shown)}</div>')
    style = f' style="--cols:{cols}"' if cols else ""
    return f'<div class="pack{" fixed" if cols else ""}"{style}>{"".join(parts)}</div>'


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _figure(im: ImageInfo, page: Shown, sel: bool, caption: str | None = None, tag: str = "") -> str:
    t = page.thumbs.get(im.id)
    cls = ["k" if im.kept else "x"] if sel and im.kept is not None else []
    if t is None or not t.ok:
        cls.append("ph")
    size = f"{im.width}x{im.height}" if im.width else "size unknown"
    stats = f"brightness {_num(im.brightness)} · sharpness {_num(im.sharpness)} · {size}"
    score = f" {im.score:.2f}" if im.label is not None and im.score is not None else ""
    extra = [f"class {im.label}{score}"] if im.label is not None else []
    if im.captured_at:
        extra.append(f"taken {_time(im.captured_at)}")
    if t is not None and t.error:
        extra.append(f"not shown: {t.error}")
    tip = title(im.rel_path, stats, *extra)
    src = t.src if t is not None else "thumbs/missing.svg"
    img = f'<img src="{attr(src)}" alt="{attr(im.name)}" loading="lazy">'
    url = file_url(im.path)
    if url:
        img = f'<a href="{attr(url)}">{img}</a>'
    badge = '<span class="badge">kept</span>' if sel and im.kept else ""
    cap = caption if caption is not None else page.name(im)
    if im.label is not None:
        cap += f'<br><span class="cls">{text(im.label)}{score}</span>'
    if t is not None and not t.ok:
        cap += f"<br>{text(t.error or 'no thumbnail')}"
    kept_attr = f' data-kept="{int(bool(im.kept))}"' if sel and im.kept is not None else ""
    return (f'<figure class="{" ".join(cls)}" data-id="{im.id}"{kept_attr}>{img}{badge}{tag}'
            f'<figcaption title="{tip}">{cap}</figcaption></figure>')


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _pairs(data: ReportData, page: Shown) -> str:
    if data.selection is None:
        return ""
    head = ('<section id="pairs"><h2>Verification pairs</h2><p class="legend">A sample of excluded images '
            f"(left), each beside the kept image of its group nearest to it (right). {DISTANCE_HELP}</p>")
    if not data.pairs:
        return head + "<p class=muted>No excluded image to show.</p></section>"
    page = page.among(im for p in data.pairs for im in (p.excluded, p.kept))
    cards = [_pair(p, page, bool(data.per)) for p in data.pairs]
    return head + f'<div class="pairs">{"".join(cards)}</div></section>'


def _pair(p: Pair, page: Shown, grouped: bool) -> str:
    group = f" · {text(p.group)}" if grouped else ""
    cos = f' data-cosine="{p.cosine:.4f}"' if p.cosine is not None else ""
    what = f"cosine distance <b>{p.cosine:.3f}</b> (hashes {p.distance})" if p.cosine is not None \
        else f"distance <b>{p.distance}</b>"
    return (f'<div class="pair" data-excluded="{p.excluded.id}" data-nearest="{p.kept.id}" '
            f'data-distance="{p.distance}"{cos}><div class="two">{_figure(p.excluded, page, True)}'
            f"{_figure(p.kept, page, True)}</div><p>{what}{group}</p></div>")


def _outliers(data: ReportData, page: Shown) -> str:
    o = data.outliers
    sel = data.selection is not None
    parts = ['<section id="outliers"><h2>Outliers</h2><p class="legend">By the statistics stored at scan time: '
             "mean gray level (brightness 0-255) and sharpness (variance of the Laplacian; low means blurred).</p>"]
    for key, heading, attr_name in (("darkest", "Darkest", "brightness"), ("brightest", "Brightest", "brightness"),
                                    ("blurriest", "Blurriest", "sharpness")):
        ims: list[ImageInfo] = getattr(o, key)
        row = page.among(ims)
        figs = "".join(_figure(im, row, sel, f"{row.name(im)}<br>{attr_name} {_num(getattr(im, attr_name))}")
                       for im in ims)
        parts.append(f'<h3>{heading}</h3><div class="row" data-outliers="{key}">{figs}</div>')
    common = f"{o.common_size[0]}x{o.common_size[1]} ({o.common_size[2]} images)" if o.common_size else "-"
    parts.append(f"<h3>Odd sizes</h3><p>Most common size: {text(common)}.</p>")
    if not o.odd_sizes:
        parts.append("<p class=muted>No odd sizes: every width x height is held by at least 10% of the "
                     "images or is the most common one.</p>")
    for s in o.odd_sizes:
        row = page.among(s.examples)
        figs = "".join(_figure(im, row, sel) for im in s.examples)
        parts.append(f"<p>{s.width}x{s.height}: {_n(s.count, 'image')}</p>"
                     f'<div class="row" data-outliers="size-{s.width}x{s.height}">{figs}</div>')
    parts.append("</section>")
    return "".join(parts)


def _pngs(pngs: Sequence[str]) -> str:
    if not pngs:
        return ""
    items = "".join(f'<p><a href="{attr(p)}">{text(p)}</a><br><img src="{attr(p)}" alt="{attr(p)}" '
                    'style="max-width:100%" loading="lazy"></p>' for p in pngs)
    return f'<section id="pngs"><h2>PNG charts</h2>{items}</section>'
