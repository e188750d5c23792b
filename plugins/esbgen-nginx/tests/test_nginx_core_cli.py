"""The plugin through esbgen's own command line, as an operator runs it: `python -m esbgen ...`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nginx_harness import HttpBackend, NginxTree, free_port

PORTS = {"paas": 8001, "appengine": 8000, "esb": 8002, "login": 8003, "agent_test": 4245, "agent_prod": 4246}


def esbgen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "esbgen", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def alive():
    server = HttpBackend("new")
    yield server
    server.stop()


@pytest.fixture
def tree(tmp_path):
    return NginxTree(tmp_path / "nginx", PORTS, listen=free_port())


def test_esbgen_plugins_shows_the_entry_point():
    done = esbgen("plugins")
    assert done.returncode == 0, done.stderr
    assert "nginx  (entry point of esbgen-nginx " in done.stdout
    assert "esbgen_register_commands, esbgen_step_kinds, esbgen_swap_targets" in done.stdout


def test_without_the_plugin_swap_says_where_it_comes_from_in_one_line(tree, nginx_bin, alive):
    before = tree.snapshot()
    done = subprocess.run([sys.executable, "-m", "esbgen", "swap", "web", "paas", "--to", alive.address,
                           *tree.options(nginx_bin)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "ESBGEN_DISABLE_PLUGINS": "nginx"})
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == ("esbgen: error: esbgen swap comes with the plugin esbgen-nginx, which is not loaded: install "
                           "it (pip install esbgen-nginx), or take nginx out of ESBGEN_DISABLE_PLUGINS\n")
    assert tree.snapshot() == before


def test_esbgen_help_lists_swap():
    done = esbgen("--help")
    assert done.returncode == 0 and "  swap " in done.stdout


def test_a_refusal_is_one_line_and_exit_1(tree, nginx_bin, alive):
    before = tree.snapshot()
    done = esbgen("swap", "web", "--upstream", "NOPE", "--to", alive.address, *tree.options(nginx_bin))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("esbgen: error: upstream NOPE is not defined in ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert tree.snapshot() == before


def test_a_malformed_to_is_exit_2(tree, nginx_bin):
    done = esbgen("swap", "paasagent", "test", "--to", "10.0.0.5", *tree.options(nginx_bin))
    assert done.returncode == 2
    assert "Invalid value for '--to'" in done.stderr


def test_dry_run_through_the_core(tree, nginx_bin, alive):
    before = tree.snapshot()
    done = esbgen("swap", "web", "esb", "--to", alive.address, "--dry-run", *tree.options(nginx_bin))
    assert done.returncode == 0, done.stderr
    assert f"+    server {alive.address} max_fails=1  fail_timeout=30s;" in done.stdout
    assert tree.snapshot() == before
