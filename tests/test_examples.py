"""examples/ is executable documentation: its generator still makes the archive that ships, and
the labels that ship match the archive (habit 11: examples run in the test suite)."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_make_archive_regenerates_the_shipped_archive(tmp_path):
    out = tmp_path / "archive"
    r = subprocess.run([sys.executable, str(EXAMPLES / "make_archive.py"), str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    shipped = EXAMPLES / "archive"
    assert listing(out) == listing(shipped)
    # the labels are text and fully determined by the seeds; pixels may differ by libjpeg version
    assert (tmp_path / "labels.csv").read_text() == (EXAMPLES / "labels.csv").read_text()
    for rel in listing(shipped):
        with Image.open(out / rel) as made, Image.open(shipped / rel) as ships:
            assert (made.size, made.mode) == (ships.size, ships.mode), rel
            assert made.getexif().get_ifd(0x8769).get(36867) == ships.getexif().get_ifd(0x8769).get(36867)


def test_shipped_labels_name_every_image_once():
    with open(EXAMPLES / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["path"] for r in rows) == listing(EXAMPLES / "archive")
    assert {r["label"] for r in rows} <= {"deer", "fox", "boar", "empty"}


def test_labels_import_and_select_per_class_on_the_example(tmp_path, runner):
    from indexer.cli import cli

    db = str(tmp_path / "ex.db")
    assert runner.invoke(cli, ["scan", str(EXAMPLES / "archive"), "--db", db, "--workers", "1", "--quiet"]).exit_code == 0
    r = runner.invoke(cli, ["labels", "import", str(EXAMPLES / "labels.csv"), "--db", db])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["select", "--db", db, "--per", "class", "--target", "2", "--format", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(r.stdout.splitlines()))
    groups = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row["path"])
    assert sorted(groups) == ["boar", "deer", "empty", "fox"]
    assert all(len(paths) == 2 for paths in groups.values())
