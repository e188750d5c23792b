"""The ESB's channel tables beside ``esb_component_system``, in both generations, read with plain SQL.

The legacy ESB (``ESBChannel`` of its ``bkcore``): ``esb_channel`` with ``component_system_id``,
``component_name`` (the channel's name; ``name`` holds its label), ``is_hidden``, ``type`` (1 operate,
2 query), ``timeout_time``, ``perm_level``; ``path`` is unique.  App permissions are rows of
``esb_app_component_perm`` (``app_code``, ``component_id``, ``expires``, ``created_time``,
``last_accessed_time``); api docs rows of ``esb_api_doc`` (``component_id``).

The later ESB: ``esb_channel`` with ``system_id``, ``name``, ``permission_level``,
``verified_user_required``, ``is_public``, ``timeout``, ``config`` (JSON), ``board``; unique on
board, method and path.  Permissions: ``esb_app_component_permission`` (``bk_app_code``,
``component_id``, ``expires``, ``board``, timestamps).  Rows that point at a channel:
``esb_component_doc``, ``esb_channel_extend``; at a system: ``esb_system_doc_category``.

Which generation a table is is read from its columns, never assumed.  Rows are plain dicts
of column -> value, normalised so that they go into a journal as JSON and compare equal
after a round trip (datetimes as ISO text).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Iterable

from esbgen.db.connection import TABLE as SYSTEM_TABLE
from esbgen.db.connection import DatabaseProblem

CHANNEL_TABLE = "esb_channel"
# Columns that every save stamps: a row that differs only there is the row esbgen left.
VOLATILE = frozenset({"updated_time", "last_modified_time", "last_accessed_time"})
PERMISSION_DAYS = 180  # add_compperm_for_app's expiry, both generations


@dataclass(frozen=True)
class ChannelShape:
    """One generation's ``esb_channel`` and the tables around it."""

    name: str  # "legacy" or "later"
    system_column: str
    name_column: str  # the channel's name (its component name)
    by_method: bool  # whether the sync finds a row by path and method (else by path alone)
    permission_table: str
    permission_app: str
    channel_dependents: tuple[str, ...]  # tables with a component_id pointing at a channel
    system_dependents: tuple[str, ...]  # tables with a system_id pointing at a system
    # Fields the sync writes on an existing row only with --force (the ESB's force_update_fields).
    forced_channel: tuple[str, ...]
    forced_system: tuple[str, ...]


LEGACY = ChannelShape("legacy", "component_system_id", "component_name", False, "esb_app_component_perm", "app_code",
                      ("esb_api_doc",), (), ("component_system_id", "type", "is_hidden", "timeout_time"),
                      ("execute_timeout", "query_timeout"))
LATER = ChannelShape("later", "system_id", "name", True, "esb_app_component_permission", "bk_app_code",
                     ("esb_component_doc", "esb_channel_extend"), ("esb_system_doc_category",), ("system_id",), ())


def channel_shape(database) -> ChannelShape:
    present = set(database.columns(CHANNEL_TABLE))
    if not present:
        raise DatabaseProblem(f"the table does not exist: no table {CHANNEL_TABLE}")
    if "system_id" in present:
        return LATER
    if "component_system_id" in present:
        return LEGACY
    raise DatabaseProblem(f"{CHANNEL_TABLE} has neither system_id (the later ESB's) nor component_system_id "
                          f"(the legacy ESB's); its columns: {', '.join(sorted(present))}")


def normal(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    import decimal  # only a row read from the database has one

    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, bool):
        return int(value)
    return value


def select(database, table: str, where: str, values: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows of ``table`` whose column ``where`` is one of ``values`` (none when ``values`` is empty)."""
    values = list(dict.fromkeys(values))
    if not values:
        return []
    quote = database.quote
    marks = ", ".join(["%s"] * len(values))
    cursor = database.execute(f"SELECT * FROM {quote(table)} WHERE {quote(where)} IN ({marks}) ORDER BY id", values)
    names = [column[0] for column in cursor.description]
    return [{name: normal(value) for name, value in zip(names, row)} for row in cursor.fetchall()]


def insert(database, table: str, values: dict[str, Any]) -> int:
    quote = database.quote
    names = list(values)
    return database.execute(f"INSERT INTO {quote(table)} ({', '.join(quote(n) for n in names)}) "
                            f"VALUES ({', '.join(['%s'] * len(names))})", [values[n] for n in names]).lastrowid


def update(database, table: str, row_id: Any, values: dict[str, Any]) -> int:
    quote = database.quote
    names = [n for n in values if n != "id"]
    if not names:
        return 0
    return database.execute(f"UPDATE {quote(table)} SET {', '.join(f'{quote(n)} = %s' for n in names)} WHERE id = %s",
                            [values[n] for n in names] + [row_id]).rowcount


def delete(database, table: str, row_id: Any) -> int:
    return database.execute(f"DELETE FROM {database.quote(table)} WHERE id = %s", [row_id]).rowcount


def same(row: dict[str, Any] | None, other: dict[str, Any] | None) -> bool:
    """Equal but for the columns every save stamps."""
    if row is None or other is None:
        return row is other
    keys = (set(row) | set(other)) - VOLATILE
    return all(row.get(key) == other.get(key) for key in keys)


def max_id(database, table: str) -> int | None:
    """The highest id in ``table`` (0 when it is empty), None when there is no such table."""
    if not database.columns(table):
        return None
    return database.execute(f"SELECT MAX(id) FROM {database.quote(table)}").fetchone()[0] or 0


def referencing(database, table: str) -> list[tuple[str, str]]:
    """(table, column) of every foreign key that points at ``table``, read from the database itself."""
    if database.engine == "sqlite":
        cursor = database.execute('SELECT m.name, f."from" FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f '
                                  'WHERE m.type = %s AND f."table" = %s', ["table", table])
    else:
        cursor = database.execute("SELECT table_name, column_name FROM information_schema.key_column_usage "
                                  "WHERE table_schema = DATABASE() AND referenced_table_name = %s", [table])
    return sorted({(str(name), str(column)) for name, column in cursor.fetchall()})


@dataclass
class SystemRows:
    """What points at one system: the rows its syncs made (by table, in the order they are deleted) and the
    rows that hold the system back (each said in a few words)."""

    made: dict[str, list[dict[str, Any]]]
    held: list[str]


def rows_of_system(database, system_id: Any, channels_up_to: int | None, moving: Iterable[Any] = ()) -> SystemRows:
    """The rows that point at the system ``system_id``, which esbgen created, and what holds it back.

    Every channel above ``channels_up_to`` (the highest channel id when the system's row was created)
    was made for it by a sync, and goes with the rows that point at it (docs, extends, app
    permissions) and the system's doc categories. A channel at or below it was there before and was
    moved under the system (a sync with --force): it holds the system back, as does a row of any
    other table with a foreign key to the system or to one of its channels (a permission
    application, a buffet component). ``moving``: channels another step puts back first.
    """
    try:
        shape = channel_shape(database)
    except DatabaseProblem:  # no channel table: nothing can point at the system
        return SystemRows({}, [])
    moving = set(moving)
    made: dict[str, list[dict[str, Any]]] = {}
    held = []
    channels, older = [], []
    for row in select(database, CHANNEL_TABLE, shape.system_column, [system_id]):
        if row["id"] in moving:
            continue
        (channels if channels_up_to is not None and row["id"] > channels_up_to else older).append(row)
    if older:
        why = ("there before the system's row was written (moved under it by a sync with --force)"
               if channels_up_to is not None else "the change's journal does not say which channels came after it")
        rows = ", ".join(f"{row['id']} ({row.get('path')})" for row in older)
        held.append(f"{CHANNEL_TABLE} row(s) {rows}: {why}")
    ids = [row["id"] for row in channels]
    known = set()
    for table in (shape.permission_table, *shape.channel_dependents):
        known.add((table, "component_id"))
        if database.columns(table):
            made[table] = select(database, table, "component_id", ids)
    for table in shape.system_dependents:
        known.add((table, "system_id"))
        if database.columns(table):
            made[table] = select(database, table, "system_id", [system_id])
    made[CHANNEL_TABLE] = channels
    known.add((CHANNEL_TABLE, shape.system_column))
    for target, values in ((CHANNEL_TABLE, ids), (SYSTEM_TABLE, [system_id])):
        for table, column in referencing(database, target):
            if (table, column) not in known:
                held.extend(f"{table} row {row['id']} ({column} {row[column]})" for row in select(database, table, column,
                                                                                                  values))
    return SystemRows({table: rows for table, rows in made.items() if rows}, held)


def now_text() -> str:
    return datetime.datetime.now().isoformat(sep=" ")


__all__ = ["SYSTEM_TABLE", "CHANNEL_TABLE", "ChannelShape", "LEGACY", "LATER", "channel_shape", "select",
           "insert", "update", "delete", "same", "normal", "now_text", "PERMISSION_DAYS", "max_id", "referencing",
           "SystemRows", "rows_of_system"]
