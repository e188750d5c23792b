"""The console script's own choices, before the command line is handed to click."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import snapshot
from esbgen.cli import cli
from esbgen.console import renders_a_clone

CLONE = ["clone", "sops", "--as", "bk_sops_ce"]


def console(*code: str, argv: list[str], before: tuple[str, ...] = (), check: bool = True) -> subprocess.CompletedProcess:
    """Run esbgen's console entry with ``argv`` in a fresh interpreter: ``before`` it, then ``code``."""
    program = "\n".join(["import sys", *before, f"sys.argv = ['esbgen', *{argv!r}]", "from esbgen.console import main",
                         "try:", "    main()", "except SystemExit as done:", "    assert not done.code, done.code", *code])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESBGEN_")}
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=check, env=env)


def clone_of(root: Path) -> dict[str, str]:
    return {path: digest for path, digest in snapshot(root).items() if "bk_sops_ce" in path or path.endswith("conf.py")}


# Lines run before the console script that take the forked helper away: no fork at all, or a
# helper_main replaced in the child alone (the parent then renders in its own process).
HELPER_TAKEN_AWAY = {
    "cannot-import-cookiecutter": ["import esbgen.render_helper as h", "real = h.helper_main",
                                   "def helper_main(parent):",
                                   "    sys.modules['cookiecutter'] = None  # an import of it fails",
                                   "    return real(parent)",
                                   "h.helper_main = helper_main"],
    "ends-at-once": ["import esbgen.render_helper as h",
                     "def helper_main(parent):",
                     "    raise RuntimeError('a helper that cannot run')",
                     "h.helper_main = helper_main"],
    "cannot-fork": ["import os", "def fork():", "    raise OSError(11, 'Resource temporarily unavailable')",
                    "os.fork = fork"],
}


@pytest.fixture
def reference(esb_root: Path, tmp_path: Path) -> dict[str, str]:
    """The clone of the sample ESB by esbgen's console script, helper and all."""
    root = tmp_path / "reference"
    shutil.copytree(esb_root, root, symlinks=True)
    console(argv=[*CLONE, "--esb-root", str(root)])
    return clone_of(root)


@pytest.mark.parametrize("how", sorted(HELPER_TAKEN_AWAY))
def test_where_the_forked_helper_cannot_work_the_clone_is_still_the_same(esb_root, reference, how):
    done = console(argv=[*CLONE, "--esb-root", str(esb_root)], before=tuple(HELPER_TAKEN_AWAY[how]), check=False)
    assert done.returncode == 0, done.stderr
    assert "Cloned sops as bk_sops_ce" in done.stdout
    assert clone_of(esb_root) == reference
    assert "Traceback" not in done.stderr


def test_the_console_scripts_clone_is_the_in_process_one(esb_root, reference, run_esbgen):
    assert run_esbgen(*CLONE, "--esb-root", esb_root).exit_code == 0
    assert clone_of(esb_root) == reference


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
