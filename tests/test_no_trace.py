"""A run that is refused, a usage error, and every command that changes nothing leave the ESB root as it was.

"As it was" is every entry under the root, esbgen's state folder included:
its path, its kind, its mode, its bytes (or a link's target).  Each command
runs on a root without any esbgen state, and on one that has the state of an
earlier applied change.  State appears only with a change that is applied.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from conftest import FIXTURES
from esb_schemas import LEGACY_SQLITE
from faultkit import with_faults



def entries(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (nothing skipped) with its kind, mode and content."""
    found: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            mode = stat.S_IMODE(info.st_mode)
            relative = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                found[relative] = ("link", mode, os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[relative] = ("dir", mode)
            else:
                found[relative] = ("file", mode, path.read_bytes())
    return found


@pytest.fixture(params=["fresh", "with-history"])
def root(request, tmp_path, run_esbgen) -> Path:
    root = tmp_path / "esb"
    shutil.copytree(FIXTURES / "esb", root, symlinks=True)
    if request.param == "with-history":
        done = run_esbgen("clone", "itsm", "--as", "bk_itsm_ce", "--esb-root", root)
        assert done.exit_code == 0, done.stderr
        assert (root / ".esbgen" / "journal").is_dir()
    else:
        assert not (root / ".esbgen").exists()
    return root


@pytest.fixture
def database(tmp_path) -> Path:
    path = tmp_path / "esb.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute(LEGACY_SQLITE)
    connection.commit()
    connection.close()
    return path


@pytest.fixture
def ce(tmp_path) -> Path:
    ce = tmp_path / "esb-ce"
    shutil.copytree(FIXTURES / "esb-ce", ce, symlinks=True)
    return ce


READ_ONLY = {
    "list": ["list"],
    "check": ["check"],
    "check one": ["check", "sops"],
    "undo --list": ["undo", "--list"],
    "clone --dry-run": ["clone", "sops", "--as", "bk_sops_ce", "--dry-run"],
    "new --dry-run": ["new", "bk_demo", "--app-code", "bk-demo", "--dry-run"],
    "retarget --dry-run": ["retarget", "sops", "--app-code", "bk-sops-ce", "--dry-run"],
    "sync-edition --dry-run": ["sync-edition", "--from", "{ce}", "--dry-run"],
    "register --dry-run": ["register", "itsm", "--database", "sqlite://{db}", "--dry-run"],
    "clone --dry-run with a row": ["clone", "sops", "--as", "bk_sops_ce", "--database", "sqlite://{db}", "--dry-run"],
    "templatize": ["templatize", "sops", "-o", "{out}"],
}

REFUSED = {
    "clone: a bad name": (["clone", "sops", "--as", "Bad-Name"], 2),
    "clone: an unknown source": (["clone", "nope", "--as", "bk_nope"], 1),
    "clone: an official name": (["clone", "sops", "--as", "cc"], 2),
    "clone: onto an existing system": (["clone", "sops", "--as", "itsm"], 2),
    "new: a bad name": (["new", "Bad", "--app-code", "bad"], 2),
    "new: an unknown type": (["new", "bk_demo", "--app-code", "bk-demo", "--type", "nope"], 2),
    "retarget: an unknown system": (["retarget", "nope", "--app-code", "bk-nope"], 1),
    "register: an unknown system": (["register", "nope", "--database", "sqlite://{db}"], 1),
    "register: no database": (["register", "itsm"], 2),
    "clone: a missing database file": (["clone", "sops", "--as", "bk_sops_ce", "--database", "sqlite:///nowhere/x.db"], 1),
    "sync-edition: the tree itself": (["sync-edition", "--from", "{root}"], 2),
    "usage: missing --as": (["clone", "sops"], 2),
    "usage: unknown option": (["list", "--nope"], 2),
    "undo: a change that is not there": (["undo", "--id", "99999"], 1),
}

NO_ROOT = {
    "--help": ["--help"],
    "--version": ["--version"],
    "clone --help": ["clone", "--help"],
    "undo --help": ["undo", "--help"],
    "plugins": ["plugins"],
    "unknown command": ["nope"],
}


def fill(args: list[str], root: Path, db: Path, ce: Path, out: Path) -> list[str]:
    return [a.format(root=root, db=db, ce=ce, out=out) for a in args]


@pytest.mark.parametrize("name", list(READ_ONLY))
def test_a_command_that_changes_nothing_leaves_no_trace(name, root, database, ce, tmp_path, run_esbgen, unblocked_db):
    args = fill(READ_ONLY[name], root, database, ce, tmp_path / "template-out")
    before = entries(root)
    done = run_esbgen(*args, "--esb-root", root, cwd=root)
    assert done.exit_code in (0, 1), done.stderr  # check exits 1 when it finds a problem; none expected here
    assert done.exit_code == 0, done.output + done.stderr
    assert entries(root) == before


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_refused_run_leaves_no_trace(name, root, database, ce, tmp_path, run_esbgen, unblocked_db):
    args, status = REFUSED[name]
    args = fill(args, root, database, ce, tmp_path / "out")
    before = entries(root)
    done = run_esbgen(*args, "--esb-root", root, cwd=root)
    assert done.exit_code == status, done.output + done.stderr
    assert entries(root) == before


@pytest.mark.parametrize("name", list(NO_ROOT))
def test_commands_without_a_root_leave_the_current_folder_alone(name, root, run_esbgen):
    before = entries(root)
    done = run_esbgen(*NO_ROOT[name], cwd=root)
    assert done.exit_code in (0, 2), done.stderr
    assert entries(root) == before


def test_a_repeat_that_has_nothing_to_do_leaves_no_trace(tmp_path, run_esbgen):
    root = tmp_path / "esb"
    shutil.copytree(FIXTURES / "esb", root, symlinks=True)
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root).exit_code == 0
    after = entries(root)
    again = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root)
    assert again.exit_code == 0 and "Nothing to do" in again.output
    assert entries(root) == after

    shutil.rmtree(root / ".esbgen")  # an operator cleared the history: a no-op does not bring it back
    without = entries(root)
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root).exit_code == 0
    assert entries(root) == without


def test_state_appears_with_the_first_applied_change_and_holds_no_scratch(tmp_path, run_esbgen):
    root = tmp_path / "esb"
    shutil.copytree(FIXTURES / "esb", root, symlinks=True)
    done = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root)
    assert done.exit_code == 0, done.stderr
    state = sorted(p.name for p in (root / ".esbgen").iterdir())
    assert state == ["journal", "lock"]
    assert (root / ".esbgen" / "lock").read_text() == ""
    assert len(list((root / ".esbgen" / "journal").iterdir())) == 1


def test_the_lock_needs_no_state_folder_and_still_keeps_a_second_writer_out(tmp_path):
    import subprocess

    from crashkit import ESBGEN, environment
    from esbgen.journal.store import locked

    root = tmp_path / "esb"
    shutil.copytree(FIXTURES / "esb", root, symlinks=True)
    before = entries(root)
    with locked(root, create=False):
        assert entries(root) == before  # taking the lock writes nothing
        second = subprocess.run([ESBGEN, "clone", "sops", "--as", "bk_sops_ce", "--esb-root", str(root)],
                                env=environment(None, None, ESBGEN_LOCK_TIMEOUT="0.3"), capture_output=True,
                                text=True, check=False)
    assert second.returncode == 1
    assert second.stderr.startswith(f"esbgen: error: {root} is locked by pid {os.getpid()} (")  # this test's process
    assert second.stderr.endswith("; waited 0.3 s ($ESBGEN_LOCK_TIMEOUT): try again when it has finished\n")
    assert entries(root) == before


def test_a_write_the_database_refuses_leaves_no_trace(root, tmp_path, run_esbgen, unblocked_db):
    """The row's write fails after the files were in place: all is rolled back, and no journal is left of it."""
    path = tmp_path / "view.sqlite3"
    connection = sqlite3.connect(path)  # a view under the table's name: read, but every insert refused
    connection.execute("CREATE TABLE real_systems (id INTEGER PRIMARY KEY, name TEXT, label TEXT, remark TEXT)")
    connection.execute("CREATE VIEW esb_component_system AS SELECT * FROM real_systems")
    connection.commit()
    connection.close()
    before = entries(root)
    done = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--database", f"sqlite://{path}", "--esb-root", root)
    assert done.exit_code == 1, done.output + done.stderr
    assert "cannot write row BK_SOPS_CE" in done.stderr and "nothing was changed" in done.stderr
    assert entries(root) == before


@pytest.mark.parametrize("signal_name, status", [("TERM", 143), ("INT", 130)])
def test_a_change_interrupted_and_rolled_back_leaves_no_trace(root, signal_name, status):
    import subprocess
    import sys

    before = entries(root)
    env = with_faults({**os.environ, "ESBGEN_INTERRUPT_AT": "op-2", "ESBGEN_INTERRUPT_SIGNAL": signal_name})
    done = subprocess.run([sys.executable, "-m", "esbgen", "clone", "sops", "--as", "bk_sops_ce", "--esb-root",
                           str(root)], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == status, done.stderr
    assert done.stderr.splitlines() == [f"esbgen: error: interrupted (SIG{signal_name}) while applying: the change "
                                        "was rolled back, the tree is as it was"]
    assert entries(root) == before
