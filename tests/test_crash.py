"""Kill the real CLI at every named point and at random moments: the tree is always before or after.

Each crash runs ``esbgen clone sops --as bk_sops_ce`` in its own process with a
throwaway plugin adding a database row (an external step, in SQLite outside the
tree) to the change, and kills it: with ESBGEN_CRASH_AT=<point> (os._exit at a
named point of esbgen.journal.record) or with SIGKILL after a random short delay. The
next esbgen command, whatever it is (`esbgen list` here, which only reads),
rolls the change back first and says so; then the clone works.

A crash between two steps leaves the files as the steps left them (no file
system renames several folders at once); what makes the tree "before or
after" is that the journal is written first and every esbgen command finishes
the recovery before it looks at the tree. Points where the files themselves are
consistent (before the first step, after the last) are checked right after
the kill, too.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time

import pytest

from conftest import FIXTURES, snapshot
from crashkit import CLONE, ESBGEN, NEW, environment, esbgen, install_plugin, rows
from faultkit import with_faults

ROW = [(NEW.upper(), NEW.upper())]
ROLLED_BACK = "esbgen: rolled back an interrupted change"


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """The plugin, and the tree before and after a clean clone (computed once)."""
    base = tmp_path_factory.mktemp("crash")
    plugin = install_plugin(base / "plugin")
    root = base / "reference"
    shutil.copytree(FIXTURES / "esb", root, symlinks=True)
    before = snapshot(root)
    db = base / "reference.sqlite"
    done = esbgen(root, *CLONE, env=environment(plugin, db))
    assert done.returncode == 0, done.stderr
    assert rows(db) == ROW
    return {"plugin": plugin, "before": before, "after": snapshot(root)}


@pytest.fixture
def case(kit, tmp_path):
    root = tmp_path / "esb"
    shutil.copytree(FIXTURES / "esb", root, symlinks=True)
    db = tmp_path / "db.sqlite"
    return root, db, lambda **extra: environment(kit["plugin"], db, **extra)


CONSISTENT_BEFORE = ("prepare-tree", "prepare-files", "prepared", "applying")
CONSISTENT_AFTER = ("ops-done", "applied")
BETWEEN_STEPS = ("op-1", "op-2", "op-3", "op-4")  # python folder, confapis folder, conf.py, the row


@pytest.mark.parametrize("point", CONSISTENT_BEFORE + BETWEEN_STEPS + CONSISTENT_AFTER)
def test_a_clone_killed_at_any_point_is_before_or_after_and_the_next_run_recovers(kit, case, point):
    root, db, env = case
    killed = esbgen(root, *CLONE, env=env(ESBGEN_CRASH_AT=point))
    assert killed.returncode == 137, killed.stderr
    if point in CONSISTENT_BEFORE:
        assert snapshot(root) == kit["before"] and rows(db) == []
    if point in CONSISTENT_AFTER:
        assert snapshot(root) == kit["after"] and rows(db) == ROW

    nxt = esbgen(root, "list", env=env())
    assert nxt.returncode == 0, nxt.stderr
    if point == "applied":  # done: nothing to roll back
        assert ROLLED_BACK not in nxt.stdout
        assert snapshot(root) == kit["after"] and rows(db) == ROW
        return
    if point in ("prepare-tree", "prepare-files"):  # killed before its journal was written: nothing happened
        assert ROLLED_BACK not in nxt.stdout
    else:
        assert f"{ROLLED_BACK} 00001-" in nxt.stdout and "(clone sops as bk_sops_ce)" in nxt.stdout
    assert snapshot(root) == kit["before"] and rows(db) == []

    again = esbgen(root, *CLONE, env=env())
    assert again.returncode == 0, again.stderr
    assert ROLLED_BACK not in again.stdout
    assert snapshot(root) == kit["after"] and rows(db) == ROW
    leftovers = [p for p in (root / ".esbgen").rglob("*") if p.parent.name in ("tmp", "journal") and p.is_dir()]
    assert [p.name for p in leftovers if p.parent.name == "tmp"] == []  # scratch of killed runs is cleaned
    assert all((p / "journal.json").is_file() for p in leftovers if p.parent.name == "journal")


@pytest.mark.parametrize("point", ["rolling-back", "rollback-op-1", "rollback-op-2", "rollback-op-3", "rollback-op-4"])
def test_a_run_killed_while_rolling_back_a_failure_is_rolled_back_by_the_next(kit, case, point):
    root, db, env = case
    killed = esbgen(root, *CLONE, env=env(FAKEDB_FAIL="apply", ESBGEN_CRASH_AT=point))
    assert killed.returncode == 137, killed.stderr
    nxt = esbgen(root, "list", env=env())
    assert nxt.returncode == 0 and ROLLED_BACK in nxt.stdout
    assert snapshot(root) == kit["before"] and rows(db) == []
    states = esbgen(root, "undo", "--list", env=env()).stdout
    assert "rolled-back" in states


def test_a_failing_external_step_rolls_the_files_back(kit, case):
    root, db, env = case
    failed = esbgen(root, *CLONE, env=env(FAKEDB_FAIL="apply"))
    assert failed.returncode == 1
    assert failed.stderr == "esbgen: error: applying failed and was rolled back: the fake database refused the row\n"
    assert snapshot(root) == kit["before"] and rows(db) == []


def test_a_recovery_killed_midway_is_finished_by_the_next_run(kit, case):
    root, db, env = case
    assert esbgen(root, *CLONE, env=env(ESBGEN_CRASH_AT="op-4")).returncode == 137
    assert rows(db) == ROW  # the row was written: recovery must take it back
    assert esbgen(root, "list", env=env(ESBGEN_CRASH_AT="rollback-op-2")).returncode == 137
    nxt = esbgen(root, "check", env=env())
    assert ROLLED_BACK in nxt.stdout
    assert snapshot(root) == kit["before"] and rows(db) == []


@pytest.mark.parametrize("point", ["undoing", "undo-op-1", "undo-op-2", "undo-op-3", "undo-op-4"])
def test_an_undo_killed_at_any_point_is_finished_by_the_next_run(kit, case, point):
    root, db, env = case
    assert esbgen(root, *CLONE, env=env()).returncode == 0
    killed = esbgen(root, "undo", env=env(ESBGEN_CRASH_AT=point))
    assert killed.returncode == 137, killed.stderr
    nxt = esbgen(root, "list", env=env())
    assert nxt.returncode == 0
    assert "esbgen: finished an interrupted undo of change 00001-" in nxt.stdout
    assert snapshot(root) == kit["before"] and rows(db) == []
    refused = esbgen(root, "undo", env=env())
    assert refused.returncode == 1 and "already undone" in refused.stderr


def test_kill_9_at_random_moments_never_leaves_a_half_change(kit, case, tmp_path):
    """SIGKILL after random delays (bounded loop); most delays land in the last part of a run, where it writes."""
    root, db, env = case
    pristine = tmp_path / "pristine"
    shutil.copytree(root, pristine, symlinks=True)
    start = time.monotonic()
    assert esbgen(root, *CLONE, env=env()).returncode == 0
    duration = time.monotonic() - start
    rng = random.Random(20261126)
    outcomes = {"before": 0, "after": 0}
    for attempt in range(10):
        shutil.rmtree(root)
        shutil.copytree(pristine, root, symlinks=True)
        db.unlink(missing_ok=True)
        delay = rng.uniform(0.6, 1.05) * duration if attempt % 3 else rng.uniform(0.0, duration)
        process = subprocess.Popen([ESBGEN, *CLONE, "--esb-root", str(root)], env=env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        nxt = esbgen(root, "list", env=env())
        assert nxt.returncode == 0, nxt.stderr
        state = snapshot(root)
        if state == kit["after"]:
            outcomes["after"] += 1
            assert rows(db) == ROW and ROLLED_BACK not in nxt.stdout
        else:
            assert state == kit["before"], f"attempt {attempt}: neither before nor after (killed at {delay:.3f} s)"
            assert rows(db) == []
            outcomes["before"] += 1
        again = esbgen(root, *CLONE, env=env())
        assert again.returncode == 0, again.stderr
        assert snapshot(root) == kit["after"] and rows(db) == ROW
    assert sum(outcomes.values()) == 10


@pytest.mark.parametrize("point", ["op-1", "ops-done"])
def test_ctrl_c_while_applying_rolls_back_and_says_so(esb_root, point):
    import subprocess
    import sys

    before = snapshot(esb_root)
    env = with_faults({**os.environ, "ESBGEN_INTERRUPT_AT": point})
    done = subprocess.run([sys.executable, "-m", "esbgen", "clone", "sops", "--as", "bk_sops_ce", "--esb-root", str(esb_root)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == [
        "esbgen: error: interrupted (SIGINT) while applying: the change was rolled back, the tree is as it was"]
    after = {path: value for path, value in snapshot(esb_root).items() if not path.startswith(".esbgen")}
    assert after == {path: value for path, value in before.items() if not path.startswith(".esbgen")}


@pytest.mark.parametrize("point", ["op-1", "ops-done"])
def test_sigterm_while_applying_rolls_back_as_ctrl_c_does(case, point):
    root, db, env = case
    before = snapshot(root)
    done = esbgen(root, *CLONE, env=env(ESBGEN_INTERRUPT_AT=point, ESBGEN_INTERRUPT_SIGNAL="TERM"))
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip().splitlines() == [
        "esbgen: error: interrupted (SIGTERM) while applying: the change was rolled back, the tree is as it was"]
    assert snapshot(root) == before and rows(db) == []


def test_sigterm_during_an_undo_waits_for_the_undo_to_finish(case, kit):
    root, db, env = case
    assert esbgen(root, *CLONE, env=env()).returncode == 0
    done = esbgen(root, "undo", env=env(ESBGEN_INTERRUPT_AT="undo-op-1", ESBGEN_INTERRUPT_SIGNAL="TERM"))
    assert done.returncode == 143, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("esbgen: error: interrupted (SIGTERM) while undoing change 00001-")
    assert line.endswith("the undo was finished first, the change is undone")
    assert snapshot(root) == kit["before"] and rows(db) == []


@pytest.mark.parametrize("signal_name, status", [("TERM", 143), ("INT", 130)])
def test_a_signal_during_recovery_waits_for_the_rollback_then_stops_the_run(case, kit, signal_name, status):
    root, db, env = case
    assert esbgen(root, *CLONE, env=env(ESBGEN_CRASH_AT="op-2")).returncode == 137
    done = esbgen(root, *CLONE, env=env(ESBGEN_INTERRUPT_AT="rollback-op-1", ESBGEN_INTERRUPT_SIGNAL=signal_name))
    assert done.returncode == status, done.stderr
    assert ROLLED_BACK in done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"esbgen: error: interrupted (SIG{signal_name}) while recovering: rolled back 00001-")
    assert line.endswith("; nothing else was done")
    assert snapshot(root) == kit["before"] and rows(db) == []
    again = esbgen(root, *CLONE, env=env())
    assert again.returncode == 0, again.stderr
    assert snapshot(root) == kit["after"] and rows(db) == ROW
