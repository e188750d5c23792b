"""``python manage.py esbgen ...`` inside a Django project shaped like the ESB (tests/django_esb).

The "done when" of the issue runs a real ``manage.py`` process of the test
project, on SQLite and on MariaDB; the rest runs Django's command machinery
in this process (pytest-django's test databases).
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from conftest import FIXTURES, snapshot
from conftest_services import run_cli, run_manage


def manage_in_process(*args: str, capsys) -> tuple[int, str, str]:
    """``manage.py esbgen ARGS`` through Django's own ManagementUtility, in this process."""
    from django.core.management import ManagementUtility

    capsys.readouterr()
    try:
        ManagementUtility(["manage.py", "esbgen", *map(str, args)]).execute()
        code = 0
    except SystemExit as done:
        code = done.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_done_when_manage_py_esbgen_clone_writes_one_row_run_twice(esb_db, esb_root):
    env = esb_db.project_env()
    args = ("esbgen", "clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    first = run_manage(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert "insert row BK_SOPS_CE into esb_component_system (project database" in first.stdout
    assert (esb_root / "components/bk/apisv2/bk_sops_ce/toolkit/configs.py").is_file()
    assert [row["name"] for row in esb_db.rows()] == ["BK_SOPS_CE"]

    second = run_manage(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert "Nothing to do: bk_sops_ce is already this clone of sops, and registered." in second.stdout
    assert [row["name"] for row in esb_db.rows()] == ["BK_SOPS_CE"]

    journal = json.loads(next((esb_root / ".esbgen/journal").glob("*/journal.json")).read_text())
    record = journal["ops"][-1]["record"]
    assert record["database"] == "django-project" and record["has_password"] is False
    assert "PASSWORD" not in json.dumps(journal) and "root-Pw.1" not in json.dumps(journal)

    # Undone from the standalone CLI: refused, the row lives in the project's database.
    outside = run_cli("undo", "--esb-root", esb_root, env=env)
    assert outside.returncode == 1
    assert outside.stderr.strip().count("\n") == 0
    assert "revert it with `manage.py esbgen` in that project" in outside.stderr
    assert esb_db.rows() != []

    undone = run_manage("esbgen", "undo", "--esb-root", esb_root, env=env)
    assert undone.returncode == 0, undone.stderr
    assert esb_db.rows() == []
    assert not (esb_root / "components/bk/apisv2/bk_sops_ce").exists()


@pytest.mark.django_db(transaction=True)
def test_esb_root_defaults_to_base_dir_unless_given_or_in_env(esb_root, tmp_path, settings, capsys, monkeypatch,
                                                              sqlite_db):
    monkeypatch.delenv("ESBGEN_ESB_ROOT", raising=False)
    settings.BASE_DIR = esb_root
    code, out, err = manage_in_process("clone", "sops", "--as", "bk_sops_ce", capsys=capsys)
    assert code == 0, err
    assert f"ESB root: {esb_root}" in out
    assert sqlite_db.rows()[0]["name"] == "BK_SOPS_CE"  # the project's own model, on its default database

    other = tmp_path / "other-esb"
    shutil.copytree(FIXTURES / "esb", other)
    monkeypatch.setenv("ESBGEN_ESB_ROOT", str(other))
    code, out, err = manage_in_process("clone", "itsm", "--as", "bk_itsm_ce", capsys=capsys)
    assert code == 0, err
    assert (other / "components/confapis/bk_itsm_ce").is_dir()
    assert not (esb_root / "components/confapis/bk_itsm_ce").exists()

    third = tmp_path / "third-esb"
    shutil.copytree(FIXTURES / "esb", third)
    code, out, err = manage_in_process("register", "itsm", "--esb-root", third, "--dry-run", capsys=capsys)
    assert code == 0, err
    assert f"ESB root: {third}" in out
    assert "insert row ITSM into esb_component_system (project database sqlite3 " in out


def test_same_parser_output_and_exit_codes_as_the_cli(esb_root, capsys, run_esbgen):
    code, out, err = manage_in_process("--help", capsys=capsys)
    cli = run_esbgen("--help")
    assert code == 0 and cli.exit_code == 0
    assert out.replace("manage.py esbgen", "esbgen") == cli.output

    code, out, err = manage_in_process("clone", "sops", "--esb-root", esb_root, capsys=capsys)
    cli = run_esbgen("clone", "sops", "--esb-root", esb_root)
    assert code == 2 == cli.exit_code
    assert "Usage: manage.py esbgen clone" in err and "Missing option '--as'" in err
    assert err.replace("manage.py esbgen", "esbgen") == cli.stderr

    before = snapshot(esb_root)
    code, out, err = manage_in_process("clone", "nope", "--as", "bk_nope", "--esb-root", esb_root, capsys=capsys)
    assert code == 1
    assert err.startswith("manage.py esbgen: error: unknown source system 'nope'") and err.count("\n") == 1
    assert snapshot(esb_root) == before


def test_call_command_runs_the_same_command(esb_root, capsys):
    from django.core.management import CommandError, call_command

    call_command("esbgen", "list", "--esb-root", str(esb_root))
    assert "sops" in capsys.readouterr().out
    with pytest.raises(CommandError) as refused:
        call_command("esbgen", "check", "nope!", "--esb-root", str(esb_root))
    assert refused.value.returncode == 2


def test_call_command_writes_through_the_commands_stdout_and_stderr(esb_root, capsys):
    import io

    from django.core.management import CommandError, call_command

    capsys.readouterr()
    out, err = io.StringIO(), io.StringIO()
    call_command("esbgen", "list", "--esb-root", str(esb_root), stdout=out, stderr=err)
    assert out.getvalue().startswith("SYSTEM  ") and "sops" in out.getvalue() and err.getvalue() == ""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("esbgen", "clone", "nope", "--as", "bk_nope", "--esb-root", str(esb_root), stdout=out, stderr=err)
    assert refused.value.returncode == 1 and out.getvalue() == ""
    assert err.getvalue().startswith("manage.py esbgen: error: unknown source system 'nope'")
    assert err.getvalue().count("\n") == 1
    assert capsys.readouterr() == ("", "")  # nothing went past the buffers


def test_manage_py_help_esbgen_shows_the_cli_help(sqlite_db):
    done = run_manage("help", "esbgen", env=sqlite_db.project_env())
    assert done.returncode == 0, done.stderr
    assert "Usage: manage.py esbgen [OPTIONS] COMMAND [ARGS]..." in done.stdout
    assert "register" in done.stdout and "clone" in done.stdout


@pytest.mark.django_db(transaction=True)
def test_sync_inside_django_uses_the_projects_python(esb_root, capsys, tmp_path, monkeypatch, sqlite_db):
    log = tmp_path / "sync.jsonl"
    monkeypatch.setenv("ESBGEN_FAKE_SYNC_LOG", str(log))
    code, out, err = manage_in_process("register", "itsm", "--esb-root", esb_root, "--sync", capsys=capsys)
    assert code == 0, err
    assert f"Running: sync the ESB's data: {sys.executable} manage.py sync_data_at_deploy" in out
    assert "Python: the interpreter running manage.py" in out
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        {"argv": ["sync_data_at_deploy"], "cwd": str(esb_root)}
    ]
    assert sqlite_db.rows()[0]["name"] == "ITSM"


def test_esbgen_help_stays_free_of_django():
    code = (
        "import sys\n"
        "from esbgen.cli import run\n"
        "import esbgen.commands, esbgen.db, esbgen.registration, esbgen.services\n"
        "status = run(['--help']) + run(['clone', '--help']) + run(['register', '--help'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'pymysql', 'MySQLdb'))\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(status)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


@pytest.mark.django_db(transaction=True)
def test_a_project_without_bkcore_gets_esbgens_own_mapping(esb_root, capsys, monkeypatch, sqlite_db):
    from django.apps import apps

    real_get_model = apps.get_model

    def without_bkcore(app_label, *args, **kwargs):
        if app_label == "bkcore":
            raise LookupError("No installed app with label 'bkcore'.")
        return real_get_model(app_label, *args, **kwargs)

    monkeypatch.setattr(apps, "get_model", without_bkcore)
    code, out, err = manage_in_process("register", "itsm", "--esb-root", esb_root, "--label", "ITSM CE",
                                       capsys=capsys)
    assert code == 0, err
    from esbgen import db

    assert db.project_model() is db.mapping_model() and db.mapping_model()._meta.db_table == "esb_component_system"
    assert sqlite_db.rows() == [{"name": "ITSM", "label": "ITSM CE", "remark": "Registered by esbgen",
                                 "component_admin": "", "execute_timeout": None}]


def test_djangos_own_global_options_are_not_passed_on(sqlite_db, esb_root):
    env = sqlite_db.project_env()
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = run_manage("esbgen", "list", "--settings", "django_esb.settings", "--esb-root", esb_root,
                      f"--pythonpath={esb_root}", env=env)
    assert done.returncode == 0, done.stderr
    assert "sops" in done.stdout
