"""What ``esbgen swap`` can point nginx at; the targets come from plugins."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SwapTarget:
    """A service behind an nginx upstream: ``esbgen swap <kind> <name> --to HOST:PORT``."""

    kind: str  # "web" or "paasagent"
    name: str  # "paas", "login", "test", ...
    upstream: str  # "OPEN_PAAS", "PAAS_AGENT_TEST", ...
    description: str = ""


def swap_targets() -> list[SwapTarget]:
    from esbgen.plugins import call_hook

    targets: dict[tuple[str, str], SwapTarget] = {}
    for answer in call_hook("esbgen_swap_targets"):
        for target in answer or []:
            targets.setdefault((target.kind, target.name), target)
    return sorted(targets.values(), key=lambda t: (t.kind, t.name))
