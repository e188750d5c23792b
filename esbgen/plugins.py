"""The one plugin manager: built-ins first, then entry points of group ``esbgen``.

Built-in plugins are modules registered under a name, exactly as an entry
point's object is; ``ESBGEN_DISABLE_PLUGINS=name,...`` blocks any of them.
"""

from __future__ import annotations

import importlib
import os
import sys
from functools import lru_cache
from types import TracebackType
from typing import Any

import pluggy

from esbgen import hookspecs
from esbgen.errors import EsbgenError, PluginError

GROUP = "esbgen"

BUILTIN_PLUGINS = {
    "confapis": "esbgen.builtin.saas_confapis",
    "sops": "esbgen.builtin.saas_sops",
    "python": "esbgen.builtin.saas_python",
    "defaults": "esbgen.builtin.defaults",
    "db": "esbgen.builtin.db_steps",
}


def disabled_plugins() -> set[str]:
    raw = os.environ.get("ESBGEN_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    for name in disabled_plugins():
        pm.set_blocked(name)
    for name, module_name in BUILTIN_PLUGINS.items():
        if pm.is_blocked(name):
            continue
        pm.register(importlib.import_module(module_name), name=name)
    try:
        pm.load_setuptools_entrypoints(GROUP)
    except Exception as error:  # a broken third-party distribution
        raise EsbgenError(f"cannot load esbgen plugins: {type(error).__name__}: {error}") from error
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        raise EsbgenError(f"plugin {pm.get_name(error.plugin)!r} is invalid: {error}") from None
    return pm


def reset_plugin_manager() -> None:
    """Forget the loaded plugins (tests, or after installing a distribution)."""
    get_plugin_manager.cache_clear()


def plugin_origin(pm: pluggy.PluginManager, plugin: object) -> str:
    name = pm.get_name(plugin) or "?"
    if name in BUILTIN_PLUGINS and getattr(plugin, "__name__", None) == BUILTIN_PLUGINS[name]:
        return "built-in"
    for module_plugin, dist in pm.list_plugin_distinfo():
        if module_plugin is plugin:
            return f"entry point of {dist.project_name} {dist.version}"
    return "registered at run time"


def describe_plugins() -> list[dict[str, Any]]:
    pm = get_plugin_manager()
    rows = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin)
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        rows.append({"name": name, "origin": plugin_origin(pm, plugin), "hooks": hooks})
    blocked = sorted(disabled_plugins())
    rows.sort(key=lambda row: (row["origin"] != "built-in", row["name"]))
    for name in blocked:
        rows.append({"name": name, "origin": "disabled by ESBGEN_DISABLE_PLUGINS", "hooks": []})
    return rows


def _plugin_that_raised(pm: pluggy.PluginManager, hook_name: str, tb: TracebackType | None) -> str:
    codes = {}
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        codes[impl.function.__code__] = impl.plugin_name
    innermost = "?"
    while tb is not None:
        name = codes.get(tb.tb_frame.f_code)
        if name is not None:
            innermost = name
        tb = tb.tb_next
    return innermost


def call_hook(hook_name: str, **kwargs: Any) -> Any:
    """Call a hook; a plugin's exception becomes a PluginError naming plugin and hook."""
    pm = get_plugin_manager()
    try:
        return getattr(pm.hook, hook_name)(**kwargs)
    except EsbgenError:
        raise
    except Exception as error:
        plugin = _plugin_that_raised(pm, hook_name, sys.exc_info()[2])
        raise PluginError(plugin, hook_name, error) from error
