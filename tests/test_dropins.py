"""The smartdownsample drop-ins from any caller: stdin, a script without a main guard."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TARGET = 5
CALLS = {
    "sample_diverse": "indexer.sample_diverse(paths, {target}, n_workers=2, show_progress=False, "
                      "show_summary=False, db={db!r})",
    "select_distinct": "indexer.select_distinct(paths, {target}, n_workers=2, show_progress=False, db={db!r})",
}
# No `if __name__ == "__main__":` on purpose: spawn used to run this again in every worker.
CALLER = textwrap.dedent('''
    import glob, json, time
    print("caller body runs", flush=True)
    import indexer
    started = time.monotonic()
    paths = sorted(glob.glob({root!r} + "/**/*.JPG", recursive=True))
    out = {call}
    print(json.dumps({{"paths": out, "seconds": time.monotonic() - started}}), flush=True)
''')


def _caller(archive: Path, tmp_path: Path, func: str) -> str:
    call = CALLS[func].format(target=TARGET, db=str(tmp_path / "cache.db"))
    return CALLER.format(root=str(archive), call=call)


def _check(proc: subprocess.CompletedProcess[str], archive: Path, seconds: float) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines.count("caller body runs") == 1, proc.stdout  # the workers never ran the caller
    got = json.loads(lines[-1])
    assert len(got["paths"]) == TARGET and len(set(got["paths"])) == TARGET
    assert all(Path(p).is_file() and Path(p).is_relative_to(archive) for p in got["paths"])
    assert seconds < 60, f"the call took {seconds:.1f} s"


@pytest.mark.parametrize("func", sorted(CALLS))
def test_a_drop_in_works_when_the_caller_is_read_from_stdin(archive, tmp_path, func):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-"], input=_caller(archive, tmp_path, func), text=True,
                          capture_output=True, cwd=tmp_path, timeout=120)
    _check(proc, archive, time.monotonic() - started)


@pytest.mark.parametrize("func", sorted(CALLS))
def test_a_drop_in_works_from_a_script_without_a_main_guard(archive, tmp_path, func):
    script = tmp_path / "unguarded.py"
    script.write_text(_caller(archive, tmp_path, func))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(script)], text=True, capture_output=True, cwd=tmp_path, timeout=120)
    _check(proc, archive, time.monotonic() - started)
