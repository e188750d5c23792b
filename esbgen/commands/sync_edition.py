"""``esbgen sync-edition``: bring the CE's components into the open-source ESB (part C of the procedure).

What comes over, and how (the granularity):

* ``components/`` and ``lib/gse/`` of the CE, file by file.  A folder the
  target lacks comes over whole, as one ``TreeAdd`` (staged by copying it,
  moved into place by one rename; a new system is one such folder); in a
  folder both have, each file the target lacks or holds with other bytes is
  one ``FileWrite`` with its diff.  Files only the target has are never
  touched, nor deleted.  Kept, and listed, when they differ:
  ``components/generic/apis/conf.py`` (the custom systems of *this* ESB) and
  every file esbgen itself changed in this tree (clone, retarget, an earlier
  sync-edition: the journal says which); ``--take-file PATH`` takes the CE's
  anyway.  ``--skip PATH`` leaves a file or folder out.
* The settings file (``configs/default.py`` in the legacy ESB,
  ``conf/default.py`` in the later one; ``esbgen.esb.layout``) is merged by its
  top-level assignments (libcst): a setting only the CE has is added after
  its CE neighbour; a setting that differs takes the CE's value, except
  ``DATABASES``, secrets and host settings, which keep the target's, and values
  that are code rather than plain literals, which need review.  ``--take
  NAME`` takes the CE's anyway.  Every edit lands at the spans libcst
  reports in the target's own bytes, so its comments, order, quoting and line
  ends stay.

A secret is what ``esbgen.redact`` says is one: a setting whose name has a
word among KEY, TOKEN, SECRET, PASSWORD and the like (``SECRET_KEY``,
``ESB_TOKEN``, ``ENCRYPT_KEY``, ``BK_APP_SECRET``), or whose value, on either
side, is a mapping with such a key (``{'PASSWORD': ...}``).  A secret of the CE is never added nor taken
without ``--take``, and its value is never shown.

A host setting (kept when it differs) is one whose name has a word (between
underscores) among HOST, HOSTS, URL, URLS, URI, DOMAIN, ADDR, ADDRESS, IP,
PORT, ENDPOINT (``PAAS_HOST``, ``HOST_CC``, ``BK_SOPS_URL``, ``ALLOWED_HOSTS``),
or whose value, on either side, holds a string that is a URL
(``scheme://...``), an IPv4 address, ``localhost`` or ``name:port``.

A plain literal is what ``ast.literal_eval`` reads (strings, numbers,
``True``/``False``/``None``, and lists, tuples, sets and dicts of them).
Anything else (``env.str(...)``, ``__import__(...)``, names, arithmetic) is
code: it runs when the ESB starts, so it is listed as "needs review" and comes
over only with ``--take``.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esbgen import redact
from esbgen.errors import EsbgenError, Refused, UsageError
from esbgen.esb.layout import (
    COMPONENTS,
    CONFAPIS,
    CUSTOM_CONF,
    LEGACY_SETTINGS,
    LIB_GSE,
    SETTINGS_FILES,
    generation,
    is_confapis_yaml,
    is_esb_root,
    not_a_root_reason,
    settings_file,
)
from esbgen.esb.rules import host_setting_reason
from esbgen.fsutil import folder_entries
from esbgen.plan import FileWrite, Plan, TreeAdd
from esbgen.redact import secret_reason
from esbgen.runner import Context, Operation

SCOPES = (COMPONENTS, LIB_GSE)
KEPT_FILES = frozenset({CUSTOM_CONF})
SKIPPED_DIRS = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")

DATABASE_SETTINGS = frozenset({"DATABASES"})
SETTING_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --- the settings file ---------------------------------------------------------------------------------


@dataclass
class Assignment:
    """A top-level ``NAME = value`` (or ``NAME: T = value``) of a settings module."""

    name: str
    index: int  # position among the module's top-level assignments
    value_start: int  # byte span of the value
    value_end: int
    line_end: int  # byte offset just after the end of the statement's line
    block_start: int  # byte offset where the statement's leading comment lines start
    code: str  # source of the statement with its leading comment lines (for adding it elsewhere)
    value_code: str
    value_key: str  # the value's meaning, whatever its layout


@dataclass
class SettingsModule:
    data: bytes
    encoding: str
    newline: str
    assignments: dict[str, Assignment]  # name -> its last assignment (the one Python keeps)
    others: list[tuple[int, str, str]]  # (line, first line of code, meaning) of other top-level statements


@dataclass
class Decision:
    name: str
    action: str  # "add", "take", "keep", "target-only", "equal"
    reason: str


def _value_key(code: str) -> str:
    try:
        return ast.dump(ast.parse("(\n" + code + "\n)", mode="eval").body)
    except SyntaxError:
        return code


def _statement_key(code: str) -> str:
    try:
        return ast.dump(ast.parse(code))
    except SyntaxError:
        return code


def _newline_of(data: bytes) -> str:
    index = data.find(b"\n")
    return "\r\n" if index > 0 and data[index - 1:index] == b"\r" else "\n"


def _with_newline(text: str, newline: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", newline)


def read_settings(data: bytes, label: str) -> SettingsModule:
    """The top-level assignments of a settings module, with the byte spans libcst reports."""
    import libcst as cst
    from libcst.metadata import ByteSpanPositionProvider, MetadataWrapper, PositionProvider

    try:
        module = cst.parse_module(data)
    except cst.ParserSyntaxError as error:
        raise EsbgenError(f"{label}:{error.raw_line}: Python syntax error: {error.message}") from None
    except UnicodeDecodeError as error:
        raise EsbgenError(f"{label}: not readable text ({error.reason})") from None
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    spans = wrapper.resolve(ByteSpanPositionProvider)
    lines = wrapper.resolve(PositionProvider)
    encoding = module.encoding

    def text_of(start: int, end: int) -> str:
        return data[start:end].decode(encoding)

    def end_of_line(offset: int) -> int:
        index = data.find(b"\n", offset)
        return len(data) if index < 0 else index + 1

    assignments: dict[str, Assignment] = {}
    others: list[tuple[int, str, str]] = []
    count = 0
    for statement in module.body:
        line = lines[statement].start.line
        if not isinstance(statement, cst.SimpleStatementLine):
            code = module.code_for_node(statement)  # with its comment lines, which ast ignores
            first = next((c.strip() for c in code.splitlines() if c.strip() and not c.strip().startswith("#")), "")
            others.append((line, first, _statement_key(code)))
            continue
        for small in statement.body:
            target = value = None
            if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
                target, value = small.targets[0].target, small.value
            elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.value is not None:
                target, value = small.target, small.value
            if target is None:
                code = module.code_for_node(small)
                if isinstance(small, cst.Expr) and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString)):
                    continue  # a docstring: text, not a setting
                others.append((line, code.strip().splitlines()[0], _statement_key(code)))
                continue
            span = spans[value]
            statement_span = spans[statement]
            line_end = end_of_line(statement_span.start + statement_span.length)
            block_start = statement_span.start
            for _ in statement.leading_lines:  # each one physical line, whatever its line end
                if block_start > 0:
                    block_start = data.rfind(b"\n", 0, block_start - 1) + 1
            if statement is module.body[0]:
                block_start = _attached_comments_start(data, block_start)
            if len(statement.body) == 1:
                code = text_of(block_start, line_end)  # the CE's own bytes, comments above included
                if not code.endswith(("\n", "\r")):
                    code += module.default_newline
            else:
                code = module.code_for_node(small) + module.default_newline
            value_code = text_of(span.start, span.start + span.length)
            assignments.pop(target.value, None)  # the last assignment counts, at its own place
            assignments[target.value] = Assignment(
                target.value,
                count,
                span.start,
                span.start + span.length,
                line_end,
                block_start,
                code,
                value_code,
                _value_key(value_code),
            )
            count += 1
    return SettingsModule(data, encoding, _newline_of(data), assignments, others)


CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=]")


def _attached_comments_start(data: bytes, offset: int) -> int:
    """Move ``offset`` (a line start) up over the comment lines directly above it.

    libcst gives the comments above a module's first statement to the module
    header; they still belong to that statement.  A shebang or an encoding
    declaration is never part of it.
    """
    line_number = data[:offset].count(b"\n")
    while offset > 0:
        start = data.rfind(b"\n", 0, offset - 1) + 1
        line = data[start:offset]
        line_number -= 1
        if not line.lstrip().startswith(b"#"):
            break
        if line_number < 2 and (line.startswith(b"#!") or CODING_RE.match(line)):
            break
        offset = start
    return offset


def host_reason(name: str, *value_codes: str) -> str | None:
    """Why a setting is a host setting (kept when it differs), or None: ``rules.host_setting_reason``'s cautious test."""
    return host_setting_reason(name, *value_codes, cautious=True)


def is_plain_literal(code: str) -> bool:
    """Whether a value is data (``ast.literal_eval`` reads it) rather than code that runs."""
    try:
        ast.literal_eval(ast.parse("(\n" + code + "\n)", mode="eval").body)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _shown(code: str) -> str:
    one = code.strip()
    return one if "\n" not in one and len(one) <= 100 else "(a longer value)"


def merge_settings(target_data: bytes, ce: SettingsModule, take: list[str], label: str = str(LEGACY_SETTINGS),
                   ce_label: str = f"the CE's {LEGACY_SETTINGS}") -> tuple[bytes, list[Decision], list[str]]:
    """The target's settings module with the CE's (read by ``read_settings``) merged in; the decisions; other notes."""
    target = read_settings(target_data, label)
    for name in take:
        if name not in ce.assignments:
            raise EsbgenError(f"--take {name}: not a top-level assignment of {ce_label} (--from)")
    ce_order = sorted(ce.assignments.values(), key=lambda a: a.index)
    decisions: list[Decision] = []
    notes: list[str] = []
    inserts: list[tuple[int, int, str]] = []  # (byte offset, order, text)
    replaces: list[tuple[int, int, str]] = []  # (start, end, text)
    for position, ce_setting in enumerate(ce_order):
        name = ce_setting.name
        mine = target.assignments.get(name)
        if mine is None:
            if name not in take:
                secret = secret_reason(name, ce_setting.value_code)
                if secret is not None:
                    decisions.append(Decision(
                        name, "secret",
                        f"only in the CE; not added ({secret}): define this ESB's own, or --take {name} adds the CE's",
                    ))
                    continue
                if not is_plain_literal(ce_setting.value_code):
                    decisions.append(Decision(
                        name, "review",
                        f"needs review: only in the CE, and its value is code, not a plain literal "
                        f"({_shown(ce_setting.value_code)}); not added; --take {name} adds it",
                    ))
                    continue
            before = next(
                (target.assignments[a.name] for a in reversed(ce_order[:position]) if a.name in target.assignments), None
            )
            after = next((target.assignments[a.name] for a in ce_order[position + 1:] if a.name in target.assignments), None)
            text = _with_newline(ce_setting.code, target.newline)
            if before is not None:
                offset, where = before.line_end, f"after {before.name}"
            elif after is not None:
                offset, where = after.block_start, f"before {after.name}"
            else:
                offset, where = len(target_data), "at the end"
            if offset == len(target_data) and target_data and not target_data.endswith((b"\n", b"\r")):
                text = target.newline + text
            inserts.append((offset, position, text))
            decisions.append(Decision(name, "add", f"only in the CE; added {where}"))
            continue
        if mine.value_key == ce_setting.value_key:
            if name in take:
                decisions.append(Decision(name, "equal", f"--take {name}: the target's value is already the CE's"))
            continue
        secret = secret_reason(name, mine.value_code, ce_setting.value_code)
        plain = is_plain_literal(mine.value_code) and is_plain_literal(ce_setting.value_code)
        if name in take:
            action, reason = "take", "differs; the CE's value comes over (--take)"
        elif name in DATABASE_SETTINGS:
            action, reason = "keep", f"differs; the target's is kept (database settings); --take {name} takes the CE's"
        elif secret is not None:
            action, reason = "secret", f"differs; the target's is kept ({secret}); --take {name} takes the CE's"
        elif not plain:
            code = ce_setting.value_code if not is_plain_literal(ce_setting.value_code) else mine.value_code
            whose = "the CE's" if code is ce_setting.value_code else "the target's"
            action = "review"
            reason = (
                f"needs review: differs, and {whose} value is code, not a plain literal ({_shown(code)}); "
                f"the target's is kept, the CE has {_shown(ce_setting.value_code)}; --take {name} takes the CE's"
            )
        else:
            why = host_reason(name, mine.value_code, ce_setting.value_code)
            if why is not None:
                action = "keep"
                reason = (
                    f"differs; the target's {_shown(mine.value_code)} is kept ({why}), the CE has "
                    f"{_shown(ce_setting.value_code)}; --take {name} takes the CE's"
                )
            else:
                action, reason = "take", "differs; the CE's value comes over"
        decisions.append(Decision(name, action, reason))
        if action == "take":
            replaces.append((mine.value_start, mine.value_end, _with_newline(ce_setting.value_code, target.newline)))
    for name, mine in sorted(target.assignments.items(), key=lambda item: item[1].index):
        if name not in ce.assignments:
            decisions.append(Decision(name, "target-only", "only in the target; kept"))
    known = {key for _, _, key in target.others}
    for line, first, key in ce.others:
        if key not in known:
            notes.append(
                f"{ce_label}:{line}: `{first}` is not a top-level assignment and is not merged; "
                "add it by hand if a setting needs it"
            )
    pieces = [(start, end, 1, 0, text) for start, end, text in replaces]
    pieces += [(offset, offset, 0, order, text) for offset, order, text in inserts]
    out: list[bytes] = []
    cursor = 0
    for start, end, _, _, text in sorted(pieces, key=lambda p: (p[0], p[2], p[3])):
        out.append(target_data[cursor:start])
        out.append(text.encode(target.encoding))
        cursor = end
    out.append(target_data[cursor:])
    return b"".join(out), decisions, notes


# --- the file tree ------------------------------------------------------------------------------


def same_root(target: Path, ce_root: Path) -> None:
    try:
        same = os.path.samefile(target, ce_root)
    except OSError:
        same = False
    if same:
        raise UsageError(f"--from {ce_root} is the target ESB root itself; give the CE's ESB root")


def resolve_ce_root(option: str) -> Path:
    """The CE's ESB root given with ``--from``; refusals name ``--from``, not ``--esb-root``."""
    root = Path(option).absolute()
    if not root.is_dir():
        raise EsbgenError(f"--from {root} is not a directory; give the CE's ESB root (where its manage.py is)")
    if not is_esb_root(root):
        raise EsbgenError(f"--from {not_a_root_reason(root)}; give the CE's ESB root (where its manage.py is)")
    return root


class CeTreeError(EsbgenError):
    """A problem found in the CE's tree: the message names ``--from``."""


def _about_ce(ce_root: Path, message: str) -> CeTreeError:
    return CeTreeError(f"--from {ce_root}: {message}")


def _refuse_link(ce_root: Path, relative: Path) -> None:
    raise _about_ce(ce_root, f"{relative} is a symbolic link; esbgen does not copy links (replace it by its files)")


def ce_files(ce_root: Path) -> tuple[list[Path], list[str]]:
    """Files of the CE's components/ and lib/gse/ (relative to its root); links refused, caches skipped.

    Each entry's type comes from its folder's listing (a stat per file was 2.9 s of pathlib calls at
    20,000 channels), in os.walk's top-down order: a folder's links to folders, its files, its folders."""
    found: list[Path] = []
    notes: list[str] = []

    def walk(directory: str, relative: str) -> None:
        entries = folder_entries(directory, by_name=True)
        folders = []
        for entry in entries:
            if entry.is_dir() and entry.name not in SKIPPED_DIRS:
                if entry.is_symlink():
                    _refuse_link(ce_root, Path(relative, entry.name))
                folders.append(entry)
        for entry in entries:
            if entry.is_dir():
                continue
            if entry.is_symlink():
                _refuse_link(ce_root, Path(relative, entry.name))
            if entry.name.endswith(SKIPPED_SUFFIXES):
                continue
            if not entry.is_file(follow_symlinks=False):
                raise _about_ce(ce_root, f"{Path(relative, entry.name)} is not a regular file; esbgen copies files only")
            found.append(Path(relative, entry.name))
        for entry in folders:
            walk(entry.path, f"{relative}/{entry.name}")

    for scope in SCOPES:
        for depth in range(1, len(scope.parts) + 1):
            part = Path(*scope.parts[:depth])
            if (ce_root / part).is_symlink():
                _refuse_link(ce_root, part)
        top = ce_root / scope
        if not top.is_dir():
            notes.append(f"the CE has no {scope}/; nothing taken from it")
            continue
        walk(os.fspath(top), scope.as_posix())
    return sorted(found), notes


def _scope_of(relative: Path) -> Path:
    for scope in SCOPES:
        if relative.parts[: len(scope.parts)] == scope.parts:
            return scope
    raise AssertionError(relative)


def _missing_folder(root: Path, relative: Path, seen: dict[tuple[str, ...], bool]) -> Path | None:
    """The shallowest folder (within the file's scope) the target lacks for ``relative``; refuse links.
    ``seen``: whether each folder asked about before is there (a folder is looked at once, not once a file)."""
    parents = relative.parts[:-1]
    if seen.get(parents):  # the file's own folder is there, and so is every one above it
        return None
    scope = _scope_of(relative)
    for depth in range(1, len(parents) + 1):
        key = parents[:depth]
        there = seen.get(key)
        if there is None:
            seen[key] = there = _target_folder_there(root, Path(*key))
        if not there:
            return Path(*key) if depth >= len(scope.parts) else scope
    return None


def _target_folder_there(root: Path, folder: Path) -> bool:
    """Whether the target has ``folder`` as a real folder; a link or a file there is refused."""
    path = root / folder
    if path.is_symlink():
        raise EsbgenError(f"{folder} is a symbolic link in the target; esbgen does not write through links")
    if not path.exists():
        return False
    if not path.is_dir():
        raise EsbgenError(f"{folder} is a file in the target and a folder in the CE; resolve it by hand")
    return True


def _bytes_of(path: str, size: int) -> bytes:
    """A file's bytes, in reads of ``size`` (its size, as a stat said) and a byte: a file of that size takes
    one read and the one that finds its end, and no file object (Path.read_bytes took twice as long)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(descriptor, size + 1):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def _copy(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    shutil.copymode(source, destination)


def _check_yaml(ce_root: Path, relative: Path) -> None:
    """Refuse a CE's confapis YAML the ESB's loader does not read: PyYAML's C loader, the ESB's own, says
    whether it does (ruamel.yaml composing it took 4 s at 20,000 channels), and ruamel.yaml reads a refused
    one again, to word why or to take it as before."""
    from esbgen.esb.confapis import collector_paused, compose, composes, read_text

    if is_confapis_yaml(relative):
        label = str(ce_root / relative)
        try:
            text = read_text(ce_root / relative, label)
            with collector_paused():
                readable = composes(text)
            if not readable:
                compose(text, label)
        except EsbgenError as error:
            raise CeTreeError(f"--from: {error}") from None


def _option_path(option: str, value: str) -> Path:
    """A PATH given to --skip or --take-file: relative to the ESB root, inside it."""
    path = Path(value)
    if not value or path.is_absolute() or ".." in path.parts:
        raise UsageError(f"{option} {value!r}: give a path relative to the ESB root, such as {CONFAPIS / 'sops'}")
    return Path(*path.parts)  # without "./" or a trailing "/"


def _under(relative: Path, folder: Path) -> bool:
    return relative.parts[: len(folder.parts)] == folder.parts


@dataclass
class SyncOutcome:
    plan: Plan
    ce_root: Path
    decisions: list[Decision] = field(default_factory=list)
    settings: Path = LEGACY_SETTINGS  # the target's settings file
    held: list[Path] = field(default_factory=list)  # files esbgen changed here, kept from the CE
    skipped: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        plan = self.plan
        folders = len(plan.tree_adds)
        configs = [w for w in plan.file_writes if w.path == self.settings]
        counts = {a: sum(1 for d in self.decisions if d.action == a) for a in ("add", "take", "keep", "secret", "review")}
        settings = ""
        if configs or any(counts[a] for a in ("keep", "secret", "review")):
            settings = (
                f"; {self.settings}: {counts['add']} added, {counts['take']} taken from the CE, {counts['keep']} kept"
                + (f", {counts['secret']} secret(s) kept" if counts["secret"] else "")
                + (f", {counts['review']} need review" if counts["review"] else "")
            )
        held = f"; {len(self.held)} file(s) esbgen changed here kept" if self.held else ""
        return (
            f"Synced from {self.ce_root}: {folders} folder(s) added ({plan.added_count} files), "
            f"{len(plan.file_writes) - len(configs)} file(s) written{settings}{held}."
        )


PYTHON_OF = {"legacy": "Python 2", "later": "Python 3"}
ACROSS_GENERATIONS = "--across-generations"


def _generation_words(root: Path) -> str:
    kind = generation(root)
    return f"a {kind} ESB ({PYTHON_OF[kind]}, {settings_file(root)})"


def generations_differ(root: Path, ce_root: Path, across: bool) -> bool:
    """Whether the CE is of the other ESB generation; refused unless ``across`` (--across-generations).

    Its components are written for the other generation's Python and Django: taken file by file they would
    replace this ESB's own with code it cannot run. A tree without a settings file tells no generation."""
    if not all(any((tree / name).is_file() for name in SETTINGS_FILES) for tree in (root, ce_root)):
        return False
    if generation(root) == generation(ce_root):
        return False
    if not across:
        raise Refused(f"the CE (--from {ce_root}) is {_generation_words(ce_root)} and this one is "
                      f"{_generation_words(root)}: its components would replace this ESB's with code for the other "
                      f"generation; sync from a CE of this generation, or give {ACROSS_GENERATIONS} to do it anyway")
    return True


def _across_generations_note(root: Path, ce_root: Path, plan: Plan) -> str:
    replaced = sum(1 for write in plan.file_writes if write.before is not None and write.path.suffix == ".py"
                   and write.path not in SETTINGS_FILES)
    added = sum(1 for add in plan.tree_adds for name in add.files if Path(name).suffix == ".py") + sum(
        1 for write in plan.file_writes if write.before is None and write.path.suffix == ".py")
    return (f"{ACROSS_GENERATIONS}: the CE is {_generation_words(ce_root)}, this ESB {_generation_words(root)}: "
            f"{replaced} of this ESB's Python files are replaced by the CE's and {added} added, all written for the "
            "other generation; check each (or --skip it) before restarting the ESB")


def plan_sync_edition(root: Path, ce_root: Path, work: Path, take: list[str], take_files: list[str] | tuple = (),
                      skip: list[str] | tuple = (), across_generations: bool = False) -> SyncOutcome:
    """What the target needs from the CE; staged under ``work``; nothing in the tree changes."""
    from esbgen.journal.history import changed_by_esbgen, changed_paths

    same_root(root, ce_root)
    across = generations_differ(root, ce_root, across_generations)
    for name in take:
        if not SETTING_NAME_RE.fullmatch(name):
            raise UsageError(f"--take {name!r} is not a setting name")
    skips = [_option_path("--skip", value) for value in skip]
    takes = [_option_path("--take-file", value) for value in take_files]
    plan = Plan(root, f"sync-edition from {ce_root}")
    target_settings, ce_settings = _settings_files(root, ce_root)
    outcome = SyncOutcome(plan, ce_root, settings=target_settings)
    settings_skipped = any(_under(target_settings, s) or _under(ce_settings, s) for s in skips)

    # The settings file first: a bad --take is refused before anything is staged.
    if settings_skipped:
        configs_write, decisions, notes = None, [], [f"{target_settings} is left out (--skip); settings not merged"]
        if take:
            raise UsageError(f"--take {take[0]}: the settings file is left out with --skip")
    else:
        configs_write, decisions, notes = _configs_change(root, ce_root, take, target_settings, ce_settings)
    outcome.decisions = decisions
    outcome.settings = target_settings

    files, scope_notes = ce_files(ce_root)
    for option, given in (("--skip", skips), ("--take-file", takes)):
        for path in given:
            if not any(_under(f, path) for f in files) and not (option == "--skip" and settings_skipped
                                                                and (path == target_settings or path == ce_settings)):
                raise UsageError(f"{option} {path}: the CE (--from {ce_root}) has no such file or folder in "
                                 f"{', '.join(str(s) + '/' for s in SCOPES)}" + (" or its settings file" if option == "--skip" else ""))
    plan.notes.extend(scope_notes)
    esbgen_changed = changed_paths(root)
    folders: dict[Path, list[Path]] = {}
    seen_folders: dict[tuple[str, ...], bool] = {}
    writes: list[FileWrite] = []
    kept: list[str] = []
    from esbgen import progress

    progress.phase("reading", len(files))
    for relative in files:
        progress.tick()
        if any(_under(relative, s) for s in skips):
            outcome.skipped.append(relative)
            continue
        folder = _missing_folder(root, relative, seen_folders)
        if folder is not None:
            _check_yaml(ce_root, relative)
            folders.setdefault(folder, []).append(relative.relative_to(folder))
            continue
        # strings, not Paths, and one lstat: 40,000 docs at 20,000 channels
        target, source = f"{root}/{relative}", f"{ce_root}/{relative}"
        try:
            there = os.lstat(target)
        except (FileNotFoundError, NotADirectoryError):
            there = None
        if there is not None and stat.S_ISLNK(there.st_mode):
            raise EsbgenError(f"{relative} is a symbolic link in the target; esbgen does not write through links")
        if there is not None and not stat.S_ISREG(there.st_mode):
            raise EsbgenError(f"{relative} is a folder in the target and a file in the CE; resolve it by hand")
        if there is None:
            _check_yaml(ce_root, relative)
            info = os.stat(source)
            writes.append(FileWrite(relative, None, _bytes_of(source, info.st_size), info.st_mode & 0o7777))
            continue
        data = _bytes_of(source, there.st_size)  # most are the target's size
        before = _bytes_of(target, there.st_size)
        if before == data:
            continue
        taken = any(_under(relative, t) for t in takes)
        if relative in KEPT_FILES and not taken:
            kept.append(_kept_conf_note(root, ce_root, relative))
            continue
        change = changed_by_esbgen(relative, esbgen_changed)
        if change is not None and not taken:
            outcome.held.append(relative)
            kept.append(
                f"{relative} differs from the CE's and esbgen changed it here (change {change.journal_id}: "
                f"{change.title}): the target's is kept; --take-file {relative} takes the CE's"
            )
            continue
        _check_yaml(ce_root, relative)
        writes.append(FileWrite(relative, before, data))

    stage = work / "sync-edition"
    for folder, members in sorted(folders.items()):
        staged = stage / folder
        for member in members:
            _copy(ce_root / folder / member, staged / member)
        plan.tree_adds.append(TreeAdd(folder, staged, sorted(members)))
    plan.file_writes.extend(sorted(writes, key=lambda w: str(w.path)))
    if configs_write is not None:
        plan.file_writes.append(configs_write)
    plan.notes.extend(kept)
    if outcome.skipped:
        plan.notes.append(f"left out (--skip): {len(outcome.skipped)} file(s) of the CE under {', '.join(map(str, skips))}")
    for decision in decisions:
        plan.notes.append(f"{target_settings} {decision.name}: {decision.reason}")
    plan.notes.extend(notes)
    if across:
        plan.notes.append(_across_generations_note(root, ce_root, plan))
    if not plan.is_empty:
        plan.notes.append("files only the target has are kept; run `esbgen check` after applying")
    return outcome


def _settings_files(root: Path, ce_root: Path) -> tuple[Path, Path]:
    """The target's settings file and the CE's (each tree's own generation; ``esbgen.esb.layout``)."""
    ce_settings = settings_file(ce_root)
    has_own = any((root / name).is_file() or (root / name).is_symlink() for name in SETTINGS_FILES)
    return (settings_file(root) if has_own else ce_settings), ce_settings


def _configs_change(root: Path, ce_root: Path, take: list[str], target_rel: Path,
                    ce_rel: Path) -> tuple[FileWrite | None, list[Decision], list[str]]:
    ce_path = ce_root / ce_rel
    target_path = root / target_rel
    if ce_path.is_symlink():
        _refuse_link(ce_root, ce_rel)
    if target_path.is_symlink():
        raise EsbgenError(f"{target_rel} is a symbolic link in the target; esbgen does not write through links")
    if not ce_path.is_file():
        names = " nor ".join(str(n) for n in SETTINGS_FILES)
        if take:
            raise CeTreeError(f"--take {take[0]}: the CE (--from {ce_root}) has neither {names}")
        return None, [], [f"the CE has neither {names}; settings not merged"]
    ce_data = ce_path.read_bytes()
    redact.learn(redact.secret_values(ce_data))  # the CE's secrets are masked as this ESB's are
    ce_label = str(ce_path)
    notes = []
    if ce_rel != target_rel:
        notes.append(
            f"the CE keeps its settings in {ce_rel}, this ESB in {target_rel}: merged into {target_rel} "
            "(the other ESB generation's file: check every setting added from it)"
        )
    if not target_path.exists():
        try:
            settings = read_settings(ce_data, ce_label)  # refuse a module that does not parse, and check --take
        except EsbgenError as error:
            raise CeTreeError(f"--from: {error}") from None
        for name in take:
            if name not in settings.assignments:
                raise CeTreeError(f"--take {name}: not a top-level assignment of {ce_label} (--from)")
        return (
            FileWrite(target_rel, None, ce_data, ce_path.stat().st_mode & 0o7777),
            [],
            notes + [f"the target has no {target_rel}: the CE's comes over whole; check its DATABASES, secrets and hosts"],
        )
    before = target_path.read_bytes()
    if before == ce_data and not take:
        try:
            ast.parse(ce_data)
            return None, [], notes  # the CE's own settings: nothing to merge, no libcst (0.2 s to import)
        except (SyntaxError, ValueError):
            pass  # libcst reads it, or words why not
    try:
        ce = read_settings(ce_data, ce_label)
    except EsbgenError as error:
        raise CeTreeError(f"--from: {error}") from None
    after, decisions, merge_notes = merge_settings(before, ce, take, str(target_rel), ce_label)
    return (FileWrite(target_rel, before, after) if after != before else None), decisions, notes + merge_notes


def _kept_conf_note(root: Path, ce_root: Path, relative: Path) -> str:
    from esbgen.esb.tree import read_custom_conf

    note = (
        f"{relative} differs from the CE's: the target's is kept (it registers this ESB's own systems and channels)"
        f"; --take-file {relative} takes the CE's"
    )
    try:
        mine, my_channels = read_custom_conf(root)
        theirs, their_channels = read_custom_conf(ce_root)
    except EsbgenError:
        return note
    systems = sorted(set(theirs) - set(mine))
    paths = sorted({c.path for c in their_channels} - {c.path for c in my_channels})
    missing = []
    if systems:
        missing.append(f"SYSTEMS {', '.join(systems)}")
    if paths:
        missing.append(f"CHANNELS {', '.join(paths)}")
    if missing:
        note += f"; the CE's {' and '.join(missing)} are not in it: add them by hand if this ESB serves them"
    return note


@dataclass
class SyncEdition(Operation):
    ce_option: str
    take: tuple[str, ...] = ()
    take_files: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    across_generations: bool = False
    command = "sync-edition"
    ce_root: Path | None = None
    outcome: Any = None

    def check(self, ctx: Context) -> None:
        if not self.ce_option:
            raise UsageError("--from needs the CE's ESB root")
        self.ce_root = resolve_ce_root(self.ce_option)
        same_root(ctx.root, self.ce_root)

    def make_plan(self, ctx: Context, work: Path) -> Plan:
        from esbgen.services import service_steps

        self.outcome = plan_sync_edition(ctx.root, self.ce_root, work, list(self.take), list(self.take_files),
                                         list(self.skip), self.across_generations)
        self.outcome.plan.post_steps.extend(service_steps(ctx.root, ctx.services))
        return self.outcome.plan

    def nothing_to_do(self, plan: Plan) -> str:
        return f"{plan.root} already has what it takes from {self.ce_root}"

    def summary(self, plan: Plan) -> list[str]:
        return [self.outcome.summary()]

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        return {"source": str(self.ce_root)}
