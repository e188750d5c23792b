"""``esbgen sync-edition``: the CE's components/, lib/gse/ and settings come into the open-source ESB."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES, assert_one_line_refusal, edit_once, snapshot
from faultkit import with_faults

CONFIGS = "configs/default.py"
CONF = "components/generic/apis/conf.py"
ITSM_LINE = b"BK_ITSM_URL = 'http://paas.service.consul:80'\n"
NODEMAN_BLOCK = b"\n# Node manager (CE only)\nBK_NODEMAN_URL = 'http://nodeman.service.consul:10300'\n"
DEBUG_COMMENT = "# 调试模式，生产环境必须关闭\n".encode()


def _files(root: Path, *scopes: str) -> dict[str, bytes]:
    found = {}
    for scope in scopes:
        for dirpath, _, filenames in os.walk(root / scope):
            for name in filenames:
                path = Path(dirpath, name)
                found[str(path.relative_to(root))] = path.read_bytes()
    return found


def _sync(run_esbgen, target: Path, ce: Path, *extra: str):
    return run_esbgen("sync-edition", "--from", ce, "--esb-root", target, *extra)


def test_dry_run_lists_every_difference_and_changes_nothing(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    before, ce_before = snapshot(esb_root), snapshot(ce_root)

    result = _sync(run_esbgen, esb_root, ce_root, "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert snapshot(esb_root) == before and snapshot(ce_root) == ce_before
    out = result.output
    # New folders come over whole; new and changed files one by one, with their diff.
    assert "add components/bk/apisv2/nodeman/ (4 files)" in out
    assert "add components/confapis/nodeman/ (7 files)" in out
    assert "modify components/confapis/itsm/itsm.yaml" in out and "+- path: /v2/itsm/get_ticket_logs/" in out
    assert "create components/confapis/itsm/apidocs/en/get_ticket_logs.md" in out
    assert "create components/confapis/itsm/apidocs/zh_hans/get_ticket_logs.md" in out
    assert "modify lib/gse/client.py" in out and "+    def push_file(self, hosts, src_path, dest_dir):" in out
    assert "create lib/gse/exceptions.py" in out
    assert f"modify {CONFIGS}" in out and "+BK_NODEMAN_URL = 'http://nodeman.service.consul:10300'" in out
    # Each settings difference and what was decided.
    assert f"{CONFIGS} DATABASES: differs; the target's is kept (database settings)" in out
    assert f"{CONFIGS} BK_SOPS_URL: differs; the target's 'http://paas.service.consul:80' is kept" in out
    assert f"{CONFIGS} BK_NODEMAN_URL: only in the CE; added after BK_ITSM_URL" in out
    assert "open_paas_ce" not in out and "CommunityEditionPass" not in out  # the kept DATABASES is not in a diff
    # Files both have with the same bytes are not listed.
    assert "components/confapis/sops/sops.yaml" not in out
    assert "Dry run: nothing was changed." in out


def test_apply_copies_the_ce_and_keeps_the_targets_own(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    own = {
        "lib/gse/local_patch.py": b"# only in the target\r\n",
        "components/bk/apisv2/sops/toolkit/local.py": b"LOCAL = 1\n",
    }
    for rel, data in own.items():
        (esb_root / rel).write_bytes(data)
    original_configs = (esb_root / CONFIGS).read_bytes()
    untouched = {rel: sha for rel, sha in snapshot(esb_root).items() if not rel.startswith(("components/", "lib/gse/", CONFIGS))}

    result = _sync(run_esbgen, esb_root, ce_root)

    assert result.exit_code == 0, result.stderr
    assert "Synced from" in result.output and "2 folder(s) added (11 files), 5 file(s) written" in result.output
    # Every file of the CE's components/ and lib/gse/ is in the target with the CE's bytes.
    ce_files = _files(ce_root, "components", "lib/gse")
    target_files = _files(esb_root, "components", "lib/gse")
    for rel, data in ce_files.items():
        assert target_files.get(rel) == data, rel
    # Files only the target has are kept, byte for byte; nothing outside the scopes moved.
    assert set(target_files) - set(ce_files) == set(own)
    for rel, data in own.items():
        assert (esb_root / rel).read_bytes() == data
    assert {rel: sha for rel, sha in snapshot(esb_root).items() if rel in untouched} == untouched
    # configs/default.py: the target's bytes, plus the CE-only setting after its CE neighbour.
    expected = original_configs.replace(ITSM_LINE, ITSM_LINE + NODEMAN_BLOCK)
    assert (esb_root / CONFIGS).read_bytes() == expected

    check = run_esbgen("check", "--esb-root", esb_root)
    assert check.exit_code == 0, check.output


def test_repeat_is_a_noop_and_undo_restores_bytes(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    pristine = snapshot(esb_root)
    assert _sync(run_esbgen, esb_root, ce_root).exit_code == 0
    applied = snapshot(esb_root)
    journals = sorted((esb_root / ".esbgen" / "journal").iterdir())

    again = _sync(run_esbgen, esb_root, ce_root)

    assert again.exit_code == 0, again.stderr
    assert "Nothing to do:" in again.output
    assert snapshot(esb_root) == applied
    assert sorted((esb_root / ".esbgen" / "journal").iterdir()) == journals

    undo = run_esbgen("undo", "--esb-root", esb_root)
    assert undo.exit_code == 0, undo.stderr
    assert snapshot(esb_root) == pristine
    assert not (esb_root / "components/bk/apisv2/nodeman").exists()


def test_settings_merge_rules(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    target_cfg, ce_cfg = esb_root / CONFIGS, ce_root / CONFIGS
    # Settings both have, written differently on each side.
    edit_once(target_cfg, b"LOG_LEVEL = 'INFO'\n", b"LOG_LEVEL = 'INFO'\n\nDOCS_LINK = 'https://docs.example.com/esb/'\n\nLOCAL_ONLY = True  # mine\n")
    edit_once(ce_cfg, b"LOG_LEVEL = 'INFO'\n", b'LOG_LEVEL = "WARNING"  # CE\n\nDOCS_LINK = \'https://docs-ce.example.com/esb/\'\n\nimport os\n')
    edit_once(ce_cfg, b"DEFAULT_TIMEOUT = 30", b"DEFAULT_TIMEOUT = 60")
    edit_once(ce_cfg, b"HOST_JOB = 'http://job.service.consul:80'", b"HOST_JOB = 'http://job-ce.service.consul:8080'")
    edit_once(ce_cfg, b"TIME_ZONE = 'Asia/Shanghai'", b'TIME_ZONE = "Asia/Shanghai"  # same value')
    edit_once(ce_cfg, DEBUG_COMMENT, b"ESB_FIRST = 1\n\n" + DEBUG_COMMENT)  # CE-only, before every shared setting
    original = target_cfg.read_bytes()

    result = _sync(run_esbgen, esb_root, ce_root)

    assert result.exit_code == 0, result.stderr
    expected = (
        original.replace(b"DEFAULT_TIMEOUT = 30", b"DEFAULT_TIMEOUT = 60")  # other settings: the CE's
        .replace(b"LOG_LEVEL = 'INFO'", b'LOG_LEVEL = "WARNING"')  # only the value; the target's line stays
        .replace(ITSM_LINE, ITSM_LINE + NODEMAN_BLOCK)
        .replace(DEBUG_COMMENT, b"ESB_FIRST = 1\n" + DEBUG_COMMENT)  # before its CE neighbour and its comment
    )
    assert target_cfg.read_bytes() == expected
    out = result.output
    assert f"{CONFIGS} HOST_JOB: differs; the target's 'http://job.service.consul:80' is kept (host setting: HOST in its name)" in out
    assert f"{CONFIGS} DOCS_LINK: differs; the target's 'https://docs.example.com/esb/' is kept (host setting: 'https://docs.example.com/esb/' is a URL or host)" in out
    assert f"{CONFIGS} DEFAULT_TIMEOUT: differs; the CE's value comes over" in out
    assert f"{CONFIGS} LOG_LEVEL: differs; the CE's value comes over" in out
    assert f"{CONFIGS} ESB_FIRST: only in the CE; added before DEBUG" in out
    assert f"{CONFIGS} LOCAL_ONLY: only in the target; kept" in out
    assert "TIME_ZONE" not in out  # equal in meaning: not a difference
    assert "`import os` is not a top-level assignment and is not merged" in out

    again = _sync(run_esbgen, esb_root, ce_root)
    assert again.exit_code == 0 and "Nothing to do:" in again.output
    assert target_cfg.read_bytes() == expected


def test_take_forces_the_ces_value(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    result = _sync(run_esbgen, esb_root, ce_root, "--take", "DATABASES", "--take", "BK_SOPS_URL", "--take", "PAAS_HOST")

    assert result.exit_code == 0, result.stderr
    assert f"{CONFIGS} DATABASES: differs; the CE's value comes over (--take)" in result.output
    assert f"{CONFIGS} BK_SOPS_URL: differs; the CE's value comes over (--take)" in result.output
    assert "--take PAAS_HOST: the target's value is already the CE's" in result.output
    # The CE's file, but for the target's own comment on line 2 (comments stay the target's).
    target_lines = (FIXTURES / "esb" / CONFIGS).read_bytes().split(b"\n")
    ce_lines = (ce_root / CONFIGS).read_bytes().split(b"\n")
    ce_lines[1] = target_lines[1]
    assert (esb_root / CONFIGS).read_bytes() == b"\n".join(ce_lines)


def test_crlf_settings_file_stays_crlf(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    target_cfg = esb_root / CONFIGS
    original = target_cfg.read_bytes().replace(b"\n", b"\r\n")
    target_cfg.write_bytes(original)

    result = _sync(run_esbgen, esb_root, ce_root, "--take", "DATABASES")

    assert result.exit_code == 0, result.stderr
    after = target_cfg.read_bytes()
    assert after.count(b"\r\n") == after.count(b"\n")
    ce_databases = (ce_root / CONFIGS).read_bytes().split(b"DATABASES = ")[1].split(b"\n}\n")[0] + b"\n}"
    mine_databases = original.split(b"DATABASES = ")[1].split(b"\r\n}\r\n")[0] + b"\r\n}"
    expected = original.replace(mine_databases, ce_databases.replace(b"\n", b"\r\n")).replace(
        ITSM_LINE.replace(b"\n", b"\r\n"), (ITSM_LINE + NODEMAN_BLOCK).replace(b"\n", b"\r\n")
    )
    assert after == expected


def test_custom_conf_of_the_target_is_kept(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    edit_once(ce_root / CONF, b"    {\n        'name': 'HELLO',", b"    {'name': 'CE_EXTRA', 'label': 'CE extra'},\n    {\n        'name': 'HELLO',")
    original = (esb_root / CONF).read_bytes()

    result = _sync(run_esbgen, esb_root, ce_root)

    assert result.exit_code == 0, result.stderr
    assert (esb_root / CONF).read_bytes() == original
    assert f"{CONF} differs from the CE's: the target's is kept" in result.output
    assert "the CE's SYSTEMS CE_EXTRA are not in it" in result.output


def test_caches_are_skipped_and_a_missing_lib_gse_comes_whole(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    cache = ce_root / "components/bk/apisv2/nodeman/__pycache__"
    cache.mkdir()
    (cache / "nodeman_component.cpython-310.pyc").write_bytes(b"\x00cache")
    (ce_root / "lib/gse/client.pyc").write_bytes(b"\x00cache")
    for path in sorted((esb_root / "lib/gse").iterdir()):
        path.unlink()
    (esb_root / "lib/gse").rmdir()

    result = _sync(run_esbgen, esb_root, ce_root)

    assert result.exit_code == 0, result.stderr
    assert "add lib/gse/ (3 files)" in result.output
    assert not (esb_root / "components/bk/apisv2/nodeman/__pycache__").exists()
    assert sorted(p.name for p in (esb_root / "lib/gse").iterdir()) == ["__init__.py", "client.py", "exceptions.py"]
    assert _files(esb_root, "lib/gse") == {k: v for k, v in _files(ce_root, "lib/gse").items() if not k.endswith(".pyc")}


def test_refusals_leave_both_trees_untouched(esb_root: Path, ce_root: Path, tmp_path: Path, run_esbgen) -> None:
    before, ce_before = snapshot(esb_root), snapshot(ce_root)
    not_esb = tmp_path / "not-esb"
    not_esb.mkdir()

    result = _sync(run_esbgen, esb_root, not_esb)
    assert_one_line_refusal(result)
    assert "is not an ESB root" in result.stderr
    result = _sync(run_esbgen, esb_root, esb_root)
    assert_one_line_refusal(result, 2)
    assert "is the target ESB root itself" in result.stderr
    result = _sync(run_esbgen, esb_root, ce_root, "--take", "NOT_A_SETTING")
    assert_one_line_refusal(result)
    assert "--take NOT_A_SETTING: not a top-level assignment of" in result.stderr
    assert_one_line_refusal(_sync(run_esbgen, esb_root, ce_root, "--take", "not-a-name"), 2)

    assert snapshot(esb_root) == before and snapshot(ce_root) == ce_before


def test_links_in_the_ce_are_refused(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    before = snapshot(esb_root)
    link = ce_root / "components/bk/apisv2/nodeman/linked.py"
    link.symlink_to("nodeman_component.py")

    result = _sync(run_esbgen, esb_root, ce_root)

    assert_one_line_refusal(result)
    assert "components/bk/apisv2/nodeman/linked.py is a symbolic link" in result.stderr
    link.unlink()
    (ce_root / "lib/gse/vendored").symlink_to(ce_root / "components")
    result = _sync(run_esbgen, esb_root, ce_root)
    assert_one_line_refusal(result)
    assert "lib/gse/vendored is a symbolic link" in result.stderr
    assert snapshot(esb_root) == before


def test_malformed_yaml_and_python_are_refused_with_file_and_line(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    before = snapshot(esb_root)
    yaml_file = ce_root / "components/confapis/nodeman/nodeman.yaml"
    lines = yaml_file.read_bytes().split(b"\n")
    lines[6] = b"  name: [unclosed"
    yaml_file.write_bytes(b"\n".join(lines))

    result = _sync(run_esbgen, esb_root, ce_root)

    assert_one_line_refusal(result)
    assert f"{yaml_file}:" in result.stderr and "malformed YAML" in result.stderr
    assert snapshot(esb_root) == before

    yaml_file.write_bytes((FIXTURES / "esb-ce/components/confapis/nodeman/nodeman.yaml").read_bytes())
    edit_once(esb_root / CONFIGS, b"DEBUG = False\n", b"DEBUG = (False\n")
    before = snapshot(esb_root)
    result = _sync(run_esbgen, esb_root, ce_root)
    assert_one_line_refusal(result)
    assert f"{CONFIGS}:" in result.stderr and "Python syntax error" in result.stderr
    assert snapshot(esb_root) == before


def test_host_setting_rule() -> None:
    from esbgen.commands.sync_edition import host_reason

    for name in ("PAAS_HOST", "HOST_CC", "BK_SOPS_URL", "BK_PAAS_INNER_HOST", "ALLOWED_HOSTS", "REDIS_PORT", "ESB_IP"):
        assert host_reason(name, "1", "2"), name
    for value in ("'http://a.b:80'", "'10.0.0.1'", "'gse.service.consul:48673'", "'localhost'", "{'x': 'redis://r:6379/0'}"):
        assert host_reason("SOMETHING", value, "0"), value
    for name, value in (("SESSION_ENGINE", "'django.contrib.sessions.backends.db'"), ("TIME_ZONE", "'Asia/Shanghai'"),
                        ("ZIP_LEVEL", "9"), ("REPORT_TITLE", "'Report'"), ("LANGUAGE_CODE", "'zh-hans'")):
        assert host_reason(name, value, value) is None, name


def test_a_run_killed_halfway_is_rolled_back_by_the_next(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    pristine = snapshot(esb_root)
    env = with_faults({**os.environ, "ESBGEN_CRASH_AT": "op-4"})  # after both folders and two files, as kill -9 would
    killed = subprocess.run(
        [sys.executable, "-m", "esbgen", "sync-edition", "--from", str(ce_root), "--esb-root", str(esb_root)],
        env=env, capture_output=True, text=True, check=False,
    )
    assert killed.returncode == 137, killed.stderr
    assert snapshot(esb_root) != pristine  # really half applied

    result = _sync(run_esbgen, esb_root, ce_root, "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert "rolled back an interrupted change" in result.output
    assert snapshot(esb_root) == pristine


def test_a_ce_of_the_other_generation_is_refused_in_one_line(tmp_path: Path, ce_root: Path, run_esbgen) -> None:
    import shutil

    later = tmp_path / "later"
    shutil.copytree(FIXTURES / "esb-later", later, symlinks=True)
    before, ce_before = snapshot(later), snapshot(ce_root)

    result = _sync(run_esbgen, later, ce_root)

    assert_one_line_refusal(result)
    assert result.stderr == (
        f"esbgen: error: the CE (--from {ce_root}) is a legacy ESB (Python 2, configs/default.py) and this one is a "
        "later ESB (Python 3, conf/default.py): its components would replace this ESB's with code for the other "
        "generation; sync from a CE of this generation, or give --across-generations to do it anyway\n")
    assert snapshot(later) == before and snapshot(ce_root) == ce_before
    assert not (later / ".esbgen").exists()
    backwards = _sync(run_esbgen, ce_root, later, "--dry-run")
    assert_one_line_refusal(backwards)
    assert "is a later ESB (Python 3, conf/default.py) and this one is a legacy ESB" in backwards.stderr


def test_across_generations_says_what_it_replaces(tmp_path: Path, ce_root: Path, run_esbgen) -> None:
    import json
    import shutil

    later = tmp_path / "later"
    shutil.copytree(FIXTURES / "esb-later", later, symlinks=True)
    before = snapshot(later)

    dry = json.loads(_sync(run_esbgen, later, ce_root, "--across-generations", "--dry-run", "--json").output)

    writes = dry["plan"]["writes"]
    replaced = [w for w in writes if w["action"] == "modify" and w["path"].endswith(".py") and w["path"] != "conf/default.py"]
    added = [f for add in dry["plan"]["adds"] for f in add["files"] if f.endswith(".py")] + [
        w for w in writes if w["action"] == "create" and w["path"].endswith(".py")]
    assert replaced  # the case the refusal is for: this ESB's own Python files replaced by the CE's
    assert (f"--across-generations: the CE is a legacy ESB (Python 2, configs/default.py), this ESB a later ESB "
            f"(Python 3, conf/default.py): {len(replaced)} of this ESB's Python files are replaced by the CE's and "
            f"{len(added)} added, all written for the other generation; check each (or --skip it) before restarting "
            "the ESB") in dry["notes"]
    assert snapshot(later) == before


def test_the_same_generation_needs_no_flag(esb_root: Path, ce_root: Path, run_esbgen) -> None:
    result = _sync(run_esbgen, esb_root, ce_root, "--dry-run")
    assert result.exit_code == 0 and "--across-generations" not in result.output


def test_settings_the_same_as_the_ces_are_left_as_they_are_and_refused_broken(esb_root: Path, ce_root: Path,
                                                                               run_esbgen) -> None:
    (esb_root / CONFIGS).write_bytes((ce_root / CONFIGS).read_bytes())
    result = _sync(run_esbgen, esb_root, ce_root, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert CONFIGS not in result.output

    broken = (ce_root / CONFIGS).read_bytes().replace(b"DEBUG = False\n", b"DEBUG = (False\n")
    for root in (esb_root, ce_root):
        (root / CONFIGS).write_bytes(broken)
    before = snapshot(esb_root)
    result = _sync(run_esbgen, esb_root, ce_root)
    assert_one_line_refusal(result)
    assert f"--from: {ce_root / CONFIGS}:" in result.stderr and "Python syntax error" in result.stderr
    assert snapshot(esb_root) == before
