"""The plugin system: built-ins like entry points, hooks, failures, disabling."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest

from conftest import REPO, snapshot
from esbgen import hookimpl
from esbgen.plan import PostStep
from esbgen.plugins import call_hook, reset_plugin_manager


def test_builtins_are_listed_with_their_hooks(run_esbgen):
    result = run_esbgen("plugins")
    assert result.exit_code == 0
    for name in ("confapis", "sops", "python", "defaults"):
        assert re.search(rf"^{name}  \(built-in\)$", result.output, re.M), name
    assert "esbgen_saas_types" in result.output and "esbgen_host_setting" in result.output


def test_a_throwaway_plugin_adjusts_the_clone_and_adds_steps(esb_root, run_esbgen, register_plugin):
    class Throwaway:
        @hookimpl
        def esbgen_host_setting(self, target):
            return f"CORP_{target.name.upper()}_HOST"

        @hookimpl
        def esbgen_plan_steps(self, command, options):
            return [PostStep(f"tell the team about {options['new']}")]

    register_plugin(Throwaway(), "throwaway")
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    assert "tell the team about bk_sops_ce" in result.output
    configs = (esb_root / "components/bk/apisv2/bk_sops_ce/toolkit/configs.py").read_text()
    assert 'getattr(settings, "CORP_BK_SOPS_CE_HOST", "")' in configs
    listing = run_esbgen("plugins").output
    assert "throwaway  (registered at run time)" in listing


def test_a_plugin_that_raises_is_named_and_nothing_changes(esb_root, run_esbgen, register_plugin):
    class Broken:
        @hookimpl
        def esbgen_clone_context(self, context):
            raise RuntimeError("boom")

    register_plugin(Broken(), "broken")
    before = snapshot(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 1
    assert result.stderr.strip() == "esbgen: error: plugin 'broken' failed in hook esbgen_clone_context: RuntimeError: boom"
    assert snapshot(esb_root) == before
    assert not (esb_root / ".esbgen" / "journal").exists()


@pytest.mark.parametrize("key, value", [("system", "bk_sops_other"), ("_components", "elsewhere")])
def test_a_plugin_that_renames_the_clones_folders_is_refused_and_nothing_changes(esb_root, run_esbgen, register_plugin,
                                                                                   key, value):
    class Renamer:
        @hookimpl
        def esbgen_clone_context(self, context):
            context[key] = value

    register_plugin(Renamer(), "renamer")
    before = snapshot(esb_root)
    had_state = (esb_root / ".esbgen").exists()
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 1
    expected = "bk_sops_ce" if key == "system" else "components"
    assert result.stderr.strip() == (f"esbgen: error: a plugin changed the clone's {key!r} to {value!r}; "
                                     f"the clone's folders are named after {expected!r}")
    assert snapshot(esb_root) == before and (esb_root / ".esbgen").exists() == had_state


def test_a_saas_type_that_raises_is_named(esb_root, run_esbgen, register_plugin):
    from esbgen.saas import SaasType

    class Picky(SaasType):
        name = "picky"
        specificity = 99

        def recognizes(self, source):
            raise KeyError("no idea")

    class Provider:
        @hookimpl
        def esbgen_saas_types(self):
            return [Picky()]

    register_plugin(Provider(), "picky-provider")
    before = snapshot(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 1
    assert "plugin 'picky' failed in hook SaasType.recognizes: KeyError" in result.stderr
    assert snapshot(esb_root) == before


def test_the_most_specific_type_wins_and_type_forces_one(esb_root, run_esbgen):
    from esbgen.esb.tree import load_tree
    from esbgen.saas import select_saas_type

    tree = load_tree(esb_root)
    assert select_saas_type(tree.systems["sops"]).name == "sops"
    assert select_saas_type(tree.systems["itsm"]).name in ("confapis", "itsm")
    assert select_saas_type(tree.systems["cc"]).name == "python"
    assert select_saas_type(tree.systems["sops"], "confapis").name == "confapis"
    forced = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--type", "confapis", "--esb-root", esb_root)
    assert forced.exit_code == 0 and "SaaS type confapis" in forced.output


def test_plugins_can_be_disabled_by_name(esb_root, run_esbgen, monkeypatch):
    monkeypatch.setenv("ESBGEN_DISABLE_PLUGINS", "sops, python")
    reset_plugin_manager()
    try:
        listing = run_esbgen("plugins").output
        assert "sops  (disabled by ESBGEN_DISABLE_PLUGINS)" in listing
        assert not re.search(r"^sops  \(built-in\)", listing, re.M)
        result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
        assert result.exit_code == 0 and "SaaS type confapis" in result.output
        refused = run_esbgen("clone", "cc", "--as", "cc_ce", "--esb-root", esb_root)
        assert refused.exit_code == 1 and "no SaaS type recognises cc; use --type" in refused.stderr
    finally:
        monkeypatch.delenv("ESBGEN_DISABLE_PLUGINS")
        reset_plugin_manager()


def test_an_unknown_name_to_disable_is_refused_in_one_line(esb_root, run_esbgen, monkeypatch):
    monkeypatch.setenv("ESBGEN_DISABLE_PLUGINS", "sops,nosuch")
    reset_plugin_manager()
    try:
        before = snapshot(esb_root)
        refused = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
        assert refused.exit_code == 1 and refused.output == ""
        assert refused.stderr.startswith("esbgen: error: ESBGEN_DISABLE_PLUGINS names no plugin esbgen has: nosuch "
                                         "(its plugins: confapis, db, defaults, ")
        assert refused.stderr.count("\n") == 1 and snapshot(esb_root) == before
    finally:
        monkeypatch.delenv("ESBGEN_DISABLE_PLUGINS")
        reset_plugin_manager()


def test_plugins_add_commands(register_plugin):
    class Commands:
        @hookimpl
        def esbgen_register_commands(self, cli):
            @cli.command()
            def hello():
                click.echo("hello")

    register_plugin(Commands(), "commands")
    group = click.Group("esbgen")
    call_hook("esbgen_register_commands", cli=group)
    assert "hello" in group.commands


def test_a_plugin_adds_its_own_hooks_and_others_implement_them(register_plugin):
    import pluggy

    class Specs:
        @pluggy.HookspecMarker("esbgen")
        def esbgen_greetings(self, name):
            """Return a greeting for ``name``."""

    class Owner:
        @hookimpl
        def esbgen_addhooks(self, pluginmanager):
            pluginmanager.add_hookspecs(Specs)

        @hookimpl
        def esbgen_greetings(self, name):
            return f"hello {name}"

    class Other:
        @hookimpl
        def esbgen_greetings(self, name):
            return f"hi {name}"

    register_plugin(Owner(), "owner")
    register_plugin(Other(), "other")
    assert call_hook("esbgen_greetings", name="ops") == ["hi ops", "hello ops"]


def test_an_unknown_hook_name_is_refused_at_load(monkeypatch, tmp_path, run_esbgen):
    (tmp_path / "typo_plugin.py").write_text("from esbgen import hookimpl\n\n@hookimpl\ndef esbgen_saas_typez():\n    return []\n")
    info = tmp_path / "typo_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: typo-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[esbgen]\ntypo = typo_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reset_plugin_manager()
    try:
        result = run_esbgen("plugins")
        assert result.exit_code == 1
        assert "plugin 'typo' is invalid" in result.stderr and "esbgen_saas_typez" in result.stderr
    finally:
        monkeypatch.undo()
        reset_plugin_manager()


def test_every_hook_is_documented_with_its_arguments():
    import esbgen.hookspecs as hookspecs

    docs = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    tree = ast.parse(Path(hookspecs.__file__).read_text(encoding="utf-8"))
    hooks = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("esbgen_")]
    assert hooks
    for hook in hooks:
        signature = f"### {hook.name}({', '.join(arg.arg for arg in hook.args.args)})"
        assert signature in docs, f"{hook.name} is not documented as '{signature}' in docs/plugins.md"
        section = docs.split(signature, 1)[1].split("\n### ", 1)[0]
        assert "```python" in section, f"{hook.name} has no example in docs/plugins.md"
