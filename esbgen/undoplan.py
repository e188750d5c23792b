"""What ``esbgen undo --dry-run`` lists: every step of the change, newest first, as undo would revert it."""

from __future__ import annotations

from esbgen.journal import Journal


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
                from esbgen.syncrows import undo_lines

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
