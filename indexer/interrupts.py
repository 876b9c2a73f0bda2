"""Critical sections that Ctrl-C and SIGTERM wait for.

A batch is committed and counted as one step: an interrupt that arrives in between is held
until both are done, then raised as KeyboardInterrupt, so a run never reports fewer (or more)
files than it stored. Only the main thread can hold signals; elsewhere the body just runs.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def held_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    for s in _SIGNALS:
        if previous[s] is not None and previous[s] != signal.SIG_IGN:
            signal.signal(s, lambda signum, frame: arrived.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            if handler is not None and handler != signal.SIG_IGN:
                signal.signal(s, handler)
    if arrived:
        raise KeyboardInterrupt
