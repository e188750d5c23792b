"""ITSM (bk_itsm): its component strips ``^/o/bk_itsm`` and reads BK_ITSM_URL."""

from __future__ import annotations

from pathlib import Path

from esbgen import hookimpl
from esbgen.builtin.saas_confapis import ConfapisProxy
from esbgen.plan import PostStep
from esbgen.pyedit import Rewrite
from esbgen.saas import app_literal, setting_literal

ITSM_APP = "bk_itsm"
ITSM_HOST_SETTING = "BK_ITSM_URL"


class Itsm(ConfapisProxy):
    name = "itsm"
    description = "bk_itsm (IT service management): rewrites ^/o/bk_itsm and BK_ITSM_URL"
    specificity = 20
    template = Path(__file__).parent / "templates" / "itsm-system"

    def recognizes(self, source) -> bool:
        if source.confapis_dir is None:
            return False
        return any(c.class_name == "ItsmComponent" for c in source.components) or (
            super().source_app_code(source) == ITSM_APP
        )

    def source_app_code(self, source) -> str | None:
        return super().source_app_code(source) or ITSM_APP

    def host_settings(self, source) -> list[str]:
        names = super().host_settings(source)
        return names if ITSM_HOST_SETTING in names else [*names, ITSM_HOST_SETTING]

    def literal_rewrites(self, source, target, source_app) -> list[Rewrite]:
        rewrites = super().literal_rewrites(source, target, source_app)
        if source_app != ITSM_APP:
            rewrites.append(Rewrite(app_literal(ITSM_APP), "app_code", "app path /o/bk_itsm"))
        if not any(r.var == "host_setting" and ITSM_HOST_SETTING in r.pattern.pattern for r in rewrites):
            rewrites.append(Rewrite(setting_literal(ITSM_HOST_SETTING), "host_setting", "host setting"))
        return rewrites


@hookimpl
def esbgen_saas_types():
    return [Itsm()]


@hookimpl
def esbgen_plan_steps(plan, command, options):
    if command == "clone" and not plan.is_empty and options.get("saas_type") == "itsm":
        return [PostStep("grant the new app access to the ITSM services it calls (ITSM admin, service settings)")]
    return None
