"""``--sync`` (the ESB's manage.py sync_data_at_deploy) and ``--restart`` (supervisorctl) after a change.

--sync runs the stand-in fixtures/esb/manage.py, which records each call in
$ESBGEN_FAKE_SYNC_LOG; --restart runs supervisorctl against a real
supervisord managing a program named ``esb`` (tests/conftest_services.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import snapshot

CLONE = ("clone", "sops", "--as", "bk_sops_ce")


@pytest.fixture
def sync_log(tmp_path, monkeypatch) -> Path:
    log = tmp_path / "sync.jsonl"
    monkeypatch.setenv("ESBGEN_FAKE_SYNC_LOG", str(log))
    monkeypatch.delenv("ESBGEN_DATABASE_URL", raising=False)
    return log


def sync_calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_sync_runs_the_esbs_manage_py_from_its_root(esb_root, run_esbgen, sync_log, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_esbgen(*CLONE, "--esb-root", esb_root, "--sync", "--esb-python", sys.executable, cwd=elsewhere)
    assert result.exit_code == 0, result.stderr
    assert f"Running: sync the ESB's data: {sys.executable} manage.py sync_data_at_deploy (in {esb_root}" in result.output
    assert "sync_data_at_deploy: done" in result.output
    assert sync_calls(sync_log) == [{"argv": ["sync_data_at_deploy"], "cwd": str(esb_root)}]
    # The reminder of what is not run stays; the one of what was run goes.
    assert "restart the ESB: supervisorctl -c <supervisord.conf> restart esb" in result.output
    assert "update the ESB's data: python manage.py" not in result.output

    # Nothing left to change: the steps asked for still run.
    again = run_esbgen(*CLONE, "--esb-root", esb_root, "--sync", "--esb-python", sys.executable)
    assert again.exit_code == 0, again.stderr
    assert "Nothing to do" in again.output
    assert len(sync_calls(sync_log)) == 2


def test_restart_restarts_the_esb_program(esb_root, run_esbgen, sync_log, supervisor):
    before = supervisor.pid()
    result = run_esbgen(*CLONE, "--esb-root", esb_root, "--sync", "--esb-python", sys.executable, "--restart",
                        "--supervisor-conf", supervisor.conf, "--supervisorctl", supervisor.supervisorctl)
    assert result.exit_code == 0, result.stderr
    assert f"Running: restart the ESB: {supervisor.supervisorctl} -c {supervisor.conf} restart esb" in result.output
    assert "esb: stopped" in result.output and "esb: started" in result.output
    assert result.output.index("Running: sync") < result.output.index("Running: restart")
    after = supervisor.pid()
    assert after is not None and after != before
    assert "restart the ESB: supervisorctl -c <supervisord.conf>" not in result.output


@pytest.mark.django_db(transaction=True)
def test_register_then_restart_with_the_supervisorctl_beside_esbgens_python(esb_root, run_esbgen, sync_log,
                                                                           supervisor, sqlite_db):
    before = supervisor.pid()
    result = run_esbgen("register", "itsm", "--esb-root", esb_root, "--database", sqlite_db.url,
                        "--restart", "--supervisor-conf", supervisor.conf)
    assert result.exit_code == 0, result.stderr
    supervisorctl = Path(sys.executable).parent / "supervisorctl"
    assert f"Running: restart the ESB: {supervisorctl} -c {supervisor.conf} restart esb" in result.output
    assert [row["name"] for row in sqlite_db.rows()] == ["ITSM"]
    assert supervisor.pid() not in (None, before)


def test_dry_run_prints_sync_and_restart_and_runs_neither(esb_root, run_esbgen, sync_log, supervisor):
    before_pid, before_tree = supervisor.pid(), snapshot(esb_root)
    result = run_esbgen(*CLONE, "--esb-root", esb_root, "--sync", "--esb-python", sys.executable, "--restart",
                        "--supervisor-conf", supervisor.conf, "--dry-run")
    assert result.exit_code == 0, result.stderr
    then = result.output.split("Then:", 1)[1]
    assert f"- sync the ESB's data: {sys.executable} manage.py sync_data_at_deploy (in {esb_root}" in then
    supervisorctl = Path(sys.executable).parent / "supervisorctl"
    assert f"- restart the ESB: {supervisorctl} -c {supervisor.conf} restart esb" in then
    assert "Running:" not in result.output
    assert sync_calls(sync_log) == []
    assert supervisor.pid() == before_pid
    assert snapshot(esb_root) == before_tree


def test_supervisor_not_running_is_one_line_and_the_change_is_kept(esb_root, run_esbgen, sync_log, tmp_path):
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"[supervisorctl]\nserverurl=unix://{tmp_path / 'gone.sock'}\n")
    result = run_esbgen(*CLONE, "--esb-root", esb_root, "--sync", "--esb-python", sys.executable, "--restart",
                        "--supervisor-conf", conf)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith("esbgen: error: restart the ESB:") and "supervisord is not running" in line
    assert "The change itself is applied and kept; this step failed" in result.output
    assert "Done before it: sync the ESB's data" in result.output
    assert "no such file" in result.output  # supervisorctl's own words are shown
    assert (esb_root / "components/confapis/bk_sops_ce/bk_sops_ce.yaml").is_file()
    assert len(sync_calls(sync_log)) == 1
    journal = json.loads(next((esb_root / ".esbgen/journal").glob("*/journal.json")).read_text())
    assert journal["state"] == "applied"


def test_a_failing_sync_shows_its_output_and_stops_before_restart(esb_root, run_esbgen, sync_log, supervisor,
                                                                  tmp_path):
    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\necho 'Traceback: settings module not found' >&2\nexit 3\n")
    broken.chmod(0o755)
    before = supervisor.pid()
    result = run_esbgen(*CLONE, "--esb-root", esb_root, "--sync", "--esb-python", broken, "--restart",
                        "--supervisor-conf", supervisor.conf)
    assert result.exit_code == 1
    assert "failed (exit 3): Traceback: settings module not found" in one_error_line(result)
    assert "    Traceback: settings module not found" in result.output
    assert "Not run: restart the ESB" in result.output
    assert supervisor.pid() == before
    assert (esb_root / "components/bk/apisv2/bk_sops_ce").is_dir()


@pytest.mark.parametrize(
    "options, message, code",
    [
        (("--sync", "--esb-python", "/no/such/python"), "--esb-python /no/such/python is not an executable file", 2),
        (("--restart", "--supervisor-conf", "/no/such.conf"), "--supervisor-conf /no/such.conf is not a file", 2),
        (("--restart", "--program", "-c"), "--program '-c' is not a supervisor program name", 2),
        (("--restart", "--supervisorctl", "/no/supervisorctl"), "--supervisorctl /no/supervisorctl is not an executable", 2),
    ],
)
def test_bad_service_options_are_refused_before_any_change(esb_root, run_esbgen, sync_log, options, message, code):
    before = snapshot(esb_root)
    result = run_esbgen(*CLONE, "--esb-root", esb_root, *options)
    assert result.exit_code == code
    assert message in one_error_line(result)
    assert snapshot(esb_root) == before


def test_sync_needs_the_esbs_manage_py(esb_root, run_esbgen, sync_log):
    (esb_root / "manage.py").unlink()
    before = snapshot(esb_root)
    result = run_esbgen(*CLONE, "--esb-root", esb_root, "--sync", "--esb-python", sys.executable)
    assert result.exit_code == 1
    assert "has no manage.py; cannot run sync_data_at_deploy there" in one_error_line(result)
    assert snapshot(esb_root) == before


def _venv_python(folder: Path) -> Path:
    python = folder / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    return python


def test_the_esbs_python_is_found_in_the_documented_order(tmp_path, monkeypatch):
    from esbgen import services

    install = tmp_path / "bkce"
    root = install / "paas" / "esb"
    root.mkdir(parents=True)
    data = tmp_path / "data"
    monkeypatch.setattr(services, "INSTALL_GLOB", str(data / "*" / ".envs" / "esb" / "bin" / "python"))
    workon = tmp_path / "workon"
    monkeypatch.setenv("WORKON_HOME", str(workon))
    path_dir = tmp_path / "path"
    path_dir.mkdir()
    monkeypatch.setenv("PATH", str(path_dir))

    with pytest.raises(Exception) as nothing:
        services.find_esb_python(root)
    assert "no Python for the ESB found" in str(nothing.value) and "give --esb-python PATH" in str(nothing.value)

    expected = []
    on_path = path_dir / "python"
    on_path.symlink_to(sys.executable)
    expected.append((str(on_path), "python on PATH"))
    expected.append((str(_venv_python(data / "zz" / ".envs" / "esb")), "BlueKing's .envs/esb"))
    expected.append((str(_venv_python(data / "aa" / ".envs" / "esb")), "BlueKing's .envs/esb"))  # name order
    expected.append((str(_venv_python(install / ".envs" / "esb")), "$INSTALL_PATH/.envs/esb"))
    expected.append((str(_venv_python(workon / "esb")), "$WORKON_HOME/esb"))
    expected.append((str(_venv_python(root / "venv")), "<root>/venv"))
    expected.append((str(_venv_python(root / ".venv")), "<root>/.venv"))
    expected.append((str(_venv_python(root)), "the ESB root's virtualenv"))

    # Each candidate wins over all listed before it: take them away from the best one down.
    for python, how in reversed(expected):
        assert services.find_esb_python(root) == (python, how)
        Path(python).unlink()
    explicit = services.find_esb_python(root, sys.executable)
    assert explicit == (sys.executable, "--esb-python")
