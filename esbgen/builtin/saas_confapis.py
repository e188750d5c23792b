"""The generic confapis proxy: any system whose channels are declared in YAML."""

from __future__ import annotations

from pathlib import Path

from esbgen import hookimpl
from esbgen.saas import SaasType

TEMPLATES = Path(__file__).resolve().parents[2] / "cookiecutters"


class ConfapisProxy(SaasType):
    name = "confapis"
    description = "a confapis system proxying to a SaaS app: app code from dest_paths, BK_<APP>_URL host"
    specificity = 10
    template = TEMPLATES / "confapis-system"

    def recognizes(self, source) -> bool:
        return source.confapis_dir is not None


@hookimpl
def esbgen_saas_types():
    return [ConfapisProxy()]
