"""The built wheel, installed away from the checkout, must find its migrations and index an archive.

The migrations folder lives at the top of the repository and is force-included in the wheel as
indexer/_migrations: these tests catch a wheel that works only beside a checkout.

The wheel goes into a fresh venv of its own (no network: its dependencies are not installed
there). They are borrowed from the environment running the tests, whatever it is (a venv, the
system Python, a user site): a .pth file in the test venv lists that interpreter's site-packages
folders. `--system-site-packages` would not do: it exposes the *base* interpreter's folders,
not those of a venv the tests run in.
"""
from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from imaging import make_archive

REPO = Path(__file__).resolve().parent.parent


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "INDEXER_DB", "PYTHONHOME")}
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, env=env, **kw)
    assert r.returncode == 0, f"{cmd}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling (no build isolation)")
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, REPO])
    [whl] = out.glob("indexer-*.whl")
    return whl


def running_site_dirs() -> list[str]:
    """The site-packages folders of the interpreter running the tests, in its sys.path order."""
    found = [sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    dirs = list(dict.fromkeys(os.path.abspath(d) for d in found if os.path.isdir(d)))
    order = {os.path.abspath(p): i for i, p in reversed(list(enumerate(sys.path)))}
    return sorted(dirs, key=lambda d: order.get(d, len(order)))


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh, isolated venv with the wheel installed; its dependencies come from the running env.

    The wheel is installed first, while the venv sees nothing but itself, so pip never meets the
    checkout's editable install. Then a .pth file appends the running interpreter's site folders
    to the venv's sys.path, after its own site-packages. Plain path lines: the .pth files of
    those folders (the editable install's among them) are not run, so the checkout stays out.
    """
    import pip

    if tuple(int(x) for x in pip.__version__.split(".")[:2]) < (22, 3):
        pytest.skip("pip --python needs pip >= 22.3")
    env_dir = tmp_path_factory.mktemp("venv") / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", env_dir])
    python = bin_path(env_dir, "python")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel])
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    (Path(purelib) / "_outer_site_packages.pth").write_text("".join(d + "\n" for d in running_site_dirs()))
    return env_dir


def bin_path(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / (name + (".exe" if os.name == "nt" else ""))


def test_wheel_contents(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        shipped = {n: zf.read(n) for n in names if n.startswith("indexer/_migrations/")}
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "indexer/_migrations/0001_initial.sql" in names
    # every migration of the checkout, byte for byte, and nothing else
    checkout = {f"indexer/_migrations/{p.name}": p.read_bytes() for p in (REPO / "migrations").glob("*.sql")}
    assert shipped == checkout
    assert "indexer/cli/__init__.py" in names
    assert "indexer/__main__.py" in names
    source = {p.relative_to(REPO).as_posix() for p in (REPO / "indexer").rglob("*.py")}
    assert source <= names, f"modules missing from the wheel: {sorted(source - names)}"
    assert not any(n.startswith(("tests/", "migrations/", "examples/")) for n in names)
    assert "indexer = indexer.__main__:main" in entry_points


def test_installed_package_finds_its_migrations(venv, tmp_path):
    python = bin_path(venv, "python")
    probe = ("import json, natsort, indexer, indexer.migrations as m; "
             "print(json.dumps([indexer.__file__, str(m.migrations_dir()), len(m.load_migrations()), "
             "natsort.__file__]))")
    module, folder, count, dependency = json.loads(run([python, "-c", probe], cwd=tmp_path).stdout)
    here = venv.resolve()
    assert Path(module).resolve().is_relative_to(here), f"imported {module}, not the installed wheel"
    assert Path(folder).resolve().is_relative_to(here) and Path(folder).name == "_migrations"
    assert count == len(list((REPO / "migrations").glob("*.sql")))
    import natsort  # the dependencies are those of the environment running the tests

    assert Path(dependency).resolve() == Path(natsort.__file__).resolve()


def test_installed_command_scans_an_archive(venv, tmp_path):
    archive = tmp_path / "archive"
    make_archive(archive, cameras=1, per_camera=3, size=(160, 120))
    work = tmp_path / "elsewhere"  # not the checkout: nothing can be picked up from the cwd
    work.mkdir()
    db = work / "index.db"
    r = run([bin_path(venv, "indexer"), "scan", archive, "--db", db, "--workers", "1", "--quiet", "--json"],
            cwd=work)
    summary = json.loads(r.stdout)
    assert (summary["status"], summary["new"], summary["failed"]) == ("completed", 3, 0)
    r = run([bin_path(venv, "python"), "-m", "indexer", "status", "--db", db, "--json"], cwd=work)
    info = json.loads(r.stdout)
    assert info["images"]["indexed"] == 3
    assert info["schema_version"] == len(list((REPO / "migrations").glob("*.sql")))
    r = run([bin_path(venv, "indexer"), "--version"], cwd=work)
    assert "0+unknown" not in r.stdout  # the version comes from the installed metadata
