"""What esbgen itself changed in a tree, read from its journal (the records ``esbgen undo --list`` shows).

Read only, safe without the lock.  Only changes still applied count: a change
that was undone or rolled back left nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esbgen.errors import EsbgenError


@dataclass(frozen=True)
class Change:
    """An applied change that wrote a file (or added the folder holding it)."""

    journal_id: str
    title: str


def applied(root: Path) -> list:
    """The applied changes, oldest first."""
    from esbgen.journal.record import journals

    return [j for j in journals(root) if j.state == "applied"]


def file_ops(journal) -> list[dict[str, Any]]:
    return [op for op in journal.data["ops"] if op.get("op") == "file"]


def changed_paths(root: Path) -> tuple[dict[Path, Change], dict[Path, Change]]:
    """Files esbgen wrote and folders it added, each with the last applied change that did."""
    files: dict[Path, Change] = {}
    folders: dict[Path, Change] = {}
    for journal in applied(root):
        change = Change(journal.id, journal.title)
        for op in journal.data["ops"]:
            if op.get("op") == "file":
                files[Path(op["path"])] = change
            elif op.get("op") == "tree":
                folders[Path(op["path"])] = change
    return files, folders


def changed_by_esbgen(relative: Path, paths: tuple[dict[Path, Change], dict[Path, Change]]) -> Change | None:
    """The change that wrote ``relative`` (or added a folder holding it), if esbgen did."""
    files, folders = paths
    if relative in files:
        return files[relative]
    for folder, change in folders.items():
        if relative.parts[: len(folder.parts)] == folder.parts:
            return change
    return None


def backup_bytes(journal, op: dict[str, Any], after: bytes | None = None) -> bytes | None:
    """The bytes a file op replaced (None: it created the file); refuses a missing or damaged backup.

    An op journaled as edits (a file with secrets) gives them from ``after``, the bytes it left."""
    import hashlib

    if op.get("edits") is not None:
        from esbgen.journal.record import edited_bytes

        if after is None or hashlib.sha256(after).hexdigest() != op.get("after_sha"):
            raise EsbgenError(f"{op['path']} changed between the changes of journal {journal.path}; put it back by hand, "
                              "nothing was changed")
        try:
            return edited_bytes(op, after, forward=False)
        except (EsbgenError, ValueError):
            raise EsbgenError(f"the journaled edits of {op['path']} in journal {journal.path} are damaged; "
                              "nothing was changed") from None
    if op.get("backup") is None:
        return None
    path = journal.path / op["backup"]
    try:
        data = path.read_bytes()
    except OSError:
        raise EsbgenError(f"the backup of {op['path']} is missing from journal {journal.path}; nothing was changed") from None
    if hashlib.sha256(data).hexdigest() != op.get("before_sha"):
        raise EsbgenError(f"the backup of {op['path']} in journal {journal.path} is damaged; nothing was changed")
    return data
