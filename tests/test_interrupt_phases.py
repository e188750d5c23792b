"""Ctrl-C in each phase of a clone and of its undo: one line saying what state the tree is in, exit 130.

The interrupt is sent where a phase starts or after some of its items (ESBGEN_INTERRUPT_AT=phase:NAME[:COUNT]),
as a Ctrl-C would arrive; how long esbgen takes to act on it at 20,000 channels is in the README (make bench).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import esbgen_process as esbgen, snapshot

CLONE = ["clone", "sops", "--as", "bk_sops_ce"]
UNCHANGED = "esbgen: error: interrupted (SIGINT) before anything was applied: nothing was changed"


def outside_state(root: Path) -> dict[str, str]:
    return {path: value for path, value in snapshot(root).items() if not path.startswith(".esbgen")}


@pytest.mark.parametrize("point", [
    "phase:reading", "phase:reading:2",  # reading the tree, then the source's files
    "phase:rendering", "phase:rendering:3",  # cookiecutter, then the verbatim files
    "phase:checking",  # the rendered clone held to the ESB's rules
    "phase:applying", "phase:applying:5",  # the staged files hashed for the journal
])
def test_ctrl_c_before_the_tree_changes_changes_nothing_and_says_so(esb_root, point):
    before = snapshot(esb_root)
    done = esbgen(esb_root, *CLONE, interrupt=point)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == [UNCHANGED]
    assert snapshot(esb_root) == before  # not even esbgen's own state folder is left
    again = esbgen(esb_root, *CLONE)  # and nothing is left that stands in the way of the next run
    assert again.returncode == 0, again.stderr


def test_ctrl_c_while_applying_the_steps_rolls_back_and_says_so(esb_root):
    before = outside_state(esb_root)
    done = esbgen(esb_root, *CLONE, interrupt="op-1")
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == [
        "esbgen: error: interrupted (SIGINT) while applying: the change was rolled back, the tree is as it was"]
    assert outside_state(esb_root) == before


def test_ctrl_c_while_checking_an_undo_changes_nothing(esb_root):
    assert esbgen(esb_root, *CLONE).returncode == 0
    cloned = outside_state(esb_root)
    done = esbgen(esb_root, "undo", interrupt="phase:checking")
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == [UNCHANGED]
    assert outside_state(esb_root) == cloned
    assert esbgen(esb_root, "undo").returncode == 0


@pytest.mark.parametrize("point", ["phase:applying", "undo-op-1", "undoing"])
def test_ctrl_c_while_undoing_finishes_the_undo_and_says_so(esb_root, point):
    before = outside_state(esb_root)
    assert esbgen(esb_root, *CLONE).returncode == 0
    done = esbgen(esb_root, "undo", interrupt=point)
    assert done.returncode == 130, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("esbgen: error: interrupted (SIGINT) while undoing change ")
    assert lines[0].endswith(": the undo was finished first, the change is undone")
    assert outside_state(esb_root) == before
    listed = esbgen(esb_root, "undo", "--list")
    assert listed.returncode == 0 and "undone" in listed.stdout


@pytest.mark.parametrize("signal_name, status", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_during_a_step_after_the_change_ends_the_step_with_esbgen(esb_root, tmp_path, signal_name, status):
    """A restart that hangs (supervisorctl waiting on a stuck supervisord): the signal ends it and its children."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pids = tmp_path / "pids"
    supervisorctl = tmp_path / "supervisorctl"
    supervisorctl.write_text(f"#!/bin/sh\nsleep 300 &\necho $$ $! > {pids}.tmp\nmv {pids}.tmp {pids}\nwait\n")
    supervisorctl.chmod(0o755)
    process = subprocess.Popen([sys.executable, "-m", "esbgen", *CLONE, "--esb-root", str(esb_root), "--restart",
                                "--supervisorctl", str(supervisorctl)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "ESBGEN_LOCK_TIMEOUT": "30"})
    deadline = time.monotonic() + 60
    while not pids.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    step, its_child = map(int, pids.read_text().split())
    process.send_signal(getattr(signal, signal_name))
    out, err = process.communicate(timeout=60)
    assert process.returncode == status, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"esbgen: error: interrupted ({signal_name}) after change "), err
    deadline = time.monotonic() + 5
    while any(_running(pid) for pid in (step, its_child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(step) and not _running(its_child)
    assert (esb_root / "components/confapis/bk_sops_ce").is_dir()  # the change is kept
    assert esbgen(esb_root, "undo").returncode == 0


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
