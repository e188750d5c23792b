"""A swap is a change like any other: journaled in the host's state folder, rolled back when it fails or is
stopped (SIGKILL, SIGTERM, SIGINT at every step), undone by `esbgen undo --swap`.

The swaps run as operators run them, `python -m esbgen swap ...` in a fresh process, against a real
nginx on loopback and the rows of ``engine_servers`` in the test project's SQLite database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from faultkit import with_faults
from nginx_harness import LiveSite, free_port, NginxTree, HttpBackend, run_esbgen

PROBES = {"/t/demo/": "agent_test", "/o/demo/": "agent_prod"}
POINTS = ["swap-before-write", "swap-written", "swap-tested", "swap-reloaded", "swap-rows"]
ROLLED_BACK = "esbgen: rolled back an interrupted change 00001-"


@pytest.fixture(scope="module")
def live(tmp_path_factory, nginx_bin):
    with LiveSite(tmp_path_factory.mktemp("journal-nginx"), nginx_bin, spares={"agent_new": "127.0.0.2"},
                        probes=list(PROBES)) as site:
        yield site


@pytest.fixture
def site(live):
    assert live.nginx.process.poll() is None, live.nginx.error_log()
    assert routes_become(live, PROBES) == PROBES
    yield live
    live.restore()
    routes_become(live, PROBES)


def servers(db):
    from django_esb.engine.models import EngineServer

    return EngineServer.objects.using(db.alias)


def rows(db) -> list[tuple]:
    return list(servers(db).order_by("pk").values_list("id", "ip_address", "ip_port", "app_port", "category",
                                                        "is_active", "s_id"))


def seed(db, site) -> None:
    old = site.backends["agent_test"]
    servers(db).create(ip_address=old.host, ip_port="4245", app_port=str(old.port), category="tapp", is_active=True,
                       info="")


def esbgen(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "esbgen", *args], capture_output=True, text=True, timeout=120,
                          env=with_faults({**os.environ, **env}))


def swap_args(site, db) -> list[str]:
    return ["swap", "paasagent", "test", "--to", site.backends["agent_new"].address, "--activate",
            "--database", db.url, *site.tree.options(site.bin)]


def edited(site) -> bytes:
    old, new = site.backends["agent_test"], site.backends["agent_new"]
    return site.pristine["conf.d/paas.conf"].replace(f"server {old.address} ".encode(), f"server {new.address} ".encode())


def routes_become(site, expected: dict, seconds: float = 10.0) -> dict:
    """What nginx serves once the workers of its last reload took over and the old ones are gone (bounded
    wait: the test nginx runs one worker, so two mean a reload is still under way)."""
    deadline = time.monotonic() + seconds
    now = site.routes()
    while (now != expected or len(site.nginx.workers()) != 1) and time.monotonic() < deadline:
        time.sleep(0.05)
        now = site.routes()
    return now


def nginx_t(site) -> subprocess.CompletedProcess:
    return subprocess.run([site.bin, *("-p", str(site.tree.prefix), "-c", str(site.tree.main), "-t")],
                          capture_output=True, text=True, timeout=60)


def journal_states(state_dir) -> list[str]:
    folder = state_dir / "journal"
    if not folder.is_dir():
        return []
    return [json.loads((entry / "journal.json").read_text())["state"] for entry in sorted(folder.iterdir())]


@pytest.mark.django_db(transaction=True, databases=["default"])
@pytest.mark.parametrize("point", POINTS)
def test_a_swap_killed_at_any_step_is_rolled_back_by_the_next_run_which_says_so(site, sqlite_db, point,
                                                                                 host_state_dir):
    seed(sqlite_db, site)
    before = rows(sqlite_db)
    killed = esbgen(*swap_args(site, sqlite_db), ESBGEN_CRASH_AT=point)
    assert killed.returncode == 137, killed.stderr
    now = site.tree.snapshot()
    assert set(now) == set(site.pristine)  # nothing beside the configuration: no backup, no temporary file
    assert now["conf.d/paas.conf"] in (site.pristine["conf.d/paas.conf"], edited(site))
    assert nginx_t(site).returncode == 0
    assert journal_states(host_state_dir) == ["applying"]

    if POINTS.index(point) % 2:  # the next run is the undo, or the swap itself
        nxt = esbgen("undo", "--swap", "--database", sqlite_db.url)
        assert nxt.returncode == 1 and "nothing to undo" in nxt.stderr
        expected_file, expected_routes, expected_rows = site.pristine, PROBES, before
    else:
        nxt = esbgen(*swap_args(site, sqlite_db))
        assert nxt.returncode == 0, nxt.stderr
        expected_file = {**site.pristine, "conf.d/paas.conf": edited(site)}
        expected_routes, expected_rows = {**PROBES, "/t/demo/": "agent_new"}, None
    assert ROLLED_BACK in nxt.stdout and "everything is as it was before it" in nxt.stdout
    assert site.tree.snapshot() == expected_file
    assert routes_become(site, expected_routes) == expected_routes
    if expected_rows is not None:
        assert rows(sqlite_db) == expected_rows
    else:
        assert len(rows(sqlite_db)) == 2
    assert nginx_t(site).returncode == 0
    assert journal_states(host_state_dir)[0] == "rolled-back"


@pytest.mark.django_db(transaction=True, databases=["default"])
@pytest.mark.parametrize("signal_name, status", [("TERM", 143), ("INT", 130)])
@pytest.mark.parametrize("point", POINTS)
def test_sigterm_and_sigint_at_any_step_roll_the_swap_back(site, sqlite_db, point, signal_name, status,
                                                           host_state_dir):
    seed(sqlite_db, site)
    before = rows(sqlite_db)
    done = esbgen(*swap_args(site, sqlite_db), ESBGEN_INTERRUPT_AT=point, ESBGEN_INTERRUPT_SIGNAL=signal_name)
    assert done.returncode == status, done.stderr
    assert done.stderr.splitlines() == [
        f"esbgen: error: interrupted (SIG{signal_name}) while applying: the change was rolled back, "
        "everything is as it was"]
    assert done.stdout == ""
    assert site.tree.snapshot() == site.pristine
    assert routes_become(site, PROBES) == PROBES
    assert rows(sqlite_db) == before
    assert nginx_t(site).returncode == 0
    assert not host_state_dir.exists()  # rolled back whole: no journal, no state folder


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_undo_swap_puts_the_file_the_rows_and_the_traffic_back(site, sqlite_db, host_state_dir):
    seed(sqlite_db, site)
    before = rows(sqlite_db)
    done = esbgen(*swap_args(site, sqlite_db))
    assert done.returncode == 0, done.stderr
    assert "`esbgen undo --swap` reverts it" in done.stdout
    assert routes_become(site, {**PROBES, "/t/demo/": "agent_new"}) == {**PROBES, "/t/demo/": "agent_new"}

    listed = esbgen("undo", "--swap", "--list")
    assert listed.returncode == 0 and "applied      swap paasagent test: " in listed.stdout
    dry = esbgen("undo", "--swap", "--dry-run", "--database", sqlite_db.url)
    assert dry.returncode == 0, dry.stderr
    assert f"put back the earlier bytes of {site.tree.paas}" in dry.stdout
    assert "delete the engine_servers row of 127.0.0.2 (agent port 4245)" in dry.stdout
    assert site.tree.snapshot()["conf.d/paas.conf"] == edited(site)

    undone = esbgen("undo", "--swap", "--database", sqlite_db.url)
    assert undone.returncode == 0, undone.stderr
    assert site.tree.snapshot() == site.pristine
    assert routes_become(site, PROBES) == PROBES
    assert rows(sqlite_db) == before
    assert journal_states(host_state_dir) == ["undone"]
    again = esbgen("undo", "--swap", "--database", sqlite_db.url)
    assert again.returncode == 1 and "already undone" in again.stderr


def test_undo_swap_refuses_when_the_file_was_edited_since(site, host_state_dir):
    new = site.backends["agent_new"]
    assert site.swap("paasagent", "test", "--to", new.address).exit_code == 0
    someone = site.tree.paas.read_bytes() + b"# someone else's edit\n"
    site.tree.paas.write_bytes(someone)
    refused = esbgen("undo", "--swap")
    assert refused.returncode == 1
    (line,) = refused.stderr.splitlines()
    assert "changed since esbgen wrote it; undo it by hand, nothing was changed" in line
    assert site.tree.paas.read_bytes() == someone
    assert journal_states(host_state_dir) == ["applied"]


def test_a_dry_run_or_a_refused_swap_leaves_no_state_folder(tmp_path, nginx_bin, host_state_dir):
    tree = NginxTree(tmp_path / "nginx", {"paas": 8001, "appengine": 8000, "esb": 8002, "login": 8003,
                                          "agent_test": 8085, "agent_prod": 8086}, listen=free_port())
    backend = HttpBackend("new")
    try:
        before = tree.snapshot()
        dry = run_esbgen(["swap", "web", "paas", "--to", backend.address, "--dry-run", *tree.options(nginx_bin)])
        assert dry.exit_code == 0, dry.stderr
        assert "nginx: " not in dry.stdout and "+    server " in dry.stdout
        refused = run_esbgen(["swap", "web", "--upstream", "NOPE", "--to", backend.address, *tree.options(nginx_bin)])
        assert refused.exit_code == 1
        failed = run_esbgen(["swap", "web", "paas", "--to", backend.address, *tree.options(nginx_bin)])
        assert failed.exit_code == 1 and "nginx -s reload failed" in failed.stderr  # no nginx runs this tree
        assert tree.snapshot() == before
        assert not host_state_dir.exists()  # the failed one was rolled back whole: it leaves no state either
    finally:
        backend.stop()


def test_no_state_folder_for_a_dry_run(tmp_path, nginx_bin, host_state_dir):
    tree = NginxTree(tmp_path / "nginx", {"paas": 8001, "appengine": 8000, "esb": 8002, "login": 8003,
                                          "agent_test": 8085, "agent_prod": 8086}, listen=free_port())
    backend = HttpBackend("new")
    try:
        assert run_esbgen(["swap", "web", "paas", "--to", backend.address, "--dry-run",
                           *tree.options(nginx_bin)]).exit_code == 0
        assert run_esbgen(["swap", "web", "--upstream", "NOPE", "--to", backend.address,
                           *tree.options(nginx_bin)]).exit_code == 1
    finally:
        backend.stop()
    assert not host_state_dir.exists()


def test_undo_without_the_plugin_names_the_kind_it_needs(site, host_state_dir):
    assert site.swap("paasagent", "test", "--to", site.backends["agent_new"].address).exit_code == 0
    refused = esbgen("undo", "--swap", ESBGEN_DISABLE_PLUGINS="nginx")
    assert refused.returncode == 1
    (line,) = refused.stderr.splitlines()
    assert "has a step of kind 'nginx_config', which no loaded plugin provides" in line
    assert "ESBGEN_DISABLE_PLUGINS" in line
    assert site.tree.snapshot()["conf.d/paas.conf"] == edited(site)
    assert journal_states(host_state_dir) == ["applied"]


def test_one_swap_at_a_time_on_a_host(site, host_state_dir):
    """The host's state folder is locked as an ESB root is: a second swap waits, then refuses naming the holder."""
    from esbgen.journal import store as journal

    with journal.locked(journal.host_store()):
        waited = esbgen("swap", "paasagent", "test", "--to", site.backends["agent_new"].address,
                        *site.tree.options(site.bin), ESBGEN_LOCK_TIMEOUT="0.3")
    assert waited.returncode == 1
    (line,) = waited.stderr.splitlines()
    assert f"{host_state_dir} is locked by esbgen pid {os.getpid()}" in line
    assert site.tree.snapshot() == site.pristine
