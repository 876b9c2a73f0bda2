"""The pool driver shared by scan and watch: work items in, one transaction per batch out.

Workers are spawned processes running the pure `features.extract_many`; this process is the only
writer. At most `workers * 4` chunks are in flight, so memory stays flat however large the
archive. A worker killed by a bad file (a decoder crash) breaks the pool: the chunks it held are
redone one file at a time, and the file that breaks it again is recorded as failed. A pool whose
workers cannot run even an empty task is no file's fault: that raises WorkerPoolError.

Workers never run the caller's `__main__` (spawn re-runs it in every child: from stdin that
crashes each worker, and a script without `if __name__ == "__main__":` would start itself
again), and they hold Ctrl-C blocked from their first instruction until they ignore it.

Start-up is part of the rate a user sees: the workers are started as soon as the pipeline is
entered (each imports numpy and Pillow while the parent opens the database and walks the first
folders), and this process never imports them (`decode` names the worker function by its module).
A pipeline that was given no work stops its workers instead of waiting for their start.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from .errors import WorkerPoolError
from .records import ImageResult, WorkItem

log = logging.getLogger(__name__)

Sink = Callable[[list[ImageResult]], None]
CRASH_ERROR = "the image decoder crashed its worker process"


def _worker_init(parent: int) -> None:
    # Ctrl-C reaches the whole process group; only the parent decides what to do with it. The
    # worker was started with SIGINT blocked (_WorkerProcess): ignoring it first discards one that
    # arrived meanwhile, and only then is it unblocked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # A parent killed by SIGKILL cannot shut its pool down: workers watch it and exit when it is gone.
    # `parent` comes from the parent itself: it may be dead already by the time this runs.
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int, interval: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


def _ready() -> int:
    """An empty task: a pool that cannot run it cannot run anything."""
    return os.getpid()


def _warm_up() -> int:
    """The first task of each worker: import the decoder while the parent walks the archive."""
    import indexer.features  # noqa: F401
    return os.getpid()


def extract_many(items: list[WorkItem], thumbnails: bool = False) -> list[ImageResult]:
    """The default worker task: `features.extract_many`, imported in the worker only (the parent
    process that drives the pool never loads numpy or Pillow)."""
    from .features import extract_many as extract
    return extract(items, thumbnails=thumbnails)


_START_LOCK = threading.Lock()  # one start at a time: each swaps sys.modules["__main__"] and back
_NO_MAIN = types.ModuleType("__main__", "Stands in for the caller's __main__ while a worker starts.")


@contextmanager
def _main_hidden() -> Iterator[None]:
    """Spawn's preparation data without the caller's `__main__`, so the child does not run it.

    spawn.get_preparation_data reads sys.modules["__main__"]: a module without __spec__ or
    __file__ gives neither init_main_from_name nor init_main_from_path. Held for the few
    milliseconds of one Process.start(), under _START_LOCK."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = _NO_MAIN
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread: a process started meanwhile inherits the mask through
    fork and exec (as multiprocessing's own resource tracker is started, bpo-33613). A Ctrl-C
    that arrives meanwhile reaches this process when the mask is restored."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    # multiprocessing's resource tracker, started lazily by the first process start, unblocks
    # SIGINT in the starting thread on its way out: start it before blocking
    from multiprocessing import resource_tracker
    resource_tracker.ensure_running()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def _interrupt_deferred() -> Iterator[None]:
    """A Ctrl-C (or a SIGTERM, which the command turns into one) that Python sees meanwhile is
    raised on the way out, not in the middle: a start cut short after the fork leaves a child that
    finds no instructions and prints a traceback. Only the main thread runs signal handlers, so
    only there is anything to defer."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers = {sig: h for sig in (signal.SIGINT, signal.SIGTERM) if callable(h := signal.getsignal(sig))}
    caught: list[tuple[int, types.FrameType | None]] = []
    for sig in handlers:
        signal.signal(sig, lambda signum, frame: caught.append((signum, frame)))
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if caught:
            handlers[caught[0][0]](*caught[0])


# The environment a worker starts with, for each variable the user has not set:
# - one OpenBLAS thread: workers run one per core, and numpy's OpenBLAS would start a thread per
#   core in each (the hash resizes are matrix products; hashgrids.py uses one product instead of
#   seven blocks then);
# - glibc's malloc keeps freed memory: by default it hands blocks over 128 KB (a reduced image's
#   float64 pixels, a decoder's buffers) back to the system when freed and takes fresh pages for
#   the next image: 52-57 minor page faults an image in a scan of 10,000 1080p JPEGs, 1 with
#   these (the bare decode's figure). A fault costs microseconds on a virtual machine: the
#   workers' CPU per image fell 5% (11.58 -> 11.02 ms, the code before in the same rounds) and
#   the scan's ratio to the bare decode rose from 83% to 88%; the workers' peak RSS is unchanged.
#   Blocks up to 32 MB come from the heap and up to 64 MB of free heap is kept. Other C
#   libraries ignore these variables.
WORKER_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(64 << 20),
}


@contextmanager
def _worker_env() -> Iterator[None]:
    """WORKER_ENV in the environment a worker starts with, where the user set nothing. Held
    under _START_LOCK, like the rest of a start; the environment is as it was afterwards."""
    added = [k for k in WORKER_ENV if k not in os.environ]
    for k in added:
        os.environ[k] = WORKER_ENV[k]
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


class _WorkerProcess(SpawnProcess):
    """A spawned worker that never imports the caller's `__main__` and starts with Ctrl-C blocked."""

    def start(self) -> None:
        with _START_LOCK, _interrupt_deferred():
            with sigint_blocked(), _main_hidden(), _worker_env():
                super().start()


class _WorkerContext(SpawnContext):
    """Spawn, with _WorkerProcess; remembers its processes: stop_pool also reaches one that an
    interrupt kept the pool from registering, and how they ended tells why a pool broke."""

    def __init__(self) -> None:
        self.started: list[_WorkerProcess] = []

    def Process(self, *args: Any, **kwargs: Any) -> _WorkerProcess:  # type: ignore[override]  # noqa: N802
        process = _WorkerProcess(*args, **kwargs)
        self.started.append(process)
        return process


def _started(ex: ProcessPoolExecutor) -> list[_WorkerProcess]:
    """The worker processes a pool of spawn_pool started (not closed ones)."""
    out = []
    for p in getattr(getattr(ex, "_mp_context", None), "started", ()):
        try:
            if p.pid:
                out.append(p)
        except ValueError:  # closed
            pass
    return out


def spawn_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of spawned processes that ignore Ctrl-C and exit when this process dies.

    Safe from any caller (stdin, a script without a main guard, a notebook): the workers import
    only what their tasks name, never `__main__`, so a task must be an importable function."""
    return ProcessPoolExecutor(workers, mp_context=_WorkerContext(), initializer=_worker_init,
                               initargs=(os.getpid(),))


def stop_pool(ex: ProcessPoolExecutor) -> None:
    """Stop a pool now: queued work is cancelled and running workers are terminated."""
    procs = {id(p): p for p in (getattr(ex, "_processes", None) or {}).values()}
    procs.update((id(p), p) for p in _started(ex))
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs.values():
        p.terminate()
    # The pool's own thread may reap a worker at the same time: this thread's waitpid then fails
    # (ECHILD) and join() returns before that thread has recorded the exit. Wait until it has.
    deadline = time.monotonic() + 5
    for p in procs.values():
        p.join(max(0.0, deadline - time.monotonic()))
        while p.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)


class Pipeline:
    """A pool of decoding processes and the batching of their results into a sink."""

    def __init__(self, workers: int, *, batch: int = 256, chunk: int = 8, flush_seconds: float = 5.0,
                 decode: Callable[[list[Any]], list[Any]] | None = None,
                 failed: Callable[[Any, str], Any] | None = None,
                 warm_up: Callable[[], object] | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.workers, self.batch, self.chunk, self.flush_seconds = workers, batch, chunk, flush_seconds
        self.decode = decode or extract_many
        # the result recorded for an item whose decode kills its worker every time (embed makes its own)
        self.failed = failed or _crashed
        # each worker's first task, run while the parent walks: what `decode` needs on its first call
        self.warm_up = warm_up or _warm_up
        self._executor: ProcessPoolExecutor | None = None
        self._in_flight = 0
        self._buffered = 0
        self._submitted = False

    @property
    def busy(self) -> bool:
        """Work submitted or decoded but not yet handed to the sink."""
        return self._in_flight > 0 or self._buffered > 0

    def __enter__(self) -> Pipeline:
        self._executor = self._new_executor()
        try:
            self._start_workers()
        except BaseException:  # a Ctrl-C while the workers start: __exit__ will not run, stop them here
            self.close(cancel=True)
            raise
        return self

    def _start_workers(self) -> None:
        """Start every worker now, each importing the decoder: a pool starts its processes only
        as tasks arrive, and each one's start (an interpreter, numpy, Pillow) would otherwise
        begin when the walk has found the first files."""
        assert self._executor is not None
        try:
            for _ in range(self.workers):
                self._executor.submit(self.warm_up)
        except BrokenProcessPool:  # found and reported by the first real task
            pass

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.close(cancel=exc_type is not None)

    def _new_executor(self) -> ProcessPoolExecutor:
        return spawn_pool(self.workers)

    def close(self, cancel: bool = False) -> None:
        ex, self._executor = self._executor, None
        if ex is None:
            return
        if cancel or not self._submitted:  # nothing was asked of the workers: do not wait for their start
            stop_pool(ex)
        else:
            ex.shutdown(wait=True)

    def run(self, items: Iterable[WorkItem | None], sink: Sink,
            on_result: Callable[[ImageResult], None] | None = None) -> None:
        """Decode every item and hand results to `sink` in batches.

        A `None` in `items` means "nothing new for now" (watch): in-flight work is collected and
        what is done is flushed. On KeyboardInterrupt the decoded results not yet handed to the
        sink are flushed once more (a batch the sink was writing is not handed over again), the
        rest is dropped, and the interrupt propagates; the same on WorkerPoolError.
        """
        buffer: list[ImageResult] = []
        last_flush = time.monotonic()

        def take(results: list[ImageResult]) -> None:
            for r in results:
                if on_result:
                    on_result(r)
            buffer.extend(results)
            self._buffered = len(buffer)
            if len(buffer) >= self.batch or time.monotonic() - last_flush >= self.flush_seconds:
                flush()

        def flush() -> None:
            nonlocal last_flush
            if buffer:
                # emptied before the sink runs: an interrupt inside it must not hand the batch over twice
                batch = list(buffer)
                buffer.clear()
                self._buffered = 0
                sink(batch)
            last_flush = time.monotonic()

        try:
            self._drive(_chunks(items, self.chunk), take, flush)
            flush()
        except (KeyboardInterrupt, WorkerPoolError) as exc:
            log.info("%s: committing %d decoded results, dropping work in flight",
                     "interrupted" if isinstance(exc, KeyboardInterrupt) else "worker pool failed", len(buffer))
            flush()
            raise

    def _drive(self, chunks: Iterator[list[WorkItem] | None], take: Callable[[list[ImageResult]], None],
               flush: Callable[[], None]) -> None:
        pending: dict[Future[list[ImageResult]], list[WorkItem]] = {}
        exhausted = False
        while pending or not exhausted:
            limit = self._limit()
            while not exhausted and len(pending) < limit:
                chunk = next(chunks, StopIteration)
                if chunk is StopIteration:
                    exhausted = True
                elif chunk is None:  # idle tick from a watcher
                    if not pending:
                        flush()
                    break
                else:
                    pending[self._submit(chunk)] = chunk
            self._in_flight = len(pending)
            if not pending:
                continue
            done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            if not done:
                self._waited()
            broken: list[WorkItem] = []
            for fut in done:
                chunk = pending.pop(fut)
                try:
                    take(self._collect(fut, chunk))
                except self.crash_errors:
                    broken.extend(chunk)
            if broken:
                if self.crash_breaks_pool:  # the other chunks in flight are lost with it
                    for fut, chunk in list(pending.items()):
                        broken.extend(chunk)
                        fut.cancel()
                    pending.clear()
                take(self._isolate(broken))
            self._in_flight = len(pending)

    # -- what a back end may change (indexer.cluster runs the same loop on a Dask cluster) --------

    crash_errors: tuple[type[BaseException], ...] = (BrokenProcessPool,)  # a task's worker died
    crash_breaks_pool = True  # ... and took every task in flight with it

    def _limit(self) -> int:
        """Chunks in flight: enough to keep every worker busy, few enough to keep memory flat."""
        return self.workers * 4

    def _waited(self) -> None:
        """Called after a second in which no chunk finished."""

    def _collect(self, fut: Future[list[ImageResult]], chunk: list[WorkItem]) -> list[ImageResult]:
        return fut.result()

    def _submit(self, chunk: list[WorkItem]) -> Future[list[ImageResult]]:
        """The chunk's future; a pool that broke since the last wait gives a failed one, handled
        as a crash like the others (submit itself raises BrokenProcessPool then)."""
        assert self._executor is not None, "use Pipeline as a context manager"
        self._submitted = True
        try:
            return self._executor.submit(self.decode, chunk)
        except BrokenProcessPool as exc:
            failed: Future[list[ImageResult]] = Future()
            failed.set_exception(exc)
            return failed

    def _isolate(self, items: list[WorkItem]) -> list[ImageResult]:
        """After a worker crash: redo each file alone, so the one that crashes is found.

        Each new pool first runs an empty task: when that breaks it too, no file is to blame
        and WorkerPoolError is raised instead of failing every file."""
        log.warning("a worker process died; retrying %d files one at a time", len(items))
        results = []
        for item in items:
            self._restart()
            try:
                results.extend(self._submit([item]).result())
            except BrokenProcessPool:
                results.append(self.failed(item, CRASH_ERROR))
        self._restart()
        return results

    def _restart(self) -> None:
        """Replace a broken pool with a new one that has shown it can run a task."""
        ex = self._executor
        if ex is not None and not getattr(ex, "_broken", False):
            return
        if ex is not None:
            ex.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new_executor()
        try:
            self._executor.submit(_ready).result()
        except BrokenProcessPool as exc:
            raise WorkerPoolError(
                f"the decoding worker processes die before doing any work ({_exit_codes(self._executor)}; an "
                f"empty task broke a new pool too), so no file was blamed for it: {exc}") from exc


def _crashed(item: WorkItem, error: str) -> ImageResult:
    return ImageResult(item, None, error, item.size, item.mtime_ns, None, None)


def _exit_codes(ex: ProcessPoolExecutor) -> str:
    """How the workers of a broken pool ended, for the error message."""
    started = _started(ex)
    for p in started:
        p.join(1)  # the pool terminates them as it breaks: let them finish dying
    codes = sorted({p.exitcode for p in started if p.exitcode is not None})
    return "exit status " + ", ".join(map(str, codes)) if codes else "exit status unknown"


def _chunks(items: Iterable[WorkItem | None], size: int) -> Iterator[list[WorkItem] | None]:
    chunk: list[WorkItem] = []
    for item in items:
        if item is None:
            if chunk:
                yield chunk
                chunk = []
            yield None
            continue
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
