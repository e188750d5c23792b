"""``esbgen swap paasagent ... --activate``: the agents' rows in ``engine_servers``.

The developer center keeps its server list in table ``engine_servers`` (in the PaaS's
database, which the ESB shares): one row per paasagent with where its API listens
(``ip_address`` + ``ip_port``, 4245 by default), where the apps it hosts answer
(``app_port``, 8085 by default: the port nginx's ``PAAS_AGENT_TEST``/``PAAS_AGENT_PROD``
upstream points at), the environment (``category``: ``tapp`` for test, ``app`` for
production), the ``s_id``/``token`` pair the agent authenticates with (UUIDs, stored as
32 hex digits, and the ``auth.sid``/``auth.token`` of the agent's ``paas_agent_config.yaml``)
and ``is_active``.

What ``--activate`` changes, and nothing else:

* the row of each new agent -- ``ip_address`` = the ``--to`` host, ``ip_port`` = the agent
  port -- is added when missing (new uuid4 ``s_id``/``token`` unless given) and set active;
  an existing row must already be of this environment, with ``app_port`` = the ``--to``
  port and, when given, the same sid/token: otherwise the swap is refused;
* the active rows of this environment whose ``ip_address:app_port`` is a server the swap
  removes from the upstream are set inactive;
* every other row is left alone, the other active ones of the environment included
  (several agents can serve one environment); the plan names them.

The rows are an external step of the swap's journal (kind ``engine_servers``, after the nginx
step): written and committed once nginx has reloaded, with what they were before recorded, so a
failure, a kill or ``esbgen undo --swap`` puts the old rows back. Before anything is touched, the
write is tried in a transaction that is rolled back (``probe_write``): a database that refuses it
refuses the swap with nginx untouched.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esbgen.db import connection as db

from esbgen.db import rows as esbrows
from esbgen.errors import EsbgenError, UsageError

from esbgen_nginx.backends import Backend, parse_backend

TABLE = "engine_servers"
CATEGORIES = {"test": "tapp", "prod": "app"}  # the developer center's values of engine_servers.category
DEFAULT_AGENT_PORT = 4245
NAME_MAX = 20  # engine_servers.name
ADDRESS_MAX = 36  # engine_servers.ip_address
INFO = "added by esbgen swap"
_COLUMNS = ("id", "name", "s_id", "token", "ip_address", "ip_port", "app_port", "category", "is_active")


# ---------------------------------------------------------------- what the operator asks


@dataclass(frozen=True)
class AgentAuth:
    """The ``auth.sid`` / ``auth.token`` an agent presents, and where they came from."""

    sid: uuid.UUID
    token: uuid.UUID
    source: str  # "--sid/--token", the agent config's path, or "generated"


@dataclass(frozen=True)
class ActivationRequest:
    environment: str  # "test", "prod": how the summary names it
    category: str  # the engine_servers.category value
    agent_port: int = DEFAULT_AGENT_PORT
    name: str | None = None
    auth: AgentAuth | None = None
    database: db.Target = field(default_factory=db.Target)  # the run's (--database, $ESBGEN_DATABASE_URL, the project)


def parse_uuid(text: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(text).strip())
    except ValueError:
        raise UsageError(f"{what} {text!r} is not a UUID") from None


def read_agent_config(path: Path) -> tuple[AgentAuth, int | None]:
    """``auth.sid``, ``auth.token`` and ``port`` of a ``paas_agent_config.yaml``; one-line errors."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise EsbgenError(f"cannot read the agent config {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise EsbgenError(f"the agent config {path} is not UTF-8 text") from None
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise EsbgenError(f"the agent config {where} is not valid YAML: {' '.join(str(problem).split())}") from None
    auth = data.get("auth") if isinstance(data, dict) else None
    if not isinstance(auth, dict) or not auth.get("sid") or not auth.get("token"):
        raise EsbgenError(f"the agent config {path} has no auth.sid and auth.token")
    try:
        sid, token = uuid.UUID(str(auth["sid"]).strip()), uuid.UUID(str(auth["token"]).strip())
    except ValueError:
        raise EsbgenError(f"auth.sid or auth.token in the agent config {path} is not a UUID") from None
    port = data.get("port")
    if port is not None:
        if isinstance(port, bool) or not str(port).strip().isdigit() or not 1 <= int(port) <= 65535:
            raise EsbgenError(f"port {port!r} in the agent config {path} is not a port number")
        port = int(port)
    return AgentAuth(sid, token, str(path)), port


# ---------------------------------------------------------------- rows and the plan


@dataclass(frozen=True)
class ServerRow:
    """One ``engine_servers`` row, its values as text the way the developer center compares them."""

    id: int
    name: str
    s_id: str  # 32 lower-case hex digits when the value is a UUID
    token: str
    ip_address: str
    ip_port: str
    app_port: str
    category: str
    is_active: bool

    def __str__(self) -> str:
        state = "active" if self.is_active else "inactive"
        return (f"row id {self.id} {self.ip_address} (agent port {self.ip_port}, apps on {self.app_port}, "
                f"category {self.category}, {state})")


def _uuid_text(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    try:
        return uuid.UUID(text).hex
    except ValueError:
        return text.lower()


def _port_text(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    return str(int(text)) if text.isdigit() else text


def _row(values: tuple) -> ServerRow:
    row = dict(zip(_COLUMNS, values))
    return ServerRow(
        id=row["id"], name=row["name"] or "", s_id=_uuid_text(row["s_id"]), token=_uuid_text(row["token"]),
        ip_address=(row["ip_address"] or "").strip(), ip_port=_port_text(row["ip_port"]),
        app_port=_port_text(row["app_port"]), category=(row["category"] or "").strip(), is_active=bool(row["is_active"]),
    )


@dataclass
class NewAgent:
    """A ``--to`` backend and its row: the existing one, or the values of the row to add."""

    backend: Backend
    agent_port: int
    row: ServerRow | None = None
    insert: dict[str, Any] | None = None
    auth: AgentAuth | None = None  # of a row to add


@dataclass
class ActivationPlan:
    request: ActivationRequest
    shown: str  # the database, without password
    agents: list[NewAgent]
    activate: list[ServerRow] = field(default_factory=list)
    deactivate: list[tuple[ServerRow, str]] = field(default_factory=list)  # (row, the old upstream server)
    left_active: list[ServerRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    where: dict[str, Any] = field(default_factory=dict)  # the database as the journal records it

    @property
    def inserts(self) -> list[NewAgent]:
        return [agent for agent in self.agents if agent.insert is not None]

    @property
    def is_noop(self) -> bool:
        return not (self.inserts or self.activate or self.deactivate)

    def key(self) -> tuple:
        """What the plan changes; the same key inside the transaction means nobody changed those rows."""
        return (
            tuple((a.backend.host, a.agent_port) for a in self.inserts),
            tuple(row.id for row in self.activate),
            tuple(row.id for row, _ in self.deactivate),
        )

    def describe(self, dry_run: bool) -> list[str]:
        lines = [f"  {TABLE} ({self.shown}), {self.request.environment} servers (category {self.request.category}):"]
        for agent in self.agents:
            where = f"{agent.backend.host} (agent port {agent.agent_port}, apps on {agent.backend.port})"
            if agent.insert is not None:
                auth = agent.auth
                if auth is None or auth.source == "generated":
                    origin = "new uuid4 sid and token" + (", generated when applied" if dry_run else " (below)")
                else:
                    origin = f"sid and token from {auth.source}"
                lines.append(f"    add row: {where}, name {agent.insert['name']!r}, active; {origin}")
            elif agent.row in self.activate:
                lines.append(f"    activate: {agent.row}")
            else:
                lines.append(f"    already active: {agent.row}")
        for row, server in self.deactivate:
            lines.append(f"    deactivate: {row}  (the upstream's old server {server})")
        for row in self.left_active:
            lines.append(f"    left active: {row}  (not a server this swap replaces)")
        lines.extend(f"    note: {note}" for note in self.notes)
        return lines

    def done_lines(self) -> list[str]:
        """After the commit: what changed, and the sid/token the new agents must present."""
        counts = [f"{len(self.inserts)} row(s) added" if self.inserts else "",
                  f"{len(self.activate)} activated" if self.activate else "",
                  f"{len(self.deactivate)} deactivated" if self.deactivate else ""]
        lines = [f"  {TABLE}: committed ({', '.join(c for c in counts if c)})"]
        for agent in self.inserts:
            auth = agent.auth
            assert auth is not None
            written = _write_auth(agent.backend.host, agent.agent_port, auth)
            lines.append(f"  agent {agent.backend.host}:{agent.agent_port}: sid {auth.sid}  token written to {written}")
            if auth.source == "generated":
                lines.append("  ACTION NEEDED: write them into the new agent's paas_agent_config.yaml as auth.sid and "
                             "auth.token, and restart the agent: the app engine accepts it with these only")
        return lines


def _write_auth(host: str, port: int | str, auth: AgentAuth) -> Path:
    """The agent's sid and token in a file only its owner reads, in the host's state folder: a token is never
    printed (an output may be logged or shared)."""
    from esbgen.fsutil import atomic_write_bytes
    from esbgen.journal.store import host_store, private_dir

    folder = private_dir(private_dir(host_store()) / "agents")
    path = folder / f"{host.replace('/', '_')}_{port}.yaml"
    atomic_write_bytes(path, f"auth:\n  sid: {auth.sid}\n  token: {auth.token}\n".encode(), 0o600)
    return path


def plan_activation(request: ActivationRequest, backends: list[Backend], old_servers: list[str],
                    dry_run: bool) -> ActivationPlan:
    """Read ``engine_servers`` (read-only for a dry run) and plan the rows; refuse (one line) what is unsafe."""
    _check_values(request, backends)
    rows, where = _read_rows(request.database, dry_run)
    plan = compute_plan(rows, request, backends, old_servers, where["shown"], {})
    plan.where = where
    return plan


def _check_values(request: ActivationRequest, backends: list[Backend]) -> None:
    if request.name is not None and len(request.name) > NAME_MAX:
        raise UsageError(f"--name {request.name!r} is longer than the {NAME_MAX} characters of {TABLE}.name")
    for backend in backends:
        if len(backend.host) > ADDRESS_MAX:
            raise UsageError(f"host {backend.host!r} is longer than the {ADDRESS_MAX} characters of {TABLE}.ip_address")
    if len(backends) > 1 and (request.name is not None or request.auth is not None):
        raise UsageError("--name, --sid/--token and --agent-config describe one agent: give a single --to with them")
    hosts = [backend.host for backend in backends]
    if len(set(hosts)) != len(hosts):
        raise UsageError(f"two --to on one host would be one agent (agent port {request.agent_port}): "
                         "activate agents on one host one swap at a time")


def compute_plan(rows: list[ServerRow], request: ActivationRequest, backends: list[Backend], old_servers: list[str],
                 shown: str, auths: dict[tuple[str, int], AgentAuth]) -> ActivationPlan:
    """The plan for ``rows`` as read; ``auths`` keeps the sid/token generated for new rows (filled in here)."""
    plan = ActivationPlan(request, shown, [])
    category, port = request.category, request.agent_port
    targets: set[int] = set()
    for backend in backends:
        agent = NewAgent(backend, port)
        same = [row for row in rows if row.ip_address == backend.host and row.ip_port == str(port)]
        if len(same) > 1:
            ids = ", ".join(str(row.id) for row in same)
            raise EsbgenError(f"{TABLE} in {shown} has {len(same)} rows for {backend.host} agent port {port} (ids {ids}); "
                              "the developer center keeps one per address: remove the extra rows first")
        if same:
            agent.row = row = same[0]
            _check_existing(row, request, backend, shown)
            targets.add(row.id)
            if not row.is_active:
                plan.activate.append(row)
            if request.name is not None and request.name != row.name:
                plan.notes.append(f"row id {row.id} keeps its name {row.name!r} (--name names a row esbgen adds)")
        else:
            auth = request.auth or auths.get((backend.host, port))
            if auth is None:
                auth = AgentAuth(uuid.uuid4(), uuid.uuid4(), "generated")
            auths[(backend.host, port)] = auth
            _check_sid_free(rows, auth, backend, port, shown)
            agent.auth = auth
            agent.insert = {
                "name": request.name if request.name is not None else _default_name(backend),
                "s_id": auth.sid.hex, "token": auth.token.hex, "ip_address": backend.host, "ip_port": str(port),
                "app_port": str(backend.port), "category": category, "info": INFO, "is_active": True, "mac": "",
            }
        plan.agents.append(agent)

    new_addresses = {backend.address for backend in backends}
    for server in old_servers:
        if server in new_addresses:
            continue
        address = _old_address(server)
        if address is None:
            plan.notes.append(f"old server {server} is not HOST:PORT; no row is matched to it")
            continue
        host, app_port = address
        matched = [row for row in rows if row.category == category and row.ip_address == host
                   and row.app_port == str(app_port) and row.id not in targets]
        active = [row for row in matched if row.is_active]
        plan.deactivate.extend((row, server) for row in active)
        if not active:
            plan.notes.append(f"no active {category} row has its apps at {server} (the upstream's old server): "
                              "nothing to deactivate for it")
    gone = targets | {row.id for row, _ in plan.deactivate}
    plan.left_active = [row for row in rows if row.category == category and row.is_active and row.id not in gone]
    return plan


def _check_existing(row: ServerRow, request: ActivationRequest, backend: Backend, shown: str) -> None:
    if row.category != request.category:
        raise EsbgenError(
            f"{TABLE} in {shown}: {row} is not a {request.environment} server (category {request.category}); "
            "change or remove it in the developer center first"
        )
    if row.app_port != str(backend.port):
        raise EsbgenError(
            f"{TABLE} in {shown}: {row} says its apps answer on port {row.app_port}, but --to says "
            f"{backend.address}; correct --to or the row first"
        )
    auth = request.auth
    if auth is not None and (row.s_id != auth.sid.hex or row.token != auth.token.hex):
        raise EsbgenError(
            f"{TABLE} in {shown}: {row} has another sid/token than {auth.source}; the app engine would refuse the "
            "agent: put the row's sid and token in the agent's config (or remove the row in the developer center)"
        )


def _check_sid_free(rows: list[ServerRow], auth: AgentAuth, backend: Backend, port: int, shown: str) -> None:
    for row in rows:
        if row.s_id == auth.sid.hex:
            raise EsbgenError(
                f"sid {auth.sid} ({auth.source}) is already that of {TABLE} {row} in {shown}: the new agent "
                f"{backend.host}:{port} carries another agent's identity (deployed with its config?); give it a "
                "sid and token of its own, or let esbgen generate them (no --sid/--token/--agent-config)"
            )


def _default_name(backend: Backend) -> str:
    if len(backend.host) > NAME_MAX:
        raise UsageError(f"host {backend.host!r} does not fit {TABLE}.name ({NAME_MAX} characters): give --name")
    return backend.host


def _old_address(server: str) -> tuple[str, int] | None:
    """``HOST:PORT`` of an upstream's server line; a bare host means port 80, as in nginx."""
    try:
        backend = parse_backend(server)
        return backend.host, backend.port
    except ValueError:
        pass
    if server and ":" not in server and "/" not in server:
        try:
            return parse_backend(f"{server}:80").host, 80
        except ValueError:
            return None
    return None


# ---------------------------------------------------------------- the database


def _select(database: db.Database, for_update: bool = False) -> list[ServerRow]:
    lock = " FOR UPDATE" if for_update and database.engine == "mysql" else ""
    cursor = database.execute(f"SELECT {', '.join(map(database.quote, _COLUMNS))} FROM {database.quote(TABLE)} "
                              f"ORDER BY id{lock}")
    return [_row(values) for values in cursor.fetchall()]


def _set_active(database: db.Database, row_id: int, active: bool, now: datetime.datetime) -> None:
    esbrows.update(database, TABLE, row_id, {"is_active": active, "updated_at": now})


def _failure(error: BaseException, verb: str, shown: str, tail: str) -> EsbgenError | None:
    """The one-line error of a database failure, or None when ``error`` is no database error."""
    if isinstance(error, db.DatabaseProblem):
        return EsbgenError(f"cannot {verb} {TABLE}: {error}{tail}")
    if db.is_database_error(error):
        return EsbgenError(f"cannot {verb} {TABLE} in {shown}: {db.explain(error)}{tail}")
    return None


def require_database(target: db.Target) -> None:
    if not target.known:
        raise UsageError(
            f"--activate writes {TABLE}: give --database URL (or ${db.ENV_URL}), or run it as `manage.py esbgen` "
            "in a project on the PaaS's database"
        )


def _read_rows(target: db.Target, dry_run: bool) -> tuple[list[ServerRow], dict[str, Any]]:
    """The rows, and where they are as a journal record keeps it (no password)."""
    require_database(target)
    shown = target.describe() or "?"
    try:
        with target.open(readonly=dry_run) as database:
            shown = database.shown
            where = {"database": database.key, "shown": database.shown, "has_password": database.has_password,
                     "system": TABLE}
            return _select(database), where
    except EsbgenError as error:
        if isinstance(error, db.DatabaseProblem):
            raise _failure(error, "read", shown, "; nothing was changed") from None
        raise
    except Exception as error:
        failure = _failure(error, "read", shown, "; nothing was changed")
        if failure is None:
            raise
        raise failure from None


# ---------------------------------------------------------------- the journal's step: apply, revert, verify
#
# The record says which rows to add (their values, sid included), which ids to activate and which to
# deactivate, each with the identity (address, ports, category) it had when planned; and where the table
# is (the database without its password: the run that applies or reverts gives the credentials).


def activation_record(plan: ActivationPlan) -> dict[str, Any]:
    def identity(row: ServerRow) -> dict[str, Any]:
        return {"id": row.id, "ip_address": row.ip_address, "ip_port": row.ip_port, "app_port": row.app_port,
                "category": row.category, "s_id": row.s_id}

    return {**plan.where, "environment": plan.request.environment, "category": plan.request.category,
            "insert": [dict(agent.insert) for agent in plan.inserts],
            "activate": [identity(row) for row in plan.activate],
            "deactivate": [identity(row) for row, _ in plan.deactivate]}


class _Rollback(Exception):
    """Thrown into the open transaction to roll it back."""


def probe_write(record: dict[str, Any], target: db.Target) -> None:
    """Write the rows and roll them back: a database that refuses the write (no permission, a view, a missing
    column) refuses the swap before nginx is touched."""
    from esbgen.db.registration import _database_for

    shown = record["shown"]
    try:
        with _database_for(record, target) as database:
            try:
                with database.atomic():
                    _check_and_write(database, record)
                    raise _Rollback()
            except _Rollback:
                pass
    except EsbgenError:
        raise
    except Exception as error:
        failure = _failure(error, "write", shown, "; nothing was changed (nginx untouched)")
        if failure is None:
            raise
        raise failure from None


def apply_rows(record: dict[str, Any], target: db.Target) -> str | None:
    """Write and commit the rows; a note when the commit failed but reading back shows it went through."""
    from esbgen.db.registration import _database_for

    shown = record["shown"]
    try:
        with _database_for(record, target) as database:
            with database.atomic():
                _check_and_write(database, record)
        return None
    except EsbgenError:
        raise
    except Exception as error:
        failure = _failure(error, "commit the change of", shown, "")
        if failure is None:
            raise
    try:  # a connection lost during COMMIT leaves it open whether the server committed: read it back
        landed = rows_applied(record, target)
    except Exception:
        landed = None
    if landed:
        return f"{failure}; read back, {TABLE} is as asked: the commit went through"
    if landed is None:
        raise EsbgenError(f"{failure}; {TABLE} could not be read back to see whether the commit went through: "
                          "check its rows")
    raise failure


def _check_and_write(database: db.Database, record: dict[str, Any]) -> None:
    """Inside the transaction: lock the table, check nothing planned changed meanwhile, write."""
    rows = {row.id: row for row in _select(database, for_update=True)}
    changed = []
    for values in record["insert"]:
        if any(row.ip_address == values["ip_address"] and row.ip_port == values["ip_port"] for row in rows.values()):
            changed.append(f"a row for {values['ip_address']} agent port {values['ip_port']} appeared")
    for key, active in (("activate", False), ("deactivate", True)):
        for planned in record[key]:
            row = rows.get(planned["id"])
            if row is None or not _same_identity(row, planned) or row.is_active != active:
                changed.append(f"row id {planned['id']}")
    if changed:
        raise EsbgenError(f"{TABLE} in {record['shown']} changed while esbgen was working ({', '.join(changed)}); "
                          "nothing was changed, try again")
    now = datetime.datetime.now()
    for values in record["insert"]:
        esbrows.insert(database, TABLE, {**values, "created_at": now, "updated_at": now})
    for key, active in (("activate", True), ("deactivate", False)):
        for planned in record[key]:
            _set_active(database, planned["id"], active, now)


def _same_identity(row: ServerRow, planned: dict[str, Any]) -> bool:
    return all(getattr(row, column) == planned[column]
               for column in ("ip_address", "ip_port", "app_port", "category", "s_id"))


def _inserted(rows: list[ServerRow], values: dict[str, Any]) -> list[ServerRow]:
    return [row for row in rows if row.ip_address == values["ip_address"] and row.ip_port == values["ip_port"]
            and row.s_id == values["s_id"]]


def rows_applied(record: dict[str, Any], target: db.Target) -> bool:
    """The rows are as the swap left them: its new rows there and active, the others flipped."""
    from esbgen.db.registration import _database_for

    with _database_for(record, target) as database:
        rows = _select(database)
    by_id = {row.id: row for row in rows}
    for values in record["insert"]:
        found = _inserted(rows, values)
        if len(found) != 1 or not found[0].is_active:
            return False
    for key, active in (("activate", True), ("deactivate", False)):
        for planned in record[key]:
            row = by_id.get(planned["id"])
            if row is None or not _same_identity(row, planned) or row.is_active != active:
                return False
    return True


def revert_rows(record: dict[str, Any], target: db.Target) -> None:
    """Put the rows back as they were before the swap, from whatever point it reached; idempotent."""
    from esbgen.db.registration import _database_for

    shown = record["shown"]
    problems = []
    try:
        with _database_for(record, target) as database, database.atomic():
            rows = _select(database, for_update=True)
            by_id = {row.id: row for row in rows}
            now = datetime.datetime.now()
            for values in record["insert"]:
                for row in _inserted(rows, values):
                    if row.app_port != values["app_port"] or row.category != values["category"]:
                        problems.append(str(row))
                    else:
                        esbrows.delete(database, TABLE, row.id)
            for key, was_active in (("activate", False), ("deactivate", True)):
                for planned in record[key]:
                    row = by_id.get(planned["id"])
                    if row is None or not _same_identity(row, planned):
                        problems.append(f"row id {planned['id']}")
                    elif row.is_active != was_active:
                        _set_active(database, row.id, was_active, now)
            if problems:
                raise EsbgenError(f"{TABLE} rows changed since the swap wrote them ({shown}): {', '.join(problems)}; "
                                  "revert them by hand")
    except EsbgenError:
        raise
    except Exception as error:
        failure = _failure(error, "revert", shown, "")
        if failure is None:
            raise
        raise failure from None


def describe_revert(record: dict[str, Any]) -> list[str]:
    """What undo does to the rows, for ``esbgen undo --swap --dry-run``."""
    lines = [f"delete the {TABLE} row of {values['ip_address']} (agent port {values['ip_port']})"
             for values in record["insert"]]
    lines += [f"deactivate {TABLE} row id {row['id']} ({row['ip_address']})" for row in record["activate"]]
    lines += [f"activate {TABLE} row id {row['id']} ({row['ip_address']}) again" for row in record["deactivate"]]
    return lines
