"""Standard operations (bk_sops): its component strips ``^/o/bk_sops`` and reads BK_SOPS_URL."""

from __future__ import annotations

from functools import lru_cache

from esbgen import hookimpl


@lru_cache(maxsize=1)
def sops_type() -> type:
    """The SaaS type's class, made when a command first asks for SaaS types (esbgen.saas is not cheap)."""
    from esbgen.saas import KnownAppProxy

    class Sops(KnownAppProxy):
        name = "sops"
        description = "bk_sops (standard operations): rewrites its ^/o/bk_sops prefix and BK_SOPS_URL"
        app = "bk_sops"
        host_setting = "BK_SOPS_URL"
        component_class = "SopsComponent"

    return Sops


@hookimpl(trylast=True)
def esbgen_saas_types():
    return [sops_type()()]
