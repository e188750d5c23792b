"""Plans as files: made once (``--plan-out FILE``), applied as they are on each ESB host (``esbgen apply-plan``).

A fleet of ESB hosts must get byte-identical component files. Rather than
planning on every host, a change is planned once and the plan written with
every byte it adds or writes, together with the state of the tree it was made
for (its *basis*): every file and folder of ``components/`` and the settings
file, with the hash of each file (caches left out), and the paths the plan
adds or writes. ``apply-plan`` compares the host's tree with that basis:

* the same: the plan is applied as it is, through the journal like any change;
* already as the plan leaves it: nothing to do;
* anything else: refused with one line naming what differs, and nothing is changed.

A plan file holds files only. A database row is written once for the whole
fleet (``esbgen register``, or by the ESB's own sync), and sync and restart are
options of ``apply-plan`` on each host, so neither is in the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
from pathlib import Path, PurePosixPath
from typing import Any

from esbgen.errors import EsbgenError, UsageError
from esbgen.fsutil import atomic_write_bytes
from esbgen.layout import COMPONENTS, SETTINGS_FILES
from esbgen.plan import FileWrite, Plan, TreeAdd, relative_files

FORMAT = "esbgen-plan"
VERSION = 1
DIR = "dir"
CACHES = ("__pycache__",)
CACHE_SUFFIXES = (".pyc", ".pyo")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry(path: Path) -> str | None:
    """What the basis says of one path: ``dir``, ``link:<target>``, the file's sha256, or None when absent."""
    if os.path.islink(path):
        # a linked file is what the ESB reads through the link: its bytes count as well as where it points
        target = "link:" + os.readlink(path)
        return target + ":" + _sha(path.read_bytes()) if path.is_file() else target
    if path.is_dir():
        return DIR
    if path.is_file():
        return _sha(path.read_bytes())
    return None


def _walk(root: Path, relative: Path, state: dict[str, str]) -> None:
    top = root / relative
    entry = _entry(top)
    if entry is None:
        return
    state[relative.as_posix()] = entry
    if entry != DIR:
        return
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            path = here / name
            if name in CACHES:
                continue
            if path.is_symlink():  # os.walk does not go into links; record the link itself
                state[path.relative_to(root).as_posix()] = "link:" + os.readlink(path)
                continue
            state[path.relative_to(root).as_posix()] = DIR
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.endswith(CACHE_SUFFIXES):
                continue
            path = here / name
            state[path.relative_to(root).as_posix()] = _entry(path) or ""


def tree_state(root: Path, extra: list[Path] = ()) -> dict[str, str]:
    """The parts of the tree a plan depends on: ``components/``, the settings file, and ``extra`` paths."""
    state: dict[str, str] = {}
    for relative in [COMPONENTS, *SETTINGS_FILES, *extra]:
        if relative.as_posix() not in state:
            _walk(root, relative, state)
    return state


def _parents(relative: str) -> list[str]:
    return [p.as_posix() for p in PurePosixPath(relative).parents if str(p) != "."]


def after_state(data: dict[str, Any]) -> dict[str, str]:
    """The tree state a plan leaves, computed from its basis and its steps."""
    state = dict(data["basis"])
    for add in data["adds"]:
        path = add["path"]
        for key in [k for k in state if k == path or k.startswith(path + "/")]:
            del state[key]
        for parent in _parents(path):
            state.setdefault(parent, DIR)
        state[path] = DIR
        for folder in add["dirs"]:
            state[f"{path}/{folder}"] = DIR
        for item in add["files"]:
            state[f"{path}/{item['path']}"] = item["sha256"]
    for write in data["writes"]:
        for parent in _parents(write["path"]):
            state.setdefault(parent, DIR)
        state[write["path"]] = write["after_sha256"]
    return state


def _extra_paths(plan: Plan) -> list[Path]:
    return [Path(add.path) for add in plan.tree_adds] + [Path(write.path) for write in plan.file_writes]


def plan_data(plan: Plan, argv: list[str]) -> dict[str, Any]:
    """The plan as a JSON-serialisable object (every byte it writes included)."""
    from datetime import datetime, timezone

    from esbgen import __version__

    if plan.external:
        raise UsageError(
            "a plan file carries files only, and this plan also writes "
            + "; ".join(step.description for step in plan.external)
            + ": drop --database (and $ESBGEN_DATABASE_URL) and register the system once for the fleet"
        )
    adds = []
    for add in plan.tree_adds:
        files = []
        for relative in add.files:
            source = add.staged / relative
            content = source.read_bytes()
            files.append({"path": Path(relative).as_posix(), "mode": source.stat().st_mode & 0o7777,
                          "sha256": _sha(content), "base64": base64.b64encode(content).decode("ascii")})
        dirs = sorted(Path(dirpath, name).relative_to(add.staged).as_posix()
                      for dirpath, dirnames, _ in os.walk(add.staged) for name in dirnames)
        adds.append({"path": Path(add.path).as_posix(), "replaces": add.replaces,
                     "changed": [Path(c).as_posix() for c in add.changed], "dirs": dirs, "files": files})
    writes = [
        {"path": Path(write.path).as_posix(),
         "before_sha256": _sha(write.before) if write.before is not None else None,
         "after_sha256": _sha(write.after), "mode": write.mode,
         "base64": base64.b64encode(write.after).decode("ascii")}
        for write in plan.file_writes
    ]
    return {
        "format": FORMAT,
        "version": VERSION,
        "title": plan.title,
        "made": {"by": f"esbgen {__version__}", "host": socket.gethostname(), "root": str(plan.root),
                 "at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "argv": argv},
        "basis": tree_state(plan.root, _extra_paths(plan)),
        "adds": adds,
        "writes": writes,
        "notes": list(plan.notes),
        "unchanged": list(plan.unchanged),
    }


def write_plan(plan: Plan, destination: str | Path, argv: list[str]) -> Path:
    path = Path(destination)
    data = plan_data(plan, argv)
    try:
        atomic_write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())
    except OSError as error:
        raise EsbgenError(f"cannot write the plan to {path}: {error.strerror or error}") from None
    return path


def read_plan(source: str | Path) -> dict[str, Any]:
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read the plan {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise UsageError(f"{path} is not a plan esbgen wrote (not JSON: {error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{path} is not a plan esbgen wrote (made with --plan-out)")
    if data.get("version") != VERSION:
        raise UsageError(f"{path} is a plan of format version {data.get('version')!r}; this esbgen reads version {VERSION}")
    for key in ("basis", "adds", "writes"):
        if key not in data:
            raise UsageError(f"{path} is not a whole plan: it has no {key!r}")
    _check_paths(path, data)
    return data


def _check_paths(path: Path, data: dict[str, Any]) -> None:
    """Every path of the plan stays inside the ESB root (a plan file may come from anywhere)."""
    names = [add["path"] for add in data["adds"]] + [write["path"] for write in data["writes"]]
    names += [f"{add['path']}/{item['path']}" for add in data["adds"] for item in add["files"]]
    names += [f"{add['path']}/{folder}" for add in data["adds"] for folder in add["dirs"]]
    for name in names:
        pure = PurePosixPath(name)
        if not name or pure.is_absolute() or ".." in pure.parts or ".esbgen" in pure.parts:
            raise UsageError(f"{path}: the plan names {name!r}, which is not a path inside an ESB root")


def differences(expected: dict[str, str], found: dict[str, str]) -> list[str]:
    """What differs, as an operator reads it: the first lines of the comparison, in path order."""
    lines = []
    whole: list[str] = []  # folders said to be there or missing: their contents need no line of their own
    for key in sorted(set(expected) | set(found)):
        want, have = expected.get(key), found.get(key)
        if want == have or any(key.startswith(folder + "/") for folder in whole):
            continue
        if DIR in (want, have) and None in (want, have):
            whole.append(key)
        if want is None:
            lines.append(f"{key}{'/' if have == DIR else ''} is there")
        elif have is None:
            lines.append(f"{key}{'/' if want == DIR else ''} is missing")
        elif DIR in (want, have):
            lines.append(f"{key} is a {'folder' if have == DIR else 'file'} here")
        else:
            lines.append(f"{key} differs")
    return lines


def plan_from_file(data: dict[str, Any], root: Path, work: Path, source: str) -> Plan:
    """The plan of ``data`` for the tree at ``root``: the whole plan, an empty one, or a refusal."""
    extra = [Path(add["path"]) for add in data["adds"]] + [Path(write["path"]) for write in data["writes"]]
    found = tree_state(root, extra)
    plan = Plan(root, f"{data.get('title', 'a plan')} (planned on {data.get('made', {}).get('host', '?')}, from {source})")
    plan.notes.extend(data.get("notes", []))
    if found == data["basis"]:
        _materialise(data, root, work, plan)
        return plan
    if found == after_state(data):
        plan.notes.clear()
        plan.unchanged.append("the tree is already as the plan leaves it")
        return plan
    lines = differences(data["basis"], found)
    shown = "; ".join(lines[:3]) + (f"; and {len(lines) - 3} more" if len(lines) > 3 else "")
    made = data.get("made", {})
    raise EsbgenError(
        f"this tree differs from the one the plan was made for (on {made.get('host', '?')}, {made.get('root', '?')}): "
        f"{shown}; nothing was changed"
    )


def _materialise(data: dict[str, Any], root: Path, work: Path, plan: Plan) -> None:
    for index, add in enumerate(data["adds"]):
        staged = work / "plan" / str(index)
        staged.mkdir(parents=True)
        for folder in add["dirs"]:
            (staged / folder).mkdir(parents=True, exist_ok=True)
        for item in add["files"]:
            content = base64.b64decode(item["base64"])
            if _sha(content) != item["sha256"]:
                raise EsbgenError(f"the plan's copy of {add['path']}/{item['path']} is damaged (its sha256 differs)")
            target = staged / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            os.chmod(target, item["mode"])
        files = relative_files(staged)
        plan.tree_adds.append(TreeAdd(Path(add["path"]), staged, files, add["replaces"], [Path(c) for c in add["changed"]]))
    for write in data["writes"]:
        after = base64.b64decode(write["base64"])
        if _sha(after) != write["after_sha256"]:
            raise EsbgenError(f"the plan's copy of {write['path']} is damaged (its sha256 differs)")
        target = root / write["path"]
        before = target.read_bytes() if write["before_sha256"] is not None else None
        plan.file_writes.append(FileWrite(Path(write["path"]), before, after, write.get("mode")))
