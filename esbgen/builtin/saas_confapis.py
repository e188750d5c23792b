"""The generic confapis proxy: any system whose channels are declared in YAML."""

from __future__ import annotations

from esbgen import hookimpl


@hookimpl(trylast=True)
def esbgen_saas_types():
    from esbgen.saas import ConfapisProxy  # here, not above: --help and --version never read a tree

    return [ConfapisProxy()]
