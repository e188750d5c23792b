"""``esbgen retarget`` on both ESB generations: the call of a retargeted channel reaches the new app.

Each test reads the retargeted files back and derives where a call goes (``esbgen.esb.routing``),
which is what the ESB's request path does with them.
"""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES, assert_one_line_refusal, changed_paths, snapshot
from routing_kit import LATER, LEGACY, call, copy_fixture

SOPS_YAML = "components/confapis/sops/sops.yaml"
SOPS_COMPONENT = "components/bk/apisv2/sops/sops_component.py"
SOPS_CONFIGS = "components/bk/apisv2/sops/toolkit/configs.py"
LATER_SETTINGS = "conf/default.py"
NEW_APP = "bk-sops-ce"
APP_URL = "http://sops-ce.example.com:8080"


def test_legacy_retarget_moves_the_dest_path_and_the_call_reaches_the_new_app(tmp_path: Path, run_esbgen) -> None:
    root = copy_fixture(tmp_path, LEGACY)
    pristine = snapshot(root)
    old_yaml = (root / SOPS_YAML).read_bytes()
    assert call(root, "sops", "get_template_list", bk_biz_id="2").path == "/o/bk_sops/apigw/get_template_list/2/"

    result = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--esb-root", root)

    assert result.exit_code == 0, result.stderr
    # The component calls the shared platform host with the whole path: only the dest_paths move.
    assert changed_paths(pristine, snapshot(root)) == {SOPS_YAML}
    assert (root / SOPS_YAML).read_bytes().replace(NEW_APP.encode(), b"bk_sops") == old_yaml
    for name, path_vars, method, path in (
        ("get_template_list", {"bk_biz_id": "2"}, "GET", f"/o/{NEW_APP}/apigw/get_template_list/2/"),
        ("create_task", {"bk_biz_id": "2", "template_id": "7"}, "POST", f"/o/{NEW_APP}/apigw/create_task/7/2/"),
        ("get_task_status", {"bk_biz_id": "2", "task_id": "9"}, "GET", f"/o/{NEW_APP}/apigw/get_task_status/9/2/"),
    ):
        where = call(root, "sops", name, **path_vars)
        assert (where.host_setting, where.host, where.method, where.path) == (
            "PAAS_HOST", "http://paas.legacy.example:80", method, path
        ), name
    out = result.output
    assert (
        "sops calls PAAS_HOST (= 'http://paas.legacy.example:80') with the whole dest_path: "
        f"/o/{NEW_APP}/ there reaches app {NEW_APP}; PAAS_HOST stays"
    ) in out
    assert (
        "a call to /api/c/compapi/v2/sops/get_template_list/ goes to GET "
        "http://paas.legacy.example:80/o/bk_sops/apigw/get_template_list/{bk_biz_id}/ (PAAS_HOST); after the change, "
        f"to GET http://paas.legacy.example:80/o/{NEW_APP}/apigw/get_template_list/{{bk_biz_id}}/ (PAAS_HOST)"
    ) in out
    assert "define" not in out  # nothing for the operator to set
    assert run_esbgen("check", "--esb-root", root).exit_code == 0

    again = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--esb-root", root)
    assert again.exit_code == 0 and "Nothing to do: sops already forwards to app bk-sops-ce." in again.output
    assert run_esbgen("undo", "--esb-root", root).exit_code == 0
    assert snapshot(root) == pristine


def test_legacy_retarget_refuses_an_app_url(tmp_path: Path, run_esbgen) -> None:
    root = copy_fixture(tmp_path, LEGACY)
    before = snapshot(root)

    result = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--app-url", APP_URL, "--esb-root", root)

    assert_one_line_refusal(result, 2)
    assert "sops calls PAAS_HOST with the whole dest_path; it has no host setting of its own to set" in result.stderr
    assert snapshot(root) == before


def test_later_retarget_gives_the_system_the_new_apps_host(tmp_path: Path, run_esbgen) -> None:
    root = copy_fixture(tmp_path, LATER)
    pristine = snapshot(root)
    old = {rel: (root / rel).read_bytes() for rel in (SOPS_YAML, SOPS_COMPONENT, SOPS_CONFIGS, LATER_SETTINGS)}
    before_call = call(root, "sops", "get_template_list", bk_biz_id="2")
    assert (before_call.host_setting, before_call.path) == ("BK_SOPS_URL", "/apigw/get_template_list/2/")

    result = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--app-url", APP_URL, "--esb-root", root)

    assert result.exit_code == 0, result.stderr
    assert changed_paths(pristine, snapshot(root)) == set(old)  # esb_conf.py and the docs stay
    # The call reaches the new app's address with the path the source app had.
    for name, path_vars, method, path in (
        ("get_template_list", {"bk_biz_id": "2"}, "GET", "/apigw/get_template_list/2/"),
        ("create_task", {"bk_biz_id": "2", "template_id": "7"}, "POST", "/apigw/create_task/7/2/"),
        ("get_task_status", {"bk_biz_id": "2", "task_id": "9"}, "GET", "/apigw/get_task_status/9/2/"),
    ):
        where = call(root, "sops", name, **path_vars)
        assert (where.host_setting, where.host, where.method, where.path) == ("BK_SOPS_CE_URL", APP_URL, method, path), name
    # What changed, exactly: the prefix in the YAML and in the pattern taken off, the setting read, one new line.
    assert (root / SOPS_YAML).read_bytes().replace(NEW_APP.encode(), b"bk_sops") == old[SOPS_YAML]
    assert (root / SOPS_YAML).read_bytes().count(f"dest_path: /o/{NEW_APP}/apigw/".encode()) == 3
    assert (root / SOPS_COMPONENT).read_bytes() == old[SOPS_COMPONENT].replace(
        b're.sub("^/o/bk_sops", "", path)', f're.sub("^/o/{NEW_APP}", "", path)'.encode()
    )
    assert (root / SOPS_CONFIGS).read_bytes() == old[SOPS_CONFIGS].replace(b'"BK_SOPS_URL"', b'"BK_SOPS_CE_URL"')
    settings_line = b'BK_SOPS_URL = env.str("BK_SOPS_URL", "")\n'
    assert (root / LATER_SETTINGS).read_bytes() == old[LATER_SETTINGS].replace(
        settings_line, settings_line + f"BK_SOPS_CE_URL = '{APP_URL}'\n".encode()
    )
    out = result.output
    assert f"conf/default.py: BK_SOPS_CE_URL = '{APP_URL}' is added after BK_SOPS_URL" in out
    assert "it now calls BK_SOPS_CE_URL, the address of app bk-sops-ce" in out
    assert "configs/default.py" not in out  # the later ESB's settings file is conf/default.py
    assert run_esbgen("check", "--esb-root", root).exit_code == 0

    again = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--app-url", APP_URL, "--esb-root", root)
    assert again.exit_code == 0 and "Nothing to do" in again.output
    assert run_esbgen("undo", "--esb-root", root).exit_code == 0
    assert snapshot(root) == pristine


def test_later_retarget_without_app_url_says_what_to_define(tmp_path: Path, run_esbgen) -> None:
    root = copy_fixture(tmp_path, LATER)
    settings = (root / LATER_SETTINGS).read_bytes()

    result = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--esb-root", root)

    assert result.exit_code == 0, result.stderr
    assert (root / LATER_SETTINGS).read_bytes() == settings
    assert (
        "define BK_SOPS_CE_URL in conf/default.py (the address of app bk-sops-ce) before restarting the ESB, "
        "or give its address with --app-url URL; until it is defined, calls to sops have no host "
        '(BK_SOPS_URL there is env.str("BK_SOPS_URL", ""))'
    ) in result.output
    where = call(root, "sops", "get_template_list", bk_biz_id="2")
    assert (where.host_setting, where.setting, where.path) == ("BK_SOPS_CE_URL", None, "/apigw/get_template_list/2/")

    # The operator defines it by hand, as the note says: the call now reaches that address.
    (root / LATER_SETTINGS).write_bytes(settings + b'BK_SOPS_CE_URL = env.str("BK_SOPS_CE_URL", "")\n')
    assert call(root, "sops", "get_template_list").setting.code == 'env.str("BK_SOPS_CE_URL", "")'


def test_app_url_does_not_overwrite_a_defined_setting(tmp_path: Path, run_esbgen) -> None:
    root = copy_fixture(tmp_path, LATER)
    settings = root / LATER_SETTINGS
    settings.write_bytes(settings.read_bytes() + b"BK_SOPS_CE_URL = 'http://elsewhere:80'\n")
    before = snapshot(root)

    result = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--app-url", APP_URL, "--esb-root", root)

    assert_one_line_refusal(result)
    assert "--app-url: BK_SOPS_CE_URL is already set in conf/default.py (to 'http://elsewhere:80')" in result.stderr
    assert snapshot(root) == before
    assert_one_line_refusal(run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--app-url", "not a url", "--esb-root", root), 2)
    assert snapshot(root) == before

    # Without --app-url the defined setting is used, and said.
    result = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--esb-root", root)
    assert result.exit_code == 0, result.stderr
    assert "conf/default.py: BK_SOPS_CE_URL (= 'http://elsewhere:80') is already defined" in result.output
    assert call(root, "sops", "get_template_list").host == "http://elsewhere:80"


def test_to_source_puts_back_the_bytes_of_before_the_first_retarget(tmp_path: Path, run_esbgen) -> None:
    root = copy_fixture(tmp_path, LATER)
    pristine = snapshot(root)
    assert run_esbgen("retarget", "sops", "--app-code", "bk_sops_ce", "--esb-root", root).exit_code == 0
    assert run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--app-url", APP_URL, "--esb-root", root).exit_code == 0
    assert call(root, "sops", "get_template_list").host == APP_URL
    retargeted = snapshot(root)

    dry = run_esbgen("retarget", "sops", "--to-source", "--esb-root", root, "--dry-run")
    assert dry.exit_code == 0 and snapshot(root) == retargeted
    assert f"modify {LATER_SETTINGS}" in dry.output and f"-BK_SOPS_CE_URL = '{APP_URL}'" in dry.output

    back = run_esbgen("retarget", "sops", "--to-source", "--esb-root", root)

    assert back.exit_code == 0, back.stderr
    assert "Retargeted sops back to app bk_sops, its source: 4 files put back." in back.output
    assert snapshot(root) == pristine
    where = call(root, "sops", "get_template_list", bk_biz_id="2")
    assert (where.host_setting, where.path) == ("BK_SOPS_URL", "/apigw/get_template_list/2/")
    again = run_esbgen("retarget", "sops", "--to-source", "--esb-root", root)
    assert again.exit_code == 0 and "Nothing to do: no retarget of sops is recorded" in again.output
    assert snapshot(root) == pristine

    # Taking the system back is a change like any other: undo makes it again.
    assert run_esbgen("undo", "--esb-root", root).exit_code == 0
    assert snapshot(root) == retargeted


def test_to_source_refuses_a_file_changed_since(tmp_path: Path, run_esbgen) -> None:
    root = copy_fixture(tmp_path, LEGACY)
    assert run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--esb-root", root).exit_code == 0
    yaml_file = root / SOPS_YAML
    yaml_file.write_bytes(yaml_file.read_bytes() + b"# edited by hand\n")
    before = snapshot(root)

    result = run_esbgen("retarget", "sops", "--to-source", "--esb-root", root)

    assert_one_line_refusal(result)
    assert f"{SOPS_YAML} changed since change" in result.stderr
    assert "esbgen retarget sops --app-code bk_sops" in result.stderr
    assert snapshot(root) == before


def test_to_source_without_a_recorded_retarget_and_bad_options(tmp_path: Path, run_esbgen) -> None:
    root = copy_fixture(tmp_path, LEGACY)
    before = snapshot(root)

    result = run_esbgen("retarget", "sops", "--to-source", "--esb-root", root)

    assert result.exit_code == 0, result.stderr
    assert "Nothing to do: no retarget of sops is recorded in this tree's journal" in result.output
    assert_one_line_refusal(run_esbgen("retarget", "sops", "--esb-root", root), 2)
    assert_one_line_refusal(run_esbgen("retarget", "sops", "--to-source", "--app-code", NEW_APP, "--esb-root", root), 2)
    assert_one_line_refusal(run_esbgen("retarget", "sops", "--to-source", "--app-url", APP_URL, "--esb-root", root), 2)
    assert snapshot(root) == before
    assert (root / SOPS_YAML).read_bytes() == (FIXTURES / LEGACY / SOPS_YAML).read_bytes()


def test_retarget_finishes_a_scenario_1_done_by_hand_on_the_later_esb(tmp_path: Path, run_esbgen) -> None:
    # The procedure's scenario 1 by hand: every dest_path moved, nothing else. On the later ESB
    # the component then takes nothing off and still calls the old app's host.
    root = copy_fixture(tmp_path, LATER)
    yaml_file = root / SOPS_YAML
    yaml_file.write_bytes(yaml_file.read_bytes().replace(b"dest_path: /o/bk_sops/", f"dest_path: /o/{NEW_APP}/".encode()))
    by_hand = yaml_file.read_bytes()
    broken = call(root, "sops", "get_template_list", bk_biz_id="2")
    assert (broken.host_setting, broken.path) == ("BK_SOPS_URL", f"/o/{NEW_APP}/apigw/get_template_list/2/")

    result = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--app-url", APP_URL, "--esb-root", root)

    assert result.exit_code == 0, result.stderr
    where = call(root, "sops", "get_template_list", bk_biz_id="2")
    assert (where.host_setting, where.host, where.path) == ("BK_SOPS_CE_URL", APP_URL, "/apigw/get_template_list/2/")
    assert yaml_file.read_bytes() == by_hand  # the dest_paths were already right
    assert (root / SOPS_COMPONENT).read_bytes().count(f'"^/o/{NEW_APP}"'.encode()) == 1
