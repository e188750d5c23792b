"""``--json``: a command's outcome as one JSON object on stdout, for programs that drive esbgen.

Without ``--json`` nothing here is active and every function is a no-op (``applied`` still
keeps the id of the change, for the line of a run whose stdout was closed). With
it, the lines a command says are collected instead of printed, the commands
record what they planned, applied and ran (``planned``, ``applied``,
``step_ran``, ``set``), and the command line prints one object::

    {"esbgen": "0.1.0", "command": "clone", "ok": true, "exit_code": 0,
     "changed": true, "would_change": true, "dry_run": false, "journal_id": "00001-...",
     "plan": {"title": ..., "adds": [...], "writes": [{"path": ..., "diff": ...}], ...},
     "notes": [...], "steps_run": [...], "messages": [...], "error": null}

``error`` is ``{"class": "Refused", "message": "..."}`` when the command failed, its class one of
``esbgen.errors``. ``tree_state`` says what the run left the tree in, as that class does:
``unchanged``, ``rolled back``, ``rollback incomplete`` or ``applied`` (also without an error:
``applied`` when this run applied a change, else ``unchanged``). ``changed`` says the tree (or a
service) was changed by this run; ``would_change`` that a dry run found something to do.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Iterator

_current: ContextVar["Report | None"] = ContextVar("esbgen_report", default=None)


@dataclass
class Report:
    command: str
    messages: list[str] = field(default_factory=list)
    plan: Any = None
    dry_run: bool = False
    journal_id: str | None = None
    steps_run: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    exit_code: int = 0

    def as_dict(self) -> dict[str, Any]:
        from esbgen import __version__

        extra = dict(self.extra)
        dry_run = self.dry_run or bool(extra.pop("dry_run", False))
        plan = plan_summary(self.plan) if self.plan is not None else None
        said_changed = False
        if "changed" in extra:  # a command without a plan (undo, swap) says itself
            said = bool(extra.pop("changed"))
            changed, would = said and not dry_run, said
            said_changed = changed
        else:
            changed = self.journal_id is not None or bool(self.steps_run)
            would = bool(plan and (not plan["empty"] or any(step["runnable"] for step in plan["post_steps"])))
        data = {
            "esbgen": __version__,
            "command": self.command,
            "ok": self.error is None and self.exit_code == 0,
            "exit_code": self.exit_code,
            "changed": changed,
            "would_change": would if dry_run else changed,
            "dry_run": dry_run,
            "journal_id": self.journal_id,
            "plan": plan,
            "notes": list(plan["notes"]) if plan else [],
            "steps_run": self.steps_run,
            "messages": self.messages,
            "error": None if self.error is None else {"class": type(self.error).__name__, "message": str(self.error)},
            "tree_state": self.tree_state(said_changed),
        }
        data.update(extra)
        return data

    def tree_state(self, said_changed: bool) -> str:
        from esbgen.errors import APPLIED, UNCHANGED

        if self.error is not None:
            return getattr(self.error, "tree_state", UNCHANGED)
        return APPLIED if self.journal_id is not None or said_changed else UNCHANGED

    def to_json(self) -> str:
        from esbgen.redact import mask_data

        return json.dumps(mask_data(self.as_dict()), ensure_ascii=False, sort_keys=True)


def _text(data: bytes | None) -> str:
    return "" if data is None else data.decode("utf-8", errors="replace")


def plan_summary(plan) -> dict[str, Any]:
    """A plan as data: what it adds, each file's before and after with its diff, steps and notes."""
    from esbgen.fsutil import unified_diff

    return {
        "title": plan.title,
        "root": str(plan.root),
        "empty": plan.is_empty,
        "adds": [
            {"path": str(add.path), "replaces": add.replaces, "files": [str(f) for f in add.files],
             "changed": [str(c) for c in add.changed]}
            for add in plan.tree_adds
        ],
        "writes": [
            {"path": str(write.path), "action": "create" if write.before is None else "modify",
             "before": _text(write.before), "after": _text(write.after),
             "diff": unified_diff(write.before, write.after, str(write.path))}
            for write in plan.file_writes
        ],
        "external": [step.description for step in plan.external],
        "post_steps": [{"description": step.description, "runnable": step.runnable} for step in plan.post_steps],
        "unchanged": list(plan.unchanged),
        "notes": list(plan.notes),
    }


def active() -> Report | None:
    return _current.get()


@contextmanager
def collecting(command: str) -> Iterator[Report]:
    report = Report(command)
    token = _current.set(report)
    try:
        yield report
    finally:
        _current.reset(token)


def say(text: str) -> bool:
    """Collect a line of output; False when no report is active (print it then)."""
    report = _current.get()
    if report is None:
        return False
    report.messages.extend(str(text).splitlines() or [""])
    return True


def planned(plan, dry_run: bool | None = None) -> None:
    report = _current.get()
    if report is not None:
        report.plan = plan
        if dry_run is not None:
            report.dry_run = dry_run


def applied(journal_id: str) -> None:
    global _last_applied
    _last_applied = journal_id
    report = _current.get()
    if report is not None:
        report.journal_id = journal_id


_last_applied: str | None = None  # kept without --json too: a run whose stdout closed says what it applied


def last_applied() -> str | None:
    return _last_applied


def forget_applied() -> None:
    global _last_applied
    _last_applied = None


def step_ran(description: str) -> None:
    report = _current.get()
    if report is not None:
        report.steps_run.append(description)


def set(**fields: Any) -> None:  # noqa: A001 - report.set(...) reads as what it does
    report = _current.get()
    if report is not None:
        report.extra.update(fields)
