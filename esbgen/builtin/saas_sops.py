"""Standard operations (bk_sops): its component strips ``^/o/bk_sops`` and reads BK_SOPS_URL."""

from __future__ import annotations

from esbgen import hookimpl
from esbgen.saas import KnownAppProxy


class Sops(KnownAppProxy):
    name = "sops"
    description = "bk_sops (standard operations): rewrites its ^/o/bk_sops prefix and BK_SOPS_URL"
    app = "bk_sops"
    host_setting = "BK_SOPS_URL"
    component_class = "SopsComponent"


@hookimpl
def esbgen_saas_types():
    return [Sops()]
