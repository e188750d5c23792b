"""The ESB's database, reached through Django's ORM only when a command needs it.

Where the row of a system lives:

* ``--database URL`` (or ``$ESBGEN_DATABASE_URL``): ``sqlite:///ABS/PATH.db`` (or a plain
  path) and ``mysql://USER:PASSWORD@HOST:PORT/DB`` (PyMySQL as the MySQL driver).
  Django is configured in this process (no settings module needed) and the
  URL becomes a connection alias for the time of one use.
* run as ``manage.py esbgen`` (the ESB's own Django project): the project's
  ``default`` database, unless a URL is given.

Which of them a run uses is its ``Target``, resolved once by the shell (the
runner's context) and passed to every function that opens the database.

The table has one of two shapes, found by reading its columns before any use:

* the legacy ESB's (``ComponentSystem``): ``label``, ``remark``, timeouts ...;
* the later ESB's (``System``): ``description``, ``comment``, ``board`` (esbgen's rows
  are on board ``default``), ``maintainers``, timestamps, ``created_by``/``updated_by``.

esbgen speaks of a row's ``label`` and ``remark`` (its options, its journal);
on the later shape they are the ``description`` and ``comment`` columns.  A
table of neither shape is refused in one line naming the columns it lacks.

The table is read and written through the project's own model
(``bkcore.ComponentSystem``, or ``bkcore.System`` on the later shape) when the
running project has it, else through esbgen's own unmanaged mapping of
``esb_component_system`` with exactly the known columns the table has (kept in
a private app registry, so it never appears among a project's models).
Columns are addressed by their database names, whatever the model calls its fields.

Nothing here imports Django at module level: ``import esbgen.db`` stays cheap.
"""

from __future__ import annotations

import os
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from esbgen.errors import EsbgenError

TABLE = "esb_component_system"
ENV_URL = "ESBGEN_DATABASE_URL"
DJANGO_PROJECT = "django-project"
PASSWORD_MASK = "***"

# What esbgen writes of a row (its names; the columns depend on the table's shape).
WRITABLE_COLUMNS = ("label", "remark")
BOARD = "default"  # the later ESB's board of the systems esbgen registers
AUTHOR = "esbgen"  # created_by / updated_by of the later shape

# ---------------------------------------------------------------- where the database is


@dataclass(frozen=True)
class Target:
    """Where this run's database is, resolved once by the shell and passed down.

    ``url`` is ``--database``, else ``$ESBGEN_DATABASE_URL`` (None: neither);
    ``in_django`` says the run is ``manage.py esbgen`` in-process, whose project's
    default database serves when no URL is given.
    """

    url: str | None = None
    in_django: bool = False

    @classmethod
    def resolve(cls, option: str | None = None, in_django: bool = False) -> "Target":
        return cls(option or os.environ.get(ENV_URL) or None, in_django)

    @property
    def known(self) -> bool:
        return bool(self.url) or self.in_django

    def describe(self) -> str | None:
        """Where a row would go, for notes; None when no database is known."""
        if self.url:
            return parse_url(self.url).shown
        if self.in_django:
            return "the project's database"
        return None

    def open(self, url: str | None = None, *, readonly: bool = False, project: bool = False):
        return open_database(self, url, readonly=readonly, project=project)


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


# ---------------------------------------------------------------- Django, lazily


def ensure_django() -> None:
    """Configure Django in this process if nobody has (standalone CLI), and set it up."""
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES={},
            INSTALLED_APPS=[],
            USE_TZ=False,
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
            LOGGING_CONFIG=None,
        )
    from django.apps import apps

    if not apps.ready:
        import django

        django.setup()


def install_pymysql() -> None:
    """PyMySQL as ``MySQLdb`` for Django's MySQL backend, unless mysqlclient is installed.

    PyMySQL >= 1.1 reports a mysqlclient-style ``version_info`` (2.2.x) that
    Django's check (mysqlclient >= 1.4.3 for Django 4.2-5.2) accepts; an older
    PyMySQL that reports less is given the smallest version Django accepts.
    """
    try:
        import MySQLdb  # noqa: F401  (mysqlclient, or PyMySQL installed earlier)
        return
    except ImportError:
        pass
    try:
        import pymysql
    except ImportError:
        raise EsbgenError(
            "a mysql:// database needs PyMySQL, a dependency of esbgen: pip install PyMySQL into esbgen's environment"
        ) from None
    if tuple(pymysql.version_info[:3]) < (1, 4, 3):
        pymysql.version_info = (1, 4, 6, "final", 0)
    pymysql.install_as_MySQLdb()


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


def _legacy_fields() -> dict[str, Any]:
    from django.db import models

    return {
        "name": models.CharField(max_length=64),
        "label": models.CharField(max_length=128, default=""),
        "component_admin": models.CharField(max_length=128, default=""),
        "interface_admin": models.CharField(max_length=128, default=""),
        "system_link": models.CharField(max_length=1024, default=""),
        "belong_to": models.CharField(max_length=128, default=""),
        "remark": models.TextField(default=""),
        "execute_timeout": models.IntegerField(null=True),
        "query_timeout": models.IntegerField(null=True),
        "doc_category_id": models.IntegerField(null=True),
    }


def _later_fields() -> dict[str, Any]:
    from django.db import models

    return {
        "name": models.CharField(max_length=64),
        "description": models.CharField(max_length=128, default=""),
        "description_en": models.CharField(max_length=128, default=""),
        "comment": models.TextField(default=""),
        "comment_en": models.TextField(default=""),
        "timeout": models.IntegerField(null=True),
        "data_type": models.IntegerField(default=3),
        "maintainers": models.CharField(max_length=1024, default=""),
        "board": models.CharField(max_length=64, default=BOARD),
        "created_time": models.DateTimeField(default=_now),
        "updated_time": models.DateTimeField(default=_now),
        "created_by": models.CharField(max_length=32, default=AUTHOR),
        "updated_by": models.CharField(max_length=32, default=AUTHOR),
    }


@dataclass(frozen=True)
class Shape:
    """One shape of ``esb_component_system``: its columns, and where esbgen's label and remark go."""

    name: str  # "legacy" or "later"
    model_name: str  # the ESB's model of the table, in app bkcore
    required: tuple[str, ...]  # the columns esbgen needs to find in the table
    columns: dict[str, str]  # esbgen's name of a value -> its column
    fields: Callable[[], dict[str, Any]]  # every known column, as Django fields
    filters: tuple[tuple[str, Any], ...] = ()  # columns that pick esbgen's rows besides the name


LEGACY = Shape("legacy", "ComponentSystem", ("name", "label", "remark"), {"label": "label", "remark": "remark"},
               _legacy_fields)
LATER = Shape("later", "System", ("name", "description", "comment", "board"),
              {"label": "description", "remark": "comment"}, _later_fields, (("board", BOARD),))
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


_MAPPINGS: dict[tuple[str, tuple[str, ...]], Any] = {}


def mapping_model(shape: Shape | None = None, columns: set[str] | None = None) -> Any:
    """esbgen's own unmanaged model of ``esb_component_system``, in a private app registry.

    With ``columns`` (the table's), only the known columns the table has are
    mapped, so an insert names no column the table lacks.  Without: every
    column of the shape (the legacy one by default).
    """
    shape = shape or LEGACY
    from django.apps.registry import Apps
    from django.db import models

    known = shape.fields()
    names = tuple(name for name in known if columns is None or name in columns)
    key = (shape.name, names)
    if key in _MAPPINGS:
        return _MAPPINGS[key]

    class Meta:
        app_label = "esbgen"
        db_table = TABLE
        managed = False
        apps = Apps()

    attrs = {"__module__": __name__, "Meta": Meta, "id": models.AutoField(primary_key=True)}
    attrs.update({name: known[name] for name in names})
    _MAPPINGS[key] = type(shape.model_name, (models.Model,), attrs)
    return _MAPPINGS[key]


_PRIVATE_MODELS: dict[tuple[str, str], Any] = {}


def unmanaged_model(app_label: str, class_name: str, table: str, fields: Callable[[], dict[str, Any]]) -> Any:
    """An unmanaged model of another ``table`` (a plugin's, e.g. ``engine_servers``), in a private app registry.

    ``fields()`` gives the Django fields by name (a field's name is its column unless it
    says otherwise).  Like :func:`mapping_model`, the model never appears among a
    project's models and no migration ever touches its table; it is built once per
    ``(app_label, class_name)``.  Django is set up first if nobody has.
    """
    key = (app_label, class_name)
    if key in _PRIVATE_MODELS:
        return _PRIVATE_MODELS[key]
    ensure_django()
    from django.apps.registry import Apps
    from django.db import models

    meta = type("Meta", (), {"app_label": app_label, "db_table": table, "managed": False, "apps": Apps()})
    attrs = {"__module__": __name__, "Meta": meta, **fields()}
    _PRIVATE_MODELS[key] = type(class_name, (models.Model,), attrs)
    return _PRIVATE_MODELS[key]


def project_model(shape: Shape | None = None, columns: set[str] | None = None) -> Any:
    """The running project's model of the table (``bkcore.ComponentSystem``, or ``bkcore.System``
    on the later shape), else esbgen's mapping."""
    from django.apps import apps

    shape = shape or LEGACY
    try:
        model = apps.get_model("bkcore", shape.model_name)
    except LookupError:
        return mapping_model(shape, columns)
    if model._meta.db_table != TABLE or not set(shape.required) <= {f.column for f in model._meta.concrete_fields}:
        return mapping_model(shape, columns)
    return model


def read_columns(alias: str) -> set[str]:
    """The columns of ``esb_component_system`` on a connection; a missing table is a DatabaseProblem."""
    from django.db import connections

    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA table_info({connection.ops.quote_name(TABLE)})")
            columns = {row[1] for row in cursor.fetchall()}
        elif connection.vendor == "mysql":
            cursor.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = %s",
                [TABLE],
            )
            columns = {row[0] for row in cursor.fetchall()}
        else:
            columns = {c.name for c in connection.introspection.get_table_description(cursor, TABLE)}
    if not columns:
        raise DatabaseProblem(f"the table does not exist: no table {TABLE}")
    return columns


# ---------------------------------------------------------------- a database in use


class DatabaseProblem(EsbgenError):
    """The database could not be read or written; the message is one line."""


@dataclass
class Database:
    """One connection alias, and (once read) the shape and model of the system table on it."""

    alias: str
    key: str  # what the journal records: the redacted URL, or "django-project"
    shown: str  # for messages
    has_password: bool = False
    use_project_model: bool = False
    _shape: Shape | None = None
    _model: Any = None

    @property
    def shape(self) -> Shape:
        self._resolve()
        return self._shape

    @property
    def model(self) -> Any:
        self._resolve()
        return self._model

    def _resolve(self) -> None:
        if self._shape is not None:
            return
        columns = read_columns(self.alias)
        shape = shape_of(columns, "the table")
        self._model = project_model(shape, columns) if self.use_project_model else mapping_model(shape, columns)
        self._shape = shape

    def _columns(self) -> set[str]:
        return {model_field.column for model_field in self.model._meta.concrete_fields}

    def _attr(self, column: str) -> str:
        for model_field in self.model._meta.concrete_fields:
            if model_field.column == column:
                return model_field.attname
        raise DatabaseProblem(f"the model {self.model._meta.label} has no column {column!r} of {TABLE}")

    def _manager(self) -> Any:
        return self.model._base_manager.using(self.alias)

    def _mine(self, system: str) -> dict[str, Any]:
        """The lookup of esbgen's rows named ``system`` (on the later shape, on board ``default``)."""
        lookup = {self._attr("name"): system}
        lookup.update({self._attr(column): value for column, value in self.shape.filters})
        return lookup

    def _values(self, values: dict[str, Any]) -> dict[str, Any]:
        return {self._attr(self.shape.columns[name]): value for name, value in values.items()}

    def objects(self, model: Any) -> Any:
        """The rows of another model's table (e.g. one from :func:`unmanaged_model`) on this connection."""
        return model._base_manager.using(self.alias)

    def rows(self, system: str, for_update: bool = False) -> list[dict[str, Any]]:
        """The rows named ``system``, as {name: value} of what esbgen writes (``name``, ``label``, ``remark``)."""
        names = ("name", *WRITABLE_COLUMNS)
        attrs = [self._attr("name")] + [self._attr(self.shape.columns[n]) for n in WRITABLE_COLUMNS]
        query = self._manager().filter(**self._mine(system))
        if for_update:
            query = query.select_for_update()
        return [dict(zip(names, values)) for values in query.order_by("pk").values_list(*attrs)]

    def _stamps(self, created: bool) -> dict[str, Any]:
        """Who and when, on a table that records them (the later shape)."""
        present = self._columns()
        stamps: dict[str, Any] = {}
        for column, value in (("updated_by", AUTHOR), ("updated_time", _now())):
            if column in present:
                stamps[self._attr(column)] = value
        if created:
            for column, value in (("created_by", AUTHOR), ("created_time", stamps.get("updated_time") or _now())):
                if column in present:
                    stamps[self._attr(column)] = value
        return stamps

    def insert(self, system: str, values: dict[str, Any]) -> None:
        fields = self._mine(system)
        fields.update(self._values(values))
        if self.shape is LATER:
            fields.update(self._stamps(created=True))
        self._manager().create(**fields)

    def update(self, system: str, values: dict[str, Any]) -> int:
        fields = self._values(values)
        if self.shape is LATER:
            fields.update(self._stamps(created=False))
        return self._manager().filter(**self._mine(system)).update(**fields)

    def delete(self, system: str) -> int:
        """Delete the rows named ``system`` with plain SQL: no cascade through other tables.

        A channel that points at the row (after a sync) makes the database refuse,
        which is reported, rather than losing the channel silently.
        """
        from django.db import connections

        connection = connections[self.alias]
        quote = connection.ops.quote_name
        table = quote(self.model._meta.db_table)
        self._attr("name")  # the model maps the column
        where = [("name", system), *self.shape.filters]
        condition = " AND ".join(f"{quote(column)} = %s" for column, _ in where)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE {condition}", [value for _, value in where])
            return cursor.rowcount

    @contextmanager
    def atomic(self) -> Iterator[None]:
        from django.db import transaction

        with transaction.atomic(using=self.alias):
            yield


def _sqlite_name(path: str, readonly: bool) -> str:
    # Django's SQLite backend opens NAME as a URI: the file must exist (mode=rw never creates it).
    return f"file:{quote(path)}?mode={'ro' if readonly else 'rw'}"


def _alias_settings(parsed: DatabaseUrl, readonly: bool) -> dict[str, Any]:
    if parsed.engine == "sqlite":
        path = Path(parsed.name)
        if not path.is_file():
            raise DatabaseProblem(f"no SQLite database at {path}")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": _sqlite_name(str(path), readonly)}
    install_pymysql()
    options: dict[str, Any] = {"connect_timeout": 10}
    for key, value in parsed.options.items():
        options[key] = int(value) if key == "connect_timeout" and value.isdigit() else value
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": parsed.name,
        "USER": parsed.user,
        "PASSWORD": parsed.password,
        "HOST": parsed.host,
        "PORT": str(parsed.port),
        "OPTIONS": options,
    }


@contextmanager
def open_database(target: Target, url: str | None = None, *, readonly: bool = False,
                  project: bool = False) -> Iterator[Database]:
    """The database of this run (``url``, else the target's URL, else the Django project's).

    ``project`` asks for the running Django project's default database whatever the URL.

    A URL becomes a connection alias only for the ``with`` block; it is closed
    and forgotten after, so a long-lived process (a test run, a project) keeps
    no stray connection.  ``readonly`` opens a SQLite file read-only (dry runs).
    """
    url = None if project else (url or target.url)
    if url is None and not target.in_django:
        raise EsbgenError(
            f"no database to register in: give --database URL (or ${ENV_URL}), or run as `manage.py esbgen`"
        )
    parsed = parse_url(url) if url else None
    ensure_django()
    from django.db import DEFAULT_DB_ALIAS, connections

    if parsed is None:
        settings_dict = connections[DEFAULT_DB_ALIAS].settings_dict
        shown = f"project database {_describe_settings(settings_dict)}"
        yield Database(DEFAULT_DB_ALIAS, DJANGO_PROJECT, shown, use_project_model=True)
        return
    from django.db.utils import load_backend

    alias = f"esbgen-{uuid.uuid4().hex[:8]}"
    config = _alias_settings(parsed, readonly)
    settings_dict = connections.configure_settings({DEFAULT_DB_ALIAS: config})[DEFAULT_DB_ALIAS]
    # A connection of this thread only, not added to the project's DATABASES.
    connection = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)
    if parsed.engine == "mysql":
        # The ESB's MySQL is often older than Django's supported minimum; the
        # statements esbgen runs (select, insert, update, delete of one row) are plain.
        connection.features.minimum_database_version = None
    connections[alias] = connection
    try:
        yield Database(alias, parsed.shown, parsed.shown, parsed.has_password, use_project_model=target.in_django)
    finally:
        try:
            connection.close()
        except Exception:  # closing a broken connection must not hide the real error
            pass
        try:
            del connections[alias]
        except AttributeError:
            pass


def _describe_settings(settings_dict: dict[str, Any]) -> str:
    engine = str(settings_dict.get("ENGINE", "")).rsplit(".", 1)[-1]
    name = settings_dict.get("NAME")
    host = settings_dict.get("HOST")
    port = settings_dict.get("PORT")
    where = f" at {host}{':' + str(port) if port else ''}" if host else ""
    return f"{engine} {name}{where}"


def project_identity() -> str:
    """The Django project's default database, without secrets, for the journal."""
    ensure_django()
    from django.db import DEFAULT_DB_ALIAS, connections

    return _describe_settings(connections[DEFAULT_DB_ALIAS].settings_dict)


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
    try:
        from django.core.exceptions import ImproperlyConfigured
        from django.db import DatabaseError, InterfaceError
    except ImportError:  # pragma: no cover - Django is a dependency
        return False
    if isinstance(error, (DatabaseError, InterfaceError, ImproperlyConfigured)):
        return True
    module = type(error).__module__ or ""
    return module.startswith(("pymysql", "MySQLdb", "sqlite3"))
