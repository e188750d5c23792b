"""The hook this plugin owns, added to esbgen's through ``esbgen_addhooks``: what ``esbgen swap`` can
point nginx at. Any plugin may answer it; this one answers with the PaaS's own services."""

from __future__ import annotations

from dataclasses import dataclass

import pluggy

hookspec = pluggy.HookspecMarker("esbgen")


@dataclass(frozen=True)
class SwapTarget:
    """A service behind an nginx upstream: ``esbgen swap <kind> <name> --to HOST:PORT``."""

    kind: str  # "web" or "paasagent"
    name: str  # "paas", "login", "test", ...
    upstream: str  # "OPEN_PAAS", "PAAS_AGENT_TEST", ...
    description: str = ""


@hookspec
def esbgen_swap_targets() -> list[SwapTarget]:
    """Return the services ``esbgen swap`` can point nginx at.

    :returns: a list of :class:`esbgen_nginx.hookspecs.SwapTarget` (``kind``, ``name``, ``upstream``,
        ``description``); the first target of a (kind, name) wins.
    """


def swap_targets() -> list[SwapTarget]:
    from esbgen.plugins import call_hook

    targets: dict[tuple[str, str], SwapTarget] = {}
    for answer in call_hook("esbgen_swap_targets"):
        for target in answer or []:
            targets.setdefault((target.kind, target.name), target)
    return sorted(targets.values(), key=lambda t: (t.kind, t.name))
