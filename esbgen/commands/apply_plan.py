"""``esbgen apply-plan``: a plan file made once, applied as it is on each ESB host."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esbgen.errors import Refused
from esbgen.plan import Plan
from esbgen.runner import Context, Operation


def _refuse_undefined_settings(root: Path, needed: list[str]) -> None:
    """Refuse to restart an ESB onto code whose host settings this host's settings file leaves undefined
    (its calls would fail), before anything changes: a fleet's preflight finds such a host."""
    from esbgen.esb.layout import settings_file
    from esbgen.esb.routing import settings_values

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
        from esbgen.planfile import plan_from_file
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


def applied_change(root: Path, plan: str):
    """The change of this root that applied the plan of id ``plan`` and is not undone (a journal), or None."""
    from esbgen.journal.record import journals

    found = [journal for journal in journals(root) if journal.data.get("plan_id") == plan and journal.state == "applied"]
    return found[-1] if found else None


def record_steps(journal, steps: list[str]) -> None:
    """Say in the plan's change that its sync or restart ran (under the root's lock): a rerun need not repeat them."""
    from datetime import datetime, timezone

    done = journal.data.setdefault("plan_steps", {})
    for step in steps:
        done[step] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    journal.save()
