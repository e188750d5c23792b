"""A sync that is verified, recorded for undo, forced where rows need it, and followed by grants.

The ESB root is a scratch copy of fixtures/esb whose manage.py is fixtures/sync/manage.py: a
stand-in that writes systems, channels and api docs as the ESB's own sync does, in the
generation the tables have ($ESBGEN_FAKE_ESB_DATABASE), with its --force behaviour, and can
leave a channel out ($ESBGEN_FAKE_SYNC_DROP).  Every test runs on SQLite and on the session's
real MariaDB (a database of its own, written by the ``esbgen`` user), on the legacy and the later
tables (tests/esb_tables.py).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from conftest import FIXTURES, assert_one_line_refusal, snapshot
from conftest_services import WRITER
from esb_tables import statements

CLONE = ("clone", "sops", "--as", "bk_sops_ce")
VOLATILE = {"updated_time", "last_modified_time", "last_accessed_time"}


@dataclass
class SyncDb:
    generation: str
    url: str
    run: object  # run(sql, args=()) -> rows as dicts

    def rows(self, table: str) -> list[dict]:
        return self.run(f"SELECT * FROM {table} ORDER BY id")

    def channels(self, system: str) -> list[dict]:
        column = "system_id" if self.generation == "later" else "component_system_id"
        return self.run(f"SELECT c.* FROM esb_channel c JOIN esb_component_system s ON s.id = c.{column} "
                        "WHERE s.name = ? ORDER BY c.path", (system,))

    def state(self) -> dict[str, list[dict]]:
        """Every row of every table, but the columns each save stamps."""
        tables = ["esb_component_system", "esb_channel", self.permission_table] + (
            ["esb_component_doc", "esb_channel_extend"] if self.generation == "later" else ["esb_api_doc"])
        return {t: [{k: v for k, v in row.items() if k not in VOLATILE} for row in self.rows(t)] for t in tables}

    @property
    def permission_table(self) -> str:
        return "esb_app_component_permission" if self.generation == "later" else "esb_app_component_perm"

    @property
    def app_column(self) -> str:
        return "bk_app_code" if self.generation == "later" else "app_code"


def _sqlite(path: Path, generation: str) -> SyncDb:
    connection = sqlite3.connect(path)
    for sql in statements(generation, "sqlite"):
        connection.execute(sql)
    connection.commit()
    connection.close()

    def run(sql, args=()):
        connection = sqlite3.connect(path)
        connection.row_factory = sqlite3.Row
        try:
            rows = [dict(row) for row in connection.execute(sql, args).fetchall()]
            connection.commit()
            return rows
        finally:
            connection.close()

    return SyncDb(generation, f"sqlite://{path}", run)


def _mariadb(server, generation: str) -> SyncDb:
    name = f"sync_{uuid.uuid4().hex[:8]}"
    server.sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4", database=None)
    server.sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{name}`.* TO '{WRITER}'@'%'", database=None)
    for sql in statements(generation, "mysql"):
        server.sql(sql, database=name)

    def run(sql, args=None):
        import pymysql

        connection = pymysql.connect(host="127.0.0.1", port=server.port, user="root", password="root-Pw.1",
                                     database=name, cursorclass=pymysql.cursors.DictCursor, autocommit=True)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql.replace("?", "%s"), args)
                return [dict(row) for row in cursor.fetchall()]
        finally:
            connection.close()

    return SyncDb(generation, server.url(database=name), run)


@pytest.fixture(params=["sqlite-legacy", "sqlite-later", "mariadb-legacy", "mariadb-later"])
def sync_db(request, tmp_path, unblocked_db, monkeypatch) -> SyncDb:
    engine, generation = request.param.split("-")
    if engine == "sqlite":
        found = _sqlite(tmp_path / "esb.sqlite3", generation)
    else:
        found = _mariadb(request.getfixturevalue("mariadb_server"), generation)
    monkeypatch.setenv("ESBGEN_FAKE_ESB_DATABASE", found.url)
    monkeypatch.delenv("ESBGEN_DATABASE_URL", raising=False)
    monkeypatch.delenv("ESBGEN_FAKE_SYNC_DROP", raising=False)
    return found


@pytest.fixture
def root(esb_root, tmp_path, monkeypatch) -> Path:
    """fixtures/esb with the stand-in manage.py that writes rows."""
    shutil.copy(FIXTURES / "sync" / "manage.py", esb_root / "manage.py")
    monkeypatch.setenv("ESBGEN_FAKE_SYNC_LOG", str(tmp_path / "sync.jsonl"))
    return esb_root


def sync_calls(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "sync.jsonl"
    return [json.loads(line)["argv"] for line in log.read_text().splitlines()] if log.exists() else []


def cloned(run_esbgen, root, sync_db, *extra):
    return run_esbgen(*CLONE, "--esb-root", root, "--database", sync_db.url, "--sync", "--esb-python", sys.executable,
                      *extra)


def planned_paths(sync_db) -> list[str]:
    names = ["create_periodic_task", "create_task", "get_periodic_task_info", "get_periodic_task_list",
             "get_task_detail", "get_task_status", "get_template_info", "get_template_list", "import_common_template",
             "operate_task", "query_task_count", "set_periodic_task_enabled", "start_task"]
    if sync_db.generation == "legacy":
        names.remove("import_common_template")  # is_hidden: true, which the legacy sync leaves out
    return sorted(f"/v2/bk_sops_ce/{name}/" for name in names)


def test_a_synced_clone_is_verified_row_by_row(sync_db, root, run_esbgen, tmp_path):
    result = cloned(run_esbgen, root, sync_db)
    assert result.exit_code == 0, result.output + result.stderr
    paths = planned_paths(sync_db)
    assert f"{len(paths)} of {len(paths)} planned channel(s) of BK_SOPS_CE are there as planned" in result.output
    assert sync_calls(tmp_path) == [["sync_data_at_deploy"]]  # nothing to force on a new system
    rows = sync_db.channels("BK_SOPS_CE")
    assert [row["path"] for row in rows] == paths
    assert {row["component_codename"] for row in rows} == {"generic.v2.bk_sops_ce.sops_component"}
    assert "Recorded in change" in result.output and "`esbgen undo` takes them back" in result.output


def test_a_channel_the_sync_drops_is_an_error_naming_it(sync_db, root, run_esbgen, monkeypatch):
    monkeypatch.setenv("ESBGEN_FAKE_SYNC_DROP", "/v2/bk_sops_ce/create_task/")
    result = cloned(run_esbgen, root, sync_db)
    assert result.exit_code == 1, result.output
    error = result.stderr.strip().splitlines()
    assert len(error) == 1, result.stderr
    prefix = "" if sync_db.generation == "legacy" else "POST "
    assert f"1 planned channel row(s) of BK_SOPS_CE differ from the files: {prefix}/v2/bk_sops_ce/create_task/: " \
           "no row in esb_channel" in error[0]
    assert f"DIFFERS {prefix}/v2/bk_sops_ce/create_task/: no row in esb_channel" in result.output
    assert "The change itself is applied and kept" in result.output
    assert (root / "components/confapis/bk_sops_ce").is_dir()
    # The rows the sync did write are part of the change: undo takes them back.
    assert len(sync_db.channels("BK_SOPS_CE")) == len(planned_paths(sync_db)) - 1
    undone = run_esbgen("undo", "--esb-root", root, "--database", sync_db.url)
    assert undone.exit_code == 0, undone.stderr
    assert [row["path"] for row in sync_db.rows("esb_channel") if row["path"].startswith("/v2/bk_sops_ce/")] == []


def _system_id(sync_db, name: str) -> int:
    return sync_db.run("SELECT id FROM esb_component_system WHERE name = ?", (name,))[0]["id"]


def _stale_row(sync_db) -> None:
    """A channel row of the clone's path left under SOPS (an earlier clone that kept the source's codename)."""
    if sync_db.generation == "legacy":
        sync_db.run("INSERT INTO esb_component_system (name, label, component_admin, interface_admin, system_link, "
                    "belong_to, remark) VALUES ('SOPS', 'SOPS', '', '', '', '', '')")
        sync_db.run("INSERT INTO esb_channel (name, path, method, component_system_id, component_codename, "
                    "component_name, is_active, last_modified_time, created_time, type, comp_conf, perm_level, "
                    "is_hidden, rate_limit_required, extra_info) VALUES ('old', '/v2/bk_sops_ce/get_template_list/', "
                    "'', ?, 'generic.v2.sops.sops_component', 'get_template_list', 1, '2020-01-01 00:00:00', "
                    "'2020-01-01 00:00:00', 1, '', 0, 1, 0, '')", (_system_id(sync_db, "SOPS"),))
    else:
        sync_db.run("INSERT INTO esb_component_system (name, description, comment, board, data_type, maintainers, "
                    "created_time, updated_time, created_by, updated_by) VALUES ('SOPS', 'SOPS', '', 'default', 1, '', "
                    "'2020-01-01 00:00:00', '2020-01-01 00:00:00', '', '')")
        sync_db.run("INSERT INTO esb_channel (created_time, updated_time, created_by, updated_by, board, system_id, "
                    "name, description, method, path, component_codename, permission_level, verified_user_required, "
                    "config, is_active, is_public, data_type) VALUES ('2020-01-01 00:00:00', '2020-01-01 00:00:00', "
                    "'', '', 'default', ?, 'get_template_list', 'old', 'GET', '/v2/bk_sops_ce/get_template_list/', "
                    "'generic.v2.sops.sops_component', 'normal', 0, '{}', 1, 1, 1)", (_system_id(sync_db, "SOPS"),))


def _row_of(sync_db, path: str) -> dict:
    return sync_db.run("SELECT * FROM esb_channel WHERE path = ?", (path,))[0]


def esb_synced(root: Path) -> None:
    """The ESB's own sync, run once before esbgen's change (its other systems' rows are there, and stay)."""
    import subprocess

    done = subprocess.run([sys.executable, "manage.py", "sync_data_at_deploy"], cwd=root, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_rows_the_sync_writes_only_with_force_get_it_and_undo_puts_them_back(sync_db, root, run_esbgen, tmp_path):
    _stale_row(sync_db)
    esb_synced(root)
    (tmp_path / "sync.jsonl").unlink()
    before = sync_db.state()
    result = cloned(run_esbgen, root, sync_db)
    assert result.exit_code == 0, result.output + result.stderr
    prefix = "" if sync_db.generation == "legacy" else "GET "
    assert f"Running with --force: {sys.executable} manage.py sync_system_and_channel_data --force " \
           "(sync_data_at_deploy takes no --force)" in result.output
    assert f"{prefix}/v2/bk_sops_ce/get_template_list/: system SOPS -> BK_SOPS_CE" in result.output
    assert sync_calls(tmp_path) == [["sync_data_at_deploy"], ["sync_system_and_channel_data", "--force"]]
    system_column = "system_id" if sync_db.generation == "later" else "component_system_id"
    row = _row_of(sync_db, "/v2/bk_sops_ce/get_template_list/")
    assert row[system_column] == _system_id(sync_db, "BK_SOPS_CE")
    if sync_db.generation == "later":
        # Set once, when the row is created: the ESB keeps what was set since, and esbgen says so.
        assert row["permission_level"] == "normal"
        assert "permission_level stays 'normal'" in result.output

    dry = run_esbgen("undo", "--esb-root", root, "--database", sync_db.url, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "restore esb_channel row" in dry.output and "(/v2/bk_sops_ce/get_template_list/)" in dry.output
    assert "delete esb_channel row" in dry.output and "Dry run: nothing was changed." in dry.output
    undone = run_esbgen("undo", "--esb-root", root, "--database", sync_db.url)
    assert undone.exit_code == 0, undone.stderr
    assert sync_db.state() == before


def test_no_force_sync_says_which_rows_keep_stale_values(sync_db, root, run_esbgen, tmp_path):
    _stale_row(sync_db)
    esb_synced(root)
    (tmp_path / "sync.jsonl").unlink()
    result = cloned(run_esbgen, root, sync_db, "--no-force-sync")
    assert result.exit_code == 0, result.output + result.stderr
    prefix = "" if sync_db.generation == "legacy" else "GET "
    assert "Not forced (--no-force-sync): the ESB's sync writes these only with --force, so these rows keep stale " \
           f"values: {prefix}/v2/bk_sops_ce/get_template_list/: system SOPS -> BK_SOPS_CE" in result.output
    assert f"{prefix}/v2/bk_sops_ce/get_template_list/: kept stale without --force: system 'SOPS', planned " \
           "'BK_SOPS_CE'" in result.output
    assert sync_calls(tmp_path) == [["sync_data_at_deploy"]]
    system_column = "system_id" if sync_db.generation == "later" else "component_system_id"
    assert _row_of(sync_db, "/v2/bk_sops_ce/get_template_list/")[system_column] == _system_id(sync_db, "SOPS")


def test_undo_after_a_sync_leaves_the_database_as_before_the_change(sync_db, root, run_esbgen, tmp_path):
    esb_synced(root)  # its other systems' rows are there, and stay
    before = sync_db.state()
    result = cloned(run_esbgen, root, sync_db, "--grant", "bk-monitor")
    assert result.exit_code == 0, result.output + result.stderr
    assert len(sync_db.channels("BK_SOPS_CE")) == len(planned_paths(sync_db))
    docs = "esb_component_doc" if sync_db.generation == "later" else "esb_api_doc"
    assert len(sync_db.rows(docs)) > len(before[docs])
    undone = run_esbgen("undo", "--esb-root", root, "--database", sync_db.url)
    assert undone.exit_code == 0, undone.stderr
    assert sync_db.state() == before
    assert not (root / "components/confapis/bk_sops_ce").exists()


def test_grants_are_written_as_add_compperm_for_app_does_and_undone(sync_db, root, run_esbgen):
    result = cloned(run_esbgen, root, sync_db, "--grant", "bk-monitor", "--grant", "bk-log")
    assert result.exit_code == 0, result.output + result.stderr
    count = len(planned_paths(sync_db))
    assert f"Granted app bk-monitor the {count} channel(s) of BK_SOPS_CE in {sync_db.permission_table}: " \
           f"{count} added, 0 already there" in result.output
    rows = sync_db.rows(sync_db.permission_table)
    ids = {row["id"] for row in sync_db.channels("BK_SOPS_CE")}
    assert sorted((row[sync_db.app_column], row["component_id"]) for row in rows) == sorted(
        (app, channel) for app in ("bk-log", "bk-monitor") for channel in ids)
    expires = rows[0]["expires"]
    expires = expires if isinstance(expires, datetime) else datetime.fromisoformat(str(expires))
    assert abs(expires - (datetime.now() + timedelta(days=180))) < timedelta(minutes=5)
    undone = run_esbgen("undo", "--esb-root", root, "--database", sync_db.url)
    assert undone.exit_code == 0, undone.stderr
    assert sync_db.rows(sync_db.permission_table) == []
    assert sync_db.run("SELECT * FROM esb_component_system WHERE name = 'BK_SOPS_CE'") == []
    assert [row["path"] for row in sync_db.rows("esb_channel") if row["path"].startswith("/v2/bk_sops_ce/")] == []


def test_new_with_sync_is_verified_too(sync_db, root, run_esbgen):
    result = run_esbgen("new", "bk_demo", "--app-code", "bk-demo", "--esb-root", root, "--database", sync_db.url,
                        "--sync", "--esb-python", sys.executable, "--grant", "bk-demo")
    assert result.exit_code == 0, result.output + result.stderr
    assert "1 of 1 planned channel(s) of BK_DEMO are there as planned" in result.output
    assert len(sync_db.rows(sync_db.permission_table)) == 1


def test_a_row_changed_after_the_sync_makes_undo_refuse_cleanly(sync_db, root, run_esbgen):
    result = cloned(run_esbgen, root, sync_db)
    assert result.exit_code == 0, result.output + result.stderr
    sync_db.run("UPDATE esb_channel SET component_codename = 'edited.by.hand' WHERE path = ?",
                ("/v2/bk_sops_ce/start_task/",))
    undone = run_esbgen("undo", "--esb-root", root, "--database", sync_db.url)
    assert undone.exit_code == 1
    assert "rows changed since the sync wrote them" in undone.stderr and "nothing was changed" in undone.stderr
    assert "(/v2/bk_sops_ce/start_task/)" in undone.stderr
    assert len(sync_db.channels("BK_SOPS_CE")) == len(planned_paths(sync_db))
    assert (root / "components/confapis/bk_sops_ce").is_dir()


def test_grant_and_no_force_sync_need_a_verified_sync(esb_root, run_esbgen, monkeypatch):
    monkeypatch.delenv("ESBGEN_DATABASE_URL", raising=False)
    for extra in (("--grant", "bk-monitor"), ("--no-force-sync",), ("--sync", "--grant", "bk-monitor")):
        result = run_esbgen(*CLONE, "--esb-root", esb_root, *extra)
        assert result.exit_code == 2, result.output
        assert "goes with --sync and a database" in result.stderr
    assert not (esb_root / "components/confapis/bk_sops_ce").exists()


def test_a_fresh_esbgen_process_undoes_the_synced_rows(sync_db, root, run_esbgen):
    from conftest_services import run_cli

    result = cloned(run_esbgen, root, sync_db, "--grant", "bk-monitor")
    assert result.exit_code == 0, result.output + result.stderr
    done = run_cli("undo", "--esb-root", root, "--database", sync_db.url)
    assert done.returncode == 0, done.stderr
    assert sync_db.rows(sync_db.permission_table) == []
    assert [row["path"] for row in sync_db.rows("esb_channel") if row["path"].startswith("/v2/bk_sops_ce/")] == []


def test_a_relative_esb_python_runs_in_the_esb_root(sync_db, root, run_esbgen, tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    wrapper = tmp_path / "bin" / "python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    result = run_esbgen(*CLONE, "--esb-root", root, "--database", sync_db.url, "--sync", "--esb-python", "bin/python")
    assert result.exit_code == 0, result.output + result.stderr
    assert f"{tmp_path / 'bin' / 'python'} manage.py sync_data_at_deploy" in result.output


def _running(pid: int) -> bool:
    """Whether ``pid`` is a process that still runs (a zombie waiting for its parent does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _last_journal(root: Path) -> dict:
    return json.loads(sorted((root / ".esbgen" / "journal").glob("*/journal.json"))[-1].read_text())


@pytest.mark.parametrize("signal_name, status", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_during_the_sync_ends_it_records_its_rows_and_undo_is_clean(sync_db, root, tmp_path, signal_name,
                                                                             status):
    import os
    import signal
    import subprocess
    import time

    from conftest_services import run_cli

    esb_synced(root)  # the other systems' rows, which stay
    before = sync_db.state()
    hang = tmp_path / "sync.pids"
    esbgen = subprocess.Popen(
        [sys.executable, "-m", "esbgen", *CLONE, "--esb-root", str(root), "--database", sync_db.url, "--sync",
         "--esb-python", sys.executable], env={**os.environ, "ESBGEN_FAKE_SYNC_HANG": str(hang)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not hang.exists():  # the sync has committed its channels and waits
        assert esbgen.poll() is None and time.monotonic() < deadline, esbgen.communicate()
        time.sleep(0.05)
    sync_pid, its_child = map(int, hang.read_text().split())
    assert _running(sync_pid) and _running(its_child)
    written = sync_db.channels("BK_SOPS_CE")
    assert written

    esbgen.send_signal(getattr(signal, signal_name))
    out, err = esbgen.communicate(timeout=60)
    assert esbgen.returncode == status, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"esbgen: error: interrupted ({signal_name}) after change "), err
    assert lines[0].endswith("was applied: it is kept (`esbgen undo` reverts it); the steps after it may not have run")
    assert not _running(sync_pid)
    deadline = time.monotonic() + 5
    while _running(its_child) and time.monotonic() < deadline:  # ended with its group, reaped by init
        time.sleep(0.05)
    assert not _running(its_child)

    (synced,) = [op for op in _last_journal(root)["ops"] if op.get("kind") == "db_synced_rows"]
    assert sorted(row["path"] for row in synced["record"]["created"]["esb_channel"]) == \
        sorted(row["path"] for row in written)
    undone = run_cli("undo", "--esb-root", root, "--database", sync_db.url)
    assert undone.returncode == 0, undone.stderr
    assert sync_db.state() == before
    assert not (root / "components/confapis/bk_sops_ce").exists()


def _grant_by_hand(sync_db, app: str) -> None:
    """Permissions for every channel of the clone, as the ESB's add_compperm_for_app writes them."""
    stamp = "2030-01-01 00:00:00"
    for channel in sync_db.channels("BK_SOPS_CE"):
        if sync_db.generation == "later":
            sync_db.run("INSERT INTO esb_app_component_permission (created_time, updated_time, board, bk_app_code, "
                        "component_id, expires) VALUES (?, ?, 'default', ?, ?, ?)",
                        (stamp, stamp, app, channel["id"], stamp))
        else:
            sync_db.run("INSERT INTO esb_app_component_perm (app_code, component_id, expires, created_time, "
                        "last_accessed_time) VALUES (?, ?, ?, ?, ?)", (app, channel["id"], stamp, stamp, stamp))


def test_undo_after_the_esbs_own_sync_takes_its_rows_with_the_system(sync_db, root, run_esbgen):
    esb_synced(root)
    before = sync_db.state()
    cloned = run_esbgen(*CLONE, "--esb-root", root, "--database", sync_db.url)  # the row, and no --sync
    assert cloned.exit_code == 0, cloned.output + cloned.stderr
    esb_synced(root)  # then the operator runs the ESB's sync by hand, and grants an app
    _grant_by_hand(sync_db, "bk-monitor")
    assert len(sync_db.channels("BK_SOPS_CE")) == len(planned_paths(sync_db))
    docs = "esb_component_doc" if sync_db.generation == "later" else "esb_api_doc"
    assert len(sync_db.rows(docs)) > len(before[docs])
    assert len(sync_db.rows(sync_db.permission_table)) == len(planned_paths(sync_db))
    dry = run_esbgen("undo", "--esb-root", root, "--database", sync_db.url, "--dry-run")
    assert "delete row BK_SOPS_CE in esb_component_system" in dry.output
    assert "with the rows the ESB's sync made for it since (its channels, their docs and app permissions), in one " \
           "transaction" in dry.output

    undone = run_esbgen("undo", "--esb-root", root, "--database", sync_db.url)
    assert undone.exit_code == 0, undone.output + undone.stderr
    assert sync_db.state() == before
    assert not (root / "components/confapis/bk_sops_ce").exists()


def _table_pointing_at_systems(sync_db) -> None:
    """A table of the ESB's own with a foreign key to a system (the later ESB's permission applications, the
    legacy one's buffet components): its rows are made by people, never by a sync."""
    auto = "AUTOINCREMENT" if sync_db.url.startswith("sqlite") else "AUTO_INCREMENT"
    sync_db.run(f"CREATE TABLE esb_buffet_component (id integer NOT NULL PRIMARY KEY {auto}, name varchar(64) NOT NULL, "
                "system_id integer NOT NULL, FOREIGN KEY (system_id) REFERENCES esb_component_system (id))")


@pytest.mark.parametrize("holder", ["a row of another table", "a channel moved under the system"])
def test_rows_no_sync_made_hold_the_undo_back_named_and_nothing_changes(sync_db, root, run_esbgen, holder):
    if holder == "a channel moved under the system":
        _stale_row(sync_db)
    esb_synced(root)
    cloned = run_esbgen(*CLONE, "--esb-root", root, "--database", sync_db.url)
    assert cloned.exit_code == 0, cloned.output + cloned.stderr
    esb_synced(root)
    system_id = _system_id(sync_db, "BK_SOPS_CE")
    if holder == "a row of another table":
        _table_pointing_at_systems(sync_db)
        sync_db.run("INSERT INTO esb_buffet_component (name, system_id) VALUES ('by hand', ?)", (system_id,))
        named = f"esb_buffet_component row 1 (system_id {system_id})"
    else:  # the operator forced the ESB's sync: the row of another system's path moves under the clone
        import subprocess

        done = subprocess.run([sys.executable, "manage.py", "sync_system_and_channel_data", "--force"], cwd=root,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        moved = _row_of(sync_db, "/v2/bk_sops_ce/get_template_list/")
        named = f"esb_channel row(s) {moved['id']} (/v2/bk_sops_ce/get_template_list/): there before"
    held, tree = sync_db.state(), snapshot(root)

    undone = run_esbgen("undo", "--esb-root", root, "--database", sync_db.url)
    assert_one_line_refusal(undone)
    assert named in undone.stderr, undone.stderr
    assert "by hand, then run `esbgen undo` again" in undone.stderr and "nothing was changed" in undone.stderr
    assert sync_db.state() == held and snapshot(root) == tree

    if holder == "a row of another table":  # once that row is gone, the undo goes through
        sync_db.run("DELETE FROM esb_buffet_component")
        undone = run_esbgen("undo", "--esb-root", root, "--database", sync_db.url)
        assert undone.exit_code == 0, undone.stderr
        assert sync_db.channels("BK_SOPS_CE") == [] and sync_db.run(
            "SELECT * FROM esb_component_system WHERE name = 'BK_SOPS_CE'") == []
