"""Progress on a terminal: the phases of a long clone, check and undo; nothing off a terminal or with --quiet."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES

PHASES = ("reading", "rendering", "checking", "applying")


def run_on(esb_root: Path, args: list[str], terminal: bool) -> tuple[int, str, str]:
    """esbgen in a subprocess, its stderr a terminal (a pty) or a pipe; progress shown from the start."""
    env = {**os.environ, "ESBGEN_PROGRESS_DELAY": "0", "ESBGEN_LOCK_TIMEOUT": "30"}
    argv = [sys.executable, "-m", "esbgen", *args, "--esb-root", str(esb_root)] if args[0] != "--quiet" else \
        [sys.executable, "-m", "esbgen", "--quiet", *args[1:], "--esb-root", str(esb_root)]
    if not terminal:
        done = subprocess.run(argv, capture_output=True, text=True, env=env)
        return done.returncode, done.stdout, done.stderr
    main, secondary = pty.openpty()
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=secondary, env=env)
        os.close(secondary)
        secondary = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the pty is closed when the process ends
                break
            if not chunk:
                break
            chunks.append(chunk)
        out = process.stdout.read().decode()
        process.stdout.close()
        code = process.wait()
    finally:
        os.close(main)
        if secondary != -1:
            os.close(secondary)
    return code, out, b"".join(chunks).decode(errors="replace")


def test_clone_shows_its_phases_on_a_terminal_and_erases_the_line(esb_root):
    code, out, err = run_on(esb_root, ["clone", "sops", "--as", "bk_sops_ce"], terminal=True)
    assert code == 0, err
    for name in PHASES:
        assert f"esbgen: {name}" in err
    assert err.endswith("\r\x1b[K")  # nothing of the line stays on the screen
    assert "esbgen:" not in out  # stdout is the plan and the outcome only


def test_no_progress_off_a_terminal(esb_root):
    code, out, err = run_on(esb_root, ["clone", "sops", "--as", "bk_sops_ce"], terminal=False)
    assert code == 0, err
    assert "\r" not in err and "\x1b" not in err


def test_no_progress_with_quiet(esb_root):
    code, out, err = run_on(esb_root, ["--quiet", "clone", "sops", "--as", "bk_sops_ce"], terminal=True)
    assert code == 0, err
    assert "esbgen: " not in err and "\x1b" not in err


def test_no_progress_with_quiet_after_the_command(esb_root):
    code, out, err = run_on(esb_root, ["clone", "sops", "--as", "bk_sops_ce", "-q"], terminal=True)
    assert code == 0, err
    assert "esbgen: " not in err and "\x1b" not in err


@pytest.mark.parametrize("quiet", [False, True])
def test_check_and_undo_show_progress_unless_quiet(esb_root, quiet):
    assert run_on(esb_root, ["clone", "sops", "--as", "bk_sops_ce"], terminal=False)[0] == 0
    lead = ["--quiet"] if quiet else []
    code, out, err = run_on(esb_root, [*lead, "check"] if quiet else ["check"], terminal=True)
    assert code in (0, 1), err
    assert ("esbgen: checking" in err) is not quiet
    code, out, err = run_on(esb_root, [*lead, "undo"] if quiet else ["undo"], terminal=True)
    assert code == 0, err
    assert ("esbgen: applying" in err) is not quiet
    assert ("esbgen: checking" in err) is not quiet


def test_progress_is_not_shown_before_the_delay(monkeypatch):
    from esbgen import progress

    class Terminal:
        text = ""

        def isatty(self):
            return True

        def write(self, text):
            self.text += text

        def flush(self):
            pass

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("ESBGEN_PROGRESS_DELAY", "3600")
    progress.end()
    progress.phase("reading", 10)
    for _ in range(10):
        progress.tick()
    progress.end()
    assert terminal.text == ""
    monkeypatch.setenv("ESBGEN_PROGRESS_DELAY", "0")
    monkeypatch.setattr(progress, "INTERVAL", 0.0)  # every tick redraws
    progress.phase("rendering", 4)
    progress.tick(2)
    progress.end()
    assert "esbgen: rendering [############............] 2/4" in terminal.text
    assert terminal.text.endswith("\r\x1b[K")


def test_every_long_command_shows_its_phase_and_count(esb_root, tmp_path):
    """retarget, sync-edition, export-apigw, verify, list and templatize each show what they are at."""
    runs = [
        (["retarget", "sops", "--app-code", "bk-sops-ce", "--dry-run"], "reading"),
        (["sync-edition", "--from", str(FIXTURES / "esb-ce"), "--dry-run"], "reading"),
        (["export-apigw", "sops", "-o", str(tmp_path / "gw"), "--via-esb", "http://paas.example.com"], "exporting"),
        (["verify", "sops"], "reading"),
        (["list"], "reading"),
        (["templatize", "sops", "-o", str(tmp_path / "template")], "reading"),
    ]
    for args, shown in runs:
        code, out, err = run_on(esb_root, args, terminal=True)
        assert code in (0, 1), (args, err)
        assert f"esbgen: {shown}" in err, (args, err)
        assert err.endswith("\r\x1b[K"), args
    assert "esbgen: writing" in run_on(esb_root, ["export-apigw", "sops", "-o", str(tmp_path / "gw2"), "--via-esb",
                                                  "http://paas.example.com"], terminal=True)[2]
