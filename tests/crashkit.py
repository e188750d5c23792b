"""Helpers of the crash and lock tests: the real CLI in a subprocess, and a throwaway database plugin.

The plugin is a real distribution on PYTHONPATH (a module and its dist-info with
an ``esbgen`` entry point), so esbgen loads it the way it loads any plugin. It
provides an external step kind (``fakedb``) that inserts and deletes
a row in an SQLite file outside the tree, and adds that step to every clone.
Knobs (environment): FAKEDB_PATH (the database), FAKEDB_FAIL=apply (the row
is refused), FAKEDB_SLEEP=<s> (a slow row), FAKEDB_EVENTS=<file> (a log of
when each run planned and finished, for the lock tests).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from faultkit import with_faults

ESBGEN = str(Path(sys.executable).parent / "esbgen")
NEW = "bk_sops_ce"
CLONE = ("clone", "sops", "--as", NEW)

PLUGIN = '''
"""A throwaway esbgen plugin for tests: one database row per clone, as an external step."""
import os
import sqlite3
import time

from esbgen import hookimpl
from esbgen.plan import ExternalStep


def _event(what):
    log = os.environ.get("FAKEDB_EVENTS")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()} {what} {time.time():.6f}\\n")


def _db():
    con = sqlite3.connect(os.environ["FAKEDB_PATH"], timeout=30)
    con.execute("create table if not exists systems (name text primary key, label text)")
    return con


class FakeDb:
    kind = "fakedb"

    def apply(self, record, ctx):
        if os.environ.get("FAKEDB_SLEEP"):
            time.sleep(float(os.environ["FAKEDB_SLEEP"]))
        if os.environ.get("FAKEDB_FAIL") == "apply":
            raise RuntimeError("the fake database refused the row")
        con = _db()
        with con:
            con.execute("insert into systems (name, label) values (?, ?)", (record["name"], record["label"]))
        con.close()
        _event("applied")

    def revert(self, record, ctx):
        con = _db()
        with con:
            con.execute("delete from systems where name = ?", (record["name"],))
        con.close()

    def verify(self, record, ctx):
        con = _db()
        try:
            return con.execute("select label from systems where name = ?", (record["name"],)).fetchall() == [
                (record["label"],)]
        finally:
            con.close()


@hookimpl
def esbgen_step_kinds():
    return [FakeDb()]


@hookimpl
def esbgen_plan_steps(plan, command, options):
    _event("planning")
    if command == "clone" and plan.tree_adds:
        name = plan.tree_adds[0].path.name.upper()
        plan.external.append(ExternalStep("fakedb", f"insert row {name} into the fake database", {"name": name, "label": name}))
    return []
'''


def install_plugin(folder: Path) -> Path:
    """Write the plugin distribution into ``folder`` (to be put on PYTHONPATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fakedb_esbgen.py").write_text(PLUGIN, encoding="utf-8")
    info = folder / "fakedb_esbgen-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakedb-esbgen\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[esbgen]\nfakedb = fakedb_esbgen\n", encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")
    return folder


def environment(plugin: Path | None, db: Path | None, **extra: str) -> dict[str, str]:
    """The environment of a run with the plugin, and the tests' fault plugin for ESBGEN_CRASH_AT / ESBGEN_INTERRUPT_AT."""
    env = with_faults({k: v for k, v in os.environ.items() if not k.startswith(("ESBGEN_", "FAKEDB_"))})
    if plugin is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(plugin), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if db is not None:
        env["FAKEDB_PATH"] = str(db)
    env.update(extra)
    return env


def esbgen(root: Path, *args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """The real command line, in its own process."""
    return subprocess.run([ESBGEN, *args, "--esb-root", str(root)], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def rows(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    con = sqlite3.connect(db)
    try:
        return con.execute("select name, label from systems order by name").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()
