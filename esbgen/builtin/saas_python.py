"""Python-per-API systems: one component class a file, channels preset in esb_conf.py.

A clone of such a system gets its channels through CHANNELS of the custom
conf module, since esb_conf.py belongs to the ESB and is never edited.
"""

from __future__ import annotations

from functools import lru_cache

from esbgen import hookimpl


@lru_cache(maxsize=1)
def python_system_type() -> type:
    """The SaaS type's class, made when a command first asks for SaaS types (esbgen.saas is not cheap)."""
    from esbgen.esb.layout import CUSTOM_CONF, ESB_CONF
    from esbgen.saas import SaasType

    class PythonSystem(SaasType):
        name = "python"
        description = f"components written in Python, one class a file; channels from {ESB_CONF.name} or {CUSTOM_CONF.name}"
        specificity = 5

        def recognizes(self, source) -> bool:
            return source.confapis_dir is None and bool(source.components)

        def source_app_code(self, source) -> str | None:
            return None

    return PythonSystem


@hookimpl(trylast=True)
def esbgen_saas_types():
    return [python_system_type()()]
