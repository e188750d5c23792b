"""The hooks a plugin of esbgen can implement.

Every hook is called with keyword arguments; an implementation may accept
any subset of them, as in pytest.  Plugins import the marker from the
package: ``from esbgen import hookimpl``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import click

    from esbgen.domain import CloneTarget, ComponentSet, EsbTree
    from esbgen.plan import Plan, PostStep
    from esbgen.saas import SaasType
    from esbgen.swap import SwapTarget

hookspec = pluggy.HookspecMarker("esbgen")


@hookspec
def esbgen_saas_types() -> list[SaasType]:
    """Return the SaaS types this plugin provides.

    A SaaS type recognises a component set, names the app-specific literals
    and host settings a clone must rewrite, and may ship a cookiecutter
    template for ``esbgen new``.  ``esbgen clone`` uses the most specific
    type that recognises the source.
    """


@hookspec(firstresult=True)
def esbgen_host_setting(target: CloneTarget, source: ComponentSet | None) -> str | None:
    """Return the name of the settings entry holding the new system's host (``source`` is None for ``new``).

    The first non-None answer wins; the built-in answer is
    ``BK_<SYSTEM without BK_>_URL`` (``bk_sops_ce`` -> ``BK_SOPS_CE_URL``).
    """


@hookspec
def esbgen_clone_context(context: dict[str, Any], source: ComponentSet | None, target: CloneTarget) -> None:
    """Adjust, in place, the cookiecutter context a clone (or, with ``source`` None, ``esbgen new``) is rendered with."""


@hookspec
def esbgen_plan_steps(plan: Plan, command: str, options: dict[str, Any]) -> list[PostStep] | None:
    """Return steps to add to a plan after its file changes (sync, restart, reminders)."""


@hookspec
def esbgen_swap_targets() -> list[SwapTarget]:
    """Return the services ``esbgen swap`` can point nginx at (name, kind, upstream)."""


@hookspec
def esbgen_register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``esbgen`` command line."""


@hookspec
def esbgen_check_tree(tree: EsbTree) -> list[str] | None:
    """Return extra problems ``esbgen check`` and every apply should report for a tree."""
