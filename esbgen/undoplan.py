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
            verb = "put back the earlier bytes of" if op.get("backup") else "remove"
            lines.append(f"  {verb} {op['path']}")
        elif op["op"] == "external":
            record = op.get("record", {})
            if op.get("kind") == "db_synced_rows":
                from esbgen.syncrows import undo_lines

                lines.append(f"  take back the {op['description']}, in one transaction:")
                lines.extend(f"    {line}" for line in undo_lines(record))
            elif op.get("kind") == "db_system":
                verb = "delete" if record.get("action") == "insert" else "restore"
                lines.append(f"  {verb} row {record.get('system')} in {record.get('table')} ({record.get('shown')})")
            else:
                lines.append(f"  revert: {op.get('description')}")
    return lines
