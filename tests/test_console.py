"""The console script's own choices, before the command line is handed to click."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES, snapshot
from esbgen.cli import cli

CLONE = ["clone", "sops", "--as", "bk_sops_ce"]


def console(*code: str, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    """Run esbgen's console entry with ``argv`` in a fresh interpreter, then ``code``."""
    program = "\n".join(["import sys", f"sys.argv = ['esbgen', *{argv!r}]", "from esbgen.__main__ import main",
                         "try:", "    main()", "except SystemExit as done:", "    assert not done.code, done.code", *code])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESBGEN_")}
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=check, env=env)


def clone_of(root: Path) -> dict[str, str]:
    return {path: digest for path, digest in snapshot(root).items() if "bk_sops_ce" in path or path.endswith("conf.py")}


@pytest.fixture
def reference(esb_root: Path, tmp_path: Path) -> dict[str, str]:
    """The clone of the sample ESB by esbgen's console script."""
    root = tmp_path / "reference"
    shutil.copytree(esb_root, root, symlinks=True)
    console(argv=[*CLONE, "--esb-root", str(root)])
    return clone_of(root)


def test_the_console_scripts_clone_is_the_in_process_one(esb_root, reference, run_esbgen):
    assert run_esbgen(*CLONE, "--esb-root", esb_root).exit_code == 0
    assert clone_of(esb_root) == reference


def test_version_alone_says_what_clicks_version_option_says_without_loading_click():
    done = console("print('click' in sys.modules)", argv=["--version"])
    clicks = CliRunner().invoke(cli, ["--version"])
    assert clicks.exit_code == 0
    assert done.stdout == clicks.output + "False\n"  # the same line, and click never imported


def test_version_among_other_words_is_clicks():
    done = subprocess.run([sys.executable, "-m", "esbgen", "--quiet", "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout == CliRunner().invoke(cli, ["--version"]).output


# ---------------------------------------------------------------- one consistent command line


def test_a_usage_error_is_one_line_with_the_usage_and_exit_2(esb_root, run_esbgen):
    before = snapshot(esb_root)
    done = run_esbgen("clone", "sops", "--esb-root", esb_root)
    assert done.exit_code == 2 and done.output == ""
    assert done.stderr == ("esbgen: error: Missing option '--as'. Usage: esbgen clone [OPTIONS] SOURCE "
                           "(`esbgen clone -h` explains every option)\n")
    unknown = run_esbgen("nosuch")
    assert unknown.exit_code == 2 and unknown.stderr.count("\n") == 1
    assert unknown.stderr.startswith("esbgen: error: No such command 'nosuch'.")
    assert snapshot(esb_root) == before


@pytest.mark.parametrize("arguments, command", [
    (["clone", "sops", "--json"], "clone"),
    (["--json", "clone", "sops"], "clone"),
    (["list", "--json", "--no-such-option"], "list"),
    (["--json", "nosuch"], None),
])
def test_a_usage_error_under_json_is_one_json_object_of_class_usage_error(esb_root, run_esbgen, arguments, command):
    import json

    done = run_esbgen(*arguments, "--esb-root", esb_root) if command else run_esbgen(*arguments)
    assert done.exit_code == 2 and done.stderr.count("\n") == 1
    report = json.loads(done.output)
    assert report["command"] == command and report["ok"] is False and report["exit_code"] == 2
    assert report["error"]["class"] == "UsageError" and report["error"]["message"] in done.stderr
    assert report["tree_state"] == "unchanged"


@pytest.mark.parametrize("command", [["list"], ["check"], ["plugins"], ["undo", "--list"],
                                     ["templatize", "sops", "-o", "TEMPLATE"], ["export-apigw", "sops", "-o", "OUT", "--via-esb", "http://paas.example.com"],
                                     ["sync-edition", "--from", "CE", "--dry-run"]])
def test_every_command_answers_json(esb_root, tmp_path, run_esbgen, command):
    import json

    words = [{"TEMPLATE": str(tmp_path / "template"), "OUT": str(tmp_path / "out"),
              "CE": str(FIXTURES / "esb-ce")}.get(word, word) for word in command]
    done = run_esbgen(*words, "--json", *(["--esb-root", esb_root] if command[0] != "plugins" else []))
    report = json.loads(done.output)
    assert report["command"] == command[0] and report["exit_code"] == done.exit_code
    assert report["messages"]


def test_list_json_gives_the_systems_as_data(esb_root, run_esbgen):
    import json

    report = json.loads(run_esbgen("list", "--json", "--esb-root", esb_root).output)
    sops = next(row for row in report["systems"] if row["system"] == "sops")
    assert sops == {"system": "sops", "kind": "confapis", "rows": "12", "components": "1", "registered": "official",
                    "without row": "0"}


def test_global_options_go_before_or_after_the_command(esb_root, run_esbgen):
    import json

    after = run_esbgen("list", "--json", "-q", "--esb-root", esb_root)
    before = run_esbgen("-q", "--json", "--esb-root", esb_root, "list")
    mixed = run_esbgen("--esb-root", esb_root, "list", "--quiet", "--json")
    assert after.exit_code == before.exit_code == mixed.exit_code == 0
    assert json.loads(after.output) == json.loads(before.output) == json.loads(mixed.output)
    same = run_esbgen("--esb-root", esb_root, "list", "--esb-root", esb_root)
    assert same.exit_code == 0 and same.output == run_esbgen("list", "--esb-root", esb_root).output
    listed = run_esbgen("swap", "targets")  # a plugin's group: its commands take -q after their name too
    assert run_esbgen("swap", "targets", "-q").output == run_esbgen("-q", "swap", "targets").output == listed.output
    twice = run_esbgen("--esb-root", esb_root, "list", "--esb-root", esb_root / "components")
    assert twice.exit_code == 2 and twice.stderr.startswith("esbgen: error: --esb-root is given twice, as ")


def test_no_force_sync_has_no_alias_that_reads_like_force(esb_root, run_esbgen):
    before = snapshot(esb_root)
    alias = run_esbgen(*CLONE, "--no-force", "--esb-root", esb_root)
    assert alias.exit_code == 2 and alias.stderr.startswith("esbgen: error: No such option '--no-force'")
    named = run_esbgen(*CLONE, "--no-force-sync", "--esb-root", esb_root)
    assert named.exit_code == 2 and "--no-force-sync goes with --sync and a database" in named.stderr
    assert snapshot(esb_root) == before


@pytest.mark.parametrize("command", [["retarget", "sops", "--app-code", "bk-sops-ce"],
                                     ["sync-edition", "--from", "CE"]])
def test_retarget_and_sync_edition_run_the_sync_and_restart_their_plans_name(esb_root, tmp_path, run_esbgen, command):
    import json

    words = [str(FIXTURES / "esb-ce") if word == "CE" else word for word in command]
    reminded = json.loads(run_esbgen(*words, "--dry-run", "--json", "--esb-root", esb_root).output)
    assert [(step["runnable"], step["description"].split(":")[0]) for step in reminded["plan"]["post_steps"]] == [
        (False, "update the ESB's data"), (False, "restart the ESB")]
    supervisor_conf = tmp_path / "supervisord.conf"
    supervisor_conf.write_text("[supervisord]\n")
    asked = run_esbgen(*words, "--sync", "--restart", "--supervisor-conf", supervisor_conf, "--esb-python",
                       sys.executable, "--dry-run", "--json", "--esb-root", esb_root)
    steps = json.loads(asked.output)["plan"]["post_steps"]
    assert [step["runnable"] for step in steps] == [True, True]
    assert "manage.py sync_data_at_deploy" in steps[0]["description"] and "restart esb" in steps[1]["description"]


def test_a_closed_stdout_after_the_change_is_said_on_stderr_and_the_status_says_applied(esb_root):
    reading, writing = os.pipe()
    os.close(reading)  # the reader is gone before esbgen writes its first line, as `| head -1` ends up
    try:
        done = subprocess.run([sys.executable, "-m", "esbgen", *CLONE, "--esb-root", str(esb_root)], stdout=writing,
                              stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(writing)
    assert done.returncode == 0
    journal = next((esb_root / ".esbgen" / "journal").iterdir()).name
    assert done.stderr == (f"esbgen: stdout was closed before the output ended (broken pipe); the run went on to its "
                           f"end without it, exit status 0: change {journal} is applied and kept (`esbgen undo` "
                           "reverts it)\n")
    assert (esb_root / "components" / "confapis" / "bk_sops_ce").is_dir()


def test_a_closed_stdout_of_a_read_only_command_ends_quietly(esb_root):
    reading, writing = os.pipe()
    os.close(reading)
    try:
        done = subprocess.run([sys.executable, "-m", "esbgen", "list", "--esb-root", str(esb_root)], stdout=writing,
                              stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(writing)
    assert (done.returncode, done.stderr) == (0, "")
