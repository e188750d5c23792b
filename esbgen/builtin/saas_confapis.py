"""The generic confapis proxy: any system whose channels are declared in YAML."""

from __future__ import annotations

from esbgen import hookimpl
from esbgen.saas import ConfapisProxy


@hookimpl
def esbgen_saas_types():
    return [ConfapisProxy()]
