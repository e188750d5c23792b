"""One swap as a change like any other: planned here, applied by esbgen's runner and journal.

``plan_swap`` reads nginx's configuration, plans the edit of the upstream's ``server`` lines,
checks the new backends, and for ``--activate`` plans the ``engine_servers`` rows (and tries
their write in a transaction it rolls back). The plan's steps are external steps of this
plugin's kinds (``esbgen_nginx.steps``): the nginx file (write, ``nginx -t``, reload), then the
rows. ``SwapOperation`` hands the plan to the runner, which locks the host's state folder
(``$ESBGEN_STATE_DIR``, default /var/lib/esbgen: a swap's machine need not have an ESB tree),
rolls back what a killed run left there, and applies the plan through the journal: a failure,
SIGINT or SIGTERM rolls everything back; ``esbgen undo --swap`` reverts it later. Nothing is
ever written beside the nginx configuration but the file itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esbgen.errors import EsbgenError, RolledBack, UsageError
from esbgen.fsutil import unified_diff
from esbgen.plan import ExternalStep, Plan
from esbgen.runner import Context, Operation

from esbgen_nginx.backends import Backend, CheckResult, check_backend
from esbgen_nginx.nginxctl import Nginx
from esbgen_nginx.steps import NGINX_KIND, OLD_WORKERS_SECONDS, PROGRAM_KIND, ROWS_KIND, nginx_record
from esbgen_nginx.upstream import Edit, find_upstream, plan_edit, real_path

if TYPE_CHECKING:  # the database stays unimported until --activate needs it
    from esbgen.db import connection as db
    from esbgen_nginx.agents import ActivationPlan, ActivationRequest


@dataclass
class SwapRequest:
    label: str  # "web paas", "upstream MY_UPSTREAM": how the summary names the service
    upstream: str
    backends: list[Backend]
    server_root: Path = Path("/etc/nginx")
    nginx_ctl: str | None = None  # None: nginx, or OpenResty's binary beside an OpenResty server root
    nginx_prefix: Path | None = None
    reload_command: str | None = None
    consul_template_dir: Path | None = None
    skip_check: bool = False
    reload: bool = True
    check_path: str | None = None
    connect_timeout: float = 3.0
    activation: "ActivationRequest | None" = None  # --activate: the agents' rows in engine_servers
    nginx_check_path: str | None = None  # asked through nginx after the reload (default: the location's path)
    expect_status: int | None = None  # the status that answer must have
    stop_old: "StopOld | None" = None  # --stop-old: the old backend's supervisor program
    apps_category: str | None = None  # a paasagent swap: the engine_servers category whose apps to name
    apps_database: "db.Target | None" = None  # where they are read (None: no database known)

    @property
    def main_conf(self) -> Path:
        return Path(os.path.abspath(self.server_root)) / "nginx.conf"


@dataclass
class StopOld:
    supervisorctl: str | None = None
    supervisor_conf: Path | None = None
    program: str | None = None  # --old-program; None: found from the old address
    grace: float = 0.0


@dataclass
class SwapPlan:
    """The journal's plan and what the operator is told about it."""

    plan: Plan
    lines: list[str] = field(default_factory=list)  # what will change, the checks, the rows
    diff: str = ""
    nothing: str | None = None  # the reason the plan is empty
    edit: Edit | None = None
    target: Path | None = None  # the file written (a symlink's target)
    nginx: Nginx | None = None
    activation: "ActivationPlan | None" = None
    reach: dict[str, Any] | None = None  # the nginx step's record of the check through nginx
    program: dict[str, Any] | None = None  # the --stop-old step's record
    apps: list[dict[str, Any]] | None = None  # the apps to redeploy, as --json gives them


def plan_swap(request: SwapRequest, store: Path, dry_run: bool) -> SwapPlan:
    """Everything a swap will do, checked; raise EsbgenError (one line) on any refusal. Nothing is written."""
    from esbgen_nginx.consul import refuse_rendered, templates_dir

    if len(set(request.backends)) != len(request.backends):
        raise EsbgenError("the same backend is given twice in --to")
    if request.activation is not None and not request.reload:
        raise UsageError("--activate commits the server list once nginx has reloaded: it cannot go with --no-reload")
    upstream = find_upstream(request.main_conf, request.upstream)
    edit = plan_edit(upstream, request.backends)
    where = f"upstream {upstream.name} in {upstream.file}, line {upstream.lineno}"
    title = f"swap {request.label}: {', '.join(edit.old_servers)} -> {', '.join(edit.new_servers)}"
    out = SwapPlan(Plan(store, title), edit=edit)
    activation = None
    if request.activation is not None:
        from esbgen_nginx.agents import plan_activation

        activation = plan_activation(request.activation, request.backends, edit.old_servers, dry_run)
        out.activation = activation
    rows_wanted = activation is not None and not activation.is_noop

    if edit.is_noop and not rows_wanted:
        rows = ", engine_servers already as asked" if activation is not None else ""
        out.nothing = (f"swap {request.label}: {where} already points at {', '.join(edit.new_servers)} "
                       f"(file untouched, nginx not reloaded{rows})")
        return out

    checks = _check_backends(request)
    if edit.is_noop:
        out.lines.append(f"swap {request.label}: {where} already points at {', '.join(edit.new_servers)} "
                         "(file untouched, nginx not reloaded); the server list is not as asked")
    else:
        target = real_path(upstream.file)
        refuse_rendered(target, templates_dir(request.consul_template_dir))
        _refuse_old_backup(target)
        if target != Path(os.path.abspath(upstream.file)):
            refuse_rendered(Path(os.path.abspath(upstream.file)), templates_dir(request.consul_template_dir))
        nginx = Nginx.for_root(request.server_root, request.nginx_ctl, request.nginx_prefix, request.reload_command)
        if not dry_run:
            nginx = nginx.resolve()
        out.target, out.nginx = target, nginx
        out.lines.append(f"swap {request.label}: {where}")
        _describe_edit(out.lines, edit)
        if upstream.commented_servers:
            lines = ", ".join(str(n) for n in upstream.commented_servers)
            out.lines.append(f"  note: commented-out server line(s) {lines} left as they are")
        out.diff = unified_diff(edit.before, edit.after, _diff_label(upstream.file, request.server_root))
        record = nginx_record(target, edit.before, edit.after, target.stat(), nginx, request.reload)
        out.plan.external.append(ExternalStep(
            NGINX_KIND, f"nginx: {target}, upstream {upstream.name} -> {', '.join(edit.new_servers)} (nginx -t"
            + (", reload)" if request.reload else ")"), record))
    if checks is None:
        out.lines.append("  check: skipped (--skip-check)")
    for result in checks or []:
        out.lines.append(f"  check: {result}")
    if not edit.is_noop:
        out.reach = _plan_reach(request, upstream.name, out.nginx, out.lines)
        if out.reach is not None:
            record["reach"] = out.reach
    if activation is not None:
        out.lines.extend(activation.describe(dry_run))
    if rows_wanted:
        from esbgen_nginx.agents import TABLE, activation_record, probe_write

        record = activation_record(activation)
        if not dry_run:
            probe_write(record, request.activation.database)
        out.plan.external.append(ExternalStep(ROWS_KIND, f"{TABLE} rows of {activation.request.environment} "
                                                         f"({activation.shown})", record))
    if request.stop_old is not None and not edit.is_noop:
        out.program = _plan_stop_old(request, edit, out.nginx, out.lines)
        if out.program is not None:
            out.plan.external.append(ExternalStep(
                PROGRAM_KIND, f"supervisor program {out.program['program']}: stop (the old backend)", out.program))
    if request.apps_category is not None:
        out.apps = _name_apps(request, edit, out.lines)
    return out


def _plan_reach(request: SwapRequest, upstream: str, nginx: Nginx, lines: list[str]) -> dict[str, Any] | None:
    """What the nginx step asks through nginx after the reload, with the answer before the swap."""
    from esbgen_nginx.reach import ask, find_route, master_pid_file

    if not request.reload or request.skip_check:
        why = "--no-reload" if not request.reload else "--skip-check"
        lines.append(f"  not asked through nginx ({why})")
        return None
    route = find_route(request.main_conf, upstream, request.nginx_check_path)
    if route is None:
        if request.nginx_check_path is not None or request.expect_status is not None:
            raise EsbgenError(f"no location of nginx proxies to upstream {upstream}: nothing to ask through nginx "
                              "for --nginx-check-path or --expect-status")
        lines.append(f"  not asked through nginx (no location with a path proxies to upstream {upstream})")
        return None
    before = ask(route, request.connect_timeout)
    expect = f"; HTTP {request.expect_status} expected after" if request.expect_status is not None else ""
    lines.append(f"  asked through nginx, GET {route.url} (Host {route.host_header}; {route.location})")
    lines.append(f"    before the swap: {before}{expect}")
    pid_file = master_pid_file(nginx)
    return {"route": route.to_record(), "before": before.to_record(), "expect": request.expect_status,
            "timeout": request.connect_timeout, "pid_file": str(pid_file) if pid_file else None}


def _plan_stop_old(request: SwapRequest, edit: Edit, nginx: Nginx, lines: list[str]) -> dict[str, Any] | None:
    """The record of the step that stops the old backend's program; None when it is not running."""
    from esbgen_nginx.reach import master_pid_file
    from esbgen_nginx.supervisor import Supervisorctl, find_program

    options = request.stop_old
    old = edit.removed_servers
    if not old:
        raise EsbgenError("--stop-old: every old server stays in the upstream; there is no old backend to stop")
    ctl = Supervisorctl.find(options.supervisorctl, options.supervisor_conf)
    program = find_program(ctl, old, request.backends, options.program)
    if program.state != "RUNNING":
        lines.append(f"  old backend: supervisor program {program.name} is {program.state} already; nothing to stop")
        return None
    grace = f" and {options.grace:g} s more (--grace)" if options.grace else ""
    lines.append(f"  old backend: supervisor program {program.name} (pid {program.pid}) serves {', '.join(old)}; "
                 f"stopped once nginx answers through the new backends{grace}")
    pid_file = master_pid_file(nginx)
    return {"supervisorctl": list(ctl.argv), "program": program.name, "addresses": old, "grace": options.grace,
            "pid_file": str(pid_file) if pid_file else None, "stage": "planned"}


def _name_apps(request: SwapRequest, edit: Edit, lines: list[str]) -> list[dict[str, Any]] | None:
    """Step B.6: the apps still on the old agent (read-only; a database that cannot tell gets a note)."""
    from esbgen.db import connection as db
    from esbgen_nginx.apps import describe, hosted_apps

    old = edit.removed_servers
    if request.apps_database is None or not request.apps_database.known:
        lines.append(f"  apps on the old agent: not read (no PaaS database: give --activate --database URL, or "
                     f"${db.ENV_URL})")
        return None
    try:
        apps, shown = hosted_apps(request.apps_database, request.apps_category, old)
    except Exception as error:
        if not (db.is_database_error(error) or isinstance(error, EsbgenError)):
            raise
        reason = db.explain(error) if db.is_database_error(error) else str(error)
        lines.append(f"  apps on the old agent: cannot read them ({reason})")
        return None
    lines.extend(describe(apps, request.apps_category, old, shown))
    return [app.to_record() for app in apps]


def _refuse_old_backup(target: Path) -> None:
    """esbgen 0.2.0 kept a swap's original bytes beside the file while it ran; one left there means that
    swap was killed, and the file may still hold its edit."""
    left = target.with_name(f".{target.name}.esbgen-backup")
    if os.path.lexists(left):
        raise EsbgenError(
            f"{left} exists: a swap of esbgen 0.2.0 was interrupted (it holds {target.name} as it was before that "
            "swap); compare and remove it first"
        )


def _check_backends(request: SwapRequest) -> list[CheckResult] | None:
    if request.skip_check:
        return None
    results = [check_backend(b, request.connect_timeout, request.check_path) for b in request.backends]
    dead = [result for result in results if not result.ok]
    if dead:
        what = "; ".join(str(result) for result in dead)
        raise EsbgenError(
            f"refusing to swap {request.label}: new backend {what}; "
            "nothing was changed (start it first, or --skip-check)"
        )
    return results


def _describe_edit(lines: list[str], edit: Edit) -> None:
    for kind, lineno, old, new in edit.changes:
        if kind == "changed":
            lines.append(f"  line {lineno}: {old}")
            lines.append(f"  {'':>{len(str(lineno)) + 5}} -> {new}")
        elif kind == "removed":
            lines.append(f"  line {lineno}: {old}  (removed)")
        else:
            lines.append(f"  after line {lineno}: {new}  (added)")
    lines.append(f"  servers: {', '.join(edit.old_servers)} -> {', '.join(edit.new_servers)}")


def _diff_label(file: Path, server_root: Path) -> str:
    try:
        return str(Path(os.path.abspath(file)).relative_to(os.path.abspath(server_root)))
    except ValueError:
        return str(file).lstrip("/")


@dataclass
class SwapOperation(Operation):
    """``esbgen swap``, run by esbgen's runner; its journal lives in the host's state folder."""

    request: SwapRequest | None = None
    command = "swap"
    scratch = False
    kept = "The swap itself is applied and kept"

    def __post_init__(self) -> None:
        self.planned: SwapPlan | None = None

    def store(self, ctx: Context) -> Path:
        from esbgen.journal.store import host_store

        return host_store()

    def make_plan(self, ctx: Context, work: Path | None) -> Plan:
        self.planned = plan_swap(self.request, self.store(ctx), ctx.dry_run)
        return self.planned.plan

    def nothing_to_do(self, plan: Plan) -> str:
        return self.planned.nothing or "nginx and engine_servers are already as asked"

    def describe(self, ctx: Context, plan: Plan) -> str | None:
        if not ctx.dry_run:
            return None  # a real run says what it did once it is done (summary)
        planned = self.planned
        self._report()
        rows = "; engine_servers not changed" if planned.activation is not None else ""
        lines = [*planned.lines]
        if planned.diff:
            lines.append(planned.diff)
        lines.append("steps, as one change (any failure puts back what was done):")
        lines.extend(f"  {number}. {step}" for number, step in enumerate(self._steps(plan), start=1))
        if planned.diff:
            lines.append(f"dry run: nothing written; nginx neither tested nor reloaded{rows}")
        else:
            lines.append("dry run: engine_servers not changed")
        return "\n".join(lines)

    def _steps(self, plan: Plan) -> list[str]:
        planned, steps = self.planned, []
        if planned.nginx is not None:
            steps += [f"write {planned.target}", f"test: {' '.join(planned.nginx.command('-t'))}"]
            if self.request.reload:
                steps.append(f"reload: {' '.join(planned.nginx.reload_argv())}")
            if planned.reach is not None:
                path = planned.reach["route"]["path"]
                steps.append(f"ask GET {path} through nginx; roll all back if it answers worse")
        steps += [step.description + ": written and committed" for step in plan.external if step.kind == ROWS_KIND]
        if planned.program is not None:
            program = planned.program
            steps.append(f"stop: {' '.join(program['supervisorctl'])} stop {program['program']}")
        return steps

    def apply(self, ctx: Context, plan: Plan):
        from esbgen.journal.record import apply, journals

        from esbgen.runner import journal_argv

        try:
            return apply(plan, argv=journal_argv(), context=ctx)
        except RolledBack as error:
            told = self._rolled_back(journals(self.store(ctx)))
            self._report()
            raise RolledBack(f"{error}{told}") from error

    def _rolled_back(self, history: list) -> str:
        """What the rollback did, as the end of the failure's line."""
        planned = self.planned
        records = {op.get("kind"): op.get("record", {}) for op in (history[-1].data["ops"] if history else [])}
        nginx = records.get(NGINX_KIND)
        if nginx is not None and nginx.get("stage") == "reverted":
            rows = "; engine_servers is unchanged" if planned.activation is not None else ""
            again = ""
            if planned.reach is not None and "worse" in planned.reach:  # the check failed: ask once more
                from esbgen_nginx.reach import Route, ask, master_pid, wait_for_new_workers

                # the workers that served the swap's configuration give way to those of the rollback's reload
                wait_for_new_workers(master_pid(planned.reach.get("pid_file")), set(planned.reach.get("workers", [])))
                answer = ask(Route.from_record(planned.reach["route"]), planned.reach["timeout"])
                planned.reach["after_rollback"] = answer.to_record()
                again = f"; through nginx it answers {answer} again"
            return (f"; so {planned.target} was restored byte for byte and nginx reloaded again: the old servers "
                    f"serve as before{rows}{again}")
        if planned.activation is not None and ROWS_KIND in records:
            return "; engine_servers was not changed"
        return ""

    def summary(self, plan: Plan) -> list[str]:
        planned = self.planned
        lines = list(planned.lines)
        if planned.nginx is not None:
            nginx, edit = planned.nginx, planned.edit
            if planned.target != Path(os.path.abspath(edit.upstream.file)):
                lines.append(f"  written to {planned.target} (the included path leads there through a symlink)")
            lines.append(f"  nginx: {' '.join(nginx.command())}")
            lines.append("  nginx -t: ok")
            how = " ".join(nginx.reload_argv())
            if not self.request.reload:
                lines.append(f"  reload: not done (--no-reload); nginx serves the old servers until `{how}`")
            elif nginx.reload_command:
                lines.append(f"  reload: {how}: ok")
            else:
                lines.append("  nginx -s reload: ok (signal sent; new connections go to the new servers "
                             "as nginx replaces its workers, open ones finish on the old)")
        reach = planned.reach
        if reach is not None and "after" in reach:
            lines.append(f"  asked through nginx after the reload: {reach['after']['detail']}, {reach['waited']}; "
                         f"before the swap: {reach['before']['detail']}")
        if planned.program is not None and planned.program.get("stage") == "stopped":
            program = planned.program
            waited = ("" if program.get("old_workers_finished", True)
                      else f" (nginx's old workers still ran after {OLD_WORKERS_SECONDS:g} s)")
            lines.append(f"  old backend: supervisor program {program['program']} stopped{waited}; "
                         "`esbgen undo --swap` starts it again before it points nginx back")
        self._report()
        if planned.activation is not None and not planned.activation.is_noop:
            lines.extend(planned.activation.done_lines())
            note = next((step.record.get("note") for step in plan.external if step.kind == ROWS_KIND), None)
            if note:
                lines.append(f"  note: {note}")
        if planned.edit is not None and not planned.edit.is_noop:
            lines.append(f"  no backup beside the file; to swap back: `esbgen undo --swap`, or --to "
                         f"{' --to '.join(planned.edit.old_servers)}")
        return lines

    def _report(self) -> None:
        """--json: the answers through nginx, the old program, the apps to redeploy, as values."""
        from esbgen import report

        planned, values = self.planned, {}
        if planned.reach is not None:
            values["through_nginx"] = {key: planned.reach.get(key) for key in
                                       ("route", "before", "after", "worse", "after_rollback", "expect")}
        if planned.program is not None:
            values["old_program"] = {key: planned.program.get(key) for key in ("program", "addresses", "stage")}
        if planned.apps is not None:
            values["apps_to_redeploy"] = [app for app in planned.apps if app["deployed"] is not False]
        report.set(**values)

    def applied_line(self, journal) -> str:
        return f"Applied as change {journal.id} in {journal.path.parent.parent}; `esbgen undo --swap` reverts it."

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        return {"system": None}
