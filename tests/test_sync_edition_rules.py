"""``esbgen sync-edition`` keeps what is the target's own: secrets, code, files esbgen changed, --skip, --from."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import FIXTURES, assert_one_line_refusal, edit_once, snapshot
from routing_kit import LATER, LEGACY, call, copy_fixture

CONFIGS = "configs/default.py"
LATER_SETTINGS = "conf/default.py"
SOPS_YAML = "components/confapis/sops/sops.yaml"
SOPS_PROD = "components/confapis/sops/prod/sops.yaml"
SOPS_COMPONENT = "components/bk/apisv2/sops/sops_component.py"
SOPS_CONFIGS = "components/bk/apisv2/sops/toolkit/configs.py"
SOPS_TOOLS = "components/bk/apisv2/sops/toolkit/tools.py"
NODEMAN_COMPONENT = "components/bk/apisv2/nodeman/nodeman_component.py"
CE_SECRETS = (
    b"\nESB_TOKEN = 'ce-esb-token-0001'\n"
    b"ENCRYPT_KEY = 'Y2UtZW5jcnlwdC1rZXktMDAwMDAwMDAwMDAwMDAwMDA='\n"
    b"BK_APP_SECRET = 'ce-app-secret-0001'\n"
    b"REDIS_PASSWORD = 'ce-redis-pass'\n"
    b"CACHES = {'default': {'BACKEND': 'redis', 'PASSWORD': 'ce-cache-pass'}}\n"
)
CE_SECRET_VALUES = ("ce-secret-key", "ce-esb-token-0001", "Y2UtZW5jcnlwdC1rZXkt", "ce-app-secret-0001", "ce-redis-pass",
                    "ce-cache-pass")


def _sync(run_esbgen, target: Path, ce: Path, *extra: str):
    return run_esbgen("sync-edition", "--from", ce, "--esb-root", target, *extra)


# --- secrets --------------------------------------------------------------------------------------


def test_secrets_of_the_ce_are_never_taken_without_take(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    ce_cfg = ce_root / CONFIGS
    edit_once(ce_cfg, b"SECRET_KEY = 'esbgen-fixture-not-a-real-secret'", b"SECRET_KEY = 'ce-secret-key'")
    ce_cfg.write_bytes(ce_cfg.read_bytes() + CE_SECRETS)
    original = (esb_root / CONFIGS).read_bytes()

    dry = _sync(run_esbgen, esb_root, ce_root, "--dry-run")

    assert dry.exit_code == 0, dry.stderr
    out = dry.output
    assert f"{CONFIGS} SECRET_KEY: differs; the target's is kept (secret: SECRET in its name); --take SECRET_KEY takes the CE's" in out
    for name, why in (("ESB_TOKEN", "TOKEN in its name"), ("ENCRYPT_KEY", "KEY in its name"),
                      ("BK_APP_SECRET", "SECRET in its name"), ("REDIS_PASSWORD", "PASSWORD in its name"),
                      ("CACHES", "it holds 'PASSWORD'")):
        assert f"{CONFIGS} {name}: only in the CE; not added (secret: {why}): define this ESB's own, or --take {name}" in out
    for value in CE_SECRET_VALUES:
        assert value not in out, value  # neither in a diff nor in a note

    result = _sync(run_esbgen, esb_root, ce_root)
    assert result.exit_code == 0, result.stderr
    # Only the CE's plain settings came over: the nodeman host, as without the secrets.
    itsm = b"BK_ITSM_URL = 'http://paas.service.consul:80'\n"
    assert (esb_root / CONFIGS).read_bytes() == original.replace(
        itsm, itsm + b"\n# Node manager (CE only)\nBK_NODEMAN_URL = 'http://nodeman.service.consul:10300'\n"
    )
    assert "6 secret(s) kept" in result.output

    # --take NAME takes exactly the secrets named.
    taken = _sync(run_esbgen, esb_root, ce_root, "--take", "SECRET_KEY", "--take", "ESB_TOKEN")
    assert taken.exit_code == 0, taken.stderr
    data = (esb_root / CONFIGS).read_bytes()
    assert b"SECRET_KEY = 'ce-secret-key'" in data and b"ESB_TOKEN = 'ce-esb-token-0001'" in data
    assert b"ENCRYPT_KEY" not in data and b"REDIS_PASSWORD" not in data and b"CACHES" not in data


def test_secrets_are_kept_in_the_later_settings_file(tmp_path: Path, run_esbgen) -> None:
    target = copy_fixture(tmp_path, LATER)
    ce = copy_fixture(tmp_path, LATER, "ce")
    edit_once(ce / LATER_SETTINGS, b'ESB_TOKEN = env.str("ESB_TOKEN")', b'ESB_TOKEN = "ce-esb-token-0001"')
    edit_once(ce / LATER_SETTINGS, b'ENCRYPT_KEY = env.str("ENCRYPT_KEY")', b'ENCRYPT_KEY = env.str("CE_ENCRYPT_KEY")')
    edit_once(ce / LATER_SETTINGS, b'SECRET_KEY = env.str("SECRET_KEY", BK_APP_SECRET)', b'SECRET_KEY = "ce-secret-key"')
    original = (target / LATER_SETTINGS).read_bytes()

    result = _sync(run_esbgen, target, ce)

    assert result.exit_code == 0, result.stderr
    assert "Nothing to do" in result.output and (target / LATER_SETTINGS).read_bytes() == original
    for name, why in (("ESB_TOKEN", "TOKEN"), ("ENCRYPT_KEY", "KEY"), ("SECRET_KEY", "SECRET")):
        assert f"{LATER_SETTINGS} {name}: differs; the target's is kept (secret: {why} in its name)" in result.output
    assert "configs/default.py" not in result.output
    for value in ("ce-esb-token-0001", "ce-secret-key"):
        assert value not in result.output


# --- values that are code ---------------------------------------------------------------------------


def test_values_that_are_code_need_review(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    ce_cfg = ce_root / CONFIGS
    edit_once(ce_cfg, b"DEFAULT_TIMEOUT = 30", b"DEFAULT_TIMEOUT = int(__import__('os').environ.get('ESB_TIMEOUT', '60'))")
    edit_once(ce_cfg, b"LOG_LEVEL = 'INFO'", b"LOG_LEVEL = 'WARNING'\n\nLOG_DIR = __import__('os').path.join('/data', 'logs')")
    original = (esb_root / CONFIGS).read_bytes()

    result = _sync(run_esbgen, esb_root, ce_root, "--dry-run")

    assert result.exit_code == 0, result.stderr
    out = result.output
    assert (
        f"{CONFIGS} DEFAULT_TIMEOUT: needs review: differs, and the CE's value is code, not a plain literal "
        "(int(__import__('os').environ.get('ESB_TIMEOUT', '60'))); the target's is kept"
    ) in out
    assert (
        f"{CONFIGS} LOG_DIR: needs review: only in the CE, and its value is code, not a plain literal "
        "(__import__('os').path.join('/data', 'logs')); not added; --take LOG_DIR adds it"
    ) in out
    assert f"{CONFIGS} LOG_LEVEL: differs; the CE's value comes over" in out  # a plain literal: as before

    applied = _sync(run_esbgen, esb_root, ce_root)
    assert applied.exit_code == 0 and "2 need review" in applied.output
    after = (esb_root / CONFIGS).read_bytes()
    assert b"__import__" not in after and b"DEFAULT_TIMEOUT = 30" in after and b"LOG_LEVEL = 'WARNING'" in after

    taken = _sync(run_esbgen, esb_root, ce_root, "--take", "LOG_DIR", "--take", "DEFAULT_TIMEOUT")
    assert taken.exit_code == 0, taken.stderr
    after = (esb_root / CONFIGS).read_bytes()
    assert b"LOG_LEVEL = 'WARNING'\n\nLOG_DIR = __import__('os').path.join('/data', 'logs')\n" in after
    assert b"DEFAULT_TIMEOUT = int(__import__('os').environ.get('ESB_TIMEOUT', '60'))" in after
    assert after != original


def test_code_on_the_targets_side_is_not_replaced_by_a_literal(tmp_path: Path, run_esbgen) -> None:
    target = copy_fixture(tmp_path, LATER)
    ce = copy_fixture(tmp_path, LATER, "ce")
    edit_once(ce / LATER_SETTINGS, b'DEBUG = env.bool("DEBUG", False)', b"DEBUG = True")
    edit_once(ce / LATER_SETTINGS, b"DEFAULT_TIMEOUT = 30\n", b'DEFAULT_TIMEOUT = 30\n\nBK_NODEMAN_URL = env.str("BK_NODEMAN_URL", "")\n\nPAGE_SIZE = 20\n')
    original = (target / LATER_SETTINGS).read_bytes()

    result = _sync(run_esbgen, target, ce)

    assert result.exit_code == 0, result.stderr
    out = result.output
    assert f"{LATER_SETTINGS} DEBUG: needs review: differs, and the target's value is code" in out
    assert f"{LATER_SETTINGS} BK_NODEMAN_URL: needs review: only in the CE" in out
    assert f"{LATER_SETTINGS} PAGE_SIZE: only in the CE; added after DEFAULT_TIMEOUT" in out
    assert (target / LATER_SETTINGS).read_bytes() == original + b"\nPAGE_SIZE = 20\n"


# --- files esbgen changed in this tree ---------------------------------------------------------------


def test_files_a_retarget_changed_are_kept_and_listed(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    assert run_esbgen("retarget", "sops", "--app-code", "bk-sops-ce", "--esb-root", esb_root).exit_code == 0
    retargeted = {rel: (esb_root / rel).read_bytes() for rel in (SOPS_YAML, SOPS_PROD, SOPS_COMPONENT, SOPS_CONFIGS, SOPS_TOOLS)}

    result = _sync(run_esbgen, esb_root, ce_root)

    assert result.exit_code == 0, result.stderr
    for rel, data in retargeted.items():
        assert (esb_root / rel).read_bytes() == data, rel  # the CE's sops files did not come back over them
        assert (
            f"{rel} differs from the CE's and esbgen changed it here (change 00001-"
        ) in result.output and f"retarget sops from app bk_sops to bk-sops-ce): the target's is kept; --take-file {rel}" in result.output
    assert "5 file(s) esbgen changed here kept" in result.output
    # The call still reaches the retargeted app; everything else of the CE came over.
    assert call(esb_root, "sops", "get_template_list").host_setting == "BK_SOPS_CE_URL"
    assert (esb_root / NODEMAN_COMPONENT).is_file()
    again = _sync(run_esbgen, esb_root, ce_root)
    assert again.exit_code == 0 and "Nothing to do" in again.output

    # --take-file takes the CE's file anyway, that one only.
    taken = _sync(run_esbgen, esb_root, ce_root, "--take-file", SOPS_YAML)
    assert taken.exit_code == 0, taken.stderr
    assert (esb_root / SOPS_YAML).read_bytes() == (ce_root / SOPS_YAML).read_bytes()
    assert (esb_root / SOPS_PROD).read_bytes() == retargeted[SOPS_PROD]


def test_files_of_a_clone_and_of_an_earlier_sync_are_kept(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    assert _sync(run_esbgen, esb_root, ce_root).exit_code == 0  # brings nodeman
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root).exit_code == 0
    clone_configs = "components/bk/apisv2/bk_sops_ce/toolkit/configs.py"
    mine = {rel: (esb_root / rel).read_bytes() for rel in (NODEMAN_COMPONENT, clone_configs)}
    # The CE moves on: a newer nodeman, and a folder of the same name as the clone.
    (ce_root / NODEMAN_COMPONENT).write_bytes(mine[NODEMAN_COMPONENT] + b"# CE update\n")
    shutil.copytree(esb_root / "components/bk/apisv2/bk_sops_ce", ce_root / "components/bk/apisv2/bk_sops_ce")
    (ce_root / clone_configs).write_bytes(b'SYSTEM_NAME = "BK_SOPS_CE"\n')
    ce_only = ce_root / "components/bk/apisv2/nodeman/toolkit/extra.py"
    ce_only.write_bytes(b"EXTRA = 1\n")

    result = _sync(run_esbgen, esb_root, ce_root)

    assert result.exit_code == 0, result.stderr
    for rel, data in mine.items():
        assert (esb_root / rel).read_bytes() == data, rel
    assert f"{NODEMAN_COMPONENT} differs from the CE's and esbgen changed it here (change 00001-" in result.output
    assert "sync-edition from" in result.output
    assert f"{clone_configs} differs from the CE's and esbgen changed it here (change 00002-" in result.output
    assert "clone sops as bk_sops_ce" in result.output
    # A file the target lacks is no overwrite: it comes over.
    assert (esb_root / "components/bk/apisv2/nodeman/toolkit/extra.py").read_bytes() == b"EXTRA = 1\n"


def test_an_undone_change_no_longer_protects_its_files(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    assert run_esbgen("retarget", "sops", "--app-code", "bk-sops-ce", "--esb-root", esb_root).exit_code == 0
    assert run_esbgen("undo", "--esb-root", esb_root).exit_code == 0
    edit_once(ce_root / SOPS_YAML, b"label_en: Query templates list   \n", b"label_en: Query the templates\n")

    result = _sync(run_esbgen, esb_root, ce_root)

    assert result.exit_code == 0, result.stderr
    assert (esb_root / SOPS_YAML).read_bytes() == (ce_root / SOPS_YAML).read_bytes()
    assert "esbgen changed it here" not in result.output


# --- --skip --------------------------------------------------------------------------------------------


def test_skip_leaves_files_folders_and_the_settings_out(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    original = {rel: (esb_root / rel).read_bytes() for rel in ("lib/gse/client.py", CONFIGS)}

    result = _sync(run_esbgen, esb_root, ce_root, "--skip", "components/confapis/nodeman/", "--skip", "lib/gse/client.py",
                   "--skip", CONFIGS)

    assert result.exit_code == 0, result.stderr
    assert not (esb_root / "components/confapis/nodeman").exists()
    assert (esb_root / "components/bk/apisv2/nodeman").is_dir()  # not skipped: it came over
    assert (esb_root / "lib/gse/exceptions.py").is_file()
    for rel, data in original.items():
        assert (esb_root / rel).read_bytes() == data, rel
    assert f"{CONFIGS} is left out (--skip); settings not merged" in result.output
    assert "left out (--skip): 8 file(s) of the CE" in result.output


def test_skip_and_take_file_refuse_paths_the_ce_does_not_have(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    before = snapshot(esb_root)

    result = _sync(run_esbgen, esb_root, ce_root, "--skip", "components/confapis/nosuch")
    assert_one_line_refusal(result, 2)
    assert f"--skip components/confapis/nosuch: the CE (--from {ce_root}) has no such file or folder" in result.stderr
    assert_one_line_refusal(_sync(run_esbgen, esb_root, ce_root, "--take-file", "components/nosuch.py"), 2)
    assert_one_line_refusal(_sync(run_esbgen, esb_root, ce_root, "--skip", "/etc/passwd"), 2)
    assert_one_line_refusal(_sync(run_esbgen, esb_root, ce_root, "--skip", "../esb-ce/components"), 2)
    assert_one_line_refusal(_sync(run_esbgen, esb_root, ce_root, "--skip", CONFIGS, "--take", "DATABASES"), 2)

    assert snapshot(esb_root) == before


# --- errors about the CE tree name --from ----------------------------------------------------------------


def test_errors_about_the_ce_tree_name_from(esb_root: Path, ce_root: Path, tmp_path: Path, run_esbgen) -> None:
    before = snapshot(esb_root)
    not_esb = tmp_path / "not-esb"
    not_esb.mkdir()

    for ce in (not_esb, tmp_path / "missing"):
        result = _sync(run_esbgen, esb_root, ce)
        assert_one_line_refusal(result)
        assert f"--from {ce} is not" in result.stderr and "--esb-root" not in result.stderr

    (ce_root / "components/bk/apisv2/nodeman/linked.py").symlink_to("nodeman_component.py")
    result = _sync(run_esbgen, esb_root, ce_root)
    assert_one_line_refusal(result)
    assert f"--from {ce_root}: components/bk/apisv2/nodeman/linked.py is a symbolic link" in result.stderr
    (ce_root / "components/bk/apisv2/nodeman/linked.py").unlink()

    edit_once(ce_root / CONFIGS, b"DEBUG = False\n", b"DEBUG = (False\n")
    result = _sync(run_esbgen, esb_root, ce_root)
    assert_one_line_refusal(result)
    assert f"--from: {ce_root / CONFIGS}:" in result.stderr and "Python syntax error" in result.stderr
    edit_once(ce_root / CONFIGS, b"DEBUG = (False\n", b"DEBUG = False\n")

    yaml_file = ce_root / "components/confapis/nodeman/nodeman.yaml"
    yaml_file.write_bytes(b"- path: [unclosed\n")
    result = _sync(run_esbgen, esb_root, ce_root)
    assert_one_line_refusal(result)
    assert f"--from: {yaml_file}:2: malformed YAML" in result.stderr

    result = _sync(run_esbgen, esb_root, ce_root, "--take", "NOT_A_SETTING")
    assert_one_line_refusal(result)
    assert f"--take NOT_A_SETTING: not a top-level assignment of {ce_root / CONFIGS} (--from)" in result.stderr
    assert snapshot(esb_root) == before


# --- both settings files ------------------------------------------------------------------------------------


def test_a_legacy_ce_is_merged_into_a_later_settings_file(tmp_path: Path, run_esbgen) -> None:
    target = copy_fixture(tmp_path, LATER)
    ce = copy_fixture(tmp_path, LEGACY, "ce")
    original = (target / LATER_SETTINGS).read_bytes()

    result = _sync(run_esbgen, target, ce, "--across-generations")

    assert result.exit_code == 0, result.stderr
    out = result.output
    assert not (target / CONFIGS).exists()
    assert (
        "the CE keeps its settings in configs/default.py, this ESB in conf/default.py: merged into conf/default.py "
        "(the other ESB generation's file"
    ) in out
    after = (target / LATER_SETTINGS).read_bytes()
    # The CE-only plain settings are added; its secrets, database and hosts are not.
    assert b"RUN_MODE = 'PRODUCT'" in after and b"HOST_JOB = 'http://job.legacy.example:80'" in after
    assert b"LegacyFixturePass" not in after and b"routing-legacy-fixture-secret" not in after
    assert after.startswith(original.split(b"BASE_DIR")[0])
    assert f"{LATER_SETTINGS} SECRET_KEY: differs; the target's is kept (secret: SECRET in its name)" in out
    assert f"{LATER_SETTINGS} PAAS_HOST: needs review" in out  # env.str(...) against a literal
    assert run_esbgen("undo", "--esb-root", target).exit_code == 0
    assert (target / LATER_SETTINGS).read_bytes() == original
    assert (FIXTURES / LATER / LATER_SETTINGS).read_bytes() == original
