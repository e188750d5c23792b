"""``python manage.py esbgen`` inside an ESB-shaped Django project, through plugins/esbgen-django.

The projects are real: a scratch copy of the sample ESB whose ``manage.py`` is a
Django one, with settings and an app ``bkcore`` holding the ESB's model of
``esb_component_system`` (the legacy ``ComponentSystem`` on a tree with
``configs/``, the later ``System`` on a tree with ``conf/``).  They run on the
legacy ESB's Django 1.8.19 on Python 2.7 (``.venv-django18``), the later ESB's
Django 1.11.29 on Python 3.6 (``.venv-django111``), both made by ``make test``
(scripts/django-venv.sh), into which the distribution is installed with a plain
``pip install``, and on current Django on this Python; esbgen is the one of this
test run, in its own environment.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO, snapshot
from conftest_services import WRITER, WRITER_PASSWORD
from esb_schemas import LATER_MODELS, LATER_MYSQL, LEGACY_MODELS, LEGACY_MYSQL

PLUGIN = REPO / "plugins" / "esbgen-django"
ESBGEN = Path(sys.executable).parent / "esbgen"
CLONE = ("esbgen", "clone", "sops", "--as", "bk_sops_ce")


@dataclass(frozen=True)
class OldDjango:
    """One ESB generation's Django in its own virtualenv, on that generation's Python."""

    version: str
    python_version: tuple[int, int]
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


OLD_DJANGOS = {
    "1.8": OldDjango("1.8.19", (2, 7), Path(os.environ.get("ESBGEN_DJANGO18_VENV") or REPO / ".venv-django18")),
    "1.11": OldDjango("1.11.29", (3, 6), Path(os.environ.get("ESBGEN_DJANGO111_VENV") or REPO / ".venv-django111")),
}
DJANGOS = ["1.8", "1.11", "current"]
SHAPE = {"1.8": "legacy", "1.11": "later", "current": "legacy"}  # the generation each Django ran

MANAGE = '''\
#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esb_settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
'''

SETTINGS = '''\
import json
import os

{base_dir}
SECRET_KEY = "esb-shaped test project"
DEBUG = False
USE_TZ = False
INSTALLED_APPS = ["bkcore", "esbgen_django"]
DATABASES = {{"default": json.loads(os.environ["ESB_TEST_DATABASE"])}}
if os.environ.get("ESB_TEST_SETTING_EXECUTABLE"):
    ESBGEN_EXECUTABLE = os.environ["ESB_TEST_SETTING_EXECUTABLE"]
'''

SYNC = '''\
import json
import os
import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Stands in for the ESB's sync_data_at_deploy: records which Python ran it, and where."

    def handle(self, *args, **options):
        with open(os.environ["ESB_TEST_SYNC_LOG"], "a") as log:
            log.write(json.dumps({"python": sys.executable, "cwd": os.getcwd()}) + "\\n")
        self.stdout.write("sync_data_at_deploy: done")
'''


def _run(*command, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, check=False, **kwargs)


def _freeze(python: Path) -> list[str]:
    done = _run(python, "-m", "pip", "freeze", "--all")
    assert done.returncode == 0, done.stderr
    return sorted(line for line in done.stdout.splitlines() if line.strip())


def _install(django: OldDjango, scratch: Path) -> dict[str, list[str]]:
    """esbgen-django pip-installed into the virtualenv of ``django``; the package lists around the install."""
    python = django.python
    made_by = f"`make test` makes it (scripts/django-venv.sh {django.venv.name} PYTHON {django.version})"
    if not python.is_file() or not (django.venv / ".esbgen-ready").is_file():
        pytest.fail(f"{python} is missing: {made_by}", pytrace=False)
    found = _run(python, "-c", "import sys, django; print('%d.%d %s' % (sys.version_info[:2] + (django.get_version(),)))")
    wanted = "%d.%d %s" % (*django.python_version, django.version)
    if found.stdout.strip() != wanted:
        pytest.fail(f"{python} runs {found.stdout.strip() or found.stderr.strip()!r}, not Python and Django {wanted}: "
                    f"{made_by}", pytrace=False)
    _run(python, "-m", "pip", "uninstall", "-q", "-y", "esbgen-django")
    before = _freeze(python)
    source = scratch / "esbgen-django"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    done = _run(python, "-m", "pip", "install", "-q", "--no-python-version-warning", str(source))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deprecat" not in (done.stdout + done.stderr).lower(), done.stderr
    return {"before": before, "after": _freeze(python)}


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """``installed(name)``: the interpreter that runs Django ``name`` ("1.8", "1.11" or "current") with
    esbgen-django importable, and the package lists around its install (None for current Django)."""
    done: dict[str, dict[str, list[str]]] = {}

    def get(name: str) -> tuple[Path, dict[str, list[str]] | None]:
        if name == "current":
            return Path(sys.executable), None
        if name not in done:
            done[name] = _install(OLD_DJANGOS[name], tmp_path_factory.mktemp(f"esbgen-django-{name}"))
        return OLD_DJANGOS[name].python, done[name]

    return get


@dataclass
class Project:
    root: Path
    python: Path
    env: dict[str, str]
    rows: object  # () -> [(name, label-or-description)]
    secret: str | None = None

    def manage(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        return _run(self.python, "manage.py", *args, cwd=self.root, env={**self.env, **extra})


def make_project(tmp_path: Path, shape: str, python: Path, database: dict, *, extra_env: dict | None = None) -> Project:
    """A scratch ESB root that is also its Django project; ``shape`` is "legacy" or "later"; ``python``
    runs Django (this one: current Django, with the plugin on the path)."""
    root = tmp_path / f"esb-{shape}"
    shutil.copytree(FIXTURES / "esb", root)
    if shape == "later":
        (root / "configs").rename(root / "conf")  # the later ESB's layout
    (root / "manage.py").write_text(MANAGE)
    # The legacy project names its BASE_DIR; the later one leaves esbgen to the folder of manage.py.
    base_dir = "BASE_DIR = os.path.dirname(os.path.abspath(__file__))" if shape == "legacy" else ""
    (root / "esb_settings.py").write_text(SETTINGS.format(base_dir=base_dir))
    app = root / "bkcore"
    (app / "management" / "commands").mkdir(parents=True)
    for init in (app, app / "management", app / "management" / "commands"):
        (init / "__init__.py").write_text("")
    (app / "models.py").write_text(LEGACY_MODELS if shape == "legacy" else LATER_MODELS)
    (app / "management" / "commands" / "sync_data_at_deploy.py").write_text(SYNC)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESBGEN_", "DJANGO_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(ESB_TEST_DATABASE=json.dumps(database), ESBGEN_EXECUTABLE=str(ESBGEN),
               ESB_TEST_SYNC_LOG=str(tmp_path / "sync.jsonl"), **(extra_env or {}))
    if python == Path(sys.executable):
        env["PYTHONPATH"] = str(PLUGIN)
    column = "label" if shape == "legacy" else "description"
    if database["ENGINE"].endswith("sqlite3"):
        # The ESB's own way: Django 1.8's migrate makes the tables of apps without migrations by itself
        syncdb = [] if python == OLD_DJANGOS["1.8"].python else ["--run-syncdb"]
        done = _run(python, "manage.py", "migrate", *syncdb, cwd=root, env=env)
        assert done.returncode == 0, done.stdout + done.stderr

        def rows():
            connection = sqlite3.connect(root / database["NAME"])
            try:
                return connection.execute(f"SELECT name, {column} FROM esb_component_system ORDER BY id").fetchall()
            finally:
                connection.close()
        return Project(root, python, env, rows)
    return Project(root, python, env, lambda: [], database.get("PASSWORD"))


SQLITE = {"ENGINE": "django.db.backends.sqlite3", "NAME": "esb.sqlite3"}  # relative, as settings often have it


@pytest.fixture
def mariadb_database(request):
    """A fresh MariaDB database per test, with the table of the given shape; the ESB's DATABASES entry for it."""
    server = request.getfixturevalue("mariadb_server")

    def make(shape: str) -> tuple[dict, object]:
        name = f"esb_{uuid.uuid4().hex[:8]}"
        server.sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4", database=None)
        server.sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{name}`.* TO '{WRITER}'@'%'", database=None)
        server.sql(LEGACY_MYSQL if shape == "legacy" else LATER_MYSQL, database=name)
        column = "label" if shape == "legacy" else "description"
        config = {"ENGINE": "django.db.backends.mysql", "NAME": name, "USER": WRITER, "PASSWORD": WRITER_PASSWORD,
                  "HOST": "127.0.0.1", "PORT": str(server.port), "OPTIONS": {"charset": "utf8mb4"}}
        return config, lambda: [tuple(r) for r in server.sql(f"SELECT name, {column} FROM esb_component_system "
                                                              "ORDER BY id", database=name)]

    return make


@pytest.mark.parametrize("django", ["1.8", "1.11"])
def test_pip_install_changes_no_other_package_of_the_esbs_virtualenv(installed, django):
    _, packages = installed(django)
    added = sorted(set(packages["after"]) - set(packages["before"]))
    assert [line.split("==")[0].split(" @ ")[0] for line in added] == ["esbgen-django"], added
    assert set(packages["before"]) <= set(packages["after"])
    assert f"Django=={OLD_DJANGOS[django].version}" in packages["after"]


def sqlite_project(installed, django: str, tmp_path: Path, shape: str | None = None) -> Project:
    return make_project(tmp_path, shape or SHAPE[django], installed(django)[0], SQLITE)


@pytest.mark.parametrize("django", DJANGOS)
def test_clone_writes_one_row_to_the_projects_database_and_undo_takes_it_away(installed, django, tmp_path):
    project = sqlite_project(installed, django, tmp_path)
    first = project.manage(*CLONE)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"ESB root: {project.root}" in first.stdout
    assert "Cloned sops as bk_sops_ce" in first.stdout
    assert f"insert row BK_SOPS_CE into esb_component_system (sqlite://{project.root / 'esb.sqlite3'}" in first.stdout
    assert (project.root / "components/confapis/bk_sops_ce/bk_sops_ce.yaml").is_file()
    assert project.rows() == [("BK_SOPS_CE", "BK_SOPS_CE")]

    second = project.manage(*CLONE)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Nothing to do: bk_sops_ce is already this clone of sops, and registered." in second.stdout
    assert project.rows() == [("BK_SOPS_CE", "BK_SOPS_CE")]

    undone = project.manage("esbgen", "undo")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert project.rows() == []
    assert not (project.root / "components/confapis/bk_sops_ce").exists()


def fake_esbgen(folder: Path, version: str = "0.2.0") -> Path:
    """A stand-in esbgen that reports ``version`` and records its argv and environment."""
    script = folder / "esbgen"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"if sys.argv[1:] == ['--version']:\n    print('esbgen, version {version}'); sys.exit(0)\n"
        "keys = ('ESBGEN_DATABASE_URL', 'ESBGEN_ESB_ROOT', 'ESBGEN_ESB_PYTHON')\n"
        "with open(os.path.join(os.path.dirname(sys.argv[0]), 'calls.jsonl'), 'a') as log:\n"
        "    log.write(json.dumps({'argv': sys.argv[1:], **{k: os.environ.get(k) for k in keys}}) + '\\n')\n"
        "print('fake esbgen ran'); sys.stderr.write('fake esbgen warns\\n'); sys.exit(3)\n"
    )
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("django", DJANGOS)
def test_output_and_exit_status_stream_through_and_are_the_clis(installed, django, tmp_path):
    project = sqlite_project(installed, django, tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = fake_esbgen(bin_dir)
    # Django's own global options are Django's: esbgen never sees them.
    done = project.manage("esbgen", "list", "--settings", "esb_settings", f"--pythonpath={project.root}",
                          ESBGEN_EXECUTABLE=str(fake))
    assert (done.returncode, done.stdout, done.stderr) == (3, "fake esbgen ran\n", "fake esbgen warns\n")
    call = json.loads((bin_dir / "calls.jsonl").read_text())
    assert call == {"argv": ["list"], "ESBGEN_DATABASE_URL": f"sqlite://{project.root / 'esb.sqlite3'}",
                    "ESBGEN_ESB_ROOT": str(project.root), "ESBGEN_ESB_PYTHON": str(project.python)}

    cli_env = {k: v for k, v in project.env.items() if not k.startswith("ESB")}
    for args, status in ((["--help"], 0), (["clone", "sops"], 2)):
        through = project.manage("esbgen", *args)
        cli = _run(ESBGEN, *args, cwd=project.root, env=cli_env)
        assert (through.returncode, through.stdout, through.stderr) == (status, cli.stdout, cli.stderr)
    assert "Missing option '--as'" in through.stderr
    helped = project.manage("help", "esbgen")
    assert helped.returncode == 0 and "Usage: esbgen [OPTIONS] COMMAND [ARGS]..." in helped.stdout

    before = snapshot(project.root)
    refused = project.manage("esbgen", "clone", "nope", "--as", "bk_nope")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("esbgen: error: unknown source system 'nope'") and refused.stderr.count("\n") == 1
    assert snapshot(project.root) == before


@pytest.mark.parametrize("django", DJANGOS)
def test_a_missing_or_too_old_esbgen_gets_one_line_saying_how_to_install_it(installed, django, tmp_path):
    project = sqlite_project(installed, django, tmp_path)
    before = snapshot(project.root)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    project.env = {k: v for k, v in project.env.items() if k != "ESBGEN_EXECUTABLE"}
    missing = project.manage("esbgen", "list", PATH=f"{empty}{os.pathsep}/usr/bin:/bin")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("manage.py esbgen: error: esbgen is not installed where this ESB looks for it")
    assert "install esbgen 0.2.0 or later" in missing.stderr and "pipx install /path/to/esbgen" in missing.stderr

    named = project.manage("esbgen", "list", ESBGEN_EXECUTABLE=str(tmp_path / "nowhere" / "esbgen"))
    assert named.returncode == 1 and named.stderr.count("\n") == 1
    assert "$ESBGEN_EXECUTABLE names" in named.stderr and "which is not an executable file" in named.stderr

    old_bin = tmp_path / "old"
    old_bin.mkdir()
    old = project.manage("esbgen", "list", ESBGEN_EXECUTABLE=str(fake_esbgen(old_bin, "0.1.0")))
    assert old.returncode == 1 and old.stderr.count("\n") == 1
    assert "is esbgen 0.1.0; manage.py esbgen needs 0.2.0 or later: upgrade it" in old.stderr
    assert not (old_bin / "calls.jsonl").exists()
    assert snapshot(project.root) == before


@pytest.mark.parametrize("shape", ["legacy", "later"])
def test_on_mariadb_the_password_goes_in_the_environment_only(installed, shape, tmp_path, mariadb_database):
    config, rows = mariadb_database(shape)
    project = make_project(tmp_path, shape, installed("1.11")[0], config)
    project.rows = rows
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    done = project.manage("esbgen", "list", ESBGEN_EXECUTABLE=str(fake_esbgen(bin_dir)))
    assert done.returncode == 3
    assert json.loads((bin_dir / "calls.jsonl").read_text())["ESBGEN_DATABASE_URL"] == (
        f"mysql://esbgen:s3cr%40t%3Apw%2F1@127.0.0.1:{config['PORT']}/{config['NAME']}?charset=utf8mb4")

    first = project.manage(*CLONE)
    assert first.returncode == 0, first.stdout + first.stderr
    assert project.rows() == [("BK_SOPS_CE", "BK_SOPS_CE")]
    second = project.manage(*CLONE)
    assert second.returncode == 0 and "Nothing to do" in second.stdout, second.stdout + second.stderr
    journal = next((project.root / ".esbgen/journal").glob("*/journal.json")).read_text()
    for text in (first.stdout, first.stderr, second.stdout, journal):
        assert project.secret not in text and "s3cr%40t" not in text
    assert '"has_password": true' in journal
    undone = project.manage("esbgen", "undo")  # the password comes from the ESB's settings again
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert project.rows() == []


def test_the_esb_root_is_base_dir_unless_the_environment_or_the_command_line_says(installed, tmp_path):
    project = sqlite_project(installed, "1.11", tmp_path, "legacy")  # the legacy project names its BASE_DIR
    other, third = tmp_path / "other-esb", tmp_path / "third-esb"
    for root in (other, third):
        shutil.copytree(FIXTURES / "esb", root)
    done = project.manage("esbgen", "clone", "itsm", "--as", "bk_itsm_ce", ESBGEN_ESB_ROOT=str(other))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ESB root: {other}" in done.stdout and (other / "components/confapis/bk_itsm_ce").is_dir()
    assert not (project.root / "components/confapis/bk_itsm_ce").exists()
    done = project.manage("esbgen", "register", "itsm", "--esb-root", str(third), "--dry-run",
                          ESBGEN_ESB_ROOT=str(other))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ESB root: {third}" in done.stdout
    assert f"insert row ITSM into esb_component_system (sqlite://{project.root / 'esb.sqlite3'})" in done.stdout


def test_sync_runs_with_the_esbs_interpreter_from_the_esb_root(installed, tmp_path):
    project = sqlite_project(installed, "1.11", tmp_path)
    python = project.python
    done = project.manage("esbgen", "register", "itsm", "--sync")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Running: sync the ESB's data: {python} manage.py sync_data_at_deploy" in done.stdout
    assert "Python: $ESBGEN_ESB_PYTHON, the interpreter running the ESB's manage.py" in done.stdout
    assert "sync_data_at_deploy: done" in done.stdout
    assert [json.loads(line) for line in (tmp_path / "sync.jsonl").read_text().splitlines()] == [
        {"python": str(python), "cwd": str(project.root)}
    ]
    assert project.rows() == [("ITSM", "ITSM")]


def test_esbgen_is_found_by_the_environment_then_the_settings_then_path(installed, tmp_path):
    project = sqlite_project(installed, "1.11", tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = fake_esbgen(bin_dir)
    env = {k: v for k, v in project.env.items() if k != "ESBGEN_EXECUTABLE"}
    project.env = env
    by_setting = project.manage("esbgen", "list", ESB_TEST_SETTING_EXECUTABLE=str(fake))
    assert by_setting.returncode == 3 and by_setting.stdout == "fake esbgen ran\n"
    by_path = project.manage("esbgen", "list", PATH=f"{bin_dir}{os.pathsep}{env['PATH']}")
    assert by_path.returncode == 3 and by_path.stdout == "fake esbgen ran\n"
    assert json.loads((bin_dir / "calls.jsonl").read_text().splitlines()[0])["ESBGEN_ESB_ROOT"] == str(project.root)
    # The later project has no BASE_DIR: the root is the folder of manage.py. The real esbgen wins over PATH:
    real = project.manage("esbgen", "list", ESBGEN_EXECUTABLE=str(ESBGEN), PATH=f"{bin_dir}{os.pathsep}{env['PATH']}")
    assert real.returncode == 0 and "sops" in real.stdout


CALL_COMMAND = """\
import json
import os
import sys

try:
    from StringIO import StringIO  # Python 2: Django 1.8 writes str
except ImportError:
    from io import StringIO

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esb_settings")
sys.path.insert(0, os.getcwd())
import django

django.setup()
from django.core.management import CommandError, call_command

out, err = StringIO(), StringIO()
try:
    call_command("esbgen", *sys.argv[1:], stdout=out, stderr=err)
    status = 0
except CommandError as error:
    status = getattr(error, "returncode", None)
print(json.dumps({"out": out.getvalue(), "err": err.getvalue(), "status": status}))
"""


def call_command(project: Project, *args: str, **extra: str) -> tuple[dict, subprocess.CompletedProcess]:
    """``call_command("esbgen", *args, stdout=buf, stderr=errbuf)`` in the project, on its Python."""
    script = project.root.parent / "call_command.py"
    script.write_text(CALL_COMMAND)
    done = _run(project.python, script, *args, cwd=project.root, env={**project.env, **extra})
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout), done


@pytest.mark.parametrize("django", ["1.8", "1.11"])
def test_call_command_captures_esbgens_output_and_keeps_its_status(installed, django, tmp_path):
    project = sqlite_project(installed, django, tmp_path, "legacy")
    captured, done = call_command(project, "clone", "sops", "--as", "bk_sops_ce")
    assert captured["status"] == 0, captured
    assert f"ESB root: {project.root}" in captured["out"] and "Cloned sops as bk_sops_ce" in captured["out"]
    assert done.stdout.count("\n") == 1 and done.stderr == ""  # nothing went past the buffers
    assert project.rows() == [("BK_SOPS_CE", "BK_SOPS_CE")]

    refused, done = call_command(project, "clone", "sops", "--as", "bk_sops_ce", "--app-code", "other-app")
    assert refused["status"] == 1 and refused["out"] == ""
    assert refused["err"].startswith("esbgen: error: ") and refused["err"].count("\n") == 1
    assert "already exists and differs; use --force" in refused["err"]
    assert done.stderr == ""
    usage, done = call_command(project, "check", "nope!")
    assert usage["status"] == 2 and usage["out"] == "" and usage["err"].startswith("esbgen: error: ")

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake, done = call_command(project, "list", ESBGEN_EXECUTABLE=str(fake_esbgen(bin_dir)))
    assert fake == {"out": "fake esbgen ran\n", "err": "fake esbgen warns\n", "status": 3}
    missing, done = call_command(project, "list", ESBGEN_EXECUTABLE=str(tmp_path / "nowhere" / "esbgen"))
    assert missing["status"] == 1 and missing["out"] == "" and missing["err"].count("\n") == 1
    assert missing["err"].startswith("manage.py esbgen: error: $ESBGEN_EXECUTABLE names") and done.stderr == ""


def test_the_source_is_valid_python_27_and_36():
    import parso

    sources = sorted(PLUGIN.rglob("*.py"))
    assert len(sources) >= 6
    for version in ("2.7", "3.6"):
        grammar = parso.load_grammar(version=version)
        for path in sources:
            errors = list(grammar.iter_errors(grammar.parse(path.read_text(encoding="utf-8"))))
            assert errors == [], f"{path} is not valid Python {version}: " + "; ".join(
                f"line {e.start_pos[0]}: {e.message}" for e in errors)
    # The checker itself refuses what 2.7 lacks.
    for bad in ('x = f"{1}"\n', "def f(*, a):\n    pass\n", "raise X from None\n", "a: int = 1\n"):
        assert list(parso.load_grammar(version="2.7").iter_errors(parso.parse(bad, version="2.7")))
