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
def esbgen_host_setting(target: CloneTarget, source: ComponentSet | None, old: str | None) -> str | None:
    """Return the name of the settings entry holding the new system's host.

    :param target: the system being made (``target.name``, ``target.system_name``, ``target.app_code``).
    :param source: the system a clone is made from; None for ``esbgen new``.
    :param old: the source's main host setting (the first one its code reads, e.g. ``BK_SOPS_URL``
        or ``USERMGR_HOST``); None for ``esbgen new``. A source's further host settings are renamed
        in their own style (``esbgen.rules.renamed_setting``); this hook names the main one.

    The first non-None answer wins. The built-in answer is the old name with the source's
    system name replaced by the clone's (``BK_SOPS_URL`` -> ``BK_SOPS_CE_URL``, ``HOST_CC_V3`` ->
    ``HOST_CC_CE_V3``), and for ``new`` ``BK_<SYSTEM without BK_>_URL``.
    The answer must be an upper-case setting name.
    """


@hookspec
def esbgen_clone_context(context: dict[str, Any], source: ComponentSet | None, target: CloneTarget) -> None:
    """Adjust, in place, the cookiecutter context a clone (or, with ``source`` None, ``esbgen new``) is rendered with."""


@hookspec
def esbgen_plan_steps(plan: Plan, command: str, options: dict[str, Any]) -> list[PostStep] | None:
    """Return steps to add to a plan after its file changes (sync, restart, reminders).

    Called once per run with the complete plan; ``options`` has the keys of
    ``esbgen.runner.OPTION_KEYS`` for every command (docs/plugins.md, "Options every hook gets").
    """


@hookspec
def esbgen_swap_targets() -> list[SwapTarget]:
    """Return the services ``esbgen swap`` can point nginx at (name, kind, upstream)."""


@hookspec
def esbgen_register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``esbgen`` command line."""


@hookspec
def esbgen_check_tree(tree: EsbTree) -> list[str] | None:
    """Return extra problems ``esbgen check`` and every apply should report for a tree."""
