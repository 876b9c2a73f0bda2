"""Read a large JSON object without holding it: the elements of chosen top-level arrays are
handed out one at a time (json's C decoder on a sliding buffer), other top-level values whole.

MegaDetector and SpeciesNet files of a million images are several hundred MB; json.load would
need several GB of Python objects.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, TextIO

_WS = re.compile(r"[ \t\n\r]*")
_CHUNK = 1 << 20


class JSONStreamError(ValueError):
    """The file is not the JSON object it should be (with the offset where it goes wrong)."""


def stream_object(f: TextIO, arrays: frozenset[str]) -> Iterator[tuple[str, Any, bool]]:
    """(key, value, False) for each top-level member, except that members named in `arrays`
    whose value is a list give (key, element, True) per element (an empty list gives nothing)."""
    r = _Reader(f)
    r.expect("{")
    if r.peek() == "}":
        r.pos += 1
        return
    while True:
        key = r.value()
        if not isinstance(key, str):
            raise JSONStreamError(f"expected a member name at offset {r.offset()}")
        r.expect(":")
        if key in arrays and r.peek() == "[":
            r.pos += 1
            if r.peek() == "]":
                r.pos += 1
            else:
                while True:
                    yield key, r.value(), True
                    c = r.next_char()
                    if c == "]":
                        break
                    if c != ",":
                        raise JSONStreamError(f"expected ',' or ']' at offset {r.offset()}")
        else:
            yield key, r.value(), False
        c = r.next_char()
        if c == "}":
            break
        if c != ",":
            raise JSONStreamError(f"expected ',' or '}}' at offset {r.offset()}")
    r.skip_ws()
    if r.peek() != "":
        raise JSONStreamError(f"extra data after the JSON object at offset {r.offset()}")


class _Reader:
    def __init__(self, f: TextIO) -> None:
        self.f = f
        self.buf = ""
        self.pos = 0
        self.base = 0  # offset of buf[0] in the file
        self.eof = False
        self.dec = json.JSONDecoder()

    def offset(self) -> int:
        return self.base + self.pos

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.f.read(max(_CHUNK, len(self.buf) - self.pos))  # doubles for a large value
        if not data:
            self.eof = True
            return False
        self.base += self.pos
        self.buf = self.buf[self.pos:] + data
        self.pos = 0
        return True

    def skip_ws(self) -> None:
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or not self._fill():
                return

    def peek(self) -> str:
        self.skip_ws()
        return self.buf[self.pos:self.pos + 1]

    def next_char(self) -> str:
        c = self.peek()
        self.pos += 1
        return c

    def expect(self, ch: str) -> None:
        if self.next_char() != ch:
            raise JSONStreamError(f"expected {ch!r} at offset {self.offset() - 1}")

    def value(self) -> Any:
        self.skip_ws()
        while True:
            try:
                v, end = self.dec.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # incomplete in the buffer: read more and retry; at the end it is a real error
                if self._fill():
                    continue
                raise JSONStreamError(f"{exc.msg} at offset {self.base + exc.pos}") from None
            if end == len(self.buf) and not self.eof and not isinstance(v, (dict, list, str)):
                if self._fill():  # a number cut at the buffer's end
                    continue
            self.pos = end
            return v
