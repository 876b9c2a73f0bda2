"""Escaping for the report page: every path, name and label goes through one of these."""
from __future__ import annotations

import html
import re
from pathlib import Path

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _visible(s: str) -> str:
    """Control characters (a newline in a file name) as their visible Unicode pictures: ␊."""
    return _CONTROL.sub(lambda m: chr(0x2400 + ord(m.group())) if m.group() != "\x7f" else "\u2421", s)


def text(value: object) -> str:
    """Element text: &, <, >, quotes escaped; control characters made visible."""
    return html.escape(_visible(str(value)), quote=True)


def attr(value: object) -> str:
    """An attribute value (always written inside double quotes)."""
    return html.escape(_visible(str(value)), quote=True)


def title(*lines: object) -> str:
    """A tooltip of several lines: each line escaped like attr(), joined by &#10;."""
    return "&#10;".join(attr(line) for line in lines)


def file_url(path: str) -> str | None:
    """A file:// URL of an absolute path, percent-encoded (so `<`, quotes, newlines are safe)."""
    try:
        return Path(path).as_uri()
    except ValueError:
        return None
