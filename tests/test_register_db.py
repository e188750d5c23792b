"""The system's esb_component_system row, written by `esbgen clone` and `esbgen register --database URL`.

Every test here runs twice: on SQLite and on a real MariaDB server started on
loopback for the session (tests/conftest_services.py).  The CLI runs
in-process, standalone (esbgen's own mapping of the table, the URL as a
connection of its own); the assertions read the table through the test
project's ``bkcore.ComponentSystem``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import snapshot
from conftest_services import READER, READER_PASSWORD, WRITER_PASSWORD, free_port

CLONE = ("clone", "sops", "--as", "bk_sops_ce")


def journal_texts(root: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((root / ".esbgen" / "journal").glob("*/journal.json")))


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("esbgen: error: "), lines
    return lines[0]


def test_clone_writes_one_row_however_often_it_runs(esb_db, esb_root, run_esbgen):
    first = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", esb_db.url)
    assert first.exit_code == 0, first.stderr
    assert "insert row BK_SOPS_CE into esb_component_system" in first.output
    assert "Database: inserted row BK_SOPS_CE in esb_component_system" in first.output
    assert esb_db.rows() == [
        {"name": "BK_SOPS_CE", "label": "BK_SOPS_CE", "remark": "Cloned from SOPS by esbgen", "component_admin": "",
         "execute_timeout": None}
    ]
    assert (esb_root / "components/confapis/bk_sops_ce/bk_sops_ce.yaml").is_file()

    again = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", esb_db.url)
    assert again.exit_code == 0, again.stderr
    assert "Nothing to do" in again.output
    assert len(esb_db.rows("BK_SOPS_CE")) == 1


def test_the_journal_keeps_no_password(esb_db, esb_root, run_esbgen):
    result = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", esb_db.url, "--label", "SOPS CE")
    assert result.exit_code == 0, result.stderr
    journal = journal_texts(esb_root)
    data = json.loads(journal)
    record = data["ops"][-1]["record"]
    assert data["ops"][-1]["kind"] == "db_system"
    assert record["action"] == "insert" and record["after"] == {"label": "SOPS CE", "remark": "Cloned from SOPS by esbgen"}
    if esb_db.server is not None:
        assert WRITER_PASSWORD not in journal and "s3cr%40t" not in journal
        assert record["database"] == f"mysql://esbgen:***@127.0.0.1:{esb_db.server.port}/test_esb"
        assert record["has_password"] is True


def test_dry_run_reads_but_changes_nothing(esb_db, esb_root, run_esbgen):
    before = snapshot(esb_root)
    url = esb_db.url
    if esb_db.server is not None:
        url = esb_db.server.url(READER, READER_PASSWORD)  # a dry run needs no write permission
    else:
        db_bytes = Path(esb_db.name).read_bytes()
    result = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", url, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "insert row BK_SOPS_CE into esb_component_system" in result.output
    assert "Dry run: nothing was changed." in result.output
    assert esb_db.rows() == []
    assert snapshot(esb_root) == before
    if esb_db.server is None:
        assert Path(esb_db.name).read_bytes() == db_bytes


def test_an_existing_row_changes_only_where_asked(esb_db, esb_root, run_esbgen):
    esb_db.add(name="BK_SOPS_CE", label="Old label", remark="kept remark", component_admin="admin", execute_timeout=45)

    kept = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", esb_db.url)
    assert kept.exit_code == 0, kept.stderr
    assert "unchanged: row BK_SOPS_CE in esb_component_system" in kept.output
    assert esb_db.rows() == [{"name": "BK_SOPS_CE", "label": "Old label", "remark": "kept remark",
                              "component_admin": "admin", "execute_timeout": 45}]

    dry = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", esb_db.url, "--label", "New label", "--dry-run")
    assert "update row BK_SOPS_CE in esb_component_system" in dry.output
    assert "label 'Old label' -> 'New label'" in dry.output
    assert "remark" not in dry.output.split("update row BK_SOPS_CE", 1)[1].splitlines()[0]
    assert esb_db.rows()[0]["label"] == "Old label"

    changed = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", esb_db.url, "--label", "New label")
    assert changed.exit_code == 0, changed.stderr
    assert esb_db.rows() == [{"name": "BK_SOPS_CE", "label": "New label", "remark": "kept remark",
                              "component_admin": "admin", "execute_timeout": 45}]

    undone = run_esbgen("undo", "--esb-root", esb_root, "--database", esb_db.url)
    assert undone.exit_code == 0, undone.stderr
    assert esb_db.rows()[0]["label"] == "Old label"


def test_undo_deletes_the_row_it_created_and_needs_the_password(esb_db, esb_root, run_esbgen, monkeypatch):
    original = snapshot(esb_root)
    assert run_esbgen(*CLONE, "--esb-root", esb_root, "--database", esb_db.url).exit_code == 0
    assert len(esb_db.rows("BK_SOPS_CE")) == 1
    if esb_db.server is not None:
        refused = run_esbgen("undo", "--esb-root", esb_root)
        assert refused.exit_code == 1
        assert "esbgen stores no password" in one_line_error(refused)
        assert len(esb_db.rows("BK_SOPS_CE")) == 1
        assert (esb_root / "components/confapis/bk_sops_ce").is_dir()
        monkeypatch.setenv("ESBGEN_DATABASE_URL", esb_db.url)  # the env var serves as well as --database
    undone = run_esbgen("undo", "--esb-root", esb_root)
    assert undone.exit_code == 0, undone.stderr
    assert esb_db.rows() == []
    assert snapshot(esb_root) == original


def test_a_row_changed_since_is_not_reverted_blindly(esb_db, esb_root, run_esbgen):
    assert run_esbgen(*CLONE, "--esb-root", esb_root, "--database", esb_db.url).exit_code == 0
    esb_db.model().filter(name="BK_SOPS_CE").update(label="edited in the admin")
    result = run_esbgen("undo", "--esb-root", esb_root, "--database", esb_db.url)
    assert result.exit_code == 1
    assert "changed since esbgen wrote it" in one_line_error(result)
    assert esb_db.rows()[0]["label"] == "edited in the admin"
    assert (esb_root / "components/confapis/bk_sops_ce").is_dir()  # nothing of the change was reverted


def test_a_write_the_database_refuses_rolls_the_files_back(esb_db, esb_root, run_esbgen, tmp_path):
    before = snapshot(esb_root)
    if esb_db.server is not None:
        url = esb_db.server.url(READER, READER_PASSWORD)  # may read, may not insert
    else:
        # A view of the table under its name refuses inserts: the write fails after the read succeeded.
        import sqlite3

        path = tmp_path / "view.sqlite3"
        connection = sqlite3.connect(path)
        connection.execute("CREATE TABLE real_systems (id INTEGER PRIMARY KEY, name TEXT, label TEXT, remark TEXT)")
        connection.execute("CREATE VIEW esb_component_system AS SELECT * FROM real_systems")
        connection.commit()
        connection.close()
        url = f"sqlite://{path}"
    result = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", url)
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "cannot write row BK_SOPS_CE to esb_component_system" in line and "nothing was changed" in line
    assert snapshot(esb_root) == before
    assert esb_db.rows() == []
    assert not (esb_root / ".esbgen").exists()  # a run that changed nothing leaves no state, no journal


def test_two_rows_of_one_system_are_refused(esb_db, esb_root, run_esbgen):
    esb_db.add(name="BK_SOPS_CE", label="one")
    esb_db.add(name="BK_SOPS_CE", label="two")
    before = snapshot(esb_root)
    result = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", esb_db.url)
    assert result.exit_code == 1
    assert "has 2 rows named BK_SOPS_CE" in one_line_error(result)
    assert snapshot(esb_root) == before


def test_register_writes_and_updates_the_row(esb_db, esb_root, run_esbgen):
    created = run_esbgen("register", "itsm", "--esb-root", esb_root, "--database", esb_db.url, "--remark", "ITSM app")
    assert created.exit_code == 0, created.stderr
    assert esb_db.rows() == [{"name": "ITSM", "label": "ITSM", "remark": "ITSM app", "component_admin": "",
                              "execute_timeout": None}]
    same = run_esbgen("register", "ITSM", "--esb-root", esb_root, "--database", esb_db.url, "--remark", "ITSM app")
    assert same.exit_code == 0 and "Nothing to do: row ITSM is already as asked." in same.output
    relabeled = run_esbgen("register", "itsm", "--esb-root", esb_root, "--database", esb_db.url, "--label", "工单")
    assert relabeled.exit_code == 0, relabeled.stderr
    assert esb_db.rows() == [{"name": "ITSM", "label": "工单", "remark": "ITSM app", "component_admin": "",
                              "execute_timeout": None}]


@pytest.mark.django_db(transaction=True, databases=["mariadb"])
def test_mariadb_refusals_are_one_line_and_change_nothing(mariadb_server, esb_root, run_esbgen):
    before = snapshot(esb_root)
    cases = {
        mariadb_server.url(port=free_port()): "cannot connect to the server",
        mariadb_server.url(password="wrong-password"): "wrong user or password",
        mariadb_server.url(database="mysql", user="root", password="root-Pw.1"): "the table does not exist",
        mariadb_server.url(database="no_such_db", user="root", password="root-Pw.1"): "no such database",
    }
    for url, reason in cases.items():
        for extra in ((), ("--dry-run",)):
            result = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", url, *extra)
            assert result.exit_code == 1, (url, result.output)
            line = one_line_error(result)
            assert "cannot read esb_component_system in mysql://" in line and reason in line, line
            assert "wrong-password" not in line and "root-Pw.1" not in line
            if extra:
                assert "a dry run changes nothing but must read the table" in line
            assert snapshot(esb_root) == before


def test_sqlite_and_url_refusals(esb_root, run_esbgen, tmp_path, unblocked_db):
    before = snapshot(esb_root)
    empty = tmp_path / "empty.sqlite3"
    import sqlite3

    sqlite3.connect(empty).close()
    cases = {
        f"sqlite://{tmp_path / 'missing.sqlite3'}": "no SQLite database at",
        str(empty): "the table does not exist",
        "postgres://u:pw@127.0.0.1/esb": "unknown database URL scheme 'postgres://'",
        "mysql://u:pw@127.0.0.1:3306/": "names no database",
    }
    for url, reason in cases.items():
        result = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", url)
        assert result.exit_code == 1, (url, result.output)
        line = one_line_error(result)
        assert reason in line, line
        assert ":pw@" not in line
    assert snapshot(esb_root) == before
    assert not (tmp_path / "missing.sqlite3").exists()


def test_without_a_database_the_row_is_left_to_sync(esb_root, run_esbgen, monkeypatch):
    monkeypatch.delenv("ESBGEN_DATABASE_URL", raising=False)
    result = run_esbgen(*CLONE, "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    assert "row of BK_SOPS_CE is left to sync_data_at_deploy" in result.output
    register = run_esbgen("register", "bk_sops_ce", "--esb-root", esb_root)
    assert register.exit_code == 2
    assert "give --database URL" in register.stderr


def test_register_refuses_an_unknown_system(esb_root, run_esbgen):
    result = run_esbgen("register", "nope", "--esb-root", esb_root, "--database", "sqlite:///nonexistent.db")
    assert result.exit_code == 1
    assert "unknown system 'nope'" in one_line_error(result)


def test_register_a_system_declared_only_in_conf_py_takes_its_label(esb_db, esb_root, run_esbgen):
    result = run_esbgen("register", "HELLO", "--esb-root", esb_root, "--database", esb_db.url)
    assert result.exit_code == 0, result.stderr
    assert esb_db.rows() == [{"name": "HELLO", "label": "Hello world", "remark": "示例系统: a sample custom system",
                              "component_admin": "", "execute_timeout": None}]


def test_a_label_longer_than_the_column_is_refused_first(esb_root, run_esbgen, tmp_path, unblocked_db):
    import sqlite3

    path = tmp_path / "esb.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE esb_component_system (id INTEGER PRIMARY KEY, name TEXT, label TEXT, remark TEXT)")
    connection.close()
    before = snapshot(esb_root)
    result = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", path, "--label", "x" * 129)
    assert result.exit_code == 2
    assert "longer than the 128 characters of esb_component_system.label" in one_line_error(result)
    assert snapshot(esb_root) == before


def test_new_writes_its_row_too(esb_db, esb_root, run_esbgen):
    result = run_esbgen("new", "bk_demo", "--app-code", "bk-demo", "--esb-root", esb_root, "--database", esb_db.url)
    assert result.exit_code == 0, result.stderr
    assert esb_db.rows("BK_DEMO") == [
        {"name": "BK_DEMO", "label": "BK_DEMO", "remark": "Created by esbgen new (SaaS type confapis)",
         "component_admin": "", "execute_timeout": None}
    ]
    again = run_esbgen("new", "bk_demo", "--app-code", "bk-demo", "--esb-root", esb_root, "--database", esb_db.url)
    assert again.exit_code == 0 and "Nothing to do" in again.output
    assert len(esb_db.rows("BK_DEMO")) == 1
