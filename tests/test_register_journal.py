"""The row and the files are one change: applied, rolled back, recovered and undone together."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import snapshot
from conftest_services import WRITER_PASSWORD, run_cli
from faultkit import with_faults
from stepkit import provide_kinds  # noqa: F401 (a fixture)

CLONE = ("clone", "sops", "--as", "bk_sops_ce")


class Boom(Exception):
    pass


class FailingStep:
    """A step after the row that fails, as a later file or database step could."""

    kind = "test-fails"

    def apply(self, record, ctx):
        raise Boom("the step after the row failed")

    def revert(self, record, ctx):
        pass

    def verify(self, record, ctx):
        return False


@pytest.fixture
def failing_kind(provide_kinds):
    provide_kinds(FailingStep())
    return "test-fails"


def plan_with_row_then_failure(root: Path, url: str, kind: str, **row):
    from esbgen.db import connection as db
    from esbgen.plan import ExternalStep, FileWrite, Plan
    from esbgen.db.registration import plan_registration

    plan = Plan(root, "row then failure")
    plan.file_writes.append(FileWrite(Path("components/written-by-test.txt"), None, b"new\n"))
    plan_registration(plan, db.Target(url), "BK_SOPS_CE", dry_run=False, **row)
    plan.external.append(ExternalStep(kind, "a step that fails", {}))
    return plan


def test_a_later_failure_deletes_the_row_it_inserted(esb_db, esb_root, failing_kind):
    from esbgen.errors import EsbgenError
    from esbgen.journal.record import apply
    from esbgen.runner import Context

    before = snapshot(esb_root)
    plan = plan_with_row_then_failure(esb_root, esb_db.url, failing_kind, label="New", remark="r",
                                      label_given=True, remark_given=True)
    assert [step.record.get("action") for step in plan.external] == ["insert", None]
    with pytest.raises(EsbgenError, match="the step after the row failed"):
        apply(plan, context=Context(database_url=esb_db.url))  # the run's URL, with its password
    assert esb_db.rows() == []
    assert snapshot(esb_root) == before


def test_a_later_failure_restores_the_row_it_updated(esb_db, esb_root, failing_kind):
    from esbgen.errors import EsbgenError
    from esbgen.journal.record import apply
    from esbgen.runner import Context

    esb_db.add(name="BK_SOPS_CE", label="Old", remark="old remark", component_admin="admin")
    plan = plan_with_row_then_failure(esb_root, esb_db.url, failing_kind, label="New", remark="new remark",
                                      label_given=True, remark_given=False)
    assert plan.external[0].record["before"] == {"label": "Old"}
    with pytest.raises(EsbgenError):
        apply(plan, context=Context(database_url=esb_db.url))  # the run's URL, with its password
    assert esb_db.rows() == [{"name": "BK_SOPS_CE", "label": "Old", "remark": "old remark",
                              "component_admin": "admin", "execute_timeout": None}]
    assert not (esb_root / "components/written-by-test.txt").exists()


@pytest.mark.django_db(transaction=True)
def test_a_run_killed_after_the_row_is_rolled_back_by_the_next_run(sqlite_db, esb_root, run_esbgen):
    before = snapshot(esb_root)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    # ops: 2 folders, conf.py, the row: op-4 is just after the row was committed.
    killed = run_cli(*CLONE, "--esb-root", esb_root, "--database", sqlite_db.url, env=with_faults({**env, "ESBGEN_CRASH_AT": "op-4"}))
    assert killed.returncode == 137, killed.stderr
    journal = json.loads(next((esb_root / ".esbgen/journal").glob("*/journal.json")).read_text())
    assert journal["state"] == "applying" and journal["ops"][3]["kind"] == "db_system"
    assert [row["name"] for row in sqlite_db.rows()] == ["BK_SOPS_CE"]

    nxt = run_esbgen(*CLONE, "--esb-root", esb_root, "--database", sqlite_db.url, "--dry-run")
    assert nxt.exit_code == 0, nxt.stderr
    assert "rolled back an interrupted change" in nxt.output
    assert sqlite_db.rows() == []
    assert snapshot(esb_root) == before


def test_the_standalone_cli_configures_django_itself(esb_db, esb_root):
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "ESBGEN_DATABASE_URL")}
    done = run_cli(*CLONE, "--esb-root", esb_root, "--database", esb_db.url, env=env)
    assert done.returncode == 0, done.stderr
    assert [row["name"] for row in esb_db.rows()] == ["BK_SOPS_CE"]
    journal = (next((esb_root / ".esbgen/journal").glob("*/journal.json"))).read_text()
    argv = json.loads(journal)["argv"]
    assert argv[argv.index("--database") + 1] == json.loads(journal)["ops"][-1]["record"]["database"]
    if esb_db.server is not None:
        assert WRITER_PASSWORD not in journal and "s3cr%40t" not in journal and ":***@" in journal
    # The password comes from the environment as well as from --database.
    undone = run_cli("undo", "--esb-root", esb_root, env={**env, "ESBGEN_DATABASE_URL": esb_db.url})
    assert undone.returncode == 0, undone.stderr
    assert esb_db.rows() == []


def test_urls_and_their_redaction():
    from esbgen.db.connection import parse_url, redact_argv, redact_url
    from esbgen.errors import EsbgenError

    parsed = parse_url("mysql://paas:p%40ss%3Aw%2Frd@db.example:3307/open_paas?charset=utf8")
    assert (parsed.engine, parsed.user, parsed.password, parsed.host, parsed.port, parsed.name) == (
        "mysql", "paas", "p@ss:w/rd", "db.example", 3307, "open_paas")
    assert parsed.options == {"charset": "utf8"} and parsed.has_password
    assert parsed.shown == "mysql://paas:***@db.example:3307/open_paas?charset=utf8"
    assert parse_url("mysql://paas@db/open_paas").port == 3306
    assert not parse_url("mysql://paas@db/open_paas").has_password
    assert parse_url("sqlite:///data/esb.db").name == "/data/esb.db"
    assert parse_url("relative.db").name == str(Path("relative.db").absolute())
    assert redact_url("mysql://u:secret@h/d") == "mysql://u:***@h/d"
    assert redact_argv(["clone", "--database=mysql://u:se@cret@h:1/d", "mysql://u:x@h/d"]) == [
        "clone", "--database=mysql://u:***@h:1/d", "mysql://u:***@h/d"]
    for bad in ("postgres://u@h/d", "mysql://u@h:99999/d", "mysql://u@h/d?timeout=3", "sqlite://host/x.db", ""):
        with pytest.raises(EsbgenError):
            parse_url(bad)


@pytest.mark.django_db(transaction=True)
def test_a_row_an_earlier_in_process_manage_py_recorded_is_undone_with_the_projects_database(sqlite_db, esb_root, run_esbgen):
    """An earlier esbgen ran inside the ESB's Django and recorded "django-project" for the row's database:
    undo asks for that database in one line, then reverts the row with it."""
    assert run_esbgen(*CLONE, "--esb-root", esb_root, "--database", sqlite_db.url).exit_code == 0
    path = next((esb_root / ".esbgen/journal").glob("*/journal.json"))
    journal = json.loads(path.read_text())
    row = next(op for op in journal["ops"] if op.get("kind") == "db_system")
    row["record"]["database"] = "django-project"
    path.write_text(json.dumps(journal))
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "ESBGEN_DATABASE_URL")}

    refused = run_cli("undo", "--esb-root", esb_root, env=env)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert "written through the ESB's Django project" in refused.stderr and "--database" in refused.stderr
    assert [r["name"] for r in sqlite_db.rows()] == ["BK_SOPS_CE"]

    undone = run_cli("undo", "--esb-root", esb_root, "--database", sqlite_db.url, env=env)
    assert undone.returncode == 0, undone.stderr
    assert sqlite_db.rows() == []
