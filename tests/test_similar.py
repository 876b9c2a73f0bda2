"""`indexer similar`: the nearest indexed images to a file (decoded once), an id or an indexed path."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from imaging import save_jpeg, scene
from indexer.cli import cli


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Scanned once for the module: these tests only read."""
    tmp_path, runner = tmp_path_factory.mktemp("similar"), CliRunner()
    root = tmp_path / "archive"
    for k in range(6):
        save_jpeg(scene(500 + k, (480, 360)), root / "cam01" / f"IMG_{k:04d}.JPG", quality=90)
    save_jpeg(scene(500, (480, 360), shift=6), root / "cam02" / "IMG_0000_moved.JPG", quality=90)
    db = tmp_path / "index.db"
    r = runner.invoke(cli, ["scan", str(root), "--db", str(db), "--workers", "1", "-q"])
    assert r.exit_code == 0, r.output
    return root, db


def _run(runner: CliRunner, db: Path, *args: str) -> list[dict]:
    r = runner.invoke(cli, ["similar", "--db", str(db), "--format", "json", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_file_outside_the_index(indexed: tuple[Path, Path], runner: CliRunner, tmp_path: Path) -> None:
    root, db = indexed
    with Image.open(root / "cam01" / "IMG_0003.JPG") as im:
        im.resize((240, 180)).save(tmp_path / "query.jpg", quality=70)
    found = _run(runner, db, str(tmp_path / "query.jpg"), "--top", "3")
    assert Path(found[0]["path"]).name == "IMG_0003.JPG" and found[0]["bits"] <= 4
    assert [f["bits"] for f in found] == sorted(f["bits"] for f in found) and len(found) == 3


def test_by_id_and_by_path_leave_the_query_out(indexed: tuple[Path, Path], runner: CliRunner) -> None:
    root, db = indexed
    by_path = _run(runner, db, "--path", str(root / "cam01" / "IMG_0000.JPG"), "--top", "2")
    assert Path(by_path[0]["path"]).name == "IMG_0000_moved.JPG"
    assert all(Path(f["path"]).name != "IMG_0000.JPG" for f in by_path)
    by_id = _run(runner, db, "--id", str(by_path[0]["id"]), "--top", "1", "--hash", "dhash")
    assert Path(by_id[0]["path"]).name == "IMG_0000.JPG"
    within = _run(runner, db, "--id", str(by_path[0]["id"]), "--max-distance", "0")
    assert all(f["bits"] == 0 for f in within)
    table = runner.invoke(cli, ["similar", "--db", str(db), "--id", str(by_path[0]["id"]), "--top", "2"])
    assert table.exit_code == 0 and len(table.stdout.splitlines()) == 2


def test_python_api(indexed: tuple[Path, Path]) -> None:
    import indexer
    root, db = indexed
    found = indexer.similar(db, root / "cam01" / "IMG_0002.JPG", top=2)
    assert all(isinstance(f, indexer.SimilarImage) for f in found)
    assert "IMG_0002.JPG" not in [Path(f.path).name for f in found]  # the file is indexed: itself left out


@pytest.mark.parametrize("args, words", [
    ([], "exactly one of"),
    (["--id", "999"], "no image with id 999"),
    (["/no/such/file.jpg"], "no such image file"),
    (["--id", "1", "--max-distance", "70"], "0 to 64"),
    (["--id", "1", "--hash", "all"], "one hash"),
    (["--path", "/elsewhere/x.jpg"], "not in the index"),
])
def test_bad_input_one_line(indexed: tuple[Path, Path], runner: CliRunner, args: list[str], words: str) -> None:
    _, db = indexed
    r = runner.invoke(cli, ["similar", "--db", str(db), *args])
    assert r.exit_code != 0 and "Traceback" not in r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert lines[-1].startswith("Error: ") and words in lines[-1], r.output


def test_not_an_image(indexed: tuple[Path, Path], runner: CliRunner, tmp_path: Path) -> None:
    _, db = indexed
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a jpeg")
    r = runner.invoke(cli, ["similar", "--db", str(db), str(bad)])
    assert r.exit_code == 1 and r.output.strip().startswith("Error: cannot read") and len(r.output.splitlines()) == 1
