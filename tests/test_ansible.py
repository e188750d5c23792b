"""The esbgen.esb collection and its playbooks (clone, undo), run for real over SSH on a fleet of three ESB hosts.

One fleet serves the module's tests (sshd and supervisord per host); each test starts from fresh trees
(Fleet.reset). Besides the happy path, the fault matrix: a host that refuses, a supervisord down, a
setting missing, an unreachable host, a host lost mid-run, ansible-playbook interrupted by SIGINT or
SIGKILL while it applies or restarts, and a restart that fails; each ends all-old or all-new after at
most one rerun (or esbgen.esb.undo), with every ESB running.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import stat
import subprocess
import time

import pytest

from ansible_kit import (BIN, ESBGEN, PLAYBOOKS, Fleet, Host, Sshd, define_host_setting, install_collection, make_hosts,
                         recap, task_results)
from conftest import FIXTURES, REPO, snapshot

NAMES = ["esb1", "esb2", "esb3"]
CLONE = "esbgen.esb.clone"  # the installed collection's playbooks, as an operator runs them
UNDO = "esbgen.esb.undo"
COMMANDS = REPO / "tests" / "ansible" / "commands.yml"
ARGS = {"esbgen_source": "sops", "esbgen_new": "bk_sops_ce"}


@pytest.fixture(scope="module")
def fleet_base(tmp_path_factory):
    base = tmp_path_factory.mktemp("ans")
    collections = install_collection(base)
    sync_log = base / "sync.log"
    sshd = Sshd(base, NAMES, {"ESBGEN_EXECUTABLE": str(ESBGEN), "ESBGEN_FAKE_SYNC_LOG": str(sync_log)})
    sshd.start()
    try:
        yield base, sshd, collections, sync_log
    finally:
        sshd.stop()


@pytest.fixture(scope="module")
def shared_fleet(fleet_base, tmp_path_factory):
    _, sshd, collections, sync_log = fleet_base
    base = tmp_path_factory.mktemp("fleet")
    hosts = make_hosts(base, sshd)
    fleet = Fleet(base, hosts, sshd, collections, sync_log)
    try:
        yield fleet
    finally:
        fleet.close()
        for host in hosts:
            host.supervisor.stop()


@pytest.fixture
def fleet(shared_fleet):
    shared_fleet.close()  # no control master of an earlier test's sshd session
    shared_fleet.reset()
    return shared_fleet


def state(fleet: Fleet) -> dict:
    return {host.name: snapshot(host.root) for host in fleet.hosts}


def pids(fleet: Fleet) -> dict:
    return {host.name: host.supervisor.pid() for host in fleet.hosts}


def test_clone_lands_on_every_host_synced_once_restarted_and_repeats_as_no_change(fleet, tmp_path, run_esbgen):
    before, started = state(fleet), pids(fleet)

    checked = fleet.playbook(CLONE, "--check", "--diff", **ARGS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert state(fleet) == before and pids(fleet) == started and fleet.syncs() == []
    assert "+    {'name': 'BK_SOPS_CE'" in checked.stdout  # the diff of conf.py, per host
    assert "components/confapis/bk_sops_ce/bk_sops_ce.yaml" in checked.stdout
    assert all(counts["changed"] >= 1 and counts["failed"] == 0 for counts in recap(checked.stdout).values())
    assert not fleet.plans.exists() and list((fleet.base / "tmp").iterdir()) == []  # check mode keeps no plan

    run = fleet.playbook(CLONE, esbgen_serial=2, **ARGS)
    assert run.returncode == 0, run.stdout + run.stderr
    after = state(fleet)
    direct = tmp_path / "direct"
    shutil.copytree(FIXTURES / "esb", direct)
    define_host_setting(direct)
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", direct).exit_code == 0
    for name in NAMES:  # byte-identical on every host, and what the clone makes on one tree
        assert after[name] == snapshot(direct)
        assert "components/confapis/bk_sops_ce/bk_sops_ce.yaml" in after[name]
    syncs = fleet.syncs()
    assert len(syncs) == 1 and syncs[0]["argv"] == ["sync_data_at_deploy"]
    assert syncs[0]["cwd"] in {str(host.root) for host in fleet.hosts}
    restarted = pids(fleet)
    assert all(restarted[name] not in (None, started[name]) for name in NAMES)
    plan_file, = fleet.plans.glob("*.plan.json")  # private, named by its id, which each host's change records
    plan_id = hashlib.sha256(plan_file.read_bytes()).hexdigest()
    assert plan_file.name == f"{plan_id}.plan.json" and (fleet.plans / "esb.bk_sops_ce.plan").read_text() == plan_id + "\n"
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o600 and stat.S_IMODE(fleet.plans.stat().st_mode) == 0o700
    for host in fleet.hosts:
        journal, = host.journals()
        assert journal["plan_id"] == plan_id and journal["state"] == "applied"
        assert sorted(journal["plan_steps"]) == (["restart", "sync"] if host.name == "esb1" else ["restart"])
    results = task_results(run.stdout)
    assert results["sync_data_at_deploy on one host"] == [("changed", "esb1")]
    assert results["Restart the ESB"] == [("changed", name) for name in NAMES]  # one play batch each, in order
    assert sorted(results["Verify the new system (its channels, its host setting, where its calls go)"]) == \
        [("ok", name) for name in NAMES]
    assert run.stdout.count("PLAY [Restart each ESB host, one at a time]") == 3

    again = fleet.playbook(CLONE, **ARGS)
    assert again.returncode == 0, again.stdout + again.stderr
    counts = recap(again.stdout)
    assert set(counts) == set(NAMES)
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in counts.values()), counts
    results = task_results(again.stdout)
    assert results["sync_data_at_deploy on one host"] == [("skipping", "esb1")]
    assert results["This ESB still runs the code from before the plan"] == [("skipping", name) for name in NAMES]
    assert "Restart the ESB" not in results
    assert state(fleet) == after and pids(fleet) == restarted and len(fleet.syncs()) == 1


def assert_nothing_changed(fleet: Fleet, run, before: dict, started: dict) -> str:
    """The run failed in its preflight: no host changed, no ESB restarted, no sync, no plan kept."""
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert state(fleet) == before and pids(fleet) == started and fleet.syncs() == []
    assert all(journal == [] for journal in (host.journals() for host in fleet.hosts))
    assert "PLAY [Apply the plan on every ESB host]" not in output
    assert not (fleet.plans / "esb.bk_sops_ce.plan").exists()  # the next run plans again
    return " ".join(output.split())


def test_hosts_that_fail_the_preflight_are_all_named_and_no_host_changes(fleet):
    fleet.hosts[0].supervisor.stop()  # esb1's ESB could not be restarted
    occupied = fleet.hosts[1].root / "components/confapis/bk_sops_ce"
    occupied.mkdir()
    (occupied / "bk_sops_ce.yaml").write_text("[]\n")  # esb2's tree is not the one the plan is made for
    fleet.sshd.stop_host("esb3")  # esb3 does not answer: a failure under serial too
    before, started = state(fleet), pids(fleet)

    checked = fleet.playbook(CLONE, "--check", **ARGS)
    assert "preflight failed, no host was changed by this run: esb1" in assert_nothing_changed(fleet, checked, before,
                                                                                                started)
    assert not fleet.plans.exists() and list((fleet.base / "tmp").iterdir()) == []  # check mode keeps no plan
    run = fleet.playbook(CLONE, esbgen_serial=1, **ARGS)

    output = assert_nothing_changed(fleet, run, before, started)
    assert "preflight failed, no host was changed by this run: esb1: the ESB cannot be restarted: supervisord is " \
           "not running" in output
    assert "esb2: this tree differs from the one the plan was made for" in output
    assert "components/confapis/bk_sops_ce/ is there; nothing was changed (Refused); esb3: unreachable" in output
    counts = recap(run.stdout)
    assert all(counts[name]["changed"] == 0 for name in NAMES)


def test_a_fleet_without_the_host_setting_is_refused_by_the_preflight_and_nothing_changes(fleet):
    for host in fleet.hosts:  # the operator did not define BK_SOPS_CE_URL on the hosts
        shutil.copyfile(FIXTURES / "esb/configs/default.py", host.root / "configs/default.py")
    before, started = state(fleet), pids(fleet)

    run = fleet.playbook(CLONE, **ARGS)

    assert run.returncode != 0, run.stdout
    assert state(fleet) == before
    output = " ".join((run.stdout + run.stderr).split())
    assert "preflight failed, no host was changed by this run: esb1: configs/default.py defines no BK_SOPS_CE_URL, " \
           "which the plan's code reads for its backend" in output
    assert "esb2: configs/default.py defines no BK_SOPS_CE_URL" in output and \
           "esb3: configs/default.py defines no BK_SOPS_CE_URL" in output
    assert pids(fleet) == started and fleet.syncs() == []
    assert all(counts["changed"] == 0 for counts in recap(run.stdout).values())


@pytest.fixture(scope="module")
def cloned(tmp_path_factory) -> dict:
    """What `esbgen clone sops --as bk_sops_ce` makes of one tree: every host of an all-new fleet has it."""
    root = tmp_path_factory.mktemp("direct") / "esb"
    shutil.copytree(FIXTURES / "esb", root, symlinks=True)
    define_host_setting(root)
    done = subprocess.run([ESBGEN, "clone", "sops", "--as", "bk_sops_ce", "--esb-root", root], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    return snapshot(root)


def assert_all_new(fleet: Fleet, cloned: dict, started: dict) -> None:
    """Every host has the clone, its change records the plan and its restart, and its ESB runs, restarted since."""
    plan_id = (fleet.plans / "esb.bk_sops_ce.plan").read_text().strip()
    for host in fleet.hosts:
        assert snapshot(host.root) == cloned, host.name
        applied = [journal for journal in host.journals() if journal["state"] == "applied"]
        assert len(applied) == 1 and applied[0]["plan_id"] == plan_id and "restart" in applied[0]["plan_steps"]
        assert host.program_state() == "RUNNING" and host.supervisor.pid() != started[host.name]
    assert fleet.syncs()


def assert_all_old(fleet: Fleet, before: dict) -> None:
    assert state(fleet) == before
    assert [host.program_state() for host in fleet.hosts] == ["RUNNING"] * 3


def applied_on(host: Host):
    return lambda: any(journal["state"] == "applied" for journal in host.journals())


def interrupted(fleet: Fleet, moment, then) -> str:
    """Run the clone in the background; at ``moment`` (a test of the fleet), do ``then`` to the run; its output."""
    process = fleet.start_playbook(CLONE, **ARGS)
    deadline = time.monotonic() + 300
    while not moment():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run ended before the moment came: {(fleet.base / 'run.log').read_text()[-3000:]}")
        time.sleep(0.02)
    then(process)
    process.wait(timeout=300)
    return (fleet.base / "run.log").read_text()


def test_sigint_while_applying_then_one_rerun_finishes_the_change(fleet, cloned):
    started = pids(fleet)
    interrupted(fleet, applied_on(fleet.hosts[0]), lambda process: process.send_signal(signal.SIGINT))
    had_it = {host.name for host in fleet.hosts if applied_on(host)()}
    assert "esb1" in had_it and had_it != set(NAMES)  # half-changed: the rerun must finish it

    rerun = fleet.playbook(CLONE, **ARGS)

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "taking up plan" in rerun.stdout  # not planned again on esb1, which has the change
    assert_all_new(fleet, cloned, started)
    applied = task_results(rerun.stdout)["Apply the plan (nothing to do where it is applied already)"]
    assert applied == [("ok" if name in had_it else "changed", name) for name in NAMES]  # each host truly


def test_sigkill_while_applying_then_the_undo_playbook_takes_every_host_back(fleet):
    before = state(fleet)
    interrupted(fleet, applied_on(fleet.hosts[0]), lambda process: process.kill())
    time.sleep(2)  # a module the killed run had started on a host may still be finishing there

    undo = fleet.playbook(UNDO, esbgen_new="bk_sops_ce")

    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert_all_old(fleet, before)
    output = " ".join(undo.stdout.split())
    assert "the change was undone on esb1" in output and "every ESB is running" in output
    assert not (fleet.plans / "esb.bk_sops_ce.plan").exists()
    again = fleet.playbook(UNDO, esbgen_new="bk_sops_ce")
    assert again.returncode == 0 and "nothing to take back" in again.stdout
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values())


def test_sigkill_while_restarting_then_one_rerun_restarts_the_rest_without_a_second_sync(fleet, cloned):
    started = pids(fleet)
    esb1 = fleet.hosts[0]
    interrupted(fleet, lambda: esb1.supervisor.pid() not in (None, started["esb1"]), lambda process: process.kill())
    time.sleep(2)

    rerun = fleet.playbook(CLONE, **ARGS)

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert_all_new(fleet, cloned, started)
    assert len(fleet.syncs()) == 1
    restarted = task_results(rerun.stdout).get("Restart the ESB", [])
    assert ("changed", "esb3") in restarted and ("changed", "esb1") not in restarted


def test_a_host_lost_mid_run_stops_the_run_then_one_rerun_finishes_the_change(fleet, cloned):
    started = pids(fleet)
    output = interrupted(fleet, applied_on(fleet.hosts[0]), lambda process: fleet.sshd.stop_host("esb2"))
    assert "fatal: [esb2]: UNREACHABLE!" in output or "esb2 lost" in output, output
    assert not any(journal.get("plan_steps") for host in fleet.hosts for journal in host.journals())
    assert fleet.syncs() == []  # nothing after the apply ran
    fleet.sshd.start_host("esb2")  # the host is back

    rerun = fleet.playbook(CLONE, **ARGS)

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert_all_new(fleet, cloned, started)


def test_a_restart_that_fails_brings_that_host_back_and_restarts_it(fleet):
    fleet.hosts[0].broken.touch()  # the clone's code does not start on esb1: its ESB goes FATAL
    before, started = state(fleet), pids(fleet)

    run = fleet.playbook(CLONE, **ARGS)

    assert run.returncode != 0
    assert_all_old(fleet, before)
    output = " ".join((run.stdout + run.stderr).split())
    assert "esb1: restart the ESB" in output and "the program failed to start again" in output
    assert ("the change was undone on esb1, esb2, esb3 (its ESB restarted again on esb1); "
            "every ESB is running") in output
    now = pids(fleet)
    assert now["esb1"] != started["esb1"] and (now["esb2"], now["esb3"]) == (started["esb2"], started["esb3"])
    assert not (fleet.plans / "esb.bk_sops_ce.plan").exists()


def test_each_command_through_the_module(fleet):
    old = fleet.base / "old-esbgen"
    old.write_text("#!/bin/sh\necho 'Usage: esbgen check [OPTIONS] [SYSTEMS]...' >&2\n"
                   "echo 'Error: No such option: --json' >&2\nexit 2\n")
    old.chmod(0o755)
    host = fleet.hosts[0]
    before = snapshot(host.root)

    run = fleet.playbook(COMMANDS, esbgen_bin=BIN, old_esbgen=old, remote_plan_file=fleet.base / "new.plan.json")

    assert run.returncode == 0, run.stdout + run.stderr
    assert "components/confapis/bk_demo/bk_demo.yaml" in snapshot(host.root)
    assert {k: v for k, v in snapshot(host.root).items() if "bk_demo" not in k and not k.endswith("conf.py")} == \
        {k: v for k, v in before.items() if not k.endswith("conf.py")}  # the retarget was undone


def test_the_readme_shows_the_playbook_the_tests_run():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A fleet of ESB hosts (Ansible)", 1)[1].split("\n## ", 1)[0]
    assert "```yaml\n" + (PLAYBOOKS / "clone.yml").read_text(encoding="utf-8") + "```\n" in section
