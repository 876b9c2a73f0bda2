"""The `indexer` command's entry point (also `python -m indexer`).

Signal handlers are installed before anything heavy is imported, so Ctrl-C or SIGTERM at any
instant ends the process with one line and exit code 130, never a traceback; SIGINT is handled
even when the shell started us with it ignored (`indexer watch ... &`).
"""
from __future__ import annotations

import sys

try:  # the C module: `signal` imports enum, 25 ms that Ctrl-C could fall into
    import _signal as signal
except ImportError:  # another Python implementation
    import signal  # type: ignore[no-redef]


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)


def main(argv: list[str] | None = None) -> None:
    install_signal_handlers()
    for stream, errors in ((sys.stdout, "surrogateescape"), (sys.stderr, "backslashreplace")):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:  # names that are not UTF-8 leave byte for byte; messages never fail
            reconfigure(errors=errors)
    try:
        from .cli import run
        code = run(argv)
    except KeyboardInterrupt:
        code = 130
        print("\nInterrupted.", file=sys.stderr)
    if code == 130:
        _leave(code)
    sys.exit(code)


def _leave(code: int) -> None:
    """Exit an interrupted run now: what it did is committed and said by now, and the interpreter's
    exit would wait for the worker pool's threads. A Ctrl-C or SIGTERM that lands while the main
    thread is inside concurrent.futures (it takes its futures' locks in Python code) can leave one
    of those locks held, and the pool's thread waiting on it for ever."""
    import os

    logging = sys.modules.get("logging")
    if logging is not None:
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`indexer ... | head`)
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
