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
    from esbgen.steps import StepKind
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


@hookspec
def esbgen_step_kinds() -> list[StepKind]:
    """Return the kinds of external step this plugin applies, reverts and checks for the journal.

    An external step is a change outside the files of the tree: a database row, a running nginx.
    A plan names it by kind (``esbgen.plan.ExternalStep(kind, description, record)``), and the
    journal, which applies plans atomically, looks the kind up here whenever it applies, rolls
    back, recovers or undoes a change with such a step. A journal whose kind no loaded plugin
    provides is refused, naming the kind.

    Each returned object has:

    :param kind: its name (a ``str`` attribute), unique among all plugins: ``db_system``,
        ``db_synced_rows`` (esbgen's built-in plugin ``db``), ``nginx_config`` and
        ``engine_servers`` (the esbgen-nginx plugin).

    and three methods, each called with:

    :param record: the step's record, a JSON-serialisable dict made by the plan and kept in the
        journal (``journal.json``): all that ``revert`` and ``verify`` get, possibly in another
        process after a kill, so it must say everything they need (no passwords: they come from
        the current run's options).
    :param ctx: an ``esbgen.steps.StepContext``: ``root`` (where the change's relative paths start:
        the ESB root, or the host state folder of a swap), ``journal_dir`` and ``journal_id`` (the
        change's folder and id), ``run`` (the run applying or reverting: ``esbgen.runner.Context``,
        whose ``database`` has the credentials the record must not keep; None outside a command),
        and ``checkpoint(name)``, which writes the record to the journal and passes the tests' kill
        point ``name``.

    - ``apply(record, ctx)`` makes the change. Raise to have the whole change rolled back
      (``esbgen.errors.EsbgenError`` for a one-line reason).
    - ``revert(record, ctx)`` takes it back. It must be idempotent and safe whatever point
      ``apply`` reached, none included: rollback, recovery of a killed run and ``esbgen undo``
      all call it, from the record alone. Raise when it cannot (what the step made was changed
      since): the journal names the step and keeps the record so that a later run finishes.
    - ``verify(record, ctx) -> bool``: whether the change is applied and still as ``apply``
      left it. ``esbgen undo`` refuses, changing nothing, when a step says False.
    """
