"""Two esbgen runs on one ESB root, as real processes: the second waits, then refuses naming the holder.

The first run is held inside its apply by a slow external step (the fake
database plugin of crashkit sleeps before writing its row), so the lock is
certainly taken while the second one starts.
"""

from __future__ import annotations

import ast
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, snapshot
from crashkit import CLONE, ESBGEN, environment, esbgen, install_plugin, rows

OTHER = ("clone", "itsm", "--as", "bk_itsm_ce")


@pytest.fixture
def setup(tmp_path):
    root = tmp_path / "esb"
    shutil.copytree(FIXTURES / "esb", root, symlinks=True)
    plugin = install_plugin(tmp_path / "plugin")
    db = tmp_path / "db.sqlite"
    events = tmp_path / "events.log"
    return root, db, events, lambda **extra: environment(plugin, db, FAKEDB_EVENTS=str(events), **extra)


def start_holding(root: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    """Start a clone and return once it holds the lock (its line is in .esbgen/lock)."""
    process = subprocess.Popen([ESBGEN, *(args or CLONE), "--esb-root", str(root)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = root / ".esbgen" / "lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if lock.is_file() and f"esbgen pid {process.pid} " in lock.read_text():
            return process
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    process.kill()
    raise AssertionError("the first run never took the lock")


def wait_applying(root: Path) -> None:
    """Until a journal says ``applying``: the files of that run are moving into place."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any('"state": "applying"' in p.read_text() for p in (root / ".esbgen" / "journal").glob("*/journal.json")):
            return
        time.sleep(0.02)
    raise AssertionError("no run got to applying")


def registered(root: Path) -> list[str]:
    module = ast.parse((root / "components/generic/apis/conf.py").read_bytes())
    for node in module.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SYSTEMS":
            return [ast.literal_eval(element)["name"] for element in node.value.elts]
    return []


def test_a_second_run_waits_briefly_then_refuses_naming_the_holder(setup):
    root, db, events, env = setup
    first = start_holding(root, env(FAKEDB_SLEEP="3"))
    deadline = time.monotonic() + 60
    while "BK_SOPS_CE" not in registered(root) and time.monotonic() < deadline:
        time.sleep(0.02)  # until its last file is in place; then it writes its (slow) row
    before = snapshot(root)
    second = esbgen(root, *OTHER, env=env(ESBGEN_LOCK_TIMEOUT="0.5"))
    assert second.returncode == 1
    assert second.stderr.startswith(
        f"esbgen: error: {root} is locked by esbgen pid {first.pid} (clone sops --as bk_sops_ce --esb-root {root}) since "
    )
    assert second.stderr.endswith("; waited 0.5 s ($ESBGEN_LOCK_TIMEOUT): try again when it has finished\n")
    assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
    assert second.stdout == ""
    assert snapshot(root) == before  # the second run wrote nothing while waiting
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert not (root / "components/confapis/bk_itsm_ce").exists()
    assert registered(root)[-1] == "BK_SOPS_CE"
    assert (root / ".esbgen" / "lock").read_text() == ""


def test_two_runs_at_once_never_interleave_their_writes(setup):
    root, db, events, env = setup
    first = start_holding(root, env(FAKEDB_SLEEP="1"))
    second = subprocess.Popen([ESBGEN, *OTHER, "--esb-root", str(root)], env=env(ESBGEN_LOCK_TIMEOUT="60"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for process in (first, second):
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    log: dict[int, dict[str, float]] = {}
    for line in events.read_text().splitlines():
        pid, what, when = line.split()
        log.setdefault(int(pid), {})[what] = float(when)
    a, b = log[first.pid], log[second.pid]
    # Planning and applying happen under the lock: one run's whole span ends before the other's begins.
    assert a["applied"] <= b["planning"], (a, b)
    # No lost update: both registrations are in conf.py, both rows in the database, two journals in order.
    assert registered(root)[-2:] == ["BK_SOPS_CE", "BK_ITSM_CE"]
    assert rows(db) == [("BK_ITSM_CE", "BK_ITSM_CE"), ("BK_SOPS_CE", "BK_SOPS_CE")]
    listed = esbgen(root, "undo", "--list", env=env()).stdout.splitlines()
    assert [line.split()[0][:5] for line in listed] == ["00001", "00002"]
    assert all(" applied " in line for line in listed)


def test_the_lock_of_a_killed_run_is_free_and_its_change_rolled_back(setup):
    root, db, events, env = setup
    before = snapshot(root)
    first = start_holding(root, env(FAKEDB_SLEEP="30"))
    wait_applying(root)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    nxt = esbgen(root, *OTHER, env=env(ESBGEN_LOCK_TIMEOUT="2"))
    assert nxt.returncode == 0, nxt.stderr
    assert "esbgen: rolled back an interrupted change 00001-" in nxt.stdout
    assert not (root / "components/confapis/bk_sops_ce").exists()
    assert registered(root)[-1] == "BK_ITSM_CE"
    assert rows(db) == [("BK_ITSM_CE", "BK_ITSM_CE")]
    assert esbgen(root, "undo", env=env()).returncode == 0
    assert snapshot(root) == before


def test_a_read_only_command_waits_for_a_run_in_progress_rather_than_seeing_half_a_change(setup):
    root, db, events, env = setup
    first = start_holding(root, env(FAKEDB_SLEEP="1.5"))
    wait_applying(root)
    listed = esbgen(root, "list", env=env(ESBGEN_LOCK_TIMEOUT="60"))  # sees an unfinished change: waits for the lock
    assert listed.returncode == 0, listed.stderr
    assert "rolled back" not in listed.stdout and "bk_sops_ce" in listed.stdout
    assert first.wait(timeout=60) == 0
    impatient = start_holding(root, env(FAKEDB_SLEEP="3"), *OTHER)
    wait_applying(root)
    refused = esbgen(root, "check", env=env(ESBGEN_LOCK_TIMEOUT="0.3"))
    assert refused.returncode == 1
    assert refused.stderr.startswith("esbgen: error: change 00002-")
    assert "is unfinished (being applied, or interrupted)" in refused.stderr and f"pid {impatient.pid}" in refused.stderr
    assert impatient.wait(timeout=60) == 0


def test_the_wait_is_five_seconds_unless_esbgen_lock_timeout_says_otherwise(monkeypatch):
    from esbgen.journal.store import lock_timeout

    monkeypatch.delenv("ESBGEN_LOCK_TIMEOUT", raising=False)
    assert lock_timeout() == 5.0
    for value, seconds in (("0.5", 0.5), ("0", 0.0), ("-3", 0.0), ("soon", 5.0)):
        monkeypatch.setenv("ESBGEN_LOCK_TIMEOUT", value)
        assert lock_timeout() == seconds


def test_the_holders_line_is_private_to_its_owner(setup):
    root, db, events, env = setup
    first = start_holding(root, env(FAKEDB_SLEEP="1"))
    lock = root / ".esbgen" / "lock"
    assert lock.stat().st_mode & 0o777 == 0o600
    assert first.wait(timeout=60) == 0
    assert lock.stat().st_mode & 0o777 == 0o600


def test_a_holder_that_made_no_state_folder_yet_is_named_with_its_command_and_since_when(tmp_path):
    """Taking the lock writes nothing in the tree; the kernel's list of locks still names who holds it."""
    import os
    import sys
    from datetime import datetime, timezone

    root = tmp_path / "esb"
    shutil.copytree(FIXTURES / "esb", root, symlinks=True)
    before = snapshot(root)
    holding = tmp_path / "holding.py"
    holding.write_text("import sys, time\nfrom pathlib import Path\nfrom esbgen.journal.store import locked\n"
                       "with locked(Path(sys.argv[1]), create=False):\n    print('held', flush=True)\n    time.sleep(60)\n")
    started = datetime.now(timezone.utc).replace(microsecond=0)
    holder = subprocess.Popen([sys.executable, holding.name, root.name, "mysql://esb:s3cret@db:3306/open_paas"],
                              stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert holder.stdout.readline() == "held\n"
        refused = esbgen(root, *OTHER, env=environment(None, None, ESBGEN_LOCK_TIMEOUT="0.3"))
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(f"esbgen: error: {root} is locked by pid {holder.pid} ({sys.executable} holding.py "
                                     "esb 'mysql://esb:***@db:3306/open_paas') since "), refused.stderr
    assert "s3cret" not in refused.stderr
    since = refused.stderr.split(") since ")[1].split(";")[0]
    assert abs((datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) - started).total_seconds()) <= 2
    assert snapshot(root) == before and not (root / ".esbgen").exists()
    assert os.path.isdir(root)
