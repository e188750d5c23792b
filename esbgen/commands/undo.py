"""``esbgen undo``: the last change (or one named) reverted, ``--list`` of the changes, and what ``--dry-run``
lists: every step of the change, newest first, as undo would revert it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esbgen.errors import EsbgenError, Refused, RollbackIncomplete, UsageError
from esbgen.journal.record import Journal
from esbgen.plan import Plan
from esbgen.runner import Context, Operation


def describe_undo(journal: Journal) -> list[str]:
    lines = [f"Undo of change {journal.describe()} would, in this order:"]
    for op in reversed(journal.data["ops"]):
        if op["op"] == "tree":
            verb = "put back the folder it replaced at" if op.get("backup") else "remove the folder"
            lines.append(f"  {verb} {op['path']}/")
        elif op["op"] == "file":
            verb = "put back the earlier bytes of" if op.get("backup") or op.get("edits") else "remove"
            lines.append(f"  {verb} {op['path']}")
        elif op["op"] == "external":
            record = op.get("record", {})
            if op.get("kind") == "db_synced_rows":
                from esbgen.db.sync import undo_lines

                lines.append(f"  take back the {op['description']}, in one transaction:")
                lines.extend(f"    {line}" for line in undo_lines(record))
            elif op.get("kind") == "db_system":
                verb = "delete" if record.get("action") == "insert" else "restore"
                lines.append(f"  {verb} row {record.get('system')} in {record.get('table')} ({record.get('shown')})"
                             + (", with the rows the ESB's sync made for it since (its channels, their docs and app "
                                "permissions), in one transaction" if record.get("action") == "insert" else ""))
            else:
                lines.append(f"  revert: {op.get('description')}")
                lines.extend(f"    {line}" for line in _kind_lines(op))
    return lines


def _kind_lines(op: dict) -> list[str]:
    """What a plugin's step kind says its revert does (an optional ``describe_revert(record)``)."""
    from esbgen.plugins import step_kinds

    describe = getattr(step_kinds().get(op.get("kind")), "describe_revert", None)
    return list(describe(op.get("record", {}))) if describe is not None else []


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
        from esbgen.journal.record import check_undo
        journal = check_undo(self.store(ctx), self.journal_id, ctx)
        report.set(changed=True, undone=journal.id, dry_run=True)
        return "\n".join([*describe_undo(journal), *(f"Then: {step.description}" for step in plan.post_steps)])

    def apply(self, ctx: Context, plan: Plan):
        from esbgen.journal.record import journals, undo

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


def _undo_store(ctx: Context, swap: bool) -> Path:
    from esbgen.journal.store import host_store

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
        from esbgen.journal.record import journals

        history = journals(self.store(ctx))
        if not history:
            ctx.say("No swap recorded." if self.swap else "No change recorded.")
        for journal in history:
            ctx.say(f"{journal.id}  {journal.data.get('created_at', '?')}  {journal.state:<11}  {journal.data.get('title')}")
        report.set(history=[{"id": j.id, "state": j.state, "title": j.title, "created_at": j.data.get("created_at")}
                            for j in history])
        return 0
