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

A plan file holds no secret (``esbgen.redact``): a file the plan modifies is
carried as its edits (the byte spans replaced and their new text) with the
sha256 of the whole file before and after, and ``apply-plan`` derives the new
bytes from the host's own file, whose fingerprint must be the plan's.  A plan
whose new text would hold a secret is refused, and the file is private (0600).

A plan file may come from anywhere: it is checked against its schema before
use (one line on any mismatch), every path in it stays inside the ESB root with
no symbolic link on the way, its modes are permission bits only (no setuid,
setgid or sticky bit), and it creates only regular files and folders.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from esbgen.errors import Refused, UsageError
from esbgen import redact
from esbgen.fsutil import apply_edits, atomic_write_bytes, byte_edits, folder_entries, lstat_components
from esbgen.esb.layout import COMPONENTS, SETTINGS_FILES
from esbgen.plan import FileWrite, Plan, TreeAdd, relative_names

FORMAT = "esbgen-plan"
VERSION = 2  # 2: a modified file is carried as its edits
READS = (1, 2)
PERMISSION_BITS = 0o777
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
    if entry == DIR:
        _walk_folder(os.fspath(top), relative.as_posix() + "/", state)


def _walk_folder(folder: str, prefix: str, state: dict[str, str]) -> None:
    """The entries below ``folder`` as os.walk sees them (a link to a folder is not gone into), named by
    strings: the Paths os.walk's names were made into cost more than hashing 40,000 files."""
    for entry in folder_entries(folder):
        name, key = entry.name, prefix + entry.name
        if _is_folder(entry):
            if name in CACHES:
                continue
            if entry.is_symlink():  # recorded as the link itself
                state[key] = "link:" + os.readlink(entry.path)
                continue
            state[key] = DIR
            _walk_folder(entry.path, key + "/", state)
        elif not name.endswith(CACHE_SUFFIXES):
            if entry.is_file(follow_symlinks=False):
                with open(entry.path, "rb") as file:
                    state[key] = _sha(file.read())
            else:
                state[key] = _entry(Path(entry.path)) or ""


def _is_folder(entry: os.DirEntry) -> bool:
    """Whether os.walk lists the entry among the folders (a link to one too)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


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
            _refuse_secret(content, add.path / relative)
            files.append({"path": Path(relative).as_posix(), "mode": source.stat().st_mode & PERMISSION_BITS,
                          "sha256": _sha(content), "base64": base64.b64encode(content).decode("ascii")})
        dirs = sorted(Path(dirpath, name).relative_to(add.staged).as_posix()
                      for dirpath, dirnames, _ in os.walk(add.staged) for name in dirnames)
        adds.append({"path": Path(add.path).as_posix(), "replaces": add.replaces,
                     "changed": [Path(c).as_posix() for c in add.changed], "dirs": dirs, "files": files})
    writes = [_write_entry(write) for write in plan.file_writes]
    return {
        "format": FORMAT,
        "version": VERSION,
        "title": plan.title,
        "made": {"by": f"esbgen {__version__}", "host": socket.gethostname(), "root": str(plan.root),
                 "at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "argv": argv},
        "basis": tree_state(plan.root, _extra_paths(plan)),
        "adds": adds,
        "writes": writes,
        "notes": [redact.mask(note) for note in plan.notes],
        "needs_settings": list(plan.needs_settings),
        "unchanged": [redact.mask(item) for item in plan.unchanged],
    }


def _refuse_secret(data: bytes, where: Path | str) -> None:
    if redact.holds_secret(data, settings=Path(where) in SETTINGS_FILES):
        raise UsageError(f"the plan writes a secret into {Path(where).as_posix()}, and a plan file holds none: "
                         "run the command on each host instead of --plan-out")


def _write_entry(write: FileWrite) -> dict[str, Any]:
    """A file the plan writes: a new one whole, a modified one as its edits (the rest of it is the host's own)."""
    entry: dict[str, Any] = {
        "path": Path(write.path).as_posix(),
        "before_sha256": _sha(write.before) if write.before is not None else None,
        "after_sha256": _sha(write.after),
        "mode": write.mode & PERMISSION_BITS if write.mode is not None else None,
    }
    if write.before is None:
        _refuse_secret(write.after, write.path)
        entry["base64"] = base64.b64encode(write.after).decode("ascii")
        return entry
    edits = byte_edits(write.before, write.after)
    for _, _, text in edits:
        _refuse_secret(text, write.path)
    entry["edits"] = [{"start": start, "end": end, "base64": base64.b64encode(text).decode("ascii")}
                      for start, end, text in edits]
    return entry


def write_plan(plan: Plan, destination: str | Path, argv: list[str]) -> Path:
    path = Path(destination)
    data = plan_data(plan, argv)
    data["made"]["argv"] = [redact.mask(arg) for arg in data["made"]["argv"]]
    try:
        atomic_write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(), 0o600)
    except OSError as error:
        raise Refused(f"cannot write the plan to {path}: {error.strerror or error}") from None
    return path


def read_plan(source: str | Path) -> dict[str, Any]:
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read the plan {path}: {error.strerror or error}") from None
    except (ValueError, RecursionError) as error:
        raise UsageError(f"{path} is not a plan esbgen wrote (not JSON: {error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{path} is not a plan esbgen wrote (made with --plan-out)")
    if data.get("version") not in READS:
        raise UsageError(f"{path} is a plan of format version {data.get('version')!r}; "
                         f"this esbgen reads versions {', '.join(map(str, READS))}")
    for key in ("basis", "adds", "writes"):
        if key not in data:
            raise UsageError(f"{path} is not a whole plan: it has no {key!r}")
    problem = schema_problem(data)
    if problem is not None:
        raise UsageError(f"{path} is not a plan esbgen wrote: {problem}")
    _check_paths(path, data)
    return data


# --- the schema: what each key holds (a plan file is untrusted input) ---------------------------------

SHA256 = re.compile(r"[0-9a-f]{64}")
_TYPES = {str: "a string", int: "a number", bool: "true or false", list: "a list", dict: "an object"}


def _kind(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def _fields(where: str, value: Any, required: dict[str, Any], optional: dict[str, Any] = {}) -> str | None:
    """The first key of ``value`` (an object) that is missing or holds the wrong type, as a line; else None.
    A key's type is a type, a tuple of them (None among them: may be null), or a function returning a problem."""
    if not isinstance(value, dict):
        return f"{where} is not an object"
    for key, kind in [*required.items(), *optional.items()]:
        if key not in value:
            if key in required:
                return f"{where} has no {key!r}"
            continue
        item = value[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if item is None and None in kinds:
            continue
        check = next(k for k in kinds if k is not None)
        if not isinstance(check, type):
            problem = check(f"{where}.{key}", item)
            if problem is not None:
                return problem
        elif not _kind(item, check):
            return f"{where}.{key} is not {_TYPES[check]}"
    return None


def _sha_field(where: str, value: Any) -> str | None:
    return None if isinstance(value, str) and SHA256.fullmatch(value) else f"{where} is not a sha256"


def _mode_field(where: str, value: Any) -> str | None:
    if not _kind(value, int) or not 0 <= value <= PERMISSION_BITS:
        shown = oct(value) if _kind(value, int) else repr(value)
        return f"{where} {shown} is not a file mode of permission bits only (no setuid, setgid or sticky bit)"
    return None


def _strings(where: str, value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return f"{where} is not a list of strings"
    return None


def _objects(check):
    def each(where: str, value: Any) -> str | None:
        if not isinstance(value, list):
            return f"{where} is not a list"
        for index, item in enumerate(value):
            problem = check(f"{where}[{index}]", item)
            if problem is not None:
                return problem
        return None
    return each


def _file_item(where: str, item: Any) -> str | None:
    return _fields(where, item, {"path": str, "mode": _mode_field, "sha256": _sha_field, "base64": str})


def _edit(where: str, item: Any) -> str | None:
    return _fields(where, item, {"start": int, "end": int, "base64": str})


def _add(where: str, item: Any) -> str | None:
    return _fields(where, item, {"path": str, "replaces": bool, "changed": _strings, "dirs": _strings,
                                 "files": _objects(_file_item)})


def _write(where: str, item: Any) -> str | None:
    problem = _fields(where, item, {"path": str, "before_sha256": (_sha_field, None), "after_sha256": _sha_field},
                      {"mode": (_mode_field, None), "base64": str, "edits": _objects(_edit)})
    if problem is None and ("base64" in item) == ("edits" in item):
        problem = f"{where} has not exactly one of 'base64' and 'edits'"
    if problem is None and "edits" in item and item["before_sha256"] is None:
        problem = f"{where} edits a file it says is new"
    return problem


def _basis(where: str, value: Any) -> str | None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return f"{where} is not an object of strings"
    return None


def _made(where: str, value: Any) -> str | None:
    return _fields(where, value, {}, {"by": str, "host": str, "root": str, "at": str, "argv": _strings})


def schema_problem(data: dict[str, Any]) -> str | None:
    """What in a plan file's object does not match the schema plan_data writes, in one line; None when all does."""
    return _fields("plan", data, {"basis": _basis, "adds": _objects(_add), "writes": _objects(_write)},
                   {"title": str, "made": _made, "notes": _strings, "unchanged": _strings, "needs_settings": _setting_names})


def _setting_names(where: str, value: Any) -> str | None:
    return _strings(where, value) or next((f"{where}: {name!r} is not a setting name" for name in value
                                           if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)), None)


def _check_paths(path: Path, data: dict[str, Any]) -> None:
    """Every path of the plan stays inside the ESB root (a plan file may come from anywhere)."""
    for name in _plan_paths(data):
        parts = name.split("/")  # no empty part: not absolute, and these are all the parts a path has
        if (not name or any(part in ("", ".", "..", ".esbgen") for part in parts) or "\0" in name):
            raise UsageError(f"{path}: the plan names {name!r}, which is not a path inside an ESB root")


def _plan_paths(data: dict[str, Any]) -> list[str]:
    names = [add["path"] for add in data["adds"]] + [write["path"] for write in data["writes"]]
    names += [f"{add['path']}/{item['path']}" for add in data["adds"] for item in add["files"]]
    names += [f"{add['path']}/{folder}" for add in data["adds"] for folder in add["dirs"]]
    names += [f"{add['path']}/{changed}" for add in data["adds"] for changed in add["changed"]]
    return names


def _refuse_links(root: Path, data: dict[str, Any], source: str) -> None:
    """No symbolic link (nor anything but a folder) on the way to a path the plan writes, and nothing but a
    regular file (or, for a folder it replaces, a folder) where it writes: each component lstat-ed, never followed."""
    targets = [(add["path"], "folder") for add in data["adds"]] + [(write["path"], "file") for write in data["writes"]]
    for name, kind in targets:
        parts = PurePosixPath(name).parts
        try:
            for index, _, info in lstat_components(Path(root), parts):
                last = index == len(parts) - 1
                shown = "/".join(parts[: index + 1])
                if stat.S_ISLNK(info.st_mode):
                    raise Refused(f"{source}: {shown} is a symbolic link; a plan is never applied through a link, "
                                  "nothing was changed")
                expected = stat.S_ISDIR if not last or kind == "folder" else stat.S_ISREG
                if not expected(info.st_mode):
                    what = "folder" if expected is stat.S_ISDIR else "regular file"
                    raise Refused(f"{source}: {shown} is not a {what}; nothing was changed")
        except OSError as error:
            raise Refused(f"{source}: cannot look at {name}: {error.strerror or error}; nothing was changed") from None


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
    _refuse_links(root, data, source)
    extra = [Path(add["path"]) for add in data["adds"]] + [Path(write["path"]) for write in data["writes"]]
    found = tree_state(root, extra)
    plan = Plan(root, f"{data.get('title', 'a plan')} (planned on {data.get('made', {}).get('host', '?')}, from {source})")
    plan.notes.extend(data.get("notes", []))
    plan.needs_settings = list(data.get("needs_settings", []))
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
    raise Refused(
        f"this tree differs from the one the plan was made for (on {made.get('host', '?')}, {made.get('root', '?')}): "
        f"{shown}; nothing was changed"
    )


def _materialise(data: dict[str, Any], root: Path, work: Path, plan: Plan) -> None:
    from esbgen.journal.fingerprint import remember_written

    for index, add in enumerate(data["adds"]):
        staged = work / "plan" / str(index)
        staged.mkdir(parents=True)
        for folder in add["dirs"]:
            (staged / folder).mkdir(parents=True, exist_ok=True)
        made = set()  # the folders made for the files so far: one mkdir a folder, not one a file
        umask = os.umask(0)
        os.umask(umask)
        for item in add["files"]:
            content = _decoded(item["base64"], f"{add['path']}/{item['path']}")
            if _sha(content) != item["sha256"]:
                raise Refused(f"the plan's copy of {add['path']}/{item['path']} is damaged (its sha256 differs)")
            target = os.path.join(staged, item["path"])
            parent = os.path.dirname(target)
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            mode = item["mode"] & PERMISSION_BITS
            try:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # writable, whatever the mode
            except FileExistsError:
                raise Refused(f"the plan names {add['path']}/{item['path']} twice, or as a file and a folder") from None
            try:
                unwritten = memoryview(content)
                while unwritten:
                    unwritten = unwritten[os.write(fd, unwritten):]
                if mode & umask:  # created with its mode, unless the umask took some of it
                    os.fchmod(fd, mode)
                remember_written(os.fstat(fd), content)  # the journal's fingerprint need not read it back
            finally:
                os.close(fd)
        plan.tree_adds.append(TreeAdd(Path(add["path"]), staged, relative_names(staged), add["replaces"],
                                      [Path(c) for c in add["changed"]]))
    for write in data["writes"]:
        target = root / write["path"]
        before = target.read_bytes() if write["before_sha256"] is not None and target.is_file() else None
        if "edits" in write:
            if before is None or _sha(before) != write["before_sha256"]:
                raise Refused(f"{write['path']} is not the file the plan edits (its sha256 differs); nothing was changed")
            try:
                after = apply_edits(before, [(edit["start"], edit["end"], _decoded(edit["base64"], write["path"]))
                                             for edit in write["edits"]])
            except ValueError as error:
                raise Refused(f"the plan's edits of {write['path']} are damaged ({error})") from None
        else:
            after = _decoded(write["base64"], write["path"])
        if _sha(after) != write["after_sha256"]:
            raise Refused(f"the plan's copy of {write['path']} is damaged (its sha256 differs)")
        mode = write.get("mode")
        plan.file_writes.append(FileWrite(Path(write["path"]), before, after, mode & PERMISSION_BITS if mode is not None else None))


def _decoded(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise Refused(f"the plan's copy of {where} is damaged (not base64)") from None


def plan_id(source: str | Path) -> str:
    """A plan file's id: the sha256 of its bytes, the same on every host it is copied to."""
    try:
        return _sha(Path(source).read_bytes())
    except OSError as error:
        raise UsageError(f"cannot read the plan {source}: {error.strerror or error}") from None
