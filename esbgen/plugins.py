"""The one plugin manager: every entry point of group ``esbgen``, esbgen's built-ins included.

The built-ins are entry points of esbgen's own distribution (pyproject.toml), loaded by pluggy's
loader as any third-party plugin is; their hooks are ``trylast``, so a plugin's answer comes
before a built-in's wherever the distributions are found. ``ESBGEN_DISABLE_PLUGINS=name,...``
blocks any of them. A plugin adds hooks of its own through ``esbgen_addhooks``.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from types import TracebackType
from typing import Any

import pluggy

from esbgen import hookspecs, progress
from esbgen.errors import EsbgenError, PluginError, Refused
from esbgen.journal.steps import StepKind

GROUP = "esbgen"


def disabled_plugins() -> set[str]:
    raw = os.environ.get("ESBGEN_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    # historic: each plugin's esbgen_addhooks is called as it is registered, before its other hooks are checked
    pm.hook.esbgen_addhooks.call_historic(kwargs={"pluginmanager": pm})
    disabled = disabled_plugins()
    for name in disabled:
        pm.set_blocked(name)
    try:
        pm.load_setuptools_entrypoints(GROUP)
    except Exception as error:  # noqa: BLE001 - whatever the plugin's import raised
        raise _failed_to_load(error) from None
    if disabled:
        names = {entry_point.name for entry_point in entry_points(group=GROUP)}
        if disabled - names:
            raise Refused(f"ESBGEN_DISABLE_PLUGINS names no plugin esbgen has: {', '.join(sorted(disabled - names))} "
                          f"(its plugins: {', '.join(sorted(names))})")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        name = pm.get_name(error.plugin)
        raise EsbgenError(f"plugin {name!r} is invalid: {_one_line(error)}; {way_out(name)}") from None
    # a tick of the progress line costs nothing more while no plugin listens
    progress.moment = pass_moment if pm.hook.esbgen_moment.get_hookimpls() else None
    return pm


def _failed_to_load(error: Exception) -> EsbgenError:
    """The one line naming the entry point pluggy was loading when ``error`` came, and the way out."""
    tb = error.__traceback__
    while tb is not None:
        entry_point = next((value for value in tb.tb_frame.f_locals.values() if isinstance(value, EntryPoint)), None)
        if entry_point is not None:
            break
        tb = tb.tb_next
    if entry_point is None:
        return EsbgenError(f"a plugin failed to load: {type(error).__name__}: {_one_line(error)}")
    name, dist = entry_point.name, getattr(entry_point, "dist", None)
    if isinstance(error, pluggy.PluginValidationError):
        return EsbgenError(f"plugin {name!r} is invalid: {_one_line(error)}; {way_out(name)}")
    origin = f" (entry point {entry_point.value} of {dist.name} {dist.version})" if dist is not None else ""
    return EsbgenError(f"plugin {name!r}{origin} failed to load: {type(error).__name__}: {_one_line(error)}; "
                       f"{way_out(name)}")


def way_out(name: str | None) -> str:
    """How an operator runs esbgen without a plugin that keeps it from starting."""
    return f"ESBGEN_DISABLE_PLUGINS={name} runs esbgen without it"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."


def reset_plugin_manager() -> None:
    """Forget the loaded plugins (tests, or after installing a distribution)."""
    get_plugin_manager.cache_clear()


def plugin_origin(pm: pluggy.PluginManager, plugin: object) -> str:
    for loaded, dist in pm.list_plugin_distinfo():
        if loaded is plugin:
            name = dist.metadata["Name"]
            return "built-in" if name == GROUP else f"entry point of {name} {dist.version}"
    return "registered at run time"


def describe_plugins() -> list[dict[str, Any]]:
    pm = get_plugin_manager()
    rows = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin)
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        rows.append({"name": name, "origin": plugin_origin(pm, plugin), "hooks": hooks})
    rows.sort(key=lambda row: (row["origin"] != "built-in", row["name"]))
    for name in sorted(disabled_plugins()):
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


def step_kinds() -> dict[str, StepKind]:
    """Every step kind the loaded plugins provide, by name (the first plugin to name a kind wins)."""
    kinds: dict[str, StepKind] = {}
    for answer in reversed(call_hook("esbgen_step_kinds")):  # pluggy answers last-registered (and trylast) last
        for kind in answer or []:
            kinds.setdefault(kind.kind, kind)
    return kinds


def step_kind(kind: str, where: str = "this change") -> StepKind:
    """The kind named ``kind``, or a refusal naming it and what would provide it."""
    found = step_kinds().get(kind)
    if found is None:
        raise Refused(
            f"{where} has a step of kind {kind!r}, which no loaded plugin provides: install the plugin that "
            "provides it, or take it out of ESBGEN_DISABLE_PLUGINS; nothing was changed"
        )
    return found


def pass_moment(moment: str) -> None:
    """Tell the plugins that implement ``esbgen_moment`` that the run passes ``moment``."""
    call_hook("esbgen_moment", moment=moment)
