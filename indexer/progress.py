"""Progress bars on stderr (tqdm), off when stderr is not a terminal or with --quiet."""
from __future__ import annotations

import sys
from typing import Any


class Progress:
    """A counter with rate and ETA; every method is a no-op when disabled."""

    def __init__(self, description: str, *, enabled: bool | None = None, unit: str = "img") -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm  # only for a bar that shows (~20 ms of imports, metadata included)
            self._bar = tqdm(desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True,
                             smoothing=0.1, mininterval=0.25)

    @property
    def enabled(self) -> bool:
        return self._bar is not None

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def set_total(self, total: int) -> None:
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def set_postfix(self, **values: Any) -> None:
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
