"""Shared fixtures: a scratch copy of a sample ESB root, and the CLI run in-process."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root (but esbgen's own state folder) with the hash of its bytes."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".esbgen"]
        for name in filenames:
            path = Path(dirpath, name)
            result[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


def changed_paths(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """The paths whose entry differs between two snapshots."""
    return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}


def edit_once(path: Path, old: bytes, new: bytes) -> None:
    """Replace text that stands exactly once in a file (a test's hand edit of a tree)."""
    data = path.read_bytes()
    assert data.count(old) == 1, old
    path.write_bytes(data.replace(old, new))


def esbgen_process(root: Path, *args: str, interrupt: str | None = None) -> subprocess.CompletedProcess:
    """The esbgen command line in a process of its own, on ``root``; ``interrupt``: ESBGEN_INTERRUPT_AT."""
    from faultkit import with_faults

    env = {**os.environ, "ESBGEN_LOCK_TIMEOUT": "30"}
    env.pop("ESBGEN_INTERRUPT_AT", None)
    if interrupt:
        env = with_faults({**env, "ESBGEN_INTERRUPT_AT": interrupt})
    return subprocess.run([sys.executable, "-m", "esbgen", *args, "--esb-root", str(root)], env=env,
                          capture_output=True, text=True, timeout=120)


def assert_one_line_refusal(result, code: int = 1) -> None:
    """What an operator sees of a refusal: one ``esbgen: error:`` line, that exit status, no traceback."""
    assert result.exit_code == code, (result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("esbgen: error: "), result.stderr
    assert "Traceback" not in result.stderr + result.output


@pytest.fixture
def esb_root(tmp_path: Path) -> Path:
    """A scratch copy of fixtures/esb, the sample ESB root."""
    root = tmp_path / "esb"
    shutil.copytree(FIXTURES / "esb", root, symlinks=True)
    return root


@pytest.fixture
def ce_root(tmp_path: Path) -> Path:
    """A scratch copy of fixtures/esb-ce, the CE-like ESB root."""
    root = tmp_path / "esb-ce"
    shutil.copytree(FIXTURES / "esb-ce", root, symlinks=True)
    return root


@dataclass
class Result:
    exit_code: int
    output: str
    stderr: str


@pytest.fixture
def run_esbgen(capsys):
    """Run the esbgen command line in this process, as an operator would type it."""
    from esbgen.cli import run

    def invoke(*args: str, cwd: Path | None = None) -> Result:
        old = os.getcwd()
        if cwd is not None:
            os.chdir(cwd)
        try:
            capsys.readouterr()
            code = run([str(a) for a in args])
        finally:
            os.chdir(old)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


# Real services (MariaDB, supervisord) and the test ESB project for registration, sync and restart.
pytest_plugins = ["conftest_services"]


@pytest.fixture
def register_plugin():
    """``register_plugin(plugin, name)`` registers a plugin object with esbgen's plugin manager until the test ends."""
    from esbgen.plugins import get_plugin_manager

    pm = get_plugin_manager()
    registered = []

    def add(plugin, name):
        pm.register(plugin, name=name)
        registered.append(plugin)
        return plugin

    yield add
    for plugin in registered:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
