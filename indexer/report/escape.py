"""Escaping for the report page: every path, name and label goes through one of these.

What the page shows of a string is its visible form: control characters as their Unicode
pictures, lone surrogates (os.fsdecode of file-name bytes that are not UTF-8) as \\xNN. A name too
long for its caption is shortened by `short_names`, which keeps its end and keeps names apart.
"""
from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable
from pathlib import Path

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
CONTEXT = 2  # characters before the first difference kept when names must be told apart
TAIL = 8     # characters of the end always shown (frame number and extension: "0001.JPG")
MIN_LIMIT = 5


def _picture(m: re.Match[str]) -> str:
    return chr(0x2400 + ord(m.group())) if m.group() != "\x7f" else "\u2421"


def _byte(m: re.Match[str]) -> str:
    """A lone surrogate as the byte it stands for (surrogateescape: U+DC80-U+DCFF are 0x80-0xFF),
    as 'backslashreplace' would write that byte; any other lone surrogate as \\u and its four hex digits."""
    code = ord(m.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def visible(s: str) -> str:
    """Control characters (a newline in a file name) as visible pictures (␊), lone surrogates as
    \\xNN: the result always encodes as UTF-8."""
    return _SURROGATE.sub(_byte, _CONTROL.sub(_picture, s))


def text(value: object) -> str:
    """Element text: &, <, >, quotes escaped; control characters and lone surrogates made visible."""
    return html.escape(visible(str(value)), quote=True)


def attr(value: object) -> str:
    """An attribute value (always written inside double quotes)."""
    return html.escape(visible(str(value)), quote=True)


def title(*lines: object) -> str:
    """A tooltip of several lines: each line escaped like attr(), joined by &#10;."""
    return "&#10;".join(attr(line) for line in lines)


def file_url(path: str) -> str | None:
    """A file:// URL of an absolute path, percent-encoded (so `<`, quotes, newlines are safe; a lone
    surrogate becomes the percent-encoded byte it stands for, os.fsencode's way)."""
    try:
        return Path(path).as_uri()
    except ValueError:
        return None


def shorten(s: str, limit: int, head: int | None = None) -> str:
    """`s` in at most `limit` characters: as it is when it fits, else its first `head` characters
    (default: a third) and its longer end around an ellipsis (the end holds the frame number and
    the extension)."""
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be >= {MIN_LIMIT}, got {limit}")
    if len(s) <= limit:
        return s
    head = (limit - 1) // 3 if head is None else min(head, (limit - 1) // 3)
    return f"{s[:head]}…{s[len(s) - (limit - 1 - head):]}"


def short_names(names: Iterable[str], limit: int) -> dict[str, str]:
    """Each distinct name -> how it is shown, in `limit` characters where it can be (see
    `shorten`; without the start when every name starts alike). Names of one length that would look alike show, between ellipses, each place
    where they differ and their end ("…onA…-01…0(1).JPG"), even when that takes more room:
    different names never share a shown form (unless a name holds an ellipsis itself)."""
    distinct = set(names)
    head = (limit - 1) // 3
    if len(distinct) > 1 and len(os.path.commonprefix(list(distinct))) >= head:
        head = 0  # a start all of them share tells nothing: give its room to the ends
    forms = {n: shorten(n, limit, head) for n in distinct}
    for group in _clashes(forms):
        by_length: dict[int, list[str]] = {}
        for n in group:
            by_length.setdefault(len(n), []).append(n)
        for same in by_length.values():
            if len(same) > 1:
                forms.update(_told_apart(same, limit))
    for group in _clashes(forms):  # still alike (different lengths, or by chance): show them whole
        forms.update({n: n for n in group})
    return forms


def _told_apart(group: list[str], limit: int) -> dict[str, str]:
    """Names of one length, each shown by the places where they differ (with CONTEXT characters
    before each) and as much of their end as fits in `limit` (at least TAIL characters)."""
    size = len(group[0])
    keep = set()
    for i in range(size):
        if len({n[i] for n in group}) > 1:
            keep.update(range(max(0, i - CONTEXT), i + 1))
    form = _kept(group[0], keep, TAIL)
    tail = TAIL + max(0, limit - len(form))
    return {n: _kept(n, keep, tail) for n in group}


def _kept(name: str, keep: set[int], tail: int) -> str:
    """`name` with the characters at `keep` and its last `tail` characters; each run left out
    (of two or more characters) an ellipsis."""
    shown = keep | set(range(max(0, len(name) - tail), len(name)))
    out: list[str] = []
    i = 0
    while i < len(name):
        if i in shown or (i + 1 in shown and i - 1 in shown):  # one character left out: keep it
            out.append(name[i])
            i += 1
            continue
        while i < len(name) and i not in shown:
            i += 1
        out.append("…")
    return "".join(out)


def _clashes(forms: dict[str, str]) -> list[list[str]]:
    """Groups of names shown alike."""
    by_form: dict[str, list[str]] = {}
    for name, form in forms.items():
        by_form.setdefault(form, []).append(name)
    return [names for names in by_form.values() if len(names) > 1]
