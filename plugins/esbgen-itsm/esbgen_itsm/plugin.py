"""ITSM (bk_itsm): its component strips ``^/o/bk_itsm`` and reads BK_ITSM_URL."""

from __future__ import annotations

from pathlib import Path

from esbgen import hookimpl
from esbgen.plan import PostStep
from esbgen.saas import KnownAppProxy


class Itsm(KnownAppProxy):
    name = "itsm"
    description = "bk_itsm (IT service management): rewrites ^/o/bk_itsm and BK_ITSM_URL"
    app = "bk_itsm"
    host_setting = "BK_ITSM_URL"
    component_class = "ItsmComponent"
    template = Path(__file__).parent / "templates" / "itsm-system"


@hookimpl
def esbgen_saas_types():
    return [Itsm()]


@hookimpl
def esbgen_plan_steps(plan, command, options):
    if command == "clone" and not plan.is_empty and options.get("saas_type") == "itsm":
        return [PostStep("grant the new app access to the ITSM services it calls (ITSM admin, service settings)")]
    return None
