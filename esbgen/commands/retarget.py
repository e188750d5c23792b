"""``esbgen retarget``: an existing system's calls go to another app (scenario 1 of part D).

What has to move depends on how the system's component routes a call
(``esbgen.esb.routing`` reads it from the code):

* whole path to a shared host (the legacy ESB's sops: ``PAAS_HOST`` +
  ``/o/bk_sops/...``): the ``/o/<app>`` part of each dest_path is all there is.
* prefix taken off, per-app host (the later ESB's sops: ``BK_SOPS_URL`` +
  ``/apigw/...``): the host setting the component reads becomes one named after
  the new app (``BK_SOPS_CE_URL``), to be defined in the tree's settings file
  (``--app-url`` writes it).  The dest_path prefix and the pattern the
  component takes off move with the app, so the two keep agreeing.

Paths, codenames and SYSTEM_NAME stay, so callers keep working.  The edits are
the clone's own (``dest_path_app_edit``, ``python_edits``), applied directly
with ``rendered_text``.  ``--to-source`` puts back, byte for byte, every file
the retargets of the system changed since the first one the journal records.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from esbgen.commands.register import _edits
from esbgen.errors import Refused, UsageError
from esbgen.esb.confapis import dest_path_app_edit, read_text
from esbgen.esb.model import Channel, CloneTarget, ComponentSet
from esbgen.esb.rules import APP_PATH_RE
from esbgen.fsutil import read_input
from esbgen.plan import FileWrite, Plan
from esbgen.runner import Context, Operation
from esbgen.saas import SaasType

TITLE_RE = re.compile(r"^retarget (?P<system>\S+) from app (?P<old>\S+) to (?P<new>\S+)$")
BACK_TITLE_RE = re.compile(r"^retarget (?P<system>\S+) back to app (?P<app>\S+), its source$")


@dataclass
class RetargetOutcome:
    plan: Plan
    system: ComponentSet
    saas_type: SaasType | None
    current_app: str | None
    app_code: str
    edits_by_kind: dict[str, int] = field(default_factory=dict)
    to_source: bool = False


def _dest_app(channel: Channel) -> str | None:
    dest = channel.get("dest_path")
    match = APP_PATH_RE.match(dest) if isinstance(dest, str) else None
    return match.group(1) if match else None


def _load_system(root: Path, system_name: str, edited: bool = True) -> ComponentSet:
    """The system, with the places of its values where its YAML is ``edited``."""
    from esbgen.esb.rules import validate_system_folder
    from esbgen.esb.tree import load_tree

    validate_system_folder(system_name, "system")
    tree = load_tree(root, only={system_name}, positions=None if edited else set())
    system = tree.systems.get(system_name)
    if system is None:
        known = ", ".join(sorted(tree.systems)) or "none"
        raise Refused(f"unknown system {system_name!r} in {root} (systems: {known})")
    return system


def _routings(root: Path, system: ComponentSet, channels: list[Channel]) -> dict:
    """How the components serving ``channels`` route a call, by codename."""
    from esbgen.esb.routing import component_routing

    found = {}
    for channel in channels:
        component = system.component_by_codename(channel.codename) if channel.codename else None
        if component is not None and component.codename not in found:
            found[component.codename] = component_routing(root, component)
    return found


def plan_retarget(root: Path, system_name: str, app_code: str, saas_type_name: str | None = None,
                  app_url: str | None = None) -> RetargetOutcome:
    """The plan that moves ``system_name``'s calls to app ``app_code``; nothing changes."""
    from esbgen.edit.python import PythonRewrites, Rewrite, python_edits
    from esbgen.edit.template import rendered_text
    from esbgen.esb.layout import settings_file
    from esbgen.esb.rules import SHARED_SETTINGS, validate_app_code, validate_url
    from esbgen.esb.tree import python_files
    from esbgen.saas import select_saas_type, setting_literal

    validate_app_code(app_code)
    if app_url is not None:
        validate_url(app_url, "--app-url")
    system = _load_system(root, system_name)
    saas_type = select_saas_type(system, saas_type_name)
    current = saas_type.source_app_code(system)
    on_current = [c for c in system.channels if current and _dest_app(c) == current]
    if not on_current:
        raise Refused(
            f"no dest_path of {system_name} is on an app (/o/<app>/...); retarget has nothing to move"
        )
    routings = _routings(root, system, on_current)
    per_app = sorted({
        r.host_setting for r in routings.values()
        if r.host_setting and r.host_setting not in SHARED_SETTINGS and r.takes_app_prefix(current)
    })
    if len(per_app) > 1:
        raise Refused(
            f"{system_name}'s components call the hosts of {', '.join(per_app)} after taking /o/{current} off; "
            "esbgen retargets one host setting per system: change them by hand"
        )
    old_host = per_app[0] if per_app else None
    new_host = saas_type.app_host_setting(app_code) if old_host else None
    relative_settings = settings_file(root)
    if app_url is not None and old_host is None:
        shown = ", ".join(sorted({r.host_setting for r in routings.values() if r.host_setting})) or "its host"
        raise UsageError(
            f"--app-url: {system_name} calls {shown} with the whole dest_path; it has no host setting of its own to set"
        )

    values = {"app_code": app_code, "host_setting": new_host or ""}
    plan = Plan(root, f"retarget {system_name} from app {current} to {app_code}")
    counts: dict[str, int] = {}

    by_file: dict[Path, list[Channel]] = {}
    for channel in system.channels:
        by_file.setdefault(channel.file, []).append(channel)
    for relpath in system.yaml_files:
        channels = by_file.get(relpath, [])
        if not channels:
            continue
        text = read_text(root / relpath, str(relpath))
        before = text.encode("utf-8")
        edits = [e for e in (dest_path_app_edit(text, c, current) for c in channels) if e is not None]
        after = rendered_text(text, edits, values).encode("utf-8")  # read back as YAML by the plan's notes
        if after != before:
            plan.file_writes.append(FileWrite(relpath, before, after))
            counts["dest_path"] = counts.get("dest_path", 0) + len(edits)

    target = CloneTarget(system.name, app_code, system.system_name or system.name.upper(), new_host or "")
    # The app moves; of the host settings, only the one the calls go to after the prefix is taken off.
    rewrites = [r for r in saas_type.literal_rewrites(system, target, current) if r.var == "app_code"]
    settings_rewrites: dict[str, str] = {}
    if old_host and new_host != old_host:
        rewrites.append(Rewrite(setting_literal(old_host), "host_setting", f"host setting {old_host}"))
        settings_rewrites[old_host] = "host_setting"
    if system.python_dir is not None and rewrites:
        for path in python_files(root / system.python_dir, root):
            relpath = path.relative_to(root)
            before = read_input(path, relpath)
            text, edits = python_edits(before, str(relpath), PythonRewrites(strings=rewrites, settings=settings_rewrites))
            after = rendered_text(text, edits, values).encode("utf-8")
            if edits and after != before:
                plan.file_writes.append(FileWrite(relpath, before, after))
                for edit in edits:
                    counts[edit.note] = counts.get(edit.note, 0) + 1

    if app_url is not None and new_host is not None:
        write = define_setting(root, relative_settings, new_host, app_url, after=old_host)
        if write is not None:
            plan.file_writes.append(write)
            counts["settings"] = 1

    for channel in system.channels:
        app = _dest_app(channel)
        if app != current and app != app_code:
            shown = channel.get("dest_path")
            plan.notes.append(f"{channel.where}: dest_path {shown!r} is not on app {current}; kept")
    if plan.is_empty:
        plan.unchanged.append(f"{system_name} already forwards to app {app_code}")
    else:
        plan.notes.extend(_routing_notes(root, system, routings, current, app_code, old_host, new_host, app_url, plan))
    return RetargetOutcome(plan, system, saas_type, current, app_code, counts)


def define_setting(root: Path, relative: Path, name: str, url: str, after: str | None = None) -> FileWrite | None:
    """The settings file with ``name = 'url'`` added after the assignment of ``after`` (or at its end)."""
    from esbgen.commands.sync_edition import _value_key, read_settings
    from esbgen.edit.python import py_literal

    path = root / relative
    if path.is_symlink():
        raise Refused(f"{relative} is a symbolic link; esbgen does not write through links")
    if not path.is_file():
        raise Refused(f"--app-url: this tree has no {relative}; define {name} there by hand")
    data = read_input(path, relative)
    settings = read_settings(data, str(relative))
    literal = py_literal(url)
    existing = settings.assignments.get(name)
    if existing is not None:
        if existing.value_key == _value_key(literal):
            return None
        raise Refused(
            f"--app-url: {name} is already set in {relative} (to {existing.value_code.strip()}); change it there by hand"
        )
    anchor = settings.assignments.get(after) if after else None
    offset = anchor.line_end if anchor is not None else len(data)
    line = f"{name} = {literal}{settings.newline}"
    if offset == len(data) and data and not data.endswith((b"\n", b"\r")):
        line = settings.newline + line
    return FileWrite(relative, data, data[:offset] + line.encode(settings.encoding) + data[offset:])


# --- where the calls go, before and after ---------------------------------------------------------


def _call_note(root: Path, system: ComponentSet, plan: Plan, wanted, moved=None) -> list[str]:
    """Where a call to one channel goes before and after the plan: the first place (file and line) whose
    channel ``wanted`` accepts, with the plan's files read back (a channel there after the plan too), or
    with ``moved`` giving the channel as the plan leaves it (its YAML files not read again: 0.9 s of a
    retarget of 20,000 channels). One channel's destination on each side, not each of 20,000 channels'."""
    from esbgen.esb.routing import destination

    def by_place(channels: list[Channel]) -> dict[tuple[Path, int], Channel]:
        return {(channel.file, channel.line): channel for channel in channels}  # a place's last channel stands for it

    with _after_tree(root, system, plan, read_yaml=moved is None) as (scratch, after):
        after_channels = by_place(after.channels)
        for place, channel in by_place(system.channels).items():
            if (moved is not None or place in after_channels) and wanted(channel):
                new_channel = moved(channel) if moved is not None else after_channels[place]
                old, new = destination(root, system, channel), destination(scratch, after, new_channel)
                return [f"a call to /api/c/compapi{channel.path} goes to {old.describe()}; "
                        f"after the change, to {new.describe()}"]
    return []


@contextmanager
def _after_tree(root: Path, system: ComponentSet, plan: Plan, read_yaml: bool = True):
    """The scratch folder holding the system's files as the plan leaves them, and the system read from it
    (without ``read_yaml``, its Python side and settings alone)."""
    from esbgen.esb.layout import settings_file
    from esbgen.esb.tree import load_tree, python_files

    writes = {w.path: w.after for w in plan.file_writes}
    relatives = (list(system.yaml_files) if read_yaml else []) + [settings_file(root)]
    if system.python_dir is not None:
        relatives += [p.relative_to(root) for p in python_files(root / system.python_dir)]
    scratch = Path(tempfile.mkdtemp(prefix="esbgen-route-"))
    try:
        if system.confapis_dir is not None:
            (scratch / system.confapis_dir).mkdir(parents=True)  # the system is there with no YAML file read
        for relative in relatives:
            data = writes.get(relative)
            if data is None:
                if not (root / relative).is_file():
                    continue
                data = (root / relative).read_bytes()
            (scratch / relative).parent.mkdir(parents=True, exist_ok=True)
            (scratch / relative).write_bytes(data)
        yield scratch, load_tree(scratch, only={system.name}, positions=set()).systems[system.name]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _routing_notes(root: Path, system: ComponentSet, routings: dict, current: str, app_code: str,
                   old_host: str | None, new_host: str | None, app_url: str | None, plan: Plan) -> list[str]:
    from esbgen.esb.layout import settings_file
    from esbgen.esb.routing import settings_values
    from esbgen.saas import app_literal

    relative = settings_file(root)
    values = settings_values(root)
    name = system.name
    notes: list[str] = []

    def shown(setting: str) -> str:
        value = values.get(setting)
        if value is None:
            return f"{setting} (not defined in {relative})"
        return f"{setting} (= {value.value!r})" if value.value is not None else f"{setting} (= {value.code})"

    if old_host and new_host and new_host != old_host:
        notes.append(
            f"{name} takes /o/<app> off the path and calls the host in {shown(old_host)}, the address of app {current}: "
            f"it now calls {new_host}, the address of app {app_code}"
        )
        defined = values.get(new_host)
        if app_url is not None:
            notes.append(f"{relative}: {new_host} = {app_url!r} is added" + (f" after {old_host}" if old_host in values else ""))
        elif defined is not None:
            notes.append(f"{relative}: {shown(new_host)} is already defined; check it is the address of app {app_code}")
        else:
            old = values.get(old_host)
            hint = ""
            if old is not None and old.value is not None and app_literal(current).search(old.value):
                suggested = app_literal(current).sub(f"/o/{app_code}", old.value)
                hint = f"; {old_host} = {old.value!r} names app {current}, so {new_host} = {suggested!r} would name app {app_code}"
            elif old is not None and old.value is None:
                hint = f" ({old_host} there is {old.code})"
            notes.append(
                f"define {new_host} in {relative} (the address of app {app_code}) before restarting the ESB, "
                f"or give its address with --app-url URL; until it is defined, calls to {name} have no host{hint}"
            )
    elif old_host:
        notes.append(f"{name} takes /o/<app> off the path and calls the host in {shown(old_host)}; it stays")
    else:
        for setting in sorted({r.host_setting for r in routings.values() if r.host_setting}):
            notes.append(
                f"{name} calls {shown(setting)} with the whole dest_path: /o/{app_code}/ there reaches app {app_code}; "
                f"{setting} stays"
            )
            value = values.get(setting)
            if value is not None and value.value is not None and app_literal(current).search(value.value):
                notes.append(f"{relative}: {setting} = {value.value!r} names app {current}; point it at app {app_code} by hand")
        if not any(r.host_setting for r in routings.values()):
            notes.append(f"esbgen cannot read from {name}'s component which host it calls: check that it reaches app {app_code}")

    def moved(channel: Channel) -> Channel:  # the dest_path edit of plan_retarget (dest_path_app_edit)
        dest = channel.fields["dest_path"]
        app = APP_PATH_RE.match(dest).span(1)
        return replace(channel, fields={**channel.fields, "dest_path": dest[:app[0]] + app_code + dest[app[1]:]})

    return notes + _call_note(root, system, plan, lambda c: c.run_mode is None and _dest_app(c) == current, moved)


# --- back to the source ---------------------------------------------------------------------------


def retarget_chain(root: Path, system_name: str) -> list:
    """The applied retargets of ``system_name`` since its last ``--to-source``, oldest first."""
    from esbgen.journal.history import applied

    chain: list = []
    for journal in applied(root):
        match = TITLE_RE.match(journal.title)
        back = BACK_TITLE_RE.match(journal.title)
        if match and match["system"] == system_name:
            chain.append(journal)
        elif back and back["system"] == system_name:
            chain = []
    return chain


def plan_to_source(root: Path, system_name: str) -> RetargetOutcome:
    """The plan that puts back every file the recorded retargets of the system changed; nothing changes."""
    from esbgen.journal.history import backup_bytes, file_ops

    system = _load_system(root, system_name, edited=False)  # its files are put back whole
    chain = retarget_chain(root, system_name)
    if not chain:
        plan = Plan(root, f"retarget {system_name} back to its source app")
        plan.unchanged.append(f"no retarget of {system_name} is recorded in this tree's journal since its last --to-source")
        return RetargetOutcome(plan, system, None, None, "", to_source=True)
    source_app = TITLE_RE.match(chain[0].title)["old"]
    current_app = TITLE_RE.match(chain[-1].title)["new"]
    ops: dict[Path, list] = {}  # path -> (change, op) of each retarget that wrote it, oldest first
    for journal in chain:
        for op in file_ops(journal):
            ops.setdefault(Path(op["path"]), []).append((journal, op))
    plan = Plan(root, f"retarget {system_name} back to app {source_app}, its source")
    for relative in sorted(ops, key=str):
        path = root / relative
        if path.is_symlink():
            raise Refused(f"{relative} is a symbolic link; esbgen does not write through links")
        current = path.read_bytes() if path.is_file() else None
        last_change, last_op = ops[relative][-1]
        if current is None or hashlib.sha256(current).hexdigest() != last_op["after_sha"]:
            raise Refused(
                f"{relative} changed since change {last_change.id}; put it back by hand, or use "
                f"`esbgen retarget {system_name} --app-code {source_app}`; nothing was changed"
            )
        first: bytes | None = current
        for journal, op in reversed(ops[relative]):  # back through each retarget (a settings file: its edits)
            first = backup_bytes(journal, op, first)
            if first is None:
                raise Refused(f"change {journal.id} created {relative}; take the system back with `esbgen undo`")
        if current != first:
            plan.file_writes.append(FileWrite(relative, current, first))
    if plan.is_empty:
        plan.unchanged.append(f"{system_name} is already as it was before change {chain[0].id}")
    else:
        plan.notes.append(
            f"the {len(plan.file_writes)} file(s) the retargets of {system_name} changed are put back as they were "
            f"before change {chain[0].id} ({chain[0].title})"
        )
        plan.notes.extend(_call_note(root, system, plan, lambda channel: channel.run_mode is None))
    return RetargetOutcome(plan, system, None, current_app, source_app, to_source=True)



@dataclass
class Retarget(Operation):
    system: str
    app_code: str | None = None
    saas_type: str | None = None
    to_source: bool = False
    app_url: str | None = None
    command = "retarget"
    scratch = False
    outcome: Any = None

    def check(self, ctx: Context) -> None:
        from esbgen.esb.rules import validate_app_code, validate_system_folder, validate_url

        validate_system_folder(self.system, "system")
        if self.to_source == (self.app_code is not None):
            raise UsageError("give either --app-code CODE or --to-source")
        if self.to_source and self.app_url is not None:
            raise UsageError("--app-url goes with --app-code, not with --to-source")
        if self.app_code is not None:
            validate_app_code(self.app_code)
        if self.app_url is not None:
            validate_url(self.app_url, "--app-url")

    def make_plan(self, ctx: Context, work: Path | None) -> Plan:
        from esbgen.services import service_steps

        root = ctx.root
        self.outcome = (plan_to_source(root, self.system) if self.to_source
                        else plan_retarget(root, self.system, self.app_code, self.saas_type, self.app_url))
        self.outcome.plan.post_steps.extend(service_steps(root, ctx.services))
        return self.outcome.plan

    def nothing_to_do(self, plan: Plan) -> str:
        if self.to_source:
            return "; ".join(plan.unchanged)
        return f"{self.system} already forwards to app {self.app_code}"

    def summary(self, plan: Plan) -> list[str]:
        outcome = self.outcome
        if self.to_source:
            return [f"Retargeted {self.system} back to app {outcome.app_code}, its source:"
                    f" {len(plan.file_writes)} files put back."]
        return [
            f"Retargeted {self.system} from app {outcome.current_app} to {self.app_code} (SaaS type "
            f"{outcome.saas_type.name}): {len(plan.file_writes)} files changed; edits: {_edits(outcome.edits_by_kind)}."
        ]

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        outcome = self.outcome
        return {"system": (outcome.system.system_name or outcome.system.name).upper(), "app_code": outcome.app_code or None,
                "saas_type": outcome.saas_type.name if outcome.saas_type is not None else None}
