"""The journal in-process: apply all or nothing, rollback, recovery, and exact undo (bytes and modes)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from conftest import snapshot
from esbgen.journal import fingerprint
from esbgen.journal import record as jr
from esbgen.journal import store
from stepkit import provide_kinds  # noqa: F401 (a fixture)
from esbgen.errors import EsbgenError
from esbgen.plugins import get_plugin_manager
from esbgen.plan import ExternalStep, FileWrite, Plan, TreeAdd

CONF = Path("components/generic/apis/conf.py")


def full_state(root: Path) -> dict[str, tuple]:
    """Every file, folder and link under root (but .esbgen/) with its bytes and mode: 'exactly' means this."""
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (dirpath == str(root) and d == ".esbgen")]
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            relative = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                state[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                state[relative] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                state[relative] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
    return state


def staged_folder(base: Path, files: dict[str, tuple[bytes, int]]) -> Path:
    base.mkdir(parents=True)
    for relative, (data, mode) in files.items():
        path = base / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    return base


class Rows:
    """A stand-in database for external steps: rows in a JSON file outside the tree."""

    def __init__(self, path: Path, fail_apply: bool = False, kind: str = "test_rows"):
        self.path, self.fail_apply, self.calls, self.kind = path, fail_apply, [], kind

    def rows(self) -> dict:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def apply(self, record, ctx):
        self.calls.append(("apply", record["name"]))
        if self.fail_apply:
            raise RuntimeError("the database said no")
        rows = self.rows()
        rows[record["name"]] = record["label"]
        self.path.write_text(json.dumps(rows))

    def revert(self, record, ctx):
        self.calls.append(("rollback", record["name"]))
        rows = self.rows()
        rows.pop(record["name"], None)  # idempotent: gone already is fine
        self.path.write_text(json.dumps(rows))

    def verify(self, record, ctx):
        return self.rows().get(record["name"]) == record["label"]


@pytest.fixture
def rows(tmp_path, provide_kinds):
    handler = Rows(tmp_path / "rows.json")
    provide_kinds(handler)
    return handler


def a_plan(root: Path, scratch: Path, *, replace_sops: bool = False, external: bool = False) -> Plan:
    """A change with every kind of step: a new folder (an executable file, a nested new parent), a replaced
    folder, a modified file (mode 0640) and a file created where no folder was."""
    plan = Plan(root, "test change")
    plan.tree_adds.append(
        TreeAdd(
            Path("components/confapis/newsys"),
            staged_folder(scratch / "a", {"newsys.yaml": (b"- path: /v2/newsys/x/\r\n", 0o644),
                                          "apidocs/en/x.md": (b"{{ common_args_desc }}", 0o600),
                                          "run.sh": (b"#!/bin/sh\n", 0o755)}),
            [], False,
        )
    )
    plan.tree_adds.append(
        TreeAdd(Path("components/extra/deep/newtree"), staged_folder(scratch / "b", {"f.txt": (b"x", 0o644)}), [], False)
    )
    if replace_sops:
        plan.tree_adds.append(
            TreeAdd(Path("components/confapis/itsm"), staged_folder(scratch / "c", {"itsm.yaml": (b"[]\n", 0o644)}), [], True)
        )
    before = (root / CONF).read_bytes()
    plan.file_writes.append(FileWrite(CONF, before, before + b"# changed\n"))
    plan.file_writes.append(FileWrite(Path("configs/new/added.py"), None, b"X = 1\n", 0o640))
    if external:
        plan.external.append(ExternalStep("test_rows", "insert row NEWSYS", {"name": "NEWSYS", "label": "{{ 7*7 }}"}))
    return plan


def test_apply_then_undo_restores_bytes_modes_and_folders_exactly(esb_root, tmp_path, rows):
    (esb_root / CONF).chmod(0o640)
    before = full_state(esb_root)
    journal = jr.apply(a_plan(esb_root, tmp_path / "s", replace_sops=True, external=True), argv=["test"])
    assert journal.state == "applied"
    after = full_state(esb_root)
    assert after["components/confapis/newsys/run.sh"] == ("file", 0o755, b"#!/bin/sh\n")
    assert after["components/confapis/newsys/apidocs/en/x.md"] == ("file", 0o600, b"{{ common_args_desc }}")
    assert after[str(CONF)][1] == 0o640 and after[str(CONF)][2].endswith(b"# changed\n")
    assert after["configs/new/added.py"] == ("file", 0o640, b"X = 1\n")
    assert after["components/confapis/itsm/itsm.yaml"][2] == b"[]\n"
    assert rows.rows() == {"NEWSYS": "{{ 7*7 }}"}

    undone = jr.undo(esb_root)
    assert undone.id == journal.id and undone.state == "undone"
    assert full_state(esb_root) == before  # the folders esbgen created (components/extra, configs/new) are gone too
    assert rows.rows() == {}
    assert not (journal.path / "backup").exists() and not (journal.path / "undone").exists()


def test_each_undo_steps_back_one_change_through_the_history(esb_root, run_esbgen):
    before = snapshot(esb_root)
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root).exit_code == 0
    between = snapshot(esb_root)
    assert run_esbgen("clone", "itsm", "--as", "bk_itsm_ce", "--esb-root", esb_root).exit_code == 0
    last = run_esbgen("undo", "--esb-root", esb_root)
    assert last.exit_code == 0 and "Undid change 00002-" in last.output and "clone itsm as bk_itsm_ce" in last.output
    assert snapshot(esb_root) == between
    previous = run_esbgen("undo", "--esb-root", esb_root)
    assert previous.exit_code == 0 and "Undid change 00001-" in previous.output and "clone sops as bk_sops_ce" in previous.output
    assert snapshot(esb_root) == before
    again = run_esbgen("undo", "--esb-root", esb_root)
    assert again.exit_code == 1 and again.stderr.count("\n") == 1
    assert again.stderr.startswith("esbgen: error: every recorded change is undone, down to the first: change 00001-")
    assert "(clone sops as bk_sops_ce) is already undone" in again.stderr
    assert snapshot(esb_root) == before
    states = [line.split()[2] for line in run_esbgen("undo", "--list", "--esb-root", esb_root).output.splitlines()]
    assert states == ["undone", "undone"]


def test_undo_steps_back_over_undone_changes_to_the_last_one_still_applied(esb_root, run_esbgen):
    for source in ("sops", "itsm"):
        assert run_esbgen("clone", source, "--as", f"bk_{source}_ce", "--esb-root", esb_root).exit_code == 0
    first = run_esbgen("undo", "--list", "--esb-root", esb_root).output.split()[0]
    assert run_esbgen("undo", "--esb-root", esb_root).exit_code == 0
    assert run_esbgen("clone", "cc", "--as", "cc_ce", "--esb-root", esb_root).exit_code == 0
    assert "Undid change 00003-" in run_esbgen("undo", "--esb-root", esb_root).output
    dry = run_esbgen("undo", "--dry-run", "--json", "--esb-root", esb_root)
    assert dry.exit_code == 0 and json.loads(dry.output)["undone"] == first


def test_an_undo_of_an_undo_is_refused_clearly(esb_root, tmp_path, rows):
    jr.apply(a_plan(esb_root, tmp_path / "s"), argv=["clone", "x", "--as", "newsys"])
    jr.undo(esb_root)
    before = full_state(esb_root)
    with pytest.raises(EsbgenError, match=r"already undone; esbgen does not undo an undo: .*run it again \(esbgen clone x --as newsys\)"):
        jr.undo(esb_root)
    assert full_state(esb_root) == before


def test_the_next_undo_steps_back_to_the_change_before_an_undone_one(esb_root, tmp_path, rows):
    first = jr.apply(a_plan(esb_root, tmp_path / "s1"), argv=["one"])
    plan = Plan(esb_root, "second change")
    plan.tree_adds.append(TreeAdd(Path("components/confapis/other"), staged_folder(tmp_path / "s2", {"o.yaml": (b"[]", 0o644)}), [], False))
    jr.apply(plan, argv=["two"])
    jr.undo(esb_root)
    assert jr.undo(esb_root).id == first.id
    assert not (esb_root / "components/confapis/newsys").exists()
    with pytest.raises(EsbgenError, match=f"down to the first: change {first.id} .*already undone"):
        jr.undo(esb_root)
    with pytest.raises(EsbgenError, match=f"^change {first.id} .*already undone"):
        jr.undo(esb_root, first.id[:5])


@pytest.mark.parametrize(
    "change",
    [
        "file bytes",
        "file mode",
        "same-size edit in a cloned folder",
        "mode change in a cloned folder",
        "file added to a cloned folder",
        "empty folder added to a cloned folder",
        "cloned folder removed",
    ],
)
def test_undo_refuses_when_its_target_changed_since_and_touches_nothing(esb_root, tmp_path, rows, change):
    journal = jr.apply(a_plan(esb_root, tmp_path / "s", external=True), argv=["test"])
    new = esb_root / "components/confapis/newsys"
    if change == "file bytes":
        (esb_root / CONF).write_bytes((esb_root / CONF).read_bytes() + b"# operator\n")
    elif change == "file mode":
        (esb_root / CONF).chmod(0o600)
    elif change == "same-size edit in a cloned folder":
        (new / "run.sh").write_bytes(b"#!/bin/SH\n")
    elif change == "mode change in a cloned folder":
        (new / "run.sh").chmod(0o700)
    elif change == "file added to a cloned folder":
        (new / "apidocs/en/y.md").write_bytes(b"")
    elif change == "empty folder added to a cloned folder":
        (new / "apidocs/fr").mkdir()
    else:
        os.rename(new, tmp_path / "moved-away")
    before = full_state(esb_root)
    with pytest.raises(EsbgenError, match="changed since change .*; undo it by hand, nothing was changed"):
        jr.undo(esb_root)
    assert full_state(esb_root) == before
    assert jr.Journal.load(journal.path).state == "applied"
    assert rows.rows() == {"NEWSYS": "{{ 7*7 }}"}


def test_undo_refuses_a_change_that_is_not_the_last_applied(esb_root, tmp_path, rows):
    first = jr.apply(a_plan(esb_root, tmp_path / "s1"), argv=["one"])
    plan = Plan(esb_root, "second change")
    plan.tree_adds.append(TreeAdd(Path("components/confapis/other"), staged_folder(tmp_path / "s2", {"o.yaml": (b"[]", 0o644)}), [], False))
    second = jr.apply(plan, argv=["two"])
    with pytest.raises(EsbgenError, match=f"undo change {second.id} .* first"):
        jr.undo(esb_root, first.id)
    with pytest.raises(EsbgenError, match="no single recorded change matches 'nope'"):
        jr.undo(esb_root, "nope")


def test_a_failing_step_rolls_everything_back_including_external_steps(esb_root, tmp_path, provide_kinds):
    handler = Rows(tmp_path / "rows.json")
    plan = a_plan(esb_root, tmp_path / "s", replace_sops=True, external=True)
    plan.external.append(ExternalStep("failing", "a step that fails", {"name": "LATER", "label": "x"}))
    provide_kinds(handler, Rows(tmp_path / "other.json", fail_apply=True, kind="failing"))
    before = full_state(esb_root)
    with pytest.raises(EsbgenError, match="applying failed and was rolled back: the database said no"):
        jr.apply(plan, argv=["test"])
    assert full_state(esb_root) == before
    assert handler.calls == [("apply", "NEWSYS"), ("rollback", "NEWSYS")] and handler.rows() == {}
    (only,) = jr.journals(esb_root)
    assert only.state == "rolled-back" and "the database said no" in only.data["error"]
    assert not any((only.path / name).exists() for name in ("stage", "new", "backup"))


def test_a_target_that_appeared_meanwhile_is_refused_and_nothing_changes(esb_root, tmp_path):
    plan = a_plan(esb_root, tmp_path / "s")
    (esb_root / "components/extra/deep/newtree").mkdir(parents=True)
    before = full_state(esb_root)
    with pytest.raises(EsbgenError, match="components/extra/deep/newtree appeared while esbgen was working; nothing was changed"):
        jr.apply(plan, argv=["test"])
    assert full_state(esb_root) == before


def test_a_file_changed_meanwhile_is_refused_and_nothing_changes(esb_root, tmp_path):
    plan = a_plan(esb_root, tmp_path / "s")
    (esb_root / CONF).write_bytes(b"# someone else\n")
    before = full_state(esb_root)
    with pytest.raises(EsbgenError, match=f"{CONF} changed while esbgen was working"):
        jr.apply(plan, argv=["test"])
    assert full_state(esb_root) == before


def test_an_unknown_external_kind_is_refused_before_anything_is_written(esb_root, tmp_path):
    plan = a_plan(esb_root, tmp_path / "s")
    plan.external.append(ExternalStep("no_such_kind", "x", {}))
    before = full_state(esb_root)
    with pytest.raises(EsbgenError, match="has a step of kind 'no_such_kind', which no loaded plugin provides: "
                                          "install the plugin that provides it, or take it out of ESBGEN_DISABLE_PLUGINS"):
        jr.apply(plan, argv=["test"])
    assert full_state(esb_root) == before
    assert jr.journals(esb_root) == []


def test_recovery_reverts_from_any_point_and_is_idempotent(esb_root, tmp_path, rows):
    """A journal left 'applying' after each possible number of done steps (and a half-written file) rolls back."""
    before = full_state(esb_root)
    for done in range(7):  # 6 steps: 3 folders, 2 files, 1 row
        plan = a_plan(esb_root, tmp_path / f"s{done}", replace_sops=True, external=True)
        journal = jr.prepare(plan, argv=["test"])
        journal.set_state("applying")
        for op in journal.data["ops"][:done]:
            jr._apply_op(journal, esb_root, op)
        (esb_root / CONF.parent / f".{CONF.name}.x1y2.esbgen-tmp").write_bytes(b"half")  # a write killed midway
        said: list[str] = []
        jr.recover(esb_root, said.append)
        assert said == [f"esbgen: rolled back an interrupted change {journal.id} (test change): the tree is as it was before it"]
        assert full_state(esb_root) == before, done
        assert rows.rows() == {}
        jr.recover(esb_root, said.append)  # nothing left to do
        assert len(said) == 1


def test_an_interrupted_undo_is_finished_by_recovery(esb_root, tmp_path, rows, monkeypatch):
    before = full_state(esb_root)
    journal = jr.apply(a_plan(esb_root, tmp_path / "s", replace_sops=True, external=True), argv=["test"])
    journal.set_state("undoing")
    ops = journal.data["ops"]
    for index in (len(ops) - 1, len(ops) - 2, 0):  # some steps undone, in no particular order, then killed
        jr._revert_op(journal, esb_root, index, ops[index], "undo")
    said: list[str] = []
    jr.recover(esb_root, said.append)
    assert said == [f"esbgen: finished an interrupted undo of change {journal.id} (test change)"]
    assert full_state(esb_root) == before
    assert jr.Journal.load(journal.path).state == "undone"


def test_a_journal_folder_without_journal_is_removed_by_recovery_not_by_listing(esb_root, tmp_path):
    stale = store.state_dir(esb_root) / "journal" / "00007-deadbeef"
    (stale / "stage" / "0").mkdir(parents=True)
    assert jr.journals(esb_root) == []
    assert stale.exists()  # listing reads only (it runs without the lock)
    jr.recover(esb_root, print)
    assert not stale.exists()


def test_fingerprint_sees_bytes_modes_links_and_empty_folders(tmp_path):
    folder = staged_folder(tmp_path / "f", {"a.txt": (b"abc", 0o644), "sub/b.txt": (b"", 0o600)})
    first = jr.tree_fingerprint(folder)
    assert jr.tree_fingerprint(folder) == first
    changes = [
        lambda: (folder / "a.txt").write_bytes(b"abd"),
        lambda: (folder / "a.txt").chmod(0o600),
        lambda: (folder / "empty").mkdir(),
        lambda: os.symlink("a.txt", folder / "link"),
    ]
    seen = {first}
    for change in changes:
        change()
        fingerprint = jr.tree_fingerprint(folder)
        assert fingerprint not in seen
        seen.add(fingerprint)


def test_undo_list_and_undo_through_the_cli(esb_root, run_esbgen):
    before = snapshot(esb_root)
    assert run_esbgen("undo", "--esb-root", esb_root).stderr.startswith("esbgen: error: nothing to undo")
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root).exit_code == 0
    after = snapshot(esb_root)
    listed = run_esbgen("undo", "--list", "--esb-root", esb_root)
    assert listed.exit_code == 0 and "applied" in listed.output and "clone sops as bk_sops_ce" in listed.output
    result = run_esbgen("undo", "--esb-root", esb_root)
    assert result.exit_code == 0 and "Undid change 00001-" in result.output
    assert snapshot(esb_root) == before
    again = run_esbgen("undo", "--esb-root", esb_root)
    assert again.exit_code == 1
    assert again.stderr.count("\n") == 1 and "does not undo an undo" in again.stderr and "Traceback" not in again.stderr
    assert snapshot(esb_root) == before
    assert "undone" in run_esbgen("undo", "--list", "--esb-root", esb_root).output
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root).exit_code == 0
    assert snapshot(esb_root) == after


def test_a_failed_run_is_not_what_undo_takes_back(esb_root, run_esbgen, monkeypatch):
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root).exit_code == 0
    real_write = jr.atomic_write_bytes

    def disk_full(path, data, mode=None):
        if str(path).endswith("conf.py"):
            raise OSError(28, "No space left on device")
        return real_write(path, data, mode)

    monkeypatch.setattr(jr, "atomic_write_bytes", disk_full)
    failed = run_esbgen("clone", "itsm", "--as", "bk_itsm_ce", "--esb-root", esb_root)
    assert failed.exit_code == 1 and "No space left on device" in failed.stderr
    monkeypatch.undo()
    history = jr.journals(esb_root)
    assert [j.state for j in history] == ["applied"]  # the change rolled back whole left no journal
    assert run_esbgen("undo", "--esb-root", esb_root).exit_code == 0
    assert [j.state for j in jr.journals(esb_root)] == ["undone"]
    assert not (esb_root / "components/confapis/bk_sops_ce").exists()


def test_lock_refuses_a_state_folder_that_is_a_link(esb_root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, esb_root / ".esbgen")
    with pytest.raises(EsbgenError, match="is not a folder .*a link"):
        with store.locked(esb_root):
            pass
    assert list(elsewhere.iterdir()) == []


def test_the_lock_file_names_its_holder_and_is_emptied_after(esb_root):
    with store.locked(esb_root):
        holder = (store.state_dir(esb_root) / "lock").read_text()
        assert holder.startswith(f"esbgen pid {os.getpid()} (")
    assert (store.state_dir(esb_root) / "lock").read_text() == ""



def test_a_change_that_cannot_be_journalled_is_refused_before_the_tree_is_touched(esb_root, tmp_path, rows):
    plan = a_plan(esb_root, tmp_path / "s", external=True)
    plan.external[0].record["not json"] = object()
    before = full_state(esb_root)
    with pytest.raises(EsbgenError, match="preparing the change failed, nothing was changed"):
        jr.apply(plan, argv=["test"])
    assert full_state(esb_root) == before
    assert list((store.state_dir(esb_root) / "journal").iterdir()) == []
    assert rows.calls == []


def test_a_journal_that_cannot_record_applied_rolls_the_change_back(esb_root, tmp_path, rows, monkeypatch):
    real = jr.Journal.set_state

    def full_disk_at_the_end(self, state):
        if state == "applied":
            raise OSError(28, "No space left on device", str(self.path / "journal.json"))
        return real(self, state)

    monkeypatch.setattr(jr.Journal, "set_state", full_disk_at_the_end)
    before = full_state(esb_root)
    with pytest.raises(EsbgenError, match="applying failed and was rolled back: No space left on device"):
        jr.apply(a_plan(esb_root, tmp_path / "s", replace_sops=True, external=True), argv=["test"])
    assert full_state(esb_root) == before and rows.rows() == {}
    assert [j.state for j in jr.journals(esb_root)] == ["rolled-back"]


def test_a_rollback_that_cannot_finish_says_so_and_keeps_the_backups(esb_root, tmp_path, provide_kinds):
    class Stubborn(Rows):
        def revert(self, record, ctx):
            raise RuntimeError("the database is gone")

    before = full_state(esb_root)
    plan = a_plan(esb_root, tmp_path / "s", replace_sops=True, external=True)
    plan.external.append(ExternalStep("failing", "fails", {"name": "X", "label": "x"}))
    stubborn = provide_kinds(Stubborn(tmp_path / "rows.json"), Rows(tmp_path / "other.json", fail_apply=True,
                                                                    kind="failing"))
    with pytest.raises(EsbgenError, match="rolling back left problems: insert row NEWSYS: the database is gone"):
        jr.apply(plan, argv=["test"])
    (journal,) = jr.journals(esb_root)
    assert journal.data["rollback_problems"] and (journal.path / "backup").is_dir()
    assert journal.state == "rolling-back"  # so that the next run retries what is left
    assert (esb_root / "components/confapis/itsm/itsm.yaml").read_bytes() != b"[]\n"  # the files did go back

    # The database is back: the next run's recovery finishes the rollback and drops the backups.
    get_plugin_manager().unregister(stubborn)
    rows = Rows(tmp_path / "rows.json")
    provide_kinds(rows, Rows(tmp_path / "other.json", kind="failing"))
    said = []
    with store.locked(esb_root):
        jr.recover(esb_root, said.append)
    (journal,) = jr.journals(esb_root)
    assert journal.state == "rolled-back" and not (journal.path / "backup").exists()
    assert rows.rows() == {} and ("rollback", "NEWSYS") in rows.calls
    assert full_state(esb_root) == before
    assert said and "rolled back an interrupted change" in said[0]


def test_hashes_remembered_while_copying_are_never_stale(tmp_path, monkeypatch):
    """A render's copy here tells the journal the hash of what it wrote; a later change is still seen."""
    from esbgen.edit.template import _copying_verbatim

    def copy_verbatim(jobs):
        with _copying_verbatim(jobs) as wait_for_copies:
            wait_for_copies()

    monkeypatch.setattr(fingerprint, "WRITTEN", {})
    source = staged_folder(tmp_path / "src", {"a.md": (b"{{ common_args_desc }}", 0o640), "b.md": (b"x" * 5000, 0o644)})
    copy = tmp_path / "copy"
    copy.mkdir()
    copy_verbatim([[str(source), str(copy), ["a.md", "b.md"]]])
    assert len(fingerprint.WRITTEN) == 2
    remembered = jr.tree_fingerprint(copy)
    monkeypatch.setattr(fingerprint, "WRITTEN", {})
    assert jr.tree_fingerprint(copy) == remembered == jr.tree_fingerprint(source)
    copy = tmp_path / "copy-again"
    copy_verbatim([[str(source), str(copy), ["a.md", "b.md"]]])
    (copy / "a.md").write_bytes(b"{{ common_args_DESC }}")  # same size, written right after
    assert jr.tree_fingerprint(copy) != remembered


def test_a_journal_whose_kind_no_plugin_provides_is_refused_naming_the_kind(esb_root, tmp_path, provide_kinds):
    from esbgen.plugins import get_plugin_manager

    handler = Rows(tmp_path / "rows.json")
    provider = provide_kinds(handler)
    jr.apply(a_plan(esb_root, tmp_path / "s", external=True), argv=["test"])
    after = full_state(esb_root)
    get_plugin_manager().unregister(provider)  # as ESBGEN_DISABLE_PLUGINS, or an uninstalled plugin, would
    with pytest.raises(EsbgenError) as refused:
        jr.undo(esb_root)
    assert str(refused.value).endswith(
        "has a step of kind 'test_rows', which no loaded plugin provides: install the plugin that provides it, "
        "or take it out of ESBGEN_DISABLE_PLUGINS; nothing was changed")
    assert full_state(esb_root) == after and handler.rows() == {"NEWSYS": "{{ 7*7 }}"}
    assert [j.state for j in jr.journals(esb_root)] == ["applied"]


def _entries(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``, esbgen's state folder included (kind, mode, bytes or link target)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            content = os.readlink(path) if stat.S_ISLNK(info.st_mode) else path.read_bytes() if stat.S_ISREG(info.st_mode) else None
            found[str(path.relative_to(root))] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), content)
    return found


def _tree_op(data):
    return next(op for op in data["ops"] if op["op"] == "tree")


def _file_op(data):
    return next(op for op in data["ops"] if op["op"] == "file")


def _through_a_link(data, root, outside):
    op = _tree_op(data)
    (outside / "moved").mkdir()
    os.rename(root / op["path"], outside / "moved" / Path(op["path"]).name)
    (root / "components/bk/linked").symlink_to(outside / "moved")
    op["path"] = f"components/bk/linked/{Path(op['path']).name}"


HOSTILE_JOURNALS = {
    "a missing key": (lambda data, root, outside: _file_op(data).pop("after_sha"), "has no 'after_sha'"),
    "a wrong type": (lambda data, root, outside: _file_op(data).update(mode="644"), "mode is not a number"),
    "a setuid mode": (lambda data, root, outside: _file_op(data).update(mode=0o4755),
                      "mode 0o4755 is not a file mode of permission bits only"),
    "..": (lambda data, root, outside: _file_op(data).update(path="../outside/conf.py"), "is not a relative path without '..'"),
    "an absolute path": (lambda data, root, outside: _file_op(data).update(path=str(outside / "conf.py")),
                         "is not a relative path without '..'"),
    "a backup outside the journal": (lambda data, root, outside: _file_op(data).update(backup="../../../../etc/passwd"),
                                     "is not a relative path without '..'"),
    "an unknown kind": (lambda data, root, outside: data["ops"].append({"op": "chmod"}), "of a kind esbgen does not know"),
    "ops not a list": (lambda data, root, outside: data.update(ops={"op": "file"}), "not an esbgen journal"),
    "a path through a link": (_through_a_link, "components/bk/linked is a symbolic link on the way"),
}


@pytest.mark.parametrize("case", list(HOSTILE_JOURNALS))
def test_a_hostile_journal_is_refused_in_one_line_and_touches_nothing(case, esb_root, tmp_path, run_esbgen):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "conf.py").write_bytes(b"OUTSIDE = 1\n")
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root).exit_code == 0
    (journal,) = (esb_root / ".esbgen" / "journal").iterdir()
    data = json.loads((journal / "journal.json").read_text())
    change, message = HOSTILE_JOURNALS[case]
    change(data, esb_root, outside)
    (journal / "journal.json").write_text(json.dumps(data))
    before, outside_before = _entries(esb_root), _entries(outside)

    commands = [("undo",), ("undo", "--dry-run")]
    if case != "a path through a link":  # a journal that does not read is refused by whatever reads it
        commands.append(("clone", "sops", "--as", "bk_sops_ce2"))
    for args in commands:
        result = run_esbgen(*args, "--esb-root", esb_root)
        assert result.exit_code == 1, (args, result.output, result.stderr)
        assert result.stderr.startswith("esbgen: error: ") and result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
        assert _entries(esb_root) == before and _entries(outside) == outside_before
