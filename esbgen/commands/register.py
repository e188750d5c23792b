"""``esbgen register``: a system's row, and the sync and restart steps every command that adds a system plans."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esbgen.db import registration as _registration
from esbgen.errors import Refused
from esbgen.esb.layout import CUSTOM_CONF
from esbgen.esb.rules import validate_label, validate_remark
from esbgen.plan import Plan
from esbgen.runner import Context, Operation


def plan_row_and_services(ctx: Context, plan: Plan, system: str, *, label: str, remark: str, label_given: bool,
                          remark_given: bool, required: bool = False, verify: bool = False) -> None:
    """The system's esb_component_system row (esbgen.db.registration) and the sync/restart steps asked for.

    ``verify`` (clone, new): with --sync and a database known, the sync is the verified one of
    esbgen.db.sync (rows checked against the files, recorded for undo, --grant written).
    """
    from esbgen.db.registration import plan_registration
    from esbgen.services import service_steps

    root, services = ctx.root, ctx.services
    steps = service_steps(root, services)
    known = plan_registration(plan, ctx.database, system, label=label, remark=remark, label_given=label_given,
                              remark_given=remark_given, dry_run=ctx.dry_run, required=required)
    if verify:
        from esbgen.db import sync as syncrows

        verified = bool(ctx.sync and known)
        syncrows.check_options(services, verified)
        if verified:
            steps = [syncrows.verified_sync_step(plan, root, system, services, ctx.database) if step.command and
                     step.command[-1] == "sync_data_at_deploy" else step for step in steps]
    plan.post_steps.extend(steps)


def _edits(edits_by_kind: dict[str, int]) -> str:
    return ", ".join(f"{kind} x{count}" for kind, count in sorted(edits_by_kind.items())) or "none"


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
        from esbgen.esb.tree import load_tree

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
