"""The later ESB keeps its settings in conf/default.py: every note, merge and read uses the file the tree has.

A later-generation root is the sample ESB with ``configs/`` moved to ``conf/``
(that folder is the only difference of layout between the two generations).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, snapshot
from esbgen.esb.layout import LATER_SETTINGS, LEGACY_SETTINGS, generation, settings_file


def later_tree(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination, symlinks=True)
    (destination / "configs").rename(destination / "conf")
    return destination


@pytest.fixture
def later_root(tmp_path) -> Path:
    return later_tree(FIXTURES / "esb", tmp_path / "esb-later")


@pytest.fixture
def later_ce(tmp_path) -> Path:
    return later_tree(FIXTURES / "esb-ce", tmp_path / "esb-ce-later")


def test_the_layout_names_the_file_each_tree_has(later_root, esb_root, tmp_path):
    assert settings_file(later_root) == LATER_SETTINGS and generation(later_root) == "later"
    assert settings_file(esb_root) == LEGACY_SETTINGS and generation(esb_root) == "legacy"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert settings_file(empty) == LEGACY_SETTINGS


def test_new_says_where_to_define_the_host_setting(later_root, run_esbgen):
    done = run_esbgen("new", "bk_demo", "--app-code", "bk-demo", "--esb-root", later_root, "--dry-run")
    assert done.exit_code == 0, done.stderr
    assert "define BK_DEMO_URL in conf/default.py (the host of app bk-demo)" in done.output
    assert "configs/default.py" not in done.output


def test_retarget_reads_and_names_the_later_settings_file(later_root, run_esbgen):
    done = run_esbgen("retarget", "sops", "--app-code", "bk-sops-ce", "--esb-root", later_root, "--dry-run")
    assert done.exit_code == 0, done.stderr
    # the component strips /o/<app> and calls BK_SOPS_URL: the retarget gives it the new app's own setting
    assert "BK_SOPS_URL (= 'http://paas.service.consul:80')" in done.output
    assert "define BK_SOPS_CE_URL in conf/default.py" in done.output
    assert "configs/default.py" not in done.output


@pytest.mark.parametrize("target_kind, ce_kind", [("later", "later"), ("later", "legacy"), ("legacy", "later")])
def test_sync_edition_merges_into_the_targets_own_settings_file(target_kind, ce_kind, esb_root, ce_root, later_root,
                                                                later_ce, run_esbgen):
    target = later_root if target_kind == "later" else esb_root
    ce = later_ce if ce_kind == "later" else ce_root
    mine, theirs = settings_file(target), settings_file(ce)
    before = (target / mine).read_bytes()
    across = ["--across-generations"] if target_kind != ce_kind else []
    if across:  # the other generation's components are refused without the flag
        refused = run_esbgen("sync-edition", "--from", ce, "--esb-root", target, "--dry-run")
        assert refused.exit_code == 1 and "--across-generations" in refused.stderr

    dry = run_esbgen("sync-edition", "--from", ce, "--esb-root", target, "--dry-run", *across)
    assert dry.exit_code == 0, dry.stderr
    assert f"modify {mine}" in dry.output and "+BK_NODEMAN_URL = 'http://nodeman.service.consul:10300'" in dry.output
    assert f"{mine} BK_SOPS_URL: differs; the target's 'http://paas.service.consul:80' is kept" in dry.output
    assert f"{mine} DATABASES: differs; the target's is kept (database settings)" in dry.output
    if mine != theirs:
        assert f"the CE keeps its settings in {theirs}, this ESB in {mine}: merged into {mine}" in dry.output

    done = run_esbgen("sync-edition", "--from", ce, "--esb-root", target, *across)
    assert done.exit_code == 0, done.stderr
    assert f"{mine}: 1 added" in done.output
    after = (target / mine).read_bytes()
    assert after != before and b"BK_NODEMAN_URL = 'http://nodeman.service.consul:10300'" in after
    other = LEGACY_SETTINGS if mine == LATER_SETTINGS else LATER_SETTINGS
    assert not (target / other).exists()  # no second settings file appears


def test_a_target_without_settings_gets_the_ces_under_its_name(esb_root, later_ce, run_esbgen):
    shutil.rmtree(esb_root / "configs")
    done = run_esbgen("sync-edition", "--from", later_ce, "--esb-root", esb_root)
    assert done.exit_code == 0, done.stderr
    assert "the target has no conf/default.py: the CE's comes over whole" in done.output
    assert (esb_root / "conf/default.py").read_bytes() == (later_ce / "conf/default.py").read_bytes()


def test_check_and_list_work_on_a_later_tree(later_root, run_esbgen):
    before = snapshot(later_root)
    assert run_esbgen("check", "--esb-root", later_root).exit_code == 0
    assert "sops" in run_esbgen("list", "--esb-root", later_root).output
    assert snapshot(later_root) == before
