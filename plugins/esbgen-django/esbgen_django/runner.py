# -*- coding: utf-8 -*-
"""Run the esbgen command of its own environment for the ESB's ``manage.py esbgen``.

* The command is ``$ESBGEN_EXECUTABLE``, else the setting ``ESBGEN_EXECUTABLE``,
  else ``esbgen`` on ``PATH``; it must report a version of at least
  ``MIN_ESBGEN``.  A missing or too old one gets one line saying how to install it.
* The ESB root is ``$ESBGEN_ESB_ROOT`` if set, else the project's ``BASE_DIR``,
  else the folder of ``manage.py`` (``--esb-root`` still wins).
* The database is ``DATABASES['default']`` as ``$ESBGEN_DATABASE_URL`` (SQLite
  and MySQL engines), unless that variable is already set.  The URL, password
  included, is passed in the environment only: never on a command line, and
  esbgen itself never writes it to its journal or its output.
* The interpreter for ``--sync`` is this one (``$ESBGEN_ESB_PYTHON``).

esbgen's output streams through as it comes, and its exit status is the command's: straight to
this process's own streams from the shell (``manage.py esbgen``: a terminal keeps esbgen's progress
line), line by line through the command's ``self.stdout``/``self.stderr`` from code
(``call_command("esbgen", ..., stdout=buf, stderr=errbuf)`` captures it).
Valid Python 2.7 and 3.6+: no f-strings, annotations or keyword-only arguments.
"""

import os
import re
import subprocess
import sys
import threading

try:
    from urllib.parse import quote as _url_quote
except ImportError:  # Python 2.7
    from urllib import quote as _url_quote

EXECUTABLE = "ESBGEN_EXECUTABLE"
ROOT = "ESBGEN_ESB_ROOT"
DATABASE_URL = "ESBGEN_DATABASE_URL"
ESB_PYTHON = "ESBGEN_ESB_PYTHON"
MIN_ESBGEN = (0, 2, 0)
PROG = "manage.py esbgen"
INSTALL = (
    "install esbgen %s or later in an environment of its own (Python 3.10+: `pipx install /path/to/esbgen`, "
    "which puts it on PATH, or `python3 -m venv /opt/esbgen && /opt/esbgen/bin/pip install /path/to/esbgen` "
    "and ESBGEN_EXECUTABLE=/opt/esbgen/bin/esbgen in the environment or the ESB's settings)"
    % ".".join(str(n) for n in MIN_ESBGEN)
)
DJANGO_GLOBAL_OPTIONS = ("--settings", "--pythonpath")
VERSION_RE = re.compile(r"version (\d+)\.(\d+)\.(\d+)")


TEXT_TYPES = (str, type(u""))  # str and unicode on Python 2, str twice on Python 3


def quote(value, safe=""):
    """URL-quote a setting's value; on Python 2, text (unicode) is quoted as its UTF-8 bytes."""
    if not isinstance(value, TEXT_TYPES):
        value = str(value)
    if not isinstance(value, str):  # unicode on Python 2
        value = value.encode("utf-8")
    return _url_quote(value, safe=safe)


class Refusal(Exception):
    """One line for the operator; the command exits 1."""


def _executable_file(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _on_path(name):
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(folder, name)
        if folder and _executable_file(candidate):
            return candidate
    return None


def find_esbgen(settings):
    """The esbgen command and where it was named: the environment, the settings, or PATH."""
    named = os.environ.get(EXECUTABLE)
    how = "$" + EXECUTABLE
    if not named:
        named = getattr(settings, EXECUTABLE, None)
        how = "settings." + EXECUTABLE
    if named:
        path = os.path.expanduser(str(named))
        if not _executable_file(path):
            raise Refusal("%s names %s, which is not an executable file: %s" % (how, path, INSTALL))
        return path, how
    found = _on_path("esbgen")
    if found is None:
        raise Refusal("esbgen is not installed where this ESB looks for it ($%s, settings.%s, PATH): %s"
                      % (EXECUTABLE, EXECUTABLE, INSTALL))
    return found, "PATH"


def check_version(path, how):
    """The version the command reports; refuses a command that is not esbgen or is too old."""
    try:
        process = subprocess.Popen([path, "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = process.communicate()
    except OSError as error:
        raise Refusal("cannot run %s (%s): %s: %s" % (path, how, error.strerror or error, INSTALL))
    text = (out or b"").decode("utf-8", "replace") + (err or b"").decode("utf-8", "replace")
    match = VERSION_RE.search(text)
    if process.returncode != 0 or match is None or "esbgen" not in text:
        first = text.strip().splitlines()[0] if text.strip() else "no output"
        raise Refusal("%s (%s) is not a working esbgen (`--version` said: %s): %s" % (path, how, first, INSTALL))
    version = tuple(int(part) for part in match.groups())
    if version < MIN_ESBGEN:
        raise Refusal("%s (%s) is esbgen %s; manage.py esbgen needs %s or later: upgrade it (`pipx upgrade esbgen`, "
                      "or pip install -U /path/to/esbgen in its environment)"
                      % (path, how, ".".join(str(n) for n in version), ".".join(str(n) for n in MIN_ESBGEN)))
    return version


def database_url(database):
    """``DATABASES['default']`` as an esbgen URL, or (None, why not)."""
    engine = str(database.get("ENGINE") or "")
    name = str(database.get("NAME") or "")
    options = database.get("OPTIONS") or {}
    if "sqlite" in engine:
        if not name or name == ":memory:" or name.startswith("file:"):
            return None, "its SQLite database %r is not a file esbgen can open" % name
        return "sqlite:///" + quote(os.path.abspath(name).lstrip("/"), safe="/"), None
    if "mysql" in engine:
        user = quote(database.get("USER") or "", safe="")
        password = database.get("PASSWORD")
        auth = user + (":" + quote(password, safe="") if password else "")
        host = str(database.get("HOST") or "localhost")
        query = []
        if host.startswith("/"):  # a unix socket, as Django takes it
            query.append("unix_socket=" + quote(host, safe="/"))
            host = "localhost"
        for key in ("charset", "unix_socket", "connect_timeout"):
            if key in options and not any(q.startswith(key + "=") for q in query):
                query.append(key + "=" + quote(options[key], safe="/"))
        port = str(database.get("PORT") or "3306")
        url = "mysql://%s@%s:%s/%s" % (auth, host, port, quote(name, safe=""))
        return url + ("?" + "&".join(query) if query else ""), None
    return None, "its engine %s is not one esbgen reaches (MySQL, SQLite)" % (engine or "(none)")


def esb_root(settings, manage_py):
    base_dir = getattr(settings, "BASE_DIR", None)
    if base_dir:
        return os.path.abspath(str(base_dir))
    return os.path.dirname(os.path.abspath(manage_py or "manage.py"))


def child_environment(settings, manage_py, say_error):
    env = dict(os.environ)
    env.setdefault(ROOT, esb_root(settings, manage_py))
    env.setdefault(ESB_PYTHON, sys.executable)
    if not env.get(DATABASE_URL):
        databases = getattr(settings, "DATABASES", None) or {}
        url, why_not = database_url(databases.get("default") or {})
        if url:
            env[DATABASE_URL] = url
        else:
            say_error("%s: the ESB's database is not handed to esbgen: %s; give --database URL to write rows"
                      % (PROG, why_not))
    return env


def without_django_options(argv):
    """Drop --settings/--pythonpath: Django has applied them; esbgen's parser knows neither."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in DJANGO_GLOBAL_OPTIONS:
            skip = True
        elif not any(arg.startswith(option + "=") for option in DJANGO_GLOBAL_OPTIONS):
            kept.append(arg)
    return kept


def _say_error(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _pump(pipe, write):
    """Copy a child's stream to ``write`` line by line, as text, while the child runs."""

    def copy():
        try:
            for line in iter(pipe.readline, b""):
                write(line.decode("utf-8", "replace"))
        finally:
            pipe.close()

    thread = threading.Thread(target=copy)
    thread.daemon = True
    thread.start()
    return thread


def run(argv, manage_py=None, settings=None, stdout=None, stderr=None):
    """Run esbgen with ``argv``; its exit status (1 with one line when esbgen cannot be run).

    ``stdout``/``stderr``: callables taking text (a Django command's ``self.stdout``/``self.stderr``)
    that get esbgen's output, and this command's own lines, as they come; None: this process's streams.
    """
    if settings is None:
        from django.conf import settings
    say_error = _say_error if stderr is None else (lambda line: stderr(line + "\n"))
    try:
        path, how = find_esbgen(settings)
        check_version(path, how)
    except Refusal as refusal:
        say_error("%s: error: %s" % (PROG, refusal))
        return 1
    env = child_environment(settings, manage_py, say_error)
    sys.stdout.flush()
    try:
        process = subprocess.Popen([path] + list(argv), env=env,
                                   stdout=None if stdout is None else subprocess.PIPE,
                                   stderr=None if stderr is None else subprocess.PIPE)
    except OSError as error:
        say_error("%s: error: cannot run %s: %s" % (PROG, path, error.strerror or error))
        return 1
    pumps = [_pump(pipe, write) for pipe, write in ((process.stdout, stdout), (process.stderr, stderr))
             if write is not None]
    while True:
        try:
            status = process.wait()
            break
        except KeyboardInterrupt:  # esbgen got the same signal: let it finish what it does on one
            continue
    for pump in pumps:
        pump.join()
    return 128 - status if status < 0 else status
