"""Standard operations (bk_sops): its component strips ``^/o/bk_sops`` and reads BK_SOPS_URL."""

from __future__ import annotations

from esbgen import hookimpl
from esbgen.builtin.saas_confapis import ConfapisProxy
from esbgen.saas import Rewrite, app_literal, setting_literal

SOPS_APP = "bk_sops"
SOPS_HOST_SETTING = "BK_SOPS_URL"


class Sops(ConfapisProxy):
    name = "sops"
    description = "bk_sops (standard operations): rewrites its ^/o/bk_sops prefix and BK_SOPS_URL"
    specificity = 20

    def recognizes(self, source) -> bool:
        if source.confapis_dir is None:
            return False
        return any(c.class_name == "SopsComponent" for c in source.components) or (
            super().source_app_code(source) == SOPS_APP
        )

    def source_app_code(self, source) -> str | None:
        return super().source_app_code(source) or SOPS_APP

    def host_settings(self, source) -> list[str]:
        names = super().host_settings(source)
        return names if SOPS_HOST_SETTING in names else [*names, SOPS_HOST_SETTING]

    def literal_rewrites(self, source, target, source_app):
        rewrites = super().literal_rewrites(source, target, source_app)
        if source_app != SOPS_APP:
            rewrites.append(Rewrite(app_literal(SOPS_APP), "app_code", "app path /o/bk_sops"))
        if not any(r.var == "host_setting" and SOPS_HOST_SETTING in r.pattern.pattern for r in rewrites):
            rewrites.append(Rewrite(setting_literal(SOPS_HOST_SETTING), "host_setting", "host setting"))
        return rewrites


@hookimpl
def esbgen_saas_types():
    return [Sops()]
