"""A system's row in ``esb_component_system``: planned, applied with the files, reverted with them.

The row is an external step of kind ``db_system`` in the plan, so the journal
applies it in the same unit as the file changes: a failing row rolls the
files back, a failing later step (or a killed run, or ``esbgen undo``) calls
``revert``, which deletes a row this change created or restores the old
values of one it updated, and only when the row is still as esbgen left it.
A row it inserted goes with what the ESB's own syncs made for the system since (its
channels and the rows that point at them, found by ``esbrows.rows_of_system``), in the
same transaction; a row no sync made holds it back, and undo names it.

The journal record holds what rollback needs and no secret: the database as a
URL with the password replaced by ``***`` (the real URL is taken from
``--database`` / ``$ESBGEN_DATABASE_URL`` of the run that reverts: the handler is
bound to that run's database target).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from esbgen.db import connection as db

from esbgen.db import rows as esbrows
from esbgen.errors import EsbgenError, Refused, UsageError
from esbgen.plan import ExternalStep, Plan
from esbgen.esb.rules import validate_system_columns

KIND = "db_system"


def plan_registration(plan: Plan, target: db.Target, system: str, *, label: str, remark: str, label_given: bool,
                      remark_given: bool, dry_run: bool, required: bool = False) -> bool:
    """Add the row's step to ``plan`` (or say it is as asked); False when no database is known."""
    from esbgen.esb.layout import CUSTOM_CONF

    if not target.known:
        if required:
            raise UsageError(
                f"register writes the {db.TABLE} row: give --database URL (or ${db.ENV_URL}), "
                "or run it as `manage.py esbgen register` inside the ESB"
            )
        plan.notes.append(
            f"the {db.TABLE} row of {system} is left to sync_data_at_deploy (it adds the systems of "
            f"{CUSTOM_CONF} SYSTEMS); give --database URL or run `manage.py esbgen` to write the row now"
        )
        return False
    wanted = {"label": label, "remark": remark}
    given = {"label": label_given, "remark": remark_given}
    validate_system_columns(name=system, label=label)
    rows, database_key, shown, has_password, shape = _read(target, system, dry_run)
    if len(rows) > 1:
        raise Refused(
            f"{db.TABLE} in {shown} has {len(rows)} rows named {system}; esbgen keeps exactly one row "
            "per system: remove the extra rows by hand first"
        )
    record: dict[str, Any] = {
        "database": database_key,
        "has_password": has_password,
        "shown": shown,
        "table": db.TABLE,
        "shape": shape,
        "system": system,
    }
    # On the later ESB's table, esbgen's label and remark are its description and comment columns.
    where = f"{shown}; the later ESB's table: label as description, remark as comment, board default" \
        if shape == db.LATER.name else shown
    if not rows:
        record.update(action="insert", before=None, after=dict(wanted))
        plan.external.append(
            ExternalStep(KIND, f"insert row {system} into {db.TABLE} ({where}): label {label!r}, remark {remark!r}", record)
        )
        return True
    row = rows[0]
    changes = {column: wanted[column] for column in db.WRITABLE_COLUMNS if given[column] and row[column] != wanted[column]}
    if not changes:
        plan.unchanged.append(f"row {system} in {db.TABLE} ({shown}) exists" + (" as asked" if any(given.values()) else ""))
        return True
    record.update(action="update", before={column: row[column] for column in changes}, after=changes)
    shown_changes = "; ".join(f"{column} {row[column]!r} -> {value!r}" for column, value in changes.items())
    plan.external.append(ExternalStep(KIND, f"update row {system} in {db.TABLE} ({where}): {shown_changes}", record))
    return True


def done_lines(plan: Plan) -> list[str]:
    """What the applied row steps did, for the summary after an apply."""
    lines = []
    for step in plan.external:
        if step.kind == KIND:
            record = step.record
            verb = "inserted row" if record["action"] == "insert" else "updated row"
            lines.append(f"Database: {verb} {record['system']} in {record['table']} ({record['shown']}).")
    return lines


def _read(target: db.Target, system: str, dry_run: bool) -> tuple[list[dict[str, Any]], str, str, bool, str]:
    shown = target.describe() or "?"
    hint = "; a dry run changes nothing but must read the table" if dry_run else ""
    try:
        with target.open(readonly=dry_run) as database:
            shown = database.shown
            rows = database.rows(system)
            return rows, database.key, database.shown, database.has_password, database.shape.name
    except db.DatabaseProblem as problem:
        raise Refused(f"cannot read {db.TABLE} in {shown}: {problem}{hint}") from None
    except Exception as error:
        if not db.is_database_error(error):
            raise
        raise Refused(f"cannot read {db.TABLE} in {shown}: {db.explain(error)}{hint}") from None


def _matches(row: dict[str, Any], values: dict[str, Any] | None) -> bool:
    return values is not None and all(row.get(column) == value for column, value in values.items())


# What an earlier esbgen, run inside the ESB's Django, recorded for the database of a row it wrote
IN_PROCESS_KEY = "django-project"


@contextmanager
def _database_for(record: dict[str, Any], target: db.Target) -> Iterator[db.Database]:
    """The database a record was written to, with the credentials of the current run (``target``)."""
    key, system = record["database"], record["system"]
    url = key
    if key == IN_PROCESS_KEY:
        if not target.url:
            raise Refused(f"row {system} was written through the ESB's Django project (an earlier esbgen's manage.py "
                          f"esbgen): give that project's database with --database or ${db.ENV_URL}, or run "
                          "`manage.py esbgen undo`, to revert it")
        url = target.url
    elif record.get("has_password"):
        current = target.url
        if not current or db.redact_url(current) != key:
            raise EsbgenError(
                f"row {system} was written to {key}; esbgen stores no password: give that URL with "
                f"--database or ${db.ENV_URL} to revert it"
            )
        url = current
    with target.open(url) as database:
        yield database


def run_target(ctx: Any) -> db.Target:
    """The database of the run that applies or reverts a step (its --database or $ESBGEN_DATABASE_URL):
    credentials are the run's, never the journal's."""
    run = getattr(ctx, "run", None)
    return run.database if run is not None else db.Target.resolve()


class DbSystemKind:
    """The step kind ``db_system`` (declared by the built-in plugin ``db``); see the module's description."""

    kind = KIND

    def apply(self, record: dict[str, Any], ctx: Any) -> None:
        system, action = record["system"], record["action"]
        shown = record.get("shown", record["database"])
        try:
            with _database_for(record, run_target(ctx)) as database, database.atomic():
                rows = database.rows(system, for_update=True)
                if action == "insert":
                    if rows:
                        record["outcome"] = "refused"
                        raise EsbgenError(f"a row {system} appeared in {db.TABLE} while esbgen was working; nothing was changed")
                    # What a later sync makes for the system comes after this: undo takes it back with the row.
                    record["channels_up_to"] = esbrows.max_id(database, esbrows.CHANNEL_TABLE)
                    database.insert(system, record["after"])
                else:
                    if len(rows) != 1 or not _matches(rows[0], record["before"]):
                        record["outcome"] = "refused"
                        raise EsbgenError(f"row {system} in {db.TABLE} changed while esbgen was working; nothing was changed")
                    database.update(system, record["after"])
                # Read it back: some tables take a write without keeping it (SQLite's views answer an
                # INSERT ... RETURNING without an error and without a row).
                kept = database.rows(system)
                if len(kept) != 1 or not _matches(kept[0], record["after"]):
                    record["outcome"] = "refused"
                    raise EsbgenError(
                        f"cannot write row {system} to {db.TABLE} in {shown}: the database did not keep it "
                        "(a view, or a trigger?); nothing was changed"
                    )
                # Past this point only the commit can fail, and then nobody knows whether it happened.
                record["outcome"] = "written"
        except Exception as error:
            if record.get("outcome") not in ("refused", "written"):
                record["outcome"] = "failed"
            if isinstance(error, EsbgenError):
                raise
            if db.is_database_error(error):
                raise EsbgenError(
                    f"cannot write row {system} to {db.TABLE} in {shown}: {db.explain(error)}; nothing was changed"
                ) from None
            raise
        record["outcome"] = "applied"

    def verify(self, record: dict[str, Any], ctx: Any) -> bool:
        shown = record.get("shown", record["database"])
        with db.explained(f"cannot read row {record['system']} in {db.TABLE} ({shown})"):
            with _database_for(record, run_target(ctx)) as database:
                rows = database.rows(record["system"])
                applied = len(rows) == 1 and _matches(rows[0], record["after"])
                if applied and record["action"] == "insert":
                    _refuse_held(record, _rows_of_system(database, record, _channels_put_back(ctx)))
        return applied

    def revert(self, record: dict[str, Any], ctx: Any) -> None:
        if record.get("outcome") in ("refused", "failed"):
            return  # this process saw the step change nothing
        system, action = record["system"], record["action"]
        shown = record.get("shown", record["database"])
        with db.explained(f"cannot revert row {system} in {db.TABLE} ({shown})"):
            with _database_for(record, run_target(ctx)) as database, database.atomic():
                rows = database.rows(system, for_update=True)
                if action == "insert":
                    if not rows:
                        return  # never written, or already reverted
                    if len(rows) == 1 and _matches(rows[0], record["after"]):
                        made = _rows_of_system(database, record)
                        _refuse_held(record, made)
                        for table, found in made.made.items():
                            for row in found:
                                esbrows.delete(database, table, row["id"])
                        database.delete(system)
                        return
                else:
                    if len(rows) == 1 and _matches(rows[0], record["after"]):
                        database.update(system, record["before"])
                        return
                    if len(rows) == 1 and _matches(rows[0], record["before"]):
                        return
                raise EsbgenError(f"row {system} in {db.TABLE} ({shown}) changed since esbgen wrote it; revert it by hand")


def _rows_of_system(database: db.Database, record: dict[str, Any], moving: set[Any] = frozenset()) -> esbrows.SystemRows:
    """The rows the ESB's syncs made for the system this change inserted, and those that hold it back."""
    found = esbrows.select(database, db.TABLE, "name", [record["system"]])
    mine = [row for row in found if row.get("board", db.BOARD) in (db.BOARD, None, "")]
    if len(mine) != 1:
        return esbrows.SystemRows({}, [])
    return esbrows.rows_of_system(database, mine[0]["id"], record.get("channels_up_to"), moving)


def _refuse_held(record: dict[str, Any], rows: esbrows.SystemRows) -> None:
    if rows.held:
        raise EsbgenError(
            f"rows that no sync of this change made point at row {record['system']} of {db.TABLE}: "
            f"{'; '.join(rows.held)}; delete them (or point them at another system) by hand, then run "
            "`esbgen undo` again")


def _channels_put_back(ctx: Any) -> set[Any]:
    """Channels the change's recorded sync moved under the system: its own step puts them back first."""
    moved: set[Any] = set()
    for op in ctx.ops:
        if op.get("op") == "external" and op.get("kind") == db.SYNCED_ROWS_KIND:
            moved.update(pair["after"]["id"] for pair in op["record"].get("changed", {}).get(esbrows.CHANNEL_TABLE, []))
    return moved
