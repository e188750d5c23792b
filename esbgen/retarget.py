"""``esbgen retarget``: an existing system's channels forward to another app (scenario 1 of part D).

Only the app code moves: in every confapis file of the system (RUN_MODE
folders included) the ``/o/<app>`` part of each dest_path on the current app,
and in its Python files the app literals its SaaS type names (sops'
``^/o/bk_sops``).  Paths, codenames, SYSTEM_NAME and host settings stay, so
callers keep working.  The edits are the clone's own (``dest_path_app_edit``,
``python_edits``), applied directly with ``rendered_text``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from esbgen.confapis import compose, dest_path_app_edit, read_text
from esbgen.domain import Channel, CloneTarget, ComponentSet
from esbgen.errors import EsbgenError
from esbgen.layout import settings_file
from esbgen.plan import FileWrite, Plan
from esbgen.saas import APP_PATH_RE, SaasType


@dataclass
class RetargetOutcome:
    plan: Plan
    system: ComponentSet
    saas_type: SaasType
    current_app: str
    app_code: str
    edits_by_kind: dict[str, int] = field(default_factory=dict)


def _dest_app(channel: Channel) -> str | None:
    dest = channel.get("dest_path")
    match = APP_PATH_RE.match(dest) if isinstance(dest, str) else None
    return match.group(1) if match else None


def _setting_values(root: Path, names: list[str]) -> dict[str, str]:
    """Plain string values of ``names`` in the tree's settings file, for the notes (unreadable: none)."""
    path = root / settings_file(root)
    try:
        module = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return {}
    values = {}
    for statement in module.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
            name = statement.targets[0].id
            if name in names and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str):
                values[name] = statement.value.value
    return values


def plan_retarget(root: Path, system_name: str, app_code: str, saas_type_name: str | None = None) -> RetargetOutcome:
    """The plan that moves ``system_name``'s channels (and app literals) to ``app_code``; nothing changes."""
    from esbgen.esbtree import load_tree, python_files
    from esbgen.pyedit import PythonRewrites, python_edits
    from esbgen.rules import validate_app_code, validate_system_folder
    from esbgen.saas import select_saas_type
    from esbgen.template import rendered_text

    validate_system_folder(system_name, "system")
    validate_app_code(app_code)
    tree = load_tree(root, only={system_name})
    system = tree.systems.get(system_name)
    if system is None:
        known = ", ".join(sorted(tree.systems)) or "none"
        raise EsbgenError(f"unknown system {system_name!r} in {root} (systems: {known})")
    saas_type = select_saas_type(system, saas_type_name)
    current = saas_type.source_app_code(system)
    on_current = [c for c in system.channels if current and _dest_app(c) == current]
    if not on_current:
        raise EsbgenError(
            f"no dest_path of {system_name} is on an app (/o/<app>/...); retarget has nothing to move"
        )
    values = {"app_code": app_code}
    plan = Plan(root, f"retarget {system_name} from app {current} to {app_code}")
    counts: dict[str, int] = {}

    by_file: dict[Path, list[Channel]] = {}
    for channel in system.channels:
        by_file.setdefault(channel.file, []).append(channel)
    for relpath in system.yaml_files:
        channels = by_file.get(relpath, [])
        if not channels:
            continue
        before = (root / relpath).read_bytes()
        text = read_text(root / relpath, str(relpath))
        edits = [e for e in (dest_path_app_edit(text, c, current) for c in channels) if e is not None]
        after_text = rendered_text(text, edits, values)
        compose(after_text, str(relpath))  # the edited file still reads as YAML
        after = after_text.encode("utf-8")
        if after != before:
            plan.file_writes.append(FileWrite(relpath, before, after))
            counts["dest_path"] = counts.get("dest_path", 0) + len(edits)

    target = CloneTarget(system.name, app_code, system.system_name or system.name.upper(), "")
    # Only the app moves: rewrites of other variables (host settings...) are the clone's business.
    rewrites = [r for r in saas_type.literal_rewrites(system, target, current) if r.var == "app_code"]
    if system.python_dir is not None and rewrites:
        for path in python_files(root / system.python_dir):
            relpath = path.relative_to(root)
            before = path.read_bytes()
            try:
                before.decode("utf-8")
            except UnicodeDecodeError:
                raise EsbgenError(f"{relpath}: not UTF-8 text; esbgen edits UTF-8 Python files only") from None
            text, edits = python_edits(before, str(relpath), PythonRewrites(strings=rewrites))
            after = rendered_text(text, edits, values).encode("utf-8")
            if after != before:
                plan.file_writes.append(FileWrite(relpath, before, after))
                for edit in edits:
                    counts[edit.note] = counts.get(edit.note, 0) + 1

    for channel in system.channels:
        app = _dest_app(channel)
        if app != current and app != app_code:
            shown = channel.get("dest_path")
            plan.notes.append(f"{channel.where}: dest_path {shown!r} is not on app {current}; kept")
    if current == app_code:
        plan.unchanged.append(f"{system_name} already forwards to app {app_code}")
    host_settings = saas_type.host_settings(system)
    if host_settings and not plan.is_empty:
        plan.notes.extend(_host_notes(root, host_settings, current, app_code, plan))
    return RetargetOutcome(plan, system, saas_type, current, app_code, counts)


def _host_notes(root: Path, names: list[str], current: str, app_code: str, plan: Plan) -> list[str]:
    """Why the host setting stays: the copied app is served by the same app server, under /o/<new app>/."""
    from esbgen.saas import app_literal

    known = _setting_values(root, names)
    settings = settings_file(root)
    shown = ", ".join(f"{n} (= {known[n]!r})" if n in known else n for n in names)
    python_moved = any(w.path.suffix == ".py" for w in plan.file_writes)
    notes = [
        f"host setting {shown} kept: the copied app is reached on the same host, under /o/{app_code}/"
        + (f"; the prefix the component strips before calling it becomes ^/o/{app_code} (see the diff)" if python_moved else "")
        + f"; if app {app_code} is served from another host, set it in {settings}"
    ]
    for name, value in known.items():
        if app_literal(current).search(value):
            notes.append(f"{settings}: {name} = {value!r} names app {current}; point it at app {app_code} by hand")
    return notes
