"""Clones of systems declared in esb_conf.py, read back as each ESB generation reads them
(fixtures/presets-legacy, fixtures/presets-later).

Both ESBs import ``components/esb_conf.py`` and walk ``config["config"]["channel_groups"]``: the legacy
router serves every group's ``preset_channels`` (row or not) and ``rewrite_channels``; the later ESB
serves rows and takes a channel's validators from esb_conf.py's entry of the same path and method.
Here the module is imported the same way, its ESB imports stood in by recording classes.
"""

from __future__ import annotations

import difflib
import re
import shutil
import sys
import types
from pathlib import Path

import pytest

from conftest import FIXTURES, snapshot

GENERATIONS = ["presets-legacy", "presets-later"]
SETTINGS = {"presets-legacy": "configs/default.py", "presets-later": "conf/default.py"}


class Recorded:
    """An object the ESB's esb_conf.py builds (a validator, a channel class): its class name and arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __eq__(self, other):
        return type(self).__name__ == type(other).__name__ and (self.args, self.kwargs) == (other.args, other.kwargs)

    def __repr__(self):
        return f"{type(self).__name__}{self.args}"


def esb_config(root: Path, monkeypatch) -> dict:
    """``config["config"]`` of the tree's esb_conf.py, imported as the ESB imports it."""
    def module(name, **names):
        made = types.ModuleType(name)
        made.__dict__.update(names)
        monkeypatch.setitem(sys.modules, name, made)

    recorded = {n: type(n, (Recorded,), {}) for n in (
        "ApiChannelForAPIS", "ESBApiChannelForAPIS", "AppAuthValidator", "AppCodeWhiteListValidator",
        "VerifiedUserRequiredValidator")}
    module("django")
    module("django.conf", settings=types.SimpleNamespace(BASE_DIR=str(root)))
    module("components")
    module("components.component", **recorded)
    for package in ("esb", "esb.bkapp", "esb.bkauth"):
        module(package)
    module("esb.bkapp.validators", **recorded)
    module("esb.bkauth.validators", **recorded)
    namespace: dict = {"__name__": "components.esb_conf"}
    path = root / "components/esb_conf.py"
    exec(compile(path.read_bytes(), str(path), "exec"), namespace)
    return namespace["config"]["config"]


def served_by_router(config: dict) -> dict[tuple[str, str], tuple[str, dict]]:
    """(path, method) -> (group, config) of every preset, as the routers file them (a later duplicate wins)."""
    table = {}
    for group, conf in config["channel_groups"].items():
        for path, channel in conf["preset_channels"]:
            table[(path, channel.get("method", ""))] = (group, channel)
    return table


def aliases(config: dict) -> dict[str, str]:
    found = {}
    for conf in config["channel_groups"].values():
        found.update(conf.get("rewrite_channels", {}))
    return found


def only_added(before: bytes, after: bytes) -> bytes:
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    added = b""
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        assert op in ("equal", "insert"), (op, before[a1:a2], after[b1:b2])
        added += after[b1:b2]
    return added


@pytest.fixture(params=GENERATIONS)
def tree(request, tmp_path) -> Path:
    root = tmp_path / request.param
    shutil.copytree(FIXTURES / request.param, root)
    return root


def test_every_preset_and_alias_is_served_for_the_clone_with_its_validators(tree, run_esbgen, monkeypatch):
    original = (tree / "components/esb_conf.py").read_bytes()
    source = served_by_router(esb_config(tree, monkeypatch))
    changes = []
    for system in ("umgr", "msg"):
        result = run_esbgen("clone", system, "--as", f"{system}_ce", "--esb-root", tree)
        assert result.exit_code == 0, result.output
        changes.append(re.search(r"Applied as change (\S+);", result.output).group(1))
    after = (tree / "components/esb_conf.py").read_bytes()
    only_added(original, after)  # the source's entries stay byte for byte
    config = esb_config(tree, monkeypatch)
    served = served_by_router(config)
    for (path, method), (group, channel) in source.items():
        system = "umgr" if "umgr" in path else "msg"
        clone_path = path.replace(f"/{system}/", f"/{system}_ce/", 1)
        assert served[(path, method)] == (group, channel)  # the source serves as before
        clone_group, clone = served[(clone_path, method)]
        assert clone_group == group
        assert clone["comp_codename"] == channel["comp_codename"].replace(f".{system}.", f".{system}_ce.")
        assert {k: v for k, v in clone.items() if k != "comp_codename"} == \
               {k: v for k, v in channel.items() if k != "comp_codename"}  # validators, hidden, comp_conf
    routes = aliases(config)
    assert routes["/v2/msg_ce/send_mail/"] == "/msg_ce/send_mail/" and routes["/v2/msg/send_mail/"] == "/msg/send_mail/"
    assert all((target, "") in served for target in routes.values())
    assert not (tree / "components/generic/apis/conf.py").read_text(encoding="utf-8").count("_ce/")  # no CHANNELS
    # undo takes away exactly what the clones added
    for change in reversed(changes):
        assert run_esbgen("undo", "--id", change, "--esb-root", tree).exit_code == 0
    assert (tree / "components/esb_conf.py").read_bytes() == original


def test_a_component_naming_its_own_systems_component_names_the_clones(tree, run_esbgen):
    assert run_esbgen("clone", "umgr", "--as", "umgr_ce", "--esb-root", tree).exit_code == 0
    assert run_esbgen("clone", "msg", "--as", "msg_ce", "--esb-root", tree).exit_code == 0
    code = (tree / "components/bk/apisv2/umgr_ce/list_users.py").read_text(encoding="utf-8")
    assert "prepare_other(\n            %sgeneric.v2.umgr_ce.umgr_component" % ("'" if "legacy" in tree.name else '"') in code
    formatted = (tree / "components/generic/templates/msg_ce/send_msg.py").read_text(encoding="utf-8")
    assert "generic.msg_ce.%s" in formatted and "generic.msg." not in formatted


def test_notes_and_verify_name_exactly_the_settings_the_clone_reads(tree, run_esbgen):
    result = run_esbgen("clone", "umgr", "--as", "umgr_ce", "--esb-root", tree)
    assert result.exit_code == 0, result.output
    settings = SETTINGS[tree.name]
    assert f"define in {settings}: UMGR_CE_USERMGR_HOST (where umgr reads USERMGR_HOST);" in result.output
    assert f"Next: define UMGR_CE_USERMGR_HOST in {settings};" in result.output
    verify = run_esbgen("verify", "umgr_ce", "--esb-root", tree)
    assert verify.exit_code == 1
    problems = [line for line in verify.output.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 1 and problems[0].startswith(f"problem: UMGR_CE_USERMGR_HOST is not defined in {settings}")
    with open(tree / settings, "a", encoding="utf-8") as handle:
        handle.write("\nUMGR_CE_USERMGR_HOST = 'http://usermgr-ce.example.com'\n")
    assert run_esbgen("verify", "umgr_ce", "--esb-root", tree).exit_code == 0
    # a system that reads no host setting is told to define none
    msg = run_esbgen("clone", "msg", "--as", "msg_ce", "--esb-root", tree)
    assert msg.exit_code == 0 and "define" not in msg.output.replace("undefined", "")
    assert run_esbgen("verify", "msg_ce", "--esb-root", tree).exit_code == 0


def test_a_source_without_channels_is_refused_unless_asked(tree, run_esbgen):
    before = snapshot(tree)
    refused = run_esbgen("clone", "idle", "--as", "idle_ce", "--esb-root", tree)
    assert refused.exit_code == 1 and snapshot(tree) == before
    assert refused.stderr.strip().splitlines() == [
        "esbgen: error: idle declares no channel in this tree (no confapis entry, no preset of components/esb_conf.py, "
        "no CHANNELS entry of components/generic/apis/conf.py): its clone would serve nothing; give --empty to create it anyway"]
    assert run_esbgen("clone", "idle", "--as", "idle_ce", "--empty", "--esb-root", tree).exit_code == 0
    verify = run_esbgen("verify", "idle_ce", "--esb-root", tree)
    assert verify.exit_code == 1 and "IDLE_CE serves no channel" in verify.output


def test_check_passes_on_the_untouched_tree_with_what_the_esb_tolerates_as_notes(tree, run_esbgen):
    result = run_esbgen("check", "--esb-root", tree)
    assert result.exit_code == 0, result.output
    if tree.name == "presets-later":
        assert result.output.count("note: ") == 2  # off-pattern preset paths, which the later ESB serves as they are
    else:
        assert "note: " not in result.output  # the file only Python 2 reads is read with its grammar


def test_list_says_rows_and_presets_served_without_a_row_apart(tree, run_esbgen):
    lines = run_esbgen("list", "--esb-root", tree).output.splitlines()
    assert lines[0].split() == ["SYSTEM", "KIND", "ROWS", "COMPONENTS", "REGISTERED", "WITHOUT", "ROW"]
    umgr = next(line.split() for line in lines if line.startswith("umgr "))
    # legacy: its sync makes a row of list_users alone; the router serves the hidden and deprecated ones too
    assert (umgr[2], umgr[-1]) == (("1", "3") if tree.name == "presets-legacy" else ("5", "0"))


def test_verify_shows_the_presets_the_legacy_router_serves_without_a_row(tmp_path, run_esbgen):
    root = tmp_path / "presets-legacy"
    shutil.copytree(FIXTURES / "presets-legacy", root)
    assert run_esbgen("clone", "umgr", "--as", "umgr_ce", "--esb-root", root).exit_code == 0
    verify = run_esbgen("verify", "umgr_ce", "--esb-root", root)
    assert "UMGR_CE (umgr_ce): 4 channel(s) served" in verify.output  # one row, three presets without
    assert "/umgr_ce/get_token/: served by generic.umgr_ce.get_user" in verify.output
