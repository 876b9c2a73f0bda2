"""`scan --embed MODEL`: index and embed in one pass, each new or changed file read and decoded once.

The scan runs as usual with `task.extract_and_embed` as its workers' task: each result carries
the file's features and its vector. After the scan commits a batch of image rows (whose trigger
drops the vectors of changed content), the vectors of that batch are committed next. Then the
images of the scanned roots that still have no vector of the model (indexed before, or a batch
whose vectors a kill -9 cut off) are embedded by a normal `embed` run, so the result is the same
as `scan` followed by `embed`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..db import Database
from ..db import embeddings as qe
from .run import EmbedJob, EmbedSummary, run_embed
from .task import ScanEmbedResult


class ScanEmbedder:
    """Stores the vectors of a scan's batches (Scanner.execute's on_batch)."""

    def __init__(self, db: Database, job: EmbedJob) -> None:
        self.db, self.job = db, job
        self.model_id: int | None = None
        self.embedded = self.failed = 0

    @property
    def decode(self) -> Any:
        return self.job.scan_decode

    def on_batch(self, results: list[Any], run_id: int | None = None) -> None:
        if self.model_id is None:  # registered once the scan holds the writer lock
            self.model_id = self.job.register(self.db)
        rows = []
        for r in results:
            if not isinstance(r, ScanEmbedResult) or r.features is None or (r.vector is None and r.embed_error is None):
                continue
            known = self.db.known_file(r.item.root_id, r.item.folder, r.item.name)
            if known is None:
                continue
            rows.append((known.id, r.vector, r.embed_error))
            self.embedded += r.vector is not None
            self.failed += r.embed_error is not None
        if rows:
            qe.write(self.db, self.model_id, rows, run_id)


def scan_and_embed(db: Database, roots: Sequence[str], job: EmbedJob, **options: Any) -> tuple[Any, EmbedSummary]:
    """scan(db, roots, **options) with the job's model: (the scan's summary, the summary of the
    embed run that completes it, its counts including the vectors stored by the scan itself). Ctrl-C in either raises Interrupted with the scan's summary
    (what the embed run committed is kept too: the same command carries on)."""
    from ..errors import Interrupted
    from ..scan import Scanner, normalize_root
    from . import EmbedError

    if options.get("thumbnails"):
        raise EmbedError("--embed decodes each image itself: it does not go with --exif-thumbnails")
    embedder = ScanEmbedder(db, job)
    scanner = Scanner(db, decode=embedder.decode, **options)
    scanned = scanner.execute(list(roots), lambda rs, progress, pipe: scanner.work(rs, progress),
                              {"embed": job.info.path},
                              on_batch=lambda results: embedder.on_batch(results, scanner.run_id))
    paths = sorted({r["path"] for r in db.roots()
                    if any(_under(normalize_root(p), r["path"]) for p in roots)})
    where = " OR ".join("root = " + _quote(p) for p in paths) or "0"
    try:
        rest = run_embed(db, job, workers=options.get("workers"), where=where, progress=options.get("progress"),
                         cluster=options.get("cluster"), worker_roots=tuple(options.get("worker_roots", ())))
    except Interrupted:
        raise Interrupted(scanned) from None
    rest.counts.embedded += embedder.embedded
    rest.counts.failed += embedder.failed
    return scanned, rest


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/") or root.startswith(path.rstrip("/") + "/")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
