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
from esbgen_nginx.steps import NGINX_KIND, ROWS_KIND, nginx_record
from esbgen_nginx.upstream import Edit, find_upstream, plan_edit, real_path

if TYPE_CHECKING:  # Django stays unimported until --activate needs it
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

    @property
    def main_conf(self) -> Path:
        return Path(os.path.abspath(self.server_root)) / "nginx.conf"


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
        out.plan.external.append(ExternalStep(
            NGINX_KIND, f"nginx: {target}, upstream {upstream.name} -> {', '.join(edit.new_servers)} (nginx -t"
            + (", reload)" if request.reload else ")"),
            nginx_record(target, edit.before, edit.after, target.stat(), nginx, request.reload)))
    if checks is None:
        out.lines.append("  check: skipped (--skip-check)")
    for result in checks or []:
        out.lines.append(f"  check: {result}")
    if activation is not None:
        out.lines.extend(activation.describe(dry_run))
    if rows_wanted:
        from esbgen_nginx.agents import TABLE, activation_record, probe_write

        record = activation_record(activation)
        if not dry_run:
            probe_write(record, request.activation.database)
        out.plan.external.append(ExternalStep(ROWS_KIND, f"{TABLE} rows of {activation.request.environment} "
                                                         f"({activation.shown})", record))
    return out


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
        from esbgen.journal import host_store

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
        steps += [step.description + ": written and committed" for step in plan.external if step.kind == ROWS_KIND]
        return steps

    def apply(self, ctx: Context, plan: Plan):
        from esbgen.journal import apply, journals

        from esbgen.runner import journal_argv

        try:
            return apply(plan, argv=journal_argv(), context=ctx)
        except RolledBack as error:
            raise RolledBack(f"{error}{self._rolled_back(journals(self.store(ctx)))}") from error

    def _rolled_back(self, history: list) -> str:
        """What the rollback did, as the end of the failure's line."""
        planned = self.planned
        records = {op.get("kind"): op.get("record", {}) for op in (history[-1].data["ops"] if history else [])}
        nginx = records.get(NGINX_KIND)
        if nginx is not None and nginx.get("stage") == "reverted":
            rows = "; engine_servers is unchanged" if planned.activation is not None else ""
            return (f"; so {planned.target} was restored byte for byte and nginx reloaded again: the old servers "
                    f"serve as before{rows}")
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
        if planned.activation is not None and not planned.activation.is_noop:
            lines.extend(planned.activation.done_lines())
            note = next((step.record.get("note") for step in plan.external if step.kind == ROWS_KIND), None)
            if note:
                lines.append(f"  note: {note}")
        if planned.edit is not None and not planned.edit.is_noop:
            lines.append(f"  no backup beside the file; to swap back: `esbgen undo --swap`, or --to "
                         f"{' --to '.join(planned.edit.old_servers)}")
        return lines

    def applied_line(self, journal) -> str:
        return f"Applied as change {journal.id} in {journal.path.parent.parent}; `esbgen undo --swap` reverts it."

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        return {"system": None}
