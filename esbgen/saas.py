"""SaaS types: what varies from one official SaaS to another when its components are cloned.

A type recognises a component set, finds the source app code, names the
settings and literals a clone must rewrite, and may ship a cookiecutter
template for ``esbgen new``.  Plugins subclass ``SaasType`` and return
instances from the ``esbgen_saas_types`` hook.
"""

from __future__ import annotations

import importlib.resources
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esbgen.errors import EsbgenError, Refused, UsageError
from esbgen.edit.python import Rewrite
from esbgen.esb.rules import APP_CODE_RE, APP_PATH_RE, SHARED_SETTINGS, is_host_setting, is_setting_name, refuse_plugin_value

if TYPE_CHECKING:
    from esbgen.esb.model import CloneTarget, ComponentSet

SAAS_TYPE_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
CLASS_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def app_literal(app_code: str) -> re.Pattern[str]:
    """``/o/<app>`` inside a string, as a URL prefix or a regular expression."""
    return re.compile(rf"/o/(?P<old>{re.escape(app_code)})(?![A-Za-z0-9_-])")


def codename_literal(system: str) -> re.Pattern[str]:
    """A codename of one of ``system``'s components inside a string (``generic.v2.usermanage.x``, or the
    ``generic.cmsi.%s`` a component formats): code that calls a component of its own system by name."""
    return re.compile(rf"(?<![A-Za-z0-9_.])generic\.(?:v2\.)?(?P<old>{re.escape(system)})\.")


def setting_literal(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9_])(?P<old>{re.escape(name)})(?![A-Za-z0-9_])")


def _app_counts(source: ComponentSet) -> Counter[str]:
    """How many of the source's dest_paths go to each app, counted once for its channels as read
    (a clone asks four times: at 20,000 channels, 0.15 s each)."""
    known = source.__dict__.get("_esbgen_app_counts")
    if known is not None and known[0] is source.channels and known[1] == len(source.channels):
        return known[2]
    counts: Counter[str] = Counter()
    for channel in source.channels:
        dest = channel.fields.get("dest_path")
        if isinstance(dest, str):
            match = APP_PATH_RE.match(dest)
            if match:
                counts[match.group(1)] += 1
    source.__dict__["_esbgen_app_counts"] = (source.channels, len(source.channels), counts)
    return counts


class SaasType:
    """The generic behaviour; subclasses narrow ``recognizes`` and add literals."""

    name = "generic"
    description = "any component set"
    specificity = 0
    template: Path | None = None  # a cookiecutter template for `esbgen new`

    def recognizes(self, source: ComponentSet) -> bool:
        return True

    def source_app_code(self, source: ComponentSet) -> str | None:
        """The app the source forwards to, read from its dest_paths (``/o/bk_sops/...``)."""
        counts = _app_counts(source)
        if not counts:
            return None
        return counts.most_common(1)[0][0]

    def host_settings(self, source: ComponentSet) -> list[str]:
        """Settings naming the source's own backend, in the order its code reads them; the clone
        gets one of its own for each.

        The platform's entrance (``PAAS_HOST`` ...) is shared by every app behind it, so it stays
        where the source reaches an app through it (``/o/<app>/...``); a system whose backend is
        the platform itself (bk_paas) has it as its own.
        """
        shared_stays = self.source_app_code(source) is not None
        return [
            name
            for name in source.settings_read
            if is_host_setting(name) and not (shared_stays and name in SHARED_SETTINGS)
        ]

    def app_host_setting(self, app_code: str) -> str:
        """The host setting named after an app, for a system retargeted to it: ``bk-sops-ce`` -> ``BK_SOPS_CE_URL``."""
        from esbgen.esb.rules import default_host_setting

        return default_host_setting(app_code.replace("-", "_"))

    def literal_rewrites(self, source: ComponentSet, target: CloneTarget, source_app: str | None,
                         setting_vars: dict[str, str] | None = None) -> list[Rewrite]:
        """What changes in the source's strings: each host setting's name (to the variable
        ``setting_vars`` gives it; ``host_setting`` by default) and the app's ``/o/<app>``."""
        names = self.host_settings(source)
        setting_vars = setting_vars or {name: "host_setting" for name in names}
        rewrites = [Rewrite(setting_literal(name), setting_vars[name], f"host setting {name}") for name in names]
        if source_app:
            rewrites.append(Rewrite(app_literal(source_app), "app_code", f"app path /o/{source_app}"))
        return rewrites

    def __repr__(self) -> str:
        return f"<SaaS type {self.name}>"


TEMPLATES = Path(str(importlib.resources.files("esbgen.cookiecutters")))  # package data (setup.py)


class ConfapisProxy(SaasType):
    """Any system whose channels are declared in YAML and proxied to a SaaS app."""

    name = "confapis"
    description = "a confapis system proxying to a SaaS app: app code from dest_paths, BK_<APP>_URL host"
    specificity = 10
    template = TEMPLATES / "confapis-system"

    def recognizes(self, source: ComponentSet) -> bool:
        return source.confapis_dir is not None


class KnownAppProxy(ConfapisProxy):
    """A confapis proxy of one official SaaS whose app code, host setting and component are known.

    Its literals are rewritten even where the dest_paths do not show them (a component
    that strips ``^/o/<app>``, a host setting read under another spelling).
    """

    app = ""  # e.g. "bk_sops"
    host_setting = ""  # e.g. "BK_SOPS_URL"
    component_class = ""  # e.g. "SopsComponent"
    specificity = 20

    def recognizes(self, source: ComponentSet) -> bool:
        if source.confapis_dir is None:
            return False
        return any(c.class_name == self.component_class for c in source.components) or (
            super().source_app_code(source) == self.app
        )

    def source_app_code(self, source: ComponentSet) -> str | None:
        return super().source_app_code(source) or self.app

    def host_settings(self, source: ComponentSet) -> list[str]:
        names = super().host_settings(source)
        if self.host_setting in names or not source.settings_read:
            return names
        # a Python side that reads the setting under another spelling (the known one comes first)
        return [self.host_setting, *names] if not names else names

    def app_host_setting(self, app_code: str) -> str:
        return self.host_setting if app_code == self.app else super().app_host_setting(app_code)

    def literal_rewrites(self, source: ComponentSet, target: CloneTarget, source_app: str | None,
                         setting_vars: dict[str, str] | None = None) -> list[Rewrite]:
        # host_settings() already names the known setting, so the generic rewrites cover it
        rewrites = super().literal_rewrites(source, target, source_app, setting_vars)
        if source_app != self.app:
            rewrites.append(Rewrite(app_literal(self.app), "app_code", f"app path /o/{self.app}"))
        return rewrites


def all_saas_types() -> list[SaasType]:
    from esbgen.plugins import answers

    types: dict[str, SaasType] = {}
    for plugin, answer in answers("esbgen_saas_types"):
        if not isinstance(answer, (list, tuple)):
            raise refuse_plugin_value(plugin, "from esbgen_saas_types", answer, "is not a list of SaaS types")
        for saas_type in answer:
            validate_saas_type(plugin, saas_type)
            types.setdefault(saas_type.name, saas_type)
    return list(types.values())


def validate_saas_type(plugin: str, saas_type: Any) -> None:
    """What a SaaS type puts into files and commands: its name, and a known app's literals."""
    if not isinstance(saas_type, SaasType):
        raise refuse_plugin_value(plugin, "a SaaS type", saas_type, "is no esbgen.saas.SaasType")
    name = getattr(saas_type, "name", None)
    if not isinstance(name, str) or not SAAS_TYPE_NAME_RE.fullmatch(name):
        raise refuse_plugin_value(plugin, "the SaaS type name", name,
                                  "is not a type name (a lower-case letter, then a-z, 0-9, '_' or '-', at most 64)")
    if isinstance(saas_type, KnownAppProxy):
        checks = (
            ("app", saas_type.app, lambda v: isinstance(v, str) and APP_CODE_RE.fullmatch(v) is not None, "an app code"),
            ("host_setting", saas_type.host_setting, is_setting_name, "a setting name (an upper-case Python identifier)"),
            ("component_class", saas_type.component_class,
             lambda v: isinstance(v, str) and CLASS_NAME_RE.fullmatch(v) is not None, "a class name"),
        )
        for attribute, value, ok, kind in checks:
            if not ok(value):
                raise refuse_plugin_value(plugin, f"SaaS type {name}'s {attribute}", value, f"is not {kind}")


def saas_type_named(name: str, types: list[SaasType] | None = None) -> SaasType:
    """The type ``--type NAME`` asks for."""
    types = all_saas_types() if types is None else types
    for saas_type in types:
        if saas_type.name == name:
            return saas_type
    known = ", ".join(sorted(t.name for t in types)) or "none"
    raise UsageError(f"unknown SaaS type {name!r} (known: {known})")


def select_saas_type(source: ComponentSet, forced: str | None = None) -> SaasType:
    """The most specific type that recognises the source, or the one named by ``--type``."""
    types = all_saas_types()
    if forced:
        return saas_type_named(forced, types)
    candidates = []
    for saas_type in types:
        try:
            recognized = saas_type.recognizes(source)
        except EsbgenError:
            raise
        except Exception as error:
            from esbgen.errors import PluginError

            raise PluginError(saas_type.name, "SaasType.recognizes", error) from error
        if recognized:
            candidates.append(saas_type)
    if not candidates:
        raise Refused(f"no SaaS type recognises {source.name}; use --type")
    candidates.sort(key=lambda t: t.specificity, reverse=True)
    return candidates[0]
