"""``esbgen clone``: a source component set becomes a new system, through a cookiecutter template."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esbgen.commands.register import _edits, plan_row_and_services
from esbgen.db import registration as _registration
from esbgen.esb.routing import closing_notes
from esbgen.design import CloneRequest, plan_clone
from esbgen.esb.rules import validate_remark
from esbgen.plan import Plan
from esbgen.runner import Context, Operation


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
        from esbgen.esb.rules import clone_remark

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
        ] + _registration.done_lines(plan) + closing_notes(plan.root, self.new, outcome.backend_settings)

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        target = self.outcome.target
        return {"source": self.source, "new": self.new, "system": target.system_name, "app_code": target.app_code,
                "saas_type": self.outcome.saas_type.name}
