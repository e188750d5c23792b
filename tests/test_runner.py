"""The runner every writing command goes through: one rule for an empty plan, the same options for
every plugin, and failures typed by what they left (``--json``'s ``error.class`` and ``tree_state``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import snapshot
from crashkit import environment, esbgen, install_plugin, rows
from esbgen import hookimpl
from esbgen.plan import PostStep
from esbgen.plugins import get_plugin_manager
from esbgen.runner import OPTION_KEYS
from stepkit import provide_kinds  # noqa: F401 (a fixture)

CLONE = ("clone", "sops", "--as", "bk_sops_ce")


class Recorder:
    """Records what esbgen_plan_steps gets; adds a step that runs and a reminder, for every command."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    @hookimpl
    def esbgen_plan_steps(self, plan, command, options):
        self.calls.append((command, dict(options)))
        return [PostStep(f"say hello after {command}", run=lambda: f"hello after {command}"),
                PostStep(f"remind the team of {command}")]


@pytest.fixture
def recorder():
    pm = get_plugin_manager()
    plugin = Recorder()
    pm.register(plugin, name="recorder")
    yield plugin
    pm.unregister(plugin)


def journal_count(root: Path) -> int:
    folder = root / ".esbgen" / "journal"
    return len(list(folder.iterdir())) if folder.is_dir() else 0


def writing_commands(root: Path, ce_root: Path, tmp_path: Path, run_esbgen, database: str):
    """Each writing command as (name, arguments): run once to change the tree, then again to find nothing to do."""
    plan_file = tmp_path / "new.plan.json"
    assert run_esbgen("new", "bk_plan", "--app-code", "bk-plan", "--plan-out", plan_file,
                      "--esb-root", root).exit_code == 0
    return [
        ("apply-plan", ["apply-plan", str(plan_file)]),  # first: the plan is for the tree as it is now
        ("clone", [*CLONE]),
        ("new", ["new", "bk_demo", "--app-code", "bk-demo"]),
        ("retarget", ["retarget", "sops", "--app-code", "bk-sops-ce"]),
        ("register", ["register", "itsm", "--database", database]),
        ("sync-edition", ["sync-edition", "--from", str(ce_root)]),
    ]


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_an_empty_plan_is_one_line_then_the_steps_that_run_for_every_command(esb_root, ce_root, tmp_path, run_esbgen,
                                                                              recorder, sqlite_db):
    expected = {
        "clone": "Nothing to do: bk_sops_ce is already this clone of sops, and registered.",
        "new": "Nothing to do: bk_demo already exists as this template makes it, and is registered.",
        "retarget": "Nothing to do: sops already forwards to app bk-sops-ce.",
        "register": "Nothing to do: row ITSM is already as asked.",
        "apply-plan": "Nothing to do: the tree is already as the plan leaves it.",
        "sync-edition": f"Nothing to do: {esb_root} already has what it takes from {ce_root}.",
    }
    for command, args in writing_commands(esb_root, ce_root, tmp_path, run_esbgen, sqlite_db.url):
        first = run_esbgen(*args, "--esb-root", esb_root)
        assert first.exit_code == 0, (command, first.stderr)
        assert "Applied as change " in first.output and f"hello after {command}" in first.output, command

        before, changes = snapshot(esb_root), journal_count(esb_root)
        again = run_esbgen(*args, "--esb-root", esb_root)
        assert again.exit_code == 0, (command, again.stderr)
        lines = again.output.splitlines()
        # One line says it, then the plan's notes, nothing else of a plan; the step that runs still runs.
        assert lines[0] == expected[command], command
        assert all(line.startswith("Note: ") for line in lines[1:-2]), command
        assert lines[-2:] == [f"Running: say hello after {command}", f"hello after {command}"], command
        assert again.stderr == ""
        assert snapshot(esb_root) == before and journal_count(esb_root) == changes, command

        dry = run_esbgen(*args, "--esb-root", esb_root, "--dry-run")
        assert dry.exit_code == 0, (command, dry.stderr)
        assert "Nothing to change: the tree is already as asked." in dry.output
        assert dry.output.rstrip().endswith("Dry run: nothing was changed.") and "Running:" not in dry.output
        assert snapshot(esb_root) == before and journal_count(esb_root) == changes, command


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_every_command_gives_plugins_the_same_option_keys(esb_root, ce_root, tmp_path, run_esbgen, recorder,
                                                          sqlite_db):
    commands = writing_commands(esb_root, ce_root, tmp_path, run_esbgen, sqlite_db.url)
    for command, args in commands:
        assert run_esbgen(*args, "--esb-root", esb_root, "--dry-run").exit_code == 0, command
        assert run_esbgen(*args, "--esb-root", esb_root).exit_code == 0, command
    assert run_esbgen("undo", "--esb-root", esb_root, "--dry-run").exit_code == 0
    assert run_esbgen("undo", "--esb-root", esb_root).exit_code == 0

    seen = {}
    for command, options in recorder.calls:
        assert set(options) == set(OPTION_KEYS), command
        assert options["command"] == command and options["sync"] is False and options["restart"] is False
        seen.setdefault(command, []).append(options)
    assert set(seen) == {name for name, _ in commands} | {"undo"}
    assert [o["dry_run"] for o in seen["clone"][-2:]] == [True, False]
    plan_out = next(o for o in seen["new"] if o["plan_out"] is not None)  # the plan file of writing_commands
    assert plan_out["dry_run"] is True and plan_out["new"] == "bk_plan"
    clone = seen["clone"][-1]
    assert (clone["source"], clone["new"], clone["system"], clone["app_code"], clone["saas_type"]) == (
        "sops", "bk_sops_ce", "BK_SOPS_CE", "bk-sops-ce", "sops")
    assert seen["register"][-1]["system"] == "ITSM" and seen["register"][-1]["source"] is None
    assert seen["apply-plan"][-1]["plan_file"] == str(tmp_path / "new.plan.json")
    assert seen["retarget"][-1]["app_code"] == "bk-sops-ce" and seen["retarget"][-1]["system"] == "SOPS"


def failing_python(folder: Path) -> Path:
    """An ESB interpreter whose sync_data_at_deploy fails, as a broken virtualenv's does."""
    folder.mkdir(parents=True, exist_ok=True)
    python = folder / "python"
    python.write_text("#!/bin/sh\necho 'ImportError: No module named django' >&2\nexit 1\n")
    python.chmod(0o755)
    return python


def as_json(result) -> dict:
    return json.loads(result.output.strip().splitlines()[-1])


def test_json_says_which_state_a_failing_run_left(esb_root, tmp_path, run_esbgen, monkeypatch):
    monkeypatch.delenv("ESBGEN_DATABASE_URL", raising=False)
    broken = failing_python(tmp_path / "broken-venv" / "bin")
    before = snapshot(esb_root)

    refused = as_json(run_esbgen("clone", "sops", "--as", "cc", "--esb-root", esb_root, "--json"))
    assert refused["error"]["class"] == "UsageError" and refused["tree_state"] == "unchanged"

    # The sync fails after the clone is applied: the change stays, and --json says so.
    synced = run_esbgen(*CLONE, "--esb-root", esb_root, "--sync", "--esb-python", broken, "--json")
    report = as_json(synced)
    assert synced.exit_code == 1
    assert report["error"]["class"] == "StepFailed" and report["tree_state"] == "applied"
    assert report["journal_id"] and report["changed"] is True
    assert "ImportError: No module named django" in report["error"]["message"]
    assert (esb_root / "components/confapis/bk_sops_ce").is_dir()
    applied = snapshot(esb_root)

    # Again: nothing to change, only the sync runs, and fails; the tree is as it was.
    again = run_esbgen(*CLONE, "--esb-root", esb_root, "--sync", "--esb-python", broken, "--json")
    report = as_json(again)
    assert again.exit_code == 1
    assert report["error"]["class"] == "StepFailed" and report["tree_state"] == "unchanged"
    assert report["journal_id"] is None and snapshot(esb_root) == applied

    done = as_json(run_esbgen("undo", "--esb-root", esb_root, "--json"))
    assert done["error"] is None and done["tree_state"] == "applied" and snapshot(esb_root) == before
    nothing = as_json(run_esbgen("undo", "--esb-root", esb_root, "--json"))
    assert nothing["error"]["class"] == "Refused" and nothing["tree_state"] == "unchanged"


def test_json_says_a_failed_apply_was_rolled_back(esb_root, tmp_path):
    plugin = install_plugin(tmp_path / "plugin")
    database = tmp_path / "fake.sqlite3"
    before = snapshot(esb_root)

    failed = esbgen(esb_root, *CLONE, "--json", env=environment(plugin, database, FAKEDB_FAIL="apply"))
    report = json.loads(failed.stdout)
    assert failed.returncode == 1, failed.stderr
    assert report["error"]["class"] == "RolledBack" and report["tree_state"] == "rolled back"
    assert "the fake database refused the row" in report["error"]["message"]
    assert failed.stderr.count("\n") == 1 and "Traceback" not in failed.stderr
    assert snapshot(esb_root) == before and rows(database) == []

    interrupted = esbgen(esb_root, *CLONE, "--json", env=environment(plugin, database, ESBGEN_INTERRUPT_AT="op-1"))
    report = json.loads(interrupted.stdout)
    assert interrupted.returncode == 130, interrupted.stderr
    assert report["error"]["class"] == "Interrupted" and report["tree_state"] == "rolled back"
    assert snapshot(esb_root) == before and rows(database) == []

    applied = esbgen(esb_root, *CLONE, "--json", env=environment(plugin, database))
    report = json.loads(applied.stdout)
    assert applied.returncode == 0 and report["tree_state"] == "applied" and report["error"] is None
    assert rows(database) == [("BK_SOPS_CE", "BK_SOPS_CE")]


def test_the_runner_is_all_a_command_needs(esb_root, run_esbgen):
    """A new command is an Operation that makes its plan; lock, journal and undo come with the runner."""
    from esbgen.plan import FileWrite, Plan
    from esbgen.runner import Context, Operation, run

    class Note(Operation):
        command = "note"
        scratch = False

        def make_plan(self, ctx, work):
            plan = Plan(ctx.root, "write NOTE.txt")
            path = ctx.root / "NOTE.txt"
            current = path.read_bytes() if path.exists() else None
            if current != b"noted\n":
                plan.file_writes.append(FileWrite(Path("NOTE.txt"), current, b"noted\n"))
            return plan

        def nothing_to_do(self, plan):
            return "NOTE.txt is already written"

        def summary(self, plan):
            return ["Wrote NOTE.txt."]

    said: list[str] = []
    ctx = Context.make(str(esb_root), say=said.append)
    assert run(Note(), ctx) == 0
    assert (esb_root / "NOTE.txt").read_bytes() == b"noted\n"
    assert said[-2:] == ["Wrote NOTE.txt.", next(line for line in said if line.startswith("Applied as change "))]
    said.clear()
    assert run(Note(), Context.make(str(esb_root), say=said.append)) == 0
    assert said == ["Nothing to do: NOTE.txt is already written."]
    assert run_esbgen("undo", "--esb-root", esb_root).exit_code == 0
    assert not (esb_root / "NOTE.txt").exists()


class StuckRow:
    """An external step whose database refuses the write and then the revert, as a dropped connection does."""

    kind = "test_stuck_row"

    def apply(self, record, ctx):
        raise RuntimeError("the connection dropped")

    def revert(self, record, ctx):
        raise RuntimeError("the connection is still down")

    def verify(self, record, ctx):
        return False


class AddsStuckRow:
    @hookimpl
    def esbgen_plan_steps(self, plan, command, options):
        if command == "clone" and not plan.is_empty:
            from esbgen.plan import ExternalStep

            plan.external.append(ExternalStep("test_stuck_row", "write a row that cannot be written", {}))
        return []


def test_json_says_when_a_rollback_is_incomplete(esb_root, run_esbgen, provide_kinds):
    stuck = provide_kinds(StuckRow())
    pm = get_plugin_manager()
    plugin = pm.register(AddsStuckRow(), name="adds-stuck-row")
    try:
        failed = run_esbgen(*CLONE, "--esb-root", esb_root, "--json")
    finally:
        pm.unregister(name=plugin)
    report = as_json(failed)
    assert failed.exit_code == 1
    assert report["error"]["class"] == "RollbackIncomplete" and report["tree_state"] == "rollback incomplete"
    assert "the connection is still down" in report["error"]["message"]
    # The files went back; the row is what is left, and the journal names it.
    assert not (esb_root / "components/confapis/bk_sops_ce").exists()
    journal_file = next((esb_root / ".esbgen/journal").glob("*/journal.json"))
    journal = json.loads(journal_file.read_text())
    assert journal["rollback_problems"] and journal["state"] == "rolling-back"

    # While the row cannot be reverted, every run retries first and refuses to do anything else.
    again = run_esbgen(*CLONE, "--esb-root", esb_root)
    assert again.exit_code == 1 and "could not be rolled back: " in again.stderr and "the connection is still down" in again.stderr
    assert not (esb_root / "components/confapis/bk_sops_ce").exists()

    # Once the database answers again, the next run finishes the rollback, says so, and goes on.
    pm.unregister(stuck)
    provide_kinds(Reachable())
    listed = run_esbgen("list", "--esb-root", esb_root)
    assert listed.exit_code == 0, listed.stderr
    assert "rolled back an interrupted change" in listed.stderr + listed.output
    assert json.loads(journal_file.read_text())["state"] == "rolled-back"


class Reachable(StuckRow):
    """The same step once the database is back: its revert goes through."""

    def revert(self, record, ctx):
        return None
