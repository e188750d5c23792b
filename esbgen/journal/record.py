"""Applying plans atomically: a journal first, then renames; rollback, recovery and undo.

Everything lives in ``<ESB root>/.esbgen/``: ``lock`` (naming the run that
holds the lock, an flock on the ESB root folder: one writer at a time;
``esbgen.journal.store``),
``journal/<id>/journal.json`` (the steps and their state), ``stage/`` (the new
folders, moved into place by rename), ``new/`` (the new bytes of modified
files), ``backup/`` (what a step replaced or modified) and ``tmp/`` (a run's
scratch).  The folder appears with the first change that is applied; a run
that is refused, changes nothing, only reads, or whose change failed and was
rolled back whole leaves no trace of itself.

States of a change: ``prepared`` -> ``applying`` -> ``applied``; on a failure
``rolling-back`` -> ``rolled-back``; ``esbgen undo``: ``undoing`` -> ``undone``.
A run killed at any point leaves ``prepared``, ``applying``, ``rolling-back``
or ``undoing``; the next run (under the lock, before anything else) rolls the
first three back and finishes an undo, so the tree is always exactly as it was
before the change or exactly as after it.

A change is a list of typed steps (a folder moved into place, a file written,
an external step of a kind a plugin provides: ``esbgen.journal.steps``), each with
``apply``, ``revert`` and ``verify``.  One revert loop serves rollback,
recovery and undo alike: every ``revert`` looks at what is where (the staged
copy, the tree, the backup, the rows) and only moves what still needs moving,
so it is safe to repeat after a kill.

SIGINT and SIGTERM while a change is applied unwind it like any failure (it is
rolled back, and ``Interrupted`` says so); while steps are reverted (rollback,
recovery, undo) they wait until the revert is done, so a revert is never left
half-way by a signal.  A SIGKILL leaves the journal for the next run to finish.

A swap keeps its journal in the host's state folder (``host_store``): swaps run
on machines without an ESB tree.  That folder holds directly what
``<ESB root>/.esbgen/`` holds, locked the same way.

What esbgen stores is private: its folders 0700, its files 0600 (a staged
folder keeps the modes it takes in the tree).  A file that holds a secret
(``esbgen.redact``: the settings file) is journaled as its edits, the byte
spans replaced with their text before and after, and never whole; undo and
rollback derive its earlier bytes from the file as esbgen left it.  A file put
back gets its earlier mode, and owner when esbgen runs as root.  A journal is
read as untrusted input: checked against its schema first (one line on any
mismatch), and every path in it stays inside the root with no symbolic link on
the way.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shlex
import shutil
import stat
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from esbgen.errors import APPLIED, ROLLED_BACK, EsbgenError, Interrupted, Refused, RollbackIncomplete, RolledBack
from esbgen.errors import signal_name, signals_held
from esbgen import progress
from esbgen.journal import fingerprint
from esbgen import redact
from esbgen.esb.layout import SETTINGS_FILES
from esbgen.fsutil import apply_edits, atomic_write_bytes, byte_edits, fsync_dir, lstat_components, remove_stray_temps
from esbgen.plan import Plan
from esbgen.plugins import pass_moment, step_kind
from esbgen.journal.steps import StepContext
from esbgen.journal.store import (PRIVATE_FILE, ensure_state_dir, is_host_store, locked, private_dir, safe_argv, state_dir, utc_now,
                                   write_private)

UNFINISHED = ("prepared", "applying", "rolling-back", "undoing")
PERMISSION_BITS = 0o777


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str | None:
    try:
        return _sha(path.read_bytes())
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return None


def _owner(path: Path) -> list[int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_uid, info.st_gid]


def _edits(before: bytes, after: bytes) -> list[dict[str, Any]]:
    """The spans ``after`` replaces in ``before``, with their place and text on both sides (undo needs both)."""
    import base64

    edits, shift = [], 0
    for start, end, text in byte_edits(before, after):
        edits.append({"start": start, "end": end, "after_start": start + shift, "after_end": start + shift + len(text),
                      "before": base64.b64encode(before[start:end]).decode("ascii"),
                      "after": base64.b64encode(text).decode("ascii")})
        shift += len(text) - (end - start)
    return edits


def edited_bytes(op: dict[str, Any], data: bytes, forward: bool) -> bytes:
    """The file's bytes after (``forward``) or before an op journaled as edits, from its bytes before or after."""
    import base64

    if forward:
        spans = [(e["start"], e["end"], base64.b64decode(e["after"])) for e in op["edits"]]
    else:
        spans = [(e["after_start"], e["after_end"], base64.b64decode(e["before"])) for e in op["edits"]]
    result = apply_edits(data, spans)
    if _sha(result) != op["after_sha" if forward else "before_sha"]:
        raise EsbgenError(f"the journaled edits of {op['path']} do not give the bytes esbgen recorded")
    return result


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


# ---------------------------------------------------------------------------------------------
# Journals


@dataclass
class Journal:
    path: Path  # the journal folder
    data: dict[str, Any]
    run: Any = field(default=None, compare=False, repr=False)  # the run's context (esbgen.runner.Context), never saved

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def state(self) -> str:
        return self.data["state"]

    @property
    def title(self) -> str:
        return str(self.data.get("title", ""))

    def save(self) -> None:
        atomic_write_bytes(self.path / "journal.json", json.dumps(self.data, indent=1, ensure_ascii=False).encode(),
                           PRIVATE_FILE)

    def set_state(self, state: str) -> None:
        self.data["state"] = state
        self.data[f"{state}_at"] = utc_now()
        self.save()

    def describe(self) -> str:
        return f"{self.id} ({self.title})"

    @classmethod
    def load(cls, path: Path) -> "Journal":
        try:
            data = json.loads((path / "journal.json").read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("ops"), list) or "state" not in data:
                raise ValueError("not an esbgen journal")
        except (OSError, ValueError, RecursionError) as error:
            raise EsbgenError(f"journal {path} is unreadable: {error}") from None
        problem = journal_problem(data)
        if problem is not None:
            raise EsbgenError(f"journal {path} is not one esbgen wrote: {problem}; nothing was changed")
        data.setdefault("id", path.name)
        return cls(path, data)


def journals(root: Path) -> list[Journal]:
    """Every recorded change, oldest first (read only: safe without the lock)."""
    folder = state_dir(root) / "journal"
    if not folder.is_dir():
        return []
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:  # a run that recorded nothing just removed its state folder
        return []
    found = [Journal.load(entry) for entry in entries if (entry / "journal.json").is_file()]
    found.sort(key=lambda j: (j.data.get("seq", 0), j.id))
    return found


def discard(journal: Journal) -> None:
    """Remove the journal of a change that was rolled back whole: it changed nothing, and leaves no trace
    (nor ``journal/`` once it is empty; the lock's release removes a state folder this run made)."""
    shutil.rmtree(journal.path, ignore_errors=True)
    try:
        journal.path.parent.rmdir()
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# A journal is untrusted input: its schema, and where its paths lead


def inside(root: Path, relative: str, error: type[EsbgenError] = EsbgenError) -> Path:
    """``root / relative``, refused unless every folder on the way is a real folder (lstat, never followed)
    and the path itself, when it is a link, leads to a place inside the root."""
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute() or ".." in parts:
        raise error(f"{relative!r} is not a path inside the ESB root; nothing was changed")
    try:
        for index, here, info in lstat_components(Path(root), parts):
            if stat.S_ISLNK(info.st_mode):
                real, top = os.path.realpath(here), os.path.realpath(root)
                if index < len(parts) - 1 or not real.startswith(top + os.sep):
                    raise error(f"{Path(*parts[: index + 1])} is a symbolic link on the way to {relative}; "
                                "esbgen never follows one there, nothing was changed")
            elif index < len(parts) - 1 and not stat.S_ISDIR(info.st_mode):
                raise error(f"{Path(*parts[: index + 1])} is not a folder; nothing was changed")
    except OSError as problem:
        raise error(f"cannot look at {relative}: {problem.strerror or problem}") from None
    return Path(root) / relative


_JOURNAL_PATH_KEYS = {"tree": ("staged",), "file": ()}


def _problem(where: str, value: Any, kind: Any) -> str | None:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if value is None and None in kinds:
        return None
    wanted = [k for k in kinds if k is not None]
    if any(isinstance(value, k) and not (k is int and isinstance(value, bool)) for k in wanted):
        return None
    return f"{where} is not {' or '.join({str: 'a string', int: 'a number', list: 'a list', dict: 'an object', bool: 'true or false'}[k] for k in wanted)}"


def _own_path(where: str, value: Any, *, may_be_none: bool = False) -> str | None:
    """A path the journal names (in the tree, or in its own folder): relative, never ``..``."""
    if value is None and may_be_none:
        return None
    if not isinstance(value, str) or not value or Path(value).is_absolute() or ".." in Path(value).parts or "\0" in value:
        return f"{where} {value!r} is not a relative path without '..'"
    return None


_OP_FIELDS: dict[str, dict[str, Any]] = {
    "tree": {"path": str, "staged": str, "backup": (str, None), "fingerprint": str, "created_dirs": list},
    "file": {"path": str, "new": (str, None), "backup": (str, None), "before_sha": (str, None), "after_sha": str,
             "mode": (int, None), "created_dirs": list},
    "external": {"kind": str, "description": str, "record": dict},
}


def journal_problem(data: dict[str, Any]) -> str | None:
    """What in a journal does not match the schema esbgen writes, in one line; None when all does."""
    for key, kind in (("state", str), ("ops", list), ("id", (str, None)), ("title", (str, None)), ("seq", (int, None)),
                      ("argv", (list, None))):
        problem = _problem(key, data.get(key), kind)
        if problem is not None:
            return problem
    for index, op in enumerate(data["ops"]):
        where = f"step {index + 1}"
        if not isinstance(op, dict):
            return f"{where} is not an object"
        kind = op.get("op")
        if kind not in _OP_FIELDS:
            return f"{where} is of a kind esbgen does not know: {kind!r}"
        for key, wanted in _OP_FIELDS[kind].items():
            if key not in op:
                if key == "created_dirs" or (kind == "file" and key == "new"):
                    continue
                return f"{where} has no {key!r}"
            problem = _problem(f"{where} {key}", op[key], wanted)
            if problem is not None:
                return problem
        if kind == "external":
            continue
        for key in ("path", *_JOURNAL_PATH_KEYS[kind]):
            problem = _own_path(f"{where} {key}", op[key])
            if problem is not None:
                return problem
        for key in ("backup", "new"):
            problem = _own_path(f"{where} {key}", op.get(key), may_be_none=True)
            if problem is not None:
                return problem
        for folder in op.get("created_dirs", []):
            problem = _own_path(f"{where} created_dirs", folder)
            if problem is not None:
                return problem
        if kind == "file":
            for key in ("mode", "before_mode"):
                mode = op.get(key)
                if mode is not None and (not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= PERMISSION_BITS):
                    shown = oct(mode) if isinstance(mode, int) else repr(mode)
                    return f"{where} {key} {shown} is not a file mode of permission bits only (no setuid, setgid or sticky bit)"
            if op.get("edits") is not None:
                edits = op["edits"]
                if not isinstance(edits, list) or not all(
                        isinstance(e, dict) and all(isinstance(e.get(k), int) and not isinstance(e.get(k), bool)
                                                    for k in ("start", "end", "after_start", "after_end"))
                        and all(isinstance(e.get(k), str) for k in ("before", "after")) for e in edits):
                    return f"{where} edits are not a list of spans"
                if op["before_sha"] is None:
                    return f"{where} edits a file it says is new"
            elif op.get("new") is None:
                return f"{where} has neither new bytes nor edits"
            owner = op.get("owner")
            if owner is not None and not (isinstance(owner, list) and len(owner) == 2
                                          and all(isinstance(n, int) and not isinstance(n, bool) for n in owner)):
                return f"{where} owner is not a user and a group number"
    return None


# ---------------------------------------------------------------------------------------------
# Fingerprints: what undo compares before it touches anything


def tree_fingerprint(folder: Path) -> str:
    """Names, kinds, modes and bytes of everything under ``folder`` (links are not followed)."""
    return fingerprint.tree_fingerprint(folder, fingerprint.WRITTEN, progress.tick)



def _same_as_applied(op: dict[str, Any], target: Path) -> bool:
    if target.is_symlink() or not target.is_dir():
        return False
    return tree_fingerprint(target) == op["fingerprint"]


# ---------------------------------------------------------------------------------------------
# Renames and other small steps


def _rename(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source, destination)
    fsync_dir(destination.parent)
    fsync_dir(source.parent)


def _rename_or_copy(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, destination)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        shutil.copytree(source, destination, symlinks=True)


def _missing_parents(root: Path, relative: Path) -> list[str]:
    """The folders above ``relative`` that do not exist yet, outermost first."""
    missing = []
    for parent in reversed(relative.parents):
        if str(parent) == ".":
            continue
        if not _exists(root / parent):
            missing.append(str(parent))
    return missing


def _remove_created_dirs(root: Path, op: dict[str, Any]) -> None:
    for relative in reversed(op.get("created_dirs", [])):
        try:
            (root / relative).rmdir()  # only when empty: never anything someone else put there
        except OSError:
            pass


def flush_soon(path: Path) -> threading.Thread:
    """Start writing the file system of ``path`` to disk in the background (syncfs releases the GIL)."""
    thread = threading.Thread(target=_sync_filesystem, args=(path,), name="esbgen-sync", daemon=True)
    thread.start()
    return thread


def _sync_filesystem(path: Path) -> None:
    """Flush what was staged to disk before the tree changes (one syncfs, not one fsync per file)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


# ---------------------------------------------------------------------------------------------
# Prepare and apply


def prepare(plan: Plan, argv: list[str] | None = None) -> Journal:
    """Write the journal, the staged files and the backups; nothing in the tree changes yet."""
    root = plan.root
    folder = private_dir(private_dir(ensure_state_dir(root)) / "journal")  # an older esbgen's 0755 ones too
    for step in plan.external:
        step_kind(step.kind, f"the plan of {plan.title!r}")  # refuse an unknown kind before anything is written
    seq = max((j.data.get("seq", 0) for j in journals(root)), default=0) + 1
    journal_id = f"{seq:05d}-{uuid.uuid4().hex[:8]}"
    path = folder / journal_id
    try:
        private_dir(path)
        return _prepare_into(plan, path, journal_id, seq, argv)
    except BaseException as error:
        shutil.rmtree(path, ignore_errors=True)  # only scratch: the tree is not touched before apply
        if isinstance(error, (OSError, TypeError, ValueError)):
            raise EsbgenError(f"preparing the change failed, nothing was changed: {_reason(error)}") from error
        raise


def _prepare_into(plan: Plan, path: Path, journal_id: str, seq: int, argv: list[str] | None) -> Journal:
    root = plan.root
    ops: list[dict[str, Any]] = []
    for index, add in enumerate(plan.tree_adds):
        staged = Path("stage") / str(index)
        private_dir(path / staged.parent)
        _rename_or_copy(add.staged, path / staged)
        ops.append(
            {
                "op": "tree",
                "path": str(add.path),
                "staged": str(staged),
                "backup": str(Path("backup") / str(index)) if add.replaces else None,
                "fingerprint": tree_fingerprint(path / staged),
                "created_dirs": _missing_parents(root, Path(add.path)),
            }
        )
        pass_moment("prepare-tree")
    for index, write in enumerate(plan.file_writes):
        mode = write.mode
        before_mode = _mode(root / write.path) if write.before is not None else None
        if mode is None:
            mode = before_mode if before_mode is not None else 0o644
        op: dict[str, Any] = {
            "op": "file",
            "path": str(write.path),
            "new": None,
            "backup": None,
            "before_sha": _sha(write.before) if write.before is not None else None,
            "after_sha": _sha(write.after),
            "mode": mode & PERMISSION_BITS,
            "created_dirs": _missing_parents(root, Path(write.path)),
        }
        if write.before is not None:
            op["before_mode"] = before_mode & PERMISSION_BITS if before_mode is not None else op["mode"]
            op["owner"] = _owner(root / write.path)
        settings = Path(write.path) in SETTINGS_FILES
        if write.before is not None and (redact.holds_secret(write.before, settings) or redact.holds_secret(write.after, settings)):
            op["edits"] = _edits(write.before, write.after)  # a file with secrets is never stored whole
        else:
            new = Path("new") / str(index)
            private_dir(path / new.parent)
            write_private(path / new, write.after)
            op["new"] = str(new)
            if write.before is not None:
                backup = Path("backup") / f"file-{index}"
                private_dir(path / backup.parent)
                write_private(path / backup, write.before)
                op["backup"] = str(backup)
        ops.append(op)
    pass_moment("prepare-files")
    for step in plan.external:
        ops.append({"op": "external", "kind": step.kind, "description": step.description, "record": step.record})
    journal = Journal(
        path,
        {
            "id": journal_id,
            "seq": seq,
            "title": plan.title,
            "argv": list(argv) if argv is not None else safe_argv(),
            "kind": "change",
            "pid": os.getpid(),
            "created_at": utc_now(),
            "state": "prepared",
            "ops": ops,
            **plan.journal_extra,
        },
    )
    journal.save()  # from here on, the journal says how to take every step back
    return journal


# ---------------------------------------------------------------------------------------------
# The typed steps: each applies, reverts (idempotently, from whatever point it reached) and verifies


def _context(journal: Journal, root: Path) -> StepContext:
    return StepContext(root, journal.path, journal.id, journal.save, pass_moment, journal.run, journal.data["ops"])


class _TreeStep:
    """A folder moved into place whole; with a backup when it replaced one (--force)."""

    def apply(self, journal: Journal, root: Path, op: dict[str, Any]) -> None:
        target = inside(root, op["path"])
        if op["backup"]:
            if target.is_symlink() or not target.is_dir():
                raise EsbgenError(f"{op['path']} is no longer the folder esbgen was to replace; nothing was changed")
            private_dir(journal.path / Path(op["backup"]).parent)
            _rename(target, journal.path / op["backup"])
            pass_moment("tree-backed-up")
        elif _exists(target):
            raise EsbgenError(f"{op['path']} appeared while esbgen was working; nothing was changed")
        _rename(journal.path / op["staged"], target)

    def revert(self, journal: Journal, root: Path, index: int, op: dict[str, Any], mode: str) -> None:
        """A rollback moves the folder back to its staged place, an undo to ``undone/<index>``; either way it
        leaves the tree once, and the backup comes back once."""
        target = inside(root, op["path"])
        holder = journal.path / (op["staged"] if mode == "rollback" else f"undone/{index}")
        if mode != "rollback":
            private_dir(journal.path / "undone")
        backup = journal.path / op["backup"] if op["backup"] else None
        if not _exists(holder) and _exists(target) and (backup is None or _exists(backup)):
            _rename(target, holder)
        if backup is not None and _exists(backup) and not _exists(target):
            _rename(backup, target)
        _remove_created_dirs(root, op)

    def verify(self, journal: Journal, root: Path, op: dict[str, Any]) -> None:
        if not _same_as_applied(op, inside(root, op["path"], Refused)):
            raise Refused(f"{op['path']} changed since change {journal.id}; undo it by hand, nothing was changed")
        if op["backup"] and not (journal.path / op["backup"]).is_dir():
            raise Refused(f"the backup of {op['path']} is missing from journal {journal.path}; nothing was changed")


class _FileStep:
    """A file written whole (created, or modified with its earlier bytes in the journal)."""

    def apply(self, journal: Journal, root: Path, op: dict[str, Any]) -> None:
        target = inside(root, op["path"])
        if _file_sha(target) != op["before_sha"]:
            raise EsbgenError(f"{op['path']} changed while esbgen was working; nothing was changed")
        if op.get("edits") is not None:
            after = edited_bytes(op, target.read_bytes(), forward=True)
        else:
            after = (journal.path / op["new"]).read_bytes()
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, after, op.get("mode"))

    def revert(self, journal: Journal, root: Path, index: int, op: dict[str, Any], mode: str) -> None:
        target = inside(root, op["path"])
        remove_stray_temps(target)
        current = _file_sha(target)
        if current != op["before_sha"]:
            if current != op["after_sha"]:
                raise EsbgenError(f"{op['path']} changed since esbgen wrote it; left as it is")
            mode = op.get("before_mode", op.get("mode"))
            if op.get("edits") is not None:
                atomic_write_bytes(target, edited_bytes(op, target.read_bytes(), forward=False), mode)
                _restore_owner(target, op.get("owner"))
            elif op["backup"]:
                _put_back(journal.path / op["backup"], target, mode, op.get("owner"))
            else:
                target.unlink()
        _remove_created_dirs(root, op)

    def verify(self, journal: Journal, root: Path, op: dict[str, Any]) -> None:
        target = inside(root, op["path"], Refused)
        if _file_sha(target) != op["after_sha"] or _mode(target) != op.get("mode", _mode(target)):
            raise Refused(f"{op['path']} changed since change {journal.id}; undo it by hand, nothing was changed")
        if op.get("edits") is not None:
            try:
                edited_bytes(op, target.read_bytes(), forward=False)
            except (EsbgenError, ValueError):
                raise Refused(f"the journaled edits of {op['path']} in journal {journal.path} are damaged; "
                              "nothing was changed") from None
        elif op["backup"] and _file_sha(journal.path / op["backup"]) != op["before_sha"]:
            raise Refused(f"the backup of {op['path']} in journal {journal.path} is damaged; nothing was changed")


def _put_back(backup: Path, target: Path, mode: int | None, owner: list[int] | None = None) -> None:
    """Move the earlier bytes back by a rename, which needs no free space (undo on a full disk); a copy
    only where the journal is on another file system than the file. The file gets its earlier mode, and
    its earlier owner (or, unrecorded, the current one) where esbgen may give it."""
    real = Path(os.path.realpath(target))
    try:
        current = real.stat()
        os.chmod(backup, (mode if mode is not None else current.st_mode) & PERMISSION_BITS)
        uid, gid = owner if owner is not None else (current.st_uid, current.st_gid)
        if (uid, gid) != (os.getuid(), os.getgid()):
            try:
                os.chown(backup, uid, gid)
            except PermissionError:
                pass
        os.replace(backup, real)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        atomic_write_bytes(real, backup.read_bytes(), mode)
        _restore_owner(real, owner)
        return
    fsync_dir(real.parent)


def _restore_owner(path: Path, owner: list[int] | None) -> None:
    if owner is None or os.getuid() != 0:
        return
    try:
        os.chown(os.path.realpath(path), owner[0], owner[1])
    except OSError:
        pass


class _External:
    """A step of a kind a plugin provides (``esbgen.journal.steps``): database rows, a running nginx."""

    def apply(self, journal: Journal, root: Path, op: dict[str, Any]) -> None:
        step_kind(op["kind"], f"change {journal.id}").apply(op["record"], _context(journal, root))

    def revert(self, journal: Journal, root: Path, index: int, op: dict[str, Any], mode: str) -> None:
        step_kind(op["kind"], f"change {journal.id}").revert(op["record"], _context(journal, root))

    def verify(self, journal: Journal, root: Path, op: dict[str, Any]) -> None:
        kind = step_kind(op["kind"], f"change {journal.id}")
        try:
            applied = kind.verify(op["record"], _context(journal, root))
        except EsbgenError as error:
            raise Refused(f"cannot undo change {journal.id}: {op['description']}: {error}; nothing was changed") from None
        except Exception as error:
            raise Refused(f"cannot undo change {journal.id}: {op['description']}: {_reason(error)}; "
                          "nothing was changed") from None
        if not applied:
            raise Refused(f"cannot undo change {journal.id}: {op['description']}: changed since esbgen wrote it; "
                          "undo it by hand, nothing was changed")


_STEPS = {"tree": _TreeStep(), "file": _FileStep(), "external": _External()}


def _step(journal: Journal, op: dict[str, Any]) -> Any:
    try:
        return _STEPS[op["op"]]
    except KeyError:
        raise EsbgenError(f"journal {journal.id} has a step esbgen does not know: {op['op']!r}") from None


def _apply_op(journal: Journal, root: Path, op: dict[str, Any]) -> None:
    _step(journal, op).apply(journal, root, op)


def _revert_op(journal: Journal, root: Path, index: int, op: dict[str, Any], mode: str) -> None:
    _step(journal, op).revert(journal, root, index, op, mode)


def _where(op: dict[str, Any]) -> str:
    return str(op.get("path") or op.get("description"))


# ---------------------------------------------------------------------------------------------
# Apply


def apply(plan: Plan, argv: list[str] | None = None, after_files: Callable[[], None] | None = None,
          context: Any = None) -> Journal:
    """Apply a plan: all of it, or (on any failure, SIGINT and SIGTERM included) none of it.

    ``context`` is the run's (``esbgen.runner.Context``), handed to step kinds as ``StepContext.run``."""
    root = plan.root
    # Flushing the staged files to disk is most of what applying costs on a real disk (70 ms at
    # 2,000 channels, measured): it started when they were rendered (flush_soon), goes on while
    # prepare hashes and journals, and the last syncfs below only waits for what is left.
    flusher = flush_soon(ensure_state_dir(root))
    progress.phase("applying", sum(len(add.files) for add in plan.tree_adds) or None)  # hashing the staged files
    journal = prepare(plan, argv)  # an interrupted prepare does not wait for the disk: the flush goes on in its thread
    journal.run = context
    done = 0
    try:
        flusher.join()  # a join, unlike a syncfs in this thread, gives way to Ctrl-C at once
        flush_soon(journal.path).join()  # what prepare wrote meanwhile; the staged files are on disk before any rename
        pass_moment("prepared")
        journal.set_state("applying")
        pass_moment("applying")
        progress.phase("applying", len(journal.data["ops"]))
        for op in journal.data["ops"]:
            _apply_op(journal, root, op)
            done += 1
            progress.tick()
            pass_moment(f"op-{done}")
        if after_files is not None:
            after_files()
        pass_moment("ops-done")
        journal.set_state("applied")  # if even this fails, the change is rolled back like any other failure
    except BaseException as error:
        _roll_back(journal, root, error, done)
    try:
        pass_moment("applied")
        _cleanup_payload(journal)
    except KeyboardInterrupt as error:  # the change is in: say so, rather than that nothing was changed
        raise Interrupted(f"interrupted ({signal_name(error)}) after change {journal.id} was applied: it is kept "
                          "(`esbgen undo` reverts it)", APPLIED, signal_name(error)) from None
    return journal


def _roll_back(journal: Journal, root: Path, error: BaseException, done: int) -> None:
    """Revert what a failed (or interrupted) apply did, then raise what became of it."""
    with signals_held():  # a second Ctrl-C or SIGTERM waits for the rollback
        journal.data["error"] = redact.mask(f"{type(error).__name__}: {error}")
        _set_state_if_possible(journal, "rolling-back")
        pass_moment("rolling-back")
        # done + 1: the failing step may have got half-way (a database row, a backup moved).
        _, problems = _revert(journal, root, "rollback", upto=done + 1)
        if problems:
            # The state stays rolling-back: the next run (recovery, under the lock) retries the
            # steps that could not be reverted, and nothing else runs until they are.
            journal.data["rollback_problems"] = problems
            _set_state_if_possible(journal, "rolling-back")
        else:
            _set_state_if_possible(journal, "rolled-back")
        _cleanup_payload(journal, keep_backups=bool(problems))
    interrupted = isinstance(error, KeyboardInterrupt)
    if problems:
        reason = f"interrupted ({signal_name(error)})" if interrupted else str(error)
        raise RollbackIncomplete(
            f"{reason}; rolling back left problems: {'; '.join(problems)}; the next esbgen run retries them "
            f"(journal {journal.path})"
        ) from error
    if interrupted:
        raise Interrupted(f"interrupted ({signal_name(error)}) while applying: the change was rolled back, "
                          f"{_as_it_was(root)}", ROLLED_BACK, signal_name(error)) from None
    if isinstance(error, EsbgenError):
        raise RolledBack(str(error)) from error
    if isinstance(error, Exception):
        raise RolledBack(f"applying failed and was rolled back: {_reason(error)}") from error
    raise error


def _as_it_was(root: Path) -> str:
    return "everything is as it was" if is_host_store(root) else "the tree is as it was"


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror + (f" ({error.filename})" if error.filename else "")
    return str(error) or type(error).__name__


def _set_state_if_possible(journal: Journal, state: str) -> None:
    """Record a state while failing; if the disk refuses, the journal keeps an unfinished state and the
    next run reverts again (every revert step is idempotent)."""
    try:
        journal.set_state(state)
    except OSError:
        journal.data["state"] = state


def _cleanup_payload(journal: Journal, keep_backups: bool = False) -> None:
    """Drop what no later step needs: staged copies, new bytes, what an undo moved away."""
    names = ["stage", "new", "undone"]
    if journal.state in ("rolled-back", "undone") and not keep_backups:
        names.append("backup")
    for name in names:
        shutil.rmtree(journal.path / name, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Reverting: one loop for rollback, recovery and undo


def _revert(journal: Journal, root: Path, mode: str, upto: int | None = None,
            stop_at_first: bool = False) -> tuple[int, list[str]]:
    """Revert the steps (the first ``upto`` of them) newest first: how many were reverted, and the problems.

    ``mode`` is "rollback" or "undo" (where a folder taken out of the tree is kept). A rollback goes on past
    a step it cannot revert, to put back as much as it can; an undo (``stop_at_first``) stops there, so
    that what is left is exactly the older steps, which the next run finishes.
    """
    problems = []
    ops = journal.data["ops"]
    last = len(ops) if upto is None else min(upto, len(ops))
    reverted = 0
    for count, index in enumerate(reversed(range(last)), start=1):
        op = ops[index]
        try:
            _revert_op(journal, root, index, op, mode)
        except Exception as error:  # keep going: restore as much as possible, then say what is left
            problems.append(f"{_where(op)}: {error}")
            if stop_at_first:
                break
        else:
            reverted += 1
        progress.tick()
        pass_moment(f"{mode}-op-{count}")
    return reverted, problems


def recover(root: Path, say: Callable[[str], None], context: Any = None) -> None:
    """Before anything else (under the lock): roll back an interrupted change, finish an interrupted undo.

    A signal meanwhile waits until the recovery is done, then stops the run before its own work."""
    with signals_held() as came:
        try:
            recovered = _recover(root, say, context)
        except OSError as error:
            raise EsbgenError(f"recovering {root} failed: {_reason(error)}; nothing else was done") from None
    if came:
        raise Interrupted(f"interrupted ({signal_name(came[0])}) while recovering: "
                          f"{recovered or 'nothing was unfinished'}; nothing else was done",
                          ROLLED_BACK if recovered else APPLIED, signal_name(came[0]))


def _recover(root: Path, say: Callable[[str], None], context: Any = None) -> str:
    done = []
    folder = state_dir(root) / "journal"
    if folder.is_dir():
        for entry in sorted(folder.iterdir()):
            if entry.is_dir() and not (entry / "journal.json").is_file():
                # Killed before its journal was written: the tree was not touched yet.
                shutil.rmtree(entry, ignore_errors=True)
        for journal in journals(root):
            journal.run = context
            if journal.state in ("prepared", "applying", "rolling-back"):
                _, problems = _revert(journal, root, "rollback")
                if problems:
                    raise RollbackIncomplete(
                        f"an interrupted change ({journal.describe()}) could not be rolled back: "
                        + "; ".join(problems) + f"; fix that, and esbgen will finish the rollback (journal {journal.path})"
                    )
                journal.data.setdefault("error", "interrupted")
                journal.data["recovered_by_pid"] = os.getpid()
                journal.set_state("rolled-back")
                _cleanup_payload(journal)
                done.append(f"rolled back {journal.describe()}")
                said = "the tree is as it was before it" if not is_host_store(root) else "everything is as it was before it"
                say(f"esbgen: rolled back an interrupted change {journal.describe()}: {said}")
            elif journal.state == "undoing":
                _, problems = _revert(journal, root, "undo")
                if problems:
                    raise EsbgenError(
                        f"an interrupted undo of {journal.describe()} could not be finished: " + "; ".join(problems)
                        + f"; fix that, and esbgen will finish the undo (journal {journal.path})"
                    )
                journal.data["recovered_by_pid"] = os.getpid()
                journal.set_state("undone")
                _cleanup_payload(journal)
                done.append(f"finished the undo of {journal.describe()}")
                say(f"esbgen: finished an interrupted undo of change {journal.describe()}")
            elif any((journal.path / name).exists() for name in ("stage", "new", "undone")):
                _cleanup_payload(journal)  # killed while cleaning up after it was done
    tmp = state_dir(root) / "tmp"
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    return "; ".join(done)


def pending(root: Path) -> list[Journal]:
    """Changes a killed run left unfinished (read only, no lock: cheap for read-only commands)."""
    folder = state_dir(root) / "journal"
    if not folder.is_dir():
        return []
    return [j for j in journals(root) if j.state in UNFINISHED]


def recover_pending(root: Path, say: Callable[[str], None], context: Any = None) -> None:
    """For commands that only read the tree: recover first when (and only when) a change is unfinished."""
    unfinished = pending(root)
    if not unfinished:
        return
    try:
        with locked(root, create=False):
            recover(root, say, context)
    except EsbgenError as error:
        raise EsbgenError(f"change {unfinished[0].describe()} is unfinished (being applied, or interrupted): {error}") from None


# ---------------------------------------------------------------------------------------------
# Undo


def _pick(history: list[Journal], journal_id: str | None) -> Journal:
    if journal_id is not None:
        matches = [j for j in history if j.id == journal_id]
        if not matches:
            matches = [j for j in history if j.id.startswith(journal_id)]
        if len(matches) != 1:
            known = ", ".join(j.id for j in history[-5:])
            raise EsbgenError(f"no single recorded change matches {journal_id!r} (latest: {known}); see `esbgen undo --list`")
        return matches[0]
    done = [j for j in history if j.state in ("applied", "undone")]
    if not done:
        raise EsbgenError("nothing to undo: no applied change is recorded (`esbgen undo --list` shows the history)")
    applied = [j for j in done if j.state == "applied"]
    return applied[-1] if applied else done[0]  # undo after undo steps back through the history, to the first


def check_undo(root: Path, journal_id: str | None = None, context: Any = None) -> Journal:
    """The change ``esbgen undo`` would revert, after every check; refuses with one clear line."""
    history = journals(root)
    if not history:
        raise Refused(f"nothing to undo: no change recorded in {state_dir(root)}")
    journal = _pick(history, journal_id)
    journal.run = context
    if journal.state == "undone":
        raise Refused(
            f"{'every recorded change is undone, down to the first: ' if journal_id is None else ''}"
            f"change {journal.describe()} is already undone; esbgen does not undo an undo: "
            f"to make the change again, run it again (esbgen {' '.join(map(shlex.quote, journal.data.get('argv', [])))})"
        )
    if journal.state != "applied":
        raise Refused(f"change {journal.describe()} was never applied (state {journal.state}); there is nothing to undo")
    later = [j for j in history if j.data.get("seq", 0) > journal.data.get("seq", 0) and j.state == "applied"]
    if later:
        raise Refused(f"undo change {later[-1].describe()} first: it was applied after {journal.id}")
    progress.phase("checking")  # the fingerprints read every file the change added
    for op in journal.data["ops"]:
        _step(journal, op).verify(journal, root, op)
    return journal


def undo(root: Path, journal_id: str | None = None, context: Any = None) -> Journal:
    """Revert an applied change exactly (bytes, modes, rows); refuse when anything moved on since.

    Everything undo needs on disk is made before the first step (the journal's new state, the folder that
    takes what leaves the tree), and files go back by rename: a full disk refuses the undo up front, it
    never stops one half-way."""
    journal = check_undo(root, journal_id, context)
    # Held from the state "undoing" on: a signal between it and the first step would leave the journal
    # half-way while the run said that nothing was changed.
    with signals_held() as came:
        try:
            (journal.path / "undone").mkdir(exist_ok=True)
            journal.set_state("undoing")
        except OSError as error:
            shutil.rmtree(journal.path / "undone", ignore_errors=True)
            journal.data["state"] = "applied"
            raise Refused(f"cannot undo change {journal.id}: {_reason(error)}; nothing was changed") from None
        pass_moment("undoing")
        progress.phase("applying", len(journal.data["ops"]))
        reverted, problems = _revert(journal, root, "undo", stop_at_first=True)
        if problems and reverted == 0 and journal.data["ops"][-1]["op"] == "external":
            journal.set_state("applied")  # its kind changed nothing: refuse cleanly
            raise Refused(f"cannot undo change {journal.id}: {problems[0]}; nothing was changed")
        if problems:
            raise EsbgenError(
                f"undo of change {journal.id} stopped at {problems[0]}; fix that and run any esbgen command "
                "on this root: it finishes the undo first"
            )
        try:
            journal.set_state("undone")
        except OSError as error:
            raise EsbgenError(
                f"change {journal.id} is undone but its journal could not say so ({_reason(error)}); "
                "the next esbgen run records it"
            ) from None
        _cleanup_payload(journal)
    if came:
        raise Interrupted(f"interrupted ({signal_name(came[0])}) while undoing change {journal.id}: the undo was "
                          "finished first, the change is undone", APPLIED, signal_name(came[0]))
    return journal
