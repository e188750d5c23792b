"""Step kinds provided for one test, through the esbgen_step_kinds hook as a plugin provides them."""

from __future__ import annotations

import pytest


def _provider(kinds):
    from types import SimpleNamespace

    from esbgen import hookimpl

    @hookimpl
    def esbgen_step_kinds():
        return list(kinds)

    return SimpleNamespace(esbgen_step_kinds=esbgen_step_kinds)


@pytest.fixture
def provide_kinds():
    """``provide_kinds(kind, ...)`` registers a plugin answering esbgen_step_kinds with them until the test ends
    (it returns the plugin, for a test that unregisters it sooner)."""
    from esbgen.plugins import get_plugin_manager

    pm = get_plugin_manager()
    providers = []

    def provide(*kinds):
        provider = _provider(kinds)
        pm.register(provider, name=f"test-step-kinds-{len(providers)}-{id(provider)}")
        providers.append(provider)
        return provider

    yield provide
    for provider in providers:
        if pm.is_registered(provider):
            pm.unregister(provider)
