"""An inline SVG bar chart of kept vs excluded images per row (bucket or group): no script, no
external file, every label escaped."""
from __future__ import annotations

from collections.abc import Sequence

from .escape import attr, short_names, text, visible

KEPT = "#2e7d32"
EXCLUDED = "#c9ccd1"
IMAGES = "#5c7cfa"     # bar colour when no selection is shown
ROW = 20               # px per bar
LABEL = 400            # px for the row labels, at most
CHAR = 7.4             # px per label character (12 px sans-serif, wide ones included)
BAR = 420              # px for the longest bar
LABEL_CHARS = 52       # characters of a row label that fit in LABEL px; longer ones lose their middle


def bar_chart(rows: Sequence[tuple[str, int, int]], *, selection: bool, caption: str) -> str:
    """rows: (label, kept, excluded). With `selection`, each bar is kept (dark) then excluded
    (light); without, one bar of all images. Numbers are printed at the end of each bar, and
    each bar has a tooltip (an SVG <title>)."""
    top = 26
    height = top + ROW * len(rows) + 6
    labels = short_names((visible(r[0]) for r in rows), LABEL_CHARS)
    label_w = int(min(LABEL, 16 + CHAR * max((len(labels[visible(r[0])]) for r in rows), default=8)))
    width = label_w + BAR + 110
    biggest = max((k + e for _, k, e in rows), default=0) or 1
    scale = BAR / biggest
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{attr(caption)}">',
           f"<title>{text(caption)}</title>"]
    if selection:
        out.append(_legend([(KEPT, "kept"), (EXCLUDED, "excluded")], label_w))
    else:
        out.append(_legend([(IMAGES, "images")], label_w))
    for i, (label, kept, excluded) in enumerate(rows):
        y = top + i * ROW
        total = kept + excluded
        tip = f"{label}: {kept} kept, {excluded} excluded of {total}" if selection else f"{label}: {total} images"
        out.append(f'<g><title>{text(tip)}</title>')
        out.append(f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end" class="lbl">{text(labels[visible(label)])}</text>')
        x: float = label_w
        parts = [(kept, KEPT), (excluded, EXCLUDED)] if selection else [(total, IMAGES)]
        for n, colour in parts:
            w = n * scale
            if n:
                out.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1):.1f}" height="{ROW - 6}" '
                           f'fill="{colour}"/>')
            x += w
        figure = f"{kept} / {total}" if selection else f"{total}"
        out.append(f'<text x="{x + 6:.1f}" y="{y + 14}" class="num">{text(figure)}</text></g>')
    out.append("</svg>")
    return "".join(out)


def _legend(items: list[tuple[str, str]], x: int) -> str:
    parts = []
    for colour, name in items:
        parts.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{x + 17}" y="16" class="num">{name}</text>')
        x += 95
    return "".join(parts)

