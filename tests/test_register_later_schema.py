"""The row on the later ESB's ``esb_component_system`` (model ``System``: no ``label``), and a table of neither shape.

Every test runs on SQLite and on the session's real MariaDB (a database of its
own per test, created by root, writable by the ``esbgen`` user).  The CLI runs
standalone, in-process, with ``--database URL``; the assertions read the table
with plain SQL.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import snapshot
from conftest_services import WRITER
from esb_schemas import LATER_MYSQL, LATER_SQLITE, UNKNOWN_MYSQL, UNKNOWN_SQLITE

CLONE = ("clone", "sops", "--as", "bk_sops_ce")
SELECT = ("SELECT name, description, comment, board, data_type, maintainers, created_by, updated_by, "
          "created_time IS NOT NULL, updated_time IS NOT NULL FROM esb_component_system ORDER BY id")


@dataclass
class LaterDb:
    url: str
    run: object  # run(sql, args) -> rows

    def rows(self) -> list[tuple]:
        return [tuple(row) for row in self.run(SELECT)]


def _sqlite(path: Path, ddl: str) -> LaterDb:
    connection = sqlite3.connect(path)
    connection.execute(ddl)
    connection.commit()
    connection.close()

    def run(sql, args=()):
        connection = sqlite3.connect(path)
        try:
            rows = connection.execute(sql, args).fetchall()
            connection.commit()
            return rows
        finally:
            connection.close()

    return LaterDb(f"sqlite://{path}", run)


def _mariadb(server, ddl: str) -> LaterDb:
    name = f"later_{uuid.uuid4().hex[:8]}"
    server.sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4", database=None)
    server.sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{name}`.* TO '{WRITER}'@'%'", database=None)
    server.sql(ddl, database=name)

    def run(sql, args=None):
        return server.sql(sql.replace("?", "%s"), args, database=name)

    return LaterDb(server.url(database=name), run)


@pytest.fixture(params=["sqlite", "mariadb"])
def kind(request):
    return request.param


@pytest.fixture
def later(kind, request, tmp_path, unblocked_db) -> LaterDb:
    if kind == "sqlite":
        return _sqlite(tmp_path / "later.sqlite3", LATER_SQLITE)
    return _mariadb(request.getfixturevalue("mariadb_server"), LATER_MYSQL)


@pytest.fixture
def unknown(kind, request, tmp_path, unblocked_db) -> LaterDb:
    if kind == "sqlite":
        return _sqlite(tmp_path / "unknown.sqlite3", UNKNOWN_SQLITE)
    return _mariadb(request.getfixturevalue("mariadb_server"), UNKNOWN_MYSQL)


def test_clone_writes_one_row_of_the_later_shape_and_undo_removes_it(later, esb_root, run_esbgen):
    first = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", later.url)
    assert first.exit_code == 0, first.stderr
    assert "Database: inserted row BK_SOPS_CE in esb_component_system" in first.output
    assert later.rows() == [("BK_SOPS_CE", "BK_SOPS_CE", "Cloned from SOPS by esbgen", "default", 3, "", "esbgen",
                             "esbgen", 1, 1)]

    again = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", later.url)
    assert again.exit_code == 0 and "Nothing to do" in again.output
    assert len(later.rows()) == 1

    undone = run_esbgen("undo", "--esb-root", esb_root, "--database", later.url)
    assert undone.exit_code == 0, undone.stderr
    assert later.rows() == []
    assert not (esb_root / "components/confapis/bk_sops_ce").exists()


def test_an_existing_row_is_updated_only_where_asked_and_undo_restores_it(later, esb_root, run_esbgen):
    later.run("INSERT INTO esb_component_system (name, description, comment, board, data_type, maintainers, "
              "created_time, updated_time, created_by, updated_by) VALUES "
              "('BK_SOPS_CE', 'Old', 'kept comment', 'default', 1, 'admin', '2020-01-01', '2020-01-01', 'admin', 'admin')")
    dry = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", later.url, "--label", "New", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "label 'Old' -> 'New'" in dry.output

    changed = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", later.url, "--label", "New")
    assert changed.exit_code == 0, changed.stderr
    assert later.rows() == [("BK_SOPS_CE", "New", "kept comment", "default", 1, "admin", "admin", "esbgen", 1, 1)]

    undone = run_esbgen("undo", "--esb-root", esb_root, "--database", later.url)
    assert undone.exit_code == 0, undone.stderr
    assert [row[:6] for row in later.rows()] == [("BK_SOPS_CE", "Old", "kept comment", "default", 1, "admin")]


def test_a_row_of_that_name_on_another_board_is_not_esbgens(later, esb_root, run_esbgen):
    later.run("INSERT INTO esb_component_system (name, description, comment, board, data_type, maintainers, "
              "created_time, updated_time, created_by, updated_by) VALUES "
              "('BK_SOPS_CE', 'theirs', '', 'other', 3, '', '2020-01-01', '2020-01-01', 'admin', 'admin')")
    done = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", later.url)
    assert done.exit_code == 0, done.stderr
    assert [(row[0], row[1], row[3]) for row in later.rows()] == [("BK_SOPS_CE", "theirs", "other"),
                                                                  ("BK_SOPS_CE", "BK_SOPS_CE", "default")]
    assert run_esbgen("undo", "--esb-root", esb_root, "--database", later.url).exit_code == 0
    assert [(row[0], row[1], row[3]) for row in later.rows()] == [("BK_SOPS_CE", "theirs", "other")]


def test_register_and_new_write_the_later_row_too(later, esb_root, run_esbgen):
    registered = run_esbgen("register", "itsm", "--esb-root", esb_root, "--database", later.url, "--remark", "ITSM app")
    assert registered.exit_code == 0, registered.stderr
    created = run_esbgen("new", "bk_demo", "--app-code", "bk-demo", "--esb-root", esb_root, "--database", later.url)
    assert created.exit_code == 0, created.stderr
    assert [row[:4] for row in later.rows()] == [
        ("ITSM", "ITSM", "ITSM app", "default"),
        ("BK_DEMO", "BK_DEMO", "Created by esbgen new (SaaS type confapis)", "default"),
    ]


def test_a_table_of_neither_shape_is_refused_in_one_line(unknown, esb_root, run_esbgen):
    before = snapshot(esb_root)
    for extra in ((), ("--dry-run",)):
        result = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", unknown.url, *extra)
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("esbgen: error: cannot read esb_component_system in ")
        assert ("the table has neither shape esbgen writes (the legacy ESB's needs label, remark; "
                "the later ESB's needs description, comment, board); its columns: id, name, title") in lines[0]
        assert snapshot(esb_root) == before
        assert not (esb_root / ".esbgen").exists()
    assert unknown.run("SELECT COUNT(*) FROM esb_component_system")[0][0] == 0
