"""`indexer embed`: a run over the live images without a vector of the model.

Same guarantees as scan: the writer lock and a `runs` row (command 'embed'); a pool of worker
processes (pipeline.Pipeline) decodes and infers, this process is the only writer and commits a
batch of results per transaction (the checkpoint: after Ctrl-C or kill -9 the same command
carries on with what is left); an image that cannot be read or that the model fails on is
stored with its reason and not tried again unless it changes or with retry_errors; progress
with ETA on stderr. Nothing is written before the lock is held.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from ..db import Database
from ..db import embeddings as qe
from ..errors import Interrupted
from ..interrupts import held_interrupts
from ..progress import Progress
from . import EmbedError
from .model import ModelInfo, load_model
from .preprocess import make_preprocess
from .task import EmbedItem, EmbedResult, EmbedSpec, embed_many, warm_up

log = logging.getLogger(__name__)

COMMIT = 256            # results per transaction
FLUSH_SECONDS = 5.0     # ... or this long since the last commit


@dataclass(frozen=True)
class EmbedJob:
    """A checked model and how to run it: what `embed` and `scan --embed` need."""

    info: ModelInfo
    spec: EmbedSpec

    def model_row(self) -> dict[str, Any]:
        return {"name": self.info.name, "sha256": self.info.sha256, "path": self.info.path, "dim": self.info.dim,
                "input_name": self.info.input_name, "output_name": self.info.output_name, **self.spec.pp.as_row()}

    def register(self, db: Database) -> int:
        """The model's id in the index (added when new). Call with the writer lock held."""
        return qe.register_model(db, self.model_row())

    @property
    def scan_decode(self) -> Any:
        """The worker task of scan --embed: features and vector from one decode."""
        from .task import extract_and_embed
        return partial(extract_and_embed, spec=self.spec)


@dataclass
class EmbedCounts:
    embedded: int = 0
    failed: int = 0
    skipped: int = 0    # gone or changed since the scan: not stored, scan first

    def runs_columns(self) -> dict[str, int]:
        return {"new": self.embedded, "failed": self.failed, "changed": self.skipped}


@dataclass
class EmbedSummary:
    run_id: int
    status: str
    model: str
    model_id: int
    dim: int
    counts: EmbedCounts
    pending: int
    elapsed: float
    skipped_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        done = self.counts.embedded + self.counts.failed
        return done / self.elapsed if self.elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "images_per_s": round(self.rate, 2)}


def prepare_job(model: str | os.PathLike[str], *, preset: str | None = None, input_size: int | None = None,
                mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None, batch: int = 16,
                workers: int | None = None, output: str | None = None) -> EmbedJob:
    """Load and check the model (EmbedError naming what does not fit) and settle its preprocessing:
    --input-size, else the model's static input size, else the preset's 224."""
    if batch < 1:
        raise EmbedError(f"--batch must be at least 1, not {batch}")
    info, _ = load_model(model, output)
    if input_size is not None and info.input_size is not None and input_size != info.input_size:
        raise EmbedError(f"--input-size {input_size} does not fit {info.name}, whose input is "
                         f"{info.input_size}x{info.input_size}")
    try:
        pp = make_preprocess(preset, input_size or info.input_size, mean, std)
    except ValueError as exc:
        raise EmbedError(str(exc)) from None
    n = workers or os.cpu_count() or 1
    threads = max(1, (os.cpu_count() or 1) // n)
    return EmbedJob(info, EmbedSpec(info.path, info.sha256, info.input_name, info.output_name, pp, batch, threads))


def run_embed(db: Database, job: EmbedJob, *, workers: int | None = None, where: str | None = None,
              retry_errors: bool = False, progress: bool | None = None, commit: int = COMMIT,
              flush_seconds: float = FLUSH_SECONDS, cluster: str | None = None,
              worker_roots: tuple[tuple[str, str], ...] = ()) -> EmbedSummary:
    """Embed every live image (matching `where`) that has no vector of the job's model, on a local
    pool of `workers` processes, or with `cluster` (`local:N` or a scheduler address) on a Dask
    cluster whose workers see each root, and the model file, where `worker_roots` maps them.
    Raises Interrupted(summary) on Ctrl-C or SIGTERM."""
    from ..db import select as q
    from ..pipeline import Pipeline

    ids = None
    if where:
        q.check_expression(db, where, "--where")
        ids = q.where_ids(db, where).tolist()
    n_workers = workers or os.cpu_count() or 1
    run_id = db.start_run("embed", {"model": job.info.path, "sha256": job.info.sha256, "name": job.info.name,
                                    "workers": n_workers, "batch": job.spec.batch, "where": where,
                                    "retry_errors": retry_errors, **job.spec.pp.as_row(),
                                    **({"cluster": cluster} if cluster else {})})
    counts, reasons = EmbedCounts(), {}
    started = time.monotonic()
    try:
        model_id = job.register(db)
        todo = sum(1 for _ in qe.pending(db, model_id, ids, retry_errors))  # the ETA and the summary
    except BaseException as exc:
        db.finish_run(run_id, "failed" if not isinstance(exc, KeyboardInterrupt) else "interrupted",
                      counts.runs_columns(), time.monotonic() - started, str(exc))
        raise
    bar = Progress("embed", enabled=progress)
    bar.set_total(todo)
    status, error = "failed", None

    def sink(results: list[EmbedResult]) -> None:
        with held_interrupts():  # stored and counted together
            qe.write(db, model_id, [(r.item.image_id, r.vector, r.error) for r in results if r.skipped is None],
                     run_id)
            for r in results:
                if r.skipped is not None:
                    counts.skipped += 1
                    reasons[r.skipped] = reasons.get(r.skipped, 0) + 1
                elif r.error is not None:
                    counts.failed += 1
                else:
                    counts.embedded += 1
            db.heartbeat(run_id, counts.runs_columns())

    items = (EmbedItem(*row) for row in qe.pending(db, model_id, ids, retry_errors))
    try:
        pool = _pool(db, job, n_workers, commit, flush_seconds, cluster, worker_roots) if cluster else \
            Pipeline(n_workers, batch=commit, chunk=job.spec.batch, flush_seconds=flush_seconds,
                     decode=partial(embed_many, spec=job.spec), failed=crashed,
                     warm_up=partial(warm_up, spec=job.spec))
        with pool as pipe:
            pipe.run(items, sink, lambda r: bar.update(1))
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
    except BaseException as exc:
        error = str(exc)
        raise
    finally:
        items.close()
        bar.close()
        elapsed = time.monotonic() - started
        db.finish_run(run_id, status, counts.runs_columns(), elapsed, error)
    summary = EmbedSummary(run_id, status, job.info.name, model_id, job.info.dim, counts, todo, elapsed, reasons)
    if status == "interrupted":
        raise Interrupted(summary)
    return summary


def _pool(db: Database, job: EmbedJob, workers: int, commit: int, flush_seconds: float, cluster: str,
          worker_roots: tuple[tuple[str, str], ...]) -> Any:
    """The Dask back end (indexer.cluster): the same loop, chunks run on the cluster's workers,
    each session with one thread (a Dask worker runs one task per thread). The model file is
    read where `worker_roots` maps its folder, else at the same path."""
    from dataclasses import replace

    from ..cluster import ClusterPipeline, worker_path
    spec = replace(job.spec, model_path=worker_path(job.spec.model_path, worker_roots), threads=1)
    roots = [r["path"] for r in db.roots() if os.path.isdir(r["path"])]
    return ClusterPipeline(cluster, worker_roots=worker_roots, roots=roots, batch=commit, chunk=spec.batch,
                           flush_seconds=flush_seconds, decode=partial(embed_many, spec=spec), failed=crashed)


CRASH_ERROR = "the image decoder or the model crashed its worker process"


def crashed(item: EmbedItem, error: str) -> EmbedResult:
    """The result of an image that kills its worker every time (Pipeline's `failed` hook)."""
    return EmbedResult(item, None, CRASH_ERROR)
