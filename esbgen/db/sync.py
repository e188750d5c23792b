"""A sync that is verified, recorded for undo, and followed by grants.

``--sync`` with a database known (``--database``, ``$ESBGEN_DATABASE_URL`` or ``manage.py esbgen``)
on ``clone`` and ``new`` runs the ESB's ``manage.py sync_data_at_deploy`` as one post-step that:

1. reads, before the sync, the rows it may touch: the system's row, the channel rows of the
   planned paths and of the system, and the rows that point at them (docs, extends, doc category,
   app permissions);
2. decides on ``--force``: the ESB's sync writes some fields of an existing row only when forced
   (legacy: a channel's system, type, is_hidden, timeout, a system's timeouts; later: a channel's
   system).  When a planned channel's row differs there, esbgen runs
   ``manage.py sync_system_and_channel_data --force`` after ``sync_data_at_deploy`` (which takes no
   options in either generation) and says why; with ``--no-force-sync`` it says which rows keep
   stale values instead;
3. writes the ``--grant`` rows, as ``add_compperm_for_app --system_name`` does: one permission per
   channel row of the system and app, expiring in 180 days (an existing one: legacy touches its
   expiry, later leaves it);
4. reads the same rows again and records the difference in the change's journal as an external
   step of kind ``db_synced_rows``, so ``esbgen undo`` deletes what the sync and the grants created
   and restores what they changed, in one transaction, before the system's own row goes.  A sync
   stopped by Ctrl-C or SIGTERM is ended first (``services.run_child``), then recorded the same way;
5. compares every planned channel (``rules.served_channels`` of the tree after the change, the model
   ``check`` uses) with its row: present, under the system, with the planned codename, name and,
   where the table has them, visibility, permission level and user verification (legacy: is_hidden
   and type).  A difference is an error naming the channels and what differs.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from esbgen.db import connection as db

from esbgen.db import rows as esbrows
from esbgen.errors import EsbgenError, Refused, UsageError
from esbgen.plan import ExternalStep, Plan, PostStep

KIND = db.SYNCED_ROWS_KIND
TRUE_TEXT = ("true", "yes", "on")


# ---------------------------------------------------------------- what the files plan


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in TRUE_TEXT
    return bool(value)


def planned(tree, system_name: str, shape: esbrows.ChannelShape) -> list[dict[str, Any]]:
    """Each channel the ESB's sync should make of the system, with the values its row should have.

    The sync that runs is the one of the generation the tables have (the legacy one leaves hidden
    channels out, the later one cannot import Python 2 components), so the tree is read as that
    generation's sync reads it.
    """
    import dataclasses

    from esbgen.esb.rules import served_channels

    tree = dataclasses.replace(tree, generation=shape.name)
    system = next((s for s in tree.systems.values() if (s.system_name or s.name).upper() == system_name), None)
    if system is None:
        return []
    found = []
    for served in served_channels(tree, system)[0]:
        if served.channel is not None:
            hidden = _truthy(served.channel.get("is_hidden"))
            deprecated = False
            config: dict[str, Any] = {}
            api_type = served.channel.get("api_type")
        else:
            config = served.preset.config
            hidden, deprecated = bool(config.get("is_hidden")), bool(config.get("is_deprecated"))
            api_type = served.preset.comp_conf.get("api_type")
        want: dict[str, Any] = {"system": system_name, "component_codename": served.codename,
                                shape.name_column: served.name}
        created_only: dict[str, Any] = {}
        if shape is esbrows.LATER:
            want["is_public"] = int(not (hidden or deprecated))
            permission = config.get("permission_level")
            created_only["permission_level"] = permission if isinstance(permission, str) else "unlimited"
            created_only["verified_user_required"] = int(config.get("verified_user_required", True) is not False)
        else:
            want["is_hidden"] = int(hidden or deprecated)
            if api_type in ("query", "operate"):
                want["type"] = 2 if api_type == "query" else 1
        # The legacy sync finds a row by its path alone and never writes its method.
        method = served.method if shape.by_method else ""
        found.append({"path": served.path, "method": method, "want": want, "created_only": created_only})
    return found


def _key(shape: esbrows.ChannelShape, path: str, method: str | None) -> tuple[str, str]:
    return (path, method or "") if shape.by_method else (path, "")


def _shown(item: dict[str, Any]) -> str:
    return f"{item['method'] + ' ' if item['method'] else ''}{item['path']}"


# ---------------------------------------------------------------- rows before and after


def snapshot(database, shape: esbrows.ChannelShape, system_name: str, paths: list[str]) -> dict[str, dict[str, Any]]:
    """The rows the sync (and grants) may write for the system, by table and id."""
    systems = esbrows.select(database, esbrows.SYSTEM_TABLE, "name", [system_name])
    system_ids = [row["id"] for row in systems]
    channels = {row["id"]: row for row in esbrows.select(database, esbrows.CHANNEL_TABLE, "path", paths)}
    for row in esbrows.select(database, esbrows.CHANNEL_TABLE, shape.system_column, system_ids):
        channels[row["id"]] = row
    tables = {esbrows.SYSTEM_TABLE: systems, esbrows.CHANNEL_TABLE: list(channels.values())}
    for table in (*shape.channel_dependents, shape.permission_table):
        if database.columns(table):
            tables[table] = esbrows.select(database, table, "component_id", list(channels))
    for table in shape.system_dependents:
        if database.columns(table):
            tables[table] = esbrows.select(database, table, "system_id", system_ids)
    return {table: {str(row["id"]): row for row in rows} for table, rows in tables.items()}


def difference(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, Any]:
    created: dict[str, list] = {}
    changed: dict[str, list] = {}
    for table, rows in after.items():
        old = before.get(table, {})
        for row_id, row in rows.items():
            if row_id not in old:
                created.setdefault(table, []).append(row)
            elif not esbrows.same(old[row_id], row):
                changed.setdefault(table, []).append({"before": old[row_id], "after": row})
    return {"created": created, "changed": changed}


def _system_row(rows: dict[str, Any], system_name: str) -> dict[str, Any] | None:
    mine = [row for row in rows.values() if row.get("name") == system_name]
    on_default = [row for row in mine if row.get("board", db.BOARD) in (db.BOARD, None, "")]
    return (on_default or mine or [None])[0]


def _channel_rows(shape, rows: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {_key(shape, row["path"], row.get("method")): row for row in rows.values()}


def _system_names(database, rows: dict[str, Any], shape) -> dict[Any, str]:
    ids = {row.get(shape.system_column) for row in rows.values()} - {None}
    return {row["id"]: row["name"] for row in esbrows.select(database, esbrows.SYSTEM_TABLE, "id", ids)}


def forced_differences(database, shape, tree, system_name: str, items: list[dict[str, Any]],
                       before: dict[str, dict[str, Any]]) -> list[str]:
    """What the sync would leave stale without --force: fields of existing rows it writes only when forced."""
    found = []
    system = _system_row(before[esbrows.SYSTEM_TABLE], system_name)
    rows = _channel_rows(shape, before[esbrows.CHANNEL_TABLE])
    names = _system_names(database, before[esbrows.CHANNEL_TABLE], shape)
    for item in items:
        row = rows.get(_key(shape, item["path"], item["method"]))
        if row is None:
            continue
        changes = []
        if system is not None and row.get(shape.system_column) != system["id"]:
            changes.append(f"system {names.get(row.get(shape.system_column), row.get(shape.system_column))} -> {system_name}")
        for field in shape.forced_channel:
            if field in item["want"] and row.get(field) != item["want"][field]:
                changes.append(f"{field} {row.get(field)!r} -> {item['want'][field]!r}")
        if changes:
            found.append(f"{_shown(item)}: {', '.join(changes)}")
    entry = tree.registered.get(system_name)
    if system is not None and entry is not None:
        changes = [f"{field} {system.get(field)!r} -> {entry.fields[field]!r}" for field in shape.forced_system
                   if field in entry.fields and field in system and system.get(field) != entry.fields[field]]
        if changes:
            found.append(f"system {system_name}: {', '.join(changes)}")
    return found


# ---------------------------------------------------------------- grants


def write_grants(database, shape, system_name: str, apps: list[str]) -> list[str]:
    """Permission rows for every channel of the system, as add_compperm_for_app --system_name does."""
    columns = database.columns(shape.permission_table)
    if not columns:
        raise EsbgenError(f"cannot grant: the database has no table {shape.permission_table}")
    system = _system_row({str(r["id"]): r for r in esbrows.select(database, esbrows.SYSTEM_TABLE, "name", [system_name])},
                         system_name)
    if system is None:
        raise EsbgenError(f"cannot grant: no row {system_name} in {esbrows.SYSTEM_TABLE}")
    channels = esbrows.select(database, esbrows.CHANNEL_TABLE, shape.system_column, [system["id"]])
    stamp = datetime.now()
    expires = (stamp + timedelta(days=esbrows.PERMISSION_DAYS)).isoformat(sep=" ")
    lines = []
    for app in apps:
        existing = {row["component_id"]: row for row in esbrows.select(database, shape.permission_table,
                                                                        shape.permission_app, [app])}
        added = kept = 0
        for channel in channels:
            row = existing.get(channel["id"])
            if row is None:
                values = {shape.permission_app: app, "component_id": channel["id"], "expires": expires}
                for column in ("created_time", "updated_time", "last_accessed_time"):
                    if column in columns:
                        values[column] = stamp.isoformat(sep=" ")
                if "board" in columns:
                    values["board"] = db.BOARD
                esbrows.insert(database, shape.permission_table, values)
                added += 1
            else:
                if shape is esbrows.LEGACY:  # the legacy command touches the expiry of a permission it finds
                    esbrows.update(database, shape.permission_table, row["id"], {"expires": expires})
                kept += 1
        lines.append(f"Granted app {app} the {len(channels)} channel(s) of {system_name} in {shape.permission_table}: "
                     f"{added} added, {kept} already there" + (" (expiry renewed)" if kept and shape is esbrows.LEGACY else ""))
    return lines


# ---------------------------------------------------------------- verification


def verify_rows(database, shape, system_name: str, items: list[dict[str, Any]], before, after,
                stale: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(lines for each channel found as planned, differences, notes)."""
    rows = _channel_rows(shape, after[esbrows.CHANNEL_TABLE])
    existed = set(_channel_rows(shape, before[esbrows.CHANNEL_TABLE]))
    names = _system_names(database, after[esbrows.CHANNEL_TABLE], shape)
    stale_paths = {line.split(": ", 1)[0] for line in stale}
    good, bad, notes = [], [], []
    if _system_row(after[esbrows.SYSTEM_TABLE], system_name) is None:
        bad.append(f"system {system_name}: no row in {esbrows.SYSTEM_TABLE}")
    for item in items:
        key = _key(shape, item["path"], item["method"])
        row = rows.get(key)
        if row is None:
            bad.append(f"{_shown(item)}: no row in {esbrows.CHANNEL_TABLE}")
            continue
        differs = []
        for field, value in item["want"].items():
            if field == "system":
                actual = names.get(row.get(shape.system_column), row.get(shape.system_column))
            else:
                actual = row.get(field)
            if actual != value:
                differs.append(f"{field} {actual!r}, planned {value!r}")
        for field, value in item["created_only"].items():
            if field in row and row[field] != value:
                if key in existed:
                    notes.append(f"{_shown(item)}: {field} stays {row[field]!r} (the files say {value!r}; the ESB's "
                                 "sync writes it only when it creates the row, and keeps what was set since)")
                else:
                    differs.append(f"{field} {row[field]!r}, planned {value!r}")
        if differs and _shown(item) in stale_paths:
            notes.append(f"{_shown(item)}: kept stale without --force: {'; '.join(differs)}")
        elif differs:
            bad.append(f"{_shown(item)}: {'; '.join(differs)}")
        else:
            good.append(_shown(item))
    return good, bad, notes


# ---------------------------------------------------------------- the post-step


def _journal_of(plan: Plan):
    """The change the sync's rows belong to: the one this run applied, else (a repeat that had nothing
    to do) the last change applied, when it is this same change: undo takes them back with it."""
    from esbgen.journal.record import journals

    journal = getattr(plan, "applied_journal", None)
    if journal is not None:
        return journal
    applied = [j for j in journals(plan.root) if j.state == "applied"]
    return applied[-1] if applied and applied[-1].title == plan.title else None


def _record_base(database) -> dict[str, Any]:
    return {"database": database.key, "has_password": database.has_password, "shown": database.shown}


def _run(command: list[str], cwd: Path, description: str) -> str:
    from esbgen.services import run_child

    try:
        done = run_child(command, cwd=cwd)
    except OSError as error:
        raise EsbgenError(f"{description} could not start: {error.strerror or error} ({error.filename or command[0]})") from None
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        last = output.splitlines()[-1] if output else "no output"
        raise EsbgenError(f"{description} failed (exit {done.returncode}): {last}")
    return output


class VerifiedSync(PostStep):
    """The sync, its --force, the grants, the undo record and the verification (see the module).

    ``output`` holds what a failed run had to show; ``run_post_steps`` prints it before the error.
    """

    output: str = ""


def verified_sync_step(plan: Plan, root: Path, system_name: str, services, target: db.Target) -> PostStep:
    from esbgen.services import find_esb_python

    if not (root / "manage.py").is_file():
        raise Refused(f"{root} has no manage.py; cannot run sync_data_at_deploy there")
    python, how = find_esb_python(root, services.esb_python)
    sync = [python, "manage.py", "sync_data_at_deploy"]
    forced = [python, "manage.py", "sync_system_and_channel_data", "--force"]
    grants = list(dict.fromkeys(services.grants or ()))
    where = target.describe() or "the database"
    description = (f"sync the ESB's data: {shlex.join(sync)} (in {root}; Python: {how}), "
                   f"{'never with --force' if services.no_force_sync else 'with --force where rows need it'}, "
                   f"then verify {system_name}'s channel rows in {where}"
                   + (f" and grant app(s) {', '.join(grants)} its channels" if grants else ""))
    step = VerifiedSync(description)

    def run() -> str:
        from esbgen.esb.tree import load_tree
        from esbgen.errors import signals_held

        tree = load_tree(root)
        with target.open() as database:
            shape = esbrows.channel_shape(database)
            items = planned(tree, system_name, shape)
            paths = [item["path"] for item in items]
            before = snapshot(database, shape, system_name, paths)
            stale = forced_differences(database, shape, tree, system_name, items, before)
            base = _record_base(database)
        lines: list[str] = []
        failure: EsbgenError | None = None
        interrupt: KeyboardInterrupt | None = None
        try:
            output = _run(sync, root, f"sync the ESB's data: {shlex.join(sync)}")
            if output:
                lines.append(output)
            if stale and services.no_force_sync:
                lines.append("Not forced (--no-force-sync): the ESB's sync writes these only with --force, "
                             "so these rows keep stale values: " + "; ".join(stale))
            elif stale:
                lines.append(f"Running with --force: {shlex.join(forced)} (sync_data_at_deploy takes no --force): "
                             "the ESB's sync writes these fields of existing rows only when forced: " + "; ".join(stale))
                output = _run(forced, root, f"the forced sync {shlex.join(forced)}")
                if output:
                    lines.append(output)
        except EsbgenError as error:
            failure = error
        except KeyboardInterrupt as error:  # the sync was ended with esbgen: what it wrote so far is recorded
            interrupt = error
        with signals_held() as came, target.open() as database:
            if failure is None and interrupt is None and grants:
                try:
                    with database.atomic():
                        lines.extend(write_grants(database, shape, system_name, grants))
                except Exception as error:
                    failure = error if isinstance(error, EsbgenError) else EsbgenError(
                        f"granting failed, no grant was written: {db.explain(error)}")
            after = snapshot(database, shape, system_name, paths)
            record = dict(base, system=system_name, shape=shape.name, grants=grants, **difference(before, after))
            _append(plan, record, lines)
            if interrupt is None:
                good, bad, notes = verify_rows(database, shape, system_name, items, before, after, stale)
        if interrupt is not None or came:
            raise interrupt or came[0]
        if failure is not None:
            step.output = "\n".join(lines)
            raise failure
        lines.append(f"Verified in {esbrows.CHANNEL_TABLE} ({base['shown']}): {len(good)} of {len(items)} planned "
                     f"channel(s) of {system_name} are there as planned" + (":" if good else "."))
        lines.extend(f"    ok {line}" for line in good)
        lines.extend(f"Note: {note}" for note in notes)
        if bad:
            lines.extend(f"    DIFFERS {line}" for line in bad)
            step.output = "\n".join(lines)
            raise EsbgenError(f"after the sync, {len(bad)} planned channel row(s) of {system_name} differ from the "
                              f"files: {'; '.join(bad)}")
        return "\n".join(lines)

    step.run = run
    return step


def _append(plan: Plan, record: dict[str, Any], lines: list[str]) -> None:
    """Add the rows the sync wrote to the applied change, so that undo takes them back."""
    if not record["created"] and not record["changed"]:
        return
    journal = _journal_of(plan)
    if journal is None:  # nothing was applied (a repeat with nothing to do): the rows belong to no change
        lines.append("The rows this sync wrote belong to no change esbgen recorded last; `esbgen undo` leaves them")
        return
    step = ExternalStep(KIND, describe(record), record)
    journal.data["ops"].append({"op": "external", "kind": step.kind, "description": step.description,
                                "record": step.record})
    journal.save()
    lines.append(f"Recorded in change {journal.id}: {step.description}; `esbgen undo` takes them back.")


def describe(record: dict[str, Any]) -> str:
    parts = []
    for verb, key in (("created", "created"), ("changed", "changed")):
        counts = ", ".join(f"{table} x{len(rows)}" for table, rows in sorted(record.get(key, {}).items()))
        if counts:
            parts.append(f"{verb} {counts}")
    return f"rows the sync{' and grants' if record.get('grants') else ''} wrote for {record['system']} " \
           f"({record.get('shown', record['database'])}): {'; '.join(parts) or 'none'}"


def undo_lines(record: dict[str, Any]) -> list[str]:
    """What undo does to these rows, one line each, for ``esbgen undo --dry-run``."""
    lines = []
    for table in _delete_order(record):
        for row in record["created"].get(table, []):
            lines.append(f"delete {table} row {row['id']}{_row_label(row)}")
    for table, pairs in sorted(record.get("changed", {}).items()):
        for pair in pairs:
            columns = sorted(k for k in pair["before"] if k not in esbrows.VOLATILE
                             and pair["before"].get(k) != pair["after"].get(k))
            lines.append(f"restore {table} row {pair['before']['id']}{_row_label(pair['before'])}: {', '.join(columns)}")
    return lines


def _row_label(row: dict[str, Any]) -> str:
    for column in ("path", "name", "bk_app_code", "app_code", "language"):
        if row.get(column):
            return f" ({row[column]})"
    return ""


def _delete_order(record: dict[str, Any]) -> list[str]:
    shape = esbrows.LATER if record.get("shape") == "later" else esbrows.LEGACY
    first = [shape.permission_table, *shape.channel_dependents, *shape.system_dependents, esbrows.CHANNEL_TABLE,
             esbrows.SYSTEM_TABLE]
    rest = sorted(t for t in record.get("created", {}) if t not in first)
    return [t for t in first + rest if t in record.get("created", {})]


class SyncedRowsKind:
    """The step kind ``db_synced_rows`` (built-in plugin ``db``): takes back the rows a sync wrote, in one
    transaction; refuses when one changed since."""

    kind = KIND

    def apply(self, record: dict[str, Any], ctx: Any) -> None:
        raise EsbgenError("the rows a sync wrote are recorded after the sync, never applied from the journal")

    def verify(self, record: dict[str, Any], ctx: Any) -> bool:
        """The rows are as the sync left them; else refuse naming those that are not."""
        from esbgen.db.registration import _database_for, run_target

        shown = record.get("shown", record["database"])
        problems = []
        with db.explained(f"cannot read the rows the sync wrote ({shown})"):
            with _database_for(record, run_target(ctx)) as database:
                for table, pairs in record.get("changed", {}).items():
                    for pair in pairs:
                        if not esbrows.same(_current(database, table, pair["after"]["id"]), pair["after"]):
                            problems.append(f"{table} row {pair['after']['id']}{_row_label(pair['after'])}")
                for table, rows in record.get("created", {}).items():
                    for row in rows:
                        if not esbrows.same(_current(database, table, row["id"]), row):
                            problems.append(f"{table} row {row['id']}{_row_label(row)}")
        if problems:
            raise EsbgenError(f"rows changed since the sync wrote them ({shown}): {', '.join(problems)}; "
                              "revert them by hand")
        return True

    def revert(self, record: dict[str, Any], ctx: Any) -> None:
        from esbgen.db.registration import _database_for, run_target

        shown = record.get("shown", record["database"])
        with db.explained(f"cannot revert the rows the sync wrote ({shown})"):
            with _database_for(record, run_target(ctx)) as database, database.atomic():
                problems = []
                for table, pairs in record.get("changed", {}).items():
                    for pair in pairs:
                        current = _current(database, table, pair["after"]["id"])
                        if esbrows.same(current, pair["before"]):
                            continue
                        if not esbrows.same(current, pair["after"]):
                            problems.append(f"{table} row {pair['after']['id']}{_row_label(pair['after'])}")
                            continue
                        esbrows.update(database, table, pair["before"]["id"], pair["before"])
                for table in _delete_order(record):
                    for row in record["created"][table]:
                        current = _current(database, table, row["id"])
                        if current is None:
                            continue
                        if not esbrows.same(current, row):
                            problems.append(f"{table} row {row['id']}{_row_label(row)}")
                            continue
                        esbrows.delete(database, table, row["id"])
                if problems:
                    raise EsbgenError(f"rows changed since the sync wrote them ({shown}): {', '.join(problems)}; "
                                      "revert them by hand")


def _current(database, table: str, row_id: Any) -> dict[str, Any] | None:
    rows = esbrows.select(database, table, "id", [row_id])
    return rows[0] if rows else None


def check_options(services, verified: bool) -> None:
    """--grant and --no-force-sync need the verified sync: --sync and a database."""
    if services is None:
        return
    if (services.grants or services.no_force_sync) and not verified:
        option = "--grant" if services.grants else "--no-force-sync"
        raise UsageError(f"{option} goes with --sync and a database (--database URL, ${db.ENV_URL}, or "
                         "`manage.py esbgen`): the channels to grant and to force are rows the sync writes")
    from esbgen.esb.rules import validate_app_code

    for app in services.grants or ():
        validate_app_code(app)


__all__ = ["verified_sync_step", "check_options", "undo_lines", "KIND"]
