"""`indexer embed` and `indexer models`."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import Interrupted
from . import cli
from .common import cluster_options, db_option, echo_err, open_db, pool_options, quiet_option

PRESETS = ("dinov2", "clip", "imagenet")  # indexer.embed.preprocess.PRESETS


def _triple(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(float(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter("give three numbers R,G,B, e.g. 0.485,0.456,0.406") from None
    if len(out) != 3:
        raise click.BadParameter("give three numbers R,G,B, e.g. 0.485,0.456,0.406")
    return out


@cli.command("embed")
@db_option
@click.option("--model", "model", type=click.Path(path_type=Path), required=True, metavar="PATH.onnx",
              help="Your ONNX image model: one image input (N, 3, H, W), one vector output per image.")
@click.option("--preset", type=click.Choice(PRESETS), default=None,
              help="Resize, crop and normalisation: dinov2, clip (also BioCLIP) or imagenet [default: imagenet].")
@click.option("--input-size", type=click.IntRange(min=8), default=None, metavar="N",
              help="Crop fed to the model [default: the model's static input size, else 224].")
@click.option("--mean", callback=_triple, default=None, metavar="R,G,B", help="Normalisation mean (with --std).")
@click.option("--std", callback=_triple, default=None, metavar="R,G,B", help="Normalisation std (with --mean).")
@click.option("--output", "output_name", default=None, metavar="NAME",
              help="The model output to store, when it has several vector outputs.")
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True,
              help="Images per inference call.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Decoding and inference processes [default: number of cores].")
@cluster_options
@click.option("--where", metavar="SQL", help="Only images for which this SQL expression over image_view is true.")
@click.option("--retry-errors", is_flag=True, help="Try images this model failed on again.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@quiet_option
def embed_cmd(db_path: Path | None, model: Path, preset: str | None, input_size: int | None,
              mean: tuple[float, ...] | None, std: tuple[float, ...] | None, output_name: str | None, batch: int,
              workers: int | None, cluster: str | None, worker_roots: tuple[str, ...], where: str | None,
              retry_errors: bool, as_json: bool, quiet: bool) -> None:
    """Store what your ONNX image model sees in each indexed image (for select, similar, duplicates).

    Incremental and resumable like scan: only live images without a vector of this model are
    decoded (once, reduced), and a re-run carries on after Ctrl-C or kill -9.

    \b
    indexer embed --model dinov2-small.onnx --preset dinov2
    indexer embed --model bioclip-visual.onnx --preset clip --batch 64
    indexer embed --model dinov2-small.onnx --preset dinov2 --cluster tcp://head:8786
    """
    from ..embed.run import prepare_job, run_embed
    pool = pool_options(cluster, worker_roots, workers)
    job = prepare_job(model, preset=preset, input_size=input_size, mean=mean, std=std, batch=batch,
                      workers=workers, output=output_name)
    with open_db(db_path, check=True) as db:
        try:
            summary = run_embed(db, job, where=where, retry_errors=retry_errors, progress=False if quiet else None,
                                **pool)  # type: ignore[arg-type]
        except Interrupted as exc:
            _report(exc.args[0], as_json)
            echo_err("Interrupted: everything committed so far is kept. Run the same command again to resume.")
            raise SystemExit(130) from None
    _report(summary, as_json)


def _report(s: object, as_json: bool) -> None:
    from ..embed.run import EmbedSummary
    assert isinstance(s, EmbedSummary)
    if as_json:
        click.echo(json.dumps(s.as_dict()))
        return
    c = s.counts
    echo_err(f"{s.status}: {c.embedded} embedded, {c.failed} failed, {c.skipped} skipped with {s.model} "
             f"({s.dim}-d) in {s.elapsed:.1f} s ({s.rate:.1f} images/s)")
    for reason, n in s.skipped_reasons.items():
        echo_err(f"note: {n} images {reason}")
    if c.failed:
        echo_err("See why with: indexer models --errors " + s.model)


@cli.command("models")
@db_option
@click.option("--errors", "errors_of", metavar="MODEL", default=None, help="List the images MODEL failed on, and why.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def models_cmd(db_path: Path | None, errors_of: str | None, as_json: bool) -> None:
    """The embedding models of the index, with their vectors and preprocessing."""
    from ..embed.store import failures, list_models, resolve_model
    with open_db(db_path, write=False) as db:
        if errors_of is not None:
            m = resolve_model(db, errors_of)
            for path, error in failures(db, m.id):
                click.echo(f"{path}: {error}")
            return
        rows = list_models(db)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=1))
        return
    if not rows:
        echo_err("no embedding models (add one with: indexer embed --model PATH.onnx)")
    for r in rows:
        click.echo(f"{r.name}: {r.vectors} vectors ({r.failed} failed), {r.dim}-d, {r.preset} "
                   f"resize {r.resize} crop {r.crop}, sha256 {r.sha256[:12]}, last used {r.last_used_at}")
