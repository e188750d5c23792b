"""Secrets of the settings file never leave the machine, and what esbgen stores is private.

Every writing command runs on a tree whose settings hold known secrets; every line it
prints (text and --json), every plan file (its base64 decoded too) and every file under
``.esbgen/`` is searched for them, and none is found.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from conftest import FIXTURES, snapshot
from esbgen import redact
from esbgen.esb.layout import SETTINGS_FILES

SECRET_KEY = "S3cretKey-0f1e2d3c"
ESB_TOKEN = "Tok3n-9d8e7f6a5b"
DB_PASSWORD = "DbPassw0rd-Xyz"
BROKER_PASSWORD = "BrokerPassw0rd-77"
CE_DB_PASSWORD = "CommunityEditionPass"  # fixtures/esb-ce's own
SECRETS = (SECRET_KEY, ESB_TOKEN, DB_PASSWORD, BROKER_PASSWORD, CE_DB_PASSWORD)
SETTINGS = Path("configs/default.py")


def with_secrets(root: Path) -> Path:
    """fixtures/esb with secrets right above BK_SOPS_URL, where a retarget's diff shows its context lines."""
    settings = root / SETTINGS
    text = settings.read_text(encoding="utf-8").replace("'OpenSourcePass'", repr(DB_PASSWORD))
    secrets = (f"SECRET_KEY = '{SECRET_KEY}'\nESB_TOKEN = \"{ESB_TOKEN}\"\n"
               f"BROKER_URL = 'amqp://esb:{BROKER_PASSWORD}@mq.local:5672/esb'\n")
    text = text.replace("BK_SOPS_URL = ", secrets + "BK_SOPS_URL = ", 1)
    settings.write_text(text, encoding="utf-8")
    os.chmod(settings, 0o640)
    return root


@pytest.fixture
def secret_root(tmp_path) -> Path:
    root = tmp_path / "esb"
    shutil.copytree(FIXTURES / "esb", root, symlinks=True)
    return with_secrets(root)


def found_secrets(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def stored_text(path: Path) -> str:
    """A stored file as text, with every base64 string in it (a plan file's payload) decoded as well."""
    data = path.read_bytes()
    text = data.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    decoded = []

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("base64", "before", "after") and isinstance(item, str):
                    try:
                        decoded.append(base64.b64decode(item, validate=True).decode("utf-8", "replace"))
                    except ValueError:
                        pass
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(parsed)
    return "\n".join([text, *decoded])


def stored_files(*places: Path) -> list[Path]:
    files = []
    for place in places:
        if place.is_file():
            files.append(place)
        for dirpath, _, filenames in os.walk(place):
            files.extend(Path(dirpath, name) for name in filenames)
    return files


def test_every_writing_command_shows_and_stores_no_secret(secret_root, tmp_path, run_esbgen):
    root = secret_root
    ce = tmp_path / "esb-ce"
    shutil.copytree(FIXTURES / "esb-ce", ce, symlinks=True)
    hosts = {name: with_secrets(Path(shutil.copytree(FIXTURES / "esb", tmp_path / name, symlinks=True)))
             for name in ("host-clone", "host-retarget")}
    plans = {"clone": tmp_path / "clone.plan.json", "retarget": tmp_path / "retarget.plan.json"}
    retarget = ("retarget", "sops", "--app-code", "bk-sops-ce", "--app-url", "http://sops-ce.local:8080")
    clone = ("clone", "sops", "--as", "bk_sops_ce")
    runs = [
        (*retarget, "--dry-run"), (*retarget, "--dry-run", "--json"), (*retarget, "--plan-out", plans["retarget"]),
        (*clone, "--dry-run", "--json"), (*clone, "--plan-out", plans["clone"]),
        ("sync-edition", "--from", ce, "--dry-run"),
        ("apply-plan", plans["retarget"], "--esb-root", hosts["host-retarget"], "--json"),
        ("apply-plan", plans["clone"], "--esb-root", hosts["host-clone"], "--dry-run"),
        ("apply-plan", plans["clone"], "--esb-root", hosts["host-clone"]),
        ("undo", "--esb-root", hosts["host-retarget"], "--json"),
        (*retarget, "--json"),
        ("sync-edition", "--from", ce, "--take", "DEBUG"),
        ("undo", "--dry-run"), ("undo", "--list", "--json"), ("undo",),
        ("retarget", "sops", "--to-source", "--json"),
        (*clone,), ("undo", "--json"),
        ("retarget", "sops", "--app-code", "bk-sops-ce", "--app-url", f"http://u:{BROKER_PASSWORD}@h.local:80", "--dry-run"),
    ]
    outputs = []
    for args in runs:
        args = tuple(args) if "--esb-root" in args else (*args, "--esb-root", root)
        result = run_esbgen(*args)
        # a URL with a password is refused as a usage error (exit 2): what it shows is still held to no secret
        assert result.exit_code in ((2,) if "--app-url" in args and BROKER_PASSWORD in str(args) else (0, 1)), \
            (args, result.stderr)
        outputs.append(result.output + result.stderr)
        assert not found_secrets(result.output + result.stderr), (args, found_secrets(result.output + result.stderr))
    assert any("'********'" in output for output in outputs)  # the masked context lines are there
    assert all(path.exists() for path in plans.values())

    for path in stored_files(*plans.values(), *(place / ".esbgen" for place in (root, *hosts.values()))):
        assert not found_secrets(stored_text(path)), path
    for path in plans.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SECRET_KEY in (root / SETTINGS).read_text()  # the tree's own settings keep their secrets


def test_a_secret_in_a_url_a_mapping_or_a_name_is_masked_on_any_line():
    redact.forget()
    assert redact.mask("BK_APP_SECRET = 'abc'") == "BK_APP_SECRET = '********'"
    assert redact.mask("    'PASSWORD': \"p\",") == "    'PASSWORD': \"********\","
    assert redact.mask("x = 'mysql://root:hunter2@db:3306/esb'") == "x = 'mysql://root:********@db:3306/esb'"
    assert redact.mask("BK_SOPS_URL = 'http://sops:80'") == "BK_SOPS_URL = 'http://sops:80'"


def test_secret_values_are_read_from_legacy_and_later_settings_alike():
    legacy = (b"# -*- coding: utf-8 -*-\nprint 'python 2 statement'\nSECRET_KEY = 'legacy-secret-1'\n"
              b"DATABASES = {'default': {'PASSWORD': 'legacy-db-pass', 'USER': 'root'}}\n"
              b"BROKER_URL = 'redis://:redis-pass-9@127.0.0.1:6379/0'\nDEBUG = False\n")
    assert redact.secret_values(legacy) == {"legacy-secret-1", "legacy-db-pass", "redis-pass-9"}
    later = (b'BK_APP_SECRET = env.str("BK_APP_SECRET")\nSECRET_KEY = env.str("SECRET_KEY", "later-default-key")\n'
             b'DATABASES = {"default": dict(PASSWORD="later-db-pass", HOST="db")}\n')
    assert redact.secret_values(later) == {"later-default-key", "later-db-pass"}  # env names are not secrets


def test_state_is_private_and_undo_restores_mode_and_owner(secret_root, run_esbgen):
    settings = secret_root / SETTINGS
    if os.getuid() == 0:
        os.chown(settings, 4321, 4322)
    owner = (settings.stat().st_uid, settings.stat().st_gid)
    before = snapshot(secret_root)
    done = run_esbgen("retarget", "sops", "--app-code", "bk-sops-ce", "--app-url", "http://sops-ce.local:8080",
                      "--esb-root", secret_root)
    assert done.exit_code == 0, done.stderr
    state = secret_root / ".esbgen"
    for dirpath, dirnames, filenames in os.walk(state):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700, dirpath
        for name in filenames:
            assert stat.S_IMODE(os.stat(Path(dirpath, name)).st_mode) == 0o600, Path(dirpath, name)
    (journal,) = (state / "journal").iterdir()
    op = next(op for op in json.loads((journal / "journal.json").read_text())["ops"] if op["path"] == str(SETTINGS))
    assert op["backup"] is None and op["edits"]  # the settings file is journaled as its edits, never whole
    undone = run_esbgen("undo", "--esb-root", secret_root)
    assert undone.exit_code == 0, undone.stderr
    assert snapshot(secret_root) == before
    assert stat.S_IMODE(settings.stat().st_mode) == 0o640
    assert (settings.stat().st_uid, settings.stat().st_gid) == owner


def test_an_applied_plan_and_its_undo_keep_the_host_file_its_own_mode(secret_root, tmp_path, run_esbgen):
    host = with_secrets(Path(shutil.copytree(FIXTURES / "esb", tmp_path / "host", symlinks=True)))
    os.chmod(secret_root / SETTINGS, 0o644)  # the planning host's mode: the host's own file keeps its own
    plan = tmp_path / "p.json"
    args = ("retarget", "sops", "--app-code", "bk-sops-ce", "--app-url", "http://sops-ce.local:8080")
    assert run_esbgen(*args, "--esb-root", secret_root, "--plan-out", plan).exit_code == 0
    assert run_esbgen("apply-plan", plan, "--esb-root", host).exit_code == 0
    assert stat.S_IMODE((host / SETTINGS).stat().st_mode) == 0o640
    assert run_esbgen("undo", "--esb-root", host).exit_code == 0
    assert stat.S_IMODE((host / SETTINGS).stat().st_mode) == 0o640


def test_a_restored_backup_gets_its_earlier_mode_back(secret_root, run_esbgen):
    tools = secret_root / "components/bk/apisv2/sops/toolkit/tools.py"
    os.chmod(tools, 0o604)
    done = run_esbgen("retarget", "sops", "--app-code", "bk-sops-ce", "--esb-root", secret_root)
    assert done.exit_code == 0, done.stderr
    assert run_esbgen("undo", "--esb-root", secret_root).exit_code == 0
    assert stat.S_IMODE(tools.stat().st_mode) == 0o604


def test_a_plan_that_would_carry_a_secret_is_refused(secret_root, tmp_path, run_esbgen):
    ce = tmp_path / "esb-ce"
    shutil.copytree(FIXTURES / "esb-ce", ce, symlinks=True)
    (secret_root / SETTINGS).unlink()  # the CE's settings would come over whole, secrets and all
    before = snapshot(secret_root)
    plan = tmp_path / "p.json"
    from esbgen.planfile import write_plan
    from esbgen.plan import FileWrite, Plan

    redact.forget()
    for settings in SETTINGS_FILES:
        redact.learn_file(ce / settings)
    whole = Plan(secret_root, "settings from the CE")
    whole.file_writes.append(FileWrite(SETTINGS, None, (ce / SETTINGS).read_bytes()))
    with pytest.raises(Exception, match="the plan writes a secret into configs/default.py"):
        write_plan(whole, plan, [])
    assert not plan.exists() and snapshot(secret_root) == before
