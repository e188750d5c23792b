"""The example plugin, installed as a distribution and found through its entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1]
REPO = PLUGIN.parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The distribution installed (not just imported) into a folder of its own."""
    target = tmp_path_factory.mktemp("itsm-site")
    # built from a copy, so that the build leaves nothing in the source tree
    source = tmp_path_factory.mktemp("itsm-source") / "esbgen-itsm"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True,
    )
    return target


def esbgen(site: Path, *args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("ESBGEN_DISABLE_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "esbgen", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd)


@pytest.fixture
def esb_root(tmp_path) -> Path:
    root = tmp_path / "esb"
    shutil.copytree(REPO / "fixtures" / "esb", root)
    return root


def test_discovered_through_its_entry_point(site):
    result = esbgen(site, "plugins")
    assert result.returncode == 0, result.stderr
    assert "itsm  (entry point of esbgen-itsm 0.1.0)" in result.stdout
    assert "esbgen_saas_types" in result.stdout.split("itsm  (entry point", 1)[1].split("\n")[1]


def test_used_by_clone(site, esb_root):
    result = esbgen(site, "clone", "itsm", "--as", "itsm_ce", "--esb-root", esb_root)
    assert result.returncode == 0, result.stderr
    assert "SaaS type itsm" in result.stdout
    assert "grant the new app access to the ITSM services" in result.stdout
    component = (esb_root / "components/bk/apisv2/itsm_ce/itsm_component.py").read_text()
    assert 're.sub(r"^/o/itsm-ce", "", path)' in component
    configs = (esb_root / "components/bk/apisv2/itsm_ce/toolkit/configs.py").read_text()
    assert '"BK_ITSM_CE_URL"' in configs and 'SYSTEM_NAME = "ITSM_CE"' in configs
    assert esbgen(site, "check", "itsm_ce", "--esb-root", esb_root).returncode == 0


def test_ships_a_template_for_new(site, esb_root):
    result = esbgen(site, "new", "my_itsm", "--type", "itsm", "--app-code", "my-itsm", "--esb-root", esb_root)
    assert result.returncode == 0, result.stderr
    yaml_text = (esb_root / "components/confapis/my_itsm/my_itsm.yaml").read_text()
    assert "dest_path: /o/my-itsm/openapi/service/get_services/" in yaml_text
    assert "BK-USERNAME" in (esb_root / "components/bk/apisv2/my_itsm/my_itsm_component.py").read_text()
    assert esbgen(site, "check", "my_itsm", "--esb-root", esb_root).returncode == 0


def test_without_the_distribution_the_generic_type_clones_itsm(esb_root):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-m", "esbgen", "clone", "itsm", "--as", "itsm_ce", "--dry-run",
                             "--esb-root", str(esb_root)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "itsm  (entry point" not in subprocess.run(
        [sys.executable, "-m", "esbgen", "plugins"], capture_output=True, text=True, env=env).stdout
