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
from esbgen.errors import EsbgenError, PluginError, Refused

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
    installed = _load_entry_points(pm)
    unknown = disabled_plugins() - set(BUILTIN_PLUGINS) - installed
    if unknown:
        raise Refused(f"ESBGEN_DISABLE_PLUGINS names no plugin esbgen has: {', '.join(sorted(unknown))} "
                          f"(its plugins: {', '.join(sorted(set(BUILTIN_PLUGINS) | installed))})")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        name = pm.get_name(error.plugin)
        raise EsbgenError(f"plugin {name!r} is invalid: {_one_line(error)}; {way_out(name)}") from None
    return pm


def way_out(name: str | None) -> str:
    """How an operator runs esbgen without a plugin that keeps it from starting."""
    return f"ESBGEN_DISABLE_PLUGINS={name} runs esbgen without it"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _load_entry_points(pm: pluggy.PluginManager) -> set[str]:
    """Every entry point of group ``esbgen``, one at a time, so that the one that fails is named; their names.

    A plugin that cannot be imported (ImportError, a SyntaxError, any error its module raises)
    stops the command in one line with the plugin's name, its distribution and the way out.
    """
    from importlib.metadata import entry_points

    # one scan of the installed distributions (pluggy's loader scans them all again for each name)
    names = set()
    for entry_point in entry_points(group=GROUP):
        name = entry_point.name
        names.add(name)
        if pm.is_blocked(name) or pm.get_plugin(name) is not None:
            continue
        try:
            pm.register(entry_point.load(), name=name)
            _ENTRY_POINT_DISTS[name] = getattr(entry_point, "dist", None)
        except Exception as error:  # noqa: BLE001 - whatever the plugin's import raised
            dist = getattr(entry_point, "dist", None)
            origin = f" (entry point {entry_point.value} of {dist.name} {dist.version})" if dist is not None else ""
            raise EsbgenError(f"plugin {name!r}{origin} failed to load: {type(error).__name__}: {_one_line(error)}; "
                              f"{way_out(name)}") from None
    return names


_ENTRY_POINT_DISTS: dict[str, Any] = {}  # plugin name -> the distribution whose entry point it is


def reset_plugin_manager() -> None:
    """Forget the loaded plugins (tests, or after installing a distribution)."""
    get_plugin_manager.cache_clear()
    _ENTRY_POINT_DISTS.clear()


def plugin_origin(pm: pluggy.PluginManager, plugin: object) -> str:
    name = pm.get_name(plugin) or "?"
    if name in BUILTIN_PLUGINS and getattr(plugin, "__name__", None) == BUILTIN_PLUGINS[name]:
        return "built-in"
    dist = _ENTRY_POINT_DISTS.get(name)
    if dist is not None and pm.get_plugin(name) is plugin:
        return f"entry point of {dist.metadata['Name']} {dist.version}"
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


def answers(hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Each implementation's answer with the name of its plugin, in pluggy's calling order.

    For the hooks whose answers go into files: a bad value is refused naming the plugin that
    gave it. ``firstresult`` hooks stop at the first answer that is not None, as pluggy does.
    """
    pm = get_plugin_manager()
    caller = getattr(pm.hook, hook_name)
    first_only = bool(caller.spec and caller.spec.opts.get("firstresult"))
    found = []
    for impl in reversed(caller.get_hookimpls()):  # pluggy calls the last registered (and tryfirst) first
        if impl.hookwrapper or getattr(impl, "wrapper", False):
            continue
        try:
            result = impl.function(*(kwargs[name] for name in impl.argnames))
        except EsbgenError:
            raise
        except Exception as error:
            raise PluginError(impl.plugin_name, hook_name, error) from error
        if result is None:
            continue
        found.append((impl.plugin_name, result))
        if first_only:
            break
    return found


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
