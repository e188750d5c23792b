"""Plans made once (--plan-out), applied as they are (apply-plan), and --json output."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, snapshot


def copy_esb(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(FIXTURES / "esb", root, symlinks=True)
    return root


def as_json(result) -> dict:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output  # one object, nothing else on stdout
    return json.loads(lines[0])


def test_plan_out_changes_nothing_and_apply_plan_gives_the_bytes_of_a_clone(tmp_path, run_esbgen):
    planned, direct, other = (copy_esb(tmp_path, name) for name in ("planned", "direct", "other"))
    before = snapshot(planned)
    plan_file = tmp_path / "clone.plan.json"

    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", planned, "--plan-out", plan_file)

    assert result.exit_code == 0, result.stderr
    assert f"Wrote the plan to {plan_file}" in result.output
    assert snapshot(planned) == before
    assert not (planned / ".esbgen").exists()
    data = json.loads(plan_file.read_text())
    assert data["format"] == "esbgen-plan" and data["title"] == "clone sops as bk_sops_ce"
    assert "components/confapis/sops/sops.yaml" in data["basis"]

    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", direct).exit_code == 0
    applied = run_esbgen("apply-plan", plan_file, "--esb-root", other)
    assert applied.exit_code == 0, applied.stderr
    assert "Applied as change" in applied.output
    assert snapshot(other) == snapshot(direct)

    again = run_esbgen("apply-plan", plan_file, "--esb-root", other)
    assert again.exit_code == 0
    assert "Nothing to do: the tree is already as the plan leaves it." in again.output

    undone = run_esbgen("undo", "--esb-root", other)
    assert undone.exit_code == 0, undone.stderr
    assert snapshot(other) == before


def test_apply_plan_refuses_a_tree_that_differs_and_changes_nothing(tmp_path, run_esbgen):
    planned, host = copy_esb(tmp_path, "planned"), copy_esb(tmp_path, "host")
    plan_file = tmp_path / "p.json"
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", planned, "--plan-out", plan_file).exit_code == 0
    occupied = host / "components/confapis/bk_sops_ce"
    occupied.mkdir()
    (occupied / "bk_sops_ce.yaml").write_text("[]\n")
    with (host / "components/confapis/sops/sops.yaml").open("a") as handle:
        handle.write("# edited on this host only\n")
    before = snapshot(host)

    result = run_esbgen("apply-plan", plan_file, "--esb-root", host)

    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("esbgen: error: this tree differs from the one the plan was made for")
    assert "components/confapis/bk_sops_ce/ is there" in lines[0]
    assert "bk_sops_ce.yaml" not in lines[0]  # the folder is named once, not each file in it
    assert "components/confapis/sops/sops.yaml differs" in lines[0]
    assert snapshot(host) == before


def test_apply_plan_refuses_damaged_or_escaping_plans(tmp_path, run_esbgen):
    planned, host = copy_esb(tmp_path, "planned"), copy_esb(tmp_path, "host")
    plan_file = tmp_path / "p.json"
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", planned, "--plan-out", plan_file).exit_code == 0
    data = json.loads(plan_file.read_text())
    before = snapshot(host)

    data["adds"][0]["files"][0]["base64"] = "AAAA"
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps(data))
    result = run_esbgen("apply-plan", damaged, "--esb-root", host)
    assert result.exit_code == 1
    assert "is damaged (its sha256 differs)" in result.stderr

    data["writes"][0]["path"] = "../outside.py"
    escaping = tmp_path / "escaping.json"
    escaping.write_text(json.dumps(data))
    result = run_esbgen("apply-plan", escaping, "--esb-root", host)
    assert result.exit_code == 2
    assert "'../outside.py', which is not a path inside an ESB root" in result.stderr

    (tmp_path / "not-a-plan.json").write_text("{}")
    assert "is not a plan esbgen wrote" in run_esbgen("apply-plan", tmp_path / "not-a-plan.json", "--esb-root", host).stderr
    assert snapshot(host) == before
    assert not (host / "outside.py").exists() and not (tmp_path / "outside.py").exists()


def test_plan_out_leaves_services_to_apply_plan(tmp_path, run_esbgen):
    root = copy_esb(tmp_path, "esb")
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root, "--plan-out", tmp_path / "p.json",
                        "--sync")
    assert result.exit_code == 2
    assert "give --sync/--restart to `esbgen apply-plan`" in result.stderr
    assert not (tmp_path / "p.json").exists()


def test_retarget_planned_once_applies_on_another_copy(tmp_path, run_esbgen):
    planned, direct, other = (copy_esb(tmp_path, name) for name in ("planned", "direct", "other"))
    plan_file = tmp_path / "retarget.json"
    args = ("retarget", "sops", "--app-code", "bk-sops-ce", "--app-url", "http://sops-ce.local:8080")
    assert run_esbgen(*args, "--esb-root", planned, "--plan-out", plan_file).exit_code == 0
    assert run_esbgen(*args, "--esb-root", direct).exit_code == 0
    result = run_esbgen("apply-plan", plan_file, "--esb-root", other, "--json")
    assert result.exit_code == 0
    report = as_json(result)
    assert report["changed"] is True and report["journal_id"]
    assert snapshot(other) == snapshot(direct)


def test_json_reports_plan_diffs_and_change(tmp_path, run_esbgen):
    root = copy_esb(tmp_path, "esb")
    before = snapshot(root)

    dry = as_json(run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root, "--dry-run", "--json"))
    assert snapshot(root) == before
    assert dry["ok"] is True and dry["dry_run"] is True
    assert dry["changed"] is False and dry["would_change"] is True
    assert [add["path"] for add in dry["plan"]["adds"]] == ["components/bk/apisv2/bk_sops_ce", "components/confapis/bk_sops_ce"]
    write = dry["plan"]["writes"][0]
    assert write["path"] == "components/generic/apis/conf.py" and write["action"] == "modify"
    assert "+    {'name': 'BK_SOPS_CE'" in write["diff"]
    assert "'BK_SOPS_CE'" in write["after"] and "'BK_SOPS_CE'" not in write["before"]
    assert any("BK_SOPS_CE_URL" in note for note in dry["notes"])

    done = as_json(run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root, "--json"))
    assert done["changed"] is True and done["journal_id"] and done["error"] is None
    assert any(line.startswith("Applied as change") for line in done["messages"])

    again = as_json(run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root, "--json"))
    assert again["changed"] is False and again["journal_id"] is None and again["ok"] is True

    history = as_json(run_esbgen("undo", "--list", "--esb-root", root, "--json"))["history"]
    assert [(change["id"], change["state"]) for change in history] == [(done["journal_id"], "applied")]
    would = as_json(run_esbgen("undo", "--id", done["journal_id"], "--dry-run", "--esb-root", root, "--json"))
    assert (would["changed"], would["would_change"], would["undone"]) == (False, True, done["journal_id"])
    assert snapshot(root) != before
    undone = as_json(run_esbgen("undo", "--id", done["journal_id"], "--esb-root", root, "--json"))
    assert undone["changed"] is True and snapshot(root) == before


def test_json_names_the_error_class_and_keeps_the_exit_status(tmp_path, run_esbgen):
    root = copy_esb(tmp_path, "esb")
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root).exit_code == 0
    refused = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--app-code", "other-app", "--esb-root", root, "--json")
    report = as_json(refused)
    assert refused.exit_code == 1
    assert report["ok"] is False and report["error"]["class"] == "Refused" and report["tree_state"] == "unchanged"
    assert "already exists and differs; use --force" in report["error"]["message"]
    assert report["error"]["message"] in refused.stderr

    official = run_esbgen("clone", "sops", "--as", "cc", "--esb-root", root, "--json")
    assert official.exit_code == 2 and as_json(official)["error"]["class"] == "UsageError"

    usage = run_esbgen("retarget", "sops", "--esb-root", root, "--json")
    assert usage.exit_code == 2
    assert as_json(usage)["error"] == {"class": "UsageError", "message": "give either --app-code CODE or --to-source"}

    (root / "components/confapis/sops/sops.yaml").write_text(
        "- path: /v2/sops/x/\n  name: x\n  label: x\n  comp_codename: generic.v2.sops.nothing\n"
        "  dest_path: /o/bk_sops/x/\n  dest_http_method: GET\n")
    check = run_esbgen("check", "sops", "--esb-root", root, "--json")
    report = as_json(check)
    assert check.exit_code == 1 and report["exit_code"] == 1 and report["ok"] is False and report["error"] is None
    assert report["messages"][-1].endswith("problem(s) in 1 system(s).")


def test_undo_restarts_the_esb_when_asked(tmp_path, run_esbgen, supervisor):
    root = copy_esb(tmp_path, "esb")
    before = snapshot(root)
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root).exit_code == 0
    started = supervisor.pid()
    restart = ("--restart", "--supervisor-conf", supervisor.conf)

    would = as_json(run_esbgen("undo", "--dry-run", *restart, "--esb-root", root, "--json"))
    assert would["would_change"] is True and any(line.startswith("Then: restart the ESB") for line in would["messages"])
    assert supervisor.pid() == started and snapshot(root) != before

    done = as_json(run_esbgen("undo", *restart, "--esb-root", root, "--json"))
    assert done["changed"] is True and done["steps_run"] == [f"restart the ESB: {supervisor.supervisorctl} -c "
                                                             f"{supervisor.conf} restart esb"]
    assert snapshot(root) == before
    assert supervisor.pid() not in (None, started)
    assert run_esbgen("undo", "--list", "--sync", "--esb-root", root).exit_code == 2


def test_the_plan_id_and_its_restart_are_recorded_in_the_change_and_reported_by_a_dry_run(tmp_path, run_esbgen,
                                                                                               supervisor):
    planned, host = copy_esb(tmp_path, "planned"), copy_esb(tmp_path, "host")
    restart = ("--restart", "--supervisor-conf", supervisor.conf)
    # the clone's code reads BK_SOPS_CE_URL: no restart onto it before the hosts define it, found by a dry run
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", planned, "--plan-out",
                      tmp_path / "undefined.json").exit_code == 0
    undefined = run_esbgen("apply-plan", tmp_path / "undefined.json", "--esb-root", host, *restart, "--dry-run")
    assert undefined.exit_code == 1 and undefined.stderr.count("\n") == 1
    assert "configs/default.py defines no BK_SOPS_CE_URL, which the plan's code reads for its backend" in undefined.stderr
    for root in (planned, host):  # as the operator does before the run, the same line everywhere
        settings = root / "configs/default.py"
        settings.write_text(settings.read_text() + "BK_SOPS_CE_URL = 'http://sops-ce.example:80'\n")
    plan_file = tmp_path / "p.json"
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", planned, "--plan-out", plan_file).exit_code == 0
    plan_id = hashlib.sha256(plan_file.read_bytes()).hexdigest()

    before = as_json(run_esbgen("apply-plan", plan_file, "--esb-root", host, "--dry-run", "--json"))
    assert (before["plan_id"], before["plan_change"], before["plan_steps_done"]) == (plan_id, None, [])
    applied = as_json(run_esbgen("apply-plan", plan_file, "--esb-root", host, "--json"))
    assert applied["plan_change"] is None and applied["journal_id"]
    journal = json.loads((host / ".esbgen/journal" / applied["journal_id"] / "journal.json").read_text())
    assert journal["plan_id"] == plan_id
    found = as_json(run_esbgen("apply-plan", plan_file, "--esb-root", host, "--dry-run", "--json"))
    assert (found["plan_change"], found["plan_steps_done"], found["would_change"]) == (applied["journal_id"], [], False)

    started = supervisor.pid()
    probed = as_json(run_esbgen("apply-plan", plan_file, "--esb-root", host, *restart, "--dry-run", "--json"))
    assert probed["program_state"] == "RUNNING" and supervisor.pid() == started
    unknown = run_esbgen("apply-plan", plan_file, "--esb-root", host, *restart, "--program", "esb2", "--dry-run")
    assert unknown.exit_code != 0 and "the ESB cannot be restarted: supervisord knows no such program" in unknown.stderr
    restarted = as_json(run_esbgen("apply-plan", plan_file, "--esb-root", host, *restart, "--json"))
    assert restarted["ok"] and supervisor.pid() not in (None, started)
    found = as_json(run_esbgen("apply-plan", plan_file, "--esb-root", host, "--dry-run", "--json"))
    assert (found["plan_change"], found["plan_steps_done"]) == (applied["journal_id"], ["restart"])

    assert run_esbgen("undo", "--esb-root", host).exit_code == 0  # undone: nothing of the plan is applied here now
    found = as_json(run_esbgen("apply-plan", plan_file, "--esb-root", host, "--dry-run", "--json"))
    assert (found["plan_change"], found["plan_steps_done"], found["would_change"]) == (None, [], True)


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_plan_out_refuses_a_database_row(sqlite_db, tmp_path, run_esbgen):
    root = copy_esb(tmp_path, "esb")
    before = snapshot(root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root, "--database", sqlite_db.url,
                        "--plan-out", tmp_path / "p.json")
    assert result.exit_code == 2
    assert "a plan file carries files only" in result.stderr and "register the system once for the fleet" in result.stderr
    assert not (tmp_path / "p.json").exists() and snapshot(root) == before
    assert sqlite_db.rows() == []


def test_a_linked_settings_file_counts_with_its_bytes(tmp_path):
    from esbgen.planfile import _entry

    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text("X = 1\n")
    second.write_text("X = 1\n")
    link = tmp_path / "default.py"
    link.symlink_to(first)
    before = _entry(link)
    first.write_text("X = 2\n")
    assert _entry(link) != before  # the same link, other bytes behind it


def entries(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``, esbgen's state folder included, with its kind, mode and bytes."""
    import os
    import stat

    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            kind = "link" if stat.S_ISLNK(info.st_mode) else "dir" if stat.S_ISDIR(info.st_mode) else "other"
            content = os.readlink(path) if kind == "link" else path.read_bytes() if stat.S_ISREG(info.st_mode) else None
            found[str(path.relative_to(root))] = (kind, stat.S_IMODE(info.st_mode), content)
    return found


def _link_on_the_way(data, host, outside):
    (host / "components/bk/linked").symlink_to(outside)
    data["adds"][0]["path"] = "components/bk/linked/bk_sops_ce"
    data["basis"]["components/bk/linked"] = f"link:{outside}"


def _linked_file(data, host, outside):
    target = host / data["writes"][0]["path"]
    (outside / "conf.py").write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(outside / "conf.py")


def _fifo_target(data, host, outside):
    import os

    target = host / data["writes"][0]["path"]
    target.unlink()
    os.mkfifo(target)


def _setuid(data, host, outside):
    data["adds"][0]["files"][0]["mode"] = 0o4755


def _sticky_write(data, host, outside):
    data["writes"][0]["mode"] = 0o1644


def _dotdot(data, host, outside):
    data["adds"][0]["files"][0]["path"] = "../../../../outside.py"


def _absolute(data, host, outside):
    data["writes"][0]["path"] = str(outside / "conf.py")


def _missing_key(data, host, outside):
    del data["writes"][0]["after_sha256"]


def _wrong_type(data, host, outside):
    data["adds"][0]["dirs"] = "toolkit"


def _not_a_list(data, host, outside):
    data["writes"] = {"path": "x"}


def _bad_sha(data, host, outside):
    data["adds"][0]["files"][0]["sha256"] = 7


def _unknown_version(data, host, outside):
    data["version"] = 99


HOSTILE = {
    "a link on the way out of the root": (_link_on_the_way, 1, "components/bk/linked is a symbolic link"),
    "a written file that is a link out": (_linked_file, 1, "components/generic/apis/conf.py is a symbolic link"),
    "a written file that is a FIFO": (_fifo_target, 1, "components/generic/apis/conf.py is not a regular file"),
    "a setuid mode": (_setuid, 2, "0o4755 is not a file mode of permission bits only"),
    "a sticky mode": (_sticky_write, 2, "0o1644 is not a file mode of permission bits only"),
    "..": (_dotdot, 2, "which is not a path inside an ESB root"),
    "an absolute path": (_absolute, 2, "which is not a path inside an ESB root"),
    "a missing key": (_missing_key, 2, "plan.writes[0] has no 'after_sha256'"),
    "a wrong type": (_wrong_type, 2, "plan.adds[0].dirs is not a list of strings"),
    "writes not a list": (_not_a_list, 2, "plan.writes is not a list"),
    "a sha256 that is a number": (_bad_sha, 2, "plan.adds[0].files[0].sha256 is not a sha256"),
    "an unknown version": (_unknown_version, 2, "is a plan of format version 99"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_plan_file_is_refused_in_one_line_and_leaves_no_trace(case, tmp_path, run_esbgen):
    planned, host = copy_esb(tmp_path, "planned"), copy_esb(tmp_path, "host")
    outside = tmp_path / "outside"
    outside.mkdir()
    plan_file = tmp_path / "p.json"
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", planned, "--plan-out", plan_file).exit_code == 0
    data = json.loads(plan_file.read_text())
    change, status, message = HOSTILE[case]
    change(data, host, outside)
    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps(data))
    before, outside_before = entries(host), entries(outside)

    result = run_esbgen("apply-plan", hostile, "--esb-root", host)

    assert result.exit_code == status, result.output + result.stderr
    assert result.stderr.startswith("esbgen: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert entries(host) == before and entries(outside) == outside_before
    assert not (host / ".esbgen").exists()


@pytest.mark.parametrize("case", ["a link on the way out of the root", "a written file that is a FIFO", "a missing key"])
def test_a_hostile_plan_file_leaves_a_host_with_history_as_it_was(case, tmp_path, run_esbgen):
    planned, host = copy_esb(tmp_path, "planned"), copy_esb(tmp_path, "host")
    assert run_esbgen("clone", "itsm", "--as", "bk_itsm_ce", "--esb-root", host).exit_code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    plan_file = tmp_path / "p.json"
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", planned, "--plan-out", plan_file).exit_code == 0
    data = json.loads(plan_file.read_text())
    change, status, message = HOSTILE[case]
    change(data, host, outside)
    plan_file.write_text(json.dumps(data))
    before = entries(host)
    result = run_esbgen("apply-plan", plan_file, "--esb-root", host)
    assert result.exit_code == status and message in result.stderr and result.stderr.count("\n") == 1
    assert entries(host) == before and entries(outside) == {}
