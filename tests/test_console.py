"""The console script's own choices, before the command line is handed to click."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from esbgen.cli import cli
from esbgen.console import renders_a_clone


def console(*code: str, argv: list[str]) -> subprocess.CompletedProcess:
    """Run esbgen's console entry with ``argv`` in a fresh interpreter, then ``code``."""
    program = "\n".join(["import sys", f"sys.argv = ['esbgen', *{argv!r}]", "from esbgen.console import main",
                         "try:", "    main()", "except SystemExit as done:", "    assert not done.code, done.code", *code])
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)


def test_version_alone_says_what_clicks_version_option_says_without_loading_click():
    done = console("print('click' in sys.modules)", argv=["--version"])
    clicks = CliRunner().invoke(cli, ["--version"])
    assert clicks.exit_code == 0
    assert done.stdout == clicks.output + "False\n"  # the same line, and click never imported


def test_version_among_other_words_is_clicks():
    done = subprocess.run([sys.executable, "-m", "esbgen", "--quiet", "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout == CliRunner().invoke(cli, ["--version"]).output


@pytest.mark.parametrize("arguments, clone", [
    (["clone", "sops", "--as", "x"], True),
    (["--quiet", "clone", "sops", "--as", "x"], True),
    (["clone", "--help"], False),
    (["-h", "clone"], False),
    (["check"], False),
    ([], False),
])
def test_only_a_clone_starts_its_helper_ahead(arguments, clone):
    assert renders_a_clone(arguments) is clone
