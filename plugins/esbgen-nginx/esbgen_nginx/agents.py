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

The rows are written in a transaction left open while nginx is tested and reloaded, and
committed only after the reload succeeded (see :class:`PendingActivation`).
"""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esbgen import db
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
            lines.append(f"  agent {agent.backend.host}:{agent.agent_port}: sid {auth.sid}  token {auth.token}")
            if auth.source == "generated":
                lines.append("  ACTION NEEDED: write them into the new agent's paas_agent_config.yaml as auth.sid and "
                             "auth.token, and restart the agent: the app engine accepts it with these only")
        return lines


def plan_activation(request: ActivationRequest, backends: list[Backend], old_servers: list[str],
                    dry_run: bool) -> ActivationPlan:
    """Read ``engine_servers`` (read-only for a dry run) and plan the rows; refuse (one line) what is unsafe."""
    _check_values(request, backends)
    rows, shown = _read_rows(request.database, dry_run)
    return compute_plan(rows, request, backends, old_servers, shown, {})


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


def engine_server_model() -> Any:
    """esbgen's unmanaged mapping of ``engine_servers`` (the developer center's columns)."""

    def fields() -> dict[str, Any]:
        from django.db import models

        return {
            "id": models.AutoField(primary_key=True),
            "name": models.CharField(max_length=NAME_MAX),
            "s_id": models.CharField(max_length=36),
            "token": models.CharField(max_length=36),
            "ip_address": models.CharField(max_length=ADDRESS_MAX),
            "ip_port": models.CharField(max_length=36),
            "app_port": models.CharField(max_length=36),
            "category": models.CharField(max_length=36),
            "info": models.CharField(max_length=200),
            "is_active": models.BooleanField(),
            "mac": models.CharField(max_length=36),
            "created_at": models.DateTimeField(),
            "updated_at": models.DateTimeField(),
        }

    return db.unmanaged_model("esbgen_nginx", "EngineServer", TABLE, fields)


def _select(database: db.Database, for_update: bool = False) -> list[ServerRow]:
    query = database.objects(engine_server_model()).order_by("pk")
    if for_update:
        query = query.select_for_update()
    return [_row(values) for values in query.values_list(*_COLUMNS)]


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


def _read_rows(target: db.Target, dry_run: bool) -> tuple[list[ServerRow], str]:
    require_database(target)
    shown = target.describe() or "?"
    try:
        with target.open(readonly=dry_run) as database:
            shown = database.shown
            return _select(database), shown
    except EsbgenError as error:
        if isinstance(error, db.DatabaseProblem):
            raise _failure(error, "read", shown, "; nothing was changed") from None
        raise
    except Exception as error:
        failure = _failure(error, "read", shown, "; nothing was changed")
        if failure is None:
            raise
        raise failure from None


class _Rollback(Exception):
    """Thrown into the open transaction to roll it back."""


class PendingActivation:
    """The planned rows, written in a transaction that stays open until :meth:`commit`.

    ``begin`` locks and re-reads the table, refuses if the planned rows changed since
    the plan was printed, and writes them: a failure there (no permission, the table
    gone, ...) comes before nginx is touched.  ``commit`` is called once nginx has
    reloaded; ``rollback`` (any failure before) leaves the table as it was.
    """

    def __init__(self, plan: ActivationPlan, backends: list[Backend], old_servers: list[str]):
        self.plan, self.backends, self.old_servers = plan, backends, old_servers
        self.committed = False
        self._stack: ExitStack | None = None

    @property
    def open(self) -> bool:
        return self._stack is not None

    def begin(self) -> None:
        from django.db import transaction

        shown = self.plan.shown
        stack = ExitStack()
        try:
            database = stack.enter_context(self.plan.request.database.open())
            shown = database.shown
            stack.enter_context(transaction.atomic(using=database.alias))
            rows = _select(database, for_update=True)
            auths = {(a.backend.host, a.agent_port): a.auth for a in self.plan.inserts if a.auth is not None}
            now = compute_plan(rows, self.plan.request, self.backends, self.old_servers, shown, auths)
            if now.key() != self.plan.key():
                raise EsbgenError(f"{TABLE} in {shown} changed while esbgen was working; nothing was changed, try again")
            _write(database, self.plan)
        except BaseException as error:
            try:
                stack.__exit__(_Rollback, _Rollback(), None)
            except Exception:
                pass  # the connection is broken: the transaction dies with it
            failure = _failure(error, "write", shown, "; nothing was changed (nginx untouched)")
            if failure is None:
                raise
            raise failure from None
        self._stack = stack

    def commit(self) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            raise EsbgenError(f"internal error: no open {TABLE} transaction to commit")
        try:
            stack.__exit__(None, None, None)
        except Exception as error:
            failure = _failure(error, "commit the change of", self.plan.shown, "")
            if failure is None:
                raise
            raise failure from None
        self.committed = True

    def landed(self) -> bool | None:
        """After a failed commit: are the rows as planned after all (True), not (False), or unknown (None)?

        A connection lost during COMMIT leaves it open whether the server committed;
        a fresh connection reads the table back.
        """
        try:
            with self.plan.request.database.open() as database:
                rows = _select(database)
                auths = {(a.backend.host, a.agent_port): a.auth for a in self.plan.inserts if a.auth is not None}
                now = compute_plan(rows, self.plan.request, self.backends, self.old_servers, database.shown, auths)
        except Exception:
            return None
        return now.is_noop

    def rollback(self) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        try:
            stack.__exit__(_Rollback, _Rollback(), None)
        except Exception:
            pass  # closing a broken connection: the uncommitted change is gone with it


def _write(database: db.Database, plan: ActivationPlan) -> None:
    from django.utils import timezone

    now = timezone.now()
    rows = database.objects(engine_server_model())
    for agent in plan.inserts:
        rows.create(**agent.insert, created_at=now, updated_at=now)
    for ids, active in (([row.id for row in plan.activate], True), ([row.id for row, _ in plan.deactivate], False)):
        if ids:
            changed = rows.filter(pk__in=ids).update(is_active=active, updated_at=now)
            if changed != len(ids):
                raise EsbgenError(f"{TABLE}: {len(ids)} row(s) to update, {changed} found; nothing was changed")
