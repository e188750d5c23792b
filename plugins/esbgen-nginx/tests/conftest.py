"""Fixtures of the esbgen-nginx tests: the plugin manager as installed, the nginx binary.

The database fixtures (``esb_db`` on SQLite and on the session's real MariaDB,
``mariadb_server``) are the core's, from tests/conftest_services.py: a run of the
whole suite loads them through tests/conftest.py, a run of this folder alone here.
"""

from __future__ import annotations

import pytest

from nginx_harness import nginx_binary

SERVICES = "conftest_services"  # on sys.path through pyproject's pythonpath = ["tests"]


def pytest_configure(config) -> None:
    if not config.pluginmanager.has_plugin(SERVICES):
        config.pluginmanager.import_plugin(SERVICES)


@pytest.fixture(scope="module", autouse=True)
def esbgen_plugins_loaded():
    """Load esbgen's plugins as a user's `esbgen` would, from their entry points, this one included."""
    from esbgen import plugins

    plugins.reset_plugin_manager()
    pm = plugins.get_plugin_manager()
    if pm.get_plugin("nginx") is None:
        pytest.exit("esbgen-nginx is not installed: pip install -e plugins/esbgen-nginx", returncode=4)
    yield pm
    plugins.reset_plugin_manager()


@pytest.fixture(autouse=True)
def host_state_dir(tmp_path, monkeypatch):
    """Each test's own host state folder (where a swap's journal and lock live), never /var/lib/esbgen."""
    path = tmp_path / "esbgen-state"
    monkeypatch.setenv("ESBGEN_STATE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    found = nginx_binary()
    if found is None:
        pytest.fail("nginx is not installed: run `bash scripts/ensure-system-packages.sh` (nginx-extras)")
    return found

