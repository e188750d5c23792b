"""`esbgen swap paasagent ... --activate`: nginx and the developer center's server list move together.

A real nginx on loopback proxies ``/t/`` and ``/o/`` to HTTP backends (the "old"
agents on 127.0.0.1, the new ones on 127.0.0.2 and 127.0.0.3); ``engine_servers``
lives in the test project's database, and every test taking ``esb_db`` runs on
SQLite and on the session's real MariaDB (tests/conftest_services.py).  Rows are
seeded and read back through the test project's ``engine.EngineServer``.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest_services import READER, READER_PASSWORD, ROOT_PASSWORD, WRITER, WRITER_PASSWORD
from nginx_harness import LiveSite, NginxTree, free_port, run_esbgen, one_error_line

PROBES = {"/t/demo/": "agent_test", "/o/demo/": "agent_prod"}
AGENT_PORT = "4245"


@pytest.fixture(scope="module")
def live(tmp_path_factory, nginx_bin):
    with LiveSite(tmp_path_factory.mktemp("agents-nginx"), nginx_bin,
                        spares={"agent_new": "127.0.0.2", "agent_new2": "127.0.0.3"}, probes=list(PROBES)) as site:
        yield site


@pytest.fixture
def site(live):
    assert live.nginx.process.poll() is None, live.nginx.error_log()
    assert live.routes() == PROBES
    yield live
    live.restore()


# ---------------------------------------------------------------- the server list, seeded and read


def servers(esb_db):
    from django_esb.engine.models import EngineServer

    return EngineServer.objects.using(esb_db.alias)


def add_server(esb_db, host: str, app_port: int, *, category: str = "tapp", active: bool = True,
               ip_port: str = AGENT_PORT, **extra) -> int:
    row = servers(esb_db).create(ip_address=host, ip_port=ip_port, app_port=str(app_port), category=category,
                                 is_active=active, info="", **extra)
    return row.id


def rows(esb_db) -> list[dict]:
    return list(servers(esb_db).order_by("pk").values(
        "id", "name", "s_id", "token", "ip_address", "ip_port", "app_port", "category", "info", "is_active",
        "updated_at"))


def active_ids(esb_db) -> set[int]:
    return {row["id"] for row in rows(esb_db) if row["is_active"]}


def seed(esb_db, site) -> dict[str, int]:
    """The CE's agents: the test one behind PAAS_AGENT_TEST, the prod one, another active and an inactive test one."""
    old, prod = site.backends["agent_test"], site.backends["agent_prod"]
    return {
        "old": add_server(esb_db, old.host, old.port),
        "prod": add_server(esb_db, prod.host, prod.port, category="app", ip_port="4246"),
        "other": add_server(esb_db, "127.0.0.9", 8085),
        "retired": add_server(esb_db, "127.0.0.8", 8085, active=False),
    }


def printed_auth(out: str, host: str, port: str = AGENT_PORT) -> tuple[uuid.UUID, uuid.UUID]:
    """The sid the swap printed, and the token from the private file it names (a token is never printed)."""
    match = re.search(rf"^  agent {re.escape(host)}:{port}: sid (\S+)  token written to (\S+)$", out, re.M)
    assert match, out
    written = Path(match.group(2))
    assert written.stat().st_mode & 0o777 == 0o600 and written.parent.stat().st_mode & 0o777 == 0o700
    auth = dict(line.strip().split(": ") for line in written.read_text().splitlines()[1:])
    assert auth["token"] not in out
    return uuid.UUID(match.group(1)), uuid.UUID(auth["token"])


def agent_config(path: Path, sid: uuid.UUID, token: uuid.UUID, port: int = 4245) -> Path:
    path.write_text(
        "auth:\n"
        f"  sid: {sid}  # agent sid\n"
        f"  token: {token} # agent token\n"
        "settings:\n"
        "  CONTROLLER_SERVER_URL: 'http://paas.bk.test' # app engine\n"
        "  BASE_PATH: '/data/paas'\n"
        f"port: {port}\n"
        "ip: ''\n"
    )
    return path


# ---------------------------------------------------------------- the main job


def test_activate_adds_the_new_agent_and_retires_the_one_it_replaces(esb_db, site):
    ids = seed(esb_db, site)
    before = {row["id"]: row for row in rows(esb_db)}
    new, old = site.backends["agent_new"], site.backends["agent_test"]

    result = site.swap("paasagent", "test", "--to", new.address, "--activate", "--database", esb_db.url)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert site.routes() == {**PROBES, "/t/demo/": "agent_new"}
    assert "nginx -s reload: ok" in out
    assert f"add row: 127.0.0.2 (agent port 4245, apps on {new.port}), name '127.0.0.2', active" in out
    assert (f"deactivate: row id {ids['old']} 127.0.0.1 (agent port 4245, apps on {old.port}, category tapp, active)"
            f"  (the upstream's old server {old.address})") in out
    assert f"left active: row id {ids['other']} 127.0.0.9" in out
    assert "engine_servers: committed (1 row(s) added, 1 deactivated)" in out
    assert "ACTION NEEDED: write them into the new agent's paas_agent_config.yaml as auth.sid and auth.token" in out
    assert out.index("nginx -s reload: ok") < out.index("engine_servers: committed")
    if esb_db.server is not None:
        assert WRITER_PASSWORD not in out and f"mysql://{WRITER}:***@127.0.0.1:{esb_db.server.port}/test_esb" in out

    sid, token = printed_auth(out, "127.0.0.2")
    after = rows(esb_db)
    assert active_ids(esb_db) == {ids["prod"], ids["other"], after[-1]["id"]}
    added = after[-1]
    assert {k: added[k] for k in ("name", "ip_address", "ip_port", "app_port", "category", "info", "is_active")} == {
        "name": "127.0.0.2", "ip_address": "127.0.0.2", "ip_port": "4245", "app_port": str(new.port),
        "category": "tapp", "info": "added by esbgen swap", "is_active": True}
    assert (added["s_id"], added["token"]) == (sid, token) and sid.version == token.version == 4 and sid != token
    for row in after[:-1]:  # only is_active (and the time of the change) moved, and only for the old agent
        expected = dict(before[row["id"]])
        if row["id"] == ids["old"]:
            assert row["updated_at"] > expected["updated_at"]
            expected.update(is_active=False, updated_at=row["updated_at"])
        assert row == expected


def test_dry_run_shows_the_rows_and_changes_nothing(esb_db, site):
    ids = seed(esb_db, site)
    before, workers = rows(esb_db), site.nginx.workers()
    url = esb_db.url
    if esb_db.server is not None:
        url = esb_db.server.url(READER, READER_PASSWORD)  # a dry run only reads
    else:
        db_bytes = Path(esb_db.name).read_bytes()
    new = site.backends["agent_new"]

    result = site.swap("paasagent", "test", "--to", new.address, "--activate", "--database", url, "--dry-run")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "engine_servers (" in out and "test servers (category tapp):" in out
    assert f"add row: 127.0.0.2 (agent port 4245, apps on {new.port}), name '127.0.0.2', active; " \
           "new uuid4 sid and token, generated when applied" in out
    assert f"deactivate: row id {ids['old']} 127.0.0.1" in out
    assert f"+    server {new.address} max_fails=1  fail_timeout=30s;" in out
    assert "dry run: nothing written; nginx neither tested nor reloaded; engine_servers not changed\nDry run: nothing was changed." in out
    assert " sid " not in out.replace("new uuid4 sid", "")  # no values that the real run would not use
    assert rows(esb_db) == before
    assert site.tree.snapshot() == site.pristine and site.nginx.workers() == workers
    assert site.routes() == PROBES
    if esb_db.server is None:
        assert Path(esb_db.name).read_bytes() == db_bytes


def test_the_same_swap_again_is_a_no_op(esb_db, site):
    seed(esb_db, site)
    args = ("paasagent", "test", "--to", site.backends["agent_new"].address, "--activate", "--database", esb_db.url)
    assert site.swap(*args).exit_code == 0
    done, edited, workers = rows(esb_db), site.tree.snapshot(), site.nginx.workers()

    again = site.swap(*args)
    assert again.exit_code == 0, again.stderr
    assert again.stdout.strip().startswith("Nothing to do: ")
    assert again.stdout.strip().endswith("(file untouched, nginx not reloaded, engine_servers already as asked).")
    assert rows(esb_db) == done  # updated_at included
    assert site.tree.snapshot() == edited and site.nginx.workers() == workers


def test_an_existing_inactive_row_of_the_agent_is_activated_and_keeps_its_identity(esb_db, site):
    ids = seed(esb_db, site)
    new = site.backends["agent_new"]
    sid = uuid.uuid4()
    mine = add_server(esb_db, new.host, new.port, active=False, name="open-source agent", s_id=sid)
    result = site.swap("paasagent", "test", "--to", new.address, "--activate", "--database", esb_db.url)
    assert result.exit_code == 0, result.stderr
    assert f"activate: row id {mine} 127.0.0.2 (agent port 4245, apps on {new.port}, category tapp, inactive)" in result.stdout
    assert "engine_servers: committed (1 activated, 1 deactivated)" in result.stdout
    assert "ACTION NEEDED" not in result.stdout and "add row" not in result.stdout
    assert active_ids(esb_db) == {ids["prod"], ids["other"], mine}
    assert [(row["name"], row["s_id"]) for row in rows(esb_db) if row["id"] == mine] == [("open-source agent", sid)]
    assert len(rows(esb_db)) == 5


def test_the_agent_config_gives_sid_token_and_agent_port(esb_db, site, tmp_path):
    ids = seed(esb_db, site)
    sid, token = uuid.uuid4(), uuid.uuid4()
    config = agent_config(tmp_path / "paas_agent_config.yaml", sid, token, port=4250)
    new = site.backends["agent_new"]
    result = site.swap("paasagent", "test", "--to", new.address, "--activate", "--database", esb_db.url,
                       "--agent-config", config, "--name", "oss-agent-1")
    assert result.exit_code == 0, result.stderr
    assert f"add row: 127.0.0.2 (agent port 4250, apps on {new.port}), name 'oss-agent-1', active; " \
           f"sid and token from {config}" in result.stdout
    assert printed_auth(result.stdout, "127.0.0.2", "4250") == (sid, token)
    assert "ACTION NEEDED" not in result.stdout
    added = rows(esb_db)[-1]
    assert (added["name"], added["ip_port"], added["s_id"], added["token"]) == ("oss-agent-1", "4250", sid, token)
    assert active_ids(esb_db) == {ids["prod"], ids["other"], added["id"]}


def test_two_new_agents_get_a_row_each(esb_db, site):
    ids = seed(esb_db, site)
    one, two = site.backends["agent_new"], site.backends["agent_new2"]
    result = site.swap("paasagent", "test", "--to", one.address, "--to", two.address, "--activate",
                       "--database", esb_db.url)
    assert result.exit_code == 0, result.stderr
    assert "engine_servers: committed (2 row(s) added, 1 deactivated)" in result.stdout
    auths = [printed_auth(result.stdout, host) for host in ("127.0.0.2", "127.0.0.3")]
    added = rows(esb_db)[-2:]
    assert [(r["ip_address"], r["app_port"], r["is_active"]) for r in added] == [
        ("127.0.0.2", str(one.port), True), ("127.0.0.3", str(two.port), True)]
    assert [(r["s_id"], r["token"]) for r in added] == auths
    assert ids["old"] not in active_ids(esb_db)


def test_only_the_rows_change_when_nginx_already_points_at_the_agent(esb_db, site):
    ids = seed(esb_db, site)
    new = site.backends["agent_new"]
    assert site.swap("paasagent", "test", "--to", new.address).exit_code == 0  # swapped earlier, without --activate
    edited, workers = site.tree.snapshot(), site.nginx.workers()

    result = site.swap("paasagent", "test", "--to", new.address, "--activate", "--database", esb_db.url)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "(file untouched, nginx not reloaded); the server list is not as asked" in out
    assert "add row: 127.0.0.2" in out and "engine_servers: committed (1 row(s) added)" in out
    # The agent this swap does not replace any more stays active, and the plan says so.
    assert f"left active: row id {ids['old']} 127.0.0.1" in out
    assert site.tree.snapshot() == edited and site.nginx.workers() == workers
    assert active_ids(esb_db) == {ids["old"], ids["prod"], ids["other"], rows(esb_db)[-1]["id"]}


def test_through_python_m_esbgen(esb_db, site):
    """The standalone command in a fresh process: Django is configured only when --activate needs it."""
    ids = seed(esb_db, site)
    new = site.backends["agent_new"]
    workers = site.nginx.workers()
    done = subprocess.run(
        [sys.executable, "-m", "esbgen", "swap", "paasagent", "test", "--to", new.address, "--activate",
         "--database", esb_db.url, *site.tree.options(site.bin)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert not site.nginx.wait_workers_replaced(workers) & workers
    assert site.routes() == {**PROBES, "/t/demo/": "agent_new"}
    printed_auth(done.stdout, "127.0.0.2")
    assert active_ids(esb_db) == {ids["prod"], ids["other"], rows(esb_db)[-1]["id"]}


# ---------------------------------------------------------------- nothing half-done


def _view_database(tmp_path: Path, old) -> str:
    """A SQLite database whose engine_servers is a view: it reads, and refuses every write."""
    path = tmp_path / "view.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute(
        "CREATE TABLE real_servers (id INTEGER PRIMARY KEY, name TEXT, s_id TEXT, token TEXT, ip_address TEXT, "
        "ip_port TEXT, app_port TEXT, category TEXT, info TEXT, is_active BOOL, mac TEXT, created_at DATETIME, "
        "updated_at DATETIME)")
    connection.execute("INSERT INTO real_servers VALUES (1, '', ?, ?, ?, '4245', ?, 'tapp', '', 1, '', "
                       "'2020-01-01 00:00:00', '2020-01-01 00:00:00')",
                       (uuid.uuid4().hex, uuid.uuid4().hex, old.host, str(old.port)))
    connection.execute("CREATE VIEW engine_servers AS SELECT * FROM real_servers")
    connection.commit()
    connection.close()
    return f"sqlite://{path}"


def test_a_database_that_refuses_the_write_leaves_nginx_untouched(esb_db, site, tmp_path):
    old = site.backends["agent_test"]
    if esb_db.server is not None:
        add_server(esb_db, old.host, old.port)
        url = esb_db.server.url(READER, READER_PASSWORD)  # may read engine_servers, may not write it
    else:
        url = _view_database(tmp_path, old)
    before, workers = rows(esb_db), site.nginx.workers()

    result = site.swap("paasagent", "test", "--to", site.backends["agent_new"].address, "--activate", "--database", url)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "cannot write engine_servers in " in line and line.endswith("; nothing was changed (nginx untouched)")
    if esb_db.server is not None:
        assert "permission denied" in line and READER_PASSWORD not in line
    else:
        assert "view" in line
    assert site.tree.snapshot() == site.pristine and site.nginx.workers() == workers
    assert site.routes() == PROBES
    assert rows(esb_db) == before


def test_a_configuration_nginx_rejects_rolls_the_rows_back(esb_db, site):
    seed(esb_db, site)
    broken = site.tree.root / "conf.d" / "zz-broken.conf"
    broken.write_text("upstream LEGACY {\n    server 127.0.0.1:9 max_fails=banana;\n}\n")
    before, files, workers = rows(esb_db), site.tree.snapshot(), site.nginx.workers()

    result = site.swap("paasagent", "test", "--to", site.backends["agent_new"].address, "--activate",
                       "--database", esb_db.url)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "nginx -t rejected the edited configuration" in line and "max_fails=banana" in line
    assert line.endswith("; engine_servers was not changed")  # the rows come after nginx -t and the reload
    assert rows(esb_db) == before
    assert site.tree.snapshot() == files and site.nginx.workers() == workers
    assert site.routes() == PROBES


def _deferred_check_database(tmp_path: Path, old) -> str:
    """SQLite whose engine_servers checks a deferred foreign key at COMMIT: the insert passes, the commit fails."""
    path = tmp_path / "deferred.sqlite3"
    connection = sqlite3.connect(path)
    connection.executescript(
        "CREATE TABLE known_info (text TEXT PRIMARY KEY);"
        "INSERT INTO known_info VALUES ('');"
        "CREATE TABLE engine_servers (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(20) NOT NULL, "
        "s_id CHAR(32) NOT NULL, token CHAR(32) NOT NULL, ip_address VARCHAR(36) NOT NULL, "
        "ip_port VARCHAR(36) NOT NULL, app_port VARCHAR(36) NOT NULL, category VARCHAR(36) NOT NULL, "
        "info VARCHAR(200) NOT NULL REFERENCES known_info (text) DEFERRABLE INITIALLY DEFERRED, "
        "is_active BOOL NOT NULL, mac VARCHAR(36) NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);"
    )
    connection.execute("INSERT INTO engine_servers VALUES (1, '', ?, ?, ?, '4245', ?, 'tapp', '', 1, '', "
                       "'2020-01-01 00:00:00', '2020-01-01 00:00:00')",
                       (uuid.uuid4().hex, uuid.uuid4().hex, old.host, str(old.port)))
    connection.commit()
    connection.close()
    return str(path)


def _sqlite_rows(path: str) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT * FROM engine_servers ORDER BY id").fetchall()
    finally:
        connection.close()


def test_a_commit_that_fails_after_the_reload_puts_nginx_back(esb_db, site, tmp_path, monkeypatch):
    """The rows are committed only after the reload; if the commit fails, nginx goes back to the old agent.

    SQLite: a deferred foreign key fails at COMMIT.  MariaDB: the server drops esbgen's
    connection (KILL CONNECTION, as root) once the rows are written, before the commit: the rows
    are the journal's step after nginx's, so nginx has reloaded by then.
    """
    from esbgen_nginx import agents
    from esbgen_nginx.nginxctl import Nginx

    old = site.backends["agent_test"]
    if esb_db.server is None:
        url = _deferred_check_database(tmp_path, old)
        before = _sqlite_rows(url)
    else:
        add_server(esb_db, old.host, old.port)
        url, before = esb_db.url, rows(esb_db)
    real_reload, real_write = Nginx.reload, agents._check_and_write
    reloads, writes = [], []

    def reload_and_settle(self):
        """The real reload; then wait (bounded) until nginx's workers are the new ones."""
        workers = site.nginx.workers()
        outcome = real_reload(self)
        reloads.append(outcome.ok)
        if outcome.ok:
            assert not site.nginx.wait_workers_replaced(workers) & workers
        return outcome

    def write_then_drop(database, record):
        """The real write; on MariaDB, after the one of the applying step (the plan's trial write comes first
        and is rolled back), the server drops esbgen's connection: its transaction is still open."""
        real_write(database, record)
        writes.append(len(reloads))
        if esb_db.server is not None and reloads:
            query = "SELECT id FROM information_schema.processlist WHERE user = %s"
            for (ident,) in esb_db.server.sql(query, [WRITER]):
                esb_db.server.sql(f"KILL CONNECTION {int(ident)}")

    monkeypatch.setattr(Nginx, "reload", reload_and_settle)
    monkeypatch.setattr(agents, "_check_and_write", write_then_drop)

    result = site.swap("paasagent", "test", "--to", site.backends["agent_new"].address, "--activate", "--database", url)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "cannot commit the change of engine_servers in " in line
    assert line.endswith("was restored byte for byte and nginx reloaded again: "
                         "the old servers serve as before; engine_servers is unchanged")
    assert reloads == [True, True] and writes == [0, 1]
    assert site.tree.snapshot() == site.pristine
    assert site.routes() == PROBES
    assert (_sqlite_rows(url) if esb_db.server is None else rows(esb_db)) == before


def test_an_agent_carrying_the_old_agents_identity_is_refused(esb_db, site, tmp_path):
    ids = seed(esb_db, site)
    old_row = next(row for row in rows(esb_db) if row["id"] == ids["old"])
    config = agent_config(tmp_path / "paas_agent_config.yaml", old_row["s_id"], old_row["token"])
    before = rows(esb_db)
    result = site.swap("paasagent", "test", "--to", site.backends["agent_new"].address, "--activate",
                       "--database", esb_db.url, "--agent-config", config)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"sid {old_row['s_id']} ({config}) is already that of engine_servers row id {ids['old']}" in line
    assert "carries another agent's identity" in line
    assert rows(esb_db) == before and site.tree.snapshot() == site.pristine


@pytest.mark.parametrize("clash", ["category", "app_port", "sid", "duplicate"])
def test_a_row_that_contradicts_the_swap_is_refused(esb_db, site, clash):
    new = site.backends["agent_new"]
    if clash == "category":
        add_server(esb_db, new.host, new.port, category="app")
        expected = "is not a test server (category tapp)"
    elif clash == "app_port":
        add_server(esb_db, new.host, 8085)
        expected = f"says its apps answer on port 8085, but --to says {new.address}"
    elif clash == "sid":
        add_server(esb_db, new.host, new.port)
        expected = "has another sid/token than --sid/--token"
    else:
        add_server(esb_db, new.host, new.port)
        add_server(esb_db, new.host, new.port)
        expected = "has 2 rows for 127.0.0.2 agent port 4245"
    before, workers = rows(esb_db), site.nginx.workers()
    result = site.swap("paasagent", "test", "--to", new.address, "--activate", "--database", esb_db.url,
                       "--sid", str(uuid.uuid4()), "--token", str(uuid.uuid4()))
    assert result.exit_code == 1
    assert expected in one_error_line(result)
    assert rows(esb_db) == before
    assert site.tree.snapshot() == site.pristine and site.nginx.workers() == workers


@pytest.mark.django_db(transaction=True, databases=["mariadb"])
def test_mariadb_refusals_come_before_nginx(mariadb_server, site):
    new = site.backends["agent_new"].address
    cases = {
        mariadb_server.url(port=free_port()): "cannot connect to the server",
        mariadb_server.url(password="wrong-password"): "wrong user or password",
        mariadb_server.url(database="mysql", user="root", password=ROOT_PASSWORD): "the table does not exist",
    }
    workers = site.nginx.workers()
    for url, reason in cases.items():
        for extra in ((), ("--dry-run",)):
            result = site.swap("paasagent", "test", "--to", new, "--activate", "--database", url, *extra)
            assert result.exit_code == 1, (url, result.stdout)
            line = one_error_line(result)
            assert "cannot read engine_servers in mysql://" in line and reason in line, line
            assert line.endswith("; nothing was changed")
            assert "wrong-password" not in line and ROOT_PASSWORD not in line
    assert site.tree.snapshot() == site.pristine and site.nginx.workers() == workers


def test_sqlite_refusals_come_before_nginx(site, tmp_path, unblocked_db):
    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()
    cases = {
        f"sqlite://{tmp_path / 'missing.sqlite3'}": "no SQLite database at",
        f"sqlite://{empty}": "the table does not exist",
    }
    for url, reason in cases.items():
        result = site.swap("paasagent", "test", "--to", site.backends["agent_new"].address, "--activate",
                           "--database", url)
        assert result.exit_code == 1, result.stdout
        assert reason in one_error_line(result)
    assert site.tree.snapshot() == site.pristine
    assert not (tmp_path / "missing.sqlite3").exists()


# ---------------------------------------------------------------- the command line


@pytest.fixture
def tree(tmp_path):
    return NginxTree(tmp_path / "nginx", {"paas": 8001, "appengine": 8000, "esb": 8002, "login": 8003,
                                         "agent_test": 8085, "agent_prod": 8086}, listen=free_port())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--activate", "--no-reload", "--database", "sqlite:///x.db"], "drop --no-reload"),
        (["--database", "sqlite:///x.db"], "--database goes with --activate"),
        (["--agent-port", "4246"], "--agent-port goes with --activate"),
        (["--activate", "--sid", str(uuid.uuid4())], "give --sid and --token together"),
        (["--activate", "--sid", "not-a-uuid", "--token", str(uuid.uuid4())], "is not a UUID"),
        (["--activate", "--name", "x" * 21, "--database", "sqlite:///x.db"], "longer than the 20 characters"),
        (["--activate", "--to", "127.0.0.3:8085", "--name", "two", "--database", "sqlite:///x.db"],
         "give a single --to"),
    ],
    ids=["no-reload", "database-alone", "agent-port-alone", "sid-alone", "bad-uuid", "long-name", "name-two-agents"],
)
def test_usage_errors_exit_2_and_touch_nothing(tree, nginx_bin, args, message):
    before = tree.snapshot()
    result = run_esbgen(["swap", "paasagent", "test", "--to", "127.0.0.2:8085", "--skip-check", *args,
                         *tree.options(nginx_bin)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert tree.snapshot() == before


def test_activate_needs_a_database_and_an_environment(tree, nginx_bin, monkeypatch):
    monkeypatch.delenv("ESBGEN_DATABASE_URL", raising=False)
    before = tree.snapshot()
    base = ["swap", "paasagent", "--to", "127.0.0.2:8085", "--skip-check", "--activate", *tree.options(nginx_bin)]
    no_database = run_esbgen([*base[:2], "test", *base[2:]])
    assert no_database.exit_code == 2
    assert "--activate writes engine_servers: give --database URL (or $ESBGEN_DATABASE_URL)" in no_database.stderr
    no_environment = run_esbgen([*base, "--upstream", "PAAS_AGENT_TEST", "--database", "sqlite:///x.db"])
    assert no_environment.exit_code == 2
    assert "--activate needs the environment" in no_environment.stderr
    web = run_esbgen(["swap", "web", "paas", "--to", "127.0.0.2:8001", "--activate", *tree.options(nginx_bin)])
    assert web.exit_code == 2 and "No such option" in web.stderr and "--activate" in web.stderr
    assert tree.snapshot() == before


def test_a_broken_agent_config_is_one_line(tree, nginx_bin, tmp_path):
    cases = {
        "auth: [unclosed\n": "is not valid YAML",
        "settings: {}\nport: 4245\n": "has no auth.sid and auth.token",
        "auth:\n  sid: abc\n  token: def\n": "is not a UUID",
        f"auth:\n  sid: {uuid.uuid4()}\n  token: {uuid.uuid4()}\nport: nope\n": "is not a port number",
    }
    before = tree.snapshot()
    for text, reason in cases.items():
        config = tmp_path / "paas_agent_config.yaml"
        config.write_text(text)
        result = run_esbgen(["swap", "paasagent", "test", "--to", "127.0.0.2:8085", "--skip-check", "--activate",
                             "--database", "sqlite:///x.db", "--agent-config", str(config), *tree.options(nginx_bin)])
        assert result.exit_code == 1, result.output
        assert reason in one_error_line(result)
    assert tree.snapshot() == before
