"""The ESB's database, reached with DB-API drivers only when a command needs it.

Where the row of a system lives: ``--database URL`` (or ``$ESBGEN_DATABASE_URL``):
``sqlite:///ABS/PATH.db`` (or a plain path; the standard ``sqlite3``) and
``mysql://USER:PASSWORD@HOST:PORT/DB`` (PyMySQL).  ``manage.py esbgen`` (plugins/esbgen-django)
hands the ESB's own ``DATABASES['default']`` over as that variable.  Which URL a run uses is its
``Target``, resolved once by the shell (the runner's context) and passed to every function that
opens the database.

The table has one of two shapes, found by reading its columns before any use:

* the legacy ESB's (``ComponentSystem``): ``label``, ``remark``, timeouts ...;
* the later ESB's (``System``): ``description``, ``comment``, ``board`` (esbgen's rows
  are on board ``default``), ``maintainers``, timestamps, ``created_by``/``updated_by``.

esbgen speaks of a row's ``label`` and ``remark`` (its options, its journal);
on the later shape they are the ``description`` and ``comment`` columns.  A
table of neither shape is refused in one line naming the columns it lacks.
An inserted row gets the ESB's model defaults for every other known column the table has.

Nothing here imports a driver at module level: ``import esbgen.db.connection`` stays cheap.
"""

from __future__ import annotations

import datetime
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from esbgen.errors import EsbgenError

TABLE = "esb_component_system"
ENV_URL = "ESBGEN_DATABASE_URL"
PASSWORD_MASK = "***"

# What esbgen writes of a row (its names; the columns depend on the table's shape).
WRITABLE_COLUMNS = ("label", "remark")
BOARD = "default"  # the later ESB's board of the systems esbgen registers
AUTHOR = "esbgen"  # created_by / updated_by of the later shape
SYNCED_ROWS_KIND = "db_synced_rows"  # the step kind of the rows a verified sync wrote (esbgen.db.sync)

# ---------------------------------------------------------------- where the database is


@dataclass(frozen=True)
class Target:
    """Where this run's database is: ``--database``, else ``$ESBGEN_DATABASE_URL`` (None: neither)."""

    url: str | None = None

    @classmethod
    def resolve(cls, option: str | None = None) -> "Target":
        return cls(option or os.environ.get(ENV_URL) or None)

    @property
    def known(self) -> bool:
        return bool(self.url)

    def describe(self) -> str | None:
        """Where a row would go, for notes; None when no database is known."""
        return parse_url(self.url).shown if self.url else None

    def open(self, url: str | None = None, *, readonly: bool = False):
        return open_database(self, url, readonly=readonly)


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed ``--database`` URL; ``shown`` never holds the password."""

    engine: str  # "sqlite" or "mysql"
    name: str  # file path or database name
    user: str = ""
    password: str = ""
    host: str = ""
    port: int | None = None
    options: dict[str, str] = field(default_factory=dict)
    has_password: bool = False
    shown: str = ""


SQLITE_SCHEMES = ("sqlite", "sqlite3")
MYSQL_SCHEMES = ("mysql", "mariadb", "mysql+pymysql")
MYSQL_OPTIONS = ("charset", "unix_socket", "connect_timeout")
URL_HELP = "use sqlite:///ABS/PATH.db or mysql://USER:PASSWORD@HOST:PORT/DB"


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``.

    The user information ends at the URL's last ``@``, wherever a parser would end the
    authority: a password with a raw ``/``, ``?`` or ``#`` (which ends the authority for
    ``urlsplit``) is masked all the same. Masking too much is harmless; too little shows a secret.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo, at, after = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:{PASSWORD_MASK}@{after}"


_URL_IN_ARG = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def redact_argv(argv: list[str]) -> list[str]:
    """A command line fit for the journal: every URL's password replaced by ``***``."""
    return [_URL_IN_ARG.sub(lambda m: redact_url(m.group(0)), arg) for arg in argv]


def _sqlite_shown(path: str) -> str:
    return "sqlite://" + quote(path, safe="/:@+,=~")


_PERCENT_ERROR = re.compile(r"%(?![0-9A-Fa-f]{2})")
_KNOWN_SCHEMES = re.compile(r"(?i)(sqlite3?|mysql(\+pymysql)?|mariadb|postgres(ql)?|oracle|mssql):")


def _decoded(part: str, what: str, shown: str, *, secret: bool = False) -> str:
    """A percent-encoded part of the URL, decoded; a broken escape or a control character refused.

    The refusal names the part, never the text of a secret one.
    """
    if _PERCENT_ERROR.search(part):
        where = "" if secret else f" {part!r}"
        raise EsbgenError(f"bad database URL {shown}: the {what}{where} has a '%' that starts no %XX escape; "
                          "write '%' as %25")
    try:
        value = unquote(part, errors="strict")
    except UnicodeDecodeError:
        raise EsbgenError(f"bad database URL {shown}: the {what} decodes to bytes that are not UTF-8") from None
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise EsbgenError(f"bad database URL {shown}: the {what} holds a control character")
    return value


def parse_url(url: str) -> DatabaseUrl:
    """A ``--database`` URL, or one clear refusal that never shows its password."""
    url = url.strip()
    if not url:
        raise EsbgenError(f"--database is empty; {URL_HELP}")
    if "://" not in url:
        if _KNOWN_SCHEMES.match(url):
            raise EsbgenError(f"bad database URL {redact_url(url)}: a scheme needs '://'; {URL_HELP}")
        if any(ord(char) < 32 for char in url):
            raise EsbgenError("bad database path: it holds a control character")
        path = Path(url).expanduser().absolute()
        return DatabaseUrl("sqlite", str(path), shown=_sqlite_shown(str(path)))
    shown = redact_url(url)
    scheme = url.partition("://")[0].lower()
    try:
        parts = urlsplit(url)
    except ValueError as error:  # an unclosed IPv6 bracket
        raise EsbgenError(f"bad database URL {shown}: {error}") from None
    if scheme in SQLITE_SCHEMES:
        if parts.netloc:
            raise EsbgenError(f"bad SQLite URL {shown}: {parts.netloc!r} stands where a host would, and SQLite has none; "
                              "sqlite:// takes an absolute path (sqlite:///ABS/PATH.db), a relative one goes without the scheme")
        if not parts.path.strip("/") or parts.query or parts.fragment:
            raise EsbgenError(f"bad SQLite URL {shown}: {URL_HELP}")
        path = "/" + _decoded(parts.path, "path", shown).lstrip("/")
        return DatabaseUrl("sqlite", path, shown=_sqlite_shown(path))
    if scheme not in MYSQL_SCHEMES:
        raise EsbgenError(f"unknown database URL scheme {scheme + '://'!r} in {shown}; {URL_HELP}")
    if "@" in url.partition("://")[2] and "@" not in parts.netloc:
        # a raw '/', '?' or '#' in the password ended the authority before its '@'
        raise EsbgenError(f"bad database URL {shown}: percent-encode '/', '?', '#' and '@' in the user or password "
                          "(%2F, %3F, %23, %40)")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user_part, colon, password_part = userinfo.partition(":")
    user = _decoded(user_part, "user", shown)
    password = _decoded(password_part, "password", shown, secret=True)
    try:
        port = parts.port
    except ValueError:
        port_text = hostport.rpartition("]")[2].rpartition(":")[2]
        raise EsbgenError(f"bad database URL {shown}: the port {port_text!r} is not a number from 1 to 65535") from None
    if port == 0:
        raise EsbgenError(f"bad database URL {shown}: the port 0 is not a number from 1 to 65535")
    name = _decoded(parts.path.lstrip("/"), "database name", shown)
    if not name or "/" in name:
        raise EsbgenError(f"the database URL {shown} names no database; {URL_HELP}")
    if parts.fragment:
        raise EsbgenError(f"bad database URL {shown}: a '#' fragment means nothing here")
    try:
        options = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)))
    except ValueError:
        raise EsbgenError(f"bad database URL {shown}: the options after '?' are not NAME=VALUE&...") from None
    unknown = sorted(set(options) - set(MYSQL_OPTIONS))
    if unknown:
        raise EsbgenError(f"unknown option {unknown[0]!r} in {shown} (known: {', '.join(MYSQL_OPTIONS)})")
    host = _decoded(parts.hostname or "", "host", shown)
    if not host and not options.get("unix_socket"):
        raise EsbgenError(f"the database URL {shown} names no host; {URL_HELP} (or ?unix_socket=PATH)")
    return DatabaseUrl(
        "mysql",
        name,
        user=user,
        password=password,
        host=host or "localhost",
        port=port or 3306,
        options=options,
        has_password=bool(colon),
        shown=shown,
    )


# ---------------------------------------------------------------- the table's two shapes


@dataclass(frozen=True)
class Shape:
    """One shape of ``esb_component_system``: its columns, and where esbgen's label and remark go."""

    name: str  # "legacy" or "later"
    required: tuple[str, ...]  # the columns esbgen needs to find in the table
    columns: dict[str, str]  # esbgen's name of a value -> its column
    defaults: dict[str, Any]  # the ESB model's default of each other known column, for an insert
    filters: tuple[tuple[str, Any], ...] = ()  # columns that pick esbgen's rows besides the name


LEGACY = Shape("legacy", ("name", "label", "remark"), {"label": "label", "remark": "remark"},
               {"component_admin": "", "interface_admin": "", "system_link": "", "belong_to": "",
                "execute_timeout": None, "query_timeout": None, "doc_category_id": None})
LATER = Shape("later", ("name", "description", "comment", "board"), {"label": "description", "remark": "comment"},
              {"description_en": "", "comment_en": "", "timeout": None, "data_type": 3, "maintainers": "",
               "created_by": AUTHOR, "updated_by": AUTHOR}, (("board", BOARD),))
SHAPES = (LEGACY, LATER)


def shape_of(columns: set[str] | list[str], shown: str = "the table") -> Shape:
    """The shape a table with these columns has; refuses one of neither shape in one line."""
    present = set(columns)
    for shape in SHAPES:
        if set(shape.required) <= present:
            return shape
    lacks = "; ".join(
        f"the {shape.name} ESB's needs {', '.join(c for c in shape.required if c not in present)}" for shape in SHAPES
    )
    have = ", ".join(sorted(present)) or "none"
    raise DatabaseProblem(f"{shown} has neither shape esbgen writes ({lacks}); its columns: {have}")


# ---------------------------------------------------------------- a database in use


class DatabaseProblem(EsbgenError):
    """The database could not be read or written; the message is one line."""


@dataclass
class Database:
    """One DB-API connection (autocommit outside :meth:`atomic`), and the shape of the system table on it."""

    connection: Any
    engine: str  # "sqlite" or "mysql"
    key: str  # what the journal records: the redacted URL
    shown: str  # for messages
    has_password: bool = False
    _shape: Shape | None = None

    def quote(self, name: str) -> str:
        return f'"{name}"' if self.engine == "sqlite" else f"`{name}`"

    def execute(self, sql: str, args: list[Any] | tuple = ()) -> Any:
        """Run one statement written with ``%s`` placeholders; its cursor."""
        cursor = self.connection.cursor()
        if self.engine == "sqlite":
            # sqlite3's own datetime adapter is deprecated; the text is the one the ESB's Django stores
            cursor.execute(sql.replace("%s", "?"),
                           [str(value) if isinstance(value, datetime.datetime) else value for value in args])
        else:
            cursor.execute(sql, list(args) or None)
        return cursor

    def columns(self, table: str) -> list[str]:
        """The columns of ``table`` in their order; [] when there is no such table."""
        if self.engine == "sqlite":
            return [row[1] for row in self.execute(f"PRAGMA table_info({self.quote(table)})").fetchall()]
        return [row[0] for row in self.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = %s "
            "ORDER BY ordinal_position", [table]).fetchall()]

    @property
    def shape(self) -> Shape:
        if self._shape is None:
            columns = self.columns(TABLE)
            if not columns:
                raise DatabaseProblem(f"the table does not exist: no table {TABLE}")
            self._shape = shape_of(columns, "the table")
        return self._shape

    def _mine(self, system: str) -> tuple[str, list[Any]]:
        """The condition that picks esbgen's rows named ``system`` (on the later shape, on board ``default``)."""
        where = [("name", system), *self.shape.filters]
        return " AND ".join(f"{self.quote(column)} = %s" for column, _ in where), [value for _, value in where]

    def _set(self, values: dict[str, Any], created: bool) -> dict[str, Any]:
        """``values`` by column, with who and when on a table that records them (the later shape)."""
        columns = {self.shape.columns[name]: value for name, value in values.items()}
        if self.shape is LATER:
            now = datetime.datetime.now()
            present = set(self.columns(TABLE))
            stamps = {"updated_by": AUTHOR, "updated_time": now, **({"created_time": now} if created else {})}
            columns.update({column: value for column, value in stamps.items() if column in present})
        return columns

    def rows(self, system: str, for_update: bool = False) -> list[dict[str, Any]]:
        """The rows named ``system``, as {name: value} of what esbgen writes (``name``, ``label``, ``remark``)."""
        names = ("name", *WRITABLE_COLUMNS)
        columns = ", ".join(self.quote(column) for column in ("name", *(self.shape.columns[n] for n in WRITABLE_COLUMNS)))
        where, args = self._mine(system)
        lock = " FOR UPDATE" if for_update and self.engine == "mysql" else ""
        cursor = self.execute(f"SELECT {columns} FROM {self.quote(TABLE)} WHERE {where} ORDER BY id{lock}", args)
        return [dict(zip(names, values)) for values in cursor.fetchall()]

    def insert(self, system: str, values: dict[str, Any]) -> None:
        present = set(self.columns(TABLE))
        row = {column: value for column, value in self.shape.defaults.items() if column in present}
        row.update(dict([("name", system), *self.shape.filters]))
        row.update(self._set(values, created=True))
        self.execute(f"INSERT INTO {self.quote(TABLE)} ({', '.join(map(self.quote, row))}) "
                     f"VALUES ({', '.join(['%s'] * len(row))})", list(row.values()))

    def update(self, system: str, values: dict[str, Any]) -> int:
        row = self._set(values, created=False)
        where, args = self._mine(system)
        return self.execute(f"UPDATE {self.quote(TABLE)} SET {', '.join(f'{self.quote(c)} = %s' for c in row)} "
                            f"WHERE {where}", [*row.values(), *args]).rowcount

    def delete(self, system: str) -> int:
        """Delete the rows named ``system``: no cascade through other tables.

        A channel that points at the row (after a sync) makes the database refuse,
        which is reported, rather than losing the channel silently.
        """
        where, args = self._mine(system)
        return self.execute(f"DELETE FROM {self.quote(TABLE)} WHERE {where}", args).rowcount

    @contextmanager
    def atomic(self) -> Iterator[None]:
        self.execute("BEGIN")
        try:
            yield
        except BaseException:
            try:
                self.connection.rollback()
            except Exception:  # a broken connection must not hide the real error; the server rolls back
                pass
            raise
        self.connection.commit()


def _connect(parsed: DatabaseUrl, readonly: bool) -> Any:
    if parsed.engine == "sqlite":
        path = Path(parsed.name)
        if not path.is_file():
            raise DatabaseProblem(f"no SQLite database at {path}")
        import sqlite3

        # mode=rw never creates the file; isolation_level None: autocommit, atomic() says BEGIN itself
        connection = sqlite3.connect(f"file:{quote(str(path))}?mode={'ro' if readonly else 'rw'}", uri=True,
                                     isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA foreign_keys = ON")  # a delete that would orphan a row is refused, as by Django
        return connection
    try:
        import pymysql
        from pymysql.constants import CLIENT
    except ImportError:
        raise EsbgenError(
            "a mysql:// database needs PyMySQL, a dependency of esbgen: pip install PyMySQL into esbgen's environment"
        ) from None
    options: dict[str, Any] = {"connect_timeout": 10}
    for key, value in parsed.options.items():
        options[key] = int(value) if key == "connect_timeout" and value.isdigit() else value
    # FOUND_ROWS: an UPDATE counts the rows it matched, as Django's MySQL backend does
    return pymysql.connect(host=parsed.host, port=parsed.port, user=parsed.user, password=parsed.password,
                           database=parsed.name, autocommit=True, client_flag=CLIENT.FOUND_ROWS, **options)


@contextmanager
def open_database(target: Target, url: str | None = None, *, readonly: bool = False) -> Iterator[Database]:
    """The database of this run (``url``, else the target's URL), connected for the ``with`` block only.

    ``readonly`` opens a SQLite file read-only (dry runs).
    """
    url = url or target.url
    if url is None:
        raise EsbgenError(
            f"no database to register in: give --database URL (or ${ENV_URL}), or run as `manage.py esbgen`"
        )
    parsed = parse_url(url)
    connection = _connect(parsed, readonly)
    try:
        yield Database(connection, parsed.engine, parsed.shown, parsed.shown, parsed.has_password)
    finally:
        try:
            connection.close()
        except Exception:  # closing a broken connection must not hide the real error
            pass


# ---------------------------------------------------------------- errors, one line each


MYSQL_REASONS = {
    1044: "access denied to the database",
    1045: "wrong user or password",
    1049: "no such database",
    1142: "permission denied",
    1146: "the table does not exist",
    2002: "cannot connect to the server",
    2003: "cannot connect to the server",
    2005: "unknown host",
    2013: "lost the connection to the server",
}


def explain(error: BaseException) -> str:
    """One line saying what went wrong with the database."""
    args = getattr(error, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        code, message = args[0], str(args[1])
        reason = MYSQL_REASONS.get(code)
        text = f"{reason}: ({code}) {message}" if reason else f"({code}) {message}"
    else:
        text = str(error) or type(error).__name__
        lowered = text.lower()
        if "no such table" in lowered:
            text = f"the table does not exist: {text}"
        elif "readonly database" in lowered or "read-only" in lowered:
            text = f"permission denied: {text}"
        elif "unable to open database" in lowered:
            text = f"cannot open the database file: {text}"
    return " ".join(text.split())


@contextmanager
def explained(what: str) -> Iterator[None]:
    """A database error raised inside becomes one line, ``<what>: <the reason>``; esbgen's own errors and
    any other exception pass through unchanged."""
    try:
        yield
    except EsbgenError:
        raise
    except Exception as error:
        if not is_database_error(error):
            raise
        raise EsbgenError(f"{what}: {explain(error)}") from None


def is_database_error(error: BaseException) -> bool:
    return (type(error).__module__ or "").startswith(("pymysql", "sqlite3"))
