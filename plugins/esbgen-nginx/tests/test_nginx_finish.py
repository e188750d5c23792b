"""A swap finishes the procedure: the service asked through nginx, the old backend stopped, the apps named.

Real parts: an nginx on loopback over the PaaS tree, whose ``OPEN_PAAS`` and ``PAAS_AGENT_PROD``
upstreams point at services supervisord runs (answering_server.py: 200, 502, slow, or a closed
connection), and the PaaS's app tables (``engine_servers``, ``engine_apps``, ``engine_hosting_ships``,
``paas_app``, with the columns the PaaS's public models give them) on SQLite and on MariaDB.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest_services import ROOT_PASSWORD
from faultkit import with_faults
from nginx_harness import LOOPBACK, UPSTREAMS, NginxProcess, NginxTree, free_port, http_get, one_error_line, run_esbgen

SERVER = Path(__file__).with_name("answering_server.py")
MODES = {"paas_old": "ok", "paas_new": "ok", "paas_502": "502", "paas_slow": "slow", "paas_close": "close",
         "agent_old": "ok", "agent_new": "ok"}


class Supervised:
    """supervisord on a unix socket, one program per entry of MODES, each on a port of its own."""

    def __init__(self, base: Path):
        self.base = base
        self.conf = base / "supervisord.conf"
        self.ports = {name: free_port() for name in MODES}
        bin_dir = Path(sys.executable).parent
        self.supervisorctl = str(bin_dir / "supervisorctl")
        programs = "".join(
            f"[program:{name}]\ncommand={sys.executable} {SERVER} {name} {self.ports[name]} {mode}\n"
            "startsecs=1\nstopwaitsecs=10\nautorestart=false\n\n" for name, mode in MODES.items())
        self.conf.write_text(
            f"[unix_http_server]\nfile={base / 'sv.sock'}\nchmod=0700\n\n"
            f"[supervisord]\nlogfile={base / 'supervisord.log'}\npidfile={base / 'supervisord.pid'}\n"
            f"childlogdir={base}\nnodaemon=true\n\n"
            "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
            f"[supervisorctl]\nserverurl=unix://{base / 'sv.sock'}\n\n{programs}")
        self.process = subprocess.Popen([str(bin_dir / "supervisord"), "-c", str(self.conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while set(self.states().values()) != {"RUNNING"} or len(self.states()) != len(MODES):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"supervisord did not start its programs: {self.states()}")
            time.sleep(0.1)

    def address(self, name: str) -> str:
        return f"{LOOPBACK}:{self.ports[name]}"

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.supervisorctl, "-c", str(self.conf), *args], capture_output=True, text=True,
                              timeout=60)

    def states(self) -> dict[str, str]:
        lines = self.ctl("status").stdout.splitlines()
        return {line.split()[0]: line.split()[1] for line in lines if len(line.split()) > 1}

    def options(self) -> list[str]:
        return ["--supervisorctl", self.supervisorctl, "--supervisor-conf", str(self.conf)]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture(scope="module")
def supervised(tmp_path_factory):
    service = Supervised(tmp_path_factory.mktemp("fsv"))
    yield service
    service.close()


class Site:
    """nginx over the PaaS tree: OPEN_PAAS -> paas_old, PAAS_AGENT_PROD -> agent_old; the rest point nowhere."""

    def __init__(self, prefix: Path, nginx_bin: str, supervised: Supervised):
        ports = {key: free_port() for key in UPSTREAMS.values()}
        ports.update(paas=supervised.ports["paas_old"], agent_prod=supervised.ports["agent_old"])
        self.tree = NginxTree(prefix, ports, listen=free_port())
        self.nginx = NginxProcess(nginx_bin, self.tree)
        self.bin, self.port, self.supervised = nginx_bin, self.tree.listen, supervised
        self.pristine = self.tree.snapshot()

    def swap(self, *args: str):
        return run_esbgen(["swap", *args, *self.tree.options(self.bin)])

    def served_by(self, path: str = "/") -> str:
        status, body = http_get(self.port, path)
        return f"{status} {body.split()[0] if body else ''}"

    def settle(self) -> None:
        """Wait (bounded) until one generation of workers serves, as after a finished reload."""
        deadline = time.monotonic() + 10
        while len(self.nginx.workers()) != 1 and time.monotonic() < deadline:
            time.sleep(0.02)

    def restore(self) -> None:
        if self.tree.snapshot() != self.pristine:
            self.tree.paas.write_bytes(self.pristine["conf.d/paas.conf"])
            self.nginx.reload()
        for name, state in self.supervised.states().items():
            if state != "RUNNING":
                self.supervised.ctl("start", name)


@pytest.fixture(scope="module")
def live(tmp_path_factory, nginx_bin, supervised):
    site = Site(tmp_path_factory.mktemp("finish-nginx"), nginx_bin, supervised)
    yield site
    site.nginx.stop()


@pytest.fixture
def site(live):
    assert live.nginx.process.poll() is None, live.nginx.error_log()
    live.settle()
    assert live.served_by("/") == "200 backend=paas_old"
    yield live
    live.restore()


def esbgen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "esbgen", *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))


def esbgen_env(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "esbgen", *args], capture_output=True, text=True, timeout=120,
                          env=with_faults({**os.environ, **env}))


# ---------------------------------------------------------------- 1. reached through nginx


@pytest.mark.parametrize("backend, answer", [("paas_502", "got HTTP 502 ("),
                                             ("paas_close", "got HTTP 502 ("),  # nginx answers for a backend that closed
                                             ("paas_slow", "got no answer within 1 s after the reload")])
def test_a_swap_that_makes_the_service_worse_through_nginx_is_rolled_back_and_says_why(site, backend, answer):
    result = site.swap("web", "paas", "--to", site.supervised.address(backend), "--connect-timeout", "1")
    assert result.exit_code == 1, result.stdout
    line = one_error_line(result)
    assert f"through nginx, GET http://127.0.0.1:{site.port}/ (location / (" in line
    assert answer in line and "HTTP 200 (" in line.split("after the reload, ")[1]
    assert "the service answered before the swap and fails after it" in line
    assert f"so {site.tree.paas} was restored byte for byte and nginx reloaded again" in line
    assert "; through nginx it answers HTTP 200 (" in line and line.endswith(" again")
    assert site.tree.snapshot() == site.pristine
    site.settle()
    assert site.served_by("/") == "200 backend=paas_old"


REGEX_SITE = """\
upstream OPEN_PAAS { server 127.0.0.1:8001; }
upstream OPEN_PAAS_ESB { server 127.0.0.1:8002; }
upstream PAAS_AGENT_PROD { server 10.0.0.2:8085; }
upstream PAAS_AGENT_TEST { server 10.0.0.1:8085; }
upstream UNROUTED { server 127.0.0.1:9; }
server {
    listen 443 ssl;
    listen *:8080 default_server;
    server_name _ paas.example.com;
    location ~ ^/doc/(.*) { proxy_pass http://OPEN_PAAS/static/doc/$1; }
    location / { proxy_pass http://open_paas; }
    location ~ ^/api/(.*) { proxy_pass http://OPEN_PAAS_ESB/$1$is_args$args; }
    include agents/*.conf;
}
"""


def test_the_location_is_found_as_blueking_writes_it(tmp_path):
    """Anchored regex locations (``~ ^/o/``), an upstream named in another case, an included location, a
    listen on every address and a catch-all server name."""
    from esbgen_nginx.reach import find_route

    (tmp_path / "agents").mkdir()
    (tmp_path / "nginx.conf").write_text("events {}\nhttp {\n    include paas.conf;\n}\n")
    (tmp_path / "paas.conf").write_text(REGEX_SITE)
    (tmp_path / "agents" / "o.conf").write_text("location ~ ^/o/ {\n    proxy_pass http://PAAS_AGENT_PROD;\n}\n"
                                                "location ~* /t/ {\n    proxy_pass http://PAAS_AGENT_TEST;\n}\n")
    main = tmp_path / "nginx.conf"
    found = {name: find_route(main, name, None) for name in
             ("OPEN_PAAS", "OPEN_PAAS_ESB", "PAAS_AGENT_PROD", "PAAS_AGENT_TEST", "UNROUTED")}
    assert {name: route and route.url for name, route in found.items()} == {
        "OPEN_PAAS": "http://127.0.0.1:8080/", "OPEN_PAAS_ESB": "http://127.0.0.1:8080/api/",
        "PAAS_AGENT_PROD": "http://127.0.0.1:8080/o/", "PAAS_AGENT_TEST": None, "UNROUTED": None}
    assert found["PAAS_AGENT_PROD"].host_header == "paas.example.com"
    assert found["PAAS_AGENT_PROD"].location == f"location ~ ^/o/ ({tmp_path / 'agents' / 'o.conf'}:1)"
    named = find_route(main, "PAAS_AGENT_TEST", "/t/bk_demo/")
    assert (named.path, named.url) == ("/t/bk_demo/", "http://127.0.0.1:8080/t/bk_demo/")


def test_the_answers_before_and_after_are_in_the_output_and_the_json(site):
    new = site.supervised.address("paas_new")
    result = site.swap("web", "paas", "--to", new, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    reached = report["through_nginx"]
    assert (reached["before"]["status"], reached["after"]["status"], reached["worse"]) == (200, 200, None)
    assert reached["route"]["path"] == "/" and reached["route"]["port"] == site.port
    assert any(line.startswith("  asked through nginx after the reload: HTTP 200 (") for line in report["messages"])
    assert any(line.startswith("    before the swap: HTTP 200 (") for line in report["messages"])
    site.settle()
    assert site.served_by("/") == "200 backend=paas_new"

    failed = json.loads(site.swap("web", "paas", "--to", site.supervised.address("paas_502"), "--json").stdout)
    assert failed["ok"] is False and failed["error"]["class"] == "RolledBack"
    reached = failed["through_nginx"]
    assert (reached["before"]["status"], reached["after"]["status"], reached["after_rollback"]["status"]) == \
        (200, 502, 200)


def test_expect_status_and_the_check_path_are_the_operators(site):
    new = site.supervised.address("paas_new")
    result = site.swap("paasagent", "prod", "--to", site.supervised.address("agent_new"),
                       "--nginx-check-path", "/o/bk_demo/", "--expect-status", "404")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"GET http://127.0.0.1:{site.port}/o/bk_demo/ (/o/bk_demo/ (--nginx-check-path), served by location ^~ /o/" in line
    assert "expected HTTP 404 (--expect-status)" in line
    assert site.tree.snapshot() == site.pristine

    done = site.swap("web", "paas", "--to", new, "--expect-status", "200")
    assert done.exit_code == 0, done.stderr
    assert "HTTP 200 expected after" in done.stdout


def test_a_reload_nginx_does_not_take_is_rolled_back(site, monkeypatch):
    """nginx -t passes, but the master cannot load the configuration (a listen on a port that is taken):
    it keeps the old workers and the old servers, and the check says so instead of asking them."""
    from esbgen_nginx import reach

    monkeypatch.setattr(reach, "TURNOVER_SECONDS", 2.0)
    taken = socket.socket()
    taken.bind((LOOPBACK, 0))
    taken.listen()
    busy = site.tree.root / "conf.d" / "busy.conf"
    busy.write_text(f"server {{\n    listen {LOOPBACK}:{taken.getsockname()[1]};\n}}\n")
    try:
        result = site.swap("web", "paas", "--to", site.supervised.address("paas_new"))
        assert result.exit_code == 1, result.stdout
        line = one_error_line(result)
        assert "nginx's old workers still took connections 2 s after the reload: nginx did not load the new " \
               "configuration (see its error log)" in line
        assert f"so {site.tree.paas} was restored byte for byte and nginx reloaded again" in line
        assert site.tree.paas.read_bytes() == site.pristine["conf.d/paas.conf"]
    finally:
        busy.unlink()
        taken.close()
        site.nginx.reload()
    assert site.served_by("/") == "200 backend=paas_old"


def test_a_service_that_failed_before_and_answers_after_is_kept(site):
    # the test site's OPEN_PAAS_LOGIN points at a port nothing listens on: nginx answers /login/ with a 502
    result = site.swap("web", "login", "--to", site.supervised.address("paas_new"), "--expect-status", "200")
    assert result.exit_code == 0, result.stderr
    assert "    before the swap: HTTP 502 (" in result.stdout
    assert "  asked through nginx after the reload: HTTP 200 (" in result.stdout


def test_an_upstream_no_location_proxies_to_is_not_asked_and_an_expectation_is_refused(site):
    unused = site.tree.root / "conf.d" / "unused.conf"
    unused.write_text("upstream UNUSED {\n    server 127.0.0.1:9 max_fails=1;\n}\n")
    try:
        new = site.supervised.address("paas_new")
        refused = site.swap("web", "--upstream", "UNUSED", "--to", new, "--expect-status", "200")
        assert refused.exit_code == 1
        assert "no location of nginx proxies to upstream UNUSED: nothing to ask through nginx" in one_error_line(refused)
        done = site.swap("web", "--upstream", "UNUSED", "--to", new)
        assert done.exit_code == 0, done.stderr
        assert "  not asked through nginx (no location with a path proxies to upstream UNUSED)" in done.stdout
    finally:
        unused.unlink()
        site.nginx.reload()


# ---------------------------------------------------------------- 2. the old program stopped, and back


class Load:
    """Client threads asking nginx for / on fresh connections, bounded in count and time."""

    def __init__(self, port: int, threads: int = 3, cap: int = 4000, seconds: float = 60.0):
        self.port, self.stop = port, threading.Event()
        self.lock = threading.Lock()
        self.answers: list[str] = []
        self.failures: list[str] = []
        self.deadline = time.monotonic() + seconds
        self.threads = [threading.Thread(target=self._client, args=(cap,), daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def _client(self, cap: int) -> None:
        for _ in range(cap):
            if self.stop.is_set() or time.monotonic() > self.deadline:
                return
            try:
                status, body = http_get(self.port, "/")
                outcome = body.split()[0] if status == 200 else f"HTTP {status}"
            except OSError as error:
                status, outcome = 0, f"{type(error).__name__}: {error}"
            with self.lock:
                (self.answers if status == 200 else self.failures).append(outcome)

    def count(self) -> int:
        with self.lock:
            return len(self.answers) + len(self.failures)

    def wait_for(self, more: int) -> None:
        target = self.count() + more
        while self.count() < target and time.monotonic() < self.deadline:
            time.sleep(0.01)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def test_stop_old_then_undo_starts_it_again_before_nginx_points_back_with_no_failed_request(site):
    sv = site.supervised
    load = Load(site.port)
    try:
        load.wait_for(50)
        result = site.swap("web", "paas", "--to", sv.address("paas_new"), "--stop-old", "--grace", "0.5",
                           *sv.options())
        assert result.exit_code == 0, result.stderr
        load.wait_for(100)
        states = sv.states()
        undone = esbgen("undo", "--swap")
        site.settle()  # the undo's reload is under way when it returns
        load.wait_for(100)
    finally:
        load.finish()
    out = result.stdout
    assert f"old backend: supervisor program paas_old (pid " in out and f"serves {sv.address('paas_old')}" in out
    assert "old backend: supervisor program paas_old stopped; `esbgen undo --swap` starts it again" in out
    assert states["paas_old"] == "STOPPED" and states["paas_new"] == "RUNNING"
    assert undone.returncode == 0, undone.stderr
    assert sv.states()["paas_old"] == "RUNNING"
    assert site.tree.snapshot() == site.pristine
    site.settle()
    assert site.served_by("/") == "200 backend=paas_old"
    assert load.failures == []
    assert {"backend=paas_old", "backend=paas_new"} <= set(load.answers)
    assert load.answers[-1] == "backend=paas_old"


def test_undo_dry_run_names_the_start_before_the_file(site):
    sv = site.supervised
    assert site.swap("web", "paas", "--to", sv.address("paas_new"), "--stop-old", *sv.options()).exit_code == 0
    dry = esbgen("undo", "--swap", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    start = dry.stdout.index("start paas_old, and wait until")
    assert start < dry.stdout.index("put back the earlier bytes of")
    assert sv.states()["paas_old"] == "STOPPED"
    assert esbgen("undo", "--swap").returncode == 0
    assert sv.states()["paas_old"] == "RUNNING"


@pytest.mark.parametrize("how", ["KILL", "TERM"])
def test_a_swap_stopped_once_the_old_program_is_down_starts_it_again(site, how, host_state_dir):
    sv = site.supervised
    args = ["swap", "web", "paas", "--to", sv.address("paas_new"), "--stop-old", *sv.options(),
            *site.tree.options(site.bin)]
    if how == "KILL":
        killed = esbgen_env(args, ESBGEN_CRASH_AT="swap-stopped")
        assert killed.returncode == 137, killed.stderr
        assert sv.states()["paas_old"] == "STOPPED"
        recovered = esbgen("undo", "--swap", "--list")
        assert "esbgen: rolled back an interrupted change 00001-" in recovered.stdout, recovered.stderr
    else:
        stopped = esbgen_env(args, ESBGEN_INTERRUPT_AT="swap-stopped", ESBGEN_INTERRUPT_SIGNAL="TERM")
        assert stopped.returncode == 143, stopped.stderr
        assert "the change was rolled back, everything is as it was" in stopped.stderr
    assert sv.states()["paas_old"] == "RUNNING"
    assert site.tree.snapshot() == site.pristine
    site.settle()
    assert site.served_by("/") == "200 backend=paas_old"


def test_stop_old_refusals_change_nothing(site):
    sv = site.supervised
    cases = [
        (["--old-program", "no_such"], "--old-program no_such: supervisor has no such program"),
        (["--old-program", "paas_new"], "--stop-old: supervisor program paas_new also serves a new backend"),
    ]
    for extra, message in cases:
        result = site.swap("web", "paas", "--to", sv.address("paas_new"), "--stop-old", *sv.options(), *extra)
        assert result.exit_code == 1, result.stdout
        assert message in one_error_line(result)
    unserved = site.swap("web", "--upstream", "OPEN_PAAS_LOGIN", "--to", sv.address("paas_new"), "--stop-old",
                         *sv.options())
    assert unserved.exit_code == 1
    assert "--stop-old: no running supervisor program serves the old backend" in one_error_line(unserved)
    for extra, message in [(["--old-program", "paas_old"], "--old-program goes with --stop-old"),
                           (["--stop-old", "--skip-check"], "--stop-old stops the old backend once nginx answers"),
                           (["--stop-old", "--no-reload"], "drop --no-reload"),
                           (["--expect-status", "200", "--no-reload"], "--expect-status asks nginx after the reload"),
                           (["--nginx-check-path", "o/"], "must be a URL path starting with '/'")]:
        usage = site.swap("web", "paas", "--to", sv.address("paas_new"), *extra)
        assert usage.exit_code == 2 and message in usage.stderr, usage.stderr
    assert site.tree.snapshot() == site.pristine
    assert set(sv.states().values()) == {"RUNNING"}


def test_a_failed_check_through_nginx_leaves_the_old_program_running(site):
    sv = site.supervised
    result = site.swap("web", "paas", "--to", sv.address("paas_502"), "--stop-old", *sv.options())
    assert result.exit_code == 1
    assert "got HTTP 502 (" in one_error_line(result)
    assert sv.states()["paas_old"] == "RUNNING"
    assert site.tree.snapshot() == site.pristine


# ---------------------------------------------------------------- 3. the apps on the old agent

# The PaaS's app tables as its public models define them (engine/models.py, app/models.py), the columns
# esbgen reads and those a deployment fills in.
SCHEMA = [
    """CREATE TABLE engine_servers (id INTEGER PRIMARY KEY AUTO_INCREMENT, name VARCHAR(20) NOT NULL,
       s_id CHAR(32) NOT NULL, token CHAR(32) NOT NULL, ip_address VARCHAR(36) NOT NULL, ip_port VARCHAR(36) NOT NULL,
       app_port VARCHAR(36) NOT NULL, category VARCHAR(36) NOT NULL, info VARCHAR(200) NOT NULL,
       is_active BOOL NOT NULL, mac VARCHAR(36) NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL)""",
    """CREATE TABLE engine_apps (id INTEGER PRIMARY KEY AUTO_INCREMENT, name VARCHAR(20) NOT NULL,
       logo VARCHAR(100) NOT NULL, app_code VARCHAR(100) NOT NULL UNIQUE, app_lang VARCHAR(100) NOT NULL,
       app_type VARCHAR(100) NOT NULL, is_active BOOL NOT NULL, created_at DATETIME NOT NULL,
       updated_at DATETIME NOT NULL)""",
    """CREATE TABLE engine_hosting_ships (id INTEGER PRIMARY KEY AUTO_INCREMENT,
       bk_app_id INTEGER NOT NULL REFERENCES engine_apps (id), bk_server_id INTEGER NOT NULL REFERENCES engine_servers (id),
       is_active BOOL NOT NULL, is_master BOOL NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL)""",
    """CREATE TABLE paas_app (id INTEGER PRIMARY KEY AUTO_INCREMENT, name VARCHAR(20) NOT NULL UNIQUE,
       code VARCHAR(30) NOT NULL UNIQUE, introduction TEXT NOT NULL, creater VARCHAR(20) NOT NULL,
       state SMALLINT NOT NULL, is_already_test BOOL NOT NULL, is_already_online BOOL NOT NULL,
       is_saas BOOL NOT NULL)""",
]
NOW = "2026-01-05 10:00:00"


def seed_apps(run, old_host: str, old_port: int) -> None:
    """Two prod agents (the old one, and one the swap does not touch) and four apps."""
    for statement in SCHEMA:
        run(statement)
    for sid, host, port, category, active in [("a" * 32, old_host, old_port, "app", 1),
                                              ("b" * 32, "10.0.0.9", 8085, "app", 0),
                                              ("c" * 32, "10.0.0.8", 8085, "tapp", 1)]:
        run("INSERT INTO engine_servers (name, s_id, token, ip_address, ip_port, app_port, category, info, is_active, "
            "mac, created_at, updated_at) VALUES (%s, %s, %s, %s, '4245', %s, %s, '', %s, '', %s, %s)",
            (host, sid, sid, host, str(port), category, active, NOW, NOW))
    apps = [("bk_demo", "Demo", 1, True), ("bk_sops_ce", "SOPS CE", 1, True), ("bk_gone", "Gone", 1, False),
            ("bk_elsewhere", "Elsewhere", 2, True), ("bk_test_only", "Test only", 3, True)]
    for number, (code, name, server, online) in enumerate(apps, start=1):
        run("INSERT INTO engine_apps (name, logo, app_code, app_lang, app_type, is_active, created_at, updated_at) "
            "VALUES (%s, '', %s, 'python', 'app', 1, %s, %s)", (name, code, NOW, NOW))
        run("INSERT INTO engine_hosting_ships (bk_app_id, bk_server_id, is_active, is_master, created_at, updated_at) "
            "VALUES (%s, %s, 1, 1, %s, %s)", (number, server, NOW, NOW))
        run("INSERT INTO paas_app (name, code, introduction, creater, state, is_already_test, is_already_online, "
            "is_saas) VALUES (%s, %s, '', 'admin', 4, 1, %s, 0)", (name, code, online))


@pytest.fixture(params=["sqlite", "mariadb"])
def paas_db(request, tmp_path) -> str:
    """The URL of a PaaS database holding the app tables, seeded for the agent_old program."""
    port = request.getfixturevalue("supervised").ports["agent_old"]
    if request.param == "sqlite":
        path = tmp_path / "open_paas.sqlite3"
        connection = sqlite3.connect(path)

        def run(statement, args=()):
            connection.execute(statement.replace("AUTO_INCREMENT", "AUTOINCREMENT").replace("%s", "?"), args)

        seed_apps(run, LOOPBACK, port)
        connection.commit()
        connection.close()
        yield f"sqlite:///{path}"
        return
    server = request.getfixturevalue("mariadb_server")
    name = f"open_paas_{os.getpid()}"
    server.sql(f"DROP DATABASE IF EXISTS {name}", database=None)
    server.sql(f"CREATE DATABASE {name}", database=None)
    seed_apps(lambda statement, args=None: server.sql(statement, args, database=name), LOOPBACK, port)
    yield server.url(user="root", password=ROOT_PASSWORD, database=name)
    server.sql(f"DROP DATABASE {name}", database=None)


@pytest.mark.django_db(transaction=True, databases=["default"])
@pytest.mark.parametrize("how", ["environment", "activate"])
def test_a_paasagent_swap_names_the_apps_still_on_the_old_agent(site, paas_db, monkeypatch, how):
    sv = site.supervised
    if how == "environment":
        monkeypatch.setenv("ESBGEN_DATABASE_URL", paas_db)
        extra = []
    else:
        monkeypatch.delenv("ESBGEN_DATABASE_URL", raising=False)
        extra = ["--activate", "--database", paas_db, "--agent-port", "4246"]  # the old agent has 4245
    result = site.swap("paasagent", "prod", "--to", sv.address("agent_new"), "--json", *extra)
    assert result.exit_code == 0, result.stderr
    if how == "activate":
        assert "  engine_servers: committed (1 row(s) added, 1 deactivated)" in json.loads(result.stdout)["messages"]
    report = json.loads(result.stdout)
    assert [app["app_code"] for app in report["apps_to_redeploy"]] == ["bk_demo", "bk_sops_ce"]
    messages = report["messages"]
    assert any(line.startswith("  apps on the old agent (engine_hosting_ships in ") and
               line.endswith(": 2 to redeploy on the new agent, 1 offline there") for line in messages)
    old = sv.address("agent_old")
    assert f"    redeploy: bk_demo (Demo) from {old}; then check /o/bk_demo/ answers" in messages
    assert f"    redeploy: bk_sops_ce (SOPS CE) from {old}; then check /o/bk_sops_ce/ answers" in messages
    assert "    offline in this environment, nothing to redeploy: bk_gone (Gone)" in messages
    assert not any("bk_elsewhere" in line or "bk_test_only" in line for line in messages)
    assert ROOT_PASSWORD not in result.stdout


def test_without_a_database_the_apps_are_not_read_and_it_says_so(site, monkeypatch):
    monkeypatch.delenv("ESBGEN_DATABASE_URL", raising=False)
    result = site.swap("paasagent", "prod", "--to", site.supervised.address("agent_new"), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "  apps on the old agent: not read (no PaaS database: give --activate --database URL, or " \
           "$ESBGEN_DATABASE_URL)" in result.stdout
