"""The plugin as esbgen finds it: through its entry point, the plugin manager and the hooks."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import click
import pytest

from esbgen import plugins
from esbgen_nginx.hookspecs import SwapTarget, swap_targets
from nginx_harness import run_esbgen

EXPECTED = {
    ("web", "paas"): "OPEN_PAAS",
    ("web", "login"): "OPEN_PAAS_LOGIN",
    ("web", "appengine"): "OPEN_PAAS_APPENGINE",
    ("web", "esb"): "OPEN_PAAS_ESB",
    ("paasagent", "test"): "PAAS_AGENT_TEST",
    ("paasagent", "prod"): "PAAS_AGENT_PROD",
}


def test_the_entry_point_is_installed():
    [point] = [ep for ep in entry_points(group="esbgen") if ep.name == "nginx"]
    assert point.value == "esbgen_nginx.plugin"
    assert point.dist is not None and point.dist.name == "esbgen-nginx"


def test_the_plugin_manager_lists_it_as_an_entry_point():
    [row] = [row for row in plugins.describe_plugins() if row["name"] == "nginx"]
    assert row["origin"].startswith("entry point of esbgen-nginx ")
    assert {"esbgen_register_commands", "esbgen_swap_targets"} <= set(row["hooks"])


def test_swap_targets_come_through_the_core():
    ours = {(t.kind, t.name): t for t in swap_targets() if (t.kind, t.name) in EXPECTED}
    assert {key: t.upstream for key, t in ours.items()} == EXPECTED
    assert all(isinstance(t, SwapTarget) and t.description for t in ours.values())


def test_the_hook_adds_the_swap_group_to_a_root_group():
    root = click.Group(name="esbgen")
    plugins.call_hook("esbgen_register_commands", cli=root)
    assert "swap" in root.commands
    ctx = click.Context(root)
    swap = root.commands["swap"]
    assert {"web", "paasagent", "targets"} <= set(swap.list_commands(ctx))
    result = run_esbgen(["swap", "web", "--help"], root=root)
    assert result.exit_code == 0
    assert ["paas", "upstream", "OPEN_PAAS"] in [line.split() for line in result.stdout.splitlines()]
    assert "--nginx-server-root" in result.stdout and "--nginx-ctl" in result.stdout


def test_a_kind_from_another_plugin_becomes_a_command():
    from esbgen import hookimpl

    class Extra:
        @hookimpl
        def esbgen_swap_targets(self):
            return [SwapTarget("monitor", "grafana", "BK_GRAFANA", "dashboards")]

    pm = plugins.get_plugin_manager()
    extra = Extra()
    pm.register(extra, name="test-extra-targets")
    try:
        result = run_esbgen(["swap", "monitor", "--help"])
        assert result.exit_code == 0, result.output
        assert ["grafana", "upstream", "BK_GRAFANA"] in [line.split() for line in result.stdout.splitlines()]
    finally:
        pm.unregister(extra)


def test_disabling_the_plugin_removes_its_targets():
    try:
        with pytest.MonkeyPatch.context() as patch:
            blocked = plugins.disabled_plugins() | {"nginx"}
            patch.setenv("ESBGEN_DISABLE_PLUGINS", ",".join(sorted(blocked)))
            plugins.reset_plugin_manager()
            assert not hasattr(plugins.get_plugin_manager().hook, "esbgen_swap_targets")  # the plugin owns the hook
            root = click.Group(name="esbgen")
            plugins.call_hook("esbgen_register_commands", cli=root)
            assert "swap" not in root.commands
    finally:
        plugins.reset_plugin_manager()


def test_importing_the_plugin_module_stays_cheap():
    code = "import sys, esbgen_nginx.plugin; print(sorted(m for m in ('crossplane', 'click') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "crossplane" not in out
