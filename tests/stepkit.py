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
def provide_kinds(register_plugin):
    """``provide_kinds(kind, ...)`` registers a plugin answering esbgen_step_kinds with them until the test ends
    (it returns the plugin, for a test that unregisters it sooner)."""

    def provide(*kinds):
        provider = _provider(kinds)
        return register_plugin(provider, f"test-step-kinds-{id(provider)}")

    return provide
