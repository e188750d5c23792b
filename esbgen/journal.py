"""Applying plans atomically: a journal first, then renames; rollback, recovery and undo.

Everything lives in ``<ESB root>/.esbgen/``: ``lock`` (one writer at a time),
``journal/<id>/journal.json`` (the steps and their state), ``stage/``
(the new folders and files, moved into place by rename) and ``backup/``
(what a step replaced).  A run killed at any point leaves a journal in
state ``prepared`` or ``applying``; the next run rolls it back first.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from esbgen.errors import EsbgenError
from esbgen.fsutil import atomic_write_bytes, fsync_dir
from esbgen.plan import Plan

STATE_DIR = ".esbgen"
UNFINISHED = ("prepared", "applying")


class ExternalHandler(Protocol):
    def apply(self, record: dict[str, Any], root: Path) -> None: ...
    def rollback(self, record: dict[str, Any], root: Path) -> None: ...


# Handlers of external steps by kind (database rows...); plugins may add theirs.
EXTERNAL_HANDLERS: dict[str, ExternalHandler] = {}


def state_dir(root: Path) -> Path:
    return root / STATE_DIR


def work_dir(root: Path) -> Path:
    """A scratch folder on the tree's file system, so staged output moves into place by rename."""
    path = state_dir(root) / "tmp" / uuid.uuid4().hex[:12]
    path.mkdir(parents=True)
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str | None:
    try:
        return _sha(path.read_bytes())
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def lock_timeout() -> float:
    try:
        return float(os.environ.get("ESBGEN_LOCK_TIMEOUT", "5"))
    except ValueError:
        return 5.0


@contextmanager
def locked(root: Path, timeout: float | None = None) -> Iterator[None]:
    """One esbgen writer per ESB root: wait briefly for the lock, then refuse."""
    directory = state_dir(root)
    directory.mkdir(exist_ok=True)
    handle = open(directory / "lock", "a+")
    deadline = time.monotonic() + (lock_timeout() if timeout is None else timeout)
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    holder = (directory / "lock").read_text().strip() or "another esbgen run"
                    raise EsbgenError(f"{root} is locked by {holder}; try again when it has finished") from None
                time.sleep(0.05)
        handle.seek(0)
        handle.truncate()
        handle.write(f"esbgen pid {os.getpid()} since {_now()}\n")
        handle.flush()
        yield
    finally:
        try:
            handle.seek(0)
            handle.truncate()
        except OSError:
            pass
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@dataclass
class Journal:
    path: Path  # the journal folder
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def state(self) -> str:
        return self.data["state"]

    def save(self) -> None:
        atomic_write_bytes(self.path / "journal.json", json.dumps(self.data, indent=1, ensure_ascii=False).encode())

    def set_state(self, state: str) -> None:
        self.data["state"] = state
        self.data[f"{state}_at"] = _now()
        self.save()

    @classmethod
    def load(cls, path: Path) -> "Journal":
        try:
            return cls(path, json.loads((path / "journal.json").read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            raise EsbgenError(f"journal {path} is unreadable: {error}") from None


def journals(root: Path) -> list[Journal]:
    folder = state_dir(root) / "journal"
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        if (entry / "journal.json").is_file():
            found.append(Journal.load(entry))
        else:
            # A run killed before its journal was written changed nothing yet.
            shutil.rmtree(entry, ignore_errors=True)
    found.sort(key=lambda j: j.data.get("seq", 0))
    return found


def _tree_fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath, filename)
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + str(path.stat().st_size).encode() + b"\n")
    return digest.hexdigest()


def _rename(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source, destination)
    fsync_dir(destination.parent)
    fsync_dir(source.parent)


class Crash(Exception):
    """Raised by the test hook to stop a run between two steps, as kill -9 would."""


def _crash_point(name: str) -> None:
    # Tests kill the process here (ESBGEN_CRASH_AT=<point>) to prove recovery.
    if os.environ.get("ESBGEN_CRASH_AT") == name:
        os._exit(137)


def prepare(plan: Plan, argv: list[str] | None = None) -> Journal:
    """Write the journal, the staged files and the backups; nothing in the tree changes yet."""
    root = plan.root
    folder = state_dir(root) / "journal"
    folder.mkdir(parents=True, exist_ok=True)
    seq = max((j.data.get("seq", 0) for j in journals(root)), default=0) + 1
    journal_id = f"{seq:05d}-{uuid.uuid4().hex[:8]}"
    path = folder / journal_id
    path.mkdir()
    ops: list[dict[str, Any]] = []
    for index, add in enumerate(plan.tree_adds):
        staged = Path("stage") / str(index)
        _rename_or_copy(add.staged, path / staged)
        ops.append(
            {
                "op": "tree",
                "path": str(add.path),
                "staged": str(staged),
                "backup": str(Path("backup") / str(index)) if add.replaces else None,
                "fingerprint": _tree_fingerprint(path / staged),
            }
        )
        _crash_point("prepare-tree")
    for index, write in enumerate(plan.file_writes):
        new = Path("new") / str(index)
        (path / new).parent.mkdir(parents=True, exist_ok=True)
        (path / new).write_bytes(write.after)
        backup = None
        if write.before is not None:
            backup = Path("backup") / f"file-{index}"
            (path / backup).parent.mkdir(parents=True, exist_ok=True)
            (path / backup).write_bytes(write.before)
        mode = write.mode
        if mode is None:
            try:
                mode = (root / write.path).stat().st_mode & 0o7777
            except FileNotFoundError:
                mode = 0o644
        ops.append(
            {
                "op": "file",
                "path": str(write.path),
                "new": str(new),
                "backup": str(backup) if backup else None,
                "before_sha": _sha(write.before) if write.before is not None else None,
                "after_sha": _sha(write.after),
                "mode": mode,
            }
        )
    for step in plan.external:
        if step.kind not in EXTERNAL_HANDLERS:
            raise EsbgenError(f"no handler for external step {step.kind!r}")
        ops.append({"op": "external", "kind": step.kind, "description": step.description, "record": step.record})
    journal = Journal(
        path,
        {
            "id": journal_id,
            "seq": seq,
            "title": plan.title,
            "argv": argv if argv is not None else sys.argv[1:],
            "kind": "change",
            "created_at": _now(),
            "state": "prepared",
            "ops": ops,
        },
    )
    journal.save()
    return journal


def _rename_or_copy(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, destination)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        shutil.copytree(source, destination, symlinks=True)


def _apply_op(journal: Journal, root: Path, op: dict[str, Any]) -> None:
    target = root / op["path"]
    if op["op"] == "tree":
        if op["backup"]:
            _rename(target, journal.path / op["backup"])
            _crash_point("tree-backed-up")
        elif target.exists():
            raise EsbgenError(f"{op['path']} appeared while esbgen was working; nothing was changed")
        _rename(journal.path / op["staged"], target)
    elif op["op"] == "file":
        current = _file_sha(target)
        if current != op["before_sha"]:
            raise EsbgenError(f"{op['path']} changed while esbgen was working; nothing was changed")
        target.parent.mkdir(parents=True, exist_ok=True)
        data = (journal.path / op["new"]).read_bytes()
        atomic_write_bytes(target, data, op.get("mode"))
    elif op["op"] == "external":
        EXTERNAL_HANDLERS[op["kind"]].apply(op["record"], root)


def _rollback_op(journal: Journal, root: Path, op: dict[str, Any]) -> None:
    """Undo one step from whatever point it reached; safe to repeat."""
    target = root / op["path"] if "path" in op else None
    if op["op"] == "tree":
        staged = journal.path / op["staged"]
        backup = journal.path / op["backup"] if op["backup"] else None
        if not staged.exists() and target.exists():
            _rename(target, staged)
        if backup is not None and backup.exists() and not target.exists():
            _rename(backup, target)
    elif op["op"] == "file":
        if _file_sha(target) == op["after_sha"] and op["after_sha"] != op["before_sha"]:
            if op["backup"]:
                atomic_write_bytes(target, (journal.path / op["backup"]).read_bytes(), op.get("mode"))
            else:
                target.unlink()
    elif op["op"] == "external":
        EXTERNAL_HANDLERS[op["kind"]].rollback(op["record"], root)


def _rollback(journal: Journal, root: Path, upto: int | None = None) -> list[str]:
    problems = []
    ops = journal.data["ops"]
    last = len(ops) if upto is None else upto
    for op in reversed(ops[:last]):
        try:
            _rollback_op(journal, root, op)
        except Exception as error:  # keep going: restore as much as possible, then say what is left
            problems.append(f"{op.get('path') or op.get('description')}: {error}")
    return problems


def apply(plan: Plan, argv: list[str] | None = None, after_files: Callable[[], None] | None = None) -> Journal:
    """Apply a plan: all of it, or (on any failure) none of it."""
    root = plan.root
    journal = prepare(plan, argv)
    _crash_point("prepared")
    journal.set_state("applying")
    done = 0
    try:
        for op in journal.data["ops"]:
            _apply_op(journal, root, op)
            done += 1
            _crash_point(f"op-{done}")
        if after_files is not None:
            after_files()
    except BaseException as error:
        problems = _rollback(journal, root, done + 1)
        journal.data["error"] = f"{type(error).__name__}: {error}"
        if problems:
            journal.data["rollback_problems"] = problems
        journal.set_state("rolled-back")
        _cleanup_payload(journal)
        if problems:
            raise EsbgenError(
                f"{error}; rolling back left problems: {'; '.join(problems)} (journal {journal.path})"
            ) from error
        if isinstance(error, EsbgenError):
            raise
        if isinstance(error, Exception):
            raise EsbgenError(f"applying failed and was rolled back: {type(error).__name__}: {error}") from error
        raise
    for op in journal.data["ops"]:
        if op["op"] == "tree":
            op["fingerprint_applied"] = _tree_fingerprint(root / op["path"])
    journal.set_state("applied")
    _cleanup_payload(journal)
    return journal


def _cleanup_payload(journal: Journal) -> None:
    for name in ("stage", "new"):
        shutil.rmtree(journal.path / name, ignore_errors=True)


def recover(root: Path, say: Callable[[str], None]) -> None:
    """Roll back a change a killed run left unfinished, before anything else is done."""
    folder = state_dir(root) / "journal"
    if not folder.is_dir():
        return
    unfinished = [j for j in journals(root) if j.state in UNFINISHED]
    for journal in unfinished:
        problems = _rollback(journal, root)
        if problems:
            raise EsbgenError(
                f"an interrupted change ({journal.id}: {journal.data.get('title')}) could not be rolled back: "
                + "; ".join(problems)
            )
        journal.data["error"] = "interrupted; rolled back by the next run"
        journal.set_state("rolled-back")
        _cleanup_payload(journal)
        say(f"esbgen: rolled back an interrupted change ({journal.id}: {journal.data.get('title')})")
    tmp = state_dir(root) / "tmp"
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)


def undo(root: Path, journal_id: str | None = None) -> Journal:
    """Revert an applied change exactly; refuse when the tree moved on since."""
    history = journals(root)
    if not history:
        raise EsbgenError(f"nothing to undo: no change recorded in {state_dir(root)}")
    if journal_id is None:
        journal = history[-1]
    else:
        matches = [j for j in history if j.id == journal_id or j.id.startswith(journal_id)]
        if len(matches) != 1:
            raise EsbgenError(f"no single recorded change matches {journal_id!r}")
        journal = matches[0]
    if journal.state == "undone":
        raise EsbgenError(
            f"change {journal.id} ({journal.data.get('title')}) is already undone; "
            "esbgen does not undo an undo: run the original command again"
        )
    if journal.state != "applied":
        raise EsbgenError(f"change {journal.id} was not applied (state {journal.state}); nothing to undo")
    later = [j for j in history if j.data.get("seq", 0) > journal.data.get("seq", 0) and j.state == "applied"]
    if later:
        raise EsbgenError(f"undo {later[-1].id} first: it was applied after {journal.id}")
    for op in journal.data["ops"]:
        target = root / op["path"] if "path" in op else None
        if op["op"] == "tree":
            if not target.is_dir() or _tree_fingerprint(target) != op.get("fingerprint_applied"):
                raise EsbgenError(f"{op['path']} changed since change {journal.id}; undo it by hand")
        elif op["op"] == "file":
            if _file_sha(target) != op["after_sha"]:
                raise EsbgenError(f"{op['path']} changed since change {journal.id}; undo it by hand")
    ops = journal.data["ops"]
    for op in reversed(ops):
        target = root / op["path"] if "path" in op else None
        if op["op"] == "tree":
            removed = journal.path / "undone" / op["staged"]
            _rename(target, removed)
            if op["backup"]:
                _rename(journal.path / op["backup"], target)
            shutil.rmtree(removed, ignore_errors=True)
        elif op["op"] == "file":
            if op["backup"]:
                atomic_write_bytes(target, (journal.path / op["backup"]).read_bytes(), op.get("mode"))
            else:
                target.unlink()
        elif op["op"] == "external":
            EXTERNAL_HANDLERS[op["kind"]].rollback(op["record"], root)
    journal.set_state("undone")
    return journal
