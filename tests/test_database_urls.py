"""Malformed database URLs, given with --database or $ESBGEN_DATABASE_URL.

Each is refused in one line that says what is wrong, never shows the password (nor a
part of it), and leaves the ESB root as it was: its files and esbgen's state folder.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import assert_one_line_refusal
from test_no_trace import entries

SECRET = "Zq7-secret"

# url -> what the one line says; every password holds SECRET
BAD_URLS = {
    f"postgres://esb:{SECRET}@127.0.0.1/open_paas": "unknown database URL scheme 'postgres://'",
    f"http://esb:{SECRET}@127.0.0.1/open_paas": "unknown database URL scheme 'http://'",
    f"mysql://esb:{SECRET}@/open_paas": "names no host",
    f"mysql://esb:{SECRET}@127.0.0.1/": "names no database",
    f"mysql://esb:{SECRET}@127.0.0.1": "names no database",
    f"mysql://esb:{SECRET}@127.0.0.1:99999/open_paas": "the port '99999' is not a number from 1 to 65535",
    f"mysql://esb:{SECRET}@127.0.0.1:3306x/open_paas": "the port '3306x' is not a number from 1 to 65535",
    f"mysql://esb:{SECRET}@127.0.0.1:0/open_paas": "the port 0 is not a number",
    f"mysql://esb:{SECRET}@[::1/open_paas": "Invalid IPv6 URL",
    "sqlite://relative.db": "'relative.db' stands where a host would",
    "sqlite://data/esb.db": "'data' stands where a host would",
    "sqlite:relative.db": "a scheme needs '://'",
    "sqlite:///": "bad SQLite URL",
    f"mysql://esb:{SECRET}%zz@127.0.0.1/open_paas": "the password has a '%' that starts no %XX escape",
    f"mysql://esb:{SECRET}%@127.0.0.1/open_paas": "the password has a '%' that starts no %XX escape",
    f"mysql://esb:{SECRET}%ff@127.0.0.1/open_paas": "the password decodes to bytes that are not UTF-8",
    f"mysql://esb:{SECRET}@127.0.0.1/open%paas": "the database name 'open%paas' has a '%'",
    f"mysql://esb:{SECRET}@127.0.0.1/open_paas%00": "the database name holds a control character",
    f"mysql://esb:{SECRET}/x@127.0.0.1/open_paas": "percent-encode '/', '?', '#' and '@'",
    f"mysql://esb:{SECRET}#x@127.0.0.1/open_paas": "percent-encode '/', '?', '#' and '@'",
    f"mysql://esb:{SECRET}?x@127.0.0.1/open_paas": "percent-encode '/', '?', '#' and '@'",
    f"mysql://esb:{SECRET}@127.0.0.1/open_paas?charset": "the options after '?' are not NAME=VALUE",
    f"mysql://esb:{SECRET}@127.0.0.1/open_paas?timeout=3": "unknown option 'timeout'",
}


def assert_refused_quietly(result, reason: str, before: dict, root) -> None:
    assert_one_line_refusal(result)
    assert reason in result.stderr, result.stderr
    shown = result.stderr + result.output
    for part in (SECRET, SECRET[:4], SECRET[-6:]):
        assert part not in shown, shown
    assert entries(root) == before


@pytest.mark.parametrize("url", list(BAD_URLS))
def test_a_malformed_database_url_is_one_line_and_never_shows_the_password(url, esb_root, run_esbgen, unblocked_db):
    before = entries(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root, "--database", url)
    assert_refused_quietly(result, BAD_URLS[url], before, esb_root)
    result = run_esbgen("register", "itsm", "--esb-root", esb_root, "--database", url)
    assert_refused_quietly(result, BAD_URLS[url], before, esb_root)


@pytest.mark.parametrize("url", [u for u in BAD_URLS if u.startswith("mysql")][:6])
def test_the_same_url_from_the_environment_is_refused_the_same_way(url, esb_root, run_esbgen, monkeypatch, unblocked_db):
    monkeypatch.setenv("ESBGEN_DATABASE_URL", url)
    before = entries(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert_refused_quietly(result, BAD_URLS[url], before, esb_root)


def test_a_password_with_at_signs_and_colons_is_read_whole_and_shown_masked():
    from esbgen.db.connection import parse_url, redact_url

    for url in (f"mysql://esb:{SECRET}@:x@127.0.0.1:3307/open_paas", f"mysql://esb:{SECRET}%40%3Ax@127.0.0.1:3307/open_paas"):
        parsed = parse_url(url)
        assert (parsed.user, parsed.password, parsed.host, parsed.port, parsed.name) == (
            "esb", f"{SECRET}@:x", "127.0.0.1", 3307, "open_paas")
        assert parsed.shown == "mysql://esb:***@127.0.0.1:3307/open_paas"
    # a password that ends the authority early is masked all the same in what is shown
    assert redact_url(f"mysql://esb:{SECRET}/x@127.0.0.1/db") == "mysql://esb:***@127.0.0.1/db"
    assert parse_url("mysql://esb:pw@/open_paas?unix_socket=/run/mysqld/mysqld.sock").host == "localhost"


def test_help_and_importing_esbgen_db_load_no_database_driver():
    code = (
        "import sys\n"
        "from esbgen.cli import run\n"
        "import esbgen.commands.clone, esbgen.db.connection, esbgen.db.registration, esbgen.services\n"
        "status = run(['--help']) + run(['clone', '--help']) + run(['register', '--help'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'pymysql', 'sqlite3', '_sqlite3'))\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(status)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
