"""Start-up: the command imports only what the command it runs needs.

Each check runs in a fresh interpreter (what is imported is the question, so the test process,
which has imported everything already, cannot answer it). Behaviour, not timings: the figures
are in benchmarks/bench_startup.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("numpy", "PIL", "watchdog", "matplotlib")
REPO = Path(__file__).resolve().parent.parent


def loaded_after(code: str, cwd: Path | None = None) -> dict[str, bool]:
    """Run `code` in a fresh interpreter; which of HEAVY it left imported."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=cwd,
                       env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_import_indexer_cli_imports_no_numpy_pil_watchdog_or_matplotlib():
    assert loaded_after("import indexer.cli") == dict.fromkeys(HEAVY, False)


def test_help_version_and_status_import_nothing_heavy(tmp_path, archive):
    run = ("from indexer.cli import run\n"
           "for args in ({args}):\n"
           "    try:\n"
           "        run(list(args))\n"
           "    except SystemExit:\n"
           "        pass\n")
    assert loaded_after(run.format(args='["--help"], ["--version"], ["scan", "--help"], ["select", "--help"]'),
                        tmp_path) == dict.fromkeys(HEAVY, False)
    db = tmp_path / "index.db"
    r = subprocess.run([sys.executable, "-m", "indexer", "scan", str(archive), "--db", str(db), "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = loaded_after(run.format(args=f'["status", "--db", {str(db)!r}], ["export", "--db", {str(db)!r}]'), tmp_path)
    assert got == dict.fromkeys(HEAVY, False)


def test_select_needs_numpy_but_not_pil_or_watchdog(tmp_path, archive):
    db = tmp_path / "index.db"
    code = (f"from indexer.cli import run\n"
            f"assert run(['scan', {str(archive)!r}, '--db', {str(db)!r}, '--quiet', '--workers', '1']) == 0\n"
            f"import sys\nassert 'numpy' not in sys.modules and 'PIL' not in sys.modules, 'the scan parent decodes'\n"
            f"assert 'tqdm' not in sys.modules, 'a quiet scan imports its progress bar'\n"
            f"assert run(['select', '--db', {str(db)!r}, '--target', '3', '--quiet']) == 0\n")
    got = loaded_after(code, tmp_path)
    assert got == {"numpy": True, "PIL": False, "watchdog": False, "matplotlib": False}


def test_a_select_loads_only_its_own_command_and_what_it_draws_on(tmp_path, archive):
    """A select on a small index (the select cache built by an earlier one): no other command's
    module, and none of numpy.random (a pick of a small pool draws nothing), numpy.ma (np.unique
    imports it) or natsort (nothing is sorted when the cache is current)."""
    db = tmp_path / "index.db"
    for args in (["scan", str(archive), "--db", str(db), "--quiet"], ["select", "--db", str(db), "--target", "3"]):
        r = subprocess.run([sys.executable, "-m", "indexer", *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    watched = ("numpy.random", "numpy.ma", "natsort", "indexer.cli.scan", "indexer.cli.duplicates",
               "indexer.cli.report", "indexer.cli.labels", "indexer.cli.embed")
    code = (f"from indexer.cli import run\n"
            f"assert run(['select', '--db', {str(db)!r}, '--target', '3', '--quiet']) == 0\n"
            f"import sys\nprint('LOADED', [m for m in {watched!r} if m in sys.modules])\n")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "LOADED []"


def test_option_choices_declared_in_the_cli_are_the_libraries():
    from indexer.cli import common
    from indexer.output import FORMATS
    from indexer.selection import METHOD_NAMES

    assert common.METHOD_NAMES == METHOD_NAMES
    assert common.FORMATS == FORMATS


def test_version_is_printed(runner):
    from indexer.cli import cli

    r = runner.invoke(cli, ["--version"])
    assert r.exit_code == 0 and r.output.startswith("indexer, version ")


@pytest.mark.parametrize("name", ["IMAGE_EXTENSIONS"])
def test_features_still_exports_what_moved(name):
    import indexer.discover
    import indexer.features

    assert getattr(indexer.features, name) is getattr(indexer.discover, name)
