"""The README's quick start is executable documentation: its commands run here as written."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)


def test_quick_start_is_two_commands_and_ci_runs_the_test_one():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert "indexer scan examples/archive" in commands[0]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci


def test_quick_start_main_job_runs(tmp_path):
    # Everything after the install runs as written, in a copy-free working folder beside examples/.
    (tmp_path / "examples").symlink_to(REPO / "examples")
    steps = quick_start_commands()[0].split("&&")[1:]
    out = ""
    for step in steps:
        argv = shlex.split(step)
        assert argv[0] == "indexer"
        r = subprocess.run([sys.executable, "-m", "indexer", *argv[1:]], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        out += r.stdout
    assert (tmp_path / "index.db").exists()
    assert "45 indexed, 0 failed, 0 missing" in out


def test_stats_example_is_what_the_command_prints(tmp_path):
    block = README.split("`indexer select --target 3 --per level:2 --stats` prints", 1)[1]
    lines = re.search(r"```\n(.*?)\n```", block, flags=re.S).group(1).splitlines()
    db = str(tmp_path / "ex.db")
    run = [sys.executable, "-m", "indexer"]
    assert subprocess.run([*run, "scan", str(REPO / "examples" / "archive"), "--db", db, "--quiet"],
                          capture_output=True, timeout=300).returncode == 0
    r = subprocess.run([*run, "select", "--db", db, "--target", "3", "--per", "level:2", "--stats"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for line in lines:
        assert line in r.stderr.splitlines(), line
