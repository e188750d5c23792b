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

    from esbgen.esb.model import CloneTarget, ComponentSet, EsbTree
    from esbgen.plan import Plan, PostStep
    from esbgen.journal.steps import StepKind

hookspec = pluggy.HookspecMarker("esbgen")


@hookspec(historic=True)
def esbgen_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    """Add the hookspecs of hooks this plugin owns, as pytest's ``pytest_addhooks`` does.

    Called for each plugin as it is registered, before its other hooks are checked, so a plugin
    may implement the hooks it adds (esbgen-nginx adds ``esbgen_swap_targets`` this way), and
    any plugin registered later may implement them too.

    :param pluginmanager: esbgen's ``pluggy.PluginManager``: call
        ``pluginmanager.add_hookspecs(module_or_class)`` with the plugin's hookspecs, marked with
        ``pluggy.HookspecMarker("esbgen")``.
    :returns: nothing; the answer is ignored.
    """


@hookspec
def esbgen_moment(moment: str) -> None:
    """Called as a run passes a named moment where a kill or a signal must leave the tree recoverable.

    The tests implement it (tests/faults) to kill the run there (``ESBGEN_CRASH_AT``) or interrupt it
    (``ESBGEN_INTERRUPT_AT``); a plugin may also log the moments.

    :param moment: the moment's name: a point of the journal (``prepare-tree``, ``prepare-files``,
        ``prepared``, ``applying``, ``tree-backed-up``, ``op-N`` after step N, ``ops-done``,
        ``applied``, ``rolling-back``, ``rollback-op-N``, ``undoing``, ``undo-op-N``), a step kind's
        ``ctx.checkpoint(name)``, ``phase:NAME`` as a phase of the progress line starts (``reading``,
        ``rendering``, ``checking``, ``applying``, ...) and ``phase:NAME:DONE`` as its items are done
        (``DONE`` counts them; items counted together give one moment).
    :returns: nothing; the answer is ignored.
    """


@hookspec
def esbgen_saas_types() -> list:  # of esbgen.saas.SaasType, not imported: esbgen.saas calls this hook
    """Return the SaaS types this plugin provides.

    A SaaS type recognises a component set, names the app-specific literals
    and host settings a clone must rewrite, and may ship a cookiecutter
    template for ``esbgen new --type NAME`` (docs/plugins.md, "The template of
    a SaaS type").  ``esbgen clone`` uses the most specific type that
    recognises the source.

    :returns: a list of :class:`esbgen.saas.SaasType` instances.  Each one's
        ``name`` must be a type name (a lower-case letter, then ``a-z``, ``0-9``,
        ``_`` or ``-``); a :class:`esbgen.saas.KnownAppProxy` needs an app code
        in ``app``, a setting name in ``host_setting`` and a class name in
        ``component_class``.  Anything else is refused, naming the plugin,
        before a file is written.  The first type of a name wins.
    """


@hookspec(firstresult=True)
def esbgen_host_setting(target: CloneTarget, source: ComponentSet | None, old: str | None) -> str | None:
    """Return the name of the settings entry holding the new system's host.

    :param target: the system being made: ``target.name`` (its folder),
        ``target.system_name``, ``target.app_code``, ``target.label``.
    :param source: the system a clone is made from (an :class:`esbgen.esb.model.ComponentSet`);
        None for ``esbgen new``.
    :param old: the source's main host setting (the first one its code reads, e.g. ``BK_SOPS_URL``
        or ``USERMGR_HOST``); None for ``esbgen new``. A source's further host settings are renamed
        in their own style (``esbgen.esb.rules.renamed_setting``); this hook names the main one.
    :returns: the setting's name, or None to leave the choice to the next plugin.
        The first answer that is not None wins. It must be an upper-case Python identifier
        (``A-Z``, ``0-9``, ``_``), not a setting another system reads, nor one the tree's
        settings file uses for something other than a host; else the command is refused,
        naming the plugin and the value. The built-in answer is the old name with the
        source's system name replaced by the clone's (``BK_SOPS_URL`` -> ``BK_SOPS_CE_URL``,
        ``HOST_CC_V3`` -> ``HOST_CC_CE_V3``), and for ``new`` ``BK_<SYSTEM without BK_>_URL``.
    """


@hookspec
def esbgen_clone_context(context: dict[str, Any], source: ComponentSet | None, target: CloneTarget) -> None:
    """Adjust, in place, the cookiecutter context a clone (or ``esbgen new``) is rendered with.

    :param context: the template variables: ``system``, ``SYSTEM_NAME``, ``app_code``,
        ``host_setting`` (``host_setting_2`` ... for a source's further host settings), and,
        for ``new``, ``component_class`` and ``component_name``; ``_components`` is the folder
        the template renders into. A plugin that ships a template may add variables it uses;
        a clone whose ``system`` or ``_components`` a plugin changes is refused (its folders
        are named after the request).
    :param source: the system a clone is made from; None for ``esbgen new``.
    :param target: the system being made (see :func:`esbgen_host_setting`).
    :returns: nothing; the answer is ignored.
    """


@hookspec
def esbgen_plan_steps(plan: Plan, command: str, options: dict[str, Any]) -> list[PostStep] | None:
    """Return steps to add to a plan after its file changes (sync, restart, reminders).

    Called once per run, with the complete plan.

    :param plan: the :class:`esbgen.plan.Plan` computed so far (``plan.is_empty``, ``plan.title``,
        ``plan.root``, its file changes).
    :param command: the esbgen command: ``clone``, ``new``, ``retarget``, ``sync-edition``,
        ``register``, ``apply-plan``, ``undo``.
    :param options: the same keys for every command, those of ``esbgen.runner.OPTION_KEYS``
        (docs/plugins.md, "Options every hook gets"); a key the command has no value for is None.
    :returns: a list of :class:`esbgen.plan.PostStep` (a reminder, a command to run, or a callable),
        or None. In a dry run the steps are shown and not run.
    """


@hookspec
def esbgen_register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``esbgen`` command line.

    :param cli: the root ``esbgen`` :class:`click.Group`; add to it with ``cli.command()``,
        ``cli.group()`` or ``cli.add_command``. The commands appear in ``esbgen --help`` and in
        ``python manage.py esbgen``.
    :returns: nothing; the answer is ignored.
    """


@hookspec
def esbgen_check_tree(tree: EsbTree) -> list[str] | None:
    """Return extra problems ``esbgen check`` should report for a tree.

    :param tree: the :class:`esbgen.esb.model.EsbTree` read from the ESB root (``tree.root``,
        ``tree.systems``, ``tree.registered``, ``tree.generation``).
    :returns: a list of problem lines (each one line of text), or None. Any problem makes
        ``esbgen check`` exit 1.
    """


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
    :param ctx: an ``esbgen.journal.steps.StepContext``: ``root`` (where the change's relative paths start:
        the ESB root, or the host state folder of a swap), ``journal_dir`` and ``journal_id`` (the
        change's folder and id), ``run`` (the run applying or reverting: ``esbgen.runner.Context``,
        whose ``database`` has the credentials the record must not keep; None outside a command),
        and ``checkpoint(name)``, which writes the record to the journal and passes the moment
        ``name`` (:func:`esbgen_moment`, where the tests kill the run).

    - ``apply(record, ctx)`` makes the change. Raise to have the whole change rolled back
      (``esbgen.errors.EsbgenError`` for a one-line reason).
    - ``revert(record, ctx)`` takes it back. It must be idempotent and safe whatever point
      ``apply`` reached, none included: rollback, recovery of a killed run and ``esbgen undo``
      all call it, from the record alone. Raise when it cannot (what the step made was changed
      since): the journal names the step and keeps the record so that a later run finishes.
    - ``verify(record, ctx) -> bool``: whether the change is applied and still as ``apply``
      left it. ``esbgen undo`` refuses, changing nothing, when a step says False.
    - optionally ``describe_revert(record) -> list[str]``: what ``revert`` does, one line each, for
      ``esbgen undo --dry-run``.

    :returns: a list of such objects (``esbgen.journal.steps.StepKind``), or None. The first plugin (in load
        order, built-ins first) to name a kind provides it.
    """
