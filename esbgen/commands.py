"""What the commands do, whichever shell calls them (the CLI or ``manage.py esbgen``).

Each function takes plain arguments and a ``say`` callable for output and
returns the exit status; refusals are raised as EsbgenError.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from esbgen import registration as _registration  # also registers the journal's db_system handler
from esbgen import syncrows as _syncrows  # noqa: F401  (registers the db_synced_rows handler undo needs)
from esbgen.errors import EsbgenError
from esbgen.rules import validate_one_line

Say = Callable[[str], None]


@contextmanager
def writable_root(root_option: str | None, say: Say, dry_run: bool) -> Iterator[Path]:
    """The resolved root; for a real run, locked, with any interrupted change rolled back first."""
    from esbgen.esbtree import resolve_root
    from esbgen.journal import locked, recover, recover_pending

    root = resolve_root(root_option)
    if dry_run:
        recover_pending(root, say)  # the lock only when a killed run left a change to roll back
        yield root
        return
    with locked(root, create=False):
        recover(root, say)
        yield root


def _recover_pending(root: Path, say: Say) -> None:
    """Commands that only read: a change a killed run left unfinished is rolled back first, and said."""
    from esbgen.journal import recover_pending

    recover_pending(root, say)


@contextmanager
def scratch(root: Path, dry_run: bool) -> Iterator[Path]:
    """Where a plan is rendered: beside the tree for a real run (renames), else in /tmp."""
    from esbgen.journal import drop_work_dir, work_dir

    if dry_run:
        path = Path(tempfile.mkdtemp(prefix="esbgen-"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
        return
    path = work_dir(root)
    try:
        yield path
    finally:
        drop_work_dir(path)


def add_plugin_steps(plan, command: str, options: dict[str, Any]) -> None:
    from esbgen.plugins import call_hook

    for steps in call_hook("esbgen_plan_steps", plan=plan, command=command, options=options):
        plan.post_steps.extend(steps or [])


def execute(plan, say: Say, dry_run: bool, summary: Callable[[], list[str]] | None = None,
            plan_out: str | None = None) -> int:
    """Show a plan; apply it unless dry (or written to ``plan_out``); run its post-steps; say honestly what happened."""
    from esbgen import report
    from esbgen.journal import apply

    say(plan.describe())
    report.planned(plan, dry_run)
    if plan_out is not None:
        from esbgen.planfile import write_plan

        written = write_plan(plan, plan_out, journal_argv())
        report.set(plan_out=str(written))
        say(f"Wrote the plan to {written}: nothing was changed; `esbgen apply-plan {written}` applies it.")
        return 0
    if dry_run:
        say("Dry run: nothing was changed.")
        return 0
    if plan.is_empty:
        say("Nothing to do: the tree is already as asked.")
        return 0
    journal = apply(plan, argv=journal_argv())
    report.applied(journal.id)
    plan.applied_journal = journal  # post-steps that write rows record them in this change (esbgen.syncrows)
    try:
        for line in summary() if summary else []:
            say(line)
        say(f"Applied as change {journal.id}; `esbgen undo` reverts it.")
        return run_post_steps(plan, say)
    except KeyboardInterrupt:
        from esbgen.errors import APPLIED, Interrupted

        raise Interrupted(f"interrupted after change {journal.id} was applied: it is kept (`esbgen undo` reverts it); "
                          "the steps after it may not have run", APPLIED) from None


def check_plan_out(plan_out: str | None, services=None) -> None:
    """--plan-out only plans: the services run where the plan is applied."""
    from esbgen.errors import UsageError

    if plan_out is not None and services is not None and (services.sync or services.restart):
        raise UsageError("--plan-out writes the plan and changes nothing: give --sync/--restart to `esbgen apply-plan`")


def journal_argv() -> list[str]:
    """This run's command line for the journal, with any password in a database URL masked."""
    import sys

    from esbgen.db import redact_argv

    return redact_argv(sys.argv[1:])


def run_post_steps(plan, say: Say, kept: str = "The change itself is applied and kept") -> int:
    """Run the runnable post-steps in order; on a failure show its output, say what is kept and what did not run."""
    import subprocess

    from esbgen import report

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
                    done = subprocess.run(
                        step.command, cwd=step.cwd, env=step.env, capture_output=True, text=True, check=False
                    )
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
            raise
        report.step_ran(step.description)
        if output:
            say(output)
    return 0


def plan_row_and_services(plan, root: Path, system: str, *, label: str, remark: str, label_given: bool,
                          remark_given: bool, dry_run: bool, services=None, required: bool = False,
                          verify: bool = False) -> None:
    """The system's esb_component_system row (esbgen.registration) and the sync/restart steps asked for.

    ``verify`` (clone, new): with --sync and a database known, the sync is the verified one of
    esbgen.syncrows (rows checked against the files, recorded for undo, --grant written).
    """
    from esbgen.registration import plan_registration
    from esbgen.services import service_steps

    steps = service_steps(root, services)
    known = plan_registration(plan, system, label=label, remark=remark, label_given=label_given,
                              remark_given=remark_given, dry_run=dry_run, required=required)
    if verify:
        from esbgen import syncrows

        verified = bool(services is not None and services.sync and known)
        syncrows.check_options(services, verified)
        if verified:
            steps = [syncrows.verified_sync_step(plan, root, system, services) if step.command and
                     step.command[-1] == "sync_data_at_deploy" else step for step in steps]
    plan.post_steps.extend(steps)


def _verify_notes(root: Path, system: str, settings: list[str]) -> list[str]:
    from esbgen.verify import closing_notes

    return closing_notes(root, system, settings)


def register(root_option: str | None, name: str, say: Say, *, label: str | None = None, remark: str | None = None,
             database: str | None = None, dry_run: bool = False, services=None) -> int:
    """Write (or update) the esb_component_system row of a system of the tree."""
    from esbgen import db
    from esbgen.esbtree import load_tree
    from esbgen.plan import Plan

    db.request_url(database)
    validate_one_line(label, "--label")
    validate_one_line(remark, "--remark")
    with writable_root(root_option, say, dry_run) as root:
        tree = load_tree(root)
        system = tree.systems.get(name) or next(
            (s for s in tree.systems.values() if (s.system_name or s.name).upper() == name.upper()), None
        )
        if system is not None:
            system_name = (system.system_name or system.name).upper()
        elif name.upper() in tree.registered:
            system_name = name.upper()  # declared in conf.py SYSTEMS only
        else:
            known = ", ".join(sorted(tree.systems)) or "none"
            raise EsbgenError(f"unknown system {name!r} in {root} (systems: {known}; or a name in conf.py SYSTEMS)")
        declared = tree.registered[system_name].fields if system_name in tree.registered else {}
        default_label = declared.get("label") if isinstance(declared.get("label"), str) else system_name
        default_remark = declared.get("remark") if isinstance(declared.get("remark"), str) else "Registered by esbgen"
        plan = Plan(root, f"register {system_name}")
        plan_row_and_services(plan, root, system_name, label=label if label is not None else default_label,
                              remark=remark if remark is not None else default_remark,
                              label_given=label is not None, remark_given=remark is not None, dry_run=dry_run,
                              services=services, required=True)
        add_plugin_steps(plan, "register", services.plugin_options() if services else {})
        if plan.is_empty and not dry_run:
            say(plan.describe())
            say(f"Nothing to do: row {system_name} is already as asked.")
            return run_post_steps(plan, say, kept="Nothing was changed by this run")

        def summary() -> list[str]:
            return _registration.done_lines(plan)

        return execute(plan, say, dry_run, summary)


def clone(root_option: str | None, source: str, new: str, say: Say, *, app_code: str | None = None,
          label: str | None = None, dry_run: bool = False, force: bool = False, saas_type: str | None = None,
          options: dict[str, Any] | None = None, remark: str | None = None, database: str | None = None,
          services=None, plan_out: str | None = None) -> int:
    from esbgen import db
    from esbgen.clone import CloneRequest, plan_clone
    from esbgen.rules import clone_remark

    db.request_url(database)
    validate_one_line(remark, "--remark")
    check_plan_out(plan_out, services)
    dry_run = dry_run or plan_out is not None
    request = CloneRequest(source, new, app_code, label, force, saas_type)
    with writable_root(root_option, say, dry_run) as root, scratch(root, dry_run) as work:
        outcome = plan_clone(root, request, work)
        plan = outcome.plan
        plan_row_and_services(
            plan, root, outcome.target.system_name, label=outcome.target.label,
            remark=remark if remark is not None else clone_remark(outcome.source),
            label_given=label is not None, remark_given=remark is not None, dry_run=dry_run, services=services,
            verify=True,
        )
        if services is not None:
            options = {**(options or {}), **services.plugin_options()}
        add_plugin_steps(plan, "clone", {**(options or {}), "saas_type": outcome.saas_type.name, "source": source, "new": new})
        if plan.is_empty and not dry_run:
            say(f"Nothing to do: {new} is already this clone of {source}, and registered.")
            return run_post_steps(plan, say, kept="Nothing was changed by this run")

        def summary() -> list[str]:
            edits = ", ".join(f"{kind} x{count}" for kind, count in sorted(outcome.edits_by_kind.items()))
            return [
                f"Cloned {source} as {new} (SYSTEM_NAME {outcome.target.system_name}, app {outcome.target.app_code}, "
                f"SaaS type {outcome.saas_type.name}): {plan.added_count} files written; edits: {edits or 'none'}."
            ] + _registration.done_lines(plan) + _verify_notes(root, new, list(outcome.target.renamed_settings.values())
                                                               or [outcome.target.host_setting])

        return execute(plan, say, dry_run, summary, plan_out)


def new(root_option: str | None, name: str, app_code: str, say: Say, *, saas_type: str | None = None,
        label: str | None = None, dry_run: bool = False, force: bool = False, remark: str | None = None,
        database: str | None = None, services=None, plan_out: str | None = None) -> int:
    from esbgen import db
    from esbgen.newsystem import plan_new

    db.request_url(database)
    validate_one_line(remark, "--remark")
    check_plan_out(plan_out, services)
    dry_run = dry_run or plan_out is not None
    with writable_root(root_option, say, dry_run) as root, scratch(root, dry_run) as work:
        outcome = plan_new(root, name, app_code, work, type_name=saas_type, label=label, force=force)
        plan = outcome.plan
        plan_row_and_services(
            plan, root, outcome.target.system_name, label=outcome.target.label,
            remark=remark if remark is not None else f"Created by esbgen new (SaaS type {outcome.saas_type.name})",
            label_given=label is not None, remark_given=remark is not None, dry_run=dry_run, services=services,
            verify=True,
        )
        options = services.plugin_options() if services is not None else {}
        add_plugin_steps(plan, "new", {**options, "saas_type": outcome.saas_type.name, "new": name})
        if plan.is_empty and not dry_run:
            say(f"Nothing to do: {name} already exists as this template makes it, and is registered.")
            return run_post_steps(plan, say, kept="Nothing was changed by this run")

        def summary() -> list[str]:
            return [
                f"Created {name} (SYSTEM_NAME {outcome.target.system_name}, app {app_code}, SaaS type "
                f"{outcome.saas_type.name}): {plan.added_count} files written."
            ] + _registration.done_lines(plan) + _verify_notes(root, name, [outcome.target.host_setting])

        return execute(plan, say, dry_run, summary, plan_out)


def templatize(root_option: str | None, source: str, output: str, say: Say, *, new: str | None = None,
               app_code: str | None = None, saas_type: str | None = None) -> int:
    from esbgen.clone import CloneRequest, design_clone
    from esbgen.esbtree import resolve_root

    root = resolve_root(root_option)
    _recover_pending(root, say)
    destination = Path(output).absolute()
    if destination.exists() and not destination.is_dir():
        raise EsbgenError(f"{output} exists and is not a folder; -o takes a folder for the template")
    if destination == root / "components" or (root / "components") in destination.parents:
        raise EsbgenError(f"{output} is inside the ESB's components/; the ESB would read the template as components. "
                          "Write it elsewhere")
    if destination.exists() and any(destination.iterdir()):
        raise EsbgenError(f"{destination} exists and is not empty")
    design = design_clone(root, CloneRequest(source, new or f"{source}_clone", app_code, None, False, saas_type))
    design.spec.write(destination)
    say(f"Wrote a cookiecutter template of {source} to {destination} ({len(design.spec.files)} files,"
        f" {sum(design.counts.values())} identifiers as variables).")
    say(f"Render it into an ESB root with: cookiecutter --no-input -f {destination} -o {root}")
    return 0


def retarget(root_option: str | None, system: str, app_code: str | None, say: Say, *, dry_run: bool = False,
             saas_type: str | None = None, options: dict[str, Any] | None = None, to_source: bool = False,
             app_url: str | None = None, plan_out: str | None = None) -> int:
    from esbgen.errors import UsageError
    from esbgen.retarget import plan_retarget, plan_to_source
    from esbgen.rules import validate_app_code, validate_system_folder

    validate_system_folder(system, "system")
    if to_source == (app_code is not None):
        raise UsageError("give either --app-code CODE or --to-source")
    if to_source and app_url is not None:
        raise UsageError("--app-url goes with --app-code, not with --to-source")
    if app_code is not None:
        validate_app_code(app_code)
    dry_run = dry_run or plan_out is not None
    with writable_root(root_option, say, dry_run) as root:
        outcome = plan_to_source(root, system) if to_source else plan_retarget(root, system, app_code, saas_type, app_url)
        plan = outcome.plan
        add_plugin_steps(plan, "retarget", options or {})
        if plan.is_empty and not dry_run:
            if to_source:
                say(f"Nothing to do: {'; '.join(plan.unchanged)}.")
            else:
                say(f"Nothing to do: {system} already forwards to app {app_code}.")
            return 0

        def summary() -> list[str]:
            if to_source:
                return [f"Retargeted {system} back to app {outcome.app_code}, its source:"
                        f" {len(plan.file_writes)} files put back."]
            edits = ", ".join(f"{kind} x{count}" for kind, count in sorted(outcome.edits_by_kind.items()))
            return [
                f"Retargeted {system} from app {outcome.current_app} to {app_code} (SaaS type {outcome.saas_type.name}):"
                f" {len(plan.file_writes)} files changed; edits: {edits or 'none'}."
            ]

        return execute(plan, say, dry_run, summary, plan_out)


def apply_plan(root_option: str | None, plan_file: str, say: Say, *, dry_run: bool = False, services=None) -> int:
    """Apply a plan file (``--plan-out``) as it is, when this tree is the one it was made for (esbgen.planfile)."""
    from esbgen.planfile import plan_from_file, read_plan
    from esbgen.services import service_steps

    data = read_plan(plan_file)
    with writable_root(root_option, say, dry_run) as root, scratch(root, dry_run) as work:
        plan = plan_from_file(data, root, work, plan_file)
        plan.post_steps.extend(service_steps(root, services))
        add_plugin_steps(plan, "apply-plan", services.plugin_options() if services else {})
        if plan.is_empty and not dry_run:
            say(plan.describe())
            say("Nothing to do: the tree is already as the plan leaves it.")
            return run_post_steps(plan, say, kept="Nothing was changed by this run")

        def summary() -> list[str]:
            return [f"Applied the plan {plan_file} ({data.get('title')}): {plan.added_count} files added,"
                    f" {len(plan.file_writes)} written."]

        return execute(plan, say, dry_run, summary)


def sync_edition(root_option: str | None, ce_option: str, say: Say, *, take: list[str] | tuple[str, ...] = (),
                 dry_run: bool = False, options: dict[str, Any] | None = None,
                 take_files: list[str] | tuple[str, ...] = (), skip: list[str] | tuple[str, ...] = ()) -> int:
    from esbgen.edition import plan_sync_edition, resolve_ce_root, same_root
    from esbgen.esbtree import resolve_root

    if not ce_option:
        from esbgen.errors import UsageError

        raise UsageError("--from needs the CE's ESB root")
    ce_root = resolve_ce_root(ce_option)
    same_root(resolve_root(root_option), ce_root)
    with writable_root(root_option, say, dry_run) as root, scratch(root, dry_run) as work:
        outcome = plan_sync_edition(root, ce_root, work, list(take), list(take_files), list(skip))
        plan = outcome.plan
        add_plugin_steps(plan, "sync-edition", options or {})
        if plan.is_empty and not dry_run:
            say(plan.describe())
            say(f"Nothing to do: {root} already has what it takes from {ce_root}.")
            return 0

        def summary() -> list[str]:
            return [outcome.summary()]

        return execute(plan, say, dry_run, summary)


def check(root_option: str | None, systems: list[str], say: Say) -> int:
    from esbgen.esbtree import load_tree, resolve_root
    from esbgen.plugins import call_hook
    from esbgen.rules import check_tree, validate_system_folder

    root = resolve_root(root_option)
    _recover_pending(root, say)
    for name in systems:
        validate_system_folder(name)
    tree = load_tree(root)
    found, inherited = check_tree(tree, systems or None)
    problems = [str(p) for p in found]
    for extra in call_hook("esbgen_check_tree", tree=tree):
        problems.extend(extra or [])
    for problem in problems:
        say(problem)
    for source, problem in inherited:
        say(f"inherited from {source} (the clone serves what its source serves): {problem}")
    checked = systems or sorted(tree.systems)
    if problems:
        say(f"{len(problems)} problem(s) in {len(checked)} system(s).")
        return 1
    say(f"OK: {len(checked)} system(s) follow the ESB's rules.")
    return 0


def export_apigw(root_option: str | None, system: str, output: str, say: Say, *, gateway: str | None = None,
                 stage: str | None = None, backend_host: str | None = None, grant_apps: tuple[str, ...] = (),
                 strict: bool = False, dry_run: bool = False) -> int:
    """Write a system as an API gateway project (esbgen.apigw); only DIR is written, never the ESB tree."""
    from esbgen.apigw import build_export, check_output, write_export
    from esbgen.esbtree import resolve_root

    root = resolve_root(root_option)
    _recover_pending(root, say)
    export = build_export(root, system, gateway=gateway, stage=stage, backend_host=backend_host, grant_apps=tuple(grant_apps))
    for line in export.warnings:
        say(f"warning: {line}")
    if strict and export.unmapped:
        raise EsbgenError(f"--strict: {len(export.unmapped)} channel(s) of {system} cannot be mapped automatically: "
                          + "; ".join(f"{op.esb_path} ({op.unmapped})" for op in export.unmapped))
    replacing, _ = check_output(root, Path(output), system)
    summary = (f"{len(export.operations)} resources ({len(export.unmapped)} needing a hand, see MIGRATION.md) "
               f"for gateway {export.gateway}, stage {export.stage}")
    if dry_run:
        say(f"Would {'replace the export in' if replacing else 'write'} {output}: {summary}.")
        for name, data in export.files.items():
            say(f"  {name}  ({len(data)} bytes)")
        say("Dry run: nothing was written.")
        return 0
    replaced, carried = write_export(export, Path(output))
    say(f"{'Replaced the export in' if replaced else 'Wrote'} {output}: {summary}; {len(export.files)} files.")
    if carried:
        say(f"Kept from the earlier export: {', '.join(carried)}")
    say(f"Next: the apigw-manager steps in {Path(output) / 'MIGRATION.md'}.")
    return 0


def list_systems(root_option: str | None, say: Say) -> int:
    from esbgen.esbtree import load_tree, resolve_root
    from esbgen.rules import OFFICIAL_SYSTEMS, served_channels

    root = resolve_root(root_option)
    _recover_pending(root, say)
    tree = load_tree(root)
    rows = [("SYSTEM", "KIND", "CHANNELS", "COMPONENTS", "REGISTERED")]
    for name, system in sorted(tree.systems.items()):
        upper = (system.system_name or name).upper()
        if upper in tree.registered:
            registered = "yes (conf.py)"
        elif upper in OFFICIAL_SYSTEMS:
            registered = "official"
        else:
            registered = "no"
        channels = len(served_channels(tree, system)[0])
        rows.append((name, system.kind, str(channels), str(len(system.components)), registered))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        say("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def plugins(say: Say) -> int:
    from esbgen.plugins import describe_plugins

    for row in describe_plugins():
        hooks = ", ".join(row["hooks"]) or "-"
        say(f"{row['name']}  ({row['origin']})\n    hooks: {hooks}")
    return 0


def undo(root_option: str | None, say: Say, *, list_only: bool = False, journal_id: str | None = None,
         database: str | None = None, dry_run: bool = False, services=None) -> int:
    from esbgen import db, report
    from esbgen.esbtree import resolve_root
    from esbgen.plan import Plan
    from esbgen.services import service_steps

    db.request_url(database)
    from esbgen.journal import check_undo, journals, locked, recover
    from esbgen.journal import undo as undo_change

    root = resolve_root(root_option)
    after = Plan(root, "after the undo")
    if services is not None and (services.sync or services.restart):
        if list_only:
            from esbgen.errors import UsageError

            raise UsageError("--list changes nothing: --sync/--restart go with an undo")
        after.post_steps.extend(service_steps(root, services))
    if list_only:
        _recover_pending(root, say)
        history = journals(root)
        if not history:
            say("No change recorded.")
        for journal in history:
            say(f"{journal.id}  {journal.data.get('created_at', '?')}  {journal.state:<11}  {journal.data.get('title')}")
        report.set(history=[{"id": j.id, "state": j.state, "title": j.title, "created_at": j.data.get("created_at")}
                            for j in history])
        return 0
    if dry_run:
        from esbgen.undoplan import describe_undo

        _recover_pending(root, say)
        journal = check_undo(root, journal_id)
        report.set(changed=True, undone=journal.id, dry_run=True)
        for line in describe_undo(journal):
            say(line)
        for step in after.post_steps:
            say(f"Then: {step.description}")
        say("Dry run: nothing was changed.")
        return 0
    with locked(root, create=False):
        recover(root, say)
        journal = undo_change(root, journal_id)
    report.set(changed=True, undone=journal.id)
    say(f"Undid change {journal.id}: {journal.data.get('title')}.")
    return run_post_steps(after, say, kept="The undo itself is done and kept")
