"""`--cluster`: the decoding runs on a Dask distributed cluster; this process stays the only writer.

The client (this process) keeps the walk, the stat diff against the index and the one write
connection, exactly as with the local pool: `ClusterPipeline` is `pipeline.Pipeline` with Dask
workers instead of spawned processes. Workers run the same pure task (`features.extract_many`,
or embed's) on chunks of paths and send records back; at most 4 chunks per worker thread are in
flight, so memory stays flat however large the archive.

A worker lost mid-chunk costs a retry (the scheduler reschedules its tasks). A chunk whose
workers keep dying (the scheduler's `allowed-failures`, 3 by default) is redone one file at a
time, and the file that still kills its workers is recorded as failed, as with the local pool.

Workers must see the archive: on shared storage under the same path, or under another one given
by `--worker-root LOCAL=REMOTE`. Before any work each root is looked up on every worker, and the
workers must run the same feature code as the client (same indexer version and source, same
Pillow): features computed by other code would not compare with those in the index.

Nothing here imports Dask at module level; `pip install 'indexer[dask]'` brings it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import replace
from functools import partial
from typing import Any

from .errors import ClusterError
from .pipeline import CRASH_ERROR, Pipeline, sigint_blocked

log = logging.getLogger(__name__)

LOCAL_PREFIX = "local:"
# Files per task: each task costs the scheduler about a millisecond and a round trip, so chunks
# are larger than the local pool's 8 (a writer fed by instant workers: 570 files/s at 8, 2,180 at 64)
CHUNK = 32
# The workers of a LocalCluster run without Dask's statistical profiler, which samples the task
# thread's stack every 10 ms and cost ~10% of a worker's CPU on 1080p frames (bench_cluster);
# `dask worker` takes the same as DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False.
WORKER_CONFIG = {"distributed.worker.profile.enabled": False}
DEFAULT_TIMEOUT = 30.0  # seconds to reach the scheduler, and to wait for a first worker
CLUSTER_CRASH_ERROR = CRASH_ERROR + " on every Dask worker that tried it (distributed.scheduler.allowed-failures)"
INSTALL_HINT = "pip install 'indexer[dask]'"
# The modules whose code computes what a worker sends back: client and workers must agree on them.
FEATURE_MODULES = ("features.py", "hashgrids.py", "exif.py", "records.py", "cluster.py")


# -- the options ----------------------------------------------------------------------------------

def parse_address(value: str) -> str:
    """`local:N` (a LocalCluster of N worker processes) or a scheduler address (tcp://host:8786)."""
    value = value.strip()
    if value.startswith(LOCAL_PREFIX):
        n = value[len(LOCAL_PREFIX):]
        if not n.isdigit() or int(n) < 1:
            raise ClusterError(f"--cluster {value}: expected local:N with N worker processes, N >= 1")
        return f"{LOCAL_PREFIX}{int(n)}"
    if not value or any(c.isspace() for c in value):
        raise ClusterError(f"--cluster {value!r}: expected a scheduler address such as tcp://host:8786, or local:N")
    return value


def cluster_options(cluster: str | None, worker_roots: Sequence[str], workers: int | None) -> dict[str, Any]:
    """The Scanner options of `--cluster`, `--worker-root` and `--workers` as the user gave them."""
    if not cluster:
        if worker_roots:
            raise ClusterError("--worker-root maps roots for Dask workers: it needs --cluster")
        return {"workers": workers}
    if workers is not None:
        raise ClusterError("--workers sizes the local pool; with --cluster the cluster's workers decode "
                           "(local:N starts N of them)")
    return {"cluster": parse_address(cluster), "worker_roots": parse_worker_roots(worker_roots)}


def parse_worker_roots(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`--worker-root LOCAL=REMOTE` values as (local, remote) prefixes (see root_map)."""
    pairs = []
    for value in values:
        local, sep, remote = value.partition("=")
        if not sep or not local or not remote:
            raise ClusterError(f"--worker-root {value!r}: expected LOCAL=REMOTE, the root as this machine "
                               "sees it and as the workers see it")
        pairs.append((local, remote))
    return root_map(pairs)


def root_map(pairs: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """(local, remote) folder pairs with LOCAL absolute as scan roots are, the longest first."""
    out = []
    for local, remote in pairs:
        local = os.path.normpath(os.path.abspath(os.path.expanduser(local))).replace(os.sep, "/")
        out.append((_trim(local), _trim(remote)))
    return tuple(sorted(out, key=lambda p: -len(p[0])))


def _trim(path: str) -> str:
    return path.rstrip("/") or "/"


def worker_path(path: str, mapping: Sequence[tuple[str, str]]) -> str:
    """Where a worker finds `path` (a path on this machine)."""
    for local, remote in mapping:
        if path == local:
            return remote
        base = local.rstrip("/")
        if path.startswith(base + "/"):
            return remote.rstrip("/") + path[len(base):]
    return path


# -- what runs on the workers ---------------------------------------------------------------------

def run_task(items: list[Any], decode: Callable[[list[Any]], list[Any]],
             mapping: tuple[tuple[str, str], ...]) -> list[Any]:
    """A chunk on a worker: the items' roots moved to where this worker sees them, decoded, and
    the results given back their items as the client knows them (the rows they go to)."""
    if not mapping:
        return decode(items)
    moved = [replace(item, root=worker_path(item.root, mapping)) for item in items]
    results = decode(moved)
    return [replace(r, item=item) if getattr(r, "item", None) is not None else r
            for r, item in zip(results, items)]


def fingerprint() -> dict[str, str]:
    """What must be equal on the client and every worker for their features to compare. On a
    worker it also imports the feature code, before the first chunk arrives (as the local pool's
    warm-up does)."""
    import numpy
    import PIL

    from . import features  # noqa: F401
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for name in FEATURE_MODULES:
        with open(os.path.join(here, name), "rb") as fh:
            digest.update(fh.read())
    embed = os.path.join(here, "embed")
    if os.path.isdir(embed):
        for name in sorted(os.listdir(embed)):
            if name.endswith(".py"):
                with open(os.path.join(embed, name), "rb") as fh:
                    digest.update(fh.read())
    from .cli.common import version
    return {"indexer": version(), "feature code": digest.hexdigest()[:12], "Pillow": PIL.__version__,
            "numpy": numpy.__version__}


def roots_missing(paths: Sequence[str]) -> list[str]:
    """The roots (as the worker sees them) that are not folders on this worker."""
    return [p for p in paths if not os.path.isdir(p)]


# -- connecting -----------------------------------------------------------------------------------

def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError(f"--cluster needs Dask, which is not installed: {INSTALL_HINT}") from exc
    return distributed


def _timeout() -> float:
    try:
        return float(os.environ.get("INDEXER_CLUSTER_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def connect(address: str, timeout: float | None = None) -> tuple[Any, Any]:
    """(client, the LocalCluster this process started or None), with at least one worker."""
    distributed = _distributed()
    timeout = _timeout() if timeout is None else timeout
    if not log.isEnabledFor(logging.INFO):  # Dask's own warnings (restarting workers, ...) only with -v
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
    cluster = None
    # Dask's event loop thread, LocalCluster's workers and their restarts inherit a blocked SIGINT:
    # Ctrl-C reaches the whole process group, and only this process decides what it means
    with sigint_blocked():
        try:
            if address.startswith(LOCAL_PREFIX):
                import dask
                with dask.config.set(WORKER_CONFIG):
                    cluster = distributed.LocalCluster(
                        n_workers=int(address[len(LOCAL_PREFIX):]), threads_per_worker=1, processes=True,
                        dashboard_address=None, silence_logs=logging.CRITICAL if not log.isEnabledFor(logging.INFO)
                        else logging.WARNING)
                client = distributed.Client(cluster, set_as_default=False)
            else:
                client = distributed.Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            if cluster is not None:
                cluster.close()
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {_one_line(exc)}") from exc
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        _close(client, cluster)
        raise ClusterError(f"the Dask cluster at {address} has no workers (waited {timeout:g} s); "
                           "start some with: dask worker " + _scheduler(client, address)) from exc
    return client, cluster


def _scheduler(client: Any, address: str) -> str:
    try:
        return str(client.scheduler.address)
    except Exception:
        return address


def _close(client: Any, cluster: Any) -> None:
    for thing in (client, cluster):
        if thing is None:
            continue
        try:
            thing.close(timeout=10)
        except Exception:  # closing a cluster that lost its workers may complain; nothing to keep
            log.debug("closing %s", thing, exc_info=True)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def check_versions(client: Any, address: str) -> None:
    """Refuse workers whose feature code differs from this process's."""
    mine = fingerprint()
    try:
        theirs = client.run(fingerprint)
    except Exception as exc:
        raise ClusterError(f"the Dask workers at {address} cannot run indexer's code ({_one_line(exc)}); "
                           f"install indexer {mine['indexer']} on them, in the environment `dask worker` runs in"
                           ) from exc
    for worker, fp in sorted(theirs.items()):
        differ = [k for k in ("indexer", "feature code", "Pillow") if fp.get(k) != mine[k]]
        if differ:
            diff = ", ".join(f"{k} {fp.get(k)} there vs {mine[k]} here" for k in differ)
            raise ClusterError(f"Dask worker {worker} runs other feature code ({diff}); features computed by "
                               "different code do not compare, so install the same indexer and Pillow everywhere")
        if fp.get("numpy") != mine["numpy"]:
            log.warning("Dask worker %s has numpy %s, this process %s", worker, fp.get("numpy"), mine["numpy"])


def check_roots(client: Any, roots: Sequence[str], mapping: Sequence[tuple[str, str]]) -> None:
    """Every worker must see every root: a worker that cannot would report its files as gone."""
    remote = [worker_path(r, mapping) for r in roots]
    for worker, missing in sorted(client.run(roots_missing, remote).items()):
        if missing:
            root = roots[remote.index(missing[0])]
            hint = ("check --worker-root" if mapping else
                    "if the workers mount it elsewhere, map it with --worker-root LOCAL=REMOTE")
            raise ClusterError(f"Dask worker {worker} does not see the root {root} (no folder {missing[0]} "
                               f"there); {hint}")


# -- the pipeline ---------------------------------------------------------------------------------

class ClusterPipeline(Pipeline):
    """`Pipeline` whose chunks run on a Dask cluster; this process remains the only writer."""

    crash_breaks_pool = False  # a lost worker takes its own tasks only, and Dask reruns those

    def __init__(self, address: str, *, worker_roots: Sequence[tuple[str, str]] = (), roots: Sequence[str] = (),
                 batch: int = 256, chunk: int = CHUNK, flush_seconds: float = 5.0,
                 decode: Callable[[list[Any]], list[Any]] | None = None,
                 failed: Callable[[Any, str], Any] | None = None) -> None:
        super().__init__(1, batch=batch, chunk=chunk, flush_seconds=flush_seconds, decode=decode, failed=failed)
        self.address = parse_address(address)
        self.mapping = root_map(worker_roots)
        self.roots = list(roots)
        self.timeout = _timeout()
        self._client: Any = None
        self._cluster: Any = None
        self._task: Callable[[list[Any]], list[Any]] = partial(run_task, decode=self.decode, mapping=self.mapping)
        self._counted = 0.0  # when the workers were last counted
        self._no_workers_since: float | None = None

    def __enter__(self) -> ClusterPipeline:
        self._client, self._cluster = connect(self.address, self.timeout)
        try:
            check_versions(self._client, self.address)
            check_roots(self._client, self.roots, self.mapping)
            from distributed.scheduler import KilledWorker
            self.crash_errors = (KilledWorker,)
            self._executor = self._client.get_executor(pure=False)
            self._count_workers(force=True)
        except BaseException:
            self.close(cancel=True)
            raise
        return self

    def close(self, cancel: bool = False) -> None:
        ex, self._executor = self._executor, None
        if ex is not None:
            try:
                ex.shutdown(wait=not cancel)  # wait=False cancels what is still queued or running
            except Exception:
                log.debug("shutting down the Dask executor", exc_info=True)
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        _close(client, cluster)

    # -- the loop's hooks ---------------------------------------------------------------------------

    def _count_workers(self, force: bool = False) -> int:
        now = time.monotonic()
        if force or now - self._counted >= 5.0:
            self._counted = now
            try:
                self.workers = sum(self._client.nthreads().values())
            except Exception as exc:
                raise ClusterError(f"lost the Dask scheduler at {self.address}: {_one_line(exc)}") from exc
        return self.workers

    def _limit(self) -> int:
        return 4 * max(1, self._count_workers())

    def _waited(self) -> None:
        if self._count_workers() > 0:
            self._no_workers_since = None
            return
        now = time.monotonic()
        self._no_workers_since = self._no_workers_since or now
        if now - self._no_workers_since > self.timeout:
            raise ClusterError(f"the Dask cluster at {self.address} has had no workers for {self.timeout:g} s; "
                               "what was decoded is committed, run the same command again to go on")

    def _submit(self, chunk: list[Any]) -> Future[list[Any]]:
        assert self._executor is not None, "use ClusterPipeline as a context manager"
        self._submitted = True
        return self._executor.submit(self._task, chunk)

    def _collect(self, fut: Future[list[Any]], chunk: list[Any]) -> list[Any]:
        try:
            results = fut.result()
        except self.crash_errors:
            raise
        except CancelledError as exc:
            raise ClusterError(f"the Dask cluster at {self.address} dropped our work (scheduler restarted "
                               "or connection lost); run the same command again to go on") from exc
        except Exception as exc:
            raise ClusterError(f"a Dask task failed on the cluster at {self.address}: {_one_line(exc)}") from exc
        for r in results:
            # gone for the worker, still here: the worker looks elsewhere (a mount or --worker-root
            # that differs), not a deleted file: nothing may be marked missing for that
            if getattr(r, "vanished", False) and os.path.lexists(r.item.path):
                raise ClusterError(
                    f"a Dask worker cannot open {worker_path(r.item.path, self.mapping)} although "
                    f"{r.item.path} exists here: check the workers' mounts and --worker-root")
        return results

    def _isolate(self, items: list[Any]) -> list[Any]:
        """A chunk whose workers kept dying: each file in a task of its own, all at once; then
        the files whose task failed, one at a time, and the one that still kills its workers is
        recorded as failed.

        In the first round the file that kills workers takes others down with it: a task that
        ran beside it on a worker it killed is charged with that death too (Dask gives up on a
        task after a few), and a finished result that was still on such a worker is lost
        (distributed's executor then raises a ValueError of its own). Such files are not to
        blame: run alone, they decode."""
        log.warning("Dask workers died on a chunk; retrying its %d files one at a time", len(items))
        futures = [(item, self._submit([item])) for item in items]
        results: list[Any] = []
        again: list[Any] = []
        for item, fut in futures:
            try:
                results.extend(self._collect(fut, [item]))
            except (*self.crash_errors, ClusterError):
                again.append(item)
        for item in again:
            try:
                results.extend(self._collect(self._submit([item]), [item]))
            except self.crash_errors:
                results.append(self.failed(item, CLUSTER_CRASH_ERROR))
        return results


__all__ = ["ClusterPipeline", "connect", "parse_address", "parse_worker_roots", "worker_path"]
