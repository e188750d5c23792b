"""esbgen installed like any tool: built as a wheel, installed into a fresh virtualenv, run from elsewhere.

No editable install, no checkout on ``sys.path``: the commands of the README run
from an unrelated folder against a scratch ESB, ``esbgen new`` included (its
templates are package data).  The virtualenv is kept in ``build/wheel-test/``
and reused while the sources it was built from are the same (a stamp of their
hashes), so a warm run pays only for the commands.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO
from esb_schemas import LEGACY_SQLITE

BUILD = REPO / "build" / "wheel-test"
VENV = BUILD / "venv"
SOURCES = ("esbgen", "plugins/esbgen-nginx/esbgen_nginx", "pyproject.toml", "plugins/esbgen-nginx/pyproject.toml",
           "README.md", "plugins/esbgen-nginx/README.md")


def _stamp() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        path = REPO / name
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(REPO)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _quiet(*command: str, cwd: Path | None = None) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({done.returncode}): {(done.stdout + done.stderr)[-3000:]}", pytrace=False)
    return done


def _build_wheel(source: Path, name: str, out: Path, scratch: Path) -> Path:
    """Build from a copy of the sources, so the build leaves nothing in the checkout."""
    copy = scratch / name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".venv*",
                                                                  "tests", "demo-esb", "fixtures", "benchmarks",
                                                                  "plugins", ".git"))
    done = _quiet(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(copy))
    output = (done.stdout + done.stderr).lower()
    assert "deprecat" not in output, output  # the project's own pyproject.toml warns of nothing
    return next(out.glob(f"{name.replace('-', '_')}-*.whl"))


@pytest.fixture(scope="session")
def installed() -> Path:
    """``build/wheel-test/venv`` with esbgen and esbgen-nginx installed from their wheels."""
    stamp = BUILD / "stamp"
    current = _stamp()
    if (VENV / "bin" / "esbgen").is_file() and stamp.is_file() and stamp.read_text() == current:
        return VENV
    shutil.rmtree(BUILD, ignore_errors=True)
    BUILD.mkdir(parents=True)
    wheels, scratch = BUILD / "wheels", BUILD / "src"
    scratch.mkdir()
    core = _build_wheel(REPO, "esbgen", wheels, scratch)
    nginx = _build_wheel(REPO / "plugins" / "esbgen-nginx", "esbgen-nginx", wheels, scratch)
    _quiet(sys.executable, "-m", "venv", str(VENV))
    _quiet(str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", str(core), str(nginx))
    shutil.rmtree(scratch)
    stamp.write_text(current)
    return VENV


@pytest.fixture
def place(tmp_path) -> dict[str, Path]:
    """A scratch ESB, a CE beside it, a database, and an unrelated working folder."""
    root = tmp_path / "paas" / "esb"
    shutil.copytree(FIXTURES / "esb", root)
    ce = tmp_path / "ce" / "esb"
    shutil.copytree(FIXTURES / "esb-ce", ce)
    database = tmp_path / "esb.sqlite3"
    connection = sqlite3.connect(database)
    connection.execute(LEGACY_SQLITE)
    connection.commit()
    connection.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return {"root": root, "ce": ce, "db": database, "cwd": elsewhere, "out": tmp_path / "template"}


def rows(database: Path) -> list[tuple]:
    connection = sqlite3.connect(database)
    try:
        return connection.execute("SELECT name, label, remark FROM esb_component_system ORDER BY id").fetchall()
    finally:
        connection.close()


def test_every_readme_command_runs_from_the_installed_wheel(installed, place):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESBGEN_", "PYTHON", "DJANGO_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{installed / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    root, url = place["root"], f"sqlite://{place['db']}"

    def esbgen(*args: str, status: int = 0) -> str:
        done = subprocess.run(["esbgen", *map(str, args)], cwd=place["cwd"], env=env, capture_output=True, text=True,
                              check=False)
        assert done.returncode == status, f"esbgen {' '.join(map(str, args))}: {done.stdout}{done.stderr}"
        return done.stdout

    where = subprocess.run([str(installed / "bin" / "python"), "-c", "import esbgen; print(esbgen.__file__)"],
                           cwd=place["cwd"], env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(installed)) and "site-packages" in where  # the wheel's copy, not the checkout

    from esbgen import __version__

    assert esbgen("--version") == f"esbgen, version {__version__}\n"
    assert "Usage: esbgen [OPTIONS] COMMAND [ARGS]..." in esbgen("--help")
    assert "sops" in esbgen("list", "--esb-root", root)
    assert "OK: " in esbgen("check", "--esb-root", root)

    assert "Dry run: nothing was changed." in esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root,
                                                      "--dry-run")
    assert "Cloned sops as bk_sops_ce" in esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root,
                                                 "--database", url)
    assert rows(place["db"]) == [("BK_SOPS_CE", "BK_SOPS_CE", "Cloned from SOPS by esbgen")]

    created = esbgen("new", "bk_demo", "--app-code", "bk-demo", "--esb-root", root)
    assert "Created bk_demo" in created
    assert (root / "components/confapis/bk_demo/bk_demo.yaml").is_file()
    assert (root / "components/bk/apisv2/bk_demo/toolkit/configs.py").is_file()

    assert "Retargeted itsm" in esbgen("retarget", "itsm", "--app-code", "bk-itsm-ce", "--esb-root", root)
    assert "Synced from" in esbgen("sync-edition", "--from", place["ce"], "--esb-root", root)
    assert "Wrote a cookiecutter template of sops" in esbgen("templatize", "sops", "-o", place["out"], "--as", "bk_x",
                                                             "--esb-root", root)
    assert (place["out"] / "cookiecutter.json").is_file()
    assert "Database: inserted row ITSM" in esbgen("register", "itsm", "--database", url, "--esb-root", root)
    assert "OK: " in esbgen("check", "--esb-root", root)

    history = esbgen("undo", "--list", "--esb-root", root)
    assert len(history.splitlines()) == 5 and all(" applied " in line for line in history.splitlines())
    assert "Undid change" in esbgen("undo", "--esb-root", root, "--database", url)
    assert rows(place["db"]) == [("BK_SOPS_CE", "BK_SOPS_CE", "Cloned from SOPS by esbgen")]

    plugins = esbgen("plugins")
    assert "nginx  (entry point of esbgen-nginx" in plugins and "confapis  (built-in)" in plugins
    assert "Usage: esbgen swap" in esbgen("swap", "--help")
    assert "esbgen: error:" in subprocess.run(["esbgen", "clone", "nope", "--as", "bk_nope", "--esb-root", str(root)],
                                              cwd=place["cwd"], env=env, capture_output=True, text=True).stderr
    assert list(place["cwd"].iterdir()) == []  # nothing was written where it ran from
