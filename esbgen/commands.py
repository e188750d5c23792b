"""Every command as an operation of esbgen.runner.

A writing command is its plan and its words: ``make_plan`` returns the complete plan (files,
its row, the sync and restart asked for), ``nothing_to_do`` and ``summary`` word its outcome.
Locking, recovery, plugin steps, dry runs, ``--plan-out``, the empty plan, applying and the
post-steps are the runner's, the same for all. A read-only command only ``read``s.
Refusals are raised as ``esbgen.errors.Refused`` (``UsageError`` for the command line).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esbgen import registration as _registration
from esbgen.errors import EsbgenError, Refused, RollbackIncomplete, UsageError
from esbgen.layout import COMPONENTS, CUSTOM_CONF, inside_components
from esbgen.plan import Plan
from esbgen.rules import validate_label, validate_remark
from esbgen.runner import Context, Operation


def plan_row_and_services(ctx: Context, plan: Plan, system: str, *, label: str, remark: str, label_given: bool,
                          remark_given: bool, required: bool = False, verify: bool = False) -> None:
    """The system's esb_component_system row (esbgen.registration) and the sync/restart steps asked for.

    ``verify`` (clone, new): with --sync and a database known, the sync is the verified one of
    esbgen.syncrows (rows checked against the files, recorded for undo, --grant written).
    """
    from esbgen.registration import plan_registration
    from esbgen.services import service_steps

    root, services = ctx.root, ctx.services
    steps = service_steps(root, services)
    known = plan_registration(plan, ctx.database, system, label=label, remark=remark, label_given=label_given,
                              remark_given=remark_given, dry_run=ctx.dry_run, required=required)
    if verify:
        from esbgen import syncrows

        verified = bool(ctx.sync and known)
        syncrows.check_options(services, verified)
        if verified:
            steps = [syncrows.verified_sync_step(plan, root, system, services, ctx.database) if step.command and
                     step.command[-1] == "sync_data_at_deploy" else step for step in steps]
    plan.post_steps.extend(steps)


def _verify_notes(root: Path, system: str, needs: dict | None = None) -> list[str]:
    from esbgen.verify import closing_notes

    return closing_notes(root, system, needs)


def _edits(edits_by_kind: dict[str, int]) -> str:
    return ", ".join(f"{kind} x{count}" for kind, count in sorted(edits_by_kind.items())) or "none"


# ---------------------------------------------------------------- writing commands


@dataclass
class Register(Operation):
    """Write (or update) the esb_component_system row of a system of the tree."""

    name: str
    label: str | None = None
    remark: str | None = None
    command = "register"
    scratch = False
    system_name: str = ""

    def check(self, ctx: Context) -> None:
        validate_label(self.label)
        validate_remark(self.remark)

    def make_plan(self, ctx: Context, work: Path | None) -> Plan:
        from esbgen.esbtree import load_tree

        root = ctx.root
        tree = load_tree(root)
        system = tree.systems.get(self.name) or next(
            (s for s in tree.systems.values() if (s.system_name or s.name).upper() == self.name.upper()), None
        )
        if system is not None:
            system_name = (system.system_name or system.name).upper()
        elif self.name.upper() in tree.registered:
            system_name = self.name.upper()  # declared in conf.py SYSTEMS only
        else:
            known = ", ".join(sorted(tree.systems)) or "none"
            raise Refused(f"unknown system {self.name!r} in {root} (systems: {known}; or a name in {CUSTOM_CONF.name} SYSTEMS)")
        self.system_name = system_name
        declared = tree.registered[system_name].fields if system_name in tree.registered else {}
        default_label = declared.get("label") if isinstance(declared.get("label"), str) else system_name
        default_remark = declared.get("remark") if isinstance(declared.get("remark"), str) else "Registered by esbgen"
        plan = Plan(root, f"register {system_name}")
        plan_row_and_services(ctx, plan, system_name, label=self.label if self.label is not None else default_label,
                              remark=self.remark if self.remark is not None else default_remark,
                              label_given=self.label is not None, remark_given=self.remark is not None, required=True)
        return plan

    def nothing_to_do(self, plan: Plan) -> str:
        return f"row {self.system_name} is already as asked"

    def summary(self, plan: Plan) -> list[str]:
        return _registration.done_lines(plan)

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        return {"system": self.system_name}


@dataclass
class Clone(Operation):
    source: str
    new: str
    app_code: str | None = None
    label: str | None = None
    force: bool = False
    saas_type: str | None = None
    remark: str | None = None
    empty_ok: bool = False
    command = "clone"
    outcome: Any = None

    def check(self, ctx: Context) -> None:
        validate_remark(self.remark)

    def make_plan(self, ctx: Context, work: Path) -> Plan:
        from esbgen.clone import CloneRequest, plan_clone
        from esbgen.rules import clone_remark

        request = CloneRequest(self.source, self.new, self.app_code, self.label, self.force, self.saas_type, self.empty_ok)
        outcome = self.outcome = plan_clone(ctx.root, request, work)
        plan_row_and_services(
            ctx, outcome.plan, outcome.target.system_name, label=outcome.target.label,
            remark=self.remark if self.remark is not None else clone_remark(outcome.source),
            label_given=self.label is not None, remark_given=self.remark is not None, verify=True,
        )
        return outcome.plan

    def nothing_to_do(self, plan: Plan) -> str:
        return f"{self.new} is already this clone of {self.source}, and registered"

    def summary(self, plan: Plan) -> list[str]:
        outcome = self.outcome
        target = outcome.target
        return [
            f"Cloned {self.source} as {self.new} (SYSTEM_NAME {target.system_name}, app {target.app_code}, "
            f"SaaS type {outcome.saas_type.name}): {plan.added_count} files written; "
            f"edits: {_edits(outcome.edits_by_kind)}."
        ] + _registration.done_lines(plan) + _verify_notes(plan.root, self.new, outcome.backend_settings)

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        target = self.outcome.target
        return {"source": self.source, "new": self.new, "system": target.system_name, "app_code": target.app_code,
                "saas_type": self.outcome.saas_type.name}


@dataclass
class New(Operation):
    name: str
    app_code: str
    saas_type: str | None = None
    label: str | None = None
    force: bool = False
    remark: str | None = None
    command = "new"
    outcome: Any = None

    def check(self, ctx: Context) -> None:
        validate_remark(self.remark)

    def make_plan(self, ctx: Context, work: Path) -> Plan:
        from esbgen.newsystem import new_remark, plan_new

        outcome = self.outcome = plan_new(ctx.root, self.name, self.app_code, work, type_name=self.saas_type,
                                          label=self.label, force=self.force)
        plan_row_and_services(
            ctx, outcome.plan, outcome.target.system_name, label=outcome.target.label,
            remark=self.remark if self.remark is not None else new_remark(outcome.saas_type),
            label_given=self.label is not None, remark_given=self.remark is not None, verify=True,
        )
        return outcome.plan

    def nothing_to_do(self, plan: Plan) -> str:
        return f"{self.name} already exists as this template makes it, and is registered"

    def summary(self, plan: Plan) -> list[str]:
        outcome = self.outcome
        return [
            f"Created {self.name} (SYSTEM_NAME {outcome.target.system_name}, app {self.app_code}, SaaS type "
            f"{outcome.saas_type.name}): {plan.added_count} files written."
        ] + _registration.done_lines(plan) + _verify_notes(plan.root, self.name)

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        return {"new": self.name, "system": self.outcome.target.system_name, "app_code": self.app_code,
                "saas_type": self.outcome.saas_type.name}


@dataclass
class Retarget(Operation):
    system: str
    app_code: str | None = None
    saas_type: str | None = None
    to_source: bool = False
    app_url: str | None = None
    command = "retarget"
    scratch = False
    outcome: Any = None

    def check(self, ctx: Context) -> None:
        from esbgen.rules import validate_app_code, validate_system_folder, validate_url

        validate_system_folder(self.system, "system")
        if self.to_source == (self.app_code is not None):
            raise UsageError("give either --app-code CODE or --to-source")
        if self.to_source and self.app_url is not None:
            raise UsageError("--app-url goes with --app-code, not with --to-source")
        if self.app_code is not None:
            validate_app_code(self.app_code)
        if self.app_url is not None:
            validate_url(self.app_url, "--app-url")

    def make_plan(self, ctx: Context, work: Path | None) -> Plan:
        from esbgen.retarget import plan_retarget, plan_to_source

        from esbgen.services import service_steps

        root = ctx.root
        self.outcome = (plan_to_source(root, self.system) if self.to_source
                        else plan_retarget(root, self.system, self.app_code, self.saas_type, self.app_url))
        self.outcome.plan.post_steps.extend(service_steps(root, ctx.services))
        return self.outcome.plan

    def nothing_to_do(self, plan: Plan) -> str:
        if self.to_source:
            return "; ".join(plan.unchanged)
        return f"{self.system} already forwards to app {self.app_code}"

    def summary(self, plan: Plan) -> list[str]:
        outcome = self.outcome
        if self.to_source:
            return [f"Retargeted {self.system} back to app {outcome.app_code}, its source:"
                    f" {len(plan.file_writes)} files put back."]
        return [
            f"Retargeted {self.system} from app {outcome.current_app} to {self.app_code} (SaaS type "
            f"{outcome.saas_type.name}): {len(plan.file_writes)} files changed; edits: {_edits(outcome.edits_by_kind)}."
        ]

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        outcome = self.outcome
        return {"system": (outcome.system.system_name or outcome.system.name).upper(), "app_code": outcome.app_code or None,
                "saas_type": outcome.saas_type.name if outcome.saas_type is not None else None}


def _refuse_undefined_settings(root: Path, needed: list[str]) -> None:
    """Refuse to restart an ESB onto code whose host settings this host's settings file leaves undefined
    (its calls would fail), before anything changes: a fleet's preflight finds such a host."""
    from esbgen.layout import settings_file
    from esbgen.routing import settings_values

    defined = settings_values(root)
    missing = [name for name in needed if name not in defined]
    if missing and defined:  # an unreadable settings file says nothing: verify words it after the change
        raise Refused(f"{settings_file(root)} defines no {', '.join(missing)}, which the plan's code reads for its "
                      "backend: define it on this host before the ESB restarts onto it; nothing was changed")


@dataclass
class ApplyPlan(Operation):
    """Apply a plan file (``--plan-out``) as it is, when this tree is the one it was made for (esbgen.planfile).

    The change's journal records the plan's id (the sha256 of the file), and the sync and restart that ran
    for it; ``--json`` reports them (``plan_id``, ``plan_change``, ``plan_steps_done``), a dry run too, so a
    fleet run that was interrupted finds what each host still needs. A dry run with ``--restart`` asks
    supervisord for the program's state (``program_state``) and refuses when it could not be restarted.
    """

    plan_file: str
    command = "apply-plan"
    data: dict[str, Any] = field(default_factory=dict)
    plan_id: str = ""

    def check(self, ctx: Context) -> None:
        from esbgen.planfile import plan_id, read_plan

        self.data = read_plan(self.plan_file)
        self.plan_id = plan_id(self.plan_file)

    def make_plan(self, ctx: Context, work: Path) -> Plan:
        from esbgen import report
        from esbgen.planfile import applied_change, plan_from_file
        from esbgen.services import service_steps

        plan = plan_from_file(self.data, ctx.root, work, self.plan_file)
        plan.journal_extra["plan_id"] = self.plan_id
        plan.post_steps.extend(service_steps(ctx.root, ctx.services))
        change = applied_change(ctx.root, self.plan_id)
        done = sorted(change.data.get("plan_steps", {})) if change is not None else []
        report.set(plan_id=self.plan_id, plan_change=change.id if change is not None else None, plan_steps_done=done)
        if ctx.restart:
            _refuse_undefined_settings(ctx.root, plan.needs_settings)
        if ctx.dry_run and ctx.restart:  # a restart that could not happen is found before any host changes
            from esbgen.services import RestartStep, program_state

            report.set(program_state=program_state(next(s for s in plan.post_steps if isinstance(s, RestartStep))))
        steps = [name for name, asked in (("sync", ctx.sync), ("restart", ctx.restart)) if asked]
        if steps and (change is not None or not plan.is_empty):
            plan.post_steps.append(self._record_step(plan, change, steps))
        return plan

    def _record_step(self, plan: Plan, change, steps: list[str]):
        from esbgen.plan import PostStep
        from esbgen.planfile import record_steps

        def record() -> str:
            record_steps(getattr(plan, "applied_journal", None) or change, steps)
            return ""

        return PostStep(f"record the {' and '.join(steps)} of plan {self.plan_id[:12]} in its change", run=record)

    def nothing_to_do(self, plan: Plan) -> str:
        return "the tree is already as the plan leaves it"

    def summary(self, plan: Plan) -> list[str]:
        return [f"Applied the plan {self.plan_file} ({self.data.get('title')}): {plan.added_count} files added,"
                f" {len(plan.file_writes)} written."]

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        return {"plan_file": self.plan_file}


@dataclass
class SyncEdition(Operation):
    ce_option: str
    take: tuple[str, ...] = ()
    take_files: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    across_generations: bool = False
    command = "sync-edition"
    ce_root: Path | None = None
    outcome: Any = None

    def check(self, ctx: Context) -> None:
        from esbgen.edition import resolve_ce_root, same_root

        if not self.ce_option:
            raise UsageError("--from needs the CE's ESB root")
        self.ce_root = resolve_ce_root(self.ce_option)
        same_root(ctx.root, self.ce_root)

    def make_plan(self, ctx: Context, work: Path) -> Plan:
        from esbgen.edition import plan_sync_edition

        from esbgen.services import service_steps

        self.outcome = plan_sync_edition(ctx.root, self.ce_root, work, list(self.take), list(self.take_files),
                                         list(self.skip), self.across_generations)
        self.outcome.plan.post_steps.extend(service_steps(ctx.root, ctx.services))
        return self.outcome.plan

    def nothing_to_do(self, plan: Plan) -> str:
        return f"{plan.root} already has what it takes from {self.ce_root}"

    def summary(self, plan: Plan) -> list[str]:
        return [self.outcome.summary()]

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        return {"source": str(self.ce_root)}


@dataclass
class Undo(Operation):
    """Revert the last change (or ``journal_id``); its plan holds only the steps after the undo."""

    journal_id: str | None = None
    swap: bool = False  # the host's state folder (swaps), not the ESB root
    command = "undo"
    scratch = False
    kept = "The undo itself is done and kept"

    def check(self, ctx: Context) -> None:
        self.store(ctx)  # an unusable root is refused before anything else

    def store(self, ctx: Context) -> Path:
        return _undo_store(ctx, self.swap)

    def make_plan(self, ctx: Context, work: Path | None) -> Plan:
        from esbgen.services import service_steps

        plan = Plan(self.store(ctx), "after the undo")
        if not self.swap:
            plan.post_steps.extend(service_steps(ctx.root, ctx.services))
        return plan

    def is_empty(self, plan: Plan) -> bool:
        return False  # the change to undo is the journal's: nothing to undo is a refusal (check_undo)

    def describe(self, ctx: Context, plan: Plan) -> str | None:
        if not ctx.dry_run:
            return None
        from esbgen import report
        from esbgen.journal import check_undo
        from esbgen.undoplan import describe_undo

        journal = check_undo(self.store(ctx), self.journal_id, ctx)
        report.set(changed=True, undone=journal.id, dry_run=True)
        return "\n".join([*describe_undo(journal), *(f"Then: {step.description}" for step in plan.post_steps)])

    def apply(self, ctx: Context, plan: Plan):
        from esbgen.journal import journals, undo

        try:
            journal = undo(self.store(ctx), self.journal_id, context=ctx)
        except EsbgenError as error:
            if type(error) is not EsbgenError:
                raise
            stopped = [j for j in journals(self.store(ctx)) if j.state == "undoing"]
            raise (RollbackIncomplete if stopped else Refused)(str(error)) from error
        return journal

    def recorded(self, journal) -> None:
        from esbgen import report

        report.set(changed=True, undone=journal.id)

    def applied_line(self, journal) -> str:
        return f"Undid change {journal.id}: {journal.data.get('title')}."

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        return {"plan_file": None}


# ---------------------------------------------------------------- read-only commands


def _undo_store(ctx: Context, swap: bool) -> Path:
    from esbgen.journal import host_store

    return host_store() if swap else ctx.root


@dataclass
class UndoList(Operation):
    swap: bool = False
    command = "undo"
    writes = False

    def store(self, ctx: Context) -> Path:
        return _undo_store(ctx, self.swap)

    def check(self, ctx: Context) -> None:
        if ctx.sync or ctx.restart:
            raise UsageError("--list changes nothing: --sync/--restart go with an undo")

    def read(self, ctx: Context) -> int:
        from esbgen import report
        from esbgen.journal import journals

        history = journals(self.store(ctx))
        if not history:
            ctx.say("No swap recorded." if self.swap else "No change recorded.")
        for journal in history:
            ctx.say(f"{journal.id}  {journal.data.get('created_at', '?')}  {journal.state:<11}  {journal.data.get('title')}")
        report.set(history=[{"id": j.id, "state": j.state, "title": j.title, "created_at": j.data.get("created_at")}
                            for j in history])
        return 0


@dataclass
class Templatize(Operation):
    source: str
    output: str
    new: str | None = None
    app_code: str | None = None
    saas_type: str | None = None
    command = "templatize"
    writes = False

    def read(self, ctx: Context) -> int:
        from esbgen.clone import CloneRequest, design_clone

        root = ctx.root
        destination = Path(self.output).absolute()
        if destination.exists() and not destination.is_dir():
            raise Refused(f"{self.output} exists and is not a folder; -o takes a folder for the template")
        # where the template would really be written: symbolic links on the way followed
        real, real_root = Path(os.path.realpath(destination)), Path(os.path.realpath(root))
        if inside_components(root, destination) or inside_components(real_root, real):
            raise Refused(f"{self.output} is inside the ESB's {COMPONENTS}/; the ESB would read the template as "
                          "components. Write it elsewhere")
        if real_root == real or real_root in real.parents or root == destination or root in destination.parents:
            raise Refused(f"{self.output} is inside the ESB root {root}; esbgen writes nothing there but a change it "
                          "applies. Write the template elsewhere")
        if destination.exists() and any(destination.iterdir()):
            raise Refused(f"{destination} exists and is not empty")
        request = CloneRequest(self.source, self.new or f"{self.source}_clone", self.app_code, None, False, self.saas_type)
        design = design_clone(root, request)
        design.spec.write(destination)
        ctx.say(f"Wrote a cookiecutter template of {self.source} to {destination} ({design.spec.file_count} files,"
                f" {sum(design.counts.values())} identifiers as variables).")
        ctx.say(f"Render it into an ESB root with: cookiecutter --no-input -f {destination} -o {root}")
        return 0


@dataclass
class Check(Operation):
    systems: list[str] = field(default_factory=list)
    command = "check"
    writes = False

    def read(self, ctx: Context) -> int:
        from esbgen.esbtree import load_tree
        from esbgen.plugins import call_hook
        from esbgen.rules import check_tree, tolerated, validate_system_folder

        for name in self.systems:
            validate_system_folder(name)
        tree = load_tree(ctx.root)
        found, inherited = check_tree(tree, self.systems or None)
        problems = [str(p) for p in found if not tolerated(tree, p)]
        notes = [str(p) for p in found if tolerated(tree, p)]
        for extra in call_hook("esbgen_check_tree", tree=tree):
            problems.extend(extra or [])
        for problem in problems:
            ctx.say(problem)
        for note in notes:
            ctx.say(f"note: {note}; the ESB serves on")
        for source, problem in inherited:
            ctx.say(f"inherited from {source} (the clone serves what its source serves): {problem}")
        checked = self.systems or sorted(tree.systems)
        if problems:
            ctx.say(f"{len(problems)} problem(s) in {len(checked)} system(s).")
            return 1
        ctx.say(f"OK: {len(checked)} system(s) follow the ESB's rules"
                + (f" ({len(notes)} note(s): what the ESB tolerates)." if notes else "."))
        return 0


@dataclass
class ExportApigw(Operation):
    """Write a system as an API gateway project (esbgen.apigw); only DIR is written, never the ESB tree."""

    system: str
    output: str
    gateway: str | None = None
    stage: str | None = None
    backend_host: str | None = None
    grant_apps: tuple[str, ...] = ()
    strict: bool = False
    backends: tuple[str, ...] = ()  # SETTING=URL
    channel_backends: tuple[str, ...] = ()  # NAME=METHOD URL
    via_esb: str | None = None
    command = "export-apigw"
    writes = False

    def read(self, ctx: Context) -> int:
        from esbgen.apigw import build_export, check_output, write_export

        say, root = ctx.say, ctx.root
        export = build_export(root, self.system, gateway=self.gateway, stage=self.stage,
                              backend_host=self.backend_host, backends=_pairs("--backend", self.backends),
                              channel_backends=_pairs("--channel-backend", self.channel_backends),
                              via_esb=self.via_esb, grant_apps=tuple(self.grant_apps))
        if self.strict and export.refused:
            raise Refused(f"--strict: {len(export.refused)} channel(s) of {self.system} have no backend read from the "
                          "code or named: " + "; ".join(f"{path} ({why})" for _, path, why in export.refused))
        for line in export.warnings:
            say(f"warning: {line}")
        replacing, _ = check_output(root, Path(self.output), self.system)
        summary = (f"{len(export.operations)} resources ({len(export.refused)} channel(s) not exported, see MIGRATION.md) "
                   f"for gateway {export.gateway}, stage {export.stage}")
        if ctx.dry_run:
            say(f"Would {'replace the export in' if replacing else 'write'} {self.output}: {summary}.")
            for name, data in export.files.items():
                say(f"  {name}  ({len(data)} bytes)")
            say("Dry run: nothing was written.")
            return 0
        replaced, carried = write_export(export, Path(self.output))
        say(f"{'Replaced the export in' if replaced else 'Wrote'} {self.output}: {summary}; {len(export.files)} files.")
        if carried:
            say(f"Kept from the earlier export: {', '.join(carried)}")
        say(f"Next: the apigw-manager steps in {Path(self.output) / 'MIGRATION.md'}.")
        return 0


def _pairs(option: str, values: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise UsageError(f"{option} {value!r} is not NAME=VALUE")
        pairs[key.strip()] = rest.strip()
    return pairs


@dataclass
class Verify(Operation):
    """``esbgen verify`` (esbgen.verify): what serves each channel and where its call goes; --live calls one."""

    system: str
    live: str | None = None
    app_code: str | None = None
    app_secret_env: str | None = None
    channel_name: str | None = None
    params: tuple[str, ...] = ()
    command = "verify"
    writes = False

    def check(self, ctx: Context) -> None:
        from esbgen.verify import check_arguments

        check_arguments(self.system, self.live, self.app_code, self.app_secret_env, self.channel_name, self.params)

    def read(self, ctx: Context) -> int:
        from esbgen.verify import verify

        return verify(ctx.root, self.system, ctx.say, live=self.live, app_code=self.app_code,
                      app_secret_env=self.app_secret_env, channel_name=self.channel_name, params=self.params)


@dataclass
class ListSystems(Operation):
    command = "list"
    writes = False

    def read(self, ctx: Context) -> int:
        from esbgen import report
        from esbgen.esbtree import load_tree
        from esbgen.rules import OFFICIAL_SYSTEMS, rowless_presets, served_channels

        tree = load_tree(ctx.root)
        # ROWS: the channel rows the ESB's sync makes; WITHOUT ROW: esb_conf.py presets its router serves all the same
        rows = [("SYSTEM", "KIND", "ROWS", "COMPONENTS", "REGISTERED", "WITHOUT ROW")]
        for name, system in sorted(tree.systems.items()):
            upper = (system.system_name or name).upper()
            if upper in tree.registered:
                registered = f"yes ({CUSTOM_CONF.name})"
            elif upper in OFFICIAL_SYSTEMS:
                registered = "official"
            else:
                registered = "no"
            channels = len(served_channels(tree, system)[0])
            rows.append((name, system.kind, str(channels), str(len(system.components)), registered,
                         str(len(rowless_presets(tree, system)))))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            ctx.say("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        report.set(systems=[dict(zip((heading.lower() for heading in rows[0]), row)) for row in rows[1:]])
        return 0


def plugins(say) -> int:
    """``esbgen plugins``: no ESB root, nothing to recover."""
    from esbgen import report
    from esbgen.plugins import describe_plugins

    rows = describe_plugins()
    for row in rows:
        hooks = ", ".join(row["hooks"]) or "-"
        say(f"{row['name']}  ({row['origin']})\n    hooks: {hooks}")
    report.set(plugins=rows)
    return 0


__all__ = ["ApplyPlan", "Check", "Clone", "ExportApigw", "ListSystems", "New", "Register", "Retarget", "SyncEdition",
           "Templatize", "Undo", "UndoList", "Verify", "plan_row_and_services", "plugins"]
