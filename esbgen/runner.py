"""One runner for every command: lock, recovery, plan, plugin steps, dry run, apply, summary, post-steps.

A command is an ``Operation``: it says where its lock and journal live (``store``), makes its
complete plan (``make_plan``: files, rows, service steps), and words its empty plan and its
summary. ``run`` does the rest, the same way for every command:

1. a real run takes the lock of the store and rolls back what a killed run left; a dry run (and
   a read-only command) only recovers when a change is unfinished;
2. the plan is made in a scratch folder (beside the store for a real run, so staged files move
   into place by rename; in /tmp for a dry run);
3. ``esbgen_plan_steps`` is called once, with the options of ``plugin_options`` (the same keys
   for every command, see docs/plugins.md);
4. ``--plan-out`` writes the plan and stops; a dry run prints it and stops;
5. an empty plan is one rule: one line (``Nothing to do: ...``) and the plan's notes, then the
   runnable post-steps, which the operator asked for and which still make sense (a sync, a
   restart), exit 0;
6. otherwise the plan is printed, applied through the journal, summarised, and its post-steps run.

Every failure leaves as a typed error of ``esbgen.errors``: ``Refused`` before any change,
``RolledBack`` or ``RollbackIncomplete`` from the journal, ``StepFailed`` when a post-step fails
after the change is kept, ``Interrupted`` with its ``tree_state``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from esbgen.errors import (APPLIED, ROLLED_BACK, UNCHANGED, EsbgenError, Interrupted, Refused, RollbackIncomplete,
                           RolledBack, StepFailed, UsageError, signal_name)
from esbgen.fsutil import DISK_FULL

if TYPE_CHECKING:  # pragma: no cover
    from esbgen.db.connection import Target
    from esbgen.plan import Plan
    from esbgen.services import ServiceOptions

Say = Callable[[str], None]

# The keys of ``options`` every ``esbgen_plan_steps`` implementation gets, whatever the command
# (None where a command has no such value); docs/plugins.md describes each.
OPTION_KEYS = ("command", "dry_run", "plan_out", "sync", "restart", "system", "source", "new", "app_code",
               "saas_type", "plan_file")


@dataclass
class Context:
    """What one run was given, resolved once by the shell and passed down (no module state).

    ``root_option`` is ``--esb-root``; ``root`` resolves it (option, ``$ESBGEN_ESB_ROOT``, the
    current directory) the first time it is needed, so a command that needs no ESB root (a swap)
    never resolves one. ``database_url`` is ``--database``, else ``$ESBGEN_DATABASE_URL``.
    ``services`` are ``--sync``/``--restart`` and their programs; ``options`` the base of the
    ``options`` plugins get (``plugin_options`` sets every key of OPTION_KEYS over it).
    """

    root_option: str | None = None
    database_url: str | None = None
    say: Say = print
    dry_run: bool = False
    full_diff: bool = False  # every file's whole diff in the plan shown (Plan.describe)
    plan_out: str | None = None
    services: ServiceOptions | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def make(cls, root_option: str | None = None, *, database: str | None = None, **fields: Any) -> "Context":
        """A context with the database URL resolved: ``database``, else ``$ESBGEN_DATABASE_URL``."""
        from esbgen.db.connection import ENV_URL

        return cls(root_option, database or os.environ.get(ENV_URL) or None, **fields)

    @cached_property
    def root(self) -> Path:
        from esbgen import redact
        from esbgen.esb.layout import SETTINGS_FILES
        from esbgen.esb.tree import resolve_root

        root = resolve_root(self.root_option)
        for settings in SETTINGS_FILES:  # from here on, their secrets are masked in all the run says
            redact.learn_file(root / settings)
        return root

    @property
    def database(self) -> Target:
        from esbgen.db.connection import Target

        return Target(self.database_url)

    @property
    def sync(self) -> bool:
        return bool(self.services is not None and self.services.sync)

    @property
    def restart(self) -> bool:
        return bool(self.services is not None and self.services.restart)


class Operation:
    """One command. A writing command implements ``make_plan`` (and words ``nothing_to_do`` and
    ``summary``); a read-only one sets ``writes = False`` and implements ``read``.
    """

    command: str = ""
    writes: bool = True
    scratch: bool = True  # make_plan renders files (a scratch folder is made for it)
    kept: str = "The change itself is applied and kept"  # said when a post-step fails after the apply

    def check(self, ctx: Context) -> None:
        """Refuse bad arguments before the lock is taken or anything is read (raise Refused/UsageError)."""

    def store(self, ctx: Context) -> Path:
        """Where the lock and the journal live: the ESB root for tree commands."""
        return ctx.root

    def make_plan(self, ctx: Context, work: Path) -> Plan:
        """The complete plan: files, rows, service post-steps (plugin steps are added by ``run``)."""
        raise NotImplementedError

    def nothing_to_do(self, plan: Plan) -> str:
        """The one line of an empty plan, after ``Nothing to do: `` (no final period)."""
        return "the tree is already as asked"

    def summary(self, plan: Plan) -> list[str]:
        """Lines said after the plan was applied, before its post-steps run."""
        return []

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        """This command's values of OPTION_KEYS (system, source, new, app_code, saas_type, plan_file)."""
        return {}

    def is_empty(self, plan: Plan) -> bool:
        return plan.is_empty

    def describe(self, ctx: Context, plan: Plan) -> str | None:
        """The plan as printed before it is applied, and by a dry run (None: nothing to print)."""
        return plan.describe(full_diff=ctx.full_diff)

    def apply(self, ctx: Context, plan: Plan):
        """Apply the plan as one change; returns the journal."""
        from esbgen.journal.record import apply

        return apply(plan, argv=journal_argv(), context=ctx)

    def recorded(self, journal) -> None:
        """Say in --json which change this run applied."""
        from esbgen import report

        report.applied(journal.id)

    def applied_line(self, journal) -> str:
        return f"Applied as change {journal.id}; `esbgen undo` reverts it."

    def read(self, ctx: Context) -> int:
        """A read-only command's whole work (``writes = False``); returns the exit status."""
        raise NotImplementedError


def run(operation: Operation, ctx: Context) -> int:
    """Run one command; see the module's description. Returns the exit status."""
    try:
        operation.check(ctx)
        if not operation.writes:
            recover_pending(operation.store(ctx), ctx)
            return operation.read(ctx)
        if ctx.plan_out is not None:
            if ctx.sync or ctx.restart:
                raise UsageError("--plan-out writes the plan and changes nothing: give --sync/--restart to "
                                 "`esbgen apply-plan`")
            ctx.dry_run = True
        with _writable(operation.store(ctx), ctx), _scratch(operation, ctx) as work:
            plan = operation.make_plan(ctx, work)
            add_plugin_steps(plan, operation, ctx)
            return _carry_out(operation, ctx, plan)
    except EsbgenError as error:
        if type(error) is EsbgenError:  # the applying part types its own: what is left came before any change
            raise Refused(str(error)) from error
        raise
    except OSError as error:
        if error.errno in DISK_FULL:  # while planning: the journal words (and rolls back) its own
            where = f" ({error.filename})" if error.filename else ""
            raise Refused(f"{error.strerror}{where}; nothing was changed") from error
        raise


def _carry_out(operation: Operation, ctx: Context, plan: Plan) -> int:
    from esbgen import report

    say = ctx.say
    empty = operation.is_empty(plan)
    if ctx.plan_out is not None:
        from esbgen.planfile import write_plan

        _show(operation, ctx, plan)
        report.planned(plan, True)
        written = write_plan(plan, ctx.plan_out, journal_argv())
        report.set(plan_out=str(written))
        say(f"Wrote the plan to {written}: nothing was changed; `esbgen apply-plan {written}` applies it.")
        return 0
    if ctx.dry_run:
        _show(operation, ctx, plan)
        report.planned(plan, True)
        say("Dry run: nothing was changed.")
        return 0
    report.planned(plan, False)
    if empty:
        say(f"Nothing to do: {operation.nothing_to_do(plan)}.")
        for note in plan.notes:  # what was decided, and why, holds for an empty plan too (a kept secret)
            say(f"Note: {note}")
        return run_post_steps(plan, say, kept="Nothing was changed by this run", tree_state=UNCHANGED)
    _show(operation, ctx, plan)
    journal = _apply(operation, ctx, plan)
    operation.recorded(journal)
    plan.applied_journal = journal  # post-steps that write rows record them in this change (esbgen.db.sync)
    try:
        for line in operation.summary(plan):
            say(line)
        say(operation.applied_line(journal))
        return run_post_steps(plan, say, kept=operation.kept)
    except EsbgenError as error:
        if not isinstance(error, (StepFailed, Interrupted)):  # whatever it says, the change is applied
            raise StepFailed(f"{error} (change {journal.id} is applied and kept)", APPLIED) from error
        raise
    except KeyboardInterrupt as interrupt:
        name = signal_name(interrupt)
        raise Interrupted(f"interrupted ({name}) after change {journal.id} was applied: it is kept (`esbgen undo` "
                          "reverts it); the steps after it may not have run", APPLIED, name) from None


def _show(operation: Operation, ctx: Context, plan: Plan) -> None:
    text = operation.describe(ctx, plan)
    if text is not None:
        ctx.say(text)


def _apply(operation: Operation, ctx: Context, plan: Plan):
    """The journal's apply, its failure typed by what the journal says happened to the tree."""
    from esbgen.journal.record import discard, journals

    store = operation.store(ctx)
    before = {journal.id for journal in journals(store)}
    try:
        return operation.apply(ctx, plan)
    except EsbgenError as error:
        started = [journal for journal in journals(store) if journal.id not in before]
        journal = started[-1] if started else None
        # a refusal raised while applying is typed as what the journal made of it: the tree was rolled back
        typed_already = isinstance(error, (RolledBack, RollbackIncomplete, StepFailed, Interrupted))
        typed = error if typed_already else typed_failure(error, journal)
        # Rolled back whole, everything is as it was: a run that changed nothing leaves no state. The
        # error says so even where a full disk kept the journal from recording its last state.
        if journal is not None and (journal.state == "rolled-back" or typed.tree_state == ROLLED_BACK):
            discard(journal)
        if typed is error:
            raise
        raise typed from error


def typed_failure(error: EsbgenError, journal) -> EsbgenError:
    """``error`` as the class of what happened: Refused (no change started), RolledBack, RollbackIncomplete."""
    if journal is None or journal.state not in ("rolled-back", "rolling-back"):
        return error if isinstance(error, Refused) else Refused(str(error))
    if journal.data.get("rollback_problems") or journal.state == "rolling-back":
        return RollbackIncomplete(str(error))
    return RolledBack(str(error))


@contextmanager
def _writable(store: Path, ctx: Context) -> Iterator[None]:
    """A real run holds the lock, after rolling back what a killed run left; a dry run only recovers."""
    from esbgen.journal.record import recover
    from esbgen.journal.store import locked

    if ctx.dry_run:
        recover_pending(store, ctx)  # the lock only when a killed run left a change to roll back
        yield
        return
    with locked(store, create=False):
        recover(store, ctx.say, ctx)
        yield


def recover_pending(store: Path, ctx: Context) -> None:
    """Commands that only read: a change a killed run left unfinished is rolled back first, and said."""
    from esbgen.journal.record import recover_pending as recover

    recover(store, ctx.say, ctx)


@contextmanager
def _scratch(operation: Operation, ctx: Context) -> Iterator[Path | None]:
    """Where a plan is rendered: beside the store for a real run (renames), else in /tmp."""
    if not operation.scratch:
        yield None
        return
    if ctx.dry_run:
        path = Path(tempfile.mkdtemp(prefix="esbgen-"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
        return
    from esbgen.journal.store import drop_work_dir, work_dir

    path = work_dir(operation.store(ctx))
    try:
        yield path
    finally:
        drop_work_dir(path)


def plugin_options(operation: Operation, ctx: Context, plan: Plan) -> dict[str, Any]:
    """The ``options`` of ``esbgen_plan_steps``: every key of OPTION_KEYS, for every command."""
    options: dict[str, Any] = dict.fromkeys(OPTION_KEYS)
    options.update(ctx.options)
    options.update(command=operation.command, dry_run=ctx.dry_run, plan_out=ctx.plan_out, sync=ctx.sync,
                   restart=ctx.restart)
    options.update(operation.plugin_values(plan))
    return options


def add_plugin_steps(plan: Plan, operation: Operation, ctx: Context) -> None:
    from esbgen.plugins import call_hook

    options = plugin_options(operation, ctx, plan)
    for steps in call_hook("esbgen_plan_steps", plan=plan, command=operation.command, options=options):
        plan.post_steps.extend(steps or [])


def journal_argv() -> list[str]:
    """This run's command line for the journal, with any password in a database URL masked."""
    import sys

    from esbgen.db.connection import redact_argv

    return redact_argv(sys.argv[1:])


def run_post_steps(plan: Plan, say: Say, kept: str = "The change itself is applied and kept",
                   tree_state: str = APPLIED) -> int:
    """Run the runnable post-steps in order; on a failure show its output, say what is kept and what did not run.

    A failure is ``StepFailed`` with ``tree_state``: what the change before the steps left.
    """
    from esbgen import report
    from esbgen.services import run_child

    if report.active() is not None and report.active().plan is None:
        report.planned(plan)
    steps = [step for step in plan.post_steps if step.runnable]
    for index, step in enumerate(steps):
        say(f"Running: {step.description}")
        output = ""
        try:
            if step.run is not None:
                output = step.run() or ""
            else:
                try:
                    done = run_child(step.command, cwd=step.cwd, env=step.env)
                except OSError as error:
                    raise EsbgenError(
                        f"{step.description} could not start: {error.strerror or error} ({error.filename or step.command[0]})"
                    ) from None
                output = (done.stdout + done.stderr).strip()
                if done.returncode != 0:
                    explain = getattr(step, "explain_failure", None)
                    hint = explain(output) if explain else None
                    last = output.splitlines()[-1] if output else "no output"
                    raise EsbgenError(
                        f"{step.description} failed (exit {done.returncode}): {hint + ': ' if hint else ''}{last}"
                    )
        except EsbgenError as error:
            output = output or getattr(step, "output", "")
            if output:
                say("\n".join("    " + line for line in output.splitlines()))
            done_before = "; ".join(s.description for s in steps[:index])
            not_run = "; ".join(s.description for s in steps[index + 1:])
            say(f"{kept}; this step failed: {error}")
            if done_before:
                say(f"Done before it: {done_before}")
            if not_run:
                say(f"Not run: {not_run}")
            if isinstance(error, (StepFailed, Interrupted)):
                raise
            raise StepFailed(str(error), tree_state) from error
        report.step_ran(step.description)
        if output:
            say(output)
    return 0
