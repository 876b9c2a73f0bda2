#!/usr/bin/env python3
"""Wall time of short `indexer` commands, interpreter start included, against the 0.25 s goal.

Usage::

    python benchmarks/bench_startup.py [--repeat 7]

Indexes examples/archive into a temporary database once, then runs each command `--repeat`
times as a user does (`python -m indexer ...` in a subprocess, so the console script's own
wrapper is left out), round-robin (one run of every command, then the next round: a slow spell
of the shared machine hits all of them alike), and prints the best and the median wall time,
which heavy modules each command imported (from `python -X importtime`), and two references:
`python -c pass` (the interpreter alone) and `python -c "import click, numpy"` (the floor of a
select, which needs both). The last column is a command's median over its reference's median:
the interpreter for commands without numpy, the floor for select. The best of several runs says
what the code costs, the median what a user waited for at that moment.

Bytecode is cached as `pip install` leaves it (compiled once, in a temporary PYTHONPYCACHEPREFIX,
so nothing is written into the checkout): with PYTHONDONTWRITEBYTECODE=1, as in some shells and
containers, every start of a checkout compiles the sources again (~60-100 ms here).

Prints figures only; it is never part of the test run's pass/fail.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOAL_S = 0.25
HEAVY = ("numpy", "PIL", "watchdog", "matplotlib", "natsort", "tqdm")


ENV = dict(os.environ)


def once(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
    return time.perf_counter() - started


def walls(cmds: list[list[str]], repeat: int) -> list[list[float]]:
    """`repeat` wall times of each command, taken round-robin (after one unmeasured run of each,
    which caches bytecode)."""
    for cmd in cmds:
        once(cmd)
    out: list[list[float]] = [[] for _ in cmds]
    for _ in range(repeat):
        for times, cmd in zip(out, cmds):
            times.append(once(cmd))
    return out


def heavy_imports(cmd: list[str]) -> list[str]:
    r = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, env=ENV)
    names = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    return [h for h in HEAVY if h in names]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=7, help="runs per command [7]")
    a = p.parse_args(argv)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        ENV["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        db = os.path.join(tmp, "index.db")
        subprocess.run([py, "-m", "indexer", "scan", str(REPO / "examples" / "archive"), "--db", db, "--quiet"],
                       check=True, stderr=subprocess.DEVNULL)
        cases = [
            ("python -c pass (reference)", [py, "-c", "pass"]),
            ("python -c 'import click, numpy' (floor)", [py, "-c", "import click, numpy"]),
            ("import indexer.cli", [py, "-c", "import indexer.cli"]),
            ("indexer --help", [py, "-m", "indexer", "--help"]),
            ("indexer status", [py, "-m", "indexer", "status", "--db", db]),
            ("indexer export", [py, "-m", "indexer", "export", "--db", db]),
            ("indexer select --target 5", [py, "-m", "indexer", "select", "--db", db, "--target", "5"]),
            ("indexer select --per folder --method kcenter", [py, "-m", "indexer", "select", "--db", db,
                                                             "--target", "3", "--per", "folder", "--method", "kcenter"]),
        ]
        print(f"bench_startup: Python {sys.version.split()[0]}, {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.2f}, {a.repeat} runs each, one session")
        print(f"{'command':<46}{'best s':>8}{'median s':>10}{'goal':>14}{'/ reference':>13}  heavy modules imported")
        all_times = walls([cmd for _, cmd in cases], a.repeat)
        medians = [statistics.median(t) for t in all_times]
        for (label, cmd), times, median in zip(cases, all_times, medians):
            best = min(times)
            heavy = heavy_imports(cmd)
            goal = "" if label.startswith(("python", "import")) else \
                ("ok" if median <= GOAL_S else "best ok" if best <= GOAL_S else "MISS")
            ref = medians[1] if "numpy" in heavy else medians[0]
            print(f"{label:<46}{best:>8.3f}{median:>10.3f}{goal:>14}{median / ref:>12.2f}x  {', '.join(heavy) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
