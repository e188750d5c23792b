"""The esbgen.esb collection and ansible/playbooks/clone.yml, run for real over SSH on a fleet of three ESB hosts."""

from __future__ import annotations

import shutil

import pytest

from ansible_kit import (BIN, ESBGEN, PLAYBOOKS, Fleet, Sshd, define_host_setting, install_collection, make_hosts,
                         recap, task_results)
from conftest import FIXTURES, REPO, snapshot

NAMES = ["esb1", "esb2", "esb3"]
CLONE = PLAYBOOKS / "clone.yml"
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


@pytest.fixture
def fleet(fleet_base, tmp_path_factory):
    _, sshd, collections, sync_log = fleet_base
    base = tmp_path_factory.mktemp("fleet")
    sync_log.write_text("")
    hosts = make_hosts(base, sshd)
    for host in hosts:
        define_host_setting(host.root)
    fleet = Fleet(base, hosts, sshd, collections, sync_log)
    try:
        yield fleet
    finally:
        fleet.close()
        for host in hosts:
            host.supervisor.stop()


def state(fleet: Fleet) -> dict:
    return {host.name: snapshot(host.root) for host in fleet.hosts}


def pids(fleet: Fleet) -> dict:
    return {host.name: host.supervisor.pid() for host in fleet.hosts}


def test_clone_lands_on_every_host_synced_once_restarted_and_repeats_as_no_change(fleet, tmp_path, run_esbgen):
    plan_file = fleet.base / "clone.plan.json"
    before, started = state(fleet), pids(fleet)

    checked = fleet.playbook(CLONE, "--check", "--diff", esbgen_plan_file=plan_file, **ARGS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert state(fleet) == before and pids(fleet) == started and fleet.syncs() == []
    assert "+    {'name': 'BK_SOPS_CE'" in checked.stdout  # the diff of conf.py, per host
    assert "components/confapis/bk_sops_ce/bk_sops_ce.yaml" in checked.stdout
    assert all(counts["changed"] >= 1 and counts["failed"] == 0 for counts in recap(checked.stdout).values())

    run = fleet.playbook(CLONE, esbgen_plan_file=plan_file, esbgen_serial=2, **ARGS)
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
    results = task_results(run.stdout)
    assert results["sync_data_at_deploy on one host"] == [("changed", "esb1")]
    assert results["Restart the ESB"] == [("changed", name) for name in NAMES]  # one play batch each, in order
    assert results["Verify the new system (its channels, its host setting, where its calls go)"] == \
        [("ok", name) for name in NAMES]
    assert run.stdout.count("PLAY [Restart and verify each ESB host, one at a time]") == 3

    again = fleet.playbook(CLONE, esbgen_plan_file=plan_file, **ARGS)
    assert again.returncode == 0, again.stdout + again.stderr
    counts = recap(again.stdout)
    assert set(counts) == set(NAMES)
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in counts.values()), counts
    results = task_results(again.stdout)
    assert results["sync_data_at_deploy on one host"] == [("skipping", "esb1")]
    assert results["Restart the ESB"] == [("skipping", name) for name in NAMES]
    assert state(fleet) == after and pids(fleet) == restarted and len(fleet.syncs()) == 1


def test_a_host_that_refuses_midway_leaves_every_host_as_it_was(fleet):
    occupied = fleet.hosts[1].root / "components/confapis/bk_sops_ce"
    occupied.mkdir()
    (occupied / "bk_sops_ce.yaml").write_text("[]\n")  # esb2's tree is not the one the plan is made for
    before, started = state(fleet), pids(fleet)

    run = fleet.playbook(CLONE, esbgen_plan_file=fleet.base / "p.json", **ARGS)

    assert run.returncode != 0
    assert state(fleet) == before
    assert pids(fleet) == started and fleet.syncs() == []
    output = run.stdout + run.stderr
    assert "this tree differs from the one the plan was made for" in output
    assert "components/confapis/bk_sops_ce/ is there" in output
    assert "(Refused); the change was undone on esb1" in output
    counts = recap(run.stdout)
    assert counts["esb2"]["failed"] == 1
    assert counts.get("esb3", {"changed": 0})["changed"] == 0  # never reached


def test_a_restart_that_fails_on_the_last_host_undoes_the_whole_fleet(fleet):
    fleet.hosts[2].supervisor.stop()  # esb3's supervisord is down: its restart fails after esb1 and esb2's
    before, started = state(fleet), pids(fleet)

    run = fleet.playbook(CLONE, esbgen_plan_file=fleet.base / "p.json", **ARGS)

    assert run.returncode != 0, run.stdout
    assert state(fleet) == before
    output = run.stdout + run.stderr
    assert "supervisord is not running" in output
    assert "the change was undone on esb1, esb2, esb3" in output
    now = pids(fleet)
    for name in ("esb1", "esb2"):  # restarted with the clone, then again without it
        assert now[name] not in (None, started[name])
    assert len(fleet.syncs()) == 1  # the sync had run; its rows stay, as the ESB's sync never deletes


def test_a_fleet_without_the_host_setting_fails_verify_and_is_undone(fleet):
    for host in fleet.hosts:  # the operator did not define BK_SOPS_CE_URL on the hosts
        shutil.copyfile(FIXTURES / "esb/configs/default.py", host.root / "configs/default.py")
    before, started = state(fleet), pids(fleet)

    run = fleet.playbook(CLONE, esbgen_plan_file=fleet.base / "p.json", **ARGS)

    assert run.returncode != 0, run.stdout
    assert state(fleet) == before
    output = run.stdout + run.stderr
    assert "esb1: 1 problem(s) in BK_SOPS_CE: BK_SOPS_CE_URL is not defined in configs/default.py: 12 channel(s)" \
        in " ".join(output.split())
    assert "the change was undone on esb1, esb2, esb3" in output
    results = task_results(run.stdout)
    assert results["Restart the ESB"] == [("changed", "esb1")]  # verify failed there; esb2 and esb3 never restarted
    now = pids(fleet)
    assert now["esb1"] not in (None, started["esb1"])  # restarted with the clone, then again without it
    assert (now["esb2"], now["esb3"]) == (started["esb2"], started["esb3"])


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
    assert "```yaml\n" + CLONE.read_text(encoding="utf-8") + "```\n" in section
