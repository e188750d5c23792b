"""The sample ESBs of `make demo`, one per generation, shaped as the real trees are."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, snapshot
from esbgen.esb.layout import generation


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    root = tmp_path / "legacy"
    shutil.copytree(FIXTURES / "esb-legacy", root, symlinks=True)
    return root


def test_the_sample_trees_are_one_of_each_generation():
    assert generation(FIXTURES / "esb-legacy") == "legacy" and not (FIXTURES / "esb-legacy/conf").exists()
    assert generation(FIXTURES / "esb-later") == "later" and not (FIXTURES / "esb-later/configs").exists()


def test_legacy_sops_reaches_its_app_through_the_platform_host(legacy, run_esbgen):
    """The seed's case: PAAS_HOST + /o/bk_sops/..., no BK_SOPS_URL anywhere."""
    assert b"BK_SOPS_URL" not in (legacy / "configs/default.py").read_bytes()
    shown = run_esbgen("verify", "sops", "--esb-root", legacy)
    assert shown.exit_code == 0, shown.output
    assert ("a call goes to GET http://paas.legacy.example:80/o/bk_sops/apigw/get_template_list/{bk_biz_id}/ "
            "(PAAS_HOST)") in shown.output


def test_the_demos_clone_goes_to_the_new_app_on_the_same_platform(legacy, run_esbgen):
    before = snapshot(legacy)
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", legacy).exit_code == 0
    shown = run_esbgen("verify", "bk_sops_ce", "--esb-root", legacy)
    assert shown.exit_code == 0, shown.output
    assert ("a call goes to POST http://paas.legacy.example:80/o/bk-sops-ce/apigw/create_task/{template_id}/{bk_biz_id}/ "
            "(PAAS_HOST)") in shown.output
    assert run_esbgen("check", "--esb-root", legacy).exit_code == 0
    assert run_esbgen("undo", "--esb-root", legacy).exit_code == 0
    assert snapshot(legacy) == before


def test_the_legacy_sample_does_not_sync_into_the_later_one(legacy, tmp_path, run_esbgen):
    later = tmp_path / "later"
    shutil.copytree(FIXTURES / "esb-later", later, symlinks=True)
    before = snapshot(later)
    refused = run_esbgen("sync-edition", "--from", legacy, "--esb-root", later, "--dry-run")
    assert refused.exit_code == 1 and "is a legacy ESB (Python 2, configs/default.py)" in refused.stderr
    assert snapshot(later) == before
